"""Small datasets written exactly as robomimic and LeRobot (v2.1, v3.0) publish them.

robomimic: its HDF5 layout (data/demo_N/{obs,next_obs}/<key>, actions, rewards, dones, states,
attrs num_samples; data attrs total, env_args; mask/<filter>). LeRobot: meta/info.json with
LeRobot's field names and path templates, parquet frames written with pyarrow (vector features
as fixed-size lists, as `datasets.Sequence(length=K)` stores them), the v2.1 episodes.jsonl /
v3.0 episodes and tasks tables, and mp4 videos encoded with PyAV (AV1 via libsvtav1, LeRobot's
default codec, for v3.0; H.264 for v2.1). `lerobot` itself cannot be installed here (it needs
torchvision), so these writers follow its published format and code.
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

FPS = 10
SIDE = 64
STATE, ACTION = 4, 2
CAMERA = "observation.images.top"


def frame_level(episode: int, frame: int) -> int:
    """The grey level of a test video frame: tells episode and frame apart after decoding."""
    return 20 + 100 * (episode % 2) + 6 * frame


def episode_arrays(episode: int, length: int) -> dict[str, np.ndarray]:
    t = np.arange(length, dtype=np.float32)
    return {"state": np.stack([t + 100 * episode + k for k in range(STATE)], axis=1),
            "action": np.stack([np.sin(t + k) for k in range(ACTION)], axis=1).astype(np.float32),
            "frames": np.stack([np.full((SIDE, SIDE, 3), frame_level(episode, i), np.uint8)
                                for i in range(length)])}


# ---- robomimic ------------------------------------------------------------------------------
def write_robomimic(path: Path, lengths=(12, 9, 15), with_obs: bool = True) -> Path:
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["total"] = int(sum(lengths))
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "type": 1,
                                             "env_kwargs": {"control_freq": 20}})
        for i, n in enumerate(lengths):
            demo = data.create_group(f"demo_{i}")
            demo.attrs["num_samples"] = n
            arrays = episode_arrays(i, n)
            demo.create_dataset("actions", data=np.concatenate(
                [arrays["action"], np.zeros((n, 5))], axis=1))  # 7-d, float64 like robosuite
            demo.create_dataset("rewards", data=np.r_[np.zeros(n - 1), 1.0])
            demo.create_dataset("dones", data=np.r_[np.zeros(n - 1), 1].astype(np.int64))
            demo.create_dataset("states", data=np.zeros((n, 32)))
            if not with_obs:
                continue
            for group in ("obs", "next_obs"):
                obs = demo.create_group(group)
                obs["robot0_eef_pos"] = arrays["state"][:, :3].astype(np.float64)
                obs["object"] = arrays["state"][:, 3:].astype(np.float64) * 2
                obs["agentview_image"] = arrays["frames"][:, :16, :16]
        mask = f.create_group("mask")
        mask["train"] = np.array([b"demo_0", b"demo_1"])
        mask["valid"] = np.array([b"demo_2"])
    return path


@pytest.fixture
def robomimic_file(tmp_path):
    return write_robomimic(tmp_path / "low_dim.hdf5")


# ---- LeRobot --------------------------------------------------------------------------------
def features(camera_dtype: str = "video", codec: str = "av1") -> dict:
    camera = {"dtype": camera_dtype, "shape": [SIDE, SIDE, 3],
              "names": ["height", "width", "channels"]}
    if camera_dtype == "video":
        camera["info"] = {"video.height": SIDE, "video.width": SIDE, "video.codec": codec,
                          "video.pix_fmt": "yuv420p", "video.is_depth_map": False,
                          "video.fps": FPS, "video.channels": 3, "has_audio": False}
    return {
        "observation.state": {"dtype": "float32", "shape": [STATE],
                              "names": [f"joint_{k}" for k in range(STATE)]},
        "action": {"dtype": "float32", "shape": [ACTION], "names": ["vx", "vy"]},
        CAMERA: camera,
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": {"dtype": "int64", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
        "index": {"dtype": "int64", "shape": [1], "names": None},
        "task_index": {"dtype": "int64", "shape": [1], "names": None},
    }


def frames_table(episodes: list[tuple[int, int]], start_index: int = 0,
                 images: bool = False):
    """Parquet rows of the given (episode, length) pairs, LeRobot's columns."""
    import cv2
    import pyarrow as pa

    cols = {k: [] for k in ("observation.state", "action", "timestamp", "frame_index",
                            "episode_index", "index", "task_index")}
    pictures = []
    index = start_index
    for episode, length in episodes:
        arrays = episode_arrays(episode, length)
        for i in range(length):
            cols["observation.state"].append(arrays["state"][i].tolist())
            cols["action"].append(arrays["action"][i].tolist())
            cols["timestamp"].append(i / FPS)
            cols["frame_index"].append(i)
            cols["episode_index"].append(episode)
            cols["index"].append(index)
            cols["task_index"].append(0)
            index += 1
            if images:
                ok, png = cv2.imencode(".png", arrays["frames"][i][:, :, ::-1])
                pictures.append({"bytes": png.tobytes(), "path": f"frame_{i:06d}.png"})
    arrays = {
        "observation.state": pa.array(cols["observation.state"], pa.list_(pa.float32(), STATE)),
        "action": pa.array(cols["action"], pa.list_(pa.float32(), ACTION)),
        "timestamp": pa.array(cols["timestamp"], pa.float32()),
        "frame_index": pa.array(cols["frame_index"], pa.int64()),
        "episode_index": pa.array(cols["episode_index"], pa.int64()),
        "index": pa.array(cols["index"], pa.int64()),
        "task_index": pa.array(cols["task_index"], pa.int64()),
    }
    if images:
        arrays[CAMERA] = pa.array(pictures, pa.struct([("bytes", pa.binary()),
                                                       ("path", pa.string())]))
    return pa.table(arrays)


