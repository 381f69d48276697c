"""A scorer on disk: one folder in the ``save_pretrained`` layout.

``config.json`` (the architecture, enough to rebuild the network), ``model.safetensors``
(the weights, float16 by default: half the size, and the scores move by far less than the
figures are rounded to) and ``updp_scorer.json`` (the card: kind, label names, input size,
the training cohort's signature — seed, size, counts, never a name or an identifier —,
parameter count, held-out metrics, package version).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..core.errors import InputError

CARD = "updp_scorer.json"
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
FORMAT = "updp-scorer/1"
KINDS = ("reid", "pathology")


def save_scorer(out: str | os.PathLike, model, config: dict, card: dict, half: bool = True) -> Path:
    """Write ``model``'s weights, ``config`` and ``card`` into the folder ``out``."""
    import torch
    from safetensors.torch import save_file

    from ..core.files import write_text_atomic

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    # Owner-only, like the NER model: weights fitted to a hospital's radiographs are treated
    # like them. (Git and wheels keep no such mode: the shipped scorers install readable.)
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    tensors = {}
    for name, value in model.state_dict().items():
        value = value.detach().cpu()
        if half and value.is_floating_point():
            value = value.to(torch.float16)
        tensors[name] = value.contiguous()
    save_file(tensors, str(out / WEIGHTS), metadata={"format": "pt", "kind": card["kind"]})
    write_text_atomic(out / CONFIG, json.dumps(config, indent=2, sort_keys=True) + "\n", private=True)
    write_text_atomic(out / CARD, json.dumps({"format": FORMAT, **card}, indent=2) + "\n", private=True)
    os.chmod(out / WEIGHTS, 0o600)
    return out


def read_scorer(path: str | os.PathLike, kind: str) -> tuple[dict, dict, dict]:
    """``(config, state_dict, card)`` of the scorer folder ``path`` of the given kind.

    Raises InputError naming the folder and what is missing or wrong.
    """
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: no such folder (expected a {kind} scorer made by updp "
                         "train-scorers)")
    missing = [name for name in (CARD, CONFIG, WEIGHTS) if not (path / name).is_file()]
    if missing:
        raise InputError(f"{path}: not a scorer folder (missing {', '.join(missing)})")
    card = _read_json(path, CARD)
    config = _read_json(path, CONFIG)
    if card.get("format") != FORMAT:
        raise InputError(f"{path}: {CARD} is not a {FORMAT} card (format {card.get('format')!r})")
    if card.get("kind") != kind:
        raise InputError(f"{path}: holds a {card.get('kind')!r} scorer, expected {kind!r}")
    try:
        state = load_file(str(path / WEIGHTS))
    except Exception as exc:  # safetensors' error type moved between versions; all mean unreadable
        raise InputError(f"{path}: {WEIGHTS} is not readable ({type(exc).__name__})") from None
    return config, {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}, card


def _read_json(path: Path, name: str) -> dict:
    try:
        data = json.loads((path / name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{path}: {name} is not readable JSON") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: {name} is not a JSON object")
    return data


def load_state(path: Path, model, state: dict) -> None:
    """Weights into ``model``; a mismatch (another architecture) is an InputError."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = (str(exc).strip().splitlines() or ["mismatch"])[0][:160]
        raise InputError(f"{path}: {WEIGHTS} does not fit {CONFIG} ({first})") from None
