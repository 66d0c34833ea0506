"""Image observations that never sit in memory whole: a recording's frames are decoded and written
a chunk at a time, so converting a 10-minute camera bag at full size (``image_size: 0``) needs the
memory of one chunk, not of the recording.

While a bag is converted, each frame some tick uses is decoded once to check it (its shape, that
it decodes at all) and its encoded message is set aside in an anonymous temporary file (``Spill``:
deleted by the system when closed or when the process dies, whatever kills it). The episode holds
``SpilledFrames``: per tick, where its message lies. ``SpilledFrames`` is a ``LazyFrames``, so
``data.episodes.write_episodes`` decodes the frames again a chunk of rows at a time, straight into
the HDF5 dataset (whole-frame chunks, gzip, Fletcher-32).
"""
from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

from actjepa_core.data.episodes import LazyFrames, image_chunk_rows
from actjepa_core.errors import ActJepaError

FrameDecoder = Callable[[bytes], np.ndarray]  # an encoded message -> the RGB frame


@dataclass(frozen=True)
class Frame:
    """Where one checked frame's encoded message lies in a spill, and the frame's shape."""

    offset: int
    size: int
    shape: tuple[int, ...]


class Spill:
    """Encoded messages set aside on disk (an anonymous temporary file), read back by offset."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="actjepa-frames-")
        self._end = 0
        self._lock = threading.Lock()

    def add(self, raw: bytes, shape: tuple[int, ...]) -> Frame:
        with self._lock:
            offset = self._end
            os.pwrite(self._file.fileno(), raw, offset)
            self._end += len(raw)
        return Frame(offset, len(raw), tuple(shape))

    def read(self, frame: Frame) -> bytes:
        return os.pread(self._file.fileno(), frame.size, frame.offset)

    def close(self) -> None:
        self._file.close()


class SpilledFrames(LazyFrames):
    """An episode's image observation: one spilled frame per tick, decoded on demand. Reads like
    the episodes file's ``LazyFrames`` (``read``, slices, ``np.asarray``)."""

    def __init__(self, spill: Spill, frames: Sequence[Frame], decode: FrameDecoder,
                 where: str) -> None:
        shape = (len(frames), *frames[0].shape)
        super().__init__("", "", shape, np.uint8, image_chunk_rows(shape), where)
        self.spill, self.frames, self.decode = spill, list(frames), decode

    def read(self, start: int, stop: int) -> np.ndarray:
        rows = np.empty((max(0, stop - start), *self.shape[1:]), dtype=np.uint8)
        last: tuple[Frame | None, np.ndarray | None] = (None, None)
        for i, frame in enumerate(self.frames[start:stop]):
            if frame != last[0]:  # a frame several ticks use is decoded once per read
                last = (frame, self._decoded(frame))
            rows[i] = last[1]
        return rows

    def _decoded(self, frame: Frame) -> np.ndarray:
        try:
            pixels = self.decode(self.spill.read(frame))
        except Exception as err:  # noqa: BLE001 - it decoded when checked: say so, in one line
            raise ActJepaError(f"{self.where}: a frame that decoded before does not now "
                               f"({type(err).__name__}: {err})") from None
        if pixels.shape != frame.shape:
            raise ActJepaError(f"{self.where}: a frame decoded to {pixels.shape}, before to "
                               f"{frame.shape}")
        return pixels

    def __iter__(self) -> Iterator[np.ndarray]:
        for start in range(0, len(self), self.chunk_rows):
            yield from self.read(start, min(len(self), start + self.chunk_rows))

    def __getstate__(self) -> dict:
        raise TypeError("SpilledFrames live in this process's temporary file; write them first")
