"""Input augmentations on model-side batches (images (B, H, W, C) in [0, 1], standardised states).

Random shift is DrQ's (Kostrikov et al. 2020): pad by ``pad`` pixels, replicating the border, and
crop back to the original size at an offset drawn per sample. Colour jitter scales brightness and
contrast per sample. Everything random draws from a caller's torch.Generator on the batch's device.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(images: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """(B, H, W, C) -> (B, H, W, C), each sample shifted by up to +-pad pixels."""
    if pad <= 0:
        return images
    batch, height, width, _ = images.shape
    x = F.pad(images.permute(0, 3, 1, 2), (pad, pad, pad, pad), mode="replicate")  # (B,C,H+2p,W+2p)
    dy = torch.randint(0, 2 * pad + 1, (batch,), device=images.device, generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (batch,), device=images.device, generator=generator)
    rows = (dy[:, None] + torch.arange(height, device=images.device))  # (B, H)
    cols = (dx[:, None] + torch.arange(width, device=images.device))  # (B, W)
    x = x.gather(2, rows[:, None, :, None].expand(-1, x.shape[1], -1, x.shape[3]))  # (B,C,H,W+2p)
    x = x.gather(3, cols[:, None, None, :].expand(-1, x.shape[1], height, -1))  # (B, C, H, W)
    return x.permute(0, 2, 3, 1)


def colour_jitter(images: torch.Tensor, strength: float,
                  generator: torch.Generator) -> torch.Tensor:
    """Brightness and contrast scaled by factors in [1 - strength, 1 + strength] per sample."""
    if strength <= 0:
        return images
    shape = (images.shape[0], 1, 1, 1)

    def factor() -> torch.Tensor:
        u = torch.rand(shape, device=images.device, generator=generator)
        return 1.0 + strength * (2.0 * u - 1.0)

    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    out = (images - mean) * factor() + mean  # contrast
    return (out * factor()).clamp(0.0, 1.0)  # brightness


def gaussian_noise(x: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    if std <= 0:
        return x
    return x + std * torch.randn(x.shape, device=x.device, generator=generator)


def is_image(x: torch.Tensor) -> bool:
    """Model-side images are (B, H, W, C); states (B, K)."""
    return x.dim() == 4
