"""Algorithm 1: ACT-JEPA pretraining, with validation, metrics, checkpoints and resume.

The hot loop is kept free of host synchronisation: batches are gathered from device tensors, the
loss is accumulated as a tensor and read back only every `log_every` steps, the optimizer is the
fused AdamW and the EMA update is one fused lerp over all target parameters.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from actjepa_core.training import checkpoint as ckpt
from actjepa_core.config import TrainConfig, save_yaml, to_dict
from actjepa_core.data.episodes import EpisodeSet
from actjepa_core.errors import ActJepaError
from actjepa_core.training.metrics import MetricsLog
from actjepa_core.models.world_model import collapse_metric
from actjepa_core.data.normalise import Normaliser
from actjepa_core.data.augment import random_shift
from actjepa_core.objectives import build_objective
from actjepa_core.progress import progress_bar
from actjepa_core.training.optimizer import make_optimizer
from actjepa_core.training.schedules import lr_at, tau_at
from actjepa_core.data.transitions import Batch, TransitionSet, split_episodes

VAL_BATCH = 1024


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    loss: float  # mean training loss over the last log window
    collapse: float
    best_val_score: float  # val_rel_loss of best.pt (train loss when no demos are held out)


def resolve_device(name: str | torch.device) -> torch.device:
    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ActJepaError(f"device {name!r} asked for, but CUDA is not available here")
    return torch.device(name)


class Trainer:
    """Holds the model, optimizer, data and state of one run directory."""

    def __init__(self, data: EpisodeSet, config: TrainConfig, run_dir: str | Path,
                 device: str | torch.device | None = None):
        self.config, self.data = config, data
        self.run_dir = Path(run_dir)
        self.device = resolve_device(device or config.run.device)
        torch.manual_seed(config.run.seed)
        train_eps, val_eps = split_episodes(data.episodes, config.data.val_fraction, config.run.seed)
        self.normaliser = Normaliser.fit(train_eps, data.obs_keys)
        k = config.loss.rollout_steps
        self.train_set = TransitionSet(train_eps, data.obs_keys, self.normaliser, k, self.device)
        self.val_set = (TransitionSet(val_eps, data.obs_keys, self.normaliser, 1, self.device)
                        if val_eps else None)
        self.n_demos = (len(train_eps), len(val_eps))
        self.obs_spec = {k: {"shape": list(s), "dtype": d} for k, (s, d) in data.obs_spec().items()}
        self.model = build_objective(config, {k: v["shape"] for k, v in self.obs_spec.items()},
                                     data.action_dim).to(self.device)
        self.trainable = self.model.trainable_parameters()
        self.optimizer = make_optimizer(self.trainable, config)
        self.generator = torch.Generator().manual_seed(config.run.seed)
        self.step = 0
        self.best_val = math.inf
        self.loss_fn: Callable = self.model.loss
        if config.run.compile:
            mode = "reduce-overhead" if self.device.type == "cuda" else None
            self.loss_fn = torch.compile(self.model.loss, mode=mode)

    # ---- checkpoints -------------------------------------------------------------------------
    def payload(self) -> dict:
        return {"config": to_dict(self.config), "obs_spec": self.obs_spec,
                "action_dim": self.data.action_dim, "stats": self.normaliser.state_dict(),
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "step": self.step, "best_val": self.best_val,
                "generator": self.generator.get_state(),
                "data": {"path": self.data.path, "source": self.data.source,
                         "train_demos": self.n_demos[0], "val_demos": self.n_demos[1]}}

    def save(self, name: str) -> Path:
        path = self.run_dir / name
        ckpt.save_checkpoint(path, ckpt.WORLD_MODEL, self.payload())
        return path

    def restore(self, path: Path) -> None:
        content = ckpt.load_checkpoint(path, kind=ckpt.WORLD_MODEL, map_location=self.device)
        if content["obs_spec"] != self.obs_spec or content["action_dim"] != self.data.action_dim:
            raise ActJepaError(f"{path}: checkpoint was trained on observations "
                               f"{content['obs_spec']} / action_dim {content['action_dim']}; "
                               f"the data has {self.obs_spec} / {self.data.action_dim}")
        self.model.load_state_dict(content["model"])
        self.optimizer.load_state_dict(content["optimizer"])
        self.normaliser = Normaliser.from_state_dict(content["stats"])
        self.step, self.best_val = int(content["step"]), float(content["best_val"])
        self.generator.set_state(content["generator"].cpu())

    # ---- the loop ----------------------------------------------------------------------------
    def train_step(self, positions: torch.Tensor, lr: float, tau: float):
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(self.device.type, dtype=torch.bfloat16,
                            enabled=self.config.run.precision == "bf16"):
            out = self.loss_fn(*self.augmented(self.train_set.batch(positions)))
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        if self.config.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.trainable, self.config.optim.grad_clip)
        self.optimizer.step()
        self.model.update_target(tau)
        return out

    def augmented(self, batch: Batch) -> Batch:
        """DrQ random shift of every image in the batch (``augment.shift`` > 0), o_t and the
        o_{t+k} shifted independently; states pass unchanged."""
        pad = self.config.augment.shift
        if pad <= 0:
            return batch

        def shift(obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            out = {}
            for key, x in obs.items():
                if x.dim() >= 4:  # (B, H, W, C) or (B, K, H, W, C)
                    image = x.shape[-3:]
                    x = random_shift(x.reshape(-1, *image), pad, None).reshape(x.shape)
                out[key] = x
            return out

        return Batch(shift(batch.obs), batch.actions, shift(batch.next_obs))

    def batches(self):
        """Endless shuffled batches, epoch after epoch (Algorithm 1's two loops)."""
        while True:
            yield from self.train_set.epoch_batches(self.config.optim.batch_size, self.generator)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Metrics over every held-out transition.

        ``val_rel_loss`` divides the mean latent error by the total variance of the target latents:
        unlike the raw L2 loss it does not grow when the latent space merely expands, so it is
        what picks ``best.pt``.
        """
        if self.val_set is None:
            return {}
        total, latents, targets = 0.0, [], []
        for positions in self.val_set.ordered_batches(VAL_BATCH):
            batch = self.val_set.batch(positions)
            out = self.model.loss(*batch)
            total += out.loss.item() * len(positions)
            latents.append(out.latent)
            if self.model.scale_free:
                targets.append(self.model.encode_target(
                    {k: v[:, 0] for k, v in batch.next_obs.items()}))
        loss = total / len(self.val_set)
        # latent losses are divided by the spread of the targets they chase; other objectives'
        # losses are in data units already (pixels, actions, nats)
        spread = torch.cat(targets).var(0).sum().item() if targets else 1.0
        return {"val_loss": loss, "val_rel_loss": loss / spread if spread > 0 else math.inf,
                "val_collapse": collapse_metric(torch.cat(latents)).item()}

    def run(self, progress: bool = True) -> TrainResult:
        cfg = self.config
        total = cfg.optim.steps
        log = MetricsLog(self.run_dir, resume_step=self.step if self.step else None)
        loss_sum = torch.zeros((), device=self.device)
        window, last = 0, {"loss": math.nan, "collapse": math.nan}
        t0 = time.perf_counter()
        bar = progress_bar(total=total, initial=self.step, disable=not progress, desc="train",
                   dynamic_ncols=True)
        batches = self.batches()
        try:
            while self.step < total:
                lr = lr_at(self.step, total, cfg.optim.lr, cfg.optim.warmup_fraction)
                tau = tau_at(self.step, total, cfg.ema.tau_start, cfg.ema.tau_end)
                positions = next(batches)
                out = self.train_step(positions, lr, tau)
                loss_sum += out.loss.detach()
                window += len(positions)
                self.step += 1
                bar.update(1)
                if self.step % cfg.run.log_every == 0 or self.step == total:
                    last = self._log_window(log, loss_sum, collapse_metric(out.latent), window,
                                            t0, lr, tau)
                    bar.set_postfix(loss=f"{last['loss']:.4g}", collapse=f"{last['collapse']:.3g}")
                    loss_sum.zero_()
                    window, t0 = 0, time.perf_counter()
                if self.step % cfg.run.checkpoint_every == 0 or self.step == total:
                    self.save("last.pt")
        finally:
            bar.close()
            log.close()
        return TrainResult(self.run_dir, self.step, last["loss"], last["collapse"], self.best_val)

    def _log_window(self, log: MetricsLog, loss_sum: torch.Tensor, collapse: torch.Tensor,
                    window: int, t0: float, lr: float, tau: float) -> dict:
        """Metrics row: mean loss over the window's steps; collapse of the window's last batch."""
        steps = math.ceil(window / self.config.optim.batch_size) or 1
        values = {"loss": loss_sum.item() / steps, "collapse": collapse.item(),
                  "lr": lr, "tau": tau,
                  "transitions_per_s": window / max(time.perf_counter() - t0, 1e-9)}
        if self.step % self.config.run.val_every == 0 or self.step == self.config.optim.steps:
            values.update(self.validate())
            score = values.get("val_rel_loss", values["loss"])
            if score < self.best_val:
                self.best_val = score
                self.save("best.pt")
        log.log(self.step, values)
        return values


def train(data: EpisodeSet, config: TrainConfig, run_dir: str | Path, resume: bool = False,
          progress: bool = True) -> TrainResult:
    """Train (or resume) a run in ``run_dir``; writes config.yaml, metrics, last.pt and best.pt."""
    run_dir = Path(run_dir)
    last = run_dir / "last.pt"
    if not resume and last.exists():
        raise ActJepaError(f"{run_dir}: already holds a run (last.pt); pass --resume to continue "
                           "it or choose another --out")
    if resume and not last.exists():
        raise ActJepaError(f"{run_dir}: --resume given but there is no last.pt to resume from")
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(data, config, run_dir)
    if resume:
        trainer.restore(last)
    save_yaml(config, run_dir / "config.yaml")
    return trainer.run(progress=progress)
