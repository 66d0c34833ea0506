"""Checkpoints that are not checkpoints (random bytes, damaged archives, pickles that would run
code): configure fails in one line and nothing in the file is run.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lifecycle_msgs.msg import Transition
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter

from actjepa_core.errors import ActJepaError
from actjepa_core.policies import load_policy
from actjepa_ros import safety

from policy_faults import (
    NODE,
    Feed,
    lifecycle,
)


# ---- checkpoints that are not checkpoints ------------------------------------------------------
class RunsCode:
    """Unpickling this runs a shell command (what a malicious checkpoint would do)."""

    def __init__(self, marker: Path, how: str) -> None:
        self.marker, self.how = marker, how

    def __reduce__(self):
        if self.how == "eval":
            return eval, (f"open({str(self.marker)!r}, 'w').close()",)
        return os.system, (f"touch {self.marker}",)


def hostile_checkpoint(data, folder: Path, marker: Path, valid: bytes) -> tuple[str, bytes]:
    kind = data.draw(st.sampled_from(["random", "pickle", "torch-zip", "truncated", "flipped",
                                      "empty"]))
    if kind == "random":
        return kind, data.draw(st.binary(min_size=1, max_size=4096))
    if kind == "empty":
        return kind, b""
    if kind == "pickle":
        protocol = data.draw(st.integers(0, pickle.HIGHEST_PROTOCOL))
        how = data.draw(st.sampled_from(["system", "eval"]))
        return kind, pickle.dumps({"format": "actjepa", "x": RunsCode(marker, how)}, protocol)
    if kind == "torch-zip":
        path = folder / "evil.pt"
        torch.save({"format": "actjepa", "kind": "policy",
                    "world": RunsCode(marker, data.draw(st.sampled_from(["system", "eval"])))},
                   path)
        return kind, path.read_bytes()
    if kind == "truncated":
        return kind, valid[:data.draw(st.integers(0, len(valid) - 1))]
    flipped = bytearray(valid)
    at = data.draw(st.integers(0, len(valid) - 1))
    flipped[at] ^= data.draw(st.integers(1, 255))
    return kind, bytes(flipped)


def same_content(a: Path, b: Path) -> bool:
    """Whether two checkpoint files hold equal tensors and values (a flip in zip padding)."""
    def equal(x, y) -> bool:
        if isinstance(x, torch.Tensor):
            return isinstance(y, torch.Tensor) and torch.equal(x, y)
        if isinstance(x, dict):
            return isinstance(y, dict) and x.keys() == y.keys() and all(
                equal(x[k], y[k]) for k in x)
        if isinstance(x, (list, tuple)):
            return type(x) is type(y) and len(x) == len(y) and all(map(equal, x, y))
        return x == y

    return equal(torch.load(a, weights_only=True), torch.load(b, weights_only=True))


def test_fuzz_hostile_checkpoints_never_run_code_and_fail_in_one_line(tmp_path, policy_files):
    """Random bytes, pickles that run code (raw, any protocol, or inside a torch.save zip),
    truncated policy files and ones with a flipped byte, loaded as the node loads them
    (``safety.check_archive``, then ``load_policy``): refused with one line, never a traceback,
    never the code run, never a changed policy loaded (was: a flipped byte in the weights
    loaded silently; torch.load does not check the archive's CRCs)."""
    valid = policy_files["flip"].read_bytes()
    marker = tmp_path / "code-ran"
    kinds: dict = {}

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.data())
    def case(data):
        kind, content = hostile_checkpoint(data, tmp_path, marker, valid)
        kinds[kind] = kinds.get(kind, 0) + 1
        path = tmp_path / "policy.pt"
        path.write_bytes(content)
        try:
            safety.check_archive(path)
            load_policy(path)
        except ActJepaError as err:
            assert "\n" not in str(err) and str(path) in str(err), str(err)
        else:
            assert kind == "flipped", f"a {kind} checkpoint loaded"
            assert same_content(path, policy_files["flip"]), "a damaged checkpoint loaded"
            kinds["flipped, harmless"] = kinds.get("flipped, harmless", 0) + 1
        assert not marker.exists(), f"a {kind} checkpoint ran code"

    case()
    print(f"checkpoint fuzz cases by kind: {kinds}")


def test_a_checkpoint_that_would_run_code_fails_configure_and_runs_nothing(feed, tmp_path,
                                                                         restore):
    marker = tmp_path / "code-ran"
    evil = Path(feed_checkpoint(feed)).with_name("evil.pt")  # inside checkpoint_dirs
    torch.save({"format": "actjepa", "kind": "policy", "x": RunsCode(marker, "system")}, evil)
    assert lifecycle(feed.ros, Transition.TRANSITION_DEACTIVATE)
    assert lifecycle(feed.ros, Transition.TRANSITION_CLEANUP)
    request = SetParameters.Request(parameters=[
        Parameter("checkpoint", value=str(evil)).to_parameter_msg()])
    assert feed.ros.call(SetParameters, f"{NODE}/set_parameters", request).results[0].successful
    assert not lifecycle(feed.ros, Transition.TRANSITION_CONFIGURE)
    log = feed.node.log()
    assert "refused: a pickle of Python objects that would import" in log, log[-2000:]
    assert feed.node.proc.alive() and not marker.exists() and "Traceback" not in log
    assert lifecycle(feed.ros, Transition.TRANSITION_CONFIGURE) is False  # still refused
    request = SetParameters.Request(parameters=[
        Parameter("checkpoint", value=str(feed_checkpoint(feed))).to_parameter_msg()])
    assert feed.ros.call(SetParameters, f"{NODE}/set_parameters", request).results[0].successful
    assert lifecycle(feed.ros, Transition.TRANSITION_CONFIGURE)
    assert lifecycle(feed.ros, Transition.TRANSITION_ACTIVATE)


def feed_checkpoint(feed: Feed) -> str:
    args = feed.node.args
    return next(a.split(":=", 1)[1] for a in args if a.startswith("checkpoint:="))


