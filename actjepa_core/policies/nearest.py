"""Latent nearest neighbour (the paper's Algorithm 3, Protocol 2): act like the closest
demonstration.

The memory M is every demo observation through the frozen encoder, (M, D) float32, beside its
normalised action (M, A); both live in the policy checkpoint (M * (D + A) * 4 bytes: ~0.5 GB for
a million D=128 entries). A query is a matmul against the memory on the policy's device, in blocks
of ``search_chunk`` entries so the (Q, block) distance matrix stays bounded however large M grows;
each block contributes its k best candidates, which are then re-ranked with exact float64
distances, so the winner does not depend on the matmul form's rounding.

The memory is held column-wise, (D, M) contiguous: a single query is then a streaming
(1, D) @ (D, M) product, faster on CPU than the same product against (M, D) rows
(``nn_query_benchmark`` times a query per memory size).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from actjepa_core.data.episodes import Episode, EpisodeSet
from actjepa_core.errors import ActJepaError
from actjepa_core.policies.base import Policy, episode_list, require_finite_latent
from actjepa_core.policies.configs import NNConfig
from actjepa_core.policies.world import FrozenWorld


def squared_norms(memory_t: torch.Tensor) -> torch.Tensor:
    return memory_t.pow(2).sum(0)  # (D, M) -> (M,)


@torch.no_grad()
def nearest(memory_t: torch.Tensor, queries: torch.Tensor, k: int, block: int,
            memory_sq: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest memory entries of each query: memory (D, M) column-wise, queries (Q, D) ->
    L2 distances (Q, k) and entry indices (Q, k), nearest first.

    Ranking inside a block uses ||m||^2 - 2 q.m (||q||^2 is the same for every entry of a query);
    ``memory_sq`` (M,) may be passed in so it is computed once per memory, not per query.
    """
    size = memory_t.shape[1]
    k = min(k, size)
    memory_sq = squared_norms(memory_t) if memory_sq is None else memory_sq
    candidates = []
    for start in range(0, size, block):
        cols = memory_t[:, start:start + block]  # (D, b)
        score = torch.addmm(memory_sq[None, start:start + block], queries, cols,
                            alpha=-2.0)  # (Q, b)
        candidates.append(score.topk(min(k, cols.shape[1]), dim=1, largest=False).indices + start)
    candidates = torch.cat(candidates, dim=1)  # (Q, C): k per block
    entries = memory_t[:, candidates].permute(1, 2, 0)  # (Q, C, D)
    diff = queries[:, None].double() - entries.double()  # (Q, C, D)
    exact, order = diff.pow(2).sum(-1).topk(k, dim=1, largest=False)  # (Q, k)
    return exact.sqrt().float(), candidates.gather(1, order)


def blend(distances: torch.Tensor, actions: torch.Tensor, config: NNConfig) -> torch.Tensor:
    """(Q, k) distances and (Q, k, A) neighbour actions -> (Q, A) weighted mean action."""
    if config.weighting == "uniform":
        weights = torch.ones_like(distances)
    else:
        weights = 1.0 / (distances + config.eps)  # (Q, k)
    weights = weights / weights.sum(1, keepdim=True)
    return (weights[..., None] * actions).sum(1)  # (Q, A)


class NearestNeighbourPolicy(Policy):
    policy_type = "nn"
    config_class = NNConfig

    def __init__(self, world: FrozenWorld, config: NNConfig, memory: torch.Tensor,
                 actions: torch.Tensor):
        super().__init__(world, config)
        self.remember(memory, actions)

    @classmethod
    def build(cls, world: FrozenWorld, demos: EpisodeSet | Sequence[Episode] | None,
              config: NNConfig | None = None) -> "NearestNeighbourPolicy":
        """Encode every demo observation once (Algorithm 3, line 2) into the memory."""
        eps = episode_list(demos)
        return cls(world, config or NNConfig(), world.encode_episodes(eps),
                   world.processor.episode_actions(eps))

    def summary(self) -> str:
        size, dim = self.memory.shape
        return (f"nn memory: {size} entries x D={dim} ({self.memory_bytes / 2**20:.1f} MiB), "
                f"k={self.config.k}")

    def remember(self, memory: torch.Tensor, actions: torch.Tensor) -> None:
        """Replace the memory: (M, D) latents and their (M, A) normalised actions."""
        dim = self.world.latent_dim
        if (memory.ndim != 2 or actions.ndim != 2 or len(memory) != len(actions)
                or not len(memory) or memory.shape[1] != dim
                or actions.shape[1] != self.action_dim):
            raise ActJepaError(f"nn memory has shape {tuple(memory.shape)} and actions "
                               f"{tuple(actions.shape)}; expected (M, {dim}) and "
                               f"(M, {self.action_dim}) with M >= 1")
        self.memory_t = memory.to(self.device, torch.float32).T.contiguous()  # (D, M)
        self.actions = actions.to(self.device, torch.float32)  # (M, A), normalised
        self.memory_sq = squared_norms(self.memory_t)  # (M,)

    @property
    def memory(self) -> torch.Tensor:
        """The encoded demo observations, (M, D) (a view of the column-wise search layout)."""
        return self.memory_t.T

    @property
    def memory_bytes(self) -> int:
        """Size of the stored memory (latents + actions), as written to the checkpoint."""
        return (self.memory.numel() + self.actions.numel()) * self.memory.element_size()

    def neighbours(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q, D) -> distances (Q, k) and memory rows (Q, k), nearest first."""
        return nearest(self.memory_t, latents, self.config.k, self.config.search_chunk,
                       self.memory_sq)

    def act_latent(self, latent: torch.Tensor) -> torch.Tensor:
        require_finite_latent(latent, self.policy_type)
        distances, rows = self.neighbours(latent)  # (1, k), (1, k)
        if rows.shape[1] == 1:
            return self.actions[rows[0, 0]]  # (A,): the demo's own action, exactly
        return blend(distances, self.actions[rows], self.config)[0]  # (A,)

    def parts(self) -> dict[str, Any]:
        return {"memory": self.memory.cpu().contiguous(), "actions": self.actions.cpu()}
