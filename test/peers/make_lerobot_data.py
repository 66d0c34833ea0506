"""Writes test/data/lerobot/: small datasets made by LeRobot's own writer, for `make test`.

LeRobot (`.venv-peers` only) writes two v3.0 datasets with ``LeRobotDataset.create`` /
``add_frame`` / ``save_episode`` / ``finalize``, as a recording script would:

* ``video/``: one camera stored as video (LeRobot's default codec, AV1 by libsvtav1);
* ``images/``: one camera stored as PNG images in the parquet rows;

each with a 4-d ``observation.state``, a 3-d ``action`` and three short episodes of two tasks.
Beside each, ``<name>.npz`` holds what was written (``state``, ``action``, ``frames``, all
episodes back to back, and ``lengths``) and what LeRobot's own reader
(``LeRobotDataset(..., video_backend="pyav")``) gives back for the camera (``lerobot_frames``,
uint8), so the normal suite checks our importer against real LeRobot output exactly without
lerobot installed (test/core/importers/test_lerobot_written.py). Regenerate (the files then
change, since AV1 encoding is not bit-reproducible across encoder versions) with::

    make peers
    HF_HUB_OFFLINE=1 .venv-peers/bin/python test/peers/make_lerobot_data.py
"""
from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "data" / "lerobot"
FPS = 10
LENGTHS = (5, 3, 4)
TASKS = ("reach the button", "push the block", "reach the button")
STATE, ACTION = 4, 3
SIDES = {"video": (32, 32), "images": (24, 32)}  # (height, width): the image one not square
CAMERAS = {"video": "observation.images.front", "images": "observation.images.wrist"}


def frame(episode: int, t: int, height: int, width: int) -> np.ndarray:
    """A smooth picture (gradients, not noise: a lossy codec keeps it within a few levels) that
    differs per episode and frame, so a frame read from the wrong row shows."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    red = 40 + 150 * x / width + 8 * t
    green = 30 + 120 * y / height + 40 * episode
    blue = np.full_like(x, 60 + 25 * t + 30 * episode)
    return np.clip(np.stack([red, green, blue], axis=-1), 0, 255).astype(np.uint8)


def episode_values(episode: int, length: int, side: tuple[int, int]) -> dict[str, np.ndarray]:
    t = np.arange(length, dtype=np.float32)[:, None]
    rng = np.random.default_rng(episode)
    return {"state": (t * 0.5 + episode + np.arange(STATE) * 0.25
                      + rng.normal(0, 0.01, (length, STATE))).astype(np.float32),
            "action": np.tanh(rng.normal(size=(length, ACTION))).astype(np.float32),
            "frames": np.stack([frame(episode, i, *side) for i in range(length)])}


def features(name: str) -> dict:
    height, width = SIDES[name]
    return {
        "observation.state": {"dtype": "float32", "shape": (STATE,),
                              "names": [f"joint_{k}" for k in range(STATE)]},
        "action": {"dtype": "float32", "shape": (ACTION,), "names": ["dx", "dy", "dz"]},
        CAMERAS[name]: {"dtype": "video" if name == "video" else "image",
                        "shape": (height, width, 3), "names": ["height", "width", "channels"]},
    }


def write(name: str, out: Path) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = out / name
    if root.exists():
        shutil.rmtree(root)
    dataset = LeRobotDataset.create(f"actjepa/test-{name}", fps=FPS, features=features(name),
                                    root=root, robot_type="sawyer", use_videos=name == "video")
    camera = CAMERAS[name]
    written = [episode_values(e, n, SIDES[name]) for e, n in enumerate(LENGTHS)]
    for e, values in enumerate(written):
        for t in range(LENGTHS[e]):
            dataset.add_frame({"observation.state": values["state"][t],
                               "action": values["action"][t], camera: values["frames"][t],
                               "task": TASKS[e]})
        dataset.save_episode()
    dataset.finalize()

    reader = LeRobotDataset(f"actjepa/test-{name}", root=root, video_backend="pyav")
    assert reader.num_frames == sum(LENGTHS), (reader.num_frames, LENGTHS)
    decoded = np.stack([np.round(reader[i][camera].numpy().transpose(1, 2, 0) * 255)
                        .astype(np.uint8) for i in range(reader.num_frames)])
    np.savez_compressed(out / f"{name}.npz", lengths=np.array(LENGTHS),
                        state=np.concatenate([v["state"] for v in written]),
                        action=np.concatenate([v["action"] for v in written]),
                        frames=np.concatenate([v["frames"] for v in written]),
                        lerobot_frames=decoded, camera=np.array(camera))
    for leftover in root.rglob("*"):  # a writer's scratch folders, if any
        if leftover.is_dir() and not any(leftover.iterdir()):
            leftover.rmdir()
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    worst = int(np.abs(decoded.astype(int) - np.concatenate(
        [v["frames"] for v in written]).astype(int)).max())
    print(f"{root}: {sum(LENGTHS)} frames, {size} bytes; LeRobot's decode differs from the "
          f"written frames by at most {worst} grey levels")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in SIDES:
        write(name, out)


if __name__ == "__main__":
    main()
