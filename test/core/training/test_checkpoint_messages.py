"""What a user reads when a file is not a checkpoint we will open: one line, no torch advice."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from actjepa_core.errors import ActJepaError
from actjepa_core.training import checkpoint as ckpt


class Pickled(torch.nn.Module):  # a whole pickled model, the classic "checkpoint" of other tools
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 2)


def refused_message(path):
    with pytest.raises(ActJepaError) as caught:
        ckpt.load_checkpoint(path)
    return str(caught.value)


def test_a_pickled_model_is_refused_in_one_line_without_torchs_advice(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(Pickled(), path)
    message = refused_message(path)
    assert "\n" not in message
    assert message.startswith(f"{path}: refused: a pickle of Python objects")
    assert "torch.nn.modules.linear.Linear" in message  # what it is
    assert "weights_only" not in message and "trust" not in message  # no advice to run it
    assert "add_safe_globals" not in message


def test_numpy_inside_an_actjepa_shaped_file_is_refused_too(tmp_path):
    path = tmp_path / "numpy.pt"
    torch.save({"format": ckpt.FORMAT, "format_version": ckpt.FORMAT_VERSION,
                "stats": np.zeros(3)}, path)
    message = refused_message(path)
    assert "refused" in message and "numpy" in message and "\n" not in message


@pytest.mark.parametrize("content, phrase", [
    (b"\x00garbage", "not a torch.save file"),
    (b"\x89HDF\r\n\x1a\n" + bytes(100), "HDF5 file"),
])
def test_files_that_are_no_torch_file_at_all_say_what_they_look_like(tmp_path, content, phrase):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    message = refused_message(path)
    assert "not a readable actjepa checkpoint" in message and phrase in message
    assert "\n" not in message


def test_a_truncated_checkpoint_is_reported_as_damaged(tmp_path):
    path = tmp_path / "cut.pt"
    torch.save({"format": ckpt.FORMAT, "w": torch.zeros(1000)}, path)
    path.write_bytes(path.read_bytes()[:-200])
    message = refused_message(path)
    assert "not a readable actjepa checkpoint (damaged or truncated" in message
    assert "\n" not in message


def test_a_legacy_format_pickle_is_refused_as_well(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save({"stats": np.zeros(3)}, path, _use_new_zipfile_serialization=False)
    message = refused_message(path)
    assert "refused" in message and "numpy" in message and "\n" not in message


def test_the_cli_prints_the_refusal_as_its_one_error_line(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(Pickled(), path)
    proc = subprocess.run([sys.executable, "-m", "actjepa_core.cli", "eval", "--policy",
                           str(path), "--task", "reach-v3", "--episodes", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "refused" in lines[0], proc.stderr
    assert "weights_only" not in proc.stderr


def test_a_flipped_byte_in_the_weights_is_refused_not_loaded(tmp_path):
    """torch.load ignores the archive's CRCs: the loader checks them first."""
    import zipfile

    path = tmp_path / "ck.pt"
    ckpt.save_checkpoint(path, ckpt.WORLD_MODEL, {"weights": torch.arange(1000.0)})
    with zipfile.ZipFile(path) as archive:
        member = next(i for i in archive.infolist() if "/data/" in i.filename)
    data = bytearray(path.read_bytes())
    position = member.header_offset + 30 + len(member.filename) + len(member.extra) + 400
    data[position] ^= 0x01  # one bit inside the stored tensor bytes
    path.write_bytes(bytes(data))
    message = refused_message(path)
    assert "fails its CRC check" in message and "\n" not in message
