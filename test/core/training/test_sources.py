"""The trainer's two data sources, in memory and streamed, stand behind one interface: the trainer
asks for ``batches(skip)``, ``ordered(n)`` and the state to resume from, and never which kind it
holds."""
from __future__ import annotations

import inspect
import itertools

import numpy as np
import torch

from actjepa_core.data.episodes import Episode
from actjepa_core.data.normalise import Normaliser
from actjepa_core.data.transitions import EpochSampler, TransitionSet
from actjepa_core.training import trainer
from actjepa_core.training.sources import InMemorySource, StreamedSource

INTERFACE = ("batches", "ordered", "state_dict", "load_state_dict", "__len__")


def episodes() -> list[Episode]:
    rng = np.random.default_rng(0)
    return [Episode(obs={"image": rng.integers(0, 255, (9, 8, 8, 3), dtype=np.uint8),
                         "state": rng.normal(size=(9, 3)).astype(np.float32)},
                    actions=rng.uniform(-1, 1, (9, 2)).astype(np.float32)) for _ in range(3)]


def test_both_sources_offer_the_same_interface():
    for name in INTERFACE:
        a, b = getattr(InMemorySource, name), getattr(StreamedSource, name)
        assert list(inspect.signature(a).parameters) == list(inspect.signature(b).parameters), name


def test_the_trainer_never_asks_which_source_it_holds():
    source = inspect.getsource(trainer.Trainer)
    assert "self.streamed" not in source and "self.sampler" not in source


def test_in_memory_batches_are_shifted_and_resume_from_the_sampler_state():
    demos = episodes()
    stats = Normaliser.fit(demos, ["image", "state"])
    transitions = TransitionSet(demos, ["image", "state"], stats)

    def source(seed: int) -> InMemorySource:
        sampler = EpochSampler(len(transitions), 4, torch.Generator().manual_seed(seed), "cpu")
        return InMemorySource(transitions, shift=2, sampler=sampler)

    torch.manual_seed(0)
    first = source(0)
    run = first.batches()
    taken = list(itertools.islice(run, 3))
    state = first.state_dict()
    rest = list(itertools.islice(run, 2))
    assert all(b.actions.shape[0] == 4 for b in taken + rest)
    unshifted = transitions.batch(torch.arange(4))
    assert unshifted.obs["image"].shape == taken[0].obs["image"].shape

    resumed = source(1)  # another seed: the restored state alone decides the order
    resumed.load_state_dict(state)
    again = list(itertools.islice(resumed.batches(skip=3), 2))
    for a, b in zip(rest, again):
        torch.testing.assert_close(a.actions, b.actions)
        torch.testing.assert_close(a.obs["state"], b.obs["state"])

    ordered = list(first.ordered(5))
    assert sum(b.actions.shape[0] for b in ordered) == len(first) == len(transitions)
