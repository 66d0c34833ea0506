"""The launch files (launch/*.launch.py), checked without launch_ros (it ships with ROS installs
only): they parse, define generate_launch_description, declare the documented arguments, use
only arguments they declare, start executables setup.py installs, pass parameter names the nodes
declare, and point at params files that exist in config/."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from actjepa_ros.params import POLICY_PARAMS, RECORDER_PARAMS, SIM_PARAMS

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))
COMMON_ARGUMENTS = {"params_file", "namespace", "use_sim_time", "log_level"}
POLICY_ARGUMENTS = {"checkpoint", "policy_type"}  # launch files that start policy_node
NODE_PARAMS = {"policy_node": {s.name for s in POLICY_PARAMS} | {"use_sim_time"},
               "sim_node": {s.name for s in SIM_PARAMS} | {"use_sim_time"},
               "recorder_node": {s.name for s in RECORDER_PARAMS} | {"use_sim_time"}}
NODE_ACTIONS = {"Node", "LifecycleNode"}


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, "id", getattr(n.func, "attr", None)) == name]


def first_string(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant):
        return call.args[0].value
    return None


def keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def console_scripts() -> dict[str, str]:
    tree = ast.parse((REPO / "setup.py").read_text())
    setup = calls(tree, "setup")[0]
    entry_points = ast.literal_eval(keyword(setup, "entry_points"))
    return dict((part.strip() for part in spec.split("="))
                for spec in entry_points["console_scripts"])


def test_the_launch_files_exist():
    assert {p.name for p in LAUNCH_FILES} == {"policy.launch.py", "record.launch.py",
                                              "sim.launch.py"}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_declares_and_uses_consistent_arguments(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    declared = {first_string(c) for c in calls(tree, "DeclareLaunchArgument")}
    starts_policy = any(getattr(keyword(c, "executable"), "value", None) == "policy_node"
                        for name in NODE_ACTIONS for c in calls(tree, name))
    required = COMMON_ARGUMENTS | (POLICY_ARGUMENTS if starts_policy else set())
    assert required <= declared, required - declared
    used = {first_string(c) for c in calls(tree, "LaunchConfiguration")}
    assert used <= declared, f"undeclared launch arguments: {used - declared}"
    assert declared <= used, f"declared but unused: {declared - used}"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_starts_installed_executables_with_real_parameters(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    scripts = console_scripts()
    nodes = [c for name in NODE_ACTIONS for c in calls(tree, name)]
    assert nodes
    packages = {n.value.value for n in tree.body if isinstance(n, ast.Assign)
                and getattr(n.targets[0], "id", None) == "PACKAGE"}
    assert packages == {"actjepa_ros"}
    for node in nodes:
        assert getattr(keyword(node, "package"), "id", None) == "PACKAGE"
        executable = keyword(node, "executable").value
        assert executable in scripts, f"{executable} is not a console script in setup.py"
        assert keyword(node, "name").value == executable
        for entry in keyword(node, "parameters").elts:
            if isinstance(entry, ast.Dict):
                names = {k.value for k in entry.keys}
                unknown = names - NODE_PARAMS[executable]
                assert not unknown, f"{executable} declares no parameter(s) {unknown}"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_default_params_files_exist(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    yamls = [n.value for n in ast.walk(tree)
             if isinstance(n, ast.Constant) and isinstance(n.value, str)
             and n.value.endswith(".yaml")]
    assert yamls
    for name in yamls:
        assert (REPO / "config" / name).is_file(), f"config/{name} is missing"


def declared_arguments(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {first_string(c) for c in calls(tree, "DeclareLaunchArgument")}


def test_the_simulator_launch_includes_the_policy_launch():
    """sim.launch.py starts the sim node and includes policy.launch.py for the policy node (one
    policy node block to keep right), handing it only arguments policy.launch.py declares."""
    path = REPO / "launch" / "sim.launch.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    executables = [keyword(c, "executable").value for name in NODE_ACTIONS
                   for c in calls(tree, name)]
    assert executables == ["sim_node"]
    [include] = calls(tree, "IncludeLaunchDescription")
    source = ast.unparse(include.args[0])
    assert "'launch'" in source and "'policy.launch.py'" in source
    handed = keyword(include, "launch_arguments").func.value  # {...}.items()
    names = {k.value for k in handed.keys}
    policy_arguments = declared_arguments(REPO / "launch" / "policy.launch.py")
    assert names <= policy_arguments, names - policy_arguments
    assert POLICY_ARGUMENTS <= names


# ---- params files ---------------------------------------------------------------------------
PARAMS_FILES = {"policy.yaml": "policy_node", "ros2_control_arm.yaml": "policy_node",
                "policy_two_cameras_servo.yaml": "policy_node",
                "sim.yaml": "sim_node", "recorder.yaml": "recorder_node"}
SPECS = {"policy_node": {s.name: s for s in POLICY_PARAMS},
         "sim_node": {s.name: s for s in SIM_PARAMS},
         "recorder_node": {s.name: s for s in RECORDER_PARAMS}}
EXTRA_ENTRIES = {"/**/actjepa_convert"}  # recorder.yaml also holds the `actjepa convert` config


def python_type(value) -> type:
    return type(value[0]) if isinstance(value, list) and value else type(value)


@pytest.mark.parametrize("name", sorted(PARAMS_FILES))
def test_params_files_set_only_declared_parameters_with_their_types(name):
    """A typo or an int where a float is declared would stop the node at start: catch it here.
    The files use the ROS layout: a node-name key (with wildcard namespace) -> ros__parameters."""
    import yaml

    node = PARAMS_FILES[name]
    content = yaml.safe_load((REPO / "config" / name).read_text())
    assert list(content)[0] == f"/**/{node}" and set(list(content)[1:]) <= EXTRA_ENTRIES
    values = content[f"/**/{node}"]["ros__parameters"]
    specs = SPECS[node]
    assert set(values) <= set(specs), set(values) - set(specs)
    for key, value in values.items():
        spec = specs[key]
        expected = spec.items or python_type(spec.default)
        if isinstance(spec.default, (list, tuple)):
            assert isinstance(value, list) and all(isinstance(v, expected) for v in value), key
        else:
            assert type(value) is expected, f"{key}: {value!r} is not a {expected.__name__}"
        if spec.choices:
            assert value in spec.choices, key
        if spec.low is not None:
            assert spec.low <= value <= spec.high, key


def test_the_simulator_pair_is_wired_together():
    """config/policy.yaml drives config/sim.yaml out of the box: same topics, lock-step."""
    import yaml

    policy = yaml.safe_load((REPO / "config" / "policy.yaml").read_text())
    sim = yaml.safe_load((REPO / "config" / "sim.yaml").read_text())
    policy = policy["/**/policy_node"]["ros__parameters"]
    sim = sim["/**/sim_node"]["ros__parameters"]
    assert policy["mode"] == sim["mode"] == "lockstep"
    assert sim["state_topic"] == "~/state" and policy["state_topic"] == "sim_node/state"
    assert sim["action_topic"] == "~/action" and policy["output_topic"] == "sim_node/action"
    assert policy["image_topic"] == sim["image_topic"]
