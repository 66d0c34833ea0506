"""LeRobot's own policies (ACT, Diffusion Policy) trained on our episodes file, as lerobot-train
does it, under a wall-clock budget and resumable. Runs in .venv-peers (`make peers`).

The episodes file goes to LeRobot's format with our exporter (`actjepa export lerobot`, PNG
frames: lossless), LeRobot's ``LeRobotDataset`` reads it back with the action/observation
windows the policy asks for (``resolve_delta_timestamps``), and the loop is lerobot-train's:
the policy's optimizer and scheduler presets, its pre-processor (normalisation with the
dataset's statistics), ``policy.forward`` for the loss, gradient clipping at the preset's norm.
What we choose differs from its defaults only where this machine forces it, and every such
choice is a config field written with the result: no ImageNet backbone weights (nothing can be
downloaded here), and a time budget instead of a step count (a fair comparison gives every
method the same minutes). The result is a LeRobot pretrained policy folder (``save_pretrained``
of the policy and both processors), what ``actjepa_core.policies.lerobot`` and policy_node load.
"""
from __future__ import annotations

import fcntl
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from actjepa_core.errors import ActJepaError

POLICIES = ("act", "diffusion")
FEATURES = {"observation.state": "joints", "observation.images.image": "image"}  # export names
SIM_FPS = 80.0  # Meta-World v3's control rate (12.5 ms per step): the timestamps LeRobot sees
STATE_FILE = "training_state.pt"
DONE_FILE = "trained.json"


@dataclass
class LeRobotTraining:
    """One LeRobot training run. ``policy``: act | diffusion; ``overrides``: fields of its
    LeRobot config (ACTConfig / DiffusionConfig) set on top of LeRobot's defaults."""

    policy: str = "act"
    overrides: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 8  # lerobot-train's default
    budget_s: float = 1380.0  # training seconds (checkpointing and data export not counted)
    max_steps: int = 0  # stop earlier after this many steps (0: the budget alone decides)
    schedule_steps: int = 100_000  # the LR schedule's length (lerobot-train's default steps)
    checkpoint_every_s: float = 300.0
    seed: int = 0
    fps: float = SIM_FPS

    def validate(self, where: str = "lerobot training") -> "LeRobotTraining":
        if self.policy not in POLICIES:
            raise ActJepaError(f"{where}: policy is {self.policy!r}; expected one of "
                               f"{list(POLICIES)}")
        if self.batch_size < 1 or self.budget_s <= 0 or self.max_steps < 0:
            raise ActJepaError(f"{where}: batch_size must be >= 1, budget_s > 0, max_steps >= 0; "
                               f"got {self.batch_size} / {self.budget_s} / {self.max_steps}")
        if self.schedule_steps < 1 or self.checkpoint_every_s <= 0 or self.fps <= 0:
            raise ActJepaError(f"{where}: schedule_steps, checkpoint_every_s and fps must be "
                               "positive")
        return self


@dataclass
class Trained:
    folder: Path  # the LeRobot pretrained policy folder
    train_s: float
    steps: int
    params: int


def exported(episodes: Path, out: Path, fps: float) -> Path:
    """The episodes file as a LeRobot dataset (PNG frames), written once under a lock shared by
    the runner's processes."""
    from actjepa_core.exporters import ExportOptions, export_lerobot

    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_name(out.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "meta" / "info.json").exists():
            export_lerobot(str(episodes), str(out), ExportOptions(fps=fps, video=False,
                                                                  task=episodes.stem))
    return out


def dataset(root: Path, config: Any) -> Any:
    from lerobot.datasets.factory import resolve_delta_timestamps
    from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata

    repo = f"local/{root.name}"
    meta = LeRobotDatasetMetadata(repo, root=root)
    return LeRobotDataset(repo, root=root, delta_timestamps=resolve_delta_timestamps(config, meta),
                          video_backend="pyav")


def policy_config(spec: LeRobotTraining, root: Path) -> Any:
    """LeRobot's config of ``spec.policy`` with the dataset's features and the overrides."""
    from lerobot.configs.types import FeatureType
    from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata
    from lerobot.datasets.utils import dataset_to_policy_features
    from lerobot.policies.factory import make_policy_config

    features = dataset_to_policy_features(LeRobotDatasetMetadata(f"local/{root.name}",
                                                                 root=root).features)
    overrides = {"pretrained_backbone_weights": None, "device": "cpu", **spec.overrides}
    try:
        config = make_policy_config(spec.policy, **overrides)
    except TypeError as err:
        raise ActJepaError(f"{spec.policy} overrides {sorted(spec.overrides)}: {err}") from None
    config.output_features = {k: f for k, f in features.items() if f.type is FeatureType.ACTION}
    config.input_features = {k: f for k, f in features.items() if k in FEATURES}
    config.validate_features()
    return config


