"""`actjepa bench train`: our trainer against the paper's reference code, side by side in one run;
with ``--obs image``, image training held in memory against streamed from disk.

Same data (push-v3 expert demos), same layer sizes, same batch, same machine; the two are timed
in alternating repeats so machine noise hits both alike, and the medians are compared. Achieved
GFLOP/s (FLOPs of one step counted by torch's FlopCounterMode) are set against the machine's
measured fp32 matmul rate.
"""
from __future__ import annotations

import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from actjepa_core.bench import reference
from actjepa_core.config import ModelConfig, TrainConfig
from actjepa_core.data.episodes import read_episodes, write_episodes
from actjepa_core.errors import ActJepaError
from actjepa_core.evaluation.sections import write_section
from actjepa_core.evaluation.tables import markdown_table
from actjepa_core.training.trainer import Trainer

BATCH = 256
REFERENCE_SIZES = ModelConfig(state_hidden=[256, 256], action_hidden=[128],
                              predictor_hidden=[256, 128], latent_dim=128)  # the paper's §6 code
PEAK_SIZES = (512, 1024, 2048)
PEAK_REPEATS = 5
WARMUP_STEPS = 30


def percent(share: float) -> str:
    """A share as a percentage with two significant digits below 10% (a small model on a GPU runs
    at a fraction of a percent of its peak, which whole percents would print as 0%)."""
    return f"{100 * share:.0f}%" if share >= 0.1 else f"{100 * share:.2g}%"


def matmul_peak_gflops(device: torch.device, sizes=PEAK_SIZES,
                       dtype: torch.dtype = torch.float32) -> tuple[float, int]:
    """Best median matmul rate over a few square sizes: the machine's practical peak."""
    best, best_n = 0.0, 0
    for n in sizes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        reps = max(2, int(2e9 / (2 * n ** 3)))
        times = []
        for _ in range(PEAK_REPEATS):
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(reps):
                torch.mm(a, b)
            _sync(device)
            times.append((time.perf_counter() - t0) / reps)
        rate = 2 * n ** 3 / statistics.median(times) / 1e9
        if rate > best:
            best, best_n = rate, n
    return best, best_n


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


class OursRunner:
    def __init__(self, data, device: torch.device, precision: str = "fp32"):
        config = TrainConfig(model=REFERENCE_SIZES)
        config.run.precision = precision
        config.optim.batch_size = BATCH
        config.data.val_fraction = 0.0
        config.ema.tau_start = config.ema.tau_end = 0.996  # the reference's constant tau
        self.trainer = Trainer(data, config, tempfile.mkdtemp(prefix="bench-"), device)
        self.batches = self.trainer.batches()

    def step(self):
        return self.trainer.train_step(next(self.batches), 1e-3, 0.996)

    def run(self, steps: int) -> float:
        device = self.trainer.device
        _sync(device)
        t0 = time.perf_counter()
        loss = torch.zeros((), device=device)
        for _ in range(steps):
            loss += self.step().loss.detach()
        loss.item()  # one sync at the end, as the trainer does per log window
        return time.perf_counter() - t0


class ReferenceRunner:
    """The paper's §6 class fed the way its train_step expects: a shuffling DataLoader."""

    def __init__(self, trainer: Trainer, device: torch.device):
        ts = trainer.train_set
        t = ts.starts.cpu()
        o_t, o_next = ts.obs["state"].cpu()[t], ts.obs["state"].cpu()[t + 1]
        a_t = ts.actions.cpu()[t]
        self.device = device
        self.loader = DataLoader(TensorDataset(o_t, a_t, o_next), batch_size=BATCH, shuffle=True,
                                 drop_last=True)
        self.model = reference.ACTJEPA(o_t.shape[1], a_t.shape[1])
        for module in (self.model.encoder, self.model.action_encoder, self.model.predictor,
                       self.model.target_encoder):
            module.to(device)
        self.model.optimizer = torch.optim.Adam(
            [*self.model.encoder.parameters(), *self.model.action_encoder.parameters(),
             *self.model.predictor.parameters()], lr=1e-3)
        self.iterator = iter(())

    def batch(self):
        try:
            return next(self.iterator)
        except StopIteration:
            self.iterator = iter(self.loader)
            return next(self.iterator)

    def step(self):
        o, a, o2 = (x.to(self.device) for x in self.batch())
        return self.model.train_step(o, a, o2)

    def run(self, steps: int) -> float:
        _sync(self.device)
        t0 = time.perf_counter()
        for _ in range(steps):
            self.step()
        return time.perf_counter() - t0


