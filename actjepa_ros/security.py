"""What each node exposes on the ROS graph, read from its parameters, and the SROS2 permissions
policy that allows exactly that.

DDS has no access control unless SROS2 (DDS-Security) is set up: any participant on the domain
can publish observations, call ``~/enable`` or set parameters. On a ROS install SROS2 gives each
node an enclave whose permissions list the topics it may publish and subscribe and the services it
may serve; this module writes that list (the ``<policy>`` XML ``ros2 security
create_permission`` turns into signed DDS permissions) from the same params files the nodes start
with, so the policy follows the configuration instead of being written by hand::

    python -m actjepa_ros.security policy --params config/policy.yaml config/sim.yaml \\
        config/recorder.yaml --out policy.xml

Names are written fully qualified (``/policy_node/enable``), as they appear on the graph. For
``policy_node`` the inputs actually subscribed depend on the checkpoint's observation keys: when the
checkpoint named in the parameters is readable they are taken from it, otherwise every configured
input is allowed (a superset, said in a comment). docs/SECURITY.md gives the ``ros2 security``
commands and the threat model. This module imports rclpy (through the nodes' parameter specs);
``actjepa_core`` does not import it.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence
from xml.dom import minidom
from xml.etree import ElementTree

import yaml
from rclpy.expand_topic_name import expand_topic_name

from actjepa_core.errors import ActJepaError
from actjepa_ros.params import POLICY_PARAMS, RECORDER_PARAMS, SIM_PARAMS, ParamSpec
from actjepa_ros.sim_cameras import camera_outputs

POLICY_VERSION = "0.2.0"  # the SROS2 policy schema (sros2/policy/schemas/policy.xsd)
ENCLAVE_ROOT = "/actjepa"
NODE_SERVICES = ("describe_parameters", "get_parameter_types", "get_parameters",
                 "get_type_description", "list_parameters", "set_parameters",
                 "set_parameters_atomically")  # every rclpy node serves these
LIFECYCLE_SERVICES = ("change_state", "get_available_states", "get_available_transitions",
                      "get_state", "get_transition_graph")
NODE_TOPICS = ("/rosout", "/parameter_events")  # every rclpy node publishes these


@dataclass
class Endpoints:
    """The fully qualified names one node publishes, subscribes and serves (as SROS2 needs
    them: a node that is not allowed a name cannot use it under DDS-Security)."""

    node: str
    namespace: str = "/"
    publish: set[str] = field(default_factory=set)
    subscribe: set[str] = field(default_factory=set)
    reply: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def name(self, relative: str) -> str:
        """``relative`` (``~/x``, ``x`` or ``/x``) as the node resolves it."""
        return expand_topic_name(relative, self.node, self.namespace)

    def add(self, kind: str, *names: str) -> None:
        getattr(self, kind).update(self.name(n) for n in names if n)


def rclpy_node(node: str, namespace: str, p: dict[str, Any], lifecycle: bool = False
               ) -> Endpoints:
    """What rclpy itself gives a node: parameter services, /rosout, /parameter_events, /clock
    with use_sim_time, and a lifecycle node's state services and transition events."""
    ends = Endpoints(node, namespace)
    ends.add("publish", *NODE_TOPICS)
    ends.add("reply", *(f"~/{s}" for s in NODE_SERVICES))
    if p.get("use_sim_time"):
        ends.add("subscribe", "/clock")
    if lifecycle:
        ends.add("reply", *(f"~/{s}" for s in LIFECYCLE_SERVICES))
        ends.add("publish", "~/transition_event")
    return ends


def policy_node_endpoints(p: dict[str, Any], namespace: str = "/",
                          spec: dict[str, dict] | None = None, needs_goal: bool | None = None
                          ) -> Endpoints:
    """policy_node's endpoints once active. ``spec``/``needs_goal``: the checkpoint's
    observation spec and whether it is a goal-conditioned (MPC) policy; None = not known, every
    configured input and goal topic is allowed."""
    from actjepa_ros.observations import INPUTS, VECTOR_INPUTS, camera_inputs, plan_inputs

    ends = rclpy_node("policy_node", namespace, p, lifecycle=True)
    ends.add("reply", "~/enable", "~/reset")
    ends.add("publish", "/diagnostics", p["output_topic"], p["latency_topic"])
    if p["output_type"] == "twist_stamped":
        ends.add("publish", p["gripper_topic"])
    if spec is not None:
        topics = [i.topic for i in plan_inputs(p, spec).values()]
    else:
        ends.notes.append("policy_node: checkpoint not readable here; every configured input "
                          "and goal topic is allowed")
        topics = [p[INPUTS[name][0]] for name in VECTOR_INPUTS
                  if p[INPUTS[name][1]] and p[INPUTS[name][0]]]
        topics += [camera.topic for camera in camera_inputs(p)]
    ends.add("subscribe", *topics)
    goal = needs_goal if needs_goal is not None else any(
        p[t] for t in ("goal_topic", "goal_image_topic", "subgoals_topic"))
    if goal:
        ends.add("publish", p["plan_topic"])
        ends.add("subscribe", *goal_topics(p, spec))
    return ends


