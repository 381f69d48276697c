"""The scorers: a patient re-identification verifier (privacy) and a pathology classifier
(utility), trained by the product (``updp train-scorers``) and shipped as small defaults.

    from updp_napari.scoring import load_scorers, evaluate_scorers
    scorers = load_scorers()                  # the checkpoints shipped in the package
    scorers.reid.similarity(original, synthetic)
    scorers.pathology.agreement(original, synthetic)

torch is imported when a scorer is loaded or trained, not when this package is imported.
"""

from __future__ import annotations

from .scorers import DEFAULT_SCORERS, Scorers, load_scorers


def evaluate_scorers(data, scorers: Scorers, **kwargs) -> dict:
    """See :func:`updp_napari.scoring.evaluate.evaluate_scorers`."""
    from .evaluate import evaluate_scorers as evaluate

    return evaluate(data, scorers, **kwargs)


def train_scorers(cohort, out, **kwargs) -> dict:
    """See :func:`updp_napari.scoring.train.train_scorers`."""
    from .train import train_scorers as train

    return train(cohort, out, **kwargs)


__all__ = ["DEFAULT_SCORERS", "Scorers", "evaluate_scorers", "load_scorers", "train_scorers"]
