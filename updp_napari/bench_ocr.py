"""``updp bench ocr``: the burned-in text search reading proposed regions against reading
whole images, on a fresh cohort: seconds per image, and what each fills."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import statistics
import tempfile

from .core.errors import UpdpError
from .deid.pixels import OCR_ENGINE_VARIABLE, TESSERACT_COMMAND, ocr_engine

#: What the region search is for: this many times faster per image than the full search…
TARGET_SPEED_RATIO = 4.0
#: …covering at least this fraction of the PHI lines at 256 px, and never less than the
#: full search.
TARGET_COVERED = 0.96
DEFAULT_SEED = 31337


def _per_image_median(runs: list[list[float]]) -> list[float]:
    """Each image's median over the repeats (``runs[r][i]``: repeat r, image i)."""
    return [statistics.median(times) for times in zip(*runs)]


@contextlib.contextmanager
def _engine(name: str):
    """Tesseract read by ``name`` ("program" or "library") inside the block."""
    before = os.environ.get(OCR_ENGINE_VARIABLE)
    os.environ[OCR_ENGINE_VARIABLE] = name
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(OCR_ENGINE_VARIABLE, None)
        else:
            os.environ[OCR_ENGINE_VARIABLE] = before


def bench_ocr(studies: int = 90, size: int = 256, repeat: int = 3,
              seed: int | None = None) -> dict:
    """Seconds per image of :func:`~updp_napari.deid.pixels.clean_burned_in` with
    ``search="regions"`` and ``search="full"`` on a fresh cohort of ``studies`` studies
    (3 per patient, 5 sites, ``seed``), the two taking turns repeat by repeat; the speed
    ratio of the medians (wall clock and CPU, Tesseract included); for both, the PHI lines
    covered (90 % of the line filled) and filled whole, the side markers touched, the share
    of the other pixels filled, and the images in which the export gate's OCR still finds an
    identifier on a PHI line; and the lines the full search covers that the region search
    does not."""
    from .cohort.generate import make_cohort
    from .deid.pixels import tesseract_available
    from .evaluate.pixels import load_images, lost_lines, score_images

    if studies < 1 or repeat < 1 or size < 32:
        raise UpdpError("bench ocr: studies and repeat must be at least 1, size at least 32")
    if not tesseract_available():
        raise UpdpError("bench ocr: tesseract not found (Debian package tesseract-ocr)")
    seed = DEFAULT_SEED if seed is None else seed
    with tempfile.TemporaryDirectory(prefix="updp-bench-") as tmp:
        root = os.path.join(tmp, "cohort")
        make_cohort(root, patients=max(1, studies // 3), studies=min(3, studies), seed=seed,
                    size=size, sites=5)
        images = load_images(root)
    score_images(images[:1], "regions")  # imports, Tesseract's model in the page cache
    score_images(images[:1], "full")
    engine = ocr_engine()
    # With the library, the full search is timed with the program too: the reference as it
    # was, each image's model loaded anew by every start of Tesseract.
    program = engine == "library" and shutil.which(TESSERACT_COMMAND) is not None
    modes = ("regions", "full", *(("full_program",) if program else ()))
    scores: dict[str, dict] = {}
    wall: dict[str, list[list[float]]] = {m: [] for m in modes}
    cpu: dict[str, list[list[float]]] = {m: [] for m in modes}
    for r in range(repeat):
        # The modes take turns, and which goes first alternates, so that a busy moment of a
        # shared machine falls on both.
        for mode in modes if r % 2 == 0 else modes[::-1]:
            # The leak check reads every cleaned image again: once, on the first repeat.
            if mode == "full_program":
                with _engine("program"):
                    score = score_images(images, "full", leak_scan=r == 0)
            else:
                score = score_images(images, mode, leak_scan=r == 0)
            scores.setdefault(mode, score)  # the same fills every repeat: Tesseract is exact
            wall[mode].append(score["seconds"])
            cpu[mode].append(score["cpu_seconds"])
    result: dict = {"benchmark": "ocr", "studies": len(images), "size": size, "seed": seed,
                    "repeats": repeat, "engine": engine, "machine": {
                        "python": platform.python_version(), "machine": platform.machine(),
                        "cpus": os.cpu_count(), "platform": platform.platform()}}
    for mode in modes:
        per_image = _per_image_median(wall[mode])
        per_image_cpu = _per_image_median(cpu[mode])
        score = scores[mode]
        result[mode] = {
            "median_seconds_per_image": round(statistics.median(per_image), 4),
            "mean_seconds_per_image": round(statistics.fmean(per_image), 4),
            "median_cpu_seconds_per_image": round(statistics.median(per_image_cpu), 4),
            "mean_cpu_seconds_per_image": round(statistics.fmean(per_image_cpu), 4),
            **{k: score[k] for k in ("phi_lines", "covered", "filled_whole", "mean_coverage",
                                     "markers", "markers_touched", "background_filled")},
            "leaks": len(score["leaks"]), "leaked_studies": score["leaks"]}
    regions, full = result["regions"], result["full"]
    for key, name in (("median_seconds_per_image", "speed_ratio"),
                      ("mean_seconds_per_image", "speed_ratio_mean"),
                      ("median_cpu_seconds_per_image", "cpu_speed_ratio"),
                      ("mean_cpu_seconds_per_image", "cpu_speed_ratio_mean")):
        result[name] = round(full[key] / regions[key], 2) if regions[key] else None
    if program:
        result["speed_ratio_to_program_full"] = round(
            result["full_program"]["median_seconds_per_image"] / regions["median_seconds_per_image"], 2)
    lost = lost_lines(scores["full"], scores["regions"])
    gained = lost_lines(scores["regions"], scores["full"])
    result["lines_lost_to_regions"] = lost
    result["lines_gained_by_regions"] = len(gained)
    result["target_speed_ratio"] = TARGET_SPEED_RATIO
    result["target_covered"] = TARGET_COVERED
    # The reference is the search as it was before the region search: the whole image, read
    # by the program (the full search read by the library where the program is missing).
    reference = "full_program" if program else "full"
    result["reference"] = reference
    result["speed_ratio_to_reference"] = result["speed_ratio_to_program_full"] if program \
        else result["speed_ratio"]
    covered = regions["covered"] or 0.0
    # Faster than the reference by the target; covering as large a share of the PHI lines as
    # either full search (recall unchanged; single lines may differ: lines_lost_to_regions),
    # and at least the target share at 256 px; nothing the export gate's OCR finds left on a
    # PHI line; side markers left alone.
    result["meets_target"] = bool(
        (result["speed_ratio_to_reference"] or 0.0) >= TARGET_SPEED_RATIO
        and all(covered >= (result[m]["covered"] or 0.0) for m in modes if m != "regions")
        and regions["leaks"] == 0 and regions["markers_touched"] == 0
        and (size != 256 or regions["covered"] is None or covered >= TARGET_COVERED))
    return result
