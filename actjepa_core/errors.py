"""The one user-facing error type.

Every bad input (a missing file, a malformed key, NaN in the data, an unknown task) is raised as an
``ActJepaError`` whose message names the file/key/topic and what was expected. The CLI prints the
message alone (no traceback) and exits non-zero. ``check_choice`` is the one "expected one of"
check.
"""
from __future__ import annotations

from typing import Iterable


class ActJepaError(Exception):
    """A user-facing error with a message that names the offending input and what was expected."""


def check_choice(where: str, key: str, value: object, choices: Iterable[object]) -> None:
    """Raise ``{where}: {key} is {value!r}; expected one of {choices}`` unless ``value`` is one
    of ``choices`` (``where`` may be empty)."""
    choices = tuple(choices)
    if value not in choices:
        prefix = f"{where}: " if where else ""
        raise ActJepaError(f"{prefix}{key} is {value!r}; expected one of "
                           f"{', '.join(map(str, choices))}")
