"""``updp train-scorers``: both scorers trained on a cohort, scored on held-out patients."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..core.errors import InputError, UpdpError
from .scorers import PATHOLOGY_DIR, REID_DIR


def split_patients(patients, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train_index, heldout_index)``: a ``share`` of the patients, drawn with ``seed``, is
    held out with all of their studies (never seen in training). At least two patients are
    held out, so that different-patient pairs exist, and at least two are kept."""
    patients = np.asarray(patients)
    names = np.unique(patients)
    if len(names) < 4:
        raise InputError(f"training the scorers needs at least 4 patients (2 to train on, 2 to "
                         f"hold out), the cohort has {len(names)}")
    count = int(np.clip(round(share * len(names)), 2, len(names) - 2))
    held = set(np.random.default_rng(seed).permutation(names)[:count].tolist())
    is_held = np.array([p in held for p in patients.tolist()])
    return np.flatnonzero(~is_held), np.flatnonzero(is_held)


def cohort_signature(cohort: Path, data) -> dict:
    """What identifies the training cohort without naming anyone: the generator's seed and
    settings and the counts (no patient or study identifier)."""
    from ..cohort.generate import read_cohort_info

    info = read_cohort_info(cohort)
    return {"generator": info.get("generator"), "seed": info.get("seed"),
            "image_size": info.get("size"), "sites": len(info.get("sites") or []) or len(set(data.sites)),
            "patients": len(set(data.patients)), "studies": len(data)}


def train_scorers(cohort: str | os.PathLike, out: str | os.PathLike, *, size: int = 128,
                  reid_steps: int = 600, pathology_epochs: int = 25, seed: int = 0,
                  heldout_share: float = 0.2, threads: int = 1,
                  progress: Callable[[int, int], None] | None = None,
                  reid_options: dict | None = None, pathology_options: dict | None = None,
                  region_rounds: int = 2) -> dict:
    """Train the re-identification verifier and the pathology classifier on ``cohort`` (read
    at ``size``), evaluate both on held-out patients, save them to ``out/reid`` and
    ``out/pathology``. Returns the summary: split, figures, seconds.

    When the cohort's masks are regions read from reports (its ``cohort.json`` says
    ``"masks": "regions"``, as ``updp train`` writes it), the classifier is trained from them
    with ``region_rounds`` rounds of self-training (``train_pathology_from_regions``)."""
    import torch

    from .. import __version__
    from ..cohort.dataset import load_cohort_images
    from ..cohort.generate import read_cohort_info
    from .evaluate import evaluate_scorers
    from .pathology import BATCH_SIZE, train_pathology, train_pathology_from_regions
    from .reid import train_reid
    from .scorers import Scorers

    if reid_steps < 1 or pathology_epochs < 1:
        raise UpdpError("reid_steps and pathology_epochs must be at least 1")
    if region_rounds < 0:
        raise UpdpError(f"region rounds must be at least 0 (got {region_rounds})")
    cohort, out = Path(cohort), Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / REID_DIR).is_dir())):
        raise InputError(f"{out}: exists and is not empty; choose an empty folder (or a scorers "
                         "folder to replace)")
    started = time.perf_counter()
    data = load_cohort_images(cohort, size)
    train_index, held_index = split_patients(data.patients, heldout_share, seed)
    train, held = data.subset(train_index), data.subset(held_index)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    per_epoch = int(np.ceil(len(train) / (pathology_options or {}).get("batch_size", BATCH_SIZE)))
    regions = read_cohort_info(cohort).get("masks") == "regions"
    rounds = 1 + region_rounds if regions else 1
    total = reid_steps + rounds * pathology_epochs * per_epoch

    def reid_progress(done, _):
        if progress:
            progress(done, total)

    def pathology_progress(done, _):
        if progress:
            progress(reid_steps + done, total)

    try:
        reid = train_reid(train.images, train.patients, steps=reid_steps, seed=seed,
                          progress=reid_progress, **(reid_options or {}))
        if regions:
            pathology = train_pathology_from_regions(
                train.images, train.labels, data.label_names, train.masks, rounds=region_rounds,
                epochs=pathology_epochs, seed=seed, progress=pathology_progress,
                **(pathology_options or {}))
        else:
            pathology = train_pathology(train.images, train.labels, data.label_names, train.masks,
                                        epochs=pathology_epochs, seed=seed, progress=pathology_progress,
                                        **(pathology_options or {}))
        figures = evaluate_scorers(held, Scorers(reid, pathology))
    finally:
        torch.set_num_threads(threads_before)
    signature = cohort_signature(cohort, data)
    split = {"seed": seed, "heldout_share": heldout_share,
             "train_patients": len(set(train.patients)), "train_studies": len(train),
             "heldout_patients": len(set(held.patients)), "heldout_studies": len(held)}
    common = {"cohort": signature, "cohort_read_size": size, "split": split,
              "updp_version": __version__, "device": "cpu", "threads": threads}
    reid.card.update(common, heldout=figures["reid"])
    pathology.card.update(common, heldout=figures["pathology"])
    reid.save(out / REID_DIR)
    pathology.save(out / PATHOLOGY_DIR)
    return {"cohort": signature, "split": split, "heldout": figures,
            "seconds": {"reid": reid.card["training"]["seconds"],
                        "pathology": pathology.card["training"]["seconds"],
                        "total": round(time.perf_counter() - started, 1)},
            "parameters": {"reid": reid.card["parameters"], "pathology": pathology.card["parameters"]}}
