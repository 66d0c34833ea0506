"""Algorithm 1: ACT-JEPA pretraining, with validation, metrics, checkpoints and resume.

The hot loop is kept free of host synchronisation: batches are gathered from device tensors, the
loss is accumulated as a tensor and read back only every `log_every` steps, the optimizer is the
fused AdamW and the EMA update is one fused lerp over all target parameters.

Data that do not fit memory (``data.loader``, ``data.memory_budget_gb``) are streamed from the
episodes file by DataLoader workers (data/streaming.py). Under torchrun the model is wrapped in
DistributedDataParallel (training/distributed.py): each rank takes its slice of every global batch,
rank 0 alone validates, logs and writes checkpoints. ``last.pt`` holds the sampler position and
the random generators' states, so ``--resume`` continues exactly where the run stopped.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from actjepa_core.config import TrainConfig, save_yaml, to_dict
from actjepa_core.data.episodes import EpisodeSet
from actjepa_core.data.normalise import Normaliser
from actjepa_core.data.streaming import SEED_STRIDE, StreamingTransitions, is_streamed
from actjepa_core.data.transitions import Batch, EpochSampler, TransitionSet, split_episodes
from actjepa_core.device import resolve_device
from actjepa_core.errors import ActJepaError
from actjepa_core.models.world_model import collapse_metric
from actjepa_core.objectives import build_objective, transition_window
from actjepa_core.progress import progress_bar
from actjepa_core.training import checkpoint as ckpt
from actjepa_core.training import distributed
from actjepa_core.training.distributed import SINGLE, DistContext
from actjepa_core.training.metrics import MetricsLog
from actjepa_core.training.optimizer import make_optimizer
from actjepa_core.training.schedules import lr_at, tau_at
from actjepa_core.training.sources import InMemorySource, StreamedSource, TrainingSource

VAL_BATCH = 1024


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    loss: float  # mean training loss over the last log window
    collapse: float
    best_val_score: float  # val_rel_loss of best.pt (train loss when no demos are held out)


class LossModule(nn.Module):
    """An objective's ``loss`` as ``forward``: DistributedDataParallel's gradient hooks are armed
    by calling the wrapped module."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, obs, actions, next_obs):
        return self.model.loss(obs, actions, next_obs)


