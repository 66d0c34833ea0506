"""Typed configuration: dataclasses with the paper's defaults (§5), loaded from and saved to YAML.

Unknown keys and wrongly typed values are errors that name the file and the dotted key, so a typo in
a config never silently falls back to a default.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from actjepa_core.atomic import atomic_path
from actjepa_core.errors import ActJepaError, check_choice

ACTION_INJECTIONS = ("concat", "add", "film")
ACTIVATIONS = ("relu", "gelu")
PRECISIONS = ("fp32", "bf16")
LOADERS = ("auto", "memory", "stream")
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
IMAGE_NORMS = ("none", "group")
IMAGE_POOLS = ("flatten", "keypoints")
# the registry (objectives/__init__.py) maps these names to builders; kept here as names only, so
# validating a config never imports the models (test_config checks the two agree)
OBJECTIVE_NAMES = ("act-jepa", "passive-jepa", "autoencoder", "action-reconstruction",
                   "contrastive", "raw", "bc")


@dataclass
class ModelConfig:
    """Architecture (the paper §4-5). Hidden lists give the widths between input and output."""

    latent_dim: int = 128  # D
    state_hidden: list[int] = field(default_factory=lambda: [256, 256])  # 3-layer MLP
    image_channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256])  # stride-2 convs
    action_hidden: list[int] = field(default_factory=lambda: [128])  # 2-layer MLP
    predictor_hidden: list[int] = field(default_factory=lambda: [128, 128])  # <= D: bottleneck
    action_injection: str = "concat"  # concat | add | film
    activation: str = "relu"  # relu | gelu
    # normalisation after each image conv: none (the paper's CNN) | group (GroupNorm, the
    # visuomotor-policy habit: batch-size independent, unlike BatchNorm)
    image_norm: str = "none"
    # several cameras of one size through one CNN (true) or each through its own (false): fewer
    # weights and each view trains the other's filters; every camera keeps its own latent
    shared_image_encoder: bool = False
    # how the last conv map becomes a vector: flatten (keeps the map cell by cell) | keypoints
    # (spatial softmax, robomimic / Diffusion Policy: each of image_keypoints channels gives the
    # expected (x, y) of its activation, a position finer than the map's cells)
    image_pool: str = "flatten"
    image_keypoints: int = 32

    def validate(self, where: str) -> None:
        check_choice(where, "model.action_injection", self.action_injection, ACTION_INJECTIONS)
        check_choice(where, "model.activation", self.activation, ACTIVATIONS)
        check_choice(where, "model.image_norm", self.image_norm, IMAGE_NORMS)
        check_choice(where, "model.image_pool", self.image_pool, IMAGE_POOLS)
        if self.image_keypoints < 1:
            raise ActJepaError(f"{where}: model.image_keypoints must be >= 1, got "
                               f"{self.image_keypoints}")
        if self.latent_dim < 1:
            raise ActJepaError(f"{where}: model.latent_dim must be >= 1, got {self.latent_dim}")
        for name in ("state_hidden", "image_channels", "action_hidden", "predictor_hidden"):
            widths = getattr(self, name)
            if not widths or any(w < 1 for w in widths):
                raise ActJepaError(f"{where}: model.{name} must be a non-empty list of positive "
                                   f"widths, got {widths}")


@dataclass
class LossConfig:
    normalise: bool = False  # L2-normalise both latents before the squared distance (paper §4.6)
    rollout_steps: int = 1  # k > 1: also predict k steps ahead by applying the predictor k times
    # False (ablation only, with ema.enabled=false): gradients reach the target
    stop_gradient: bool = True
    # beyond the paper: VICReg's variance and covariance terms on s_t (models/regularisers.py);
    # 0 = off, the paper's recipe
    variance_weight: float = 0.0
    covariance_weight: float = 0.0

    def validate(self, where: str) -> None:
        if self.rollout_steps < 1:
            raise ActJepaError(f"{where}: loss.rollout_steps must be >= 1, got "
                               f"{self.rollout_steps}")
        if self.variance_weight < 0 or self.covariance_weight < 0:
            raise ActJepaError(f"{where}: loss.variance_weight and loss.covariance_weight must be "
                               f">= 0, got {self.variance_weight}, {self.covariance_weight}")


@dataclass
class EMAConfig:
    enabled: bool = True  # False: target = online encoder (the paper's 'No EMA' ablation)
    tau_start: float = 0.996
    tau_end: float = 1.0  # cosine schedule from tau_start to tau_end over training

    def validate(self, where: str) -> None:
        if not (0.0 <= self.tau_start <= 1.0 and 0.0 <= self.tau_end <= 1.0):
            raise ActJepaError(f"{where}: ema.tau_start/tau_end must lie in [0, 1], got "
                               f"{self.tau_start}/{self.tau_end}")


@dataclass
class OptimConfig:
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_fraction: float = 0.1  # linear warmup over this share of steps, then cosine to 0
    batch_size: int = 256
    steps: int = 5000
    grad_clip: float = 0.0  # 0: no clipping

    def validate(self, where: str) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ActJepaError(f"{where}: optim.steps and optim.batch_size must be >= 1")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ActJepaError(f"{where}: optim.warmup_fraction must lie in [0, 1), got "
                               f"{self.warmup_fraction}")
        if self.lr <= 0:
            raise ActJepaError(f"{where}: optim.lr must be > 0, got {self.lr}")


@dataclass
class DataConfig:
    val_fraction: float = 0.1  # share of whole demos held out for validation
    obs_keys: list[str] = field(default_factory=list)  # empty: every key in the file
    # auto: hold every transition in memory when they fit memory_budget_gb (per process), else
    # stream images from the HDF5 file in DataLoader workers; memory | stream force one of them
    loader: str = "auto"
    memory_budget_gb: float = 8.0
    workers: int = 2  # streaming: DataLoader worker processes per rank
    shuffle_window: int = 32  # streaming: blocks of 64 consecutive steps shuffled together

    def validate(self, where: str) -> None:
        if not 0.0 <= self.val_fraction < 1.0:
            raise ActJepaError(f"{where}: data.val_fraction must lie in [0, 1), got "
                               f"{self.val_fraction}")
        check_choice(where, "data.loader", self.loader, LOADERS)
        if self.memory_budget_gb <= 0 or self.workers < 0 or self.shuffle_window < 1:
            raise ActJepaError(f"{where}: data.memory_budget_gb must be > 0, data.workers >= 0 "
                               "and data.shuffle_window >= 1")


@dataclass
class AugmentConfig:
    """Input augmentation while pretraining the encoder (any objective); off by default, as in the
    paper. ``shift`` is DrQ's random shift: pad by ``shift`` pixels (edge replicate) and crop back
    at a random offset, independently per sample."""

    shift: int = 0  # pixels; 0 = off
    # Gaussian noise on o_t only (every key, on the model's scale: images in [0, 1], states
    # standardised), std drawn per sample in [0, noise]; o_{t+k} stays clean, so a JEPA's
    # predictor learns to map noisy inputs onto clean targets. 0 = off
    noise: float = 0.0

    def validate(self, where: str) -> None:
        if self.shift < 0:
            raise ActJepaError(f"{where}: augment.shift must be >= 0, got {self.shift}")
        if not 0.0 <= self.noise < float("inf"):
            raise ActJepaError(f"{where}: augment.noise must be a finite std >= 0, got "
                               f"{self.noise}")


@dataclass
class ContrastiveConfig:
    """SimCLR-style InfoNCE (objective ``contrastive``): two augmented views of o_t, a projection
    head, NT-Xent over the 2B views of a batch."""

    temperature: float = 0.1
    projection_hidden: list[int] = field(default_factory=lambda: [256])  # MLP D -> ... -> D
    shift: int = 4  # image views: random shift of up to this many pixels
    jitter: float = 0.2  # image views: brightness/contrast jitter of up to +-jitter
    state_noise: float = 0.1  # state views: Gaussian noise std on the normalised state

    def validate(self, where: str) -> None:
        if self.temperature <= 0:
            raise ActJepaError(f"{where}: contrastive.temperature must be > 0, got "
                               f"{self.temperature}")
        if self.shift < 0 or self.jitter < 0 or self.state_noise < 0:
            raise ActJepaError(f"{where}: contrastive.shift, jitter and state_noise must be >= 0")


@dataclass
class BCObjectiveConfig:
    """Objective ``bc``: a camera policy trained end to end on the action loss (encoder and head
    together), the recipe visuomotor policies use: vector keys (the arm's own pose) joined late,
    at the head, where they cannot swamp the image features; action chunks; an EMA of the
    weights for deployment; and, optionally, ACT-JEPA's latent prediction as an auxiliary loss
    on the same encoder (``jepa_weight``)."""

    # vector keys read by the head, not the encoder (e.g. proprio)
    head_keys: list[str] = field(default_factory=list)
    hidden: list[int] = field(default_factory=lambda: [256, 256])  # head widths
    chunk: int = 1  # actions predicted per step (temporal ensembling at run time)
    # lambda of BC + lambda * ACT-JEPA (predict the EMA target's latent of o_{t+1} from s_t, a_t;
    # loss.variance_weight / covariance_weight keep the latents spread); 0 = plain BC
    jepa_weight: float = 0.0
    # EMA decay of the deployed encoder + head (warmed up as min(decay, (1 + n) / (10 + n)));
    # 0 = deploy the last weights
    policy_ema: float = 0.0

    def validate(self, where: str) -> None:
        if not self.hidden or any(w < 1 for w in self.hidden) or self.chunk < 1:
            raise ActJepaError(f"{where}: bc.hidden must be positive widths and bc.chunk >= 1, "
                               f"got {self.hidden} / {self.chunk}")
        if not (0.0 <= self.jepa_weight < float("inf")) or not 0.0 <= self.policy_ema < 1.0:
            raise ActJepaError(f"{where}: bc.jepa_weight must be a finite value >= 0 and "
                               f"bc.policy_ema lie in [0, 1), got {self.jepa_weight} / "
                               f"{self.policy_ema}")


@dataclass
class RunConfig:
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    log_every: int = 50  # steps between metric rows
    val_every: int = 500  # steps between validation passes (and best-checkpoint checks)
    checkpoint_every: int = 1000  # steps between last.pt saves (for --resume)
    compile: bool = False  # torch.compile the training step (worth it on GPU)
    precision: str = "fp32"  # fp32 | bf16 (autocast: bf16 matmuls, fp32 weights and loss)
    # image encoder conv layout: auto = channels_last on CUDA (NHWC tensor-core kernels), else
    # contiguous
    memory_format: str = "auto"
    dist_timeout_s: float = 600.0  # torchrun/DDP: a collective waiting longer fails the run
    # a trained checkpoint (`actjepa train`'s best.pt) whose online encoder initialises this run's
    # encoder (and EMA target): fine-tune a pretrained representation, e.g. objective=raw on top
    # of ACT-JEPA; "" = from scratch
    init_encoder: str = ""


@dataclass
class TrainConfig:
    """Everything `actjepa train` needs besides the data path (Algorithm 1).

    ``objective`` picks what trains the encoder (objectives/): the paper's ACT-JEPA or one of the
    baselines it is compared with; everything else (encoder, D, budget) is shared by all of them.
    """

    objective: str = "act-jepa"
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    contrastive: ContrastiveConfig = field(default_factory=ContrastiveConfig)
    bc: BCObjectiveConfig = field(default_factory=BCObjectiveConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def validate(self, where: str = "config") -> "TrainConfig":
        check_choice(where, "objective", self.objective, OBJECTIVE_NAMES)
        check_choice(where, "run.precision", self.run.precision, PRECISIONS)
        check_choice(where, "run.memory_format", self.run.memory_format, MEMORY_FORMATS)
        if self.run.dist_timeout_s <= 0:
            raise ActJepaError(f"{where}: run.dist_timeout_s must be > 0, got "
                               f"{self.run.dist_timeout_s}")
        if not self.loss.stop_gradient and self.ema.enabled:
            raise ActJepaError(f"{where}: loss.stop_gradient=false is an ablation of the no-EMA "
                               "model; set ema.enabled=false too")
        for part in (self.model, self.loss, self.ema, self.optim, self.data, self.augment,
                     self.contrastive, self.bc):
            part.validate(where)
        return self


T = TypeVar("T")


def from_dict(cls: type[T], data: Any, where: str, prefix: str = "") -> T:
    """Build dataclass ``cls`` from a nested dict, rejecting unknown keys and wrong types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ActJepaError(f"{where}: {prefix or 'top level'} must be a mapping, got "
                           f"{type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ActJepaError(f"{where}: unknown config key {prefix}{unknown[0]!s}; expected one of "
                           f"{', '.join(sorted(names))}")
    kwargs = {key: _coerce(hints[key], value, where, f"{prefix}{key}")
              for key, value in data.items()}
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where, prefix=f"{key}.")
    origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ActJepaError(f"{where}: {key} must be a list, got {value!r}")
        return [_coerce(item, v, where, f"{key}[{i}]") for i, v in enumerate(value)]
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and type(value) is hint:
        return value
    if hint is float and isinstance(value, str):
        try:  # YAML 1.1 reads '3e-4' (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if hint is float:
        raise ActJepaError(f"{where}: {key} must be a number, got {value!r}")
    raise ActJepaError(f"{where}: {key} must be {getattr(hint, '__name__', hint)}, got {value!r}")


