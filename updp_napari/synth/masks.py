"""Mask arithmetic for the generative filter: grow, feather, fill, resize (numpy and scipy),
and the fine noise the composite measures in the original and draws afresh.

Masks are 2-D bool arrays the size of their image. Widths are given as a fraction of the
image side, so one setting means the same anatomy at 128, 256 or 3000 pixels.
"""

from __future__ import annotations

import functools

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


FINE_BLUR = 1.0  # the finest residual: an image less its Gaussian blur of this many pixels


def fine_residual(image: np.ndarray) -> np.ndarray:
    """The finest detail of ``image``: itself less its blur by :data:`FINE_BLUR` pixels (at a
    radiograph's own resolution, mostly the detector's noise)."""
    return image - blur(image, FINE_BLUR)


def fine_noise(image: np.ndarray, where: np.ndarray | None = None) -> tuple[float, float]:
    """The spread and the neighbour correlation of the :func:`fine_residual` of ``image``, on
    ``where`` (None or too few pixels: everywhere).

    Both are robust, so edges of the anatomy hardly move them: the spread is 1.4826 × the
    median absolute deviation (MAD), the correlation ``1 - s_d² / 2 s²`` from the MAD spread
    ``s_d`` of the differences of horizontal and vertical neighbours (``s_d² = 2 s² (1 - ρ)``
    for a stationary noise). A large image is measured on evenly spaced pairs of rows (about
    a million pixels).
    """
    residual = fine_residual(np.asarray(image, np.float32))
    if where is None or where.sum() < 64:
        where = np.ones(residual.shape, bool)
    step = residual.size // (1 << 19)  # pairs of rows: twice as many pixels as rows kept
    if step > 1 and residual.shape[0] > 2 * step:
        rows = np.arange(0, residual.shape[0] - 1, step)
        residual = np.stack([residual[rows], residual[rows + 1]], axis=1)  # [pairs, 2, W]
        where = np.stack([where[rows], where[rows + 1]], axis=1)
        below = (residual[:, 1] - residual[:, 0])[where[:, 1] & where[:, 0]]
        residual, where = residual.reshape(-1, residual.shape[-1]), where.reshape(-1, where.shape[-1])
    else:
        below = (residual[1:] - residual[:-1])[where[1:] & where[:-1]]
    sigma = _mad(residual[where])
    if not sigma > 0:
        return 0.0, 0.0
    across = (residual[:, 1:] - residual[:, :-1])[where[:, 1:] & where[:, :-1]]
    difference = _mad(np.concatenate([across, below]))
    return sigma, float(np.clip(1.0 - difference ** 2 / (2.0 * sigma ** 2), -1.0, 1.0))


def _mad(values: np.ndarray) -> float:
    """1.4826 × the median absolute deviation: the spread of a normal sample, robustly."""
    if values.size == 0:
        return 0.0
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))


def detector_noise(spread: float, correlation: float, blurs: tuple[float, ...]) -> tuple[float, float]:
    """The detector noise that explains a fine residual of ``spread`` and neighbour
    ``correlation`` (:func:`fine_noise`), modelled as white noise under a Gaussian blur:
    ``(blur, spread of that noise)``, the blur the one of ``blurs`` whose fine residual's
    correlation is nearest."""
    table = _blurred_noise(tuple(blurs))
    k = int(np.argmin([abs(c - correlation) for c, _ in table]))
    return blurs[k], spread / table[k][1]


@functools.lru_cache(maxsize=8)
def _blurred_noise(blurs: tuple[float, ...]) -> tuple[tuple[float, float], ...]:
    """For white noise under each blur, at unit spread: its fine residual's neighbour
    correlation and spread (measured once, on a 256-pixel patch)."""
    white = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)
    out = []
    for b in blurs:
        noise = blur(white, b)
        spread, correlation = fine_noise(noise / noise.std())
        out.append((correlation, spread))
    return tuple(out)


def fine_noise_field(rng: np.random.Generator, shape: tuple[int, int], low_shape: tuple[int, int],
                     sigma: float = 0.0) -> np.ndarray:
    """Detector-like noise of unit spread (white noise from ``rng`` under a blur of ``sigma``
    pixels) less the part of it an image resized to ``low_shape`` carries: only its band above
    that side."""
    noise = blur(rng.standard_normal(shape, dtype=np.float32), sigma)
    spread = float(noise.std())
    if spread > 0:
        noise = noise / spread
    return noise - resize(resize(noise, low_shape), shape)
