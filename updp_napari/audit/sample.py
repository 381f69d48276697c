"""The sampling frame, the case category, and the reproducible (stratified) draw.

**Frame.** The cases a sample is drawn from, and so the cases a bound speaks about. For a
share package: every case in its manifest. For a workspace, by ``frame``: ``accepted``
(default; what an export would share), ``decided`` (accepted, rejected and flagged) or
``all`` (every case but the failed ones, which have nothing to share).

**Category.** The one place that says what a case's category is: whether its image carried
burned-in text, the riskier kind, since the pixels then held identifiers the pipeline had to
find and fill:

* ``burned-in text`` — the pipeline found text in the image and filled it;
* ``no burned-in text`` — the pixels were scanned and no text was found;
* ``not scanned`` — the workspace was run with ``--pixels off``;
* ``unknown`` — a share package (its manifest does not record it).

**Draw.** Case ids are sorted, then drawn with ``numpy.random.default_rng(seed)`` without
replacement, so the same frame, size, strata and seed give the same sample on any machine.
Stratified draws allocate the sample to strata in proportion to their size (largest
remainders), which keeps the sample self-weighting: every case has (nearly) the same chance
``n / N`` of being drawn, so the plain rate over the sample and its Clopper–Pearson bound
speak for the whole frame. When the sample has room, every non-empty stratum gets at least
one case; that and the rounding make the chances differ a little between strata, and the
allocation (frame and sample size per stratum) is recorded so the difference is visible.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..core.errors import InputError

CATEGORIES = ("burned-in text", "no burned-in text", "not scanned", "unknown")
STRATA = ("site", "category")
#: Which workspace statuses each frame takes.
FRAMES = {"accepted": ("accepted",), "decided": ("accepted", "rejected", "flagged"),
          "all": ("pending", "accepted", "rejected", "flagged")}


def case_category(text_boxes: list | None, signature=None) -> str:
    """The category of a case from its ``text_boxes`` artifact and that artifact's signature
    (None for both: nothing is known, as in a share package)."""
    if text_boxes:
        return "burned-in text"
    if isinstance(signature, dict) and signature.get("pixels") == "off":
        return "not scanned"
    if text_boxes is None and signature is None:
        return "unknown"
    return "no burned-in text"


def frame_cases(cases: Sequence, kind: str, frame: str | None = None) -> tuple[str, list]:
    """(frame name, the cases in it). ``kind`` is ``workspace`` or ``package``."""
    if kind == "package":
        if frame not in (None, "package"):
            raise InputError("a share package's frame is its cases; a frame is chosen for workspaces only")
        return "package", list(cases)
    frame = frame or "accepted"
    if frame not in FRAMES:
        raise InputError(f"frame must be {', '.join(FRAMES)}, not {frame!r}"
                         if len(str(frame)) <= 20 else "frame must be accepted, decided or all")
    return frame, [c for c in cases if c.status in FRAMES[frame]]


def parse_strata(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"site,category"`` → ``("site", "category")``; an error for anything else."""
    if text is None:
        return ()
    parts = [p.strip() for p in (text.split(",") if isinstance(text, str) else text)]
    parts = [p for p in parts if p]
    bad = [p for p in parts if p not in STRATA]
    if bad or len(set(parts)) != len(parts):
        raise InputError("strata are site, category or site,category")
    return tuple(sorted(parts, key=STRATA.index))


def frame_digest(case_ids) -> str:
    """A hash of the frame's case ids: tells whether the frame changed since a draw."""
    return hashlib.sha256("\n".join(sorted(case_ids)).encode()).hexdigest()[:16]


@dataclass
class Draw:
    """A drawn sample: the case ids in walking order and how they were drawn."""

    case_ids: list[str]
    size_requested: int
    strata: tuple[str, ...]
    seed: int
    frame_size: int
    frame_sha256: str
    allocation: list[dict] = field(default_factory=list)  # {"stratum", "frame", "sample"}


def _stratum(case, strata: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(str(getattr(case, name) or "unknown") for name in strata)


def allocate(sizes: Sequence[int], n: int) -> list[int]:
    """Proportional allocation of ``n`` over strata of ``sizes`` (largest remainders), at
    least one per non-empty stratum when ``n`` allows, never more than a stratum holds."""
    total = sum(sizes)
    if n >= total:
        return list(sizes)
    quotas = [n * s / total for s in sizes]
    out = [int(q) for q in quotas]
    order = sorted(range(len(sizes)), key=lambda i: (-(quotas[i] - out[i]), i))
    for i in order[:n - sum(out)]:
        out[i] += 1
    empty = [i for i, s in enumerate(sizes) if s > 0 and out[i] == 0]
    if sum(1 for s in sizes if s > 0) <= n:
        for i in empty:
            # One from the stratum most over its quota that can spare one.
            donor = max((j for j in range(len(sizes)) if out[j] > 1),
                        key=lambda j: (out[j] - quotas[j], -j))
            out[donor] -= 1
            out[i] = 1
    return out


def draw_sample(cases: Sequence, n: int, strata: Sequence[str] = (),
                seed: int | None = None) -> Draw:
    """Draw ``n`` of ``cases`` (each with ``case_id`` and the ``strata`` attributes).

    With no ``seed`` one is chosen at random and recorded in the result, so the draw can be
    repeated. ``n`` larger than the frame takes the whole frame.
    """
    import numpy as np

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"the sample size must be a whole number 1 or more, not {n!r}")
    strata = parse_strata(list(strata))
    if seed is None:
        seed = secrets.randbelow(2 ** 32)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a whole number 0 or more, not {seed!r}")
    cases = sorted(cases, key=lambda c: c.case_id)
    if not cases:
        raise InputError("the frame holds no cases to sample (for a workspace: are any cases "
                         "accepted? another frame may hold some)")
    groups: dict[tuple[str, ...], list[str]] = {}
    for case in cases:
        groups.setdefault(_stratum(case, strata), []).append(case.case_id)
    keys = sorted(groups)
    sizes = [len(groups[k]) for k in keys]
    counts = allocate(sizes, int(n))
    rng = np.random.default_rng(int(seed))
    chosen: list[str] = []
    allocation = []
    for key, size, count in zip(keys, sizes, counts):
        ids = groups[key]
        picked = rng.choice(len(ids), size=count, replace=False) if count else []
        chosen.extend(ids[int(i)] for i in picked)
        allocation.append({"stratum": dict(zip(strata, key)), "frame": size, "sample": count})
    order = [chosen[int(i)] for i in rng.permutation(len(chosen))]
    return Draw(order, int(n), strata, int(seed), len(cases),
                frame_digest(c.case_id for c in cases), allocation)
