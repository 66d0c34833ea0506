"""Append to a results file the cells another machine measured that it does not hold yet.

A run of `python -m experiments.paper.run` on a lent GPU machine
(experiments/paper/device_paper_image.sh) starts from a copy of the committed results file and
appends its own cells to that copy; this brings them home.
A cell is (obs, task, method, demos, seed, sigma): where both files hold one, the first
measurement (the one already here) stays, so a merge never rewrites a committed line and running it
twice adds nothing. The new lines are appended under the same lock the runner's workers use.

    python -m experiments.paper.merge_cells docs/results/paper-image.jsonl \
        /work/.device/1/paper-image.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from experiments.paper.plan import cell_id
from experiments.paper.runner import append_row, done_cells


def new_rows(results: Path, other: Path) -> list[dict]:
    """Rows of ``other`` whose cells ``results`` lacks, once each, in ``other``'s order."""
    have, rows = done_cells(results), []
    for line in other.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        cell = cell_id(row["obs"], row["task"], row["method"], row["demos"], row["seed"],
                       row["sigma"])
        if cell not in have:
            have.add(cell)
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="the results file to extend")
    parser.add_argument("other", type=Path, help="the other machine's copy")
    args = parser.parse_args(argv)
    rows = new_rows(args.results, args.other)
    for row in rows:
        append_row(args.results, row)
    print(f"{len(rows)} new cells appended to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
