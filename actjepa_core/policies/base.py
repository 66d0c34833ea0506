"""One Policy interface, and one registry, for every controller built on a frozen ACT-JEPA encoder.

``act(obs)`` takes a raw observation dict (robot units, uint8 images); the world's observation
processor checks it against the spec the encoder was trained on and normalises it, the encoder
embeds it, the concrete policy answers with a normalised action, and the processor maps that back
to robot units clipped to the dataset's action bounds. It never returns a non-finite action: a
policy that produces one raises instead.

Each policy class names its type (``policy_type``, the registry key) and its config dataclass
(``config_class``), and makes itself with ``build(world, demos, config)`` (train a head, encode a
memory, or nothing at all). A policy file is one checkpoint (kind ``policy``) holding the world
model (``FrozenWorld.state()``) and the policy's config and parts, so a node needs a single path
and ``load_policy`` a single code path for every type.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import torch

from actjepa_core.config import from_dict, load_yaml
from actjepa_core.data.episodes import Episode, EpisodeSet
from actjepa_core.errors import ActJepaError
from actjepa_core.policies.world import FrozenWorld
from actjepa_core.training import checkpoint as ckpt

POLICY = "policy"


class Policy(ABC):
    policy_type: ClassVar[str]  # the registry key: "bc" | "nn" | "mpc"
    config_class: ClassVar[type]  # its settings: a dataclass with validate(where) -> itself
    needs_demos: ClassVar[bool] = True  # build() learns from demonstrations
    needs_goal: ClassVar[bool] = False  # set_goal(obs) before act() (latent MPC)
    dropped_config_keys: ClassVar[tuple[str, ...]] = ()  # old settings ignored in policy files
    # in ``registry`` (policy files, `actjepa train-policy`); False for policies loaded from
    # elsewhere (a LeRobot folder) that the node and the harness still run as a Policy
    registered: ClassVar[bool] = True
    registry: ClassVar[dict[str, type["Policy"]]] = {}

    def __init__(self, world: FrozenWorld, config: Any):
        self.world = world
        self.config = config.validate()
        self.model = world.model
        self.processor = world.processor
        self.device = world.device
        self.action_dim = world.action_dim
        self.obs_noise = 0.0  # test-time Gaussian noise on the normalised observation (eval)
        self.noise_generator = torch.Generator(device=self.device).manual_seed(0)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if getattr(cls, "policy_type", None) and cls.__dict__.get("registered", True):
            Policy.registry[cls.policy_type] = cls

    @property
    def obs_spec(self) -> dict[str, dict]:
        """The observation spec the encoder was trained on (key -> shape, dtype)."""
        return self.world.spec

    @property
    def action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) of the actions in robot units: the training data's range, which ``act``
        clips to and a node's safety limits default to."""
        return self.processor.action_low, self.processor.action_high

    # ---- making one ------------------------------------------------------------------------
    @classmethod
    def build(cls, world: FrozenWorld, demos: EpisodeSet | Sequence[Episode] | None,
              config: Any) -> "Policy":
        """A ready policy on ``world`` (demos are ignored by policies that need none)."""
        raise NotImplementedError(f"{cls.__name__} has no build()")

    def summary(self) -> str:
        """One line saying what was built (printed by `actjepa train-policy`)."""
        return f"{self.policy_type} policy"

    # ---- the interface ---------------------------------------------------------------------
    @property
    def variant(self) -> str:
        """A short tag for results tables when settings change what the policy is ('' = plain)."""
        return ""

    def reset(self) -> None:  # noqa: B027 - a default (stateless policies), not abstract
        """Forget per-episode state (warm starts, action chunks). Stateless policies: no-op."""

    @torch.no_grad()
    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Raw observation -> action in robot units, float32 (A,), finite and within bounds."""
        latent = self.encode(obs)  # (1, D)
        action = self.processor.to_robot(self.act_latent(latent))
        if not np.isfinite(action).all():
            raise ActJepaError(f"{self.policy_type} policy produced a non-finite action {action}")
        return action

    @abstractmethod
    def act_latent(self, latent: torch.Tensor) -> torch.Tensor:
        """(1, D) latent -> (A,) action in the normalised [-1, 1] space."""

    @torch.no_grad()
    def encode(self, obs: Mapping[str, np.ndarray]) -> torch.Tensor:
        """Check, normalise, add test-time noise, encode: raw obs -> (1, D)."""
        return self.model.encode(self.model_input(obs))

    def model_input(self, obs: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """Check and normalise a raw observation and add the test-time noise: the encoder's
        input, key -> (1, ...)."""
        x = self.processor.to_model(obs)
        if self.obs_noise > 0:
            x = {k: v + self.obs_noise * torch.randn(v.shape, device=self.device,
                                                     generator=self.noise_generator)
                 for k, v in x.items()}
        return x

    # ---- files -----------------------------------------------------------------------------
    def parts(self) -> dict[str, Any]:
        """The policy's learned parts besides its config: tensors and plain containers only,
        the keyword arguments ``__init__`` takes back."""
        return {}

    @classmethod
    def parts_from_state(cls, state: Mapping[str, Any]) -> dict[str, Any]:
        """A policy file's stored parts -> ``__init__`` keyword arguments."""
        return {k: v for k, v in state.items() if k != "config"}

    def save(self, path: str | Path) -> None:
        ckpt.save_checkpoint(path, POLICY, {
            "policy_type": self.policy_type, "world": self.world.state(),
            "policy": {"config": asdict(self.config), **self.parts()}})

    @classmethod
    def load_config(cls, data: Mapping[str, Any], where: str) -> Any:
        """A stored config dict -> ``config_class``, old settings dropped, validated."""
        kept = {k: v for k, v in data.items() if k not in cls.dropped_config_keys}
        return from_dict(cls.config_class, kept, where).validate(where)

    @classmethod
    def from_state(cls, world: FrozenWorld, state: Mapping[str, Any],
                   where: str = "policy file") -> "Policy":
        """Rebuild from a policy file's ``policy`` entry (config + parts)."""
        config = cls.load_config(state["config"], f"{where}: {cls.policy_type} config")
        return cls(world, config, **cls.parts_from_state(state))


