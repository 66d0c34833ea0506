import json

import pytest

from actjepa_core.errors import ActJepaError
from actjepa_core.evaluation.results import read_rows, success_table


def row(kind, task, successes, noise=0.0):
    return {"type": kind, "task": task, "noise": noise, "episodes": 50, "successes": successes,
            "success": successes / 50, "ci_low": 0.1, "ci_high": 0.9}


def test_table_shows_latest_cells_beside_the_paper_row(tmp_path):
    path = tmp_path / "r.jsonl"
    rows = [row("bc", "push-v3", 10), row("bc", "push-v3", 37), row("expert", "reach-v3", 50),
            row("bc", "reach-v3", 28), row("bc", "reach-v3", 5, noise=0.1)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    table = success_table(read_rows(path))
    lines = table.splitlines()
    assert lines[0] == "| method | reach-v3 | push-v3 |"
    assert "92.4%" in lines[2] and "74.6%" in lines[2]
    bc = next(line for line in lines if line.startswith("| ACT-JEPA + BC (ours)"))
    assert "(28/50" in bc and "(37/50" in bc and "(10/50" not in bc
    expert = next(line for line in lines if "expert" in line)
    assert "not run" in expert  # no push-v3 expert row given
    assert "(5/50" in success_table(read_rows(path), noise=0.1)


def test_bad_results_file(tmp_path):
    with pytest.raises(ActJepaError, match="not found"):
        read_rows(tmp_path / "none.jsonl")
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\nnot json\n')
    with pytest.raises(ActJepaError, match="bad.jsonl:2"):
        read_rows(tmp_path / "bad.jsonl")


def test_variants_get_their_own_row(tmp_path):
    path = tmp_path / "r.jsonl"
    rows = [row("bc", "reach-v3", 28), {**row("bc", "reach-v3", 41), "variant": "chunk 10"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    lines = success_table(read_rows(path)).splitlines()
    assert any(line.startswith("| ACT-JEPA + BC (ours) |") and "(28/50" in line for line in lines)
    assert any(line.startswith("| ACT-JEPA + BC, chunk 10 (ours) |") and "(41/50" in line
               for line in lines)


def test_noise_table_averages_over_tasks_beside_the_paper(tmp_path):
    from actjepa_core.evaluation.results import noise_table

    rows = [row("bc", "reach-v3", 40), row("bc", "push-v3", 30),
            row("bc", "reach-v3", 20, noise=0.1), row("bc", "push-v3", 10, noise=0.1),
            row("nn", "reach-v3", 50)]
    lines = noise_table(rows, "bc").splitlines()
    assert lines[0] == "| task | clean | sigma = 0.1 |"
    assert "| average (ACT-JEPA + BC (ours)) | 70.0% | 30.0% |" in lines
    assert lines[-1] == "| paper §9 average, ACT-JEPA + BC | 75.3% | 64.2% |"
