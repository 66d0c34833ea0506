"""How far two renderings of the same demonstrations differ, pixel for pixel.

Image cells trained and evaluated on a GPU machine render with MuJoCo's EGL backend on the GPU;
the ones trained here render with OSMesa on the CPU. The scripted expert and the simulator are
deterministic, so demonstrations collected with the same seed visit the same states; this script
says how much the frames of the two renderers differ, set against the test-time noise levels of
the tables (sigma on the [0, 1] scale), so the two kinds of cell can be read side by side.

    python -m experiments.paper.render_diff REFERENCE.hdf5 OTHER.hdf5 [--demos 2]
    python -m experiments.paper.render_diff --subset runs/paper/demos/reach-v3-100-64px.hdf5 \
        OUT.hdf5

``--subset`` writes the first ``--demos`` demonstrations of a file to OUT (a small reference to
carry to another machine).
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from actjepa_core.data.episodes import EpisodeSet, read_episodes, write_episodes


def frame_difference(reference: EpisodeSet, other: EpisodeSet, demos: int) -> dict:
    """Mean, p99 and max absolute pixel difference on the [0, 1] scale over the shared frames,
    and the largest state difference (zero when both visited the same states)."""
    diffs, state_gap = [], 0.0
    for a, b in zip(reference.episodes[:demos], other.episodes[:demos], strict=True):
        steps = min(a.num_steps, b.num_steps)
        ia = a.obs["image"][:steps].astype(np.float32) / 255.0  # (T, H, W, 3)
        ib = b.obs["image"][:steps].astype(np.float32) / 255.0
        diffs.append(np.abs(ia - ib).ravel())
        state_gap = max(state_gap, float(np.abs(a.obs["state"][:steps]
                                                - b.obs["state"][:steps]).max()))
    d = np.concatenate(diffs)
    return {"frames_pixels": int(d.size), "mean_abs": float(d.mean()),
            "p99_abs": float(np.quantile(d, 0.99)), "max_abs": float(d.max()),
            "share_differing": float((d > 0).mean()), "max_state_diff": state_gap}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference")
    parser.add_argument("other")
    parser.add_argument("--demos", type=int, default=2)
    parser.add_argument("--subset", action="store_true",
                        help="write the first --demos demos of REFERENCE to OTHER instead")
    args = parser.parse_args(argv)
    reference = read_episodes(args.reference, ["image", "state"])
    if args.subset:
        write_episodes(args.other, reference.episodes[:args.demos],
                       source=f"{reference.source} (first {args.demos} demos)")
        return 0
    other = read_episodes(args.other, ["image", "state"])
    print(json.dumps({"reference": args.reference, "other": args.other,
                      **frame_difference(reference, other, args.demos)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
