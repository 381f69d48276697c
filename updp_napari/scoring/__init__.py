"""The scorers: a patient re-identification verifier (privacy) and a pathology classifier
(utility), trained by the product (``updp train-scorers``) and shipped as small defaults.

    from updp_napari.scoring import load_scorers, evaluate_scorers
    scorers = load_scorers()                  # the checkpoints shipped in the package
    scorers.reid.similarity(original, synthetic)
    scorers.pathology.agreement(original, synthetic)

torch is imported when a scorer is loaded or trained, not when this package is imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import InputError

#: The default checkpoints, trained by scripts/train-default-scorers.sh.
DEFAULT_SCORERS = Path(__file__).resolve().parent.parent / "models" / "scorers"


@dataclass
class Scorers:
    """Both scorers, as ``load_scorers`` or ``train_scorers`` give them."""

    reid: Any        # reid.ReidScorer
    pathology: Any   # pathology.PathologyScorer
    path: Path | None = None


def load_scorers(path: str | os.PathLike | None = None) -> Scorers:
    """The scorers in ``path`` (a folder made by ``updp train-scorers``: ``reid/`` and
    ``pathology/``), or the ones shipped in the package when ``path`` is None.

    Raises UpdpError (InputError) naming the folder and what is missing.
    """
    from .pathology import PathologyScorer
    from .reid import ReidScorer
    from .train import PATHOLOGY_DIR, REID_DIR

    root = DEFAULT_SCORERS if path is None else Path(path)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder (expected scorers made by updp train-scorers)")
    missing = [f"{name}/" for name in (REID_DIR, PATHOLOGY_DIR) if not (root / name).is_dir()]
    if missing:
        raise InputError(f"{root}: not a scorers folder (missing {', '.join(missing)})")
    return Scorers(ReidScorer.load(root / REID_DIR), PathologyScorer.load(root / PATHOLOGY_DIR), root)


def evaluate_scorers(data, scorers: Scorers, **kwargs) -> dict:
    """See :func:`updp_napari.scoring.evaluate.evaluate_scorers`."""
    from .evaluate import evaluate_scorers as evaluate

    return evaluate(data, scorers, **kwargs)


def train_scorers(cohort, out, **kwargs) -> dict:
    """See :func:`updp_napari.scoring.train.train_scorers`."""
    from .train import train_scorers as train

    return train(cohort, out, **kwargs)


__all__ = ["DEFAULT_SCORERS", "Scorers", "evaluate_scorers", "load_scorers", "train_scorers"]