def run_benchmark(data_path: str | None, out: str | None, steps: int = 300, repeats: int = 5,
                  device: str = "cpu", task: str = "push-v3", episodes: int = 50,
                  peak_sizes: tuple[int, ...] = PEAK_SIZES) -> dict:
    dev = torch.device(device)
    if data_path is None:
        from actjepa_core.sim.collect import collect_episodes
        data_path = os.path.join(tempfile.mkdtemp(prefix="bench-data-"), "demos.hdf5")
        write_episodes(data_path, collect_episodes(task, episodes, seed=0, progress=False),
                       source=f"metaworld:{task}")
    data = read_episodes(data_path, ["state"])
    ours = OursRunner(data, dev)
    runners = {"reference": ReferenceRunner(ours.trainer, dev), "ours": ours,
               "ours-bf16": OursRunner(data, dev, precision="bf16")}
    for runner in runners.values():
        runner.run(WARMUP_STEPS)
    flops = {name: step_flops(runner.step) for name, runner in runners.items()}
    times = {name: [] for name in runners}
    for _ in range(repeats):  # alternate so drift and noise hit all alike
        for name, runner in runners.items():
            times[name].append(runner.run(steps))
    peaks = {"fp32": matmul_peak_gflops(dev, peak_sizes),
             "bf16": matmul_peak_gflops(dev, peak_sizes, torch.bfloat16)}
    result = {"device": str(dev), "steps": steps, "repeats": repeats, "batch": BATCH,
              "transitions": len(ours.trainer.train_set), "peaks": peaks, "flops": flops,
              "peak_gflops": peaks["fp32"][0]}
    for name, ts in times.items():
        sec = statistics.median(ts) / steps
        peak = peaks["bf16" if name.endswith("bf16") else "fp32"][0]
        result[name] = {"steps_per_s": 1 / sec, "transitions_per_s": BATCH / sec,
                        "gflops": flops[name] / sec / 1e9,
                        "peak_share": flops[name] / sec / 1e9 / peak,
                        "min_steps_per_s": steps / max(ts), "max_steps_per_s": steps / min(ts)}
    ref_rate = result["reference"]["transitions_per_s"]
    result["speedup"] = result["ours"]["transitions_per_s"] / ref_rate
    result["speedup_bf16"] = result["ours-bf16"]["transitions_per_s"] / ref_rate
    text = render_markdown(result, data_path)
    print(text)
    if out:
        write_section(Path(out), f"train:{dev.type}", text)
    return result


def machine_line(device: torch.device, threads: int | None = None) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = torch.get_num_threads() if threads is None else threads
    return (f"{cpu}, {os.cpu_count()} cores, {threads} torch thread{'s' if threads > 1 else ''}, "
            f"torch {torch.__version__}")


def render_markdown(r: dict, data_path: str) -> str:
    dev = torch.device(r["device"])
    rows = []
    labels = {"reference": "reference (paper §6, fp32)", "ours": "ours, fp32",
              "ours-bf16": "ours, bf16 autocast (`run.precision: bf16`)"}
    for name, label in labels.items():
        x = r[name]
        peak = "bf16" if name.endswith("bf16") else "fp32"
        rows.append([label, f"{x['steps_per_s']:.0f} ({x['min_steps_per_s']:.0f}-"
                     f"{x['max_steps_per_s']:.0f})", f"{x['transitions_per_s']:,.0f}",
                     f"{r['flops'][name] / 1e6:.0f}", f"{x['gflops']:.1f}",
                     f"{percent(x['peak_share'])} of {peak}"])
    return "\n".join([
        f"### Training speed on {r['device']}: {machine_line(dev)}",
        "",
        f"`actjepa bench train --device {r['device']} --steps {r['steps']} "
        f"--repeats {r['repeats']}` on {r['transitions']} push-v3 transitions, batch {r['batch']}, "
        "the paper's layer sizes (state MLP 39-256-256-128, action MLP 4-128-128, predictor "
        f"256-256-128-128). Medians of {r['repeats']} alternating repeats of {r['steps']} steps "
        "(range in brackets).",
        "",
        markdown_table(["trainer", "steps/s", "transitions/s", "MFLOP/step", "GFLOP/s",
                        "of matmul peak"], rows),
        "",
        f"**Speed-up over the reference's transitions/s: {r['speedup']:.2f}x like for like (fp32), "
        f"{r['speedup_bf16']:.2f}x with bf16 autocast.** Matmul peaks (median square "
        f"`torch.mm`): fp32 {r['peaks']['fp32'][0]:.1f} GFLOP/s (n={r['peaks']['fp32'][1]}), "
        f"bf16 {r['peaks']['bf16'][0]:.1f} GFLOP/s (n={r['peaks']['bf16'][1]}).",
    ])


