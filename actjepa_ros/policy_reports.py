"""What policy_node tells its operator: log lines, the audit of accepted changes, /diagnostics.

A node that stops commanding must say why, but a bad input arrives at the control rate: each
source of trouble gets one throttled warning (``complain``), and the latest reason is the
diagnostics' message until commanding resumes. Every accepted change of what the arm may do
(limits, checkpoint, lifecycle state, enable) is a warning and a count (``audit``), whoever made
it, so the robot's logs and /diagnostics show it. Errors are logged on one line (``describe``).
"""
from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from actjepa_core.errors import ActJepaError

LATENCY_WINDOW = 1000  # latencies kept for the diagnostics' percentiles
DIAGNOSTICS_TOPIC = "/diagnostics"


def describe(err: Exception) -> str:
    """An error as one log line: our own errors say what was wrong; others also say their type
    (a library's multi-line text is joined onto one line)."""
    text = str(err) if isinstance(err, ActJepaError) else f"{type(err).__name__}: {err}"
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


class Reporting:
    """PolicyNode's log lines and diagnostics (a mixin: it reads the node's state, ``p``,
    ``policy``, ``changes``, ``complaint_loggers``, ``latencies_ms``, ``pub_diagnostics``, ...,
    and sets ``blocked``)."""

    def startup_line(self) -> str:
        """What guards commanding, said once at start (an integrator reads it in the log)."""
        hold = ("require_enable: every command held until an explicit ~/enable true (also after "
                "each activate)" if self.p["require_enable"]
                else f"commanding once active{'' if self.enabled else ' and enabled'}")
        return (f"started: {hold}; safety limits only tighten while active; checkpoints from "
                f"[{', '.join(str(f) for f in self.checkpoint_dirs)}]")

    def audit(self, kind: str, text: str) -> None:
        """An accepted change of what the arm may do: a warning (kept with the robot's logs)
        and a count in /diagnostics, whoever made it."""
        self.changes[kind] += 1
        self.get_logger().warning(text)

    def complain(self, source: str, text: str, blocks: bool = True) -> None:
        """Log ``text`` at most once per warn_throttle_s per source (rclpy's throttle is per
        logger and call site, so each source gets its own child logger); ``blocks``: it is why
        nothing is being published (diagnostics say so until commanding resumes)."""
        if blocks:
            self.blocked = text
        logger = self.complaint_loggers.get(source)
        if logger is None:  # camera inputs are named image/<key>: a logger name has no '/'
            logger = self.complaint_loggers[source] = self.get_logger().get_child(
                source.replace("/", "_"))
        logger.warning(text, throttle_duration_sec=self.p["warn_throttle_s"])

    def publish_diagnostics(self) -> None:
        """Timer: the node's state, latencies and audited change counts on /diagnostics."""
        status = DiagnosticStatus(name=f"{self.get_name()}: actjepa policy",
                                  hardware_id=self.p["output_topic"])
        if self.failure:
            status.level = DiagnosticStatus.ERROR
            status.message = f"configure failed: {self.failure}"
        elif not self.active:
            status.level, status.message = DiagnosticStatus.OK, f"{self.lifecycle_label}: idle"
        elif not self.enabled:
            status.level, status.message = DiagnosticStatus.OK, "disabled by ~/enable"
        elif self.blocked:
            status.level, status.message = DiagnosticStatus.WARN, self.blocked
        else:
            status.level, status.message = DiagnosticStatus.OK, "commanding"
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.zeros(1)
        values = {"lifecycle": self.lifecycle_label, "enabled": str(self.enabled),
                  "actions_published": str(self.published),
                  "latency_ms_p50": f"{np.percentile(lat, 50):.2f}",
                  "latency_ms_p99": f"{np.percentile(lat, 99):.2f}",
                  "policy_type": getattr(self.policy, "policy_type", ""),
                  **({"subgoal_index": str(self.policy.subgoal_index),
                      "planned_cost": f"{self.policy.planned_cost:.4g}"}
                     if getattr(self.policy, "needs_goal", False) else {}),
                  "checkpoint": self.p["checkpoint"],
                  "require_enable": str(self.p["require_enable"]),
                  **{f"{kind}_changes": str(self.changes[kind])
                     for kind in ("limits", "checkpoint", "lifecycle", "enable")}}
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.pub_diagnostics.publish(array)