def goal_topics(p: dict[str, Any], spec: dict[str, dict] | None) -> list[str]:
    """The MPC goal topics policy_node subscribes for ``spec`` (all configured ones if None)."""
    keys = set(spec) if spec is not None else None
    state, image = p["state_key"], p["image_key"]
    wanted = [(p["goal_topic"], keys is None or state in keys),
              (p["subgoals_topic"], keys is None or keys == {state}),
              (p["goal_image_topic"], keys is None or image in keys)]
    return [topic for topic, used in wanted if topic and used]


def sim_node_endpoints(p: dict[str, Any], namespace: str = "/") -> Endpoints:
    """sim_node's endpoints: observations out (one image topic per camera), actions in (the
    array, the twist and the gripper; the array out in expert mode), ~/reset."""
    ends = rclpy_node("sim_node", namespace, p)
    ends.add("reply", "~/reset")
    ends.add("publish", p["joint_states_topic"], p["state_topic"], p["success_topic"])
    ends.add("publish", *[out.topic for out in camera_outputs(p)])
    if p["publish_clock"]:
        ends.add("publish", p["clock_topic"])
    ends.add("publish" if p["expert"] else "subscribe", p["action_topic"])
    if not p["expert"]:
        ends.add("subscribe", p["twist_topic"], p["gripper_topic"])
    return ends


def recorder_node_endpoints(p: dict[str, Any], namespace: str = "/") -> Endpoints:
    """recorder_node's endpoints: every recorded topic (subscribed once it is seen, or at once
    with ``types``), the marker, ~/start and ~/stop; ~/convert and ~/conversion with an
    episodes file."""
    ends = rclpy_node("recorder_node", namespace, p)
    ends.add("reply", "~/start", "~/stop")
    ends.add("subscribe", *p["topics"], p["marker_topic"])
    if p["episodes_file"]:
        ends.add("reply", "~/convert")
        ends.add("publish", "~/conversion")
    return ends


NODES: dict[str, tuple[Callable[[], Sequence[ParamSpec]], Callable[..., Endpoints]]] = {
    "policy_node": (lambda: POLICY_PARAMS, policy_node_endpoints),
    "sim_node": (lambda: SIM_PARAMS, sim_node_endpoints),
    "recorder_node": (lambda: RECORDER_PARAMS, recorder_node_endpoints),
}


def node_params(files: Sequence[str | Path], node: str, namespace: str = "/"
                ) -> dict[str, Any] | None:
    """``node``'s parameters from ROS params files (later files and entries win, as with
    several --params-file), over its declared defaults; None if no file names the node."""
    specs = NODES[node][0]()
    values: dict[str, Any] = {s.name: list(s.default) if isinstance(s.default, (list, tuple))
                              else s.default for s in specs}
    values["use_sim_time"] = False
    found = False
    full = expand_topic_name(node, node, namespace)  # /ns/node
    for path in files:
        data = read_yaml(path)
        for key, entry in data.items():
            if key in ("/**", node, full, f"/**/{node}", full.lstrip("/")) and isinstance(
                    entry, dict):
                values.update((entry.get("ros__parameters") or {}))
                found = found or key != "/**"
    return values if found else None


