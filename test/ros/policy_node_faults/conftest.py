"""One policy node process (and one client) for all the fault tests of this folder: the fixtures
live in policy_faults.py and are registered here once, so every test file shares them.

The files run in this order, whatever their names: the oversized-input test measures the node's
memory against its level before the test, which needs a node that has not yet been through the
bursts and fuzz of the others (the order of the single file they were split from)."""
from pathlib import Path

from policy_faults import feed, node, policy_files, restore, ros  # noqa: F401

ORDER = ("test_faults_oversized.py", "test_faults_streams.py", "test_faults_burst.py",
         "test_faults_malformed.py", "test_faults_checkpoints.py", "test_faults_shutdown.py")
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    slots = [i for i, item in enumerate(items) if Path(item.fspath).parent == HERE]
    ours = sorted((items[i] for i in slots), key=lambda item: ORDER.index(Path(item.fspath).name))
    for slot, item in zip(slots, ours):
        items[slot] = item
