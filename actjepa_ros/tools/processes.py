"""Nodes as separate processes on a private ROS domain, and a client node to talk to them.

Used by the closed-loop runner (`make demo`) and the tests: each node starts as
``python -m <module> --ros-args ...`` (as on a machine without ``ros2 launch``), discovery stays on
localhost, and the client has its own rclpy Context so it never touches the global one.
"""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

STOP_TIMEOUT_S = 10.0
SPIN_STEP_S = 0.02
# private ROS domains for tools (the tests use 100..149); Fast DDS accepts ids up to 232
TOOL_DOMAINS = range(150, 230)
_claimed: list[Any] = []  # open lock files: a claimed domain stays ours until the process exits


def claim_domain(domains: range = TOOL_DOMAINS) -> int:
    """A ROS domain id no other running actjepa tool holds (an flock per id), so two closed
    loops or benchmarks started side by side never hear each other's nodes."""
    start = os.getpid() % len(domains)
    for i in range(len(domains)):
        domain = domains[(start + i) % len(domains)]
        lock = open(Path(tempfile.gettempdir()) / f"actjepa-ros-domain-{domain}.lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        _claimed.append(lock)
        return domain
    raise RuntimeError(f"every ROS domain in {domains.start}..{domains.stop - 1} is held by "
                       "another actjepa tool")


def ros_env(domain: int) -> dict[str, str]:
    """The environment for node processes: our domain, localhost discovery, unbuffered logs."""
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain), ROS_LOCALHOST_ONLY="1",
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1",
               RCUTILS_LOGGING_BUFFERED_STREAM="0", RCUTILS_COLORIZED_OUTPUT="0")
    return env


class NodeProcess:
    """A node started as ``python -m <module> --ros-args ...``, logging to a file."""

    def __init__(self, module: str, ros_args: list[str], log_path: Path, domain: int,
                 cwd: Path | None = None) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", module, "--ros-args", *ros_args],
                                     cwd=cwd, env=ros_env(domain), stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM (rclpy shuts down cleanly), then SIGKILL if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT_S)
        self._log.close()


class RosClient:
    """A client node in its own rclpy Context: subscribe, publish, call services, spin until
    something happens. Used by tests and by the closed-loop runner."""

    def __init__(self, domain: int, name: str = "tester") -> None:
        os.environ.update(ROS_LOCALHOST_ONLY="1", ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def collect(self, msg_type: type, topic: str, depth: int = 100) -> list[Any]:
        """Every message on ``topic`` from now on (reliable subscription, matches anything)."""
        received: list[Any] = []
        self.node.create_subscription(msg_type, topic, received.append,
                                      QoSProfile(depth=depth,
                                                 reliability=ReliabilityPolicy.RELIABLE))
        return received

    def publisher(self, msg_type: type, topic: str) -> Any:
        return self.node.create_publisher(
            msg_type, topic, QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))

    def spin_until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        """Process callbacks until ``done()`` or the timeout; returns ``done()``."""
        deadline = time.monotonic() + timeout_s
        while not done() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=SPIN_STEP_S)
        return done()

    def spin_for(self, seconds: float) -> None:
        self.spin_until(lambda: False, seconds)

    def wait_for_subscribers(self, publisher: Any, timeout_s: float, count: int = 1) -> bool:
        return self.spin_until(lambda: publisher.get_subscription_count() >= count, timeout_s)

    def call(self, srv_type: type, name: str, request: Any, timeout_s: float = 20.0) -> Any:
        """Call a service and wait for the answer (TimeoutError if none comes)."""
        client = self.node.create_client(srv_type, name)
        try:
            if not self.spin_until(client.service_is_ready, timeout_s):
                raise TimeoutError(f"service {name}: not available after {timeout_s} s")
            future = client.call_async(request)
            if not self.spin_until(future.done, timeout_s):
                raise TimeoutError(f"service {name}: no answer after {timeout_s} s")
            return future.result()
        finally:
            self.node.destroy_client(client)
