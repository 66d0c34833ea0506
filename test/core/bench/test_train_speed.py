"""The training benchmark runs both trainers on the same data and writes its block into a doc."""
from actjepa_core.bench.train_speed import run_benchmark
from actjepa_core.evaluation.sections import write_section


def test_benchmark_compares_both_trainers_and_rewrites_its_block(push_demos_path, tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\nhand-written intro\n")
    result = run_benchmark(str(push_demos_path), str(doc), steps=3, repeats=1, peak_sizes=(128,))
    # same layer sizes and batch: the FLOPs of one step must agree between the two trainers
    assert result["flops"]["ours"] == result["flops"]["reference"] > 0
    assert result["flops"]["ours-bf16"] == result["flops"]["ours"]
    for name in ("ours", "reference", "ours-bf16"):
        assert result[name]["transitions_per_s"] > 0 and 0 < result[name]["peak_share"]
    assert result["speedup"] > 0 and result["peak_gflops"] > 0
    text = doc.read_text()
    assert "hand-written intro" in text and "| reference (paper §6, fp32) |" in text
    assert "| ours, fp32 |" in text
    run_benchmark(str(push_demos_path), str(doc), steps=3, repeats=1, peak_sizes=(128,))
    assert doc.read_text().count("<!-- bench:train:cpu:start -->") == 1


def test_write_section_appends_then_replaces(tmp_path):
    doc = tmp_path / "B.md"
    write_section(doc, "x", "first")
    write_section(doc, "y", "other")
    write_section(doc, "x", "second")
    text = doc.read_text()
    assert "second" in text and "first" not in text and "other" in text


def test_image_benchmark_compares_memory_and_streaming_past_the_budget(tmp_path):
    import numpy as np

    from actjepa_core.bench.train_speed import run_image_benchmark
    from actjepa_core.data.episodes import Episode, write_episodes

    rng = np.random.default_rng(0)
    data = tmp_path / "images.hdf5"
    write_episodes(data, (Episode({"image": rng.integers(0, 255, (80, 16, 16, 3), np.uint8)},
                                  rng.uniform(-1, 1, (80, 2)).astype(np.float32))
                          for _ in range(8)), source="unit")
    raw_mb = 8 * 80 * 16 * 16 * 3 / 1024 ** 2
    doc = tmp_path / "BENCHMARKS.md"
    result = run_image_benchmark(str(data), str(doc), budget_mb=raw_mb / 4, steps=2,
                                 workers=(1,), batch=16)
    memory, stream = result["runs"]
    assert memory["loader"] == "memory" and stream["loader"] == "stream"  # auto chose streaming
    assert stream["workers"] == 1 and memory["data_gb"] * 1024 > 4 * result["budget_mb"] * 0.99
    for run in (memory, stream):
        assert run["images_per_s"] == 2 * run["transitions_per_s"] > 0
        assert run["loader_images_per_s"] > 0 and run["peak_pss_mb"] > 0
    text = doc.read_text()
    assert "<!-- bench:train-image:cpu:start -->" in text and "| streaming, 1 worker" in text


def test_a_small_share_of_a_gpus_peak_is_not_printed_as_zero():
    from actjepa_core.bench.train_speed import percent

    assert percent(0.5) == "50%" and percent(0.36) == "36%"
    assert percent(127.8 / 48405.0) == "0.26%"  # the H200 row: fp32 GFLOP/s over its peak
