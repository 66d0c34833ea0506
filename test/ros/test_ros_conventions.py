"""The package follows ROS 2 naming conventions, so it composes with other ROS software.

Node, parameter and launch-argument names are snake_case; default topic names are valid ROS names
(relative, so a launch namespace or a remapping moves them); each params file is keyed by the
node name it configures; every launch file takes the usual arguments (params_file, namespace,
use_sim_time, log_level) and hands --log-level to each node; the camera input follows
image_transport's naming (test_image_transport.py)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml
from rclpy.expand_topic_name import expand_topic_name
from rclpy.validate_full_topic_name import validate_full_topic_name
from rclpy.validate_node_name import validate_node_name

from actjepa_ros import policy_node, recorder_node, sim_node
from actjepa_ros.params import POLICY_PARAMS, RECORDER_PARAMS, SIM_PARAMS

REPO = Path(__file__).resolve().parents[2]
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
NODES = {policy_node.NODE_NAME: POLICY_PARAMS, sim_node.NODE_NAME: SIM_PARAMS,
         recorder_node.NODE_NAME: RECORDER_PARAMS}
PARAMS_FILES = {"policy.yaml": "policy_node", "ros2_control_arm.yaml": "policy_node",
                "policy_two_cameras_servo.yaml": "policy_node",
                "sim.yaml": "sim_node", "recorder.yaml": "recorder_node"}
LAUNCH_ARGUMENTS = {"params_file", "namespace", "use_sim_time", "log_level"}
ABSOLUTE_BY_CONVENTION = {"/clock", "/diagnostics"}  # global topics every ROS tool expects there


def test_node_names_are_valid_snake_case_and_match_the_executables():
    scripts = (REPO / "setup.py").read_text()
    for name in NODES:
        validate_node_name(name)
        assert SNAKE.match(name), name
        assert f"'{name} = actjepa_ros.{name}:main'" in scripts


@pytest.mark.parametrize("node", sorted(NODES))
def test_parameter_names_are_snake_case(node):
    bad = [s.name for s in NODES[node] if not SNAKE.match(s.name)]
    assert not bad, bad


@pytest.mark.parametrize("node", sorted(NODES))
def test_default_topics_are_valid_relative_names(node):
    """Topics are relative ('joint_states', '~/state'), so a launch namespace or a remapping moves
    them; only the ROS-wide ones are absolute."""
    topics = {s.name: s.default for s in NODES[node]
              if s.name.endswith("_topic") and isinstance(s.default, str) and s.default}
    topics.update({f"topics[{i}]": topic for spec in NODES[node] if spec.name == "topics"
                   for i, topic in enumerate(spec.default)})  # the recorder's list
    assert topics
    for name, topic in topics.items():
        validate_full_topic_name(expand_topic_name(topic, node, "/robot"))
        assert not topic.startswith("/") or topic in ABSOLUTE_BY_CONVENTION, (name, topic)


@pytest.mark.parametrize("name", sorted(PARAMS_FILES))
def test_params_files_are_keyed_by_the_node_name(name):
    content = yaml.safe_load((REPO / "config" / name).read_text())
    node = PARAMS_FILES[name]
    assert f"/**/{node}" in content and "ros__parameters" in content[f"/**/{node}"]


def launch_calls(path: Path, name: str) -> list[ast.Call]:
    tree = ast.parse(path.read_text())
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, "id", getattr(n.func, "attr", None)) == name]


@pytest.mark.parametrize("path", sorted((REPO / "launch").glob("*.launch.py")),
                         ids=lambda p: p.name)
def test_launch_files_take_the_usual_arguments_and_pass_the_log_level(path):
    declared = {c.args[0].value: c for c in launch_calls(path, "DeclareLaunchArgument")}
    assert LAUNCH_ARGUMENTS <= set(declared), LAUNCH_ARGUMENTS - set(declared)
    for name, call in declared.items():
        assert SNAKE.match(name), name
        assert any(k.arg == "description" for k in call.keywords), f"{name}: no description"
    nodes = launch_calls(path, "Node") + launch_calls(path, "LifecycleNode")
    assert nodes
    for node in nodes:
        arguments = next((k.value for k in node.keywords if k.arg == "arguments"), None)
        assert getattr(arguments, "id", None) == "LOG_LEVEL", ast.unparse(node)[:80]
    source = path.read_text()
    assert "LOG_LEVEL = ['--ros-args', '--log-level', LaunchConfiguration('log_level')]" in source
