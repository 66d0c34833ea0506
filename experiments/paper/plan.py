"""Which cells the paper's tables need, as units of work: one unit trains one encoder (a
representation objective on one task's demos, one seed) and one BC head on it, then evaluates the
policy at one or more test-time noise levels; each (unit, sigma) is a cell, one JSON line.

A cell is identified by (obs, task, method, demos, seed, sigma), so the act-jepa unit at 100 demos
serves the main table, the noise table, the ablations' reference row and the data-efficiency
sweep's last column alike, and is trained once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from actjepa_core.config import load_yaml
from actjepa_core.errors import ActJepaError, check_choice

OBS_KINDS = ("state", "image")
TABLES = ("main", "noise", "ablations", "data", "extras")
TRAIN_DEVICES = ("cpu", "cuda", "auto")
VECTOR_KEYS = ("", "state", "proprio")


@dataclass(frozen=True)
class Method:
    """A table row: an objective plus train-config overrides and BC settings."""

    name: str
    objective: str
    overrides: tuple[str, ...] = ()
    bc_chunk: int = 1
    # image runs: a vector fused with the image (VECTOR_KEYS): "state", Meta-World's privileged
    # 39-d state (object and goal positions included), or "proprio", what the arm knows of itself
    vector: str = ""
    label: str = ""  # the row's name in the tables; "" = name
    # fine-tuning: the method whose encoder (same task, demos and seed) initialises this one's
    init_from: str = ""
    steps_factor: int = 1  # encoder training steps = the config's train_steps x this
    bc_standardise: bool = False  # BCConfig.standardise: latents standardised before the head
    # a BC-side variant: the method whose trained encoder (same task, demos, seed) this row
    # reuses as it is, instead of training its own
    encoder_of: str = ""
    bc_vector: str = ""  # BCConfig.vector: an observation key the BC head reads beside the latent

    def train_overrides(self) -> list[str]:
        return [f"objective={self.objective}", *self.overrides]


MAIN_METHODS = (
    Method("raw", "raw", label="Raw BC (end to end)"),
    Method("autoencoder", "autoencoder", label="Autoencoder + BC"),
    Method("contrastive", "contrastive", label="Contrastive + BC"),
    Method("passive-jepa", "passive-jepa", label="Passive JEPA + BC"),
    Method("act-jepa", "act-jepa", label="ACT-JEPA + BC"),
)
ABLATION_METHODS = (
    Method("act-jepa/no-ema", "act-jepa", ("ema.enabled=false",),
           label="No EMA (target = online)"),
    Method("act-jepa/tau-0.99", "act-jepa", ("ema.tau_start=0.99", "ema.tau_end=0.99"),
           label="EMA tau = 0.99"),
    Method("act-jepa/tau-0.9999", "act-jepa", ("ema.tau_start=0.9999", "ema.tau_end=0.9999"),
           label="EMA tau = 0.9999"),
    Method("action-reconstruction", "action-reconstruction",
           label="Pixel/state reconstruction instead of latent L2"),
    Method("act-jepa/no-bottleneck", "act-jepa", ("model.predictor_hidden=[512, 512]",),
           label="No predictor bottleneck (hidden 512)"),
    Method("act-jepa/add", "act-jepa", ("model.action_injection=add",),
           label="Action by addition"),
    Method("act-jepa/film", "act-jepa", ("model.action_injection=film",),
           label="Action by FiLM"),
)
SHIFT = ("augment.shift=4",)
NORM = ("loss.normalise=true",)
NOISE = ("augment.noise=0.3",)  # std drawn per sample in [0, 0.3]: the noise table's range
VICREG = ("loss.variance_weight=1.0", "loss.covariance_weight=0.04")  # VICReg's 25:1 ratio
EXTRA_METHODS = (  # beyond the paper's recipe: named rows, the faithful rows stay as measured
    Method("act-jepa+shift", "act-jepa", SHIFT, label="ACT-JEPA + random-shift aug. + BC"),
    Method("act-jepa+chunk", "act-jepa", (), bc_chunk=10, label="ACT-JEPA + BC, chunk 10"),
    Method("act-jepa+shift+chunk", "act-jepa", SHIFT, bc_chunk=10,
           label="ACT-JEPA + shift aug. + BC chunk 10"),
    Method("raw+shift+chunk", "raw", SHIFT, bc_chunk=10, label="Raw BC + shift aug., chunk 10"),
    Method("raw+chunk", "raw", (), bc_chunk=10, label="Raw BC, chunk 10"),
    Method("act-jepa+state", "act-jepa", (), vector="state",
           label="ACT-JEPA (image + privileged state) + BC"),
    Method("act-jepa+state+shift+chunk", "act-jepa", SHIFT, bc_chunk=10, vector="state",
           label="ACT-JEPA (image + privileged state) + shift aug. + BC chunk 10"),
    # proprioception fused with the image: hand position and gripper opening, as a real arm's
    # joint encoders give; the object is seen only in the image
    Method("raw+proprio", "raw", (), vector="proprio", label="Raw BC (image + proprioception)"),
    Method("act-jepa+proprio", "act-jepa", (), vector="proprio",
           label="ACT-JEPA (image + proprioception) + BC"),
    Method("act-jepa+vicreg+proprio", "act-jepa", VICREG, vector="proprio",
           label="ACT-JEPA + VICReg terms (image + proprioception) + BC"),
    # the paper's own remedy for collapse (its training notes): L2-normalised latents in the loss
    Method("act-jepa+norm", "act-jepa", NORM, label="ACT-JEPA, normalised latents + BC"),
    Method("act-jepa+norm+shift", "act-jepa", (*NORM, *SHIFT),
           label="ACT-JEPA, normalised latents + shift aug. + BC"),
    Method("act-jepa+norm+rollout3", "act-jepa", (*NORM, "loss.rollout_steps=3"),
           label="ACT-JEPA, normalised latents + 3-step rollout + BC"),
    # VICReg's variance and covariance terms on s_t (models/regularisers.py): explicit anti-collapse
    Method("act-jepa+vicreg", "act-jepa", VICREG, label="ACT-JEPA + VICReg terms + BC"),
    Method("act-jepa+vicreg+shift", "act-jepa", (*VICREG, *SHIFT),
           label="ACT-JEPA + VICReg terms + shift aug. + BC"),
    # the training budget: the image encoders train 2,000 steps here (the 2-core budget), raw BC
    # gains with twice that (raw+2x-steps); does the representation gain with five times it?
    Method("act-jepa+vicreg+5x-steps", "act-jepa", VICREG, steps_factor=5,
           label="ACT-JEPA + VICReg terms + BC, five times the steps"),
    Method("passive-jepa+vicreg", "passive-jepa", VICREG,
           label="Passive JEPA + VICReg terms + BC"),
    # the noise table's perturbation seen in training (o_t only; the JEPA targets stay clean, so
    # the encoder learns to map a noisy frame where the clean one goes); raw BC with the same
    # augmentation is its control
    Method("act-jepa+vicreg+noise", "act-jepa", (*VICREG, *NOISE),
           label="ACT-JEPA + VICReg terms + noise aug. + BC"),
    Method("raw+noise", "raw", NOISE, label="Raw BC (end to end) + noise aug."),
    # the same frozen encoders, read by a BC head on standardised latents (BCConfig.standardise)
    Method("act-jepa+bc-std", "act-jepa", bc_standardise=True, encoder_of="act-jepa",
           label="ACT-JEPA + BC on standardised latents"),
    Method("autoencoder+bc-std", "autoencoder", bc_standardise=True, encoder_of="autoencoder",
           label="Autoencoder + BC on standardised latents"),
    Method("act-jepa+vicreg+noise+bc-std", "act-jepa", (*VICREG, *NOISE), bc_standardise=True,
           encoder_of="act-jepa+vicreg+noise",
           label="ACT-JEPA + VICReg terms + noise aug. + BC on standardised latents"),
    # the frozen encoders read with the arm's proprioception at the BC head (BCConfig.vector),
    # the encoder seeing the camera alone: the protocol frozen visual representations are
    # usually evaluated by on robots (R3M, VC-1); raw+head-proprio is its control
    Method("raw+head-proprio", "raw", encoder_of="raw", bc_vector="proprio",
           label="Raw BC encoder (frozen) + BC on latent and proprioception"),
    Method("act-jepa+vicreg+head-proprio", "act-jepa", VICREG, encoder_of="act-jepa+vicreg",
           bc_vector="proprio", label="ACT-JEPA + VICReg terms + BC on latent and proprioception"),
    Method("passive-jepa+vicreg+head-proprio", "passive-jepa", VICREG,
           encoder_of="passive-jepa+vicreg", bc_vector="proprio",
           label="Passive JEPA + VICReg terms + BC on latent and proprioception"),
    Method("act-jepa+bc-std+head-proprio", "act-jepa", bc_standardise=True, encoder_of="act-jepa",
           bc_vector="proprio",
           label="ACT-JEPA + BC on standardised latents and proprioception"),
    Method("autoencoder+bc-std+head-proprio", "autoencoder", bc_standardise=True,
           encoder_of="autoencoder", bc_vector="proprio",
           label="Autoencoder + BC on standardised latents and proprioception"),
    # pretrain, then fine-tune end to end on the action loss (objective raw from the pretrained
    # encoder): how pretrained representations are most often used, beside the frozen protocol
    # the fine-tuned rows' control: end-to-end BC with their total budget (pretraining + tuning)
    Method("raw+2x-steps", "raw", steps_factor=2, label="Raw BC (end to end), twice the steps"),
    Method("act-jepa+finetune", "raw", init_from="act-jepa",
           label="ACT-JEPA pretraining, then end-to-end BC (fine-tuned)"),
    Method("act-jepa+vicreg+finetune", "raw", init_from="act-jepa+vicreg",
           label="ACT-JEPA + VICReg pretraining, then end-to-end BC (fine-tuned)"),
    Method("passive-jepa+vicreg+finetune", "raw", init_from="passive-jepa+vicreg",
           label="Passive JEPA + VICReg pretraining, then end-to-end BC (fine-tuned)"),
)
METHODS = {m.name: m for m in (*MAIN_METHODS, *ABLATION_METHODS, *EXTRA_METHODS)}
# the order units run in: the paper's central comparison (ACT-JEPA vs raw BC) first, so a partial
# run already answers the main question; the table keeps the paper's row order (MAIN_METHODS)
RUN_ORDER = ("act-jepa", "raw", "passive-jepa", "autoencoder", "contrastive")


@dataclass
class PaperConfig:
    """Scale of one run of the tables (experiments/paper/paper_state.yaml, paper_image.yaml)."""

    obs: str = "state"  # state | image
    tasks: list[str] = field(default_factory=lambda: ["reach-v3", "push-v3", "pick-place-v3"])
    tables: list[str] = field(default_factory=lambda: list(TABLES))
    demos: int = 100  # demonstrations per task for every table but the data sweep
    data_demos: list[int] = field(default_factory=lambda: [10, 25, 50, 100])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    seeded_methods: list[str] = field(default_factory=list)  # empty: every method, every seed
    sigmas: list[float] = field(default_factory=lambda: [0.0, 0.05, 0.1, 0.2, 0.3])
    eval_episodes: int = 50
    eval_seed: int = 1  # start configurations disjoint from the demos' (collected with seed 0)
    max_steps: int = 0  # per evaluation episode; 0: the task's own limit
    image_size: int = 64
    train_steps: int = 5000
    train_batch: int = 256
    train_overrides: list[str] = field(default_factory=list)  # any `actjepa train --set`
    bc_steps: int = 2000
    # where the encoders train (cpu | cuda | auto); BC heads and evaluation stay on the CPU, one
    # torch thread per worker, so a GPU machine's cores evaluate while its GPU trains
    train_device: str = "cpu"
    extra_methods: list[str] = field(default_factory=lambda: [m.name for m in EXTRA_METHODS])
    # extras that run right after the central comparison's first seed (e.g. a recipe that avoids
    # a collapse seen there), instead of after everything else
    priority_methods: list[str] = field(default_factory=list)
    # extras measured on clean observations only (no noise sweep): rows whose clean success is
    # already at the floor, where noisy cells would cost hours and say nothing
    clean_extras: list[str] = field(default_factory=list)

    def validate(self, where: str = "paper config") -> "PaperConfig":
        check_choice(where, "obs", self.obs, OBS_KINDS)
        check_choice(where, "train_device", self.train_device, TRAIN_DEVICES)
        for table in self.tables:
            check_choice(where, "tables[]", table, TABLES)
        for name in [*self.seeded_methods, *self.extra_methods, *self.priority_methods]:
            check_choice(where, "method", name, tuple(METHODS))
            check_choice(where, f"{name}'s vector", METHODS[name].vector, VECTOR_KEYS)
        if not self.seeds or not self.tasks or self.demos < 1 or self.eval_episodes < 1:
            raise ActJepaError(f"{where}: tasks and seeds must be non-empty, demos and "
                               "eval_episodes >= 1")
        for name in self.extra_methods:
            for source in (METHODS[name].init_from, METHODS[name].encoder_of):
                if source and source not in (*self.extra_methods,
                                             *(m.name for m in MAIN_METHODS)):
                    raise ActJepaError(f"{where}: extra method {name} starts from {source}'s "
                                       f"encoder; expected {source} among the main or extra "
                                       "methods")
        for name in ("priority_methods", "clean_extras"):
            if not set(getattr(self, name)) <= set(self.extra_methods):
                raise ActJepaError(f"{where}: {name} must be among extra_methods, got "
                                   f"{getattr(self, name)}")
        if any(d < 1 or d > self.demos for d in self.data_demos):
            raise ActJepaError(f"{where}: data_demos must lie in [1, demos={self.demos}], got "
                               f"{self.data_demos}")
        if any(s < 0 for s in self.sigmas) or 0.0 not in self.sigmas:
            raise ActJepaError(f"{where}: sigmas must be >= 0 and include 0, got {self.sigmas}")
        return self


def load_paper_config(path: str | None) -> PaperConfig:
    return PaperConfig().validate() if path is None else load_yaml(PaperConfig, path)


@dataclass(frozen=True)
class Unit:
    obs: str
    task: str
    method: Method
    demos: int
    seed: int
    sigmas: tuple[float, ...]

    @property
    def key(self) -> str:
        return f"{self.obs}/{self.task}/{self.method.name}/d{self.demos}/s{self.seed}"

    def cells(self) -> list[tuple]:
        return [cell_id(self.obs, self.task, self.method.name, self.demos, self.seed, s)
                for s in self.sigmas]


def cell_id(obs: str, task: str, method: str, demos: int, seed: int, sigma: float) -> tuple:
    return (obs, task, method, int(demos), int(seed), round(float(sigma), 6))


def seeds_for(config: PaperConfig, method: str) -> list[int]:
    if not config.seeded_methods or method in config.seeded_methods:
        return list(config.seeds)
    return list(config.seeds[:1])


def extra_sigmas(config: PaperConfig, method: str) -> list[float]:
    """The noise levels an extra row is measured at."""
    if "noise" not in config.tables or method in config.clean_extras:
        return [0.0]
    return list(config.sigmas)


def plan_units(config: PaperConfig) -> list[Unit]:
    """Every unit the configured tables need, most informative first (seed 0 of act-jepa and
    raw, the priority extras, the other main rows, then ablations, the data sweep, extra seeds,
    extras), duplicates merged."""
    wanted: dict[tuple, set[float]] = {}
    order: list[tuple] = []

    def want(method: str, demos: int, seed: int, sigmas) -> None:
        for task in config.tasks:
            key = (task, method, demos, seed)
            if key not in wanted:
                wanted[key] = set()
                order.append(key)
            wanted[key].update(float(s) for s in sigmas)

    tables, clean = set(config.tables), [0.0]
    for seed_rank in range(len(config.seeds)):
        for method in sorted(MAIN_METHODS, key=lambda m: RUN_ORDER.index(m.name)):
            seeds = seeds_for(config, method.name)
            if seed_rank >= len(seeds) or not tables & {"main", "noise"}:
                continue
            sigmas = config.sigmas if "noise" in tables else clean
            want(method.name, config.demos, seeds[seed_rank], sigmas)
            if seed_rank == 0 and method.name == RUN_ORDER[1] and "extras" in tables:
                for name in config.priority_methods:
                    want(name, config.demos, config.seeds[0], extra_sigmas(config, name))
        if seed_rank == 0 or not config.seeded_methods:
            for method in ABLATION_METHODS if "ablations" in tables else ():
                seeds = seeds_for(config, method.name)
                if seed_rank < len(seeds):
                    want(method.name, config.demos, seeds[seed_rank], clean)
            for demos in config.data_demos if "data" in tables else ():
                for name in ("raw", "act-jepa"):
                    seeds = seeds_for(config, name)
                    if seed_rank < len(seeds):
                        want(name, demos, seeds[seed_rank], clean)
    for name in config.extra_methods if "extras" in tables else ():
        for seed in seeds_for(config, name):
            want(name, config.demos, seed, extra_sigmas(config, name))
    return [Unit(config.obs, task, METHODS[method], demos, seed, tuple(sorted(wanted[k])))
            for k in order for task, method, demos, seed in [k]]
