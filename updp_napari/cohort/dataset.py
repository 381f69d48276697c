"""A cohort's images as arrays for training and evaluating models (numpy only, no torch).

Every image is read the way the viewer shows it (bright is dense, default window), scaled to
0…1 and resized to a square ``size``; pathology masks and burned-in text boxes come along
at the same size, so a model never needs to know how the cohort is stored on disk.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..ingest import display_image
from .generate import read_ground_truth
from .model import LABELS


@dataclass
class CohortImages:
    """Images, who they show and what they show, index-aligned."""

    images: np.ndarray        # float32 [N, size, size], 0…1, bright is dense
    patients: list[str]       # patient id per image (identity for re-identification)
    studies: list[str]        # study id per image
    sites: list[str]          # site code per image
    labels: np.ndarray        # uint8 [N, len(label_names)], 1 = finding present
    masks: np.ndarray         # uint8 [N, size, size], bit i set where label_names[i] lies
    text_boxes: np.ndarray    # bool [N, size, size], burned-in text (any, PHI or marker)
    label_names: tuple[str, ...] = LABELS

    def __len__(self) -> int:
        return len(self.patients)

    @property
    def preserve(self) -> np.ndarray:
        """bool [N, size, size]: where any finding lies (the region a filter must keep)."""
        return self.masks > 0

    def label_mask(self, label: str) -> np.ndarray:
        return (self.masks & np.uint8(1 << self.label_names.index(label))) > 0

    def subset(self, index) -> CohortImages:
        index = np.asarray(index)

        def pick(seq: list[str]) -> list[str]:
            return [seq[i] for i in index]

        return CohortImages(self.images[index], pick(self.patients), pick(self.studies),
                            pick(self.sites), self.labels[index], self.masks[index],
                            self.text_boxes[index], self.label_names)


def resize(image: np.ndarray, size: int, nearest: bool = False) -> np.ndarray:
    """A 2-D array resized to ``size`` × ``size`` (bilinear, or nearest for masks)."""
    from PIL import Image

    if image.shape == (size, size):
        return image.copy()
    if nearest:
        im = Image.fromarray(image.astype(np.uint8))
        return np.asarray(im.resize((size, size), Image.Resampling.NEAREST))
    im = Image.fromarray(image.astype(np.float32), mode="F")
    return np.asarray(im.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)


def load_cohort_images(cohort: str | os.PathLike, size: int = 128,
                       progress: Callable[[int, int], None] | None = None) -> CohortImages:
    """Read every study of a cohort made by ``updp make-cohort``.

    Raises InputError naming the file when an image or mask cannot be read.
    """
    from PIL import Image, UnidentifiedImageError

    root = Path(cohort)
    if not root.is_dir():
        raise InputError(f"{root}: no such cohort folder")
    records = read_ground_truth(root)
    if not records:
        raise InputError(f"{root}: the cohort holds no studies")
    n = len(records)
    images = np.zeros((n, size, size), np.float32)
    masks = np.zeros((n, size, size), np.uint8)
    boxes = np.zeros((n, size, size), bool)
    labels = np.zeros((n, len(LABELS)), np.uint8)
    for i, rec in enumerate(records):
        full = display_image(root / rec["image"])
        images[i] = resize(full, size)
        scale = size / full.shape[0]
        for j, label in enumerate(LABELS):
            labels[i, j] = rec["labels"].get(label, 0)
            mask_file = rec.get("masks", {}).get(label)
            if not mask_file:
                continue
            try:
                with Image.open(root / mask_file) as im:
                    mask = np.asarray(im.convert("L")) > 0
            except (OSError, UnidentifiedImageError):
                raise InputError(f"{root / mask_file}: mask is not a readable PNG image") from None
            masks[i] |= resize(mask.astype(np.uint8), size, nearest=True).astype(bool) * np.uint8(1 << j)
        for item in rec.get("burned_in", []):
            x0, y0, x1, y1 = (int(round(c * scale)) for c in item["box"])
            boxes[i, max(y0, 0):min(y1 + 1, size), max(x0, 0):min(x1 + 1, size)] = True
        if progress:
            progress(i + 1, n)
    return CohortImages(images, [r["patient"] for r in records], [r["study_id"] for r in records],
                        [r["site"] for r in records], labels, masks, boxes)