def read_yaml(path: str | Path) -> Any:
    """The parsed document; a missing file or bad YAML is one line naming the file and where."""
    path = Path(path)
    if not path.is_file():
        raise ActJepaError(f"{path}: config file not found")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ActJepaError(f"{path}: not valid YAML{where}: {problem}") from None


def load_yaml(cls: type[T], path: str | Path) -> T:
    """Load a dataclass config from YAML; a missing or malformed file is an ActJepaError."""
    config = from_dict(cls, read_yaml(path), str(path))
    if hasattr(config, "validate"):
        config.validate(str(path))
    return config


def to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def save_yaml(config: Any, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


def load_train_config(path: str | Path | None) -> TrainConfig:
    return TrainConfig().validate() if path is None else load_yaml(TrainConfig, path)


def apply_overrides(config: T, overrides: list[str], where: str = "--set") -> T:
    """Return a copy of ``config`` with dotted ``key=value`` overrides (values parsed as YAML)."""
    data = to_dict(config)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ActJepaError(f"{where} {item!r}: expected KEY=VALUE, e.g. optim.lr=3e-4")
        node, parts = data, key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ActJepaError(f"{where} {item!r}: unknown config section {part!r}")
            node = node[part]
        if parts[-1] not in node:
            raise ActJepaError(f"{where} {item!r}: unknown config key {key!r}")
        node[parts[-1]] = yaml.safe_load(raw)
    result = from_dict(type(config), data, where)
    if hasattr(result, "validate"):
        result.validate(where)
    return result
