"""Progress bars that suit where the output goes: every long loop makes its bar here.

On a terminal, tqdm's live bar. Anywhere else (a CI log, a file, a pipe) a live bar is thousands
of carriage-return redraws; there the bar instead writes one whole line each time another
``every_percent`` of the total is done (and a last line when it closes), e.g.::

    train:  10%|#         | 200/2000 [00:04<00:38, 47.1it/s, loss=0.213]
    train:  20%|##        | 400/2000 [00:08<00:33, 47.9it/s, loss=0.118]

``ACTJEPA_PROGRESS=lines`` or ``=bar`` overrides the choice (e.g. ``bar`` under a terminal
multiplexer that is not detected as one).
"""
from __future__ import annotations

import math
import os
import sys
from typing import Any, TextIO

from tqdm import tqdm

EVERY_PERCENT = 10.0
"""Default spacing of the plain lines when the output is not a terminal."""
UNKNOWN_TOTAL_INTERVAL_S = 30.0  # without a total: a line at most this often
LINE_COLUMNS = 100  # width of a plain line (bar, counts, rate and the postfix)
MODE_ENV = "ACTJEPA_PROGRESS"
MODES = ("bar", "lines")


class LineProgress(tqdm):
    """A tqdm whose display is a whole line per ``every_percent`` of the total (no redraws).

    Without a total (unknown length) it writes a line at most every ``mininterval`` seconds
    (default 30). ``write`` and ``set_postfix`` work as with tqdm; nothing is cleared.
    """

    def __init__(self, *args: Any, every_percent: float = EVERY_PERCENT, **kwargs: Any) -> None:
        if not 0 < every_percent <= 100:
            raise ValueError(f"every_percent is {every_percent}; expected a value in (0, 100]")
        self._every = every_percent
        self._last_bucket: float | None = None
        self._last_line_n: int | None = None
        if not kwargs.get("total"):
            kwargs.setdefault("mininterval", UNKNOWN_TOTAL_INTERVAL_S)
        super().__init__(*args, **kwargs)

    def _bucket(self) -> float:
        if not self.total:
            return float(self.n)  # unknown total: every display (rate-limited by mininterval)
        return math.floor(100.0 * self.n / self.total / self._every)

    def _line(self) -> None:
        self.fp.write(self.__str__() + "\n")
        self.fp.flush()
        self._last_line_n = self.n

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if msg is not None:  # a request to clear: plain lines are never cleared
            return True
        bucket = self._bucket()
        if self._last_bucket is None or bucket > self._last_bucket:
            self._last_bucket = bucket
            self._line()
        return True

    def clear(self, nolock: bool = False) -> None:  # nothing on screen to clear
        return None

    def moveto(self, n: int) -> None:  # no cursor movement in a log
        return None

    def close(self) -> None:
        if self.disable:
            return
        if self._last_line_n != self.n:
            self._line()  # the final count, whatever percentage it reached
        self.disable = True
        self._decr_instances(self)


def is_terminal(stream: TextIO | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def progress_bar(total: float | None = None, desc: str | None = None, unit: str = "it",
                 disable: bool = False, file: TextIO | None = None,
                 every_percent: float = EVERY_PERCENT, **kwargs: Any) -> tqdm:
    """A tqdm bar on a terminal, a ``LineProgress`` elsewhere (see the module docstring).

    Takes tqdm's keyword arguments (``initial``, ``dynamic_ncols``, ...); ``file`` defaults to
    stderr, looked up at call time (so captured or redirected stderr is honoured).
    """
    stream = sys.stderr if file is None else file
    mode = os.environ.get(MODE_ENV, "").strip().lower()
    if mode and mode not in MODES:
        mode = ""  # an unknown value: decide by the stream, as if unset
    lines = (mode == "lines") or (not mode and not is_terminal(stream))
    if lines:
        kwargs.pop("dynamic_ncols", None)  # no terminal to measure
        return LineProgress(total=total, desc=desc, unit=unit, disable=disable, file=stream,
                            every_percent=every_percent, ncols=kwargs.pop("ncols", LINE_COLUMNS),
                            ascii=kwargs.pop("ascii", True), **kwargs)
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, file=stream, **kwargs)
