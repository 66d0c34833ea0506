"""actjepa import robomimic: the published HDF5 layout -> an episodes file training accepts."""
import subprocess
import sys

import h5py
import numpy as np
import pytest

from actjepa_core.data.episodes import read_episodes
from actjepa_core.errors import ActJepaError
from actjepa_core.importers import ImportOptions, import_dataset


def actjepa(*args):
    return subprocess.run([sys.executable, "-m", "actjepa_core.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


def one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_import_then_train(robomimic_file, tmp_path, make):
    out = tmp_path / "lift.hdf5"
    proc = actjepa("import", "robomimic", robomimic_file, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "imported 3 episodes (36 steps" in proc.stdout
    data = read_episodes(out)
    assert data.obs_keys == ["image", "state"] and data.action_dim == 7
    assert "robomimic:" in data.source and "env=Lift" in data.source
    assert "state=object(1)+robot0_eef_pos(3)" in data.source  # the file's (sorted) key order
    for i, ep in enumerate(data.episodes):
        arrays = make.arrays(i, ep.num_steps)
        np.testing.assert_allclose(ep.obs["state"][:, :1], arrays["state"][:, 3:] * 2)
        np.testing.assert_allclose(ep.obs["state"][:, 1:], arrays["state"][:, :3])
        assert ep.obs["image"].shape == (ep.num_steps, 16, 16, 3)
        assert ep.success is True  # dones[-1]
    proc = actjepa("train", "--data", out, "--out", tmp_path / "run", "--steps", 5,
                   "--batch-size", 8, "--quiet", "--set", "run.val_every=5",
                   "--set", "data.val_fraction=0.34", "--set", "model.image_channels=[8,8]")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "run" / "best.pt").is_file()


def test_filter_key_order_cameras_and_size(robomimic_file, tmp_path):
    out = tmp_path / "x.hdf5"
    options = ImportOptions(state_keys=["robot0_eef_pos", "object"], cameras=[],
                            filter="valid")
    result = import_dataset("robomimic", str(robomimic_file), str(out), options)
    assert result.episodes == 1 and result.obs == {"state": (4,)}
    ep = read_episodes(out).episodes[0]
    assert ep.num_steps == 15 and ep.obs["state"][0].tolist() == [200, 201, 202, 2 * 203]
    import_dataset("robomimic", str(robomimic_file), str(out), ImportOptions(image_size=8))
    assert read_episodes(out).episodes[0].obs["image"].shape[1:] == (8, 8, 3)


def test_a_file_of_simulator_states_is_reported_not_guessed(tmp_path, make):
    raw = make.robomimic(tmp_path / "demo.hdf5", with_obs=False)
    out = tmp_path / "out.hdf5"
    line = one_line_error(actjepa("import", "robomimic", raw, "--out", out),
                          f"{raw}:/data/demo_0 has no 'obs' group", "dataset_states_to_obs")
    assert "expected obs/<key>" in line
    assert not out.exists()


@pytest.mark.parametrize("damage, fragment", [
    (lambda f: f["data/demo_1/obs"].__delitem__("object"), "/data/demo_1/obs has no 'object'"),
    (lambda f: f["data/demo_2"].attrs.__setitem__("num_samples", 99),
     "/data/demo_2 has num_samples 99 but 15 actions"),
    (lambda f: (f["data/demo_1/obs"].__delitem__("robot0_eef_pos"),
                f["data/demo_1/obs"].create_dataset("robot0_eef_pos", data=np.zeros((4, 3)))),
     "/data/demo_1/obs/robot0_eef_pos has shape (4, 3); expected (9, 3)"),
    (lambda f: f["data/demo_0/actions"].__setitem__((3, 0), np.nan),
     "/data/demo_0/actions contains NaN"),
])
def test_damaged_files_give_one_line_and_write_nothing(tmp_path, make, damage, fragment):
    path = make.robomimic(tmp_path / "bad.hdf5")
    with h5py.File(path, "a") as f:
        damage(f)
    out = tmp_path / "out.hdf5"
    one_line_error(actjepa("import", "robomimic", path, "--out", out), str(path), fragment)
    assert not out.exists() and not list(tmp_path.glob("*.tmp*"))


def test_not_robomimic_files(tmp_path, robomimic_file):
    junk = tmp_path / "junk.hdf5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(ActJepaError, match="not a readable HDF5 file"):
        import_dataset("robomimic", str(junk), str(tmp_path / "o.hdf5"), ImportOptions())
    with pytest.raises(ActJepaError, match=r"no mask/test; expected one of .*\['train', 'valid'\]"):
        import_dataset("robomimic", str(robomimic_file), str(tmp_path / "o.hdf5"),
                       ImportOptions(filter="test"))
    with pytest.raises(ActJepaError, match=r"--state-keys \['joint_pos'\] not among"):
        import_dataset("robomimic", str(robomimic_file), str(tmp_path / "o.hdf5"),
                       ImportOptions(state_keys=["joint_pos"]))
    assert not (tmp_path / "o.hdf5").exists()
