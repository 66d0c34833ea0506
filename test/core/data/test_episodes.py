import h5py
import numpy as np
import pytest

from actjepa_core.data.episodes import Episode, read_episodes, write_episodes
from actjepa_core.errors import ActJepaError


def episode(steps=5, state_dim=3, action_dim=2, seed=0):
    rng = np.random.default_rng(seed)
    return Episode({"state": rng.normal(size=(steps, state_dim)).astype(np.float32),
                    "image": rng.integers(0, 255, (steps, 8, 8, 3), dtype=np.uint8)},
                   rng.uniform(-1, 1, (steps, action_dim)).astype(np.float32), success=True)


def test_round_trip_keeps_arrays_and_attributes(tmp_path):
    eps = [episode(seed=i, steps=4 + i) for i in range(3)]
    write_episodes(tmp_path / "d.hdf5", eps, source="unit")
    data = read_episodes(tmp_path / "d.hdf5")
    assert data.obs_keys == ["image", "state"] and data.action_dim == 2 and data.source == "unit"
    for a, b in zip(eps, data.episodes):
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.obs["image"], b.obs["image"])
        assert b.obs["image"].dtype == np.uint8 and b.success is True
    with h5py.File(tmp_path / "d.hdf5") as f:  # the robomimic-style layout of DESIGN.md
        assert f["data/demo_2/obs/state"].shape == (6, 3)
        assert f["data/demo_2"].attrs["num_samples"] == 6
        assert f["data"].attrs["version"] == 1
    assert data.obs_spec() == {"image": ((8, 8, 3), "uint8"), "state": ((3,), "float32")}


def test_demos_sort_numerically(tmp_path):
    eps = [episode(seed=i, steps=2 + i) for i in range(12)]
    write_episodes(tmp_path / "d.hdf5", eps, source="unit")
    assert [e.num_steps for e in read_episodes(tmp_path / "d.hdf5").episodes] == list(range(2, 14))


def _write_raw(path, mutate):
    write_episodes(path, [episode(), episode(seed=1)], source="unit")
    with h5py.File(path, "a") as f:
        mutate(f)


@pytest.mark.parametrize("mutate, words", [
    (lambda f: _replace(f, "data/demo_1/actions", np.zeros((4, 2))),
     ["demo_1/obs/", "4", "one observation per action"]),
    (lambda f: _replace(f, "data/demo_0/obs/state", np.full((5, 3), np.nan)),
     ["demo_0/obs/state", "NaN"]),
    (lambda f: _replace(f, "data/demo_0/actions", np.full((5, 2), np.inf)),
     ["demo_0/actions", "NaN or Inf"]),
    (lambda f: _shorten(f, "data/demo_1", 1), ["demo_1", "at least 2"]),
    (lambda f: _replace(f, "data/demo_0/actions", np.zeros((5, 3))), ["demo_0/actions", "(T, 2)"]),
    (lambda f: f["data"].attrs.__delitem__("action_dim"), ["action_dim"]),
    (lambda f: f.__delitem__("data/demo_0/actions"), ["demo_0", "actions"]),
])
def test_malformed_file_names_the_key(tmp_path, mutate, words):
    path = tmp_path / "bad.hdf5"
    _write_raw(path, mutate)
    with pytest.raises(ActJepaError) as err:
        read_episodes(path)
    assert str(path) in str(err.value)
    for word in words:
        assert word in str(err.value)


def _replace(f, key, value):
    del f[key]
    f[key] = value


def _shorten(f, demo, steps):
    for key in ("actions", "obs/state", "obs/image"):
        _replace(f, f"{demo}/{key}", f[f"{demo}/{key}"][:steps])


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(ActJepaError, match="episodes file not found"):
        read_episodes(tmp_path / "none.hdf5")
    (tmp_path / "text.hdf5").write_text("not hdf5")
    with pytest.raises(ActJepaError, match="not a readable HDF5 file"):
        read_episodes(tmp_path / "text.hdf5")
    with h5py.File(tmp_path / "empty.hdf5", "w"):
        pass
    with pytest.raises(ActJepaError, match="no /data group"):
        read_episodes(tmp_path / "empty.hdf5")


def test_unknown_obs_key_lists_the_keys_it_has(tmp_path):
    write_episodes(tmp_path / "d.hdf5", [episode()], source="unit")
    with pytest.raises(ActJepaError,
                       match=r"\['depth'\] not in the file; it has \['image', 'state'\]"):
        read_episodes(tmp_path / "d.hdf5", ["depth"])


def test_a_bad_episode_leaves_no_file_behind(tmp_path):
    bad = episode(seed=1)
    bad.actions[2, 0] = np.nan
    with pytest.raises(ActJepaError, match="episode 1/actions contains NaN"):
        write_episodes(tmp_path / "d.hdf5", [episode(), bad], source="unit")
    assert list(tmp_path.iterdir()) == []
