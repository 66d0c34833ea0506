"""sim_node's cameras: which Meta-World cameras it renders (the ``cameras`` parameter) and the
topic and frame each one is published under.

A real cell has a scene camera and a wrist camera, each on its own image topic; the simulated arm
offers the same with Meta-World's cameras. The naming follows the observation keys
(``actjepa_core.sim.arm.camera_key``): the default camera (corner4, the scene) keeps today's
``image_topic`` (``camera/image_raw``), as its frames keep the key ``image``; any other camera C
goes on the same topic with C inserted before the last name (``camera/C/image_raw``, the
``<camera>/image_raw`` layout camera drivers use), frame ``<camera_frame_id>_C``, as its frames
go under ``image_C``. So ``--obs image,image_behindGripper,joints`` demos and a policy trained on
them map onto ``camera/image_raw`` and ``camera/behindGripper/image_raw`` one to one.

Names only, without MuJoCo: the SROS2 policy writer (security.py) lists these topics from a
params file; sim_node checks the names against the simulator's cameras when it starts. The
``cameras`` parameter itself is declared with the others in params.SIM_PARAMS.
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple

from actjepa_ros.params import SIM_DEFAULT_CAMERA, SIM_PARAMS

DEFAULT_CAMERA = SIM_DEFAULT_CAMERA
CAMERAS_PARAM = next(spec for spec in SIM_PARAMS if spec.name == "cameras")


class CameraOutput(NamedTuple):
    """One rendered camera: the Meta-World name, the topic it is published on, its frame_id."""

    camera: str
    topic: str
    frame_id: str


def camera_topic(image_topic: str, camera: str) -> str:
    """Where ``camera``'s images go: ``image_topic`` for the default camera, else ``image_topic``
    with the camera's name inserted before its last name (``camera/image_raw`` ->
    ``camera/behindGripper/image_raw``; ``image`` -> ``behindGripper/image``)."""
    if camera == DEFAULT_CAMERA:
        return image_topic
    head, sep, last = image_topic.rpartition("/")
    return f"{head}{sep}{camera}/{last}"


def camera_frame_id(frame_id: str, camera: str) -> str:
    """header.frame_id of ``camera``'s images: ``frame_id`` for the default camera, else
    ``<frame_id>_<camera>`` (each camera sits somewhere else on the robot)."""
    return frame_id if camera == DEFAULT_CAMERA else f"{frame_id}_{camera}"


def camera_outputs(p: Mapping[str, Any]) -> list[CameraOutput]:
    """The cameras sim_node publishes with parameters ``p`` (none when ``image_size`` is 0)."""
    if not p["image_size"]:
        return []
    return [CameraOutput(c, camera_topic(p["image_topic"], c),
                         camera_frame_id(p["camera_frame_id"], c))
            for c in p.get("cameras", CAMERAS_PARAM.default)]
