"""A LeRobot pretrained policy folder behind our Policy interface (``policy_type: lerobot``).

LeRobot has no ROS 2 bridge of its own; wrapping its policies here lets policy_node serve them
with our topics, staleness rules, safety filter, lifecycle and diagnostics, and lets the
evaluation harness measure them on our tasks exactly as it measures ours.

The folder is what LeRobot 0.4 writes for a trained policy (``lerobot-train``'s
``pretrained_model/``, or ``policy.save_pretrained(dir)`` plus the processors'
``save_pretrained(dir)``): ``config.json`` (the policy type and its input/output features),
``model.safetensors`` and the pre/post-processor pipelines (``policy_preprocessor.json``,
``policy_postprocessor.json`` and their normalisation statistics). Nothing is downloaded.

Observations: our observation dict uses our keys (``joints``, ``image``, ...); ``features``
maps each LeRobot input feature (``observation.state``, ``observation.images.<camera>``) to the
key that fills it. Every input feature must be filled: a mismatch fails at load with one line.
Cameras are our uint8 (H, W, 3) frames, handed to LeRobot as float (3, H, W) in [0, 1], as its
datasets give them; vectors are float32. LeRobot's preprocessor adds the batch dimension and
normalises, the policy answers (ACT and Diffusion Policy keep an action queue: ``reset()`` clears
it between episodes), the postprocessor de-normalises, and the action is clipped to the training
data's action range (its min/max statistics) as our own policies clip theirs.

``lerobot`` is imported only by ``load_lerobot_policy``: this module imports without it (it is
installed in .venv-peers, never in .venv; `make peers`).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from actjepa_core.device import resolve_device
from actjepa_core.errors import ActJepaError
from actjepa_core.policies.base import Policy

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
PREPROCESSOR, POSTPROCESSOR = "policy_preprocessor.json", "policy_postprocessor.json"
ACTION = "action"
IMAGE_NDIM = 3  # LeRobot visual features: (C, H, W)
RGB = 3


def lerobot_missing_message() -> str:
    return (f"policy_type lerobot needs the lerobot package, which is not installed in this "
            f"Python ({sys.executable}); install it apart from .venv (`make peers` builds "
            ".venv-peers with it)")


class LeRobotPolicy(Policy):
    """A loaded LeRobot policy acting on our observation dicts (module docstring)."""

    policy_type = "lerobot"
    registered = False  # served and evaluated, never built by `actjepa train-policy`
    needs_demos = False

    def __init__(self, policy: Any, preprocessor: Any, postprocessor: Any,
                 features: Mapping[str, str], folder: Path, device: torch.device) -> None:
        # no FrozenWorld: LeRobot's policy is its own model, normaliser and processor
        self.world = self.model = self.processor = None
        self.config = dict(features)
        self.policy, self.preprocessor, self.postprocessor = policy, preprocessor, postprocessor
        self.folder, self.device = folder, device
        self.features = dict(features)  # LeRobot input feature -> our observation key
        self.lerobot_type = str(policy.config.type)
        inputs = policy.config.input_features
        self.visual = {name for name, ft in inputs.items() if len(ft.shape) == IMAGE_NDIM}
        self._spec = {key: spec_entry(inputs[name].shape, name in self.visual)
                      for name, key in self.features.items()}
        self.action_dim = int(policy.config.output_features[ACTION].shape[0])
        self.action_low, self.action_high = action_range(postprocessor, self.action_dim)
        self.obs_noise = 0.0
        self.noise_generator = torch.Generator().manual_seed(0)

    # ---- what the node and the harness read ------------------------------------------------
    @property
    def obs_spec(self) -> dict[str, dict]:
        """Our observation keys (shape, dtype) the mapped LeRobot input features need."""
        return self._spec

    @property
    def action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.action_low, self.action_high

    @property
    def variant(self) -> str:
        return self.lerobot_type

    def summary(self) -> str:
        mapping = ", ".join(f"{key} -> {name}" for name, key in self.features.items())
        params = sum(p.numel() for p in self.policy.parameters())
        return (f"lerobot {self.lerobot_type} policy from {self.folder} ({params / 1e6:.1f} M "
                f"parameters; {mapping}; action {self.action_dim})")

    # ---- acting ------------------------------------------------------------------------------
    def reset(self) -> None:
        """A new episode: LeRobot's action queue (chunks not yet executed) is emptied."""
        self.policy.reset()
        self.preprocessor.reset()
        self.postprocessor.reset()

    @torch.no_grad()
    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        if self.obs_noise > 0:
            raise ActJepaError("observation noise is defined on our normalised observations; a "
                               "lerobot policy normalises its own, so evaluate it with noise 0")
        batch = self.preprocessor(self.batch(obs))
        action = self.postprocessor(self.policy.select_action(batch))
        action = action.detach().to("cpu", torch.float32).numpy().reshape(-1)
        if action.shape != (self.action_dim,):
            raise ActJepaError(f"{self.folder}: the policy returned {action.shape[0]} action "
                               f"values; expected {self.action_dim}")
        if not np.isfinite(action).all():
            raise ActJepaError(f"lerobot policy produced a non-finite action {action}")
        return np.clip(action, self.action_low, self.action_high).astype(np.float32)

    def batch(self, obs: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """Our observation -> LeRobot's unbatched input dict (checked: key, shape, finite)."""
        out = {}
        for name, key in self.features.items():
            if key not in obs:
                raise ActJepaError(f"observation has no '{key}' (LeRobot feature {name}); "
                                   f"expected keys {sorted(self._spec)}")
            value = np.asarray(obs[key])
            shape = tuple(self._spec[key]["shape"])
            if value.shape != shape:
                raise ActJepaError(f"observation '{key}' has shape {value.shape}; expected "
                                   f"{shape} (LeRobot feature {name})")
            if name in self.visual:
                if value.dtype != np.uint8:
                    raise ActJepaError(f"observation '{key}' is {value.dtype}; expected uint8 "
                                       f"pixels (LeRobot feature {name})")
                tensor = torch.from_numpy(np.ascontiguousarray(value)).permute(2, 0, 1)
                out[name] = tensor.to(torch.float32).div_(255.0)
            else:
                vector = value.astype(np.float32)
                if not np.isfinite(vector).all():
                    raise ActJepaError(f"observation '{key}' contains NaN or Inf (or values "
                                       "beyond float32); expected finite values")
                out[name] = torch.from_numpy(vector)
        return out

    def act_latent(self, latent: torch.Tensor) -> torch.Tensor:
        raise ActJepaError("a lerobot policy has no ACT-JEPA latent; call act(obs)")

    def save(self, path: str | Path) -> None:
        raise ActJepaError(f"a lerobot policy stays in its folder ({self.folder}); nothing to "
                           f"save to {path}")


def spec_entry(shape: tuple[int, ...], visual: bool) -> dict[str, Any]:
    """A LeRobot feature's shape -> our observation spec entry (cameras (C, H, W) -> uint8
    (H, W, C); vectors float32)."""
    if visual:
        channels, height, width = (int(s) for s in shape)
        return {"shape": [height, width, channels], "dtype": "uint8"}
    return {"shape": [int(s) for s in shape], "dtype": "float32"}


def action_range(postprocessor: Any, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The action's min/max from the postprocessor's statistics (the training data's range);
    unbounded when it has none (the node's action_min/action_max then bound it)."""
    for step in getattr(postprocessor, "steps", []):
        stats = (getattr(step, "stats", None) or {}).get(ACTION) or {}
        if "min" in stats and "max" in stats:
            low = np.asarray(torch.as_tensor(stats["min"]).cpu(), np.float32).reshape(-1)
            high = np.asarray(torch.as_tensor(stats["max"]).cpu(), np.float32).reshape(-1)
            if low.shape == high.shape == (dim,) and np.all(low <= high):
                return low, high
    return np.full(dim, -np.inf, np.float32), np.full(dim, np.inf, np.float32)


def check_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise ActJepaError(f"{folder}: not a folder; expected a LeRobot pretrained policy folder "
                           f"({CONFIG}, {WEIGHTS}, {PREPROCESSOR}, {POSTPROCESSOR})")
    missing = [f for f in (CONFIG, WEIGHTS, PREPROCESSOR, POSTPROCESSOR)
               if not (folder / f).is_file()]
    if missing:
        raise ActJepaError(f"{folder}: no {', '.join(missing)}; expected a LeRobot pretrained "
                           "policy folder (policy.save_pretrained(dir), and the pre/post-"
                           "processors' save_pretrained(dir), as lerobot-train writes them)")


def check_features(folder: Path, inputs: Mapping[str, Any], features: Mapping[str, str]
                   ) -> None:
    """Every LeRobot input feature filled by exactly one of our keys, and nothing else."""
    where = folder / CONFIG
    unknown = sorted(set(features) - set(inputs))
    if unknown:
        raise ActJepaError(f"{where}: the features table names {unknown}, which the policy does "
                           f"not read; expected its input features {sorted(inputs)}")
    unfilled = sorted(set(inputs) - set(features))
    if unfilled:
        raise ActJepaError(f"{where}: input feature(s) {unfilled} mapped to no observation key; "
                           "expected every input feature in the features table (LeRobot feature "
                           "-> our key)")
    keys = list(features.values())
    if not all(keys) or len(set(keys)) != len(keys):
        raise ActJepaError(f"{where}: the features table maps to keys {keys}; expected one "
                           "distinct, non-empty observation key per LeRobot feature")
    for name, ft in inputs.items():
        shape = tuple(ft.shape)
        if len(shape) == IMAGE_NDIM and shape[0] != RGB:
            raise ActJepaError(f"{where}: input feature {name} has shape {shape}; expected "
                               "colour images (3, H, W)")
        if len(shape) not in (1, IMAGE_NDIM):
            raise ActJepaError(f"{where}: input feature {name} has shape {shape}; expected a "
                               "vector (K,) or an image (3, H, W)")


def load_lerobot_policy(folder: str | Path, features: Mapping[str, str],
                        device: str | torch.device = "cpu") -> LeRobotPolicy:
    """Load a LeRobot pretrained policy folder; ``features``: LeRobot input feature -> our
    observation key (e.g. {"observation.state": "joints", "observation.images.image":
    "image"})."""
    folder = Path(folder).expanduser()
    check_folder(folder)
    device = resolve_device(device)
    try:
        from lerobot.configs.policies import PreTrainedConfig
        from lerobot.policies.factory import get_policy_class, make_pre_post_processors
    except ImportError:
        raise ActJepaError(lerobot_missing_message()) from None
    try:
        config = PreTrainedConfig.from_pretrained(folder)
    except Exception as err:  # noqa: BLE001 - draccus/json raise many types for a bad file
        raise ActJepaError(f"{folder / CONFIG}: not a LeRobot policy config ({type(err).__name__}"
                           f": {first_line(err)})") from None
    config.device = device.type
    check_features(folder, config.input_features, features)
    if ACTION not in config.output_features:
        raise ActJepaError(f"{folder / CONFIG}: output features {list(config.output_features)} "
                           f"have no '{ACTION}'; expected a policy that outputs actions")
    try:
        policy = get_policy_class(config.type).from_pretrained(folder, config=config,
                                                               strict=True)
        preprocessor, postprocessor = make_pre_post_processors(
            config, pretrained_path=str(folder),
            preprocessor_overrides={"device_processor": {"device": device.type}})
    except Exception as err:  # noqa: BLE001 - safetensors/draccus: one line, not a traceback
        raise ActJepaError(f"{folder}: could not load the LeRobot {config.type} policy "
                           f"({type(err).__name__}: {first_line(err)})") from None
    policy.eval()
    return LeRobotPolicy(policy, preprocessor, postprocessor, features, folder, device)


def first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else ""
