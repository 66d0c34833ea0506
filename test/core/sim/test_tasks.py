"""Every Meta-World v3 task with a scripted expert: names, sets, collection and the experts."""
import subprocess
import sys

import numpy as np
import pytest
from metaworld import policies
from metaworld.env_dict import MT10_V3, MT50_V3

from actjepa_core.data.episodes import read_episodes
from actjepa_core.errors import ActJepaError
from actjepa_core.sim import arm as sim_arm
from actjepa_core.sim import collect as sim_collect
from actjepa_core.sim import experts
from actjepa_core.sim.tasks import MT10, MT50, TASK_SETS, check_task, resolve_tasks

NON_DEFAULT = ("drawer-close-v3", "button-press-topdown-v3", "window-open-v3", "assembly-v3")


def test_the_sets_are_metaworlds_and_every_task_has_an_expert():
    assert MT10 == tuple(MT10_V3) and MT50 == tuple(MT50_V3)
    assert set(MT10) <= set(MT50) and len(MT50) == 50
    assert list(experts.TASKS) == list(MT50)
    for task in MT50:
        assert experts.TASKS[task] is policies.ENV_POLICY_MAP[task]
    assert TASK_SETS == {"mt10": MT10, "mt50": MT50}


def test_task_lists_resolve_in_order_once_each():
    assert resolve_tasks("mt10") == list(MT10) and resolve_tasks("MT50") == list(MT50)
    assert resolve_tasks(" push-v3, door-open-v3,push-v3 ") == ["push-v3", "door-open-v3"]
    with pytest.raises(ActJepaError, match="'door-opn-v3'.*expected a Meta-World v3 task"):
        resolve_tasks("push-v3,door-opn-v3")
    with pytest.raises(ActJepaError, match="names no task"):
        resolve_tasks(" , ")
    with pytest.raises(ActJepaError, match="did you mean push-v3"):
        check_task("push")


@pytest.mark.parametrize("task", NON_DEFAULT)
def test_non_default_tasks_collect_and_their_experts_succeed(task):
    episodes = list(sim_collect.collect_episodes(task, 2, seed=0, progress=False))
    assert [ep.success for ep in episodes] == [True, True]
    for ep in episodes:
        assert ep.obs["state"].shape[1:] == (sim_arm.STATE_DIM,)
        assert ep.actions.shape[1:] == (sim_arm.ACTION_DIM,)
        assert np.isfinite(ep.obs["state"]).all() and np.abs(ep.actions).max() <= 1.0


def test_another_task_has_the_same_arm_and_camera():
    arm = sim_arm.SimArm("door-open-v3", image_size=32)
    try:
        obs = arm.reset(0)
        assert obs["image"].shape == (32, 32, 3) and obs["image"].std() > 0
        assert arm.joint_positions().shape == (len(sim_arm.ARM_JOINTS),)
    finally:
        arm.close()


def collect(*args):
    return subprocess.run([sys.executable, "-m", "actjepa_core.cli", "collect", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


def test_cli_collects_a_task_list_into_one_file_per_task(tmp_path):
    proc = collect("--tasks", "drawer-close-v3,window-open-v3", "--episodes", 2, "--out",
                   tmp_path / "set", "--quiet")
    assert proc.returncode == 0, proc.stderr
    for task in ("drawer-close-v3", "window-open-v3"):
        path = tmp_path / "set" / f"{task}.hdf5"
        assert f"expert success 2/2) to {path}" in proc.stdout
        data = read_episodes(path)
        assert len(data.episodes) == 2 and data.source == f"metaworld:{task}:seed=0"


def test_cli_refuses_an_unknown_set_in_one_line(tmp_path):
    proc = collect("--tasks", "mt11", "--out", tmp_path / "x")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "'mt11'" in proc.stderr
    assert not (tmp_path / "x").exists()
