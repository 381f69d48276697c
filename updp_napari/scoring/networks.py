"""The convolutional encoder both scorers share, and how any image becomes its input.

Small on purpose: the shipped checkpoints must train in minutes on one CPU thread and stay
a few MB. Every image is resized to the model's square input and standardised per image
(zero mean, unit variance), so a site's brightness, contrast or bit depth does not reach the
network; what is left to learn is shape.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..core.errors import InputError


def as_batch(images, size: int) -> torch.Tensor:
    """float32 tensor [N, 1, size, size] from one 2-D image, a stack [N, H, W], or a list of
    2-D images of any sizes (any numeric type); resized with antialiasing, standardised per
    image."""
    if isinstance(images, (list, tuple)) and images and len({np.shape(im) for im in images}) > 1:
        return torch.cat([as_batch(im, size) for im in images])
    array = np.asarray(images)
    if array.ndim == 2:
        array = array[None]
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 3 or array.shape[0] == 0 or min(array.shape[1:]) < 2:
        raise InputError(f"expected a 2-D image or a stack of them [N, H, W], got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise InputError(f"expected real-valued pixels, got {array.dtype}")
    x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[:, None]
    if not torch.isfinite(x).all():
        raise InputError("the images hold NaN or infinite pixels")
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return standardise(x)


def standardise(x: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per image (a flat image stays zero)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True)
    return (x - mean) / std.clamp_min(1e-4)


#: The normalisations a network can be built with: ``batch`` (the scorers' default) or
#: ``group`` (eight groups; no statistics shared across a batch, so each study's gradient is
#: its own, as differentially private training needs).
NORMS = ("batch", "group")


def norm_layer(norm: str, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "group":
        return nn.GroupNorm(min(8, channels), channels)
    raise InputError(f"unknown normalisation {norm!r} (expected one of {', '.join(NORMS)})")


class _Block(nn.Module):
    """Two 3x3 convolutions with a residual path; the first one may halve the resolution."""

    def __init__(self, cin: int, cout: int, stride: int, norm: str = "batch"):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = norm_layer(norm, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = norm_layer(norm, cout)
        self.skip = None
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      norm_layer(norm, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.skip is None else self.skip(x)))


class Encoder(nn.Module):
    """A stride-2 stem and one residual block per width, each halving the resolution.

    ``forward`` returns the last feature map [N, widths[-1], size / 2**len(widths),
    same]: the heads decide how to pool it.
    """

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128), norm: str = "batch"):
        super().__init__()
        # In-place activations only with batch norm: per-sample gradient hooks need the
        # input of every layer as it was.
        self.stem = nn.Sequential(nn.Conv2d(1, widths[0], 3, 2, 1, bias=False),
                                  norm_layer(norm, widths[0]), nn.ReLU(inplace=norm == "batch"))
        blocks = []
        for cin, cout in zip(widths[:-1], widths[1:]):
            blocks.append(_Block(cin, cout, 2, norm))
        blocks.append(_Block(widths[-1], widths[-1], 1, norm))
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = widths[-1]
        self.reduction = 2 ** len(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The feature map after the stem and after each block, finest first."""
        out = [self.stem(x)]
        for block in self.blocks:
            out.append(block(out[-1]))
        return out


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
