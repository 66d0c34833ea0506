"""A growing episodes file (what recorder_node's episodes_file does): bags appended one by one
give what `actjepa convert` gives on all of them; a bag that cannot be added leaves the file as it
was; readers always see a whole file while appends go on; an append killed part-way (SIGTERM,
SIGKILL of the conversion process) changes nothing; the conversion process runs jobs in order."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from actjepa_core.bags import convert_bags, write_result
from actjepa_core.bags.append import append_bag, describe, file_spec, rebuild, stale_temporaries
from actjepa_core.bags.worker import ConversionWorker
from actjepa_core.data.episodes import Episode, read_episodes, write_episodes

from bag_factory import ACTION, STATE, STATE_DIM, T0, Msgs, arm_records, config, state_of, write_bag

SECOND = 10**9
WAIT_S = 60.0


def arm_bags(folder: Path, count: int, steps: int = 20) -> list[Path]:
    msgs = Msgs()
    return [write_bag(folder / f"episode_{i:03d}", arm_records(msgs, steps + i,
                                                               start_ns=T0 + i * 100 * SECOND,
                                                               first_step=1000 * i))
            for i in range(count)]


def assert_same_episodes(got: list[Episode], want: list[Episode]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.obs.keys() == b.obs.keys()
        for key in a.obs:
            np.testing.assert_array_equal(a.obs[key], b.obs[key])
        np.testing.assert_array_equal(a.actions, b.actions)
        assert a.success == b.success


def demo_attrs(path: Path) -> list[dict]:
    with h5py.File(path, "r") as f:
        return [{k: (v.item() if hasattr(v, "item") else v) for k, v in f["data"][n].attrs.items()}
                for n in sorted(f["data"], key=lambda n: int(n.split("_")[1]))]


def test_bags_appended_one_by_one_equal_converting_them_together(tmp_path):
    bags = arm_bags(tmp_path / "bags", 3)
    nan = Msgs()
    bad_records = arm_records(nan, 20, start_ns=T0 + 900 * SECOND, first_step=9000)
    bad_records[11] = (STATE, bad_records[11][1], nan.array([np.nan] * STATE_DIM))
    bags.insert(1, write_bag(tmp_path / "bags" / "episode_001a", bad_records))  # NaN state
    bags.append(write_bag(tmp_path / "bags" / "episode_009", [  # no action topic
        (STATE, T0 + 999 * SECOND + k, Msgs().array(state_of(k))) for k in range(5)]))
    out = tmp_path / "growing.hdf5"
    results = [append_bag(bag, config(), out) for bag in bags]

    assert [r["added"] for r in results] == [1, 2, 1, 1, 0]  # the NaN tick splits its episode
    assert [r["episodes"] for r in results] == [1, 3, 4, 5, 5]
    assert all(r["ok"] for r in results)
    assert results[1]["dropped"] == {"non-finite /arm/state": 1}
    assert "NaN in element 0" in results[1]["bad_messages"][0]
    assert results[4]["skipped"] and ACTION in results[4]["skipped"]
    assert "nothing added to growing.hdf5: skipped:" in describe(results[4])
    assert "growing.hdf5 += 1 episode(s)" in describe(results[0])

    together = convert_bags(bags, config())
    write_result(together, tmp_path / "together.hdf5")
    assert_same_episodes(read_episodes(out).episodes,
                         read_episodes(tmp_path / "together.hdf5").episodes)
    assert demo_attrs(out) == demo_attrs(tmp_path / "together.hdf5")
    assert not stale_temporaries(out)


def test_what_cannot_be_added_leaves_the_file_as_it_was(tmp_path):
    out = tmp_path / "demos.hdf5"
    (first,) = arm_bags(tmp_path / "a", 1)
    assert append_bag(first, config(), out)["ok"]
    before = out.read_bytes()
    wider = Msgs()
    other = write_bag(tmp_path / "wider", [
        (topic, t, wider.array(np.append(msg.data, 0.0)) if topic == STATE else msg)
        for topic, t, msg in arm_records(wider, 20)])
    result = append_bag(other, config(), out)  # 6 state values where the file has 5
    assert result["ok"] and result["added"] == 0
    assert "state has shape (6,) but earlier episodes have (5,)" in result["skipped_episodes"][0]
    keys = append_bag(first, config(observations={"joints": [STATE]}), out)
    assert not keys["ok"] and "holds observation keys ['state']" in keys["error"]
    assert out.read_bytes() == before

    garbage = tmp_path / "garbage.hdf5"
    garbage.write_bytes(b"not an episodes file")
    refused = append_bag(first, config(), garbage)
    assert not refused["ok"] and "not a readable HDF5 file" in refused["error"]
    assert "file unchanged" in describe(refused)
    assert garbage.read_bytes() == b"not an episodes file"


def test_rebuild_replaces_the_file_and_keeps_it_when_nothing_converts(tmp_path):
    bags = arm_bags(tmp_path / "bags", 2)
    out = tmp_path / "demos.hdf5"
    assert append_bag(bags[0], config(), out)["episodes"] == 1
    result = rebuild([str(b) for b in bags], config(), out)
    assert result["ok"] and result["episodes"] == 2 and len(result["bags"]) == 2
    assert "rebuilt demos.hdf5 from 2 bag(s)" in describe(result)
    before = out.read_bytes()
    empty = tmp_path / "empty"
    empty.mkdir()
    failed = rebuild([str(empty)], config(), out)
    assert not failed["ok"] and "no rosbag2 bag here" in failed["error"]
    assert out.read_bytes() == before


def test_readers_see_a_whole_file_while_appends_go_on(tmp_path):
    """A reader of the growing file (`actjepa train`) always gets a whole file: some prefix of
    the final episodes, never fewer than it saw before; one that holds the file open keeps its
    version."""
    bags = arm_bags(tmp_path / "bags", 12, steps=15)
    out = tmp_path / "growing.hdf5"
    assert append_bag(bags[0], config(), out)["ok"]
    held = h5py.File(out, "r")  # a reader that opened the first version
    done = threading.Event()

    def writer() -> None:
        for bag in bags[1:]:
            assert append_bag(bag, config(), out)["ok"]
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    seen = []
    while not done.is_set() or not seen or seen[-1] < len(bags):
        seen.append(len(read_episodes(out).episodes))
    thread.join()
    assert seen == sorted(seen) and seen[-1] == len(bags) and len(set(seen)) > 2, seen
    final = read_episodes(out).episodes
    assert [n for n in held["data"]] == ["demo_0"]  # still the version it opened
    np.testing.assert_array_equal(held["data/demo_0/actions"][()], final[0].actions)
    held.close()


def big_episodes_file(path: Path, rows: int) -> list[Episode]:
    """An episodes file of the arm's shapes, big enough that copying it takes a while."""
    rng = np.random.default_rng(0)
    episodes = [Episode(obs={"state": rng.standard_normal((rows, STATE_DIM), np.float32)},
                        actions=rng.standard_normal((rows, 4), np.float32))
                for _ in range(3)]
    write_episodes(path, episodes, source="test", obs_keys=["state"])
    return episodes


