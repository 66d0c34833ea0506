"""Datasets people already have -> the episodes file (`actjepa import FORMAT SOURCE --out X.hdf5`).

One module per format: ``robomimic`` (HDF5: data/demo_N/obs/<key>, actions, ...) and ``lerobot``
(LeRobotDataset v2.1 and v3.0 folders: parquet frames, mp4 videos decoded with PyAV). Each
reads the whole source, checks it, and only then writes the episodes file (atomically), so a
bad or partial dataset stops with one line naming the file and what was expected, and nothing
is half-written. Local files only: nothing is downloaded.

Observation keys in the episodes file (``common.KeyPlan``): the source's vector observations
concatenated into ``state`` (in a stated order, recorded in the file's source line), and its
cameras as ``image`` (one camera) or ``image_<camera>`` (several), optionally resized.
"""
from __future__ import annotations

from actjepa_core.importers.common import ImportOptions, ImportResult

FORMATS = ("robomimic", "lerobot")


def import_dataset(fmt: str, source: str, out: str, options: ImportOptions) -> ImportResult:
    """Read ``source`` in format ``fmt`` and write the episodes file ``out``."""
    if fmt == "robomimic":
        from actjepa_core.importers.robomimic import read_robomimic as read
    elif fmt == "lerobot":
        from actjepa_core.importers.lerobot import read_lerobot as read
    else:
        from actjepa_core.errors import ActJepaError

        raise ActJepaError(f"unknown dataset format {fmt!r}; expected one of {list(FORMATS)}")
    from actjepa_core.importers.common import write_result

    return write_result(read(source, options), out)


__all__ = ["FORMATS", "ImportOptions", "ImportResult", "import_dataset"]
