"""Training augmentations: the ways two real acquisitions of one chest differ.

Positioning (shift, rotation, scale), exposure and detector response (contrast, gamma),
quantum noise, and the sharpness of the system (blur or edge enhancement). A scorer
trained under these learns anatomy and pathology, not one acquisition's texture, and is
not fooled when a filter changes the texture alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .networks import standardise


@dataclass(frozen=True)
class Augmentation:
    """Ranges of each change (drawn uniformly per image). ``strength`` 0 turns all off."""

    shift: float = 0.05          # of the image width
    rotation_deg: float = 4.0
    scale: float = 0.06          # ±, relative
    gamma: float = 0.35          # log-gamma ±
    contrast: float = 0.2        # ±, relative, before gamma
    noise: float = 0.04          # up to this standard deviation (image in 0…1)
    blur_sigma: float = 1.0      # up to this many pixels of a 128-pixel image
    sharpen: float = 0.6         # up to this much unsharp masking
    flip: bool = False           # a mirrored chest is another anatomy: off for identity

    def scaled(self, strength: float) -> Augmentation:
        return Augmentation(self.shift * strength, self.rotation_deg * strength,
                            self.scale * strength, self.gamma * strength, self.contrast * strength,
                            self.noise * strength, self.blur_sigma * strength,
                            self.sharpen * strength, self.flip)


def augment(x: torch.Tensor, aug: Augmentation, generator: torch.Generator,
            masks: torch.Tensor | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Augmented copy of standardised images ``x`` [N, 1, H, W], standardised again.

    ``masks`` [N, C, H, W] (float), when given, move with the geometry and come back too.
    """
    n, _, h, w = x.shape

    def uniform(low: float, high: float, size=(n,)) -> torch.Tensor:
        return torch.rand(size, generator=generator) * (high - low) + low

    # Back to 0…1 so gamma and noise act as they would on a detector image.
    low = x.amin(dim=(1, 2, 3), keepdim=True)
    high = x.amax(dim=(1, 2, 3), keepdim=True)
    y = (x - low) / (high - low).clamp_min(1e-6)

    angle = uniform(-1, 1) * math.radians(aug.rotation_deg)
    scale = 1 + uniform(-1, 1) * aug.scale
    shift = uniform(-1, 1, (n, 2)) * aug.shift * 2  # grid units span 2 per image width
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    if aug.flip:
        mirror = torch.rand(n, generator=generator) < 0.5
        theta[mirror, :, 0] *= -1
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    y = F.grid_sample(y, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if masks is not None:
        masks = F.grid_sample(masks, F.affine_grid(theta, list(masks.shape), align_corners=False),
                              mode="bilinear", padding_mode="zeros", align_corners=False)

    contrast = 1 + uniform(-1, 1) * aug.contrast
    mean = y.mean(dim=(1, 2, 3), keepdim=True)
    y = ((y - mean) * contrast[:, None, None, None] + mean).clamp(0, 1)
    gamma = torch.exp(uniform(-1, 1) * aug.gamma)
    y = y.clamp_min(1e-4) ** gamma[:, None, None, None]

    # Blur or sharpen, one or the other per image: acquisition systems differ in both ways.
    pixel = w / 128
    sigma = uniform(0, 1) * aug.blur_sigma * pixel
    blurred = _gaussian_blur(y, sigma.clamp_min(0.3 * pixel))
    amount = uniform(0, 1) * aug.sharpen
    sharpen = torch.rand(n, generator=generator) < 0.5
    blur_weight = torch.where(sharpen, -amount, (sigma >= 0.3 * pixel).float())
    y = y + (blurred - y) * blur_weight[:, None, None, None]

    noise = uniform(0, 1) * aug.noise
    y = y + torch.randn(y.shape, generator=generator) * noise[:, None, None, None]
    y = standardise(y)
    return y if masks is None else (y, masks)


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with one sigma per image (pixels)."""
    radius = int(math.ceil(3 * float(sigma.max())))
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-offsets[None] ** 2 / (2 * sigma[:, None] ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)  # [N, K]
    n, c, h, w = x.shape
    flat = x.reshape(1, n * c, h, w)
    k = kernel.repeat_interleave(c, 0)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"), k[:, None, None, :],
                    groups=n * c)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="replicate"), k[:, None, :, None],
                    groups=n * c)
    return flat.reshape(n, c, h, w)
