"""Where the package's data files (launch/, config/, models/) are, installed or not.

After ``colcon build`` they live in ``share/actjepa_ros`` of the install prefix, found through the
ament index (``AMENT_PREFIX_PATH``); in a source checkout (``pip install -e``, the tests, ``make``)
they sit beside the Python packages. The installed copy wins when both exist, so a sourced
workspace runs with the files it installed.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

PACKAGE = "actjepa_ros"
SOURCE_TREE = Path(__file__).resolve().parents[1]  # the checkout holding actjepa_ros/


@lru_cache(maxsize=1)
def share_dir() -> Path:
    """The folder holding config/, launch/ and models/."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except (ImportError, LookupError, OSError, ValueError):
        # not installed in any ament prefix (or no AMENT_PREFIX_PATH): the source tree
        return SOURCE_TREE


def config_file(name: str) -> Path:
    """A shipped parameter file, e.g. ``config_file("sim.yaml")``."""
    return share_dir() / "config" / name
