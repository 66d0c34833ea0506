"""Input augmentations on model-side batches (images (B, H, W, C) in [0, 1], standardised states).

Random shift is DrQ's (Kostrikov et al. 2020): pad by ``pad`` pixels, replicating the border, and
crop back to the original size at an offset drawn per sample; the one implementation, for the
trainer's device batches and the streaming loader's uint8 frames alike. Colour jitter scales
brightness and contrast per sample. Everything random draws from a caller's torch.Generator on the
batch's device.
"""
from __future__ import annotations

import torch

from actjepa_core.data.transitions import Batch


def random_shift(images: torch.Tensor, pad: int, generator: torch.Generator | None
                 ) -> torch.Tensor:
    """(N, H, W, C) -> (N, H, W, C) of the same dtype (uint8 frames or float images), each
    shifted by up to +-pad pixels: the border replicated, done as one clamped-index gather on the
    images' device (offsets drawn there, dy then dx)."""
    if pad <= 0:
        return images
    n, height, width = images.shape[:3]
    device = images.device
    dy = torch.randint(0, 2 * pad + 1, (n,), device=device, generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), device=device, generator=generator)
    rows = (dy[:, None] + torch.arange(height, device=device) - pad).clamp_(0, height - 1)
    cols = (dx[:, None] + torch.arange(width, device=device) - pad).clamp_(0, width - 1)
    return images[torch.arange(n, device=device)[:, None, None], rows[:, :, None],
                  cols[:, None, :]]


def shift_batch(batch: Batch, pad: int, generator: torch.Generator | None) -> Batch:
    """Every image of a batch shifted ((B, H, W, C) or (B, K, H, W, C): any tensor of 4 or more
    dimensions), o_t and each o_{t+k} independently; states and actions pass unchanged."""
    if pad <= 0:
        return batch

    def shift(obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for key, x in obs.items():
            if x.dim() >= 4:
                x = random_shift(x.reshape(-1, *x.shape[-3:]), pad, generator).reshape(x.shape)
            out[key] = x
        return out

    return Batch(shift(batch.obs), batch.actions, shift(batch.next_obs))


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
