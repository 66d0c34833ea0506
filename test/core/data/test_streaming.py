"""The streaming episodes reader: chunked images on disk, the same batches as the in-memory set,
the epoch order and its sharding over ranks, augmentation in workers, damaged chunks named."""
import h5py
import numpy as np
import pytest
import torch

from actjepa_core.data.augment import random_shift
from actjepa_core.data.episodes import (
    Episode,
    LazyFrames,
    image_chunk_rows,
    read_episodes,
    write_episodes,
)
from actjepa_core.data.normalise import Normaliser
from actjepa_core.data.streaming import (
    BLOCK_ROWS,
    StreamingTransitions,
    open_training_data,
    plan_data,
)
from actjepa_core.data.transitions import TransitionSet
from actjepa_core.errors import ActJepaError

LENGTHS = (50, 130, 7, 90, 200, 3)  # short demos too: one with no window at K = 3


def episodes(lengths=LENGTHS, size=12, seed=0):
    rng = np.random.default_rng(seed)
    for i, steps in enumerate(lengths):
        base = rng.integers(0, 255, (1, size, size, 3))  # a per-demo scene, moving pixels on it
        noise = rng.integers(-30, 30, (steps, size, size, 3))
        yield Episode({"image": np.clip(base + noise, 0, 255).astype(np.uint8),
                       "state": rng.normal(size=(steps, 5)).astype(np.float32)},
                      rng.uniform(-1, 1, (steps, 2)).astype(np.float32), success=i % 2 == 0)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "images.hdf5"
    write_episodes(path, episodes(), source="unit")  # a generator: written one at a time
    return path


def both(path, steps):
    memory, lazy = read_episodes(path), read_episodes(path, stream_keys=["image"])
    normaliser = Normaliser.fit(memory.episodes, memory.obs_keys)
    return (TransitionSet(memory.episodes, memory.obs_keys, normaliser, steps),
            StreamingTransitions(lazy.episodes, lazy.obs_keys, normaliser, steps))


def assert_same(a, b):
    assert torch.equal(a.actions, b.actions)
    for key in a.obs:
        assert torch.equal(a.obs[key], b.obs[key]), key
        assert torch.equal(a.next_obs[key], b.next_obs[key]), key


def test_images_are_written_in_chunks_of_whole_frames_compressed_and_checksummed(data_file):
    with h5py.File(data_file) as f:
        image, state = f["data/demo_1/obs/image"], f["data/demo_1/obs/state"]
        assert image.chunks == (image_chunk_rows(image.shape), 12, 12, 3)
        assert image.compression == "gzip" and image.fletcher32
        assert state.compression is None
        assert len([n for n in f["data"] if n.startswith("demo_")]) == len(LENGTHS)


def test_stream_keys_stay_on_disk(data_file):
    lazy = read_episodes(data_file, stream_keys=["image"])
    frames = lazy.episodes[1].obs["image"]
    assert isinstance(frames, LazyFrames) and frames.shape == (130, 12, 12, 3)
    assert isinstance(lazy.episodes[1].obs["state"], np.ndarray)
    full = read_episodes(data_file).episodes[1].obs["image"]
    np.testing.assert_array_equal(frames.read(10, 40), full[10:40])
    np.testing.assert_array_equal(np.asarray(frames), full)
    assert lazy.obs_spec() == read_episodes(data_file).obs_spec()


def test_frames_left_on_disk_are_rewritten_a_chunk_at_a_time(data_file, tmp_path, monkeypatch):
    """Writing LazyFrames (a streamed file's, or a bag's spilled frames) never holds a demo's
    images whole: the copy is read chunk by chunk and lands with the same layout and values."""
    lazy = read_episodes(data_file, stream_keys=["image"])
    reads = []
    read = LazyFrames.read

    def counted(self, start, stop):
        reads.append(stop - start)
        return read(self, start, stop)

    monkeypatch.setattr(LazyFrames, "read", counted)
    monkeypatch.setattr(LazyFrames, "__array__", lambda *_a, **_k: pytest.fail("read whole"))
    write_episodes(tmp_path / "copy.hdf5", lazy.episodes, source="copy", obs_keys=lazy.obs_keys)
    monkeypatch.undo()
    assert max(reads) == image_chunk_rows((max(LENGTHS), 12, 12, 3)) < max(LENGTHS)
    copied = read_episodes(tmp_path / "copy.hdf5").episodes
    for a, b in zip(read_episodes(data_file).episodes, copied):
        np.testing.assert_array_equal(a.obs["image"], b.obs["image"])
        np.testing.assert_array_equal(a.actions, b.actions)
    with h5py.File(data_file) as f, h5py.File(tmp_path / "copy.hdf5") as g:
        source, copy = f["data/demo_4/obs/image"], g["data/demo_4/obs/image"]
        assert (copy.chunks, copy.compression, copy.fletcher32) == (
            source.chunks, source.compression, source.fletcher32)


@pytest.mark.parametrize("steps", [1, 3])
def test_same_positions_give_the_same_batch_as_in_memory(data_file, steps):
    memory, stream = both(data_file, steps)
    assert len(memory) == len(stream)
    positions = torch.randperm(len(memory), generator=torch.Generator().manual_seed(1))[:200]
    assert_same(memory.batch(positions), stream.batch(positions))


