"""Behavioural cloning on the frozen encoder (the paper's Algorithm 2, Protocol 1), with optional
action chunking and temporal ensembling (ACT, Zhao et al. 2023).

Every demo observation is encoded once before training, so a training step is an MLP over a
gathered (B, D) batch: the encoder never runs inside the loop and never receives a gradient.

Chunk targets stay inside one demo: the target for step t is a[t .. t+chunk-1], and steps past the
demo's end repeat the demo's last action (padding, not masking: at a demo's end the expert holds
still, so "keep doing the last thing" is the right label, and every target has full weight).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from actjepa_core.data.episodes import Episode, EpisodeSet
from actjepa_core.data.transitions import split_episodes
from actjepa_core.errors import ActJepaError
from actjepa_core.models import mlp
from actjepa_core.policies.base import Policy, episode_list, require_finite_latent
from actjepa_core.policies.configs import BCConfig
from actjepa_core.policies.world import FrozenWorld
from actjepa_core.training import distributed
from actjepa_core.training.optimizer import decay_groups
from actjepa_core.training.schedules import lr_at

EVAL_BATCH = 8192  # rows per no-grad pass when measuring the final MSEs
STD_FLOOR = 1e-8  # a latent dimension constant over the demos is centred, not blown up


@dataclass
class BCFit:
    """How training went: MSEs on normalised actions (averaged over steps, chunk and dims)."""

    train_mse: float
    val_mse: float  # nan without held-out demos
    mean_action_mse: float  # baseline: always predicting the training set's mean action
    steps: int
    train_samples: int
    val_samples: int


class BCHead(nn.Module):
    """pi_omega: latent (B, D), with ``BCConfig.vector`` the standardised vector appended
    (B, D + V) -> the next ``chunk`` normalised actions (B, chunk, A)."""

    def __init__(self, latent_dim: int, action_dim: int, config: BCConfig, vector_dim: int = 0):
        super().__init__()
        self.chunk, self.action_dim = config.chunk, action_dim
        width = latent_dim + vector_dim
        self.net = mlp(width, config.hidden, config.chunk * action_dim, config.activation)
        # input standardisation (BCConfig.standardise); the identity unless set from the data
        self.register_buffer("latent_mean", torch.zeros(width))
        self.register_buffer("latent_std", torch.ones(width))
        if vector_dim:  # the vector's own statistics (robot units -> standardised), always set
            self.register_buffer("vector_mean", torch.zeros(vector_dim))
            self.register_buffer("vector_std", torch.ones(vector_dim))

    def standardise_from(self, latents: torch.Tensor) -> None:
        """Per-dimension mean and std of the training latents (N, D) become the input scaling."""
        self.latent_mean.copy_(latents.mean(0))
        self.latent_std.copy_(latents.std(0).clamp_min(STD_FLOOR))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        x = (s - self.latent_mean) / self.latent_std  # (B, D)
        return self.net(x).view(-1, self.chunk, self.action_dim)  # (B, chunk, A)


class TemporalEnsemble:
    """ACT's temporal ensembling: each step adds a chunk of predictions for steps t..t+chunk-1;
    the action for step t averages every stored prediction for t with weights exp(-m * i),
    i = 0 for the oldest (ACT's convention: older predictions weigh more, smoothing the motion)."""

    def __init__(self, chunk: int, decay: float):
        self.decay = decay
        self.chunks: deque[torch.Tensor] = deque(maxlen=chunk)  # each (chunk, A), oldest first

    def reset(self) -> None:
        self.chunks.clear()

    def __call__(self, chunk: torch.Tensor) -> torch.Tensor:
        """Add this step's (chunk, A) prediction; return the ensembled (A,) action for this step."""
        self.chunks.append(chunk)
        n = len(self.chunks)
        # the j-th stored chunk (oldest first) was made n-1-j steps ago: its entry for now is n-1-j
        current = torch.stack([c[n - 1 - j] for j, c in enumerate(self.chunks)])  # (n, A)
        weights = torch.exp(-self.decay * torch.arange(n, device=chunk.device, dtype=chunk.dtype))
        return (weights[:, None] * current).sum(0) / weights.sum()  # (A,)


class BCPolicy(Policy):
    policy_type = "bc"
    config_class = BCConfig

    def __init__(self, world: FrozenWorld, config: BCConfig,
                 head: dict[str, torch.Tensor] | None = None, fit: BCFit | None = None,
                 vector_dim: int = 0):
        super().__init__(world, config)
        key = self.config.vector
        if head is not None and "vector_mean" in head:
            vector_dim = int(head["vector_mean"].numel())
        if key and key in world.spec:
            raise ActJepaError(f"bc vector {key!r} is already an input of the encoder "
                               f"({sorted(world.spec)}); expected another observation key")
        if bool(key) != bool(vector_dim):
            raise ActJepaError(f"bc vector {key!r} and the head's vector size {vector_dim} "
                               "disagree; expected both set (built with demos) or neither")
        self.vector_dim = vector_dim  # V
        self.head = BCHead(world.latent_dim, self.action_dim, self.config,
                           vector_dim).to(self.device)
        if head is not None:
            # heads saved before the input standardisation existed carry no scaling: identity
            self.head.load_state_dict({**self.head.state_dict(), **head})
        self.head.eval()
        self.fit = fit
        self.ensemble = TemporalEnsemble(self.config.chunk, self.config.ensemble_decay)

    @classmethod
    def build(cls, world: FrozenWorld, demos: EpisodeSet | Sequence[Episode] | None,
              config: BCConfig | None = None) -> "BCPolicy":
        """Train a BC head on the frozen encoder; ``policy.fit`` holds the final train/val MSE
        (whole demos held out, ``config.val_fraction``)."""
        config = (config or BCConfig()).validate()
        torch.manual_seed(config.seed)  # the head's initial weights
        train_eps, val_eps = split_episodes(episode_list(demos), config.val_fraction, config.seed)
        vectors = demo_vectors(train_eps, config.vector) if config.vector else None  # (N, V)
        policy = cls(world, config, vector_dim=0 if vectors is None else vectors.shape[1])
        if vectors is not None:
            policy.head.vector_mean.copy_(vectors.mean(0))
            policy.head.vector_std.copy_(vectors.std(0).clamp_min(STD_FLOOR))
        latents, targets = demo_tensors(policy, train_eps)  # (N, D), (N, chunk, A)
        if config.standardise:
            policy.head.standardise_from(latents)
        fit_head(policy.head, latents, targets, config)
        val_latents, val_targets = (demo_tensors(policy, val_eps) if val_eps
                                    else (latents[:0], targets[:0]))
        baseline = float((targets - targets.mean(dim=(0, 1))).pow(2).mean())
        policy.fit = BCFit(train_mse=mse(policy.head, latents, targets),
                           val_mse=mse(policy.head, val_latents, val_targets),
                           mean_action_mse=baseline, steps=config.steps,
                           train_samples=len(latents), val_samples=len(val_latents))
        return policy

    def summary(self) -> str:
        fit = self.fit
        return (f"trained bc head ({fit.steps} steps, chunk {self.config.chunk}) on "
                f"{fit.train_samples} samples: train MSE {fit.train_mse:.4g}, val MSE "
                f"{fit.val_mse:.4g} ({fit.val_samples} held-out samples), mean-action MSE "
                f"{fit.mean_action_mse:.4g}")

    @property
    def variant(self) -> str:
        return f"chunk {self.config.chunk}" if self.config.chunk > 1 else ""

    @property
    def obs_spec(self) -> dict[str, dict]:
        """The encoder's observation spec, plus the head's vector."""
        spec = dict(self.world.spec)
        if self.vector_dim:
            spec[self.config.vector] = {"shape": [self.vector_dim], "dtype": "float32"}
        return spec

    def reset(self) -> None:
        self.ensemble.reset()

    @torch.no_grad()
    def encode(self, obs: Mapping[str, np.ndarray]) -> torch.Tensor:
        """The frozen latent (1, D), with the head's vector appended (1, D + V)."""
        latent = super().encode(obs)
        if not self.vector_dim:
            return latent
        return torch.cat([latent, self.vector_input(obs)], dim=1)

    def vector_input(self, obs: Mapping[str, np.ndarray]) -> torch.Tensor:
        """The head's vector of one raw observation, checked and standardised, with the same
        test-time noise as the encoder's input: (1, V)."""
        key = self.config.vector
        if key not in obs:
            raise ActJepaError(f"observation is missing key {key!r}; the bc head reads it")
        value = np.asarray(obs[key], dtype=np.float32)
        if value.shape != (self.vector_dim,) or not np.isfinite(value).all():
            raise ActJepaError(f"observation {key!r} has shape {value.shape}; expected "
                               f"({self.vector_dim},) finite values")
        v = torch.as_tensor(value, device=self.device)[None]
        v = (v - self.head.vector_mean) / self.head.vector_std  # (1, V)
        if self.obs_noise > 0:
            v = v + self.obs_noise * torch.randn(v.shape, device=self.device,
                                                 generator=self.noise_generator)
        return v

    def act_latent(self, latent: torch.Tensor) -> torch.Tensor:
        require_finite_latent(latent, self.policy_type)
        chunk = self.head(latent)[0]  # (chunk, A)
        return chunk[0] if self.config.chunk == 1 else self.ensemble(chunk)  # (A,)

    def parts(self) -> dict[str, Any]:
        head = {k: v.cpu() for k, v in self.head.state_dict().items()}
        return {"head": head, "fit": asdict(self.fit) if self.fit is not None else {}}

    @classmethod
    def parts_from_state(cls, state: dict[str, Any]) -> dict[str, Any]:
        return {"head": state["head"], "fit": BCFit(**state["fit"]) if state.get("fit") else None}


def chunk_targets(actions: torch.Tensor, lengths: Sequence[int], chunk: int) -> torch.Tensor:
    """(N, A) demo-concatenated actions -> (N, chunk, A) targets a[t..t+chunk-1], each clamped to
    its own demo's last step (never reaching into the next demo)."""
    ends = np.repeat(np.cumsum(lengths) - 1, lengths)  # (N,) index of each row's demo end
    index = np.minimum(np.arange(len(ends))[:, None] + np.arange(chunk), ends[:, None])
    return actions[torch.as_tensor(index, device=actions.device)]  # (N, chunk, A)


def demo_vectors(episodes: Sequence[Episode], key: str) -> torch.Tensor:
    """The head's vector over every step of ``episodes``, in robot units: (N, V)."""
    for i, ep in enumerate(episodes):
        if key not in ep.obs or np.asarray(ep.obs[key]).ndim != 2:
            raise ActJepaError(f"demo {i} has no vector observation {key!r} (T, V) for the bc "
                               f"head; it holds {sorted(ep.obs)}")
    return torch.as_tensor(np.concatenate([np.asarray(ep.obs[key], dtype=np.float32)
                                           for ep in episodes]))


def demo_tensors(policy: BCPolicy, episodes: Sequence[Episode]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) frozen latents, with the head's standardised vector appended (N, D + V), and
    (N, chunk, A) normalised targets of ``episodes``."""
    latents = policy.world.encode_episodes(episodes)  # (N, D)
    if policy.vector_dim:
        vectors = demo_vectors(episodes, policy.config.vector).to(latents.device)
        head = policy.head
        latents = torch.cat([latents, (vectors - head.vector_mean) / head.vector_std], dim=1)
    targets = chunk_targets(policy.processor.episode_actions(episodes),
                            [ep.num_steps for ep in episodes], policy.config.chunk)
    return latents, targets


@torch.no_grad()
def mse(head: BCHead, latents: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean squared error over rows, chunk and action dims; nan for an empty set."""
    if len(latents) == 0:
        return math.nan
    total = sum(float((head(latents[i:i + EVAL_BATCH]) - targets[i:i + EVAL_BATCH]).pow(2).sum())
                for i in range(0, len(latents), EVAL_BATCH))
    return total / targets.numel()


def fit_head(head: BCHead, latents: torch.Tensor, targets: torch.Tensor, config: BCConfig) -> None:
    """Algorithm 2, lines 4-10: AdamW on the head alone, mini-batches drawn from the cached R.

    Under torchrun (a process group joined) the head is DistributedDataParallel: every rank draws
    the same global batch and trains on its slice of it, so the ranks together take the steps one
    process would."""
    optimizer = torch.optim.AdamW(decay_groups(list(head.parameters()), config.weight_decay),
                                  lr=config.lr)
    generator = torch.Generator(device=latents.device).manual_seed(config.seed)
    batch = min(config.batch_size, len(latents))
    ctx = distributed.current()
    if batch % ctx.world_size:
        raise ActJepaError(f"BC batch of {batch} does not split over {ctx.world_size} processes; "
                           f"choose a multiple of {ctx.world_size}")
    local = batch // ctx.world_size
    model = distributed.wrap(head, ctx, latents.device)
    head.train()
    for step in range(config.steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config.steps, config.lr, 0.0)
        idx = torch.randint(len(latents), (batch,), generator=generator, device=latents.device)
        if ctx.enabled:
            idx = idx[ctx.rank * local:(ctx.rank + 1) * local]
        loss = (model(latents[idx]) - targets[idx]).pow(2).mean()  # (B, chunk, A) -> scalar
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    head.eval()
