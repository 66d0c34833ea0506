"""Transitions streamed from an episodes file too large for memory.

``TransitionSet`` holds every observation as device tensors; hours of camera demonstrations do not
fit. ``StreamingTransitions`` keeps only what is small in memory (states, actions, the index of
valid windows) and reads images from the HDF5 file while training, in ``torch.utils.data``
DataLoader worker processes, each with its own file handle:

- the unit of reading is a *block*: up to ``BLOCK_ROWS`` consecutive window starts of one demo,
  read as one contiguous row range (whole HDF5 chunks, each decompressed once, plus the K rows
  after it that its last windows look ahead to);
- an epoch shuffles the blocks, deals them out to the DDP ranks (``rank::world``, a
  ``DistributedSampler`` over blocks of the whole-demo training split), and shuffles the
  transitions inside each *window* of ``shuffle_window`` blocks; batches are consecutive runs of
  that order, one stream per rank running on across epochs (no batch is dropped);
- a worker gets a few consecutive batches at a time, reads the blocks they touch, gathers, and
  random-shifts images (DrQ, on the uint8 frames, seeded per batch so a resumed run repeats it);
- a damaged chunk stops training with one line naming the file, demo, key and rows.

A batch is defined by its *positions* (indices of valid window starts, as in ``TransitionSet``):
``StreamingTransitions.batch(p)`` and ``TransitionSet.batch(p)`` return the same tensors.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from actjepa_core.data.augment import shift_batch
from actjepa_core.data.episodes import (
    Episode,
    EpisodeSet,
    LazyFrames,
    is_image_array,
    read_episodes,
)
from actjepa_core.data.normalise import Normaliser
from actjepa_core.data.processor import ObservationProcessor
from actjepa_core.data.transitions import Batch
from actjepa_core.errors import ActJepaError

BLOCK_ROWS = 64  # window starts per block (rounded up to whole chunks of the image datasets)
GB = 1024 ** 3
WORKER_TIMEOUT_S = 600  # a worker silent this long (hung on a file system) fails the run
SEED_STRIDE = 1_000_003  # mixes (seed, rank, batch) into one augmentation seed


# ---- choosing in memory or streaming --------------------------------------------------------
@dataclass
class DataPlan:
    loader: str  # "memory" | "stream"
    nbytes: int  # what the in-memory path would hold (all observations and actions)
    budget: int
    stream_keys: list[str]

    def describe(self) -> str:
        size = f"{_size(self.nbytes)} in memory vs a budget of {_size(self.budget)}"
        return (f"streaming {', '.join(self.stream_keys)} from disk ({size})"
                if self.loader == "stream" else f"holding the data in memory ({size})")


def _size(nbytes: int) -> str:
    return f"{nbytes / GB:.2f} GB" if nbytes >= GB else f"{nbytes / 1024 ** 2:.1f} MB"


def plan_data(path: str | Path, obs_keys: Sequence[str] | None, loader: str = "auto",
              budget_gb: float = 8.0) -> DataPlan:
    """Memory or streaming for the episodes file at ``path``, from its metadata alone (no array
    is read): ``auto`` streams when the observations exceed ``budget_gb``."""
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except (OSError, FileNotFoundError):  # read_episodes says what is wrong with it
        return DataPlan("memory", 0, int(budget_gb * GB), [])
    with f:
        demos = [g for name, g in f.get("data", {}).items() if name.startswith("demo_")]
        nbytes, images = 0, set()
        for demo in demos:
            obs = demo.get("obs", {})
            keys = obs_keys or list(obs)
            for key in keys:
                if key in obs:
                    ds = obs[key]
                    # states are held as float32 once normalised; images stay uint8
                    item = 1 if ds.dtype == np.uint8 else 4
                    nbytes += int(np.prod(ds.shape)) * item
                    if is_image_array(ds):
                        images.add(key)
            if "actions" in demo:
                nbytes += int(np.prod(demo["actions"].shape)) * 4
    budget = int(budget_gb * GB)
    stream = loader == "stream" or (loader == "auto" and nbytes > budget)
    if stream and not images:
        if loader == "stream":
            raise ActJepaError(f"{path}: data.loader is 'stream' but the file has no image "
                               "observations to stream (states and actions are always held in "
                               "memory)")
        stream = False
    return DataPlan("stream" if stream else "memory", nbytes, budget,
                    sorted(images) if stream else [])


def open_training_data(path: str | Path, obs_keys: Sequence[str] | None, loader: str = "auto",
                       budget_gb: float = 8.0) -> tuple[EpisodeSet, DataPlan]:
    """The episodes file for training: images left on disk (``LazyFrames``) when streamed."""
    plan = plan_data(path, obs_keys, loader, budget_gb)
    return read_episodes(path, obs_keys, stream_keys=plan.stream_keys), plan


def is_streamed(data: EpisodeSet) -> bool:
    return any(isinstance(v, LazyFrames) for ep in data.episodes[:1] for v in ep.obs.values())


# ---- the dataset ----------------------------------------------------------------------------
class StreamError(NamedTuple):
    """What a worker sends back instead of batches when reading failed (re-raised in the main
    process as one line, not a worker traceback)."""

    message: str


class StreamingTransitions:
    """The transitions of ``episodes`` (images as ``LazyFrames``), by the same positions as
    ``TransitionSet``; images are read from the file when a batch needs them."""

    def __init__(self, episodes: Sequence[Episode], obs_keys: Sequence[str],
                 normaliser: Normaliser, steps: int = 1, device: str | torch.device = "cpu"):
        self.steps, self.device = steps, torch.device(device)
        self.processor = ObservationProcessor.from_episodes(episodes, obs_keys, normaliser,
                                                            self.device)
        self.normaliser = self.processor.normaliser
        cpu = self.processor.to("cpu")
        self.lazy_keys = [k for k in obs_keys if isinstance(episodes[0].obs[k], LazyFrames)]
        self.memory_keys = [k for k in obs_keys if k not in self.lazy_keys]
        lengths = np.array([ep.num_steps for ep in episodes])
        first_row = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        windows = np.maximum(lengths - steps, 0)  # valid starts per demo
        if windows.sum() == 0:
            raise ActJepaError(f"no demo is longer than {steps} step(s); cannot form a transition")
        self.starts = np.concatenate([first_row[i] + np.arange(n) for i, n in enumerate(windows)])
        # states and actions: small, held like TransitionSet holds them (normalised, on the CPU)
        self.obs = {k: cpu.compact(k, torch.as_tensor(np.concatenate(
            [np.asarray(ep.obs[k]) for ep in episodes]))) for k in self.memory_keys}
        self.actions = cpu.episode_actions(episodes)  # (N, A)
        self.frames = {k: [ep.obs[k] for ep in episodes] for k in self.lazy_keys}
        chunk = max([1] + [ep.obs[k].chunk_rows for ep in episodes[:1] for k in self.lazy_keys])
        rows = chunk * math.ceil(BLOCK_ROWS / chunk)  # blocks start on chunk boundaries
        demo, first, size = [], [], []  # block -> demo, first local start, number of starts
        for i, n in enumerate(windows):
            for a in range(0, int(n), rows):
                demo.append(i)
                first.append(a)
                size.append(min(rows, int(n) - a))
        self.block_demo, self.block_first = np.array(demo), np.array(first)
        self.block_size = np.array(size)
        self.block_pos = np.concatenate([[0], np.cumsum(self.block_size)[:-1]])  # first position
        self._window = np.arange(steps)

    def __len__(self) -> int:
        return int(self.starts.size)

    @property
    def num_blocks(self) -> int:
        return int(self.block_size.size)

    # ---- reading ---------------------------------------------------------------------------
    def read_blocks(self, blocks: np.ndarray) -> dict[str, np.ndarray]:
        """Frames of ``blocks`` (sorted), each block's rows [first, first + size + K), stacked:
        key -> (rows, ...)."""
        out = {}
        for key in self.lazy_keys:
            parts = []
            for b in blocks:
                start = int(self.block_first[b])
                parts.append(self.frames[key][self.block_demo[b]].read(
                    start, start + int(self.block_size[b]) + self.steps))
            out[key] = np.concatenate(parts) if parts else np.zeros((0,))
        return out

    def gather(self, positions: np.ndarray, blocks: np.ndarray,
               frames: dict[str, np.ndarray]) -> Batch:
        """The compact batch (uint8 images, normalised states and actions, on the CPU) at
        ``positions``, whose frames are in ``frames`` as read for ``blocks``."""
        positions = np.asarray(positions, dtype=np.int64)
        t = self.starts[positions]  # global rows
        window = t[:, None] + self._window  # (B, K)
        block = np.searchsorted(self.block_pos, positions, side="right") - 1
        rows_per_block = self.block_size[blocks] + self.steps
        base = dict(zip(blocks.tolist(), np.concatenate([[0], np.cumsum(rows_per_block)[:-1]])))
        local = np.array([base[b] for b in block.tolist()], dtype=np.int64) + (
            positions - self.block_pos[block])  # row of o_t in the stacked frames
        obs = {k: v[t] for k, v in self.obs.items()}
        nxt = {k: v[window + 1] for k, v in self.obs.items()}
        for key, stacked in frames.items():
            obs[key] = torch.from_numpy(stacked[local])
            nxt[key] = torch.from_numpy(stacked[local[:, None] + 1 + self._window])
        return Batch(obs, self.actions[window], nxt)

    def blocks_of(self, positions: np.ndarray) -> np.ndarray:
        return np.unique(np.searchsorted(self.block_pos, np.asarray(positions).ravel(),
                                         side="right") - 1)

    def compact_batch(self, positions: np.ndarray) -> Batch:
        blocks = self.blocks_of(positions)
        return self.gather(positions, blocks, self.read_blocks(blocks))

    def to_model(self, batch: Batch, non_blocking: bool = False) -> Batch:
        """A compact CPU batch -> model input on the device (images to floats in [0, 1])."""
        def move(obs):
            return self.processor.expand({k: v.to(self.device, non_blocking=non_blocking)
                                          for k, v in obs.items()})
        return Batch(move(batch.obs), batch.actions.to(self.device, non_blocking=non_blocking),
                     move(batch.next_obs))

    def batch(self, positions: np.ndarray | torch.Tensor) -> Batch:
        """The model-input batch at ``positions``, read here (no workers): what
        ``TransitionSet.batch`` returns for the same positions."""
        if isinstance(positions, torch.Tensor):
            positions = positions.cpu().numpy()
        return self.to_model(self.compact_batch(positions))

    # ---- the order -------------------------------------------------------------------------
    def epoch_order(self, seed: int, epoch: int, rank: int = 0, world_size: int = 1,
                    window: int = 32) -> Iterator[np.ndarray]:
        """This rank's positions for one epoch, window by window: blocks shuffled and dealt out
        to ranks, transitions shuffled inside each window of ``window`` blocks."""
        rng = np.random.default_rng([seed, epoch])
        blocks = rng.permutation(self.num_blocks)[rank::world_size]
        for w in range(0, len(blocks), window):
            chosen = blocks[w:w + window]
            yield rng.permutation(np.concatenate(
                [self.block_pos[b] + np.arange(self.block_size[b]) for b in chosen]))

    def stream(self, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
               window: int = 32) -> Iterator[np.ndarray]:
        """Endless batches of positions for one rank: the epoch orders run on into each other,
        so every transition is used once per epoch and no batch is short."""
        if len(self) < batch_size * world_size or self.num_blocks < world_size:
            raise ActJepaError(f"{len(self)} training transitions in {self.num_blocks} blocks of "
                               f"{BLOCK_ROWS} steps: too few for a global batch of "
                               f"{batch_size * world_size} over {world_size} process(es)")
        pending, held = [], 0
        for epoch in count():
            for part in self.epoch_order(seed, epoch, rank, world_size, window):
                pending.append(part)
                held += part.size
                if held < batch_size:
                    continue
                flat = np.concatenate(pending)
                n = flat.size // batch_size
                yield from flat[:n * batch_size].reshape(n, batch_size)
                pending, held = [flat[n * batch_size:]], flat.size - n * batch_size

    def loader(self, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
               window: int = 32, workers: int = 2, shift: int = 0, skip: int = 0,
               with_positions: bool = False) -> Iterator:
        """Endless model-input batches for one rank (its local ``batch_size``), read by
        ``workers`` DataLoader processes; ``skip`` batches are passed over (resume)."""
        per_item = max(1, round(window * BLOCK_ROWS / batch_size))
        plan = _numbered(self.stream(batch_size, seed, rank, world_size, window), skip)
        items = _Items(_grouped(plan, per_item))
        aug_seed = (seed * SEED_STRIDE + rank) * SEED_STRIDE
        return self._run(items, workers, shift, aug_seed, with_positions)

    def ordered(self, batch_size: int, workers: int = 2) -> Iterator[Batch]:
        """Every transition once, in order (validation)."""
        per_item = max(1, round(4 * BLOCK_ROWS / batch_size))
        plan = ((i, np.arange(a, min(a + batch_size, len(self))))
                for i, a in enumerate(range(0, len(self), batch_size)))
        return self._run(_Items(_grouped(plan, per_item)), workers, 0, 0, False)

    def _run(self, items: "_Items", workers: int, shift: int, aug_seed: int,
             with_positions: bool) -> Iterator:
        pin = self.device.type == "cuda"
        loader = DataLoader(_Reader(self, shift, aug_seed), batch_size=None, sampler=items,
                            num_workers=workers, pin_memory=pin,
                            worker_init_fn=_one_thread if workers else None,
                            timeout=WORKER_TIMEOUT_S if workers else 0,
                            prefetch_factor=2 if workers else None)
        iterator = iter(loader)
        try:
            for item in iterator:
                if isinstance(item, StreamError):
                    raise ActJepaError(item.message)
                for positions, batch in item:
                    batch = self.to_model(batch, non_blocking=pin)
                    yield (positions, batch) if with_positions else batch
        except RuntimeError as err:  # a worker killed (out of memory) or timed out
            if "DataLoader" not in str(err):
                raise
            raise ActJepaError(f"streaming loader failed: {str(err).splitlines()[0]}") from None
        finally:  # stop the workers now, not when the iterator is garbage collected
            shutdown = getattr(iterator, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()

    def __getstate__(self) -> dict:
        """Workers get the CPU parts (the device processor is rebuilt on the CPU there)."""
        state = dict(self.__dict__)
        state["device"] = torch.device("cpu")
        state["processor"] = self.processor.to("cpu")
        state["normaliser"] = state["processor"].normaliser
        return state


def _numbered(batches: Iterator[np.ndarray], skip: int) -> Iterator[tuple[int, np.ndarray]]:
    for i, positions in enumerate(batches):
        if i >= skip:
            yield i, positions


def _grouped(plan: Iterator[tuple[int, np.ndarray]], size: int):
    group = []
    for entry in plan:
        group.append(entry)
        if len(group) == size:
            yield tuple(group)
            group = []
    if group:
        yield tuple(group)


class _Items(Sampler):
    """The DataLoader's 'indices': each is a few (batch number, positions) pairs for one worker."""

    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)


class _Reader(Dataset):
    def __init__(self, source: StreamingTransitions, shift: int, aug_seed: int):
        self.source, self.shift, self.aug_seed = source, shift, aug_seed

    def __getitem__(self, item):
        try:
            positions = np.concatenate([p for _, p in item])
            blocks = self.source.blocks_of(positions)
            frames = self.source.read_blocks(blocks)
            out = []
            for number, p in item:
                batch = self.source.gather(p, blocks, frames)
                if self.shift > 0:
                    generator = torch.Generator().manual_seed(self.aug_seed + number)
                    batch = shift_batch(batch, self.shift, generator)
                out.append((torch.from_numpy(p), batch))
            return out
        except ActJepaError as err:
            return StreamError(str(err))

    def __len__(self) -> int:  # not used: the sampler is endless
        return 0


def _one_thread(_worker: int) -> None:
    torch.set_num_threads(1)
