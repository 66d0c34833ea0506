import os
import stat

import pytest

from actjepa_core.atomic import atomic_path


def test_complete_write_appears_with_normal_permissions(tmp_path):
    with atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("done")
        assert not (tmp_path / "out.txt").exists()  # nothing under the final name until complete
    assert (tmp_path / "out.txt").read_text() == "done"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o666 & ~mask


def test_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    (tmp_path / "out.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "out.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert (tmp_path / "out.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
