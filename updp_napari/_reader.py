"""napari reader: a chest X-ray DICOM file, a study folder, or a whole cohort folder.

Images open with contrast limits from the file's window; the report and the header (the
values de-identification will act on) ride along in the layer metadata; pathology masks
beside an image open as a Labels layer.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .core.errors import InputError
from .core.vocabulary import FINDINGS
from .ingest import (
    DICOM_SUFFIXES,
    MASK_PREFIX,
    REPORT_NAME,
    label_image,
    read_dicom,
    read_mask,
    read_report,
    study_folders,
)


def napari_get_reader(path):
    """Return a reader for ``path`` when it is ours, else None (napari tries others)."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(path)
    if p.is_dir():
        return read_path if _image_files(p) or study_folders(p) else None
    if p.suffix.lower() in DICOM_SUFFIXES:
        return read_path
    return None


def _image_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in DICOM_SUFFIXES)


def read_path(path) -> list[tuple]:
    """Layer data for a file, a study folder or a cohort folder."""
    if isinstance(path, list):
        path = path[0]
    p = Path(path)
    if p.is_file():
        return _layers([_load_study(p)], p.stem)
    if not p.is_dir():
        raise InputError(f"{p}: no such file or folder")
    images = _image_files(p)
    if images:
        return _layers([_load_study(f) for f in images], p.name)
    folders = study_folders(p)
    if not folders:
        raise InputError(f"{p}: folder holds no DICOM images (*.dcm)")
    studies = []
    for folder in folders:
        studies.extend(_load_study(f) for f in _image_files(folder))
    return _layers(studies, p.name)


def _load_study(image_path: Path) -> dict:
    loaded = read_dicom(image_path)
    folder = image_path.parent
    report_path = folder / REPORT_NAME
    masks = {}
    for label in FINDINGS:
        mask_path = folder / f"{MASK_PREFIX}{label}.png"
        if mask_path.is_file():
            masks[label] = read_mask(mask_path, loaded.pixels.shape)
    return {
        "image": loaded,
        "report": read_report(report_path) if report_path.is_file() else "",
        "masks": masks,
        "name": folder.name if image_path.name == "image.dcm" else image_path.stem,
    }


def _windowed(img) -> np.ndarray:
    low, high = img.contrast_limits
    return ((img.pixels - low) / (high - low)).astype(np.float32)


def _study_metadata(study: dict) -> dict:
    img = study["image"]
    return {"name": study["name"], "path": os.fspath(img.path), "report": study["report"],
            "header": img.header, "photometric": img.photometric}


def _layers(studies: list[dict], name: str) -> list[tuple]:
    shapes = {s["image"].pixels.shape for s in studies}
    label_names = {i: label for i, label in enumerate(FINDINGS, start=1)}
    if len(studies) == 1 or len(shapes) > 1:
        layers = []
        for s in studies:
            img = s["image"]
            layers.append((img.pixels, {"name": s["name"], "contrast_limits": img.contrast_limits,
                                        "colormap": "gray", "metadata": _study_metadata(s)},
                           "image"))
            if s["masks"]:
                layers.append((label_image(s["masks"], img.pixels.shape),
                               {"name": f"{s['name']} findings", "opacity": 0.4,
                                "metadata": {"labels": label_names}}, "labels"))
        return layers
    # Same-sized studies stack on a slider, one study per step. Sites store different bit
    # depths, so each study is scaled by its own window: 0 and 1 are its window's ends.
    stack = np.stack([_windowed(s["image"]) for s in studies])
    meta = {"studies": [_study_metadata(s) for s in studies], "windowed": True}
    layers = [(stack, {"name": name, "contrast_limits": (0.0, 1.0), "colormap": "gray",
                       "metadata": meta}, "image")]
    if any(s["masks"] for s in studies):
        labels = np.stack([label_image(s["masks"], s["image"].pixels.shape) for s in studies])
        layers.append((labels, {"name": f"{name} findings", "opacity": 0.4,
                                "metadata": {"labels": label_names}}, "labels"))
    return layers
