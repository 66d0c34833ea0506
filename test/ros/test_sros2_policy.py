"""The SROS2 policy (actjepa_ros.security) and docs/SECURITY.md against the nodes as they run
(issue 28): policy_node, sim_node and recorder_node started from the shipped params files, as
separate processes over real DDS; what each publishes, subscribes, serves and calls, as the ROS
graph shows it, must be exactly what the generated policy allows, and every one of those names must
be in SECURITY.md's threat-model table.

Fast DDS here is built without DDS-Security, so the policy cannot be enforced on this machine;
what is checked is that it matches the nodes (a name missing from it would be refused on a secured
install, an extra one would allow more than needed).
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from actjepa_core.config import TrainConfig, to_dict
from actjepa_core.data.normalise import Normaliser
from actjepa_core.models import ACTJEPA
from actjepa_core.policies import FrozenWorld, NearestNeighbourPolicy
from actjepa_core.policies.configs import NNConfig
from actjepa_ros import security

from ros_harness import REPO, NodeProcess, domain_id

DOMAIN = domain_id(module_offset=42)
START_TIMEOUT_S = 90.0
SETTLE_S = 1.0  # the graph must stay as expected this long (late endpoints would show up)
STATE = 39  # the simulator's task observation: config/policy.yaml's state_topic
PARAMS = {"policy_node": "config/policy.yaml", "sim_node": "config/sim.yaml",
          "recorder_node": "config/recorder.yaml"}
MODES = ("publish", "subscribe", "reply", "request")


def write_state_policy(path: Path) -> None:
    """A real NN policy over the 39-d state only (so policy_node skips the image input)."""
    torch.manual_seed(0)
    config = TrainConfig()
    config.model.latent_dim, config.model.state_hidden = 8, [8]
    config.model.predictor_hidden = [8]
    model = ACTJEPA({"state": (STATE,)}, 4, config.model)
    stats = Normaliser({"state": torch.zeros(STATE)}, {"state": torch.ones(STATE)},
                       -torch.ones(4), torch.ones(4))
    world = FrozenWorld.from_state({
        "config": to_dict(config), "obs_spec": {"state": {"shape": [STATE], "dtype": "float32"}},
        "action_dim": 4, "stats": stats.state_dict(), "model": model.state_dict()})
    memory = world.model.encode(world.processor.to_model({"state": np.zeros(STATE, np.float32)}))
    NearestNeighbourPolicy(world, NNConfig(), memory, torch.zeros(1, 4)).save(path)


@pytest.fixture(scope="module")
def overrides(tmp_path_factory) -> dict[str, dict[str, str]]:
    folder = tmp_path_factory.mktemp("sros2")
    write_state_policy(folder / "policy.pt")
    return {"policy_node": {"checkpoint": str(folder / "policy.pt")},
            "sim_node": {},
            "recorder_node": {"output_dir": str(folder / "bags")}}


@pytest.fixture(scope="module")
def nodes(overrides, tmp_path_factory):
    """The three nodes, started at once on this module's domain."""
    logs = tmp_path_factory.mktemp("logs")
    procs = {}
    for node, params in PARAMS.items():
        args = ["--params-file", params]
        for key, value in overrides[node].items():
            args += ["-p", f"{key}:={value}"]
        procs[node] = NodeProcess(f"actjepa_ros.{node}", args, logs / f"{node}.log", DOMAIN)
    yield procs
    for proc in procs.values():
        proc.stop()


@pytest.fixture(scope="module")
def policy(overrides) -> str:
    """The policy XML for the running nodes."""
    return generated(overrides)


def generated(overrides: dict[str, dict[str, str]]) -> str:
    """The policy XML from the command line, as a user would make it."""
    cmd = [sys.executable, "-m", "actjepa_ros.security", "policy", "--params", *PARAMS.values()]
    for node, values in overrides.items():
        cmd += [arg for k, v in values.items() for arg in ("-p", f"{node}.{k}:={v}")]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def discovered(ros, node: str) -> bool:
    """Whether ``node`` (in /) is on the graph yet: the by-node queries raise until it is."""
    return (node, "/") in ros.node.get_node_names_and_namespaces()


def graph(ros, node: str) -> dict[str, set[str]]:
    """What the graph shows of ``node`` (in /): names it publishes, subscribes, serves, calls;
    empty sets while the node is not discovered yet."""
    n = ros.node
    if not discovered(ros, node):
        return {mode: set() for mode in MODES}
    found = {"publish": n.get_publisher_names_and_types_by_node(node, "/"),
             "subscribe": n.get_subscriber_names_and_types_by_node(node, "/"),
             "reply": n.get_service_names_and_types_by_node(node, "/"),
             "request": n.get_client_names_and_types_by_node(node, "/")}
    return {mode: {name for name, _ in pairs} for mode, pairs in found.items()}