# ---- `actjepa bench train --obs image`: in memory vs streaming --------------------------------
IMAGE_SIZE = 64
IMAGE_BATCH = 64
IMAGE_STEPS = 30
IMAGE_WARMUP = 3
BUDGET_MB = 64
SIZE_FACTOR = 4.5  # the dataset is made this many times the memory budget
SOURCE_EPISODES = 3  # real rendered episodes, tiled (pixel-rolled copies) up to the size
PSS_PERIOD_S = 0.05
LOADER_ITEMS = 6  # loader-alone timing: this many worker items per worker (2 are prefetched)
MB = 1024 ** 2


def image_dataset(path: Path, budget_mb: float, task: str = "reach-v3",
                  image_size: int = IMAGE_SIZE) -> dict:
    """An episodes file of real rendered frames (a few scripted-expert episodes of ``task``),
    copied with a different pixel roll each time until it holds SIZE_FACTOR x the budget. Written
    one episode at a time (chunked, compressed): making it never holds it in memory."""
    import numpy as np

    from actjepa_core.sim.collect import collect_episodes

    source = list(collect_episodes(task, SOURCE_EPISODES, seed=0, image_size=image_size,
                                   max_steps=100, progress=False))
    frame = image_size * image_size * 3
    target = SIZE_FACTOR * budget_mb * MB
    per_copy = sum(ep.num_steps for ep in source) * frame
    copies = int(np.ceil(target / per_copy))

    def tiled():
        for c in range(copies):
            for ep in source:
                obs = dict(ep.obs)
                obs["image"] = np.roll(ep.obs["image"], (c % 7, (c // 7) % 7), axis=(1, 2))
                yield type(ep)(obs, ep.actions, ep.success)

    write_episodes(path, tiled(), source=f"metaworld:{task}:tiled x{copies}")
    return {"episodes": copies * SOURCE_EPISODES, "steps": copies * per_copy // frame,
            "image_bytes": copies * per_copy, "file_bytes": path.stat().st_size}


class TreeMemory:
    """Peak proportional set size (PSS) of this process and its descendants (DataLoader
    workers), sampled in a thread: shared pages counted once, unlike summed RSS."""

    def __init__(self, period: float = PSS_PERIOD_S):
        import threading

        self.peak, self.period = 0, period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.peak = max(self.peak, tree_pss(os.getpid()))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_pss(os.getpid()))
        return self.peak


def tree_pss(pid: int) -> int:
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):  # the process ended meanwhile
            continue
    return total


def image_run(data_path: str, loader: str, budget_mb: float, steps: int, workers: int,
              batch: int, device: str) -> dict:
    """One configuration, in this (fresh) process: time to the first step, training and
    loader-only throughput, peak memory."""
    import resource

    from actjepa_core.data.streaming import open_training_data

    torch.set_num_threads(1)
    memory = TreeMemory()
    t0 = time.perf_counter()
    config = TrainConfig()
    config.optim.batch_size = batch
    config.data.val_fraction = 0.0
    config.data.loader, config.data.memory_budget_gb = loader, budget_mb / 1024
    config.data.workers = workers
    config.augment.shift = 4
    data, plan = open_training_data(data_path, ["image"], loader, budget_mb / 1024)
    trainer = Trainer(data, config, tempfile.mkdtemp(prefix="bench-image-"), device)
    dev = trainer.device
    batches = trainer.batches()
    for _ in range(IMAGE_WARMUP):
        trainer.train_step(next(batches), 1e-3, 0.996)
    _sync(dev)
    ready = time.perf_counter() - t0
    t1 = time.perf_counter()
    loss = torch.zeros((), device=dev)
    for _ in range(steps):
        loss += trainer.train_step(next(batches), 1e-3, 0.996).loss.detach()
    loss.item()
    train_s = time.perf_counter() - t1
    batches.close()
    # the data path alone (what it could feed a faster device): a fresh loader, its start-up
    # included, over many times what its workers hold prefetched
    from actjepa_core.data.streaming import BLOCK_ROWS

    per_item = max(1, round(config.data.shuffle_window * BLOCK_ROWS / batch))
    n_load = max(steps * 4, LOADER_ITEMS * per_item * max(1, workers))
    t2 = time.perf_counter()
    batches = trainer.batches()
    for _ in range(n_load):
        b = next(batches)
    _sync(dev)
    load_s = time.perf_counter() - t2
    batches.close()
    shutil.rmtree(trainer.run_dir, ignore_errors=True)
    images = 1 + config.loss.rollout_steps  # o_t and o_{t+1} per transition
    return {"loader": plan.loader, "data_gb": plan.nbytes / 1024 ** 3, "budget_mb": budget_mb,
            "workers": workers if plan.loader == "stream" else 0, "batch": batch,
            "steps": steps, "ready_s": ready,
            "transitions_per_s": steps * batch / train_s,
            "images_per_s": steps * batch * images / train_s,
            "loader_images_per_s": n_load * b.actions.shape[0] * images / load_s,
            "peak_pss_mb": memory.stop() / MB,
            "peak_rss_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "device": str(dev)}


def run_image_benchmark(data_path: str | None, out: str | None, budget_mb: float = BUDGET_MB,
                        steps: int = IMAGE_STEPS, workers: tuple[int, ...] = (1,),
                        batch: int = IMAGE_BATCH, device: str = "cpu",
                        task: str = "reach-v3") -> dict:
    """In-memory vs streaming training on an image dataset >= 4x ``budget_mb``, each
    configuration in its own process (so peak memory is its own)."""
    import json
    import subprocess
    import sys

    made = None
    if data_path is None:
        data_path = os.path.join(tempfile.mkdtemp(prefix="bench-image-data-"), "images.hdf5")
        made = image_dataset(Path(data_path), budget_mb, task)
    runs = []
    for loader, n in [("memory", 0), *[("auto", w) for w in workers]]:
        args = json.dumps({"data_path": data_path, "loader": loader, "budget_mb": budget_mb,
                           "steps": steps, "workers": n, "batch": batch, "device": device})
        child = subprocess.run([sys.executable, "-m", "actjepa_core.bench.train_speed", args],
                               capture_output=True, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
        if child.returncode != 0:
            raise ActJepaError(f"bench train --obs image ({loader}): "
                               f"{child.stderr.strip().splitlines()[-1]}")
        runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
    result = {"data": data_path, "made": made, "runs": runs, "device": runs[0]["device"],
              "file_gb": Path(data_path).stat().st_size / 1024 ** 3, "budget_mb": budget_mb}
    if made:
        shutil.rmtree(Path(data_path).parent, ignore_errors=True)
    text = render_image_markdown(result)
    print(text)
    if out:
        write_section(Path(out), f"train-image:{torch.device(device).type}", text)
    return result


def render_image_markdown(r: dict) -> str:
    dev = torch.device(r["device"])
    rows = []
    for x in r["runs"]:
        how = ("in memory (`data.loader: memory`)" if x["loader"] == "memory" else
               f"streaming, {x['workers']} worker{'s' if x['workers'] != 1 else ''} "
               "(`data.loader: auto` chose it)")
        rows.append([how, f"{x['images_per_s']:,.0f}", f"{x['transitions_per_s']:,.0f}",
                     f"{x['loader_images_per_s']:,.0f}", f"{x['ready_s']:.1f} s",
                     f"{x['peak_pss_mb']:,.0f} MB"])
    memory = r["runs"][0]
    made = r.get("made")
    data = (f"{made['steps']:,} 64x64 RGB frames ({made['image_bytes'] / MB:,.0f} MB raw, "
            f"{r['file_gb'] * 1024:,.0f} MB gzip-chunked on disk): real reach-v3 renders, "
            "tiled" if made else f"`{r['data']}` ({memory['data_gb']:.2f} GB in memory)")
    workers = " ".join(str(x["workers"]) for x in r["runs"][1:])
    return "\n".join([
        f"### Image training in memory vs streaming on {r['device']}: {machine_line(dev, 1)}",
        "",
        f"`actjepa bench train --obs image --device {r['device']} --budget-mb "
        f"{r['budget_mb']:g} --steps {memory['steps']} --workers {workers}` on {data}; memory "
        f"budget {r['budget_mb']:g} MB, so the data are "
        f"{memory['data_gb'] * 1024 / r['budget_mb']:.1f}x "
        f"the budget. Default image encoder (D = 128, convs 32-64-128-256), batch "
        f"{memory['batch']}, random shift 4 px, one torch thread, each configuration in its own "
        f"process. Images/s counts o_t and o_t+1 of each transition; 'data path alone' times a "
        "fresh loader (start-up included) without the model: what it could feed a faster "
        "device.",
        "",
        markdown_table(["data path", "images/s (training)", "transitions/s", "images/s (data "
                        "path alone)", "start to first step", "peak memory (PSS, with workers)"],
                       rows),
    ])


if __name__ == "__main__":  # one configuration of run_image_benchmark, in a fresh process
    import json
    import sys

    print(json.dumps(image_run(**json.loads(sys.argv[1]))))