def wait_for(condition, timeout_s: float = WAIT_S, step_s: float = 0.001) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step_s)
    return True


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_an_append_stopped_part_way_leaves_the_file_as_it_was(tmp_path, how):
    """The conversion process stopped in the middle of an append (the recorder's shutdown
    timeout: SIGTERM; the OOM killer: SIGKILL): the file reads, unchanged; SIGTERM leaves no
    temporary, SIGKILL's is found by ``stale_temporaries`` (the recorder removes it at start)."""
    out = tmp_path / "demos.hdf5"
    before = big_episodes_file(out, rows=1_500_000)
    (bag,) = arm_bags(tmp_path / "bags", 1)
    results: list[dict] = []
    worker = ConversionWorker(results.append)
    try:
        worker.submit({"kind": "append", "bag": str(bag), "config": config(),
                       "episodes_file": str(out)})
        assert wait_for(lambda: stale_temporaries(out) or results), "no append seen"
        assert not results, "the append finished before it could be stopped: make the file bigger"
        if how == "SIGKILL":
            os.kill(worker._proc.pid, signal.SIGKILL)
            assert wait_for(lambda: results)
            assert not results[0]["ok"] and "process died (killed by SIGKILL" in results[0]["error"]
            assert stale_temporaries(out)
        else:
            left = worker.close(0.0)
            assert len(left) == 1 and "abandoned part-way" in left[0]["why"], left
            assert not results and not stale_temporaries(out)
    finally:
        worker.close(0.0)
    assert_same_episodes(read_episodes(out).episodes, before)


def test_the_worker_runs_jobs_in_order_and_survives_a_dead_child(tmp_path):
    bags = arm_bags(tmp_path / "bags", 3)
    out = tmp_path / "demos.hdf5"
    results: list[dict] = []
    worker = ConversionWorker(results.append)
    try:
        ids = [worker.submit({"kind": "append", "bag": str(b), "config": config(),
                              "episodes_file": str(out)}) for b in bags[:2]]
        ids.append(worker.submit({"kind": "rebuild", "bags": [str(b) for b in bags],
                                  "config": config(), "episodes_file": str(out)}))
        assert wait_for(lambda: len(results) == 3)
        assert [r["job"] for r in results] == ids
        assert [r["episodes"] for r in results] == [1, 2, 3] and worker.pending() == 0
        os.kill(worker._proc.pid, signal.SIGKILL)  # between jobs: the next one starts a new one
        worker._proc.join(WAIT_S)
        worker.submit({"kind": "append", "bag": str(bags[2]), "config": config(),
                       "episodes_file": str(out)})
        assert wait_for(lambda: len(results) == 4)
        assert results[3]["ok"] and results[3]["episodes"] == 4
    finally:
        assert worker.close(WAIT_S) == []
    assert file_spec(out)["episodes"] == 4
