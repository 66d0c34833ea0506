"""The paper study's two tools: merge_cells brings home the cells a GPU machine measured without
rewriting a committed line; render_diff measures how far two renderings of the same demos are."""
from __future__ import annotations

import json

import numpy as np

from actjepa_core.data.episodes import Episode, read_episodes, write_episodes
from experiments.paper import merge_cells, render_diff


def cell(method: str, sigma: float, success: float) -> dict:
    return {"obs": "image", "task": "reach-v3", "method": method, "demos": 100, "seed": 0,
            "sigma": sigma, "success": success}


def write_lines(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_merge_cells_appends_only_new_cells_and_is_idempotent(tmp_path, capsys):
    here, there = tmp_path / "here.jsonl", tmp_path / "there.jsonl"
    write_lines(here, [cell("act-jepa", 0.0, 0.5)])
    # the other machine's copy: the committed cell (re-measured differently), two new ones, and
    # one of them twice
    write_lines(there, [cell("act-jepa", 0.0, 0.9), cell("raw", 0.0, 0.7),
                        cell("raw", 0.1, 0.6), cell("raw", 0.1, 0.1)])
    before = here.read_text()
    assert merge_cells.main([str(here), str(there)]) == 0
    assert "2 new cells appended" in capsys.readouterr().out
    text = here.read_text()
    assert text.startswith(before)  # the committed line is never rewritten
    rows = [json.loads(line) for line in text.splitlines()]
    assert [(r["method"], r["sigma"], r["success"]) for r in rows] == [
        ("act-jepa", 0.0, 0.5), ("raw", 0.0, 0.7), ("raw", 0.1, 0.6)]
    assert merge_cells.main([str(here), str(there)]) == 0  # twice adds nothing
    assert here.read_text() == text


def episode(shift: int, steps: int = 4) -> Episode:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 250, (steps, 8, 8, 3), dtype=np.uint8)
    image[:, 0, 0, 0] += shift  # one pixel per frame differs by `shift` levels
    return Episode(obs={"image": image, "state": np.zeros((steps, 3), np.float32)},
                   actions=np.zeros((steps, 2), np.float32))


def test_render_diff_measures_pixels_and_subsets(tmp_path, capsys):
    reference, other, subset = tmp_path / "a.hdf5", tmp_path / "b.hdf5", tmp_path / "s.hdf5"
    write_episodes(reference, [episode(0), episode(0), episode(0)], source="test")
    write_episodes(other, [episode(5), episode(5)], source="test")
    assert render_diff.main([str(reference), str(other), "--demos", "2"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["max_state_diff"] == 0.0
    assert np.isclose(line["max_abs"], 5 / 255) and line["frames_pixels"] == 2 * 4 * 8 * 8 * 3
    assert np.isclose(line["share_differing"], 1 / (8 * 8 * 3))

    assert render_diff.main(["--subset", str(reference), str(subset), "--demos", "2"]) == 0
    assert len(read_episodes(subset).episodes) == 2
