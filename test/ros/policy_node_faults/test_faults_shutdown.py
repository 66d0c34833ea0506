"""Every node keeps its last log lines on SIGINT/SIGTERM.
"""
from __future__ import annotations

import signal

import pytest
from rcl_interfaces.msg import Log
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from policy_faults import (
    REPLY_TIMEOUT_S,
    START_TIMEOUT_S,
    node_args,
)
from ros_harness import NodeProcess, RosClient, domain_id

# ---- every node keeps its last log lines on SIGINT/SIGTERM ------------------------------------
SHUTDOWN_DOMAIN = domain_id(module_offset=12)


@pytest.mark.parametrize("module, sig", [("actjepa_ros.sim_node", signal.SIGINT),
                                         ("actjepa_ros.policy_node", signal.SIGTERM)],
                         ids=["sim_node-SIGINT", "policy_node-SIGTERM"])
def test_nodes_keep_their_last_log_lines_on_a_stop_signal(policy_files, tmp_path, module, sig):
    """spin.spin_node stops the spin loop on the signal and logs while ROS still runs: the
    "<signal>: shutting down" line reaches /rosout, and no "Failed to publish log message to
    rosout: publisher's context is invalid"."""
    ros = RosClient(SHUTDOWN_DOMAIN)
    rosout: list[Log] = []
    ros.node.create_subscription(Log, "/rosout", rosout.append, QoSProfile(
        depth=1000, reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL))
    args = (["--params-file", "config/sim.yaml"] if module.endswith("sim_node")
            else node_args(policy_files["flip"]))
    proc = NodeProcess(module, args, tmp_path / "node.log", SHUTDOWN_DOMAIN)
    name = module.rsplit(".", 1)[1]
    ready = "started" if name == "sim_node" else "active: commanding"
    try:
        assert ros.spin_until(lambda: any(ready in m.msg for m in rosout) and any(
            m.name == name for m in rosout), START_TIMEOUT_S), proc.log()
        proc.proc.send_signal(sig)
        assert proc.proc.wait(REPLY_TIMEOUT_S) == 0, proc.log()
        line = f"{signal.Signals(sig).name}: shutting down"
        assert ros.spin_until(lambda: any(line in m.msg for m in rosout), 5.0), \
            (proc.log(), [m.msg for m in rosout])
        log = proc.log()
        assert "Failed to publish" not in log and "context is invalid" not in log, log
        assert "Traceback" not in log, log
    finally:
        proc.stop()
        ros.close()