def test_loader_batches_equal_in_memory_batches_of_their_positions(data_file):
    memory, stream = both(data_file, 2)
    seen = []
    loader = stream.loader(32, seed=3, workers=2, window=2, with_positions=True)
    for i, (positions, batch) in enumerate(loader):
        assert_same(memory.batch(positions), batch)
        seen.append(positions)
        if i == 30:
            break
    loader.close()
    # one epoch (the first len // 32 batches) never repeats a transition
    first = torch.cat(seen[:len(stream) // 32])
    assert first.unique().numel() == first.numel()


def test_an_epoch_covers_every_transition_once_over_the_ranks(data_file):
    _, stream = both(data_file, 1)
    for world in (1, 2, 3):
        parts = [np.concatenate(list(stream.epoch_order(seed=0, epoch=4, rank=r,
                                                        world_size=world, window=3)))
                 for r in range(world)]
        assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(len(stream)))
    a = np.concatenate(list(stream.epoch_order(0, 0)))
    b = np.concatenate(list(stream.epoch_order(0, 1)))
    assert not np.array_equal(a, b)  # a new order every epoch


def test_shuffling_stays_inside_a_window_of_blocks(data_file):
    _, stream = both(data_file, 1)
    for part in stream.epoch_order(seed=0, epoch=0, window=2):
        assert stream.blocks_of(part).size <= 2


def test_batches_do_not_depend_on_worker_count_and_skip_resumes(data_file):
    _, stream = both(data_file, 1)

    def take(n, **kw):
        loader = stream.loader(16, seed=5, window=2, shift=2, with_positions=True, **kw)
        out = [next(loader) for _ in range(n)]
        loader.close()
        return out

    reference = take(12, workers=0)
    for (p1, b1), (p2, b2) in zip(reference, take(12, workers=2)):
        assert torch.equal(p1, p2)
        assert_same(b1, b2)
    for (p1, b1), (p2, b2) in zip(reference[7:], take(5, workers=1, skip=7)):
        assert torch.equal(p1, p2)
        assert_same(b1, b2)


def test_shift_on_uint8_frames_equals_the_shift_on_floats():
    frames = torch.randint(0, 256, (9, 10, 12, 3), dtype=torch.uint8)
    shifted = random_shift(frames, 3, torch.Generator().manual_seed(0))
    expected = random_shift(frames.float() / 255, 3, torch.Generator().manual_seed(0))
    assert shifted.dtype == torch.uint8
    assert torch.equal(shifted.float() / 255, expected)


def test_the_shift_is_pad_replicate_then_crop():
    """DrQ's definition, written out: pad by replicating the border, crop at the drawn offset."""
    import torch.nn.functional as F

    images = torch.rand(5, 7, 9, 3)
    pad = 2
    shifted = random_shift(images, pad, torch.Generator().manual_seed(1))
    generator = torch.Generator().manual_seed(1)
    dy = torch.randint(0, 2 * pad + 1, (5,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (5,), generator=generator)
    padded = F.pad(images.permute(0, 3, 1, 2), (pad,) * 4, mode="replicate").permute(0, 2, 3, 1)
    for i in range(5):
        crop = padded[i, dy[i]:dy[i] + 7, dx[i]:dx[i] + 9]
        assert torch.equal(shifted[i], crop)


def test_the_budget_picks_streaming_from_metadata_alone(data_file):
    raw = sum(12 * 12 * 3 * n + 4 * (5 + 2) * n for n in LENGTHS)
    plan = plan_data(data_file, None, "auto", budget_gb=raw / 2 / 1024 ** 3)
    assert plan.loader == "stream" and plan.stream_keys == ["image"] and plan.nbytes == raw
    assert plan_data(data_file, None, "auto", budget_gb=1.0).loader == "memory"
    assert plan_data(data_file, None, "stream").loader == "stream"
    assert plan_data(data_file, ["state"], "auto", budget_gb=1e-9).loader == "memory"
    with pytest.raises(ActJepaError, match="no image observations"):
        plan_data(data_file, ["state"], "stream")


def corrupt_chunk(path, dataset, chunk):
    with h5py.File(path) as f:
        info = f[dataset].id.get_chunk_info(chunk)
    with open(path, "r+b") as f:
        f.seek(info.byte_offset + info.size // 2)
        f.write(b"\xde\xad\xbe\xef" * 4)


def test_a_corrupt_chunk_names_demo_key_and_rows(tmp_path, data_file):
    path = tmp_path / "bad.hdf5"
    path.write_bytes(data_file.read_bytes())
    rows = image_chunk_rows((130, 12, 12, 3))
    corrupt_chunk(path, "data/demo_1/obs/image", 2)
    with pytest.raises(ActJepaError, match=r"demo_1/obs/image: unreadable"):
        read_episodes(path)  # in memory: at load time
    data, plan = open_training_data(path, None, "stream")  # streamed: metadata only, opens
    assert plan.loader == "stream"
    frames = data.episodes[1].obs["image"]
    with pytest.raises(ActJepaError, match=rf"demo_1/obs/image: rows {2 * rows}-"):
        frames.read(2 * rows, 3 * rows)
    normaliser = Normaliser.fit(data.episodes, data.obs_keys)
    stream = StreamingTransitions(data.episodes, data.obs_keys, normaliser)
    with pytest.raises(ActJepaError, match=r"bad.hdf5:/data/demo_1/obs/image: rows \d+-\d+ "
                                           r"unreadable \(a corrupt or truncated chunk"):
        for _ in stream.loader(32, seed=0, workers=2, window=1):  # raised from a worker
            pass


def test_blocks_follow_chunks(data_file):
    _, stream = both(data_file, 1)
    chunk = image_chunk_rows((200, 12, 12, 3))
    assert all(first % chunk == 0 for first in stream.block_first)
    assert stream.block_size.max() <= BLOCK_ROWS + chunk
    assert stream.block_size.sum() == len(stream)