def settled(ros, nodes, node: str, expected: dict[str, set[str]]) -> dict[str, set[str]]:
    """The node's graph once it equals ``expected`` for SETTLE_S (or at the timeout)."""
    want = {m: expected.get(m, set()) for m in MODES}
    ros.spin_until(lambda: not nodes[node].alive() or graph(ros, node) == want, START_TIMEOUT_S)
    ros.spin_for(SETTLE_S)
    assert nodes[node].alive(), nodes[node].log()[-3000:]
    return graph(ros, node)


@pytest.mark.parametrize("node", list(PARAMS))
def test_generated_policy_allows_exactly_what_the_running_node_uses(ros, nodes, policy, node):
    allowed = security.allowed(policy)[node]
    seen = settled(ros, nodes, node, allowed)
    for mode in MODES:
        allows = allowed.get(mode, set())
        assert seen[mode] == allows, (f"{node} {mode}: missing from the policy "
                                      f"{sorted(seen[mode] - allows)}, allowed but unused "
                                      f"{sorted(allows - seen[mode])}")


def test_policy_xml_has_one_enclave_per_node_in_the_sros2_layout(policy):
    from xml.etree import ElementTree

    root = ElementTree.fromstring(policy)
    assert root.tag == "policy" and root.get("version") == security.POLICY_VERSION
    enclaves = root.findall("enclaves/enclave")
    assert [e.get("path") for e in enclaves] == [f"/actjepa/{n}" for n in PARAMS]
    for enclave, node in zip(enclaves, PARAMS):
        profile = enclave.find("profiles/profile")
        assert profile.get("node") == node and profile.get("ns") == "/"
        assert {g.tag for g in profile} <= {"topics", "services"}
    # input topics come from the checkpoint: a state-only policy does not subscribe the camera
    assert "/camera/image_raw" not in security.allowed(policy)["policy_node"]["subscribe"]


def test_without_the_checkpoint_every_configured_input_is_allowed_and_said():
    xml = generated({})
    allowed = security.allowed(xml)["policy_node"]["subscribe"]
    assert {"/camera/image_raw", "/sim_node/state"} <= allowed
    assert "checkpoint not readable here" in xml


def test_a_bad_override_is_one_line():
    result = subprocess.run([sys.executable, "-m", "actjepa_ros.security", "policy", "--params",
                             "config/policy.yaml", "-p", "output_topic:=x"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "expected <node>.<parameter>" in \
        result.stderr


# ---- docs/SECURITY.md's threat model --------------------------------------------------------
def documented() -> dict[str, set[str]]:
    """{node: names} from the endpoint column of SECURITY.md's threat-model table."""
    text = (REPO / "docs" / "SECURITY.md").read_text()
    out: dict[str, set[str]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].strip("`") in PARAMS:
            out.setdefault(cells[0].strip("`"), set()).update(
                re.findall(r"`(/[^`\s]*)`", cells[1]))
    return out


def every_option() -> dict[str, set[str]]:
    """Every name the nodes can expose with the shipped files and their options switched on:
    what the table may name beyond the running defaults."""
    options = {"policy_node": {"goal_topic": "goal", "goal_image_topic": "goal_image",
                               "subgoals_topic": "subgoals", "joint_states_key": "state",
                               "use_sim_time": True},
               "sim_node": {"image_size": 64, "cameras": ["corner4", "behindGripper"]},
               "recorder_node": {"episodes_file": "episodes.hdf5", "marker_topic": "marker"}}
    out = {}
    for ends in security.endpoints([REPO / p for p in PARAMS.values()], overrides=options):
        compressed = security.policy_node_endpoints(
            {**security.node_params([REPO / PARAMS["policy_node"]], "policy_node"),
             "image_transport": "compressed"}) if ends.node == "policy_node" else ends
        expert = security.sim_node_endpoints(
            {**security.node_params([REPO / PARAMS["sim_node"]], "sim_node"), "expert": True}) \
            if ends.node == "sim_node" else ends
        out[ends.node] = (ends.publish | ends.subscribe | ends.reply | compressed.subscribe
                          | expert.publish)
    return out


@pytest.mark.parametrize("node", list(PARAMS))
def test_security_md_covers_every_endpoint_of_the_running_node(ros, nodes, policy, node):
    table = documented()
    assert node in table, f"docs/SECURITY.md has no rows for {node}"
    seen = settled(ros, nodes, node, security.allowed(policy)[node])
    names = set().union(*seen.values())
    assert names <= table[node], f"{node}: not in SECURITY.md {sorted(names - table[node])}"
    possible = every_option()[node]
    assert table[node] <= possible, f"{node}: SECURITY.md names {sorted(table[node] - possible)}"