class Trainer:
    """Holds the model, optimizer, data and state of one run directory."""

    def __init__(self, data: EpisodeSet, config: TrainConfig, run_dir: str | Path,
                 device: str | torch.device | None = None, dist: DistContext = SINGLE):
        self.config, self.data, self.dist = config, data, dist
        self.run_dir = Path(run_dir)
        self.device = resolve_device(device or config.run.device)
        torch.manual_seed(config.run.seed)
        train_eps, val_eps = split_episodes(data.episodes, config.data.val_fraction,
                                            config.run.seed)
        self.normaliser = Normaliser.fit(train_eps, data.obs_keys)
        streamed = is_streamed(data)
        train_set, val_set = self.transition_sets(train_eps, val_eps, streamed)
        self.n_demos = (len(train_eps), len(val_eps))
        self.obs_spec = {k: {"shape": list(s), "dtype": d} for k, (s, d) in data.obs_spec().items()}
        self.model = build_objective(config, {k: v["shape"] for k, v in self.obs_spec.items()},
                                     data.action_dim).to(self.device)
        if config.run.init_encoder:
            ckpt.init_encoder(self.model, config.run.init_encoder, self.obs_spec)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)  # conv kernels; inputs are NHWC
        self.trainable = self.model.trainable_parameters()
        self.optimizer = make_optimizer(self.trainable, config)
        self.generator = torch.Generator().manual_seed(config.run.seed)
        if dist.enabled:  # augmentation draws differ between ranks (the weights do not)
            torch.manual_seed(config.run.seed * SEED_STRIDE + dist.rank)
        if config.optim.batch_size % dist.world_size:
            raise ActJepaError(f"optim.batch_size {config.optim.batch_size} is the global batch "
                               f"and must split evenly over the {dist.world_size} processes")
        self.local_batch = config.optim.batch_size // dist.world_size
        self.train_data, self.val_data = self.sources(train_set, val_set)
        self.step = 0
        self.saved_step = 0
        self.best_val = math.inf
        # wall seconds of training so far, across resumes: what a stopped-and-resumed run cost
        self.seconds_before = 0.0  # spent by earlier processes (from the checkpoint)
        self.started = time.perf_counter()
        self.loss_fn: Callable = self.model.loss
        if dist.enabled:
            self.loss_fn = distributed.wrap(LossModule(self.model), dist, self.device)
        if config.run.compile:
            mode = ("reduce-overhead" if self.device.type == "cuda" and not dist.enabled
                    else None)  # CUDA graphs cannot hold DDP's all-reduces
            self.loss_fn = torch.compile(self.loss_fn, mode=mode)

    def transition_sets(self, train_eps, val_eps, streamed: bool):
        """Training and validation transitions, windowed as the objective asks: K steps of
        actions and next observations, and whether windows run past a demo's end (chunks)."""
        steps, pad_end, next_steps = transition_window(self.config)
        keys, stats, device = self.data.obs_keys, self.normaliser, self.device
        if pad_end and streamed:
            raise ActJepaError(f"objective {self.config.objective!r} trains on action chunks, "
                               "which the streaming loader does not window; set "
                               "data.loader=memory (or a larger data.memory_budget_gb)")
        if streamed:
            return (StreamingTransitions(train_eps, keys, stats, steps, device),
                    StreamingTransitions(val_eps, keys, stats, 1, device) if val_eps else None)
        val_steps = steps if pad_end else 1
        return (TransitionSet(train_eps, keys, stats, steps, device, pad_end, next_steps),
                TransitionSet(val_eps, keys, stats, val_steps, device, pad_end,
                              min(next_steps, val_steps)) if val_eps else None)

    def sources(self, train_set, val_set) -> tuple[TrainingSource, TrainingSource | None]:
        """The transition sets behind the one interface the loop uses (training/sources.py)."""
        cfg, dist = self.config, self.dist
        if isinstance(train_set, StreamingTransitions):
            def streamed(transitions):
                return StreamedSource(transitions, self.local_batch, cfg.run.seed, dist.rank,
                                      dist.world_size, cfg.data.shuffle_window, cfg.data.workers,
                                      cfg.augment.shift)
            return streamed(train_set), streamed(val_set) if val_set is not None else None
        sampler = EpochSampler(len(train_set), cfg.optim.batch_size, self.generator, self.device,
                               dist.rank, dist.world_size)
        return (InMemorySource(train_set, cfg.augment.shift, sampler),
                InMemorySource(val_set) if val_set is not None else None)

    @property
    def train_set(self):
        """The training transitions (in memory or streamed)."""
        return self.train_data.transitions

    @property
    def channels_last(self) -> bool:
        fmt = self.config.run.memory_format
        has_images = any(len(s) == 3 for s, _ in self.data.obs_spec().values())
        return fmt == "channels_last" or (fmt == "auto" and self.device.type == "cuda"
                                          and has_images)

    # ---- checkpoints -------------------------------------------------------------------------
    def payload(self) -> dict:
        return {"config": to_dict(self.config), "obs_spec": self.obs_spec,
                "action_dim": self.data.action_dim, "stats": self.normaliser.state_dict(),
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "step": self.step, "best_val": self.best_val,
                "train_seconds": self.train_seconds(),
                "generator": self.generator.get_state(),
                "data": {"path": self.data.path, "source": self.data.source,
                         "train_demos": self.n_demos[0], "val_demos": self.n_demos[1]}}

    def train_seconds(self) -> float:
        """Wall seconds this run has trained, earlier processes' included."""
        return self.seconds_before + time.perf_counter() - self.started

    def save(self, name: str, resumable: bool = False) -> Path:
        """Rank 0 writes ``name``; ``resumable`` (last.pt, a collective: every rank calls it) adds
        the sampler position and every rank's random generator states."""
        path = self.run_dir / name
        extra = {}
        if resumable:
            distributed.check_in_sync(self.trainable, self.dist, f"step {self.step}")
            extra["rng"] = distributed.gather(self._rng_state(), self.dist)
            extra.update(self.train_data.state_dict())
            self.saved_step = self.step
        if self.dist.is_main:
            ckpt.save_checkpoint(path, ckpt.WORLD_MODEL, {**self.payload(), **extra})
        return path

    def _rng_state(self) -> dict[str, torch.Tensor]:
        state = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def restore(self, path: Path) -> None:
        """Continue from ``path`` (rank 0 reads it and hands it to the others)."""
        content = None
        if self.dist.is_main:
            try:
                content = ckpt.load_checkpoint(path, kind=ckpt.WORLD_MODEL, map_location="cpu")
            except ActJepaError as err:
                content = err
        content = distributed.broadcast(content, self.dist)
        if isinstance(content, ActJepaError):
            raise content
        if content["obs_spec"] != self.obs_spec or content["action_dim"] != self.data.action_dim:
            raise ActJepaError(f"{path}: checkpoint was trained on observations "
                               f"{content['obs_spec']} / action_dim {content['action_dim']}; "
                               f"the data has {self.obs_spec} / {self.data.action_dim}")
        content = _to_device(content, self.device)
        self.model.load_state_dict(content["model"])
        self.optimizer.load_state_dict(content["optimizer"])
        self.normaliser = Normaliser.from_state_dict(content["stats"])
        self.step, self.best_val = int(content["step"]), float(content["best_val"])
        self.seconds_before = float(content.get("train_seconds", 0.0))
        self.saved_step = self.step
        self.generator.set_state(content["generator"].cpu())
        self.train_data.load_state_dict(content)
        rng = content.get("rng")
        if rng is not None and len(rng) == self.dist.world_size:
            torch.set_rng_state(rng[self.dist.rank]["cpu"].cpu())
            if "cuda" in rng[self.dist.rank] and self.device.type == "cuda":
                torch.cuda.set_rng_state(rng[self.dist.rank]["cuda"].cpu(), self.device)

    # ---- the loop ----------------------------------------------------------------------------
    def train_step(self, batch: Batch, lr: float, tau: float):
        """One optimizer step on a model-input batch (this rank's share of the global batch)."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(self.device.type, dtype=torch.bfloat16,
                            enabled=self.config.run.precision == "bf16"):
            out = self.loss_fn(*batch)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        if self.config.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.trainable, self.config.optim.grad_clip)
        self.optimizer.step()
        self.model.update_target(tau)
        return out

    def batches(self):
        """Endless shuffled, shifted model-input batches, epoch after epoch (Algorithm 1's two
        loops), from where the run stands, with the training noise on o_t."""
        for batch in self.train_data.batches(skip=self.step):
            yield self.noised(batch)

    def noised(self, batch: Batch) -> Batch:
        """Gaussian noise on o_t (``augment.noise`` > 0) at a std drawn per sample in
        [0, noise]: the test-time noise of the paper's robustness table, seen in training."""
        top = self.config.augment.noise
        if top <= 0:
            return batch
        obs = {}
        for key, x in batch.obs.items():
            std = top * torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device)
            obs[key] = x + std * torch.randn_like(x)  # same shape as x
        return Batch(obs, batch.actions, batch.next_obs)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Metrics over every held-out transition.

        ``val_rel_loss`` divides the mean latent error by the total variance of the target latents:
        unlike the raw L2 loss it does not grow when the latent space merely expands, so it is
        what picks ``best.pt``.
        """
        if self.val_data is None:
            return {}
        total, latents, targets = 0.0, [], []
        for batch in self.val_data.ordered(VAL_BATCH):
            out = self.model.loss(*batch)
            total += out.loss.item() * batch.actions.shape[0]
            latents.append(out.latent)
            if self.model.scale_free:
                targets.append(self.model.encode_target(
                    {k: v[:, 0] for k, v in batch.next_obs.items()}))
        loss = total / len(self.val_data)
        # latent losses are divided by the spread of the targets they chase; other objectives'
        # losses are in data units already (pixels, actions, nats)
        spread = torch.cat(targets).var(0).sum().item() if targets else 1.0
        return {"val_loss": loss, "val_rel_loss": loss / spread if spread > 0 else math.inf,
                "val_collapse": collapse_metric(torch.cat(latents)).item()}

    def run(self, progress: bool = True) -> TrainResult:
        cfg = self.config
        total = cfg.optim.steps
        main = self.dist.is_main
        log = (MetricsLog(self.run_dir, resume_step=self.step if self.step else None) if main
               else None)
        loss_sum = torch.zeros((), device=self.device)
        self.started = time.perf_counter()  # data loading and set-up are not training time
        window, steps, last = 0, 0, {"loss": math.nan, "collapse": math.nan}
        t0 = time.perf_counter()
        bar = progress_bar(total=total, initial=self.step, disable=not (progress and main),
                           desc="train", dynamic_ncols=True)
        batches = self.batches()
        try:
            while self.step < total:
                lr = lr_at(self.step, total, cfg.optim.lr, cfg.optim.warmup_fraction)
                tau = tau_at(self.step, total, cfg.ema.tau_start, cfg.ema.tau_end)
                batch = next(batches)
                out = self.train_step(batch, lr, tau)
                loss_sum += out.loss.detach()
                window += batch.actions.shape[0]
                steps += 1
                self.step += 1
                bar.update(1)
                if self.step % cfg.run.log_every == 0 or self.step == total:
                    latent = distributed.cat(out.latent, self.dist)  # the global batch's
                    last = self._log_window(log, loss_sum, collapse_metric(latent), window,
                                            steps, t0, lr, tau)
                    bar.set_postfix(loss=f"{last['loss']:.4g}", collapse=f"{last['collapse']:.3g}")
                    loss_sum.zero_()
                    window, steps, t0 = 0, 0, time.perf_counter()
                if self.step % cfg.run.checkpoint_every == 0 or self.step == total:
                    self.save("last.pt", resumable=True)
        except RuntimeError as err:
            if not (self.dist.enabled and distributed.is_collective_failure(err)):
                raise
            raise ActJepaError(
                f"{self.dist.tag()}: stopped at step {self.step}: another training process "
                f"failed or stopped answering ({distributed.first_line(err)}); "
                f"{self.run_dir / 'last.pt'} holds step {self.saved_step}: rerun with "
                "--resume to continue") from None
        finally:
            batches.close()  # stops streaming workers
            bar.close()
            if log is not None:
                log.close()
        return TrainResult(self.run_dir, self.step, last["loss"], last["collapse"], self.best_val)

    def _log_window(self, log: MetricsLog | None, loss_sum: torch.Tensor, collapse: torch.Tensor,
                    window: int, steps: int, t0: float, lr: float, tau: float) -> dict:
        """Metrics row: mean loss over the window's steps (and ranks); collapse of the window's
        last (global) batch. Rank 0 validates and writes; the others only average."""
        loss_sum = distributed.mean(loss_sum, self.dist)
        values = {"loss": loss_sum.item() / max(steps, 1), "collapse": collapse.item(),
                  "lr": lr, "tau": tau,
                  "transitions_per_s": window * self.dist.world_size
                  / max(time.perf_counter() - t0, 1e-9)}
        if log is None:
            return values
        if self.step % self.config.run.val_every == 0 or self.step == self.config.optim.steps:
            values.update(self.validate())
            score = values.get("val_rel_loss", values["loss"])
            if score < self.best_val:
                self.best_val = score
                self.save("best.pt")
        log.log(self.step, values)
        return values


def _to_device(value, device: torch.device):
    """Checkpoint tensors onto ``device``, except random generator states (CPU byte tensors)."""
    if isinstance(value, dict):
        return {k: v if k in ("generator", "rng", "sampler") else _to_device(v, device)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_to_device(v, device) for v in value]
    return value.to(device) if isinstance(value, torch.Tensor) else value


def _run_dir_problem(run_dir: Path, resume: bool) -> str | None:
    last = run_dir / "last.pt"
    if not resume and last.exists():
        return (f"{run_dir}: already holds a run (last.pt); pass --resume to continue it or "
                "choose another --out")
    if resume and not last.exists():
        return f"{run_dir}: --resume given but there is no last.pt to resume from"
    return None


def train(data: EpisodeSet, config: TrainConfig, run_dir: str | Path, resume: bool = False,
          progress: bool = True) -> TrainResult:
    """Train (or resume) a run in ``run_dir``; writes config.yaml, metrics, last.pt and best.pt.

    Under torchrun (WORLD_SIZE > 1 in the environment) every process calls this; they join one
    process group and train one model data-parallel (rank 0 writes)."""
    run_dir = Path(run_dir)
    joined = not distributed.dist.is_initialized()
    ctx, device = distributed.init_from_env(config.run.device, config.run.dist_timeout_s)
    try:
        problem = _run_dir_problem(run_dir, resume) if ctx.is_main else None
        problem = distributed.broadcast(problem, ctx)
        if problem:
            raise ActJepaError(problem)
        if ctx.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
        trainer = Trainer(data, config, run_dir, device, ctx)
        if resume:
            trainer.restore(run_dir / "last.pt")
        if ctx.is_main:
            save_yaml(config, run_dir / "config.yaml")
        result = trainer.run(progress=progress)
        if joined:
            distributed.shutdown(ctx, clean=True)
        return result
    finally:
        if joined:
            distributed.shutdown(ctx)  # after an error (a no-op once left cleanly)
