"""Burned-in text removal scored against a cohort's ground truth.

The cohort generator records every line it burns into an image (``burned_in`` in the ground
truth: box, category, whether it is PHI). :func:`evaluate_burned_in` runs
:func:`~updp_napari.deid.pixels.clean_burned_in` on every image, with the identifiers of the
image's own header, and counts for each PHI line how much of its box was filled: a line is
*covered* when 90 % of it is filled, *filled whole* when all of it is. Side markers (L/R) are
not PHI: any of their pixels filled counts as touched. Each call is timed, wall clock and CPU
(this process and the Tesseract processes it waited for).

No text read from the pixels, and no ground-truth text, is in what it returns: study ids of
the synthetic cohort, categories, boxes and fractions only.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..cohort.generate import read_ground_truth
from ..core.errors import InputError

#: A PHI line counts as covered when this fraction of its ground-truth box is filled.
COVERED = 0.9


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _filled(shape: tuple[int, int], boxes: list[dict]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for record in boxes:
        x0, y0, x1, y1 = record["box"]
        mask[y0:y1, x0:x1] = True
    return mask


def load_images(cohort: str | os.PathLike) -> list[dict]:
    """Each image of a cohort with what :func:`score_images` needs: ``study_id``, the stored
    ``pixels``, ``monochrome1``, the header ``identifiers`` and the ground-truth ``burned_in``
    lines (box, category, phi; the text left out)."""
    import pydicom

    from ..deid.leaks import collect_identifiers
    from ..deid.pixels import identifiers_from_header
    from ..ingest import flatten_header

    cohort = Path(cohort)
    records = read_ground_truth(cohort)
    if not records:
        raise InputError(f"{cohort}: ground truth lists no studies")
    images = []
    for r in records:
        ds = pydicom.dcmread(cohort / r["image"])
        images.append({
            "study_id": r["study_id"], "pixels": ds.pixel_array,
            "monochrome1": str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1",
            "identifiers": identifiers_from_header(flatten_header(ds)),
            "leak_identifiers": collect_identifiers(ds),
            "burned_in": [{k: b[k] for k in ("box", "category", "phi")}
                          for b in r.get("burned_in", [])]})
    return images


def _leaked(image: dict, cleaned: np.ndarray) -> bool:
    """Whether the export gate's OCR check (``updp scan-leaks``: the full search, matched
    against every identifier of the original header) finds one in what is left of the
    image's PHI lines. Words read elsewhere are left out: there OCR of anatomy now and then
    spells a name of the header by chance, which makes the gate refuse the image (a false
    alarm, failing closed), not a leak."""
    from ..deid.pixels import ocr_words

    phi = _filled(cleaned.shape, [b for b in image["burned_in"] if b["phi"]])
    words = [w for w in ocr_words(cleaned, monochrome1=image["monochrome1"])
             if phi[w.box[1]:w.box[3], w.box[0]:w.box[2]].any()]
    return bool(words) and bool(image["leak_identifiers"].find_ocr(
        [w.text for w in words], [w.box for w in words]))


def score_images(images: list[dict], search: str = "full",
                 progress: Callable[[int, int], None] | None = None, *,
                 leak_scan: bool = False) -> dict:
    """Run the cleaner with ``search`` on images from :func:`load_images` and score it.

    Returns ``images``, ``phi_lines``, ``covered`` (fraction of PHI lines ≥ 90 % filled),
    ``filled_whole``, ``mean_coverage``, ``markers``, ``markers_touched``,
    ``background_filled`` (of the pixels outside every burned-in line, the fraction filled,
    averaged over the images: what the fills cost the anatomy), the per-image ``seconds`` and
    ``cpu_seconds`` with their medians, and ``lines``: each PHI line's ``study_id``,
    ``category`` and ``coverage`` (in ground-truth order, so two runs on the same images
    compare line by line). With ``leak_scan``, ``leaks`` too: the study ids of the cleaned
    images in which the export gate's OCR check still finds an identifier of the header
    (not timed).
    """
    from ..deid.pixels import clean_burned_in

    lines, markers, seconds, cpu, background, leaks = [], [], [], [], [], []
    for n, image in enumerate(images, 1):
        pixels = image["pixels"]
        start, start_cpu = time.perf_counter(), _cpu()
        result = clean_burned_in(pixels, image["identifiers"], monochrome1=image["monochrome1"],
                                 search=search)
        seconds.append(time.perf_counter() - start)
        cpu.append(_cpu() - start_cpu)
        filled = _filled(pixels.shape, result.boxes)
        text = _filled(pixels.shape, image["burned_in"])
        background.append(float((filled & ~text).sum() / max(1, (~text).sum())))
        if leak_scan and _leaked(image, result.pixels):
            leaks.append(image["study_id"])
        for b in image["burned_in"]:
            x0, y0, x1, y1 = b["box"]
            coverage = float(filled[y0:y1, x0:x1].mean()) if x1 > x0 and y1 > y0 else 0.0
            if b["phi"]:
                lines.append({"study_id": image["study_id"], "category": b["category"],
                              "coverage": round(coverage, 4)})
            elif b["category"] == "MARKER":
                markers.append(coverage)
        if progress:
            progress(n, len(images))
    coverage = [line["coverage"] for line in lines]
    return {
        "search": search, "images": len(images), "phi_lines": len(lines),
        "covered": round(float(np.mean([c >= COVERED for c in coverage])), 4) if lines else None,
        "filled_whole": round(float(np.mean([c >= 1.0 for c in coverage])), 4) if lines else None,
        "mean_coverage": round(float(np.mean(coverage)), 4) if lines else None,
        "markers": len(markers), "markers_touched": sum(c > 0 for c in markers),
        "background_filled": round(float(np.mean(background)), 5) if background else None,
        **({"leaks": leaks} if leak_scan else {}),
        "seconds": [round(s, 4) for s in seconds], "cpu_seconds": [round(s, 4) for s in cpu],
        "median_seconds": round(statistics.median(seconds), 4) if seconds else None,
        "median_cpu_seconds": round(statistics.median(cpu), 4) if cpu else None,
        "lines": lines,
    }


def evaluate_burned_in(cohort: str | os.PathLike, search: str = "full",
                       progress: Callable[[int, int], None] | None = None) -> dict:
    """Score burned-in text removal (``search`` as in
    :func:`~updp_napari.deid.pixels.clean_burned_in`) on every image of a cohort folder made
    by ``updp make-cohort``: see :func:`score_images`."""
    return score_images(load_images(cohort), search, progress)


def lost_lines(reference: dict, other: dict) -> list[dict]:
    """The PHI lines ``reference`` covered (≥ 90 %) that ``other``, scored on the same
    images, did not: ``study_id``, ``category`` and both coverages."""
    if len(reference["lines"]) != len(other["lines"]):
        raise InputError("the two scores are not of the same images")
    return [{"study_id": a["study_id"], "category": a["category"],
             "coverage": a["coverage"], "coverage_other": b["coverage"]}
            for a, b in zip(reference["lines"], other["lines"])
            if a["coverage"] >= COVERED > b["coverage"]]
