"""From an attenuation map to the pixels a site's detector would store."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .anatomy import Acquisition
from .model import Site


def to_display(density: np.ndarray, site: Site, acq: Acquisition, rng: np.random.Generator,
               size: int) -> np.ndarray:
    """Display brightness 0…1 (bone and metal bright, air dark), with the site's look."""
    px = size / 256.0
    signal = 1.0 - np.exp(-1.5 * acq.exposure * density)
    signal = ndimage.gaussian_filter(signal, site.blur * px)
    # Quantum noise grows with the signal's square root.
    sigma = site.noise * acq.noise
    signal = signal + rng.normal(0.0, 1.0, signal.shape).astype(np.float32) * sigma * \
        (0.5 + np.sqrt(np.clip(signal, 0, 1)))
    if site.edge_enhance:
        signal = signal + site.edge_enhance * (signal - ndimage.gaussian_filter(signal, 3.0 * px))
    display = np.clip(signal / 0.97, 0.0, 1.0) ** site.gamma
    if site.collimation:
        # Unexposed borders outside the collimator blades read bright.
        margin = int(round(rng.uniform(0.02, 0.05) * size))
        display[:margin] = display[-margin:] = 1.0
        display[:, :margin] = display[:, -margin:] = 1.0
    return display.astype(np.float32)


def to_stored(display: np.ndarray, site: Site) -> np.ndarray:
    """Stored pixel values for the site's bit depth and photometric interpretation."""
    top = (1 << site.bits_stored) - 1
    values = np.round(np.clip(display, 0.0, 1.0) * top).astype(np.uint16)
    if site.photometric == "MONOCHROME1":
        values = (top - values).astype(np.uint16)
    return values