def policy_class(policy_type: str, where: str = "policy type") -> type[Policy]:
    if policy_type not in Policy.registry:
        raise ActJepaError(f"{where}: unknown policy type {policy_type!r}; known: "
                           f"{sorted(Policy.registry)}")
    return Policy.registry[policy_type]


def policy_config(policy_type: str, path: str | Path | None = None) -> Any:
    """The config of a policy type: from a YAML file, or the built-in defaults."""
    cls = policy_class(policy_type)
    return load_yaml(cls.config_class, path) if path is not None else cls.config_class()


def load_policy(path: str | Path, device: str | torch.device = "cpu",
                policy_type: str | None = None) -> Policy:
    """Load any policy file; ``policy_type`` (if given) must match what the file holds."""
    content = ckpt.load_checkpoint(path, kind=POLICY)
    kind = content.get("policy_type")
    if policy_type is not None and kind != policy_type:
        raise ActJepaError(f"{path}: holds a {kind!r} policy; expected {policy_type!r}")
    cls = policy_class(kind, str(path))
    world = FrozenWorld.from_state(content["world"], device, str(path))
    return cls.from_state(world, content["policy"], str(path))


def episode_list(episodes: EpisodeSet | Sequence[Episode] | None) -> list[Episode]:
    eps = list(episodes.episodes if isinstance(episodes, EpisodeSet) else episodes or ())
    if not eps:
        raise ActJepaError("no demonstrations given; expected at least one episode")
    return eps


def require_finite_latent(latent: torch.Tensor, policy_type: str) -> None:
    """Refuse to act on a latent the encoder could not represent (e.g. an observation so far out
    of the training range that normalisation overflowed): stop, don't guess."""
    if not bool(torch.isfinite(latent).all()):
        raise ActJepaError(f"{policy_type} policy: the observation encodes to a non-finite latent; "
                           "expected observation values within float32 range after normalisation")
