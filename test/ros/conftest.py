"""ROS fixtures: a client node on the test module's own domain (real rclpy over Fast DDS)."""
from __future__ import annotations

import pytest


@pytest.fixture
def tester(request):
    """A ROS client node on the test module's own ROS domain (its module-level DOMAIN)."""
    from ros_harness import RosClient

    client = RosClient(request.module.DOMAIN)
    yield client
    client.close()


@pytest.fixture(scope="module")
def ros(request):
    """One ROS client node shared by a test module, on that module's own ROS domain."""
    from ros_harness import RosClient

    client = RosClient(request.module.DOMAIN)
    yield client
    client.close()