def write_video(path: Path, frames: np.ndarray, codec: str) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = SIDE, SIDE, "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_info(root: Path, info: dict) -> None:
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))


def write_lerobot_v3(root: Path, lengths=(12, 9, 15), files_of=(0, 0, 1)) -> Path:
    """v3.0: episodes packed into data/video files (``files_of[e]``: the file of episode e),
    the episodes table locating each episode and its video segment."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n_files = max(files_of) + 1
    ep_rows = []
    index = 0
    for file in range(n_files):
        members = [(e, n) for e, n in enumerate(lengths) if files_of[e] == file]
        table = frames_table(members, start_index=index)
        path = root / f"data/chunk-000/file-{file:03d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        video, offset = [], 0.0
        for e, n in members:
            video.append(episode_arrays(e, n)["frames"])
            ep_rows.append({
                "episode_index": e, "tasks": ["push the block"], "length": n,
                "data/chunk_index": 0, "data/file_index": file,
                "dataset_from_index": index, "dataset_to_index": index + n,
                f"videos/{CAMERA}/chunk_index": 0, f"videos/{CAMERA}/file_index": file,
                f"videos/{CAMERA}/from_timestamp": offset,
                f"videos/{CAMERA}/to_timestamp": offset + n / FPS,
                "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
            offset += n / FPS
            index += n
        write_video(root / f"videos/{CAMERA}/chunk-000/file-{file:03d}.mp4",
                    np.concatenate(video), "libsvtav1")
    episodes = root / "meta/episodes/chunk-000/file-000.parquet"
    episodes.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(ep_rows), episodes)
    pq.write_table(pa.table({"task_index": pa.array([0], pa.int64()),
                             "task": ["push the block"]}), root / "meta/tasks.parquet")
    write_info(root, {
        "codebase_version": "v3.0", "robot_type": "so100", "total_episodes": len(lengths),
        "total_frames": int(sum(lengths)), "total_tasks": 1, "chunks_size": 1000,
        "data_files_size_in_mb": 100, "video_files_size_in_mb": 500, "fps": FPS,
        "splits": {"train": f"0:{len(lengths)}"},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        "features": features()})
    return root


def write_lerobot_v21(root: Path, lengths=(12, 9, 15), camera_dtype: str = "video") -> Path:
    """v2.1: one parquet (and one mp4 per camera) per episode, meta/episodes.jsonl."""
    import pyarrow.parquet as pq

    index = 0
    lines = []
    for e, n in enumerate(lengths):
        path = root / f"data/chunk-000/episode_{e:06d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(frames_table([(e, n)], index, images=camera_dtype == "image"), path)
        index += n
        if camera_dtype == "video":
            write_video(root / f"videos/chunk-000/{CAMERA}/episode_{e:06d}.mp4",
                        episode_arrays(e, n)["frames"], "libx264")
        lines.append(json.dumps({"episode_index": e, "tasks": ["push the block"], "length": n}))
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta/episodes.jsonl").write_text("\n".join(lines) + "\n")
    (root / "meta/tasks.jsonl").write_text(json.dumps({"task_index": 0,
                                                       "task": "push the block"}) + "\n")
    write_info(root, {
        "codebase_version": "v2.1", "robot_type": "so100", "total_episodes": len(lengths),
        "total_frames": int(sum(lengths)), "total_tasks": 1, "total_videos": len(lengths),
        "total_chunks": 1, "chunks_size": 1000, "fps": FPS,
        "splits": {"train": f"0:{len(lengths)}"},
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": ("videos/chunk-{episode_chunk:03d}/{video_key}/"
                       "episode_{episode_index:06d}.mp4") if camera_dtype == "video" else None,
        "features": features(camera_dtype, "h264")})
    return root


@pytest.fixture(scope="module")
def lerobot_v3(tmp_path_factory):
    return write_lerobot_v3(tmp_path_factory.mktemp("v3") / "pusht")


@pytest.fixture(scope="module")
def lerobot_v21(tmp_path_factory):
    return write_lerobot_v21(tmp_path_factory.mktemp("v21") / "pusht")


@pytest.fixture
def make():
    """The writers, for tests that damage what they write."""
    from types import SimpleNamespace

    return SimpleNamespace(robomimic=write_robomimic, v3=write_lerobot_v3, v21=write_lerobot_v21,
                           arrays=episode_arrays, level=frame_level, camera=CAMERA, side=SIDE,
                           state=STATE, action=ACTION)
