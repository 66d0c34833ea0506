"""Progress output: a live bar on a terminal, one plain line per N% anywhere else."""
import io
import subprocess
import sys
from pathlib import Path

import pytest

from actjepa_core import progress
from actjepa_core.progress import LineProgress, progress_bar

PACKAGE = Path(progress.__file__).parent


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(autouse=True)
def no_mode_override(monkeypatch):
    monkeypatch.delenv(progress.MODE_ENV, raising=False)


def run_bar(stream, total=200, **kwargs):
    with progress_bar(total=total, desc="train", file=stream, mininterval=0, **kwargs) as bar:
        for i in range(total):
            bar.update(1)
            bar.set_postfix(loss=f"{1 / (i + 1):.3g}")
    return stream.getvalue()


def test_not_a_terminal_gives_one_line_per_ten_percent():
    out = run_bar(io.StringIO())
    assert "\r" not in out and "\x1b" not in out  # no redraws, no cursor movement
    lines = out.splitlines()
    percents = [int(line.split("%")[0].split()[-1]) for line in lines]
    assert percents == list(range(0, 101, 10))  # start, each 10%, and the end
    assert lines[-1].startswith("train: 100%") and "200/200" in lines[-1]


def test_every_percent_and_the_final_count_when_stopped_early():
    stream = io.StringIO()
    with progress_bar(total=1000, desc="eval", file=stream, mininterval=0,
                      every_percent=25) as bar:
        for _ in range(600):
            bar.update(1)
    percents = [int(line.split("%")[0].split()[-1]) for line in stream.getvalue().splitlines()]
    assert percents == [0, 25, 50, 60]  # an interrupted loop still reports where it stopped


def test_a_terminal_gets_tqdms_live_bar():
    out = run_bar(Terminal())
    assert out.count("\r") > 10  # redrawn in place
    assert not isinstance(progress_bar(total=1, file=Terminal()), LineProgress)


def test_environment_overrides_the_choice(monkeypatch):
    monkeypatch.setenv(progress.MODE_ENV, "lines")
    assert "\r" not in run_bar(Terminal())
    monkeypatch.setenv(progress.MODE_ENV, "bar")
    assert "\r" in run_bar(io.StringIO())


def test_messages_written_beside_the_bar_stay_whole_lines():
    stream = io.StringIO()
    with progress_bar(total=4, desc="paper", file=stream) as bar:
        bar.write("4 units to run", file=stream)
        bar.update(4)
    assert "\r" not in stream.getvalue()
    assert "4 units to run\n" in stream.getvalue()


def test_disabled_bar_writes_nothing():
    stream = io.StringIO()
    with progress_bar(total=10, file=stream, disable=True) as bar:
        bar.update(10)
    assert stream.getvalue() == ""


def test_every_progress_bar_in_the_package_goes_through_the_helper():
    direct = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
              if path.name != "progress.py" and "tqdm" in path.read_text()]
    assert direct == []


def test_collect_logs_plain_lines_when_piped(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "actjepa_core.cli", "collect", "--task",
                           "reach-v3", "--episodes", "2", "--out", str(tmp_path / "r.hdf5")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    assert "reach-v3: 100%" in proc.stderr and "2/2" in proc.stderr
