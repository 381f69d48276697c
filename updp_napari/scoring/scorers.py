"""The scorers as a pair: where the shipped ones are and how a scorers folder is read
(``reid/`` and ``pathology/``, as ``updp train-scorers`` writes it). torch is imported when
a scorer is loaded, not when this module is imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import InputError

#: The default checkpoints, trained by scripts/train-default-scorers.sh.
DEFAULT_SCORERS = Path(__file__).resolve().parent.parent / "models" / "scorers"
#: The folders of a scorers folder, one per scorer.
REID_DIR = "reid"
PATHOLOGY_DIR = "pathology"


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

    root = DEFAULT_SCORERS if path is None else Path(path)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder (expected scorers made by updp train-scorers)")
    missing = [f"{name}/" for name in (REID_DIR, PATHOLOGY_DIR) if not (root / name).is_dir()]
    if missing:
        raise InputError(f"{root}: not a scorers folder (missing {', '.join(missing)})")
    return Scorers(ReidScorer.load(root / REID_DIR), PathologyScorer.load(root / PATHOLOGY_DIR), root)
