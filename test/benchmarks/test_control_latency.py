"""benchmarks/control_latency.py: one run builds tiny real policies (reach-v3 demos, a few training
steps), measures every row and rewrites its block in place; a second run builds nothing. Tiny
sample counts on a shared machine: the block's rows are checked, not the figures."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.sim]  # policy_node processes over DDS; MuJoCo demos

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "control_latency.py"
START, END = "<!-- bench:control-latency:start -->", "<!-- bench:control-latency:end -->"
MPC = "state MPC, CEM 256 samples x horizon 10 x 3 iterations"
ROWS = {  # (policy, path) -> target cell; None: a row with no target
    ("state BC (39-d Float64MultiArray)", "over DDS, policy_node process"): "p99 < 5 ms",
    ("64x64 image BC (rgb8 Image)", "over DDS, policy_node process"): "p99 < 15 ms",
    (MPC, "`act()` in process"): "p99 < 25 ms",
    (MPC, "over DDS, policy_node process"): None,
}
SAMPLES = 5
TINY = ["--episodes", "1", "--max-steps", "20", "--steps", "2"]


def run(*args: str) -> str:
    done = subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=280)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def table_rows(block: str) -> dict[tuple[str, str], list[str]]:
    """The block's table rows (header and rule left out), by (policy, path)."""
    cells = [[c.strip() for c in line.strip().strip("|").split("|")]
             for line in block.splitlines() if line.startswith("| ")]
    assert cells and cells[0][:3] == ["policy", "path", "samples"], block
    return {(row[0], row[1]): row for row in cells[1:]}


def test_one_run_measures_every_row_against_its_target_and_rewrites_its_block(tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text(f"# Benchmarks\n\nhand-written intro\n\n{START}\nnot measured yet\n{END}\n\n"
                   "## Later section\n")
    work = str(tmp_path / "work")
    out = run("--work", work, "--out", str(doc), "--samples", str(SAMPLES), "--warmup", "2",
              *TINY)
    assert "+ actjepa collect" in out and "+ actjepa train-policy mpc" in out
    text = doc.read_text()
    assert text.count(START) == text.count(END) == 1
    assert text.startswith("# Benchmarks\n\nhand-written intro\n") and "## Later section" in text
    block = text.split(START)[1].split(END)[0]
    assert "not measured yet" not in block
    assert "torch thread" in block and "torch 2" in block and "Load average" in block
    rows = table_rows(block)
    assert set(rows) == set(ROWS), f"rows {sorted(rows)}, expected {sorted(ROWS)}"
    for key, target in ROWS.items():
        _, _, samples, p50, p90, p99, largest, _, target_cell, met = rows[key]
        assert samples == str(SAMPLES)
        p50, p90, p99, largest = (float(c.removesuffix(" ms")) for c in (p50, p90, p99, largest))
        assert 0 < p50 <= p90 <= p99 <= largest
        if target is None:
            assert target_cell == "-" and met.startswith("-")
        else:
            assert target_cell == target and met in ("pass", "**FAIL**")
            assert (met == "pass") == (p99 < float(target.split()[2]))
    # built once: a second run finds every policy in --work
    again = run("--work", work, "--build-only", *TINY)
    assert "+ actjepa" not in again and again.startswith("built in")
