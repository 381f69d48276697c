"""Mask arithmetic for the generative filter: grow, feather, fill, resize (numpy and scipy).

Masks are 2-D bool arrays the size of their image. Widths are given as a fraction of the
image side, so one setting means the same anatomy at 128, 256 or 3000 pixels.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import InputError


def as_mask(mask, shape: tuple[int, int], what: str) -> np.ndarray:
    """``mask`` as a bool array of ``shape`` (None: all False)."""
    if mask is None:
        return np.zeros(shape, bool)
    mask = np.asarray(mask)
    if mask.shape != shape:
        raise InputError(f"{what} has shape {mask.shape}, the image {shape}")
    return mask.astype(bool)


def as_image(image) -> np.ndarray:
    """A 2-D image as float32 0…1; anything else is an InputError."""
    image = np.asarray(image)
    if image.ndim != 2 or min(image.shape) < 8:
        raise InputError(f"the filter takes one 2-D image of at least 8×8 pixels, got shape "
                         f"{image.shape}")
    if not np.issubdtype(image.dtype, np.number) or np.issubdtype(image.dtype, np.complexfloating):
        raise InputError(f"the image must hold real numbers, not {image.dtype}")
    image = image.astype(np.float32)
    if not np.isfinite(image).all():
        raise InputError("the image holds NaN or infinite values")
    return np.clip(image, 0.0, 1.0)


def pixels(fraction: float, shape: tuple[int, ...]) -> float:
    """A width given as a fraction of the image side, in pixels of an image of ``shape``."""
    return float(fraction) * max(shape[-2:])


def dilate(mask: np.ndarray, radius: float) -> np.ndarray:
    """``mask`` grown by ``radius`` pixels (a disc, by distance, so any radius is cheap)."""
    from scipy import ndimage

    if radius <= 0 or not mask.any():
        return mask.copy()
    return ndimage.distance_transform_edt(~mask) <= radius


def feather(mask: np.ndarray, width: float) -> np.ndarray:
    """A 0…1 weight that is 1 inside ``mask`` and falls to 0 over ``width`` pixels outside.

    The fall is a smooth step of the distance, so the composite shows no ring at either end.
    """
    from scipy import ndimage

    if not mask.any():
        return np.zeros(mask.shape, np.float32)
    if width <= 0:
        return mask.astype(np.float32)
    distance = ndimage.distance_transform_edt(~mask)
    t = np.clip(1.0 - distance / width, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def fill_regions(image: np.ndarray, regions: np.ndarray, smooth: float = 2.0) -> np.ndarray:
    """``image`` with ``regions`` painted over from their surroundings.

    Every pixel inside takes the value of the nearest pixel outside, then the inside is
    blurred: what was there (burned-in text) leaves nothing behind, not even its outline.
    """
    from scipy import ndimage

    if not regions.any():
        return image.copy()
    if regions.all():
        return np.full_like(image, float(np.median(image)))
    _, (rows, cols) = ndimage.distance_transform_edt(regions, return_indices=True)
    filled = image[rows, cols]
    if smooth > 0:
        filled = np.where(regions, ndimage.gaussian_filter(filled, smooth), filled)
    return filled.astype(image.dtype)


def resize(image: np.ndarray, shape: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """A 2-D float (or bool, with ``nearest``) array resized to ``shape`` (rows, columns)."""
    from PIL import Image

    if image.shape == tuple(shape):
        return image.copy()
    size = (int(shape[1]), int(shape[0]))
    if nearest:
        out = Image.fromarray(image.astype(np.uint8)).resize(size, Image.Resampling.NEAREST)
        return np.asarray(out).astype(image.dtype)
    out = Image.fromarray(image.astype(np.float32), mode="F").resize(size, Image.Resampling.BICUBIC)
    return np.asarray(out, dtype=np.float32)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """``image`` under a Gaussian blur of ``sigma`` pixels (edges reflected)."""
    from scipy import ndimage

    if sigma <= 0:
        return image.copy()
    return ndimage.gaussian_filter(image, sigma, mode="reflect").astype(image.dtype)
