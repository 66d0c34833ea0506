"""ROS_AUTOMATIC_DISCOVERY_RANGE, proven (issue 28): two network namespaces made by the test (a
veth pair between them, 10.231.0.1/30 and 10.231.0.2/30 on its two ends and nothing else: no route
out, multicast only over the pair), a listener in the first, a publisher in the second. With the
SUBNET range the message crosses; with LOCALHOST (the launch files' default) it does not.

Real rclpy over real Fast DDS in separate processes; traffic only on the veth pair; both namespaces
are removed in a finally. Where the machine refuses network namespaces (not root, no
CAP_SYS_ADMIN, a container without them) the test skips and says so.
"""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from typing import Iterator

import pytest

from actjepa_ros.tools import processes

from ros_harness import REPO, domain_id

DOMAIN = domain_id(module_offset=43)
TOPIC = "/actjepa_discovery_probe"
SUBNET_WAIT_S = 20.0  # discovery over the pair takes ~1-3 s; generous on a busy machine
LOCALHOST_WAIT_S = 6.0  # how long "nothing arrives" is watched
ADDRESSES = ("10.231.0.1/30", "10.231.0.2/30")

LISTENER = """
import sys, rclpy
from std_msgs.msg import String
rclpy.init()
node = rclpy.create_node("listener")
got = []
node.create_subscription(String, sys.argv[1], got.append, 10)
deadline = node.get_clock().now().nanoseconds + int(float(sys.argv[2]) * 1e9)
while not got and node.get_clock().now().nanoseconds < deadline:
    rclpy.spin_once(node, timeout_sec=0.1)
print("received: " + got[0].data if got else "nothing received", flush=True)
sys.exit(0 if got else 1)
"""
TALKER = """
import sys, rclpy
from std_msgs.msg import String
rclpy.init()
node = rclpy.create_node("talker")
pub = node.create_publisher(String, sys.argv[1], 10)
node.create_timer(0.2, lambda: pub.publish(String(data="from the other namespace")))
rclpy.spin(node)
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


def namespaces_refused() -> str | None:
    """Why this machine cannot run the test (None if it can): tries to add a namespace."""
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2) on this machine"
    probe = f"actjepa-probe-{os.getpid()}"
    result = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True,
                            timeout=10)
    if result.returncode != 0:
        return f"`ip netns add` refused here: {result.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True, timeout=10)
    return None


@contextmanager
def veth_pair() -> Iterator[tuple[str, str]]:
    """Two namespaces joined by a veth pair, addressed and up; removed afterwards."""
    names = (f"actjepa{os.getpid()}a", f"actjepa{os.getpid()}b")
    ends = (f"vaj{os.getpid() % 100000}a", f"vaj{os.getpid() % 100000}b")
    try:
        for ns in names:
            ip("netns", "add", ns)
        ip("link", "add", ends[0], "netns", names[0], "type", "veth",
           "peer", "name", ends[1], "netns", names[1])
        for ns, end, address in zip(names, ends, ADDRESSES):
            ip("-n", ns, "addr", "add", address, "dev", end)
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "link", "set", end, "up")
            # DDS discovery is multicast: it may leave only through the pair
            ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", end)
        yield names
    finally:
        for ns in names:  # deleting a namespace deletes its end of the pair, and so the pair
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, timeout=10)


def ros_env(discovery_range: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ROS_LOCALHOST_ONLY"}
    env.update(ROS_DOMAIN_ID=str(DOMAIN), ROS_AUTOMATIC_DISCOVERY_RANGE=discovery_range,
               PYTHONUNBUFFERED="1", RCUTILS_LOGGING_BUFFERED_STREAM="0")
    return env


def crosses(namespaces: tuple[str, str], discovery_range: str, wait_s: float) -> bool:
    """Whether the talker's message in the second namespace reaches the listener in the first."""
    env = ros_env(discovery_range)
    talker = subprocess.Popen(["ip", "netns", "exec", namespaces[1], sys.executable, "-c", TALKER,
                               TOPIC], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        listener = subprocess.run(["ip", "netns", "exec", namespaces[0], sys.executable, "-c",
                                   LISTENER, TOPIC, str(wait_s)], env=env, capture_output=True,
                                  text=True, timeout=wait_s + 60)
    finally:
        talker.terminate()
        talker.wait(10)
    assert listener.returncode in (0, 1), listener.stderr[-2000:]
    return listener.returncode == 0


def test_subnet_discovery_crosses_the_veth_pair_and_localhost_does_not():
    refused = namespaces_refused()
    if refused:
        pytest.skip(refused)
    with veth_pair() as namespaces:
        assert crosses(namespaces, "SUBNET", SUBNET_WAIT_S), "SUBNET: nothing crossed the pair"
        assert not crosses(namespaces, "LOCALHOST", LOCALHOST_WAIT_S), \
            "LOCALHOST: a message from another host's address arrived"


# ---- the defaults that use it ---------------------------------------------------------------
def call_args(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, "id", getattr(n.func, "attr", None)) == name]


@pytest.mark.parametrize("path", sorted((REPO / "launch").glob("*.launch.py")),
                         ids=lambda p: p.name)
def test_launch_files_default_to_localhost_discovery_and_an_argument_opens_it(path):
    tree = ast.parse(path.read_text())
    argument = next(c for c in call_args(tree, "DeclareLaunchArgument")
                    if c.args[0].value == "discovery_range")
    default = next(k.value.value for k in argument.keywords if k.arg == "default_value")
    assert default == "LOCALHOST"
    variables = {c.args[0].value for c in call_args(tree, "SetEnvironmentVariable")}
    assert {"ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOCALHOST_ONLY"} <= variables
    returned = ast.unparse(next(n for n in ast.walk(tree) if isinstance(n, ast.Return)
                                and "LaunchDescription" in ast.unparse(n)))
    assert "*discovery_range_environment()" in returned  # the actions are in the description


def test_the_demo_and_the_tools_start_nodes_with_localhost_discovery():
    """``make demo`` (actjepa_ros.tools.demo -> closed_loop) starts its nodes with this env."""
    env = processes.ros_env(DOMAIN)
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST" and env["ROS_LOCALHOST_ONLY"] == "1"
