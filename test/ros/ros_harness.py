"""Helpers for tests that run real nodes in separate processes over real DDS (loopback only).

Each test module picks its own ROS domain (from the pytest process id and a per-module offset),
so concurrent test runs on one machine do not hear each other; discovery stays on localhost. The
process and client helpers themselves live in the package (actjepa_ros/tools/processes.py).
"""
from __future__ import annotations

import os
from pathlib import Path

from actjepa_ros.tools.processes import NodeProcess as _NodeProcess
from actjepa_ros.tools.processes import RosClient, ros_env  # noqa: F401  (re-exported for the tests)

REPO = Path(__file__).resolve().parents[2]
DOMAIN_BASE, DOMAIN_SPAN = 100, 50  # Fast DDS accepts domain ids up to 232


def domain_id(module_offset: int) -> int:
    """A domain for one test module of this pytest process (offsets 0..DOMAIN_SPAN-1)."""
    return DOMAIN_BASE + (os.getpid() + module_offset) % DOMAIN_SPAN


class NodeProcess(_NodeProcess):
    """A node process started in the repository root."""

    def __init__(self, module, ros_args, log_path, domain):
        super().__init__(module, ros_args, log_path, domain, cwd=REPO)
