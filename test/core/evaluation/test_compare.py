"""`actjepa compare`: every objective on the user's own demos, held-out action error under noise."""
from __future__ import annotations

import json

import pytest

from actjepa_core import cli
from actjepa_core.data.transitions import split_episodes
from actjepa_core.evaluation.compare import noisy_mse
from actjepa_core.policies import BCPolicy, FrozenWorld
from actjepa_core.policies.configs import BCConfig


@pytest.mark.usefixtures("one_torch_thread")
def test_compare_trains_each_objective_and_scores_held_out_demos(push_demos_path, tmp_path,
                                                                 capsys):
    out = tmp_path / "compare"
    assert cli.main(["compare", "--data", str(push_demos_path), "--out", str(out),
                     "--objectives", "act-jepa,raw", "--sigmas", "0,0.3", "--steps", "30",
                     "--bc-steps", "50", "--quiet"]) == 0
    rows = [json.loads(line) for line in (out / "compare.jsonl").read_text().splitlines()]
    assert [(r["objective"], r["sigma"]) for r in rows] == [
        ("act-jepa", 0.0), ("act-jepa", 0.3), ("raw", 0.0), ("raw", 0.3)]
    assert all(r["val_samples"] > 0 and r["val_mse"] >= 0 for r in rows)
    printed = capsys.readouterr().out
    assert "| act-jepa |" in printed and "mean-action baseline" in printed

    # sigma 0 is exactly the BC head's own held-out MSE, on the demos neither model trained on
    from actjepa_core.data.episodes import read_episodes

    data = read_episodes(push_demos_path)
    bc = BCConfig(steps=50, seed=0)
    policy = BCPolicy.build(FrozenWorld.from_checkpoint(out / "raw" / "best.pt"), data, bc)
    _, held_out = split_episodes(data.episodes, bc.val_fraction, 0)
    assert noisy_mse(policy, held_out, 0.0) == pytest.approx(policy.fit.val_mse, rel=1e-5)
    assert noisy_mse(policy, held_out, 0.3) != noisy_mse(policy, held_out, 0.0)
