"""policy_node's services and parameter changes: what any peer on the ROS domain can do to it.

DDS authenticates no one without SROS2 (docs/SECURITY.md), so whoever reaches the domain can call
``~/enable`` and ``~/reset`` and set parameters. The guards on that live here, together: while
active the safety limits only tighten (widening needs a deactivate), ``checkpoint`` must resolve
inside ``checkpoint_dirs`` unless it is the file the node was started with, and every accepted
change is audited (policy_reports).
"""
from __future__ import annotations

from rcl_interfaces.msg import SetParametersResult
from rclpy.parameter import Parameter
from std_srvs.srv import SetBool, Trigger

from actjepa_core.errors import ActJepaError
from actjepa_ros import params, safety
from actjepa_ros.params import LIVE_POLICY_PARAMS, POLICY_PARAMS


class ServicesAndParameters:
    """PolicyNode's ``~/enable``, ``~/reset`` and set-parameters callbacks (a mixin: it uses the
    node's ``p``, ``policy``, ``filter``, ``limits``, ``restart``, ``audit``, ...)."""

    def on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        """``~/enable``: start (from rest) or stop commanding while active."""
        if request.data and not self.enabled:
            self.restart()
        changed = self.enabled != bool(request.data)
        self.enabled = bool(request.data)
        response.success = True
        response.message = "enabled" if self.enabled else "disabled: publishing nothing"
        if changed:
            self.audit("enable", response.message)
        else:
            self.get_logger().info(response.message)
        return response

    def on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """``~/reset``: forget the policy's per-episode state (a new episode)."""
        response.success = self.policy is not None
        if self.policy is None:
            response.message = "not configured: no policy to reset"
        else:
            self.restart()
            response.message = "policy reset"
        return response

    def on_set_parameters(self, changes: list[Parameter]) -> SetParametersResult:
        """Refuse values the node could not use; apply safety limits at once when configured."""
        new = {c.name: c.value for c in changes}
        problems = params.check_choices(new, POLICY_PARAMS)
        if "checkpoint" in new:
            outside = safety.checkpoint_problem(new["checkpoint"], self.checkpoint_dirs,
                                                self.started_checkpoint)
            if outside:
                problems["checkpoint"] = outside
        limits = None
        if not problems and self.filter is not None and set(new) & set(LIVE_POLICY_PARAMS):
            merged = {**self.p, **{k: list(new[k]) for k in LIVE_POLICY_PARAMS if k in new}}
            try:
                limits = self.limits(merged, self.policy.action_dim)
                wider = safety.widening(self.filter.limits, limits) if self.active else None
                if wider:
                    problems["limits"] = (f"{wider} while active; limits only tighten while the "
                                          "node is active: deactivate, set them, activate (or "
                                          "restart with a new params file)")
            except ActJepaError as err:
                problems["limits"] = str(err)
        if problems:
            reason = "; ".join(problems.values())
            self.get_logger().warning(f"parameter change refused: {reason}")  # one per request
            return SetParametersResult(successful=False, reason=reason)
        for name in new:
            self.param_problems.pop(name, None)
        if limits is not None:
            self.filter.limits = limits
            self.p.update({k: list(v) for k, v in new.items() if k in LIVE_POLICY_PARAMS})
            self.audit("limits", f"action limits now [{limits.low.tolist()}, "
                                 f"{limits.high.tolist()}], max_delta "
                                 f"{limits.max_delta.tolist()}")
        elif set(new) & set(LIVE_POLICY_PARAMS):
            self.audit("limits", "safety limits set: " + ", ".join(
                f"{k} {list(new[k])}" for k in LIVE_POLICY_PARAMS if k in new)
                + " (applied at the next configure)")
        if "checkpoint" in new and new["checkpoint"] != self.get_parameter("checkpoint").value:
            self.audit("checkpoint", f"checkpoint set to {new['checkpoint']!r} (loaded at the "
                                     "next configure)")
        later = sorted(set(new) - set(LIVE_POLICY_PARAMS) - {"use_sim_time"})
        if later and self.policy is not None:
            self.get_logger().info(f"{', '.join(later)}: applied at the next configure "
                                   "(deactivate, cleanup, configure, activate)")
        return SetParametersResult(successful=True)
