"""VICReg's variance and covariance terms on a batch of latents: an explicit guard against collapse.

The paper relies on the EMA target, the stop-gradient and the predictor bottleneck alone. On our
64x64 images those did not hold at a 2,000-step budget: every image mapped to one latent (batch
std < 0.01), and normalised latents only turned that into one direction. VICReg (Bardes et al.,
2022; the paper's reference 11) keeps every latent dimension's batch std near ``target_std`` with a
hinge, and decorrelates the dimensions, so the encoder cannot make all observations alike. Both
weights default to 0 (the paper's recipe); the named rows that use them say so.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-4  # inside the square root: a dimension with zero variance still has a gradient


def variance_penalty(s: torch.Tensor, target_std: float = 1.0) -> torch.Tensor:
    """(B, D) -> scalar: mean over dims of relu(target_std - batch std)."""
    std = torch.sqrt(s.var(dim=0) + EPS)  # (D,)
    return F.relu(target_std - std).mean()


def covariance_penalty(s: torch.Tensor) -> torch.Tensor:
    """(B, D) -> scalar: sum of squared off-diagonal batch covariances, divided by D."""
    batch, dim = s.shape
    centred = s - s.mean(dim=0)
    cov = centred.T @ centred / (batch - 1)  # (D, D)
    off_diagonal = cov - torch.diag(torch.diag(cov))
    return off_diagonal.pow(2).sum() / dim
