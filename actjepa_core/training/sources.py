"""Where the trainer's transitions come from: held in memory (device tensors, positions drawn by
an EpochSampler) or streamed from the episodes file by DataLoader workers. Both stand behind one
interface, so the trainer never asks which:

* ``batches(skip)``: endless shuffled model-input batches for this rank, DrQ-shifted (skip: the
  steps already taken, for a stream that resumes by passing over them);
* ``ordered(batch_size)``: every transition once, in order (validation);
* ``state_dict()`` / ``load_state_dict(content)``: what ``last.pt`` must hold to resume exactly;
* ``transitions`` and ``len()``: the transition set itself.
"""
from __future__ import annotations

from typing import Iterator, Union

from actjepa_core.data.augment import shift_batch
from actjepa_core.data.streaming import StreamingTransitions
from actjepa_core.data.transitions import Batch, EpochSampler, TransitionSet


class InMemorySource:
    """Transitions on the device; batches gathered by position and shifted on the device."""

    def __init__(self, transitions: TransitionSet, shift: int = 0,
                 sampler: EpochSampler | None = None):
        self.transitions, self.shift, self.sampler = transitions, shift, sampler

    def __len__(self) -> int:
        return len(self.transitions)

    def batches(self, skip: int = 0) -> Iterator[Batch]:
        """The sampler's position is in its state (restored from last.pt): ``skip`` is not
        needed."""
        for positions in self.sampler:
            yield shift_batch(self.transitions.batch(positions), self.shift, None)

    def ordered(self, batch_size: int) -> Iterator[Batch]:
        return self.transitions.ordered(batch_size)

    def state_dict(self) -> dict:
        return {"sampler": self.sampler.state_dict()} if self.sampler is not None else {}

    def load_state_dict(self, content: dict) -> None:
        if self.sampler is not None and "sampler" in content:
            self.sampler.load_state_dict(content["sampler"])


class StreamedSource:
    """Transitions read from the file by ``workers`` processes, which also shift the frames;
    a resumed stream passes over the batches of the steps already taken."""

    def __init__(self, transitions: StreamingTransitions, batch_size: int = 0, seed: int = 0,
                 rank: int = 0, world_size: int = 1, window: int = 32, workers: int = 2,
                 shift: int = 0):
        self.transitions = transitions
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.window, self.workers, self.shift = window, workers, shift

    def __len__(self) -> int:
        return len(self.transitions)

    def batches(self, skip: int = 0) -> Iterator[Batch]:
        yield from self.transitions.loader(self.batch_size, self.seed, self.rank, self.world_size,
                                           self.window, self.workers, self.shift, skip=skip)

    def ordered(self, batch_size: int) -> Iterator[Batch]:
        return self.transitions.ordered(batch_size, self.workers)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, content: dict) -> None:
        pass


TrainingSource = Union[InMemorySource, StreamedSource]

