"""The README's "Layout" block is the map of the tree: everything it names exists, and every Python
package of the source tree in git is on it (a new stage or sub-package must be added there, a
removed one taken off; test/ mirrors the source and is one line)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INDENT = 2  # spaces per level of the block


def layout_block() -> list[str]:
    """The lines of the first fenced block under the README's '## Layout' heading."""
    section = (ROOT / "README.md").read_text().split("\n## Layout\n", 1)[1]
    return section.split("```", 2)[1].splitlines()[1:]  # drop the fence's language tag line


def named_paths(lines: list[str]) -> set[str]:
    """Paths the block names: ``name  name  # note`` per line, nested by indentation under the
    last ``folder/`` one level up; lines holding only a note continue the line above."""
    paths: set[str] = set()
    folders: dict[int, str] = {}  # level -> the folder that level's names live in
    for line in lines:
        names = line.partition("#")[0]
        if not names.strip():
            continue
        level = (len(names) - len(names.lstrip())) // INDENT
        parent = folders[level - 1] if level else ""
        for name in names.split():
            paths.add((parent + name).rstrip("/"))
            if name.endswith("/"):
                folders[level] = parent + name
    return paths


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip("not a git checkout: the layout is checked against git ls-files")
    return out.splitlines()


def test_the_parser_reads_nesting_and_notes():
    lines = ["a/  b.txt   # two things", "  c/        # in a", "              # more about c",
             "    d.py", "  e.py  f/", "g/"]
    assert named_paths(lines) == {"a", "b.txt", "a/c", "a/c/d.py", "a/e.py", "a/f", "g"}


def test_everything_the_layout_names_exists():
    paths = named_paths(layout_block())
    assert {"actjepa_core", "actjepa_ros", "test"} <= paths
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"README layout names {missing}, which do not exist"


def test_every_package_in_git_is_on_the_layout():
    packages = {str(Path(f).parent) for f in tracked_files()
                if Path(f).name == "__init__.py" and not f.startswith("test/")}
    unnamed = sorted(packages - named_paths(layout_block()))
    assert not unnamed, f"packages {unnamed} are missing from the README's layout block"
