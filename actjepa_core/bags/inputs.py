"""Which bags ``actjepa convert`` is given: bag folders, storage files, folders of bags; each
recording once, found without following a symlink loop."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from actjepa_core.errors import ActJepaError

BAG_METADATA = "metadata.yaml"
STORAGE_SUFFIXES = (".mcap", ".db3")


def find_bags(paths: Sequence[str | Path]) -> list[Path]:
    """The bags named by ``paths``: bag folders, .mcap/.db3 files, or folders holding bags; each
    recording once (see ``discover_bags``, which also says what it left out)."""
    return discover_bags(paths)[0]


def discover_bags(paths: Sequence[str | Path]) -> tuple[list[Path], list[str]]:
    """The bags under ``paths``, each recording once, and one line per thing left out.

    A recording is its real path: a symlink to a bag, a relative and an absolute path to one bag,
    or a ``latest -> run1`` link beside ``run1`` name the same recording, which is converted once
    (the first name given wins; inside a folder real entries come before links). Folders are
    walked without following a link to a folder already being walked (a symlink loop)."""
    walk = _Walk()
    for path in map(Path, paths):
        if not path.exists():
            raise ActJepaError(f"{path}: no such bag, file or folder")
        before = len(walk.bags) + len(walk.repeats)
        walk.visit(path, ())
        if len(walk.bags) + len(walk.repeats) == before:
            raise ActJepaError(f"{path}: no rosbag2 bag here; expected a folder with "
                               f"{BAG_METADATA}, a {'/'.join(STORAGE_SUFFIXES)} file, or a "
                               "folder holding such bags")
    return walk.bags, walk.notes


class _Walk:
    """Bags found so far, by real path; the lines about repeats and loops left out."""

    def __init__(self) -> None:
        self.bags: list[Path] = []
        self.real: dict[Path, Path] = {}  # real path -> the name it was first found under
        self.repeats: list[Path] = []
        self.notes: list[str] = []

    def visit(self, path: Path, ancestors: tuple[Path, ...]) -> None:
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError) as err:  # a loop of links, a dangling one, no permission
            self.notes.append(f"{path}: not read: {describe(err)}")
            return
        if _is_bag(path):
            self._add(path, real)
            return
        if not path.is_dir():
            return
        if real in ancestors:
            self.notes.append(f"{path}: a symlink loop (it leads back to {real}); not followed")
            return
        try:
            children = sorted(path.iterdir(), key=lambda c: (c.is_symlink(), c.name))
        except OSError as err:
            self.notes.append(f"{path}: folder not read: {describe(err)}")
            return
        for child in children:
            if not child.name.startswith("."):
                self.visit(child, (*ancestors, real))

    def _add(self, path: Path, real: Path) -> None:
        first = self.real.get(real)
        if first is not None:
            self.repeats.append(path)
            self.notes.append(f"{path}: the same recording as {first} ({real}); counted once")
            return
        self.real[real] = path
        self.bags.append(path)


def _is_bag(path: Path) -> bool:
    if path.is_file():
        return path.suffix in STORAGE_SUFFIXES
    return (path / BAG_METADATA).is_file()



def describe(err: BaseException, limit: int = 160) -> str:
    """An exception as one short line: its type and the first line of its text (libraries'
    messages can run to many lines of context)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


