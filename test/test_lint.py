"""The package's lint test (ament packages ship one): `ruff check` with the rules in ruff.toml
(pyflakes, pycodestyle at 100 columns, import order, bugbear) over every Python file in the
repository: actjepa_core, actjepa_ros, test, benchmarks, scripts, launch."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache",
                           "--output-format", "concise", "--config",
                           str(ROOT / "ruff.toml"), str(ROOT)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