def read_yaml(path: str | Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ActJepaError(f"params file {path}: {' '.join(str(err).split())}") from None
    if not isinstance(data, dict):
        raise ActJepaError(f"params file {path}: expected a mapping of node names to "
                           "ros__parameters")
    return data


def checkpoint_spec(p: dict[str, Any]) -> tuple[dict[str, dict] | None, bool | None]:
    """The observation spec and goal need of policy_node's checkpoint, or (None, None) when it
    is not named or not readable here."""
    path = Path(p.get("checkpoint") or "").expanduser()
    if not p.get("checkpoint") or not path.is_file():
        return None, None
    from actjepa_core.policies import load_policy  # torch: only when a checkpoint is there

    try:
        policy = load_policy(path, policy_type=p.get("policy_type") or None)
    except ActJepaError:
        return None, None
    return dict(policy.obs_spec), bool(policy.needs_goal)


def endpoints(files: Sequence[str | Path], namespace: str = "/",
              overrides: dict[str, dict[str, Any]] | None = None) -> list[Endpoints]:
    """Every known node the params ``files`` configure, with its endpoints; ``overrides``:
    {node: {name: value}} applied last (as ``-p name:=value`` would be)."""
    found = []
    for node, (_, build) in NODES.items():
        p = node_params(files, node, namespace)
        if p is None and node not in (overrides or {}):
            continue
        p = {**(p or node_params([], node, namespace) or {}), **(overrides or {}).get(node, {})}
        if node == "policy_node":
            spec, goal = checkpoint_spec(p)
            found.append(build(p, namespace, spec, goal))
        else:
            found.append(build(p, namespace))
    if not found:
        raise ActJepaError(f"no policy_node, sim_node or recorder_node in {list(map(str, files))}")
    return found


def policy_xml(nodes: Sequence[Endpoints], enclave_root: str = ENCLAVE_ROOT) -> str:
    """The SROS2 ``<policy>`` document: one enclave per node, allowing exactly its endpoints."""
    policy = ElementTree.Element("policy", version=POLICY_VERSION)
    enclaves = ElementTree.SubElement(policy, "enclaves")
    for ends in nodes:
        for note in ends.notes:
            enclaves.append(ElementTree.Comment(f" {note} "))
        enclave = ElementTree.SubElement(enclaves, "enclave",
                                         path=f"{enclave_root.rstrip('/')}/{ends.node}")
        profile = ElementTree.SubElement(ElementTree.SubElement(enclave, "profiles"), "profile",
                                         ns=ends.namespace, node=ends.node)
        for tag, item, mode, names in (("topics", "topic", "publish", ends.publish),
                                       ("topics", "topic", "subscribe", ends.subscribe),
                                       ("services", "service", "reply", ends.reply)):
            if names:
                group = ElementTree.SubElement(profile, tag, {mode: "ALLOW"})
                for name in sorted(names):
                    ElementTree.SubElement(group, item).text = name
    raw = ElementTree.tostring(policy, encoding="unicode")
    return minidom.parseString(raw).toprettyxml(indent="  ", encoding="UTF-8").decode()


def allowed(xml: str) -> dict[str, dict[str, set[str]]]:
    """{node: {publish|subscribe|reply|request: names}} a policy document allows."""
    out: dict[str, dict[str, set[str]]] = {}
    for profile in ElementTree.fromstring(xml).iter("profile"):
        modes = out.setdefault(profile.get("node"), {})
        for group in profile:
            for mode, verdict in group.attrib.items():
                if verdict == "ALLOW":
                    modes.setdefault(mode, set()).update(e.text for e in group)
    return out


def parse_overrides(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``node.name:=value`` (value as YAML) -> {node: {name: value}}."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, value = item.partition(":=")
        node, dot, name = target.partition(".")
        if not (sep and dot and node in NODES and name):
            raise ActJepaError(f"-p {item!r}: expected <node>.<parameter>:=<value> with node one "
                               f"of {sorted(NODES)}")
        out.setdefault(node, {})[name] = yaml.safe_load(value)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m actjepa_ros.security policy --params FILE... [--out policy.xml]``."""
    parser = argparse.ArgumentParser(prog="python -m actjepa_ros.security",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("policy", help="write the SROS2 permissions policy for the nodes")
    cmd.add_argument("--params", nargs="+", required=True, help="ROS params files")
    cmd.add_argument("--namespace", default="/", help="namespace the nodes run in")
    cmd.add_argument("--enclave-root", default=ENCLAVE_ROOT, help="enclaves: <root>/<node>")
    cmd.add_argument("-p", dest="overrides", action="append", default=[],
                     metavar="NODE.NAME:=VALUE", help="a parameter as on the command line")
    cmd.add_argument("--out", help="file to write (default: standard output)")
    args = parser.parse_args(argv)
    try:
        xml = policy_xml(endpoints(args.params, args.namespace,
                                   parse_overrides(args.overrides)), args.enclave_root)
    except ActJepaError as err:
        print(f"actjepa_ros.security: error: {err}", file=sys.stderr)
        return 2
    if args.out:
        Path(args.out).write_text(xml)
    else:
        sys.stdout.write(xml)
    return 0


if __name__ == "__main__":
    sys.exit(main())