def train_lerobot(episodes: Path, work: Path, spec: LeRobotTraining,
                  log: Any = print) -> Trained:
    """Train (or resume, or just read back) the run in ``work``; its policy folder is
    ``work/policy``."""
    spec.validate()
    folder, done = work / "policy", work / DONE_FILE
    if done.exists():
        return read_trained(work)
    from lerobot.policies.factory import get_policy_class, make_pre_post_processors

    root = exported(episodes, work.parent / "data" / episodes.stem, spec.fps)
    torch.manual_seed(spec.seed)
    config = policy_config(spec, root)
    data = dataset(root, config)
    cls = get_policy_class(config.type)
    resume = (folder / STATE_FILE).exists()
    policy = cls.from_pretrained(folder, config=config, strict=True) if resume else cls(config)
    preprocessor, postprocessor = make_pre_post_processors(config, dataset_stats=data.meta.stats)
    optimizer_config = config.get_optimizer_preset()
    optimizer = optimizer_config.build(policy.get_optim_params())
    scheduler_config = config.get_scheduler_preset()
    scheduler = (scheduler_config.build(optimizer, spec.schedule_steps)
                 if scheduler_config is not None else None)
    state = {"step": 0, "train_s": 0.0}
    if resume:
        saved = torch.load(folder / STATE_FILE, weights_only=True)  # tensors and numbers only
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
        state = {"step": saved["step"], "train_s": saved["train_s"]}
        log(f"resumed {folder} at step {state['step']} ({state['train_s']:.0f} s trained)")
    params = sum(p.numel() for p in policy.parameters())
    policy.train()
    loader = torch.utils.data.DataLoader(
        data, batch_size=spec.batch_size, shuffle=True, drop_last=True, num_workers=0,
        generator=torch.Generator().manual_seed(spec.seed + state["step"]))
    since_save = 0.0
    finished = False
    while not finished:
        for batch in loader:
            started = time.perf_counter()
            loss, _ = policy.forward(preprocessor(batch))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), optimizer_config.grad_clip_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if scheduler is not None:
                scheduler.step()
            if not torch.isfinite(loss):
                raise ActJepaError(f"{work}: {spec.policy} loss is {loss.item()} at step "
                                   f"{state['step']}; expected a finite loss")
            spent = time.perf_counter() - started
            state["step"] += 1
            state["train_s"] += spent
            since_save += spent
            finished = (state["train_s"] >= spec.budget_s
                        or (spec.max_steps and state["step"] >= spec.max_steps))
            if finished or since_save >= spec.checkpoint_every_s:
                save(folder, policy, preprocessor, postprocessor, optimizer, scheduler, state)
                since_save = 0.0
                log(f"{spec.policy} {episodes.stem}: step {state['step']}, loss "
                    f"{loss.item():.4f}, {state['train_s']:.0f} s")
            if finished:
                break
    write_trained(work, state, params, spec)
    return read_trained(work)


def write_trained(work: Path, state: dict[str, Any], params: int, spec: LeRobotTraining) -> None:
    """Mark the run finished: what training reached, and the spec it ran under."""
    (work / DONE_FILE).write_text(json.dumps({**state, "params": params,
                                              "spec": asdict(spec)}) + "\n")


def read_trained(work: Path) -> Trained:
    """A finished run read back, so a resumed study evaluates it without training again."""
    info = json.loads((work / DONE_FILE).read_text())
    return Trained(work / "policy", info["train_s"], info["step"], info["params"])


def save(folder: Path, policy: Any, preprocessor: Any, postprocessor: Any, optimizer: Any,
         scheduler: Any, state: dict[str, Any]) -> None:
    """The policy folder LeRobot loads, plus what resuming needs; the state file goes last,
    so a folder with one is complete."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STATE_FILE).unlink(missing_ok=True)
    policy.save_pretrained(folder)
    preprocessor.save_pretrained(folder)
    postprocessor.save_pretrained(folder)
    tmp = folder / (STATE_FILE + ".tmp")
    torch.save({"optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                **state}, tmp)
    tmp.replace(folder / STATE_FILE)
