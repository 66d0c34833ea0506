"""Typed configs of the policies trained or built on a frozen encoder (BC head, latent NN memory).

Same rules as `config.py`: dataclasses with defaults, loaded from YAML by `load_yaml`, unknown keys
and wrong types are errors naming the file and key. A policy checkpoint stores its config as a dict.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from actjepa_core.config import ACTIVATIONS
from actjepa_core.errors import ActJepaError, check_choice
from actjepa_core.models.heads import HEAD_ACTIVATION, HEAD_HIDDEN

NN_WEIGHTINGS = ("inverse_distance", "uniform")


@dataclass
class BCConfig:
    """Algorithm 2: an MLP head on frozen latents, trained with MSE on normalised actions.

    ``chunk`` > 1 turns on action chunking with temporal ensembling (ACT, Zhao et al. 2023): the
    head predicts the next ``chunk`` actions and at run time the predictions made for the current
    step at earlier steps are averaged with weights exp(-ensemble_decay * i), i = 0 the oldest.
    """

    hidden: list[int] = field(default_factory=lambda: list(HEAD_HIDDEN))  # widths between D and A
    activation: str = HEAD_ACTIVATION  # relu | gelu
    lr: float = 1e-3  # AdamW, cosine decay to 0 over `steps`
    weight_decay: float = 1e-4
    batch_size: int = 256
    steps: int = 2000
    val_fraction: float = 0.1  # share of whole demos held out to report validation MSE
    seed: int = 0
    chunk: int = 1  # actions predicted per step; 1 = plain BC
    ensemble_decay: float = 0.01  # m in w_i = exp(-m * i) (ACT's default)
    # beyond the paper: standardise each latent dimension (mean/std of the training demos'
    # latents, stored with the head) before the head, as a linear probe does; an encoder whose
    # latents vary little in scale (a JEPA near collapse: batch std ~0.007) is otherwise read by
    # a head that can hardly see the variation
    standardise: bool = False
    # beyond the paper: an observation vector read by the head beside the frozen latent, e.g.
    # "proprio" (the arm's own pose), standardised with the demos' statistics stored with the
    # head: how frozen visual representations are usually put to work on a robot (R3M, VC-1),
    # the encoder seeing the camera alone; "" reads the latent alone
    vector: str = ""

    def validate(self, where: str = "config") -> "BCConfig":
        if not self.hidden or any(w < 1 for w in self.hidden):
            raise ActJepaError(f"{where}: hidden must be a non-empty list of positive widths, "
                               f"got {self.hidden}")
        check_choice(where, "activation", self.activation, ACTIVATIONS)
        if self.lr <= 0 or self.weight_decay < 0:
            raise ActJepaError(f"{where}: lr must be > 0 and weight_decay >= 0, got {self.lr} / "
                               f"{self.weight_decay}")
        if self.steps < 1 or self.batch_size < 1 or self.chunk < 1:
            raise ActJepaError(f"{where}: steps, batch_size and chunk must be >= 1, got "
                               f"{self.steps} / {self.batch_size} / {self.chunk}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ActJepaError(f"{where}: val_fraction must lie in [0, 1), got {self.val_fraction}")
        if self.ensemble_decay < 0:
            raise ActJepaError(f"{where}: ensemble_decay must be >= 0, got {self.ensemble_decay}")
        return self


@dataclass
class NNConfig:
    """Algorithm 3: act with the action of the nearest encoded demo observation (k = 1), or a
    weighted mean of the k nearest (``inverse_distance``: w_j = 1 / (d_j + eps); ``uniform``)."""

    k: int = 1
    weighting: str = "inverse_distance"  # inverse_distance | uniform (used when k > 1)
    eps: float = 1e-6  # keeps 1 / d finite when the query sits on a memory entry
    search_chunk: int = 65536  # memory entries per distance block: bounds the (Q, block) matrix

    def validate(self, where: str = "config") -> "NNConfig":
        if self.k < 1:
            raise ActJepaError(f"{where}: k must be >= 1, got {self.k}")
        check_choice(where, "weighting", self.weighting, NN_WEIGHTINGS)
        if self.eps <= 0 or self.search_chunk < 1:
            raise ActJepaError(f"{where}: eps must be > 0 and search_chunk >= 1, got {self.eps} / "
                               f"{self.search_chunk}")
        return self
