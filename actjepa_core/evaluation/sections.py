"""Marked sections of a markdown file (docs/BENCHMARKS.md, docs/results/*.md), each rewritten in
place by the command that measured it, so a file holds the output of several commands and any one
of them can be rerun without touching the others."""
from __future__ import annotations

from pathlib import Path

from actjepa_core.atomic import atomic_path


def write_section(path: Path, key: str, text: str) -> None:
    """Replace the block marked ``key`` in ``path`` (appended if absent; file created if needed)."""
    start, end = f"<!-- bench:{key}:start -->", f"<!-- bench:{key}:end -->"
    block = f"{start}\n{text}\n{end}"
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in old and end in old:
        new = old[:old.index(start)] + block + old[old.index(end) + len(end):]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(new)
