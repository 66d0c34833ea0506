"""Demonstrations through the frozen encoder, once: the representations R (Algorithm 2, line 3) and
the memory M (Algorithm 3, line 2) are the same computation.

Encoding happens in no-grad batches before any training or search, so neither BC training nor an
NN query ever runs the encoder over the dataset again.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from actjepa_core.data.episodes import Episode, EpisodeSet
from actjepa_core.errors import ActJepaError
from actjepa_core.policies.base import Policy

ENCODE_BATCH = 1024  # observations per encoder pass (64x64 images: ~50 MB of float input)


def episode_list(episodes: EpisodeSet | Sequence[Episode]) -> list[Episode]:
    eps = list(episodes.episodes if isinstance(episodes, EpisodeSet) else episodes)
    if not eps:
        raise ActJepaError("no demonstrations given; expected at least one episode")
    return eps


def check_episodes(policy: Policy, episodes: Sequence[Episode]) -> None:
    """The demos must carry every key the encoder was trained on, in the same shapes and kinds."""
    for i, ep in enumerate(episodes):
        for key, spec in policy.obs_spec.items():
            if key not in ep.obs:
                raise ActJepaError(f"demo {i} has no observation key {key!r}; the encoder expects "
                                   f"{sorted(policy.obs_spec)}")
            arr = ep.obs[key]
            if tuple(arr.shape[1:]) != tuple(spec["shape"]):
                raise ActJepaError(f"demo {i} observation {key!r} has shape {tuple(arr.shape[1:])}"
                                   f" per step; the encoder expects {tuple(spec['shape'])}")
            if (arr.dtype == np.uint8) != (np.dtype(spec["dtype"]) == np.uint8):
                raise ActJepaError(f"demo {i} observation {key!r} has dtype {arr.dtype}; the "
                                   f"encoder expects {spec['dtype']}")
        if ep.actions.shape[1] != policy.action_dim:
            raise ActJepaError(f"demo {i} has {ep.actions.shape[1]}-dim actions; the encoder's "
                               f"world model expects {policy.action_dim}")


@torch.no_grad()
def encode_episodes(policy: Policy, episodes: Sequence[Episode],
                    batch_size: int = ENCODE_BATCH) -> torch.Tensor:
    """Every observation of every demo, in order, through the frozen encoder -> (N, D)."""
    check_episodes(policy, episodes)
    rows = {k: np.concatenate([ep.obs[k] for ep in episodes]) for k in policy.obs_spec}
    total = len(next(iter(rows.values())))
    latents = []
    for start in range(0, total, batch_size):
        x = {k: torch.as_tensor(v[start:start + batch_size], device=policy.device)
             for k, v in rows.items()}  # key -> (b, ...)
        latents.append(policy.model.encode(policy.normaliser.obs(x)))  # (b, D)
    return torch.cat(latents).float()  # (N, D)


def normalised_actions(policy: Policy, episodes: Sequence[Episode]) -> torch.Tensor:
    """Every demo action, in order, mapped to [-1, 1] with the world model's bounds -> (N, A)."""
    actions = torch.as_tensor(np.concatenate([ep.actions for ep in episodes]),
                              device=policy.device)
    return policy.normaliser.action(actions.float())  # (N, A)


def require_finite_latent(latent: torch.Tensor, policy_type: str) -> None:
    """Refuse to act on a latent the encoder could not represent (e.g. an observation so far out
    of the training range that normalisation overflowed): stop, don't guess."""
    if not bool(torch.isfinite(latent).all()):
        raise ActJepaError(f"{policy_type} policy: the observation encodes to a non-finite latent; "
                           "expected observation values within float32 range after normalisation")
