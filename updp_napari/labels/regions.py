"""Regions to preserve, read from the report: where each finding it affirms lies.

A hospital's archive has no pathology masks. The report says what was seen and, mostly,
where: "atelectasis at the left base", "moderate left apical pneumothorax", "right lower
lobe consolidation", "mildly enlarged cardiac silhouette". For every finding the labeller
(:mod:`.report`) affirms, the words of its sentence give the side (right, left, both) and
the level (upper, middle, lower; apex, base; the lobes), and the finding's anatomy gives the
rest (the heart for cardiomegaly, the costophrenic angle for an effusion, the apex and the
lateral edge for a pneumothorax). Each becomes a region of a standard PA chest — the lung
fields as fractions of the image — written into the label image the filter keeps
(``FINDINGS[i]`` as ``i + 1``).

This is where a radiologist would look, not the finding's outline: the region is a zone of
the lung, larger than the finding, so that it covers it wherever in the zone it lies. The
reviewer's painting in the dock replaces it. The patient's right is the image's left, as a
PA (and an AP) chest is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..core.vocabulary import FINDINGS

#: The lung fields of a standard frontal chest, as fractions of the image (x from the image's
#: left, y from the top). The patient's right lung is on the image's left.
LUNG_X = {"right": (0.08, 0.52), "left": (0.48, 0.92)}
LUNG_Y = (0.07, 0.75)   # apices to the diaphragm: a PA film shows the upper abdomen below
#: Levels of the lung field, as fractions of its height (overlapping, so a finding at the
#: border of two is in both).
LEVELS = {"upper": (0.0, 0.6), "middle": (0.25, 0.8), "lower": (0.45, 1.0),
          "apex": (0.0, 0.45), "base": (0.55, 1.0)}
#: A pneumothorax runs down the lateral chest wall from where the report puts it.
PNEUMOTHORAX_REACH = 0.75
#: The heart and mediastinum (for cardiomegaly: its size is the finding), image fractions.
HEART = ((0.28, 0.82), (0.30, 0.80))
#: Where an effusion and a pneumothorax lie when the report says only the side.
DEFAULT_LEVEL = {"effusion": "base", "pneumothorax": "upper"}

_SIDE = re.compile(r"\b(right|left|bilateral(?:ly)?|both|bibasilar|bibasal|biapical|"
                   r"r\.?|l\.?)\b(?=[\s-]*(?:upper|middle|mid|lower|lung|lobe|hemithorax|"
                   r"apex|apical|base|basal|basilar|costophrenic|pleural|side|sided|perihilar|"
                   r"retrocardiac|infrahilar|suprahilar|midlung|mid-lung|[a-z]+\b))",
                   re.IGNORECASE)
_LEVEL = [
    ("apex", re.compile(r"\b(apex|apices|apical|biapical)\b", re.IGNORECASE)),
    ("base", re.compile(r"\b(bases?|basal|basilar|bibasilar|bibasal|costophrenic|"
                        r"lower\s+zones?|infrahilar|retrocardiac)\b", re.IGNORECASE)),
    ("upper", re.compile(r"\b(upper\s+(?:lobes?|zones?)|upper|suprahilar)\b", re.IGNORECASE)),
    ("middle", re.compile(r"\b(middle\s+lobe|lingula[r]?|mid[\s-]?lung|mid(?:dle)?\s+zones?|"
                          r"perihilar|hilar)\b", re.IGNORECASE)),
    ("lower", re.compile(r"\b(lower\s+lobes?|lower)\b", re.IGNORECASE)),
]


@dataclass(frozen=True)
class RegionHint:
    """Where the report puts one affirmed finding: ``sides`` (``right``/``left``) and
    ``level`` (a key of :data:`LEVELS`, or None for the whole lung field)."""

    finding: str
    sides: tuple[str, ...]
    level: str | None


def _sides(sentence: str) -> tuple[str, ...]:
    found = set()
    for m in _SIDE.finditer(sentence):
        word = m.group(1).lower().rstrip(".")
        if word in ("right", "r"):
            found.add("right")
        elif word in ("left", "l"):
            found.add("left")
        else:
            found |= {"right", "left"}
    return tuple(sorted(found)) if found else ("left", "right")


def _level(sentence: str, finding: str) -> str | None:
    for name, pattern in _LEVEL:
        if pattern.search(sentence):
            return name
    return DEFAULT_LEVEL.get(finding)


def report_region_hints(text: str) -> list[RegionHint]:
    """Every finding the report affirms, with where its sentence puts it (one hint per
    finding and sentence)."""
    from .report import POSITIVE, _sentences, report_mentions

    hints: list[RegionHint] = []
    sentences = _sentences(text, 0, len(text))
    for mention in report_mentions(text):
        if mention.label != POSITIVE or mention.finding not in FINDINGS:
            continue
        start, end = next(((s, e) for s, e in sentences if s <= mention.start < e),
                          (mention.start, mention.end))
        sentence = text[start:end]
        hint = RegionHint(mention.finding, _sides(sentence), _level(sentence, mention.finding))
        if hint not in hints:
            hints.append(hint)
    return hints


def hint_mask(hint: RegionHint, shape: tuple[int, int]) -> np.ndarray:
    """The region of one hint on an image of ``shape``: a bool mask."""
    rows, cols = shape
    out = np.zeros(shape, bool)

    def box(x: tuple[float, float], y: tuple[float, float]) -> None:
        out[int(y[0] * rows):int(np.ceil(y[1] * rows)), int(x[0] * cols):int(np.ceil(x[1] * cols))] = True

    if hint.finding == "cardiomegaly":
        box(*HEART)
        return out
    top, bottom = LUNG_Y
    low, high = LEVELS[hint.level] if hint.level else (0.0, 1.0)
    if hint.finding == "pneumothorax" and hint.level in ("apex", "upper"):
        high = max(high, PNEUMOTHORAX_REACH)
    y = (top + low * (bottom - top), top + high * (bottom - top))
    for side in hint.sides:
        box(LUNG_X[side], y)
    return out


def report_regions(text: str, shape: tuple[int, int]) -> np.ndarray:
    """The label image of the regions the report gives (uint8: ``FINDINGS.index(f) + 1``;
    where two findings' regions meet, the later finding of :data:`FINDINGS` wins)."""
    out = np.zeros(shape, np.uint8)
    for hint in sorted(report_region_hints(text), key=lambda h: FINDINGS.index(h.finding)):
        out[hint_mask(hint, shape)] = FINDINGS.index(hint.finding) + 1
    return out
