"""A small review workspace made from ``sample_data/`` through the store API.

It holds what the pipeline writes (see ``updp_napari.review.artifacts``), with stand-ins
where models would run: the synthetic image is a blur of the cleaned image with the
preserved region laid back over it, and the scores are fixed numbers.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
#: A filter card's risk table under which every finding's kept region may leave as an image
#: (a filter measured safe); the tests that need a risky one write their own.
SAFE_RISK = {"limit": "test", "measured_on": {"seed": 0},
             "per_finding": {name: {"queries": 50, "top1": 0.0, "chance": 0.02, "ratio": 0.0,
                                    "shareable": True}
                             for name in ("cardiomegaly", "effusion", "nodule", "mass",
                                          "consolidation", "pneumothorax", "atelectasis")}}
#: Findings and burned-in text (a name and a side marker) among them, in this review order.
STUDIES = ("p0000_s01", "p0002_s02", "p0001_s02", "p0006_s02")


def fake_synthetic(image: np.ndarray, mask: np.ndarray, radius: int = 4) -> np.ndarray:
    """A deterministic stand-in for the generative filter: a box blur outside the mask."""
    padded = np.pad(image.astype(np.float64), radius, mode="edge")
    window = 2 * radius + 1
    sums = np.cumsum(np.cumsum(padded, axis=0), axis=1)
    sums = np.pad(sums, ((1, 0), (1, 0)))
    blurred = (sums[window:, window:] - sums[:-window, window:] - sums[window:, :-window]
               + sums[:-window, :-window]) / window ** 2
    out = np.where(mask > 0, image, blurred)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _label_image(folder: Path, shape: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    from updp_napari.cohort.model import LABELS

    out = np.zeros(shape, np.uint8)
    for i, label in enumerate(LABELS, start=1):
        path = folder / f"mask_{label}.png"
        if path.is_file():
            with Image.open(path) as im:
                out[np.asarray(im.convert("L")) > 0] = i
    return out


def _cleaned(image: np.ndarray, boxes: list[list[int]]) -> np.ndarray:
    """Burned-in text filled with the median of a ring around each box (half-open boxes, as
    the pipeline fills them)."""
    from updp_napari.core.boxes import Box

    out = image.copy()
    for values in boxes:
        box = Box(*values)
        out[box.slices(image.shape)] = float(np.median(image[box.padded(3).slices(image.shape)]))
    return out


def build_workspace(path, studies=STUDIES, cohort=SAMPLE) -> dict:
    """Write a workspace at ``path`` holding ``studies`` of ``cohort``; returns facts the
    tests compare against: ``{"workspace", "cases": [case ids in order], "redacted":
    {case id: the pipeline's redacted text}, "studies": {case id: study folder}}``."""
    import pydicom

    from updp_napari.cohort.generate import read_ground_truth
    from updp_napari.core.keys import date_shift_days, load_key
    from updp_napari.deid.report import ReportDeidentifier
    from updp_napari.deid.report.deidentifier import study_dates
    from updp_napari.deid.report.header_values import read_header
    from updp_napari.ingest import display_image, read_report
    from updp_napari.review.artifacts import put_array, put_json, put_text
    from updp_napari.review.store import KEY_FILE, ReviewStore

    cohort = Path(cohort)
    records = {r["study_id"]: r for r in read_ground_truth(cohort)}
    deid = ReportDeidentifier(use_plugins=False)
    facts = {"workspace": Path(path), "cases": [], "redacted": {}, "studies": {}}
    with ReviewStore.open(path, create=True) as store:
        key = load_key(Path(path) / KEY_FILE)
        for n, study in enumerate(studies):
            record = records[study]
            dicom = cohort / record["image"]
            folder = dicom.parent
            uid = str(pydicom.dcmread(dicom, stop_before_pixels=True).StudyInstanceUID)
            case = store.add_case(uid, site=record["site"])
            original = display_image(dicom)
            boxes = [item["box"] for item in record.get("burned_in", [])]
            cleaned = _cleaned(original, boxes)
            mask = _label_image(folder, original.shape)
            put_array(store, case, "original", original, {"source": "sample_data"})
            put_array(store, case, "cleaned", cleaned, {"source": "review_fixtures"})
            put_array(store, case, "preserve_mask", mask, {"source": "mask PNGs"})
            put_array(store, case, "synthetic", fake_synthetic(cleaned, mask),
                      {"model": "review_fixtures.fake_synthetic"})
            put_json(store, case, "text_boxes",
                     [{"box": box, "reason": "ground truth"} for box in boxes])

            text = read_report(cohort / record["report"])
            header = read_header(dicom)
            put_text(store, case, "report", text)
            put_json(store, case, "image_risk", {"table": SAFE_RISK})
            phi = deid.detect(text, header)
            # The shift as the de-identifier takes it: never one that writes a date of the
            # study onto another (with some keys the plain keyed shift would).
            put_json(store, case, "report_context", {
                "shift_days": date_shift_days(key, header.patient_key,
                                              study_dates(text, phi, header)),
                "avoid_names": sorted({part for parts in header.names for part in parts})})
            pathology = [{"start": s, "end": e, "category": "PATHOLOGY", "source": "whitelist",
                          "action": "keep"} for s, e in deid.protected(text)]
            store.set_spans(case, list(phi) + pathology)
            facts["redacted"][case] = deid.deidentify(text, header, mode="surrogate",
                                                      key=key).text

            privacy, utility = 0.55 + 0.1 * n, 0.9 - 0.05 * n
            store.set_scores(case, privacy=privacy, utility=utility)
            put_json(store, case, "scores", {"privacy": privacy, "utility": utility,
                                             "findings_agree": True})
            facts["cases"].append(case)
            facts["studies"][case] = study
    return facts


class FakeFilter:
    """The ``GenerativeFilter.synthesize`` signature over a cheap, seeded computation.

    ``gate``: an Event the filter waits on after its first step (to hold a job mid-way);
    ``step_seconds``: how long each step takes.
    """

    def __init__(self, steps=4, gate=None, step_seconds=0.0):
        self.steps, self.gate, self.step_seconds = steps, gate, step_seconds
        self.calls = []
        self.started = threading.Event()

    def synthesize(self, image, preserve_mask, text_mask=None, *, strength=None, seed=0,
                   steps=None, dilation=None, progress=None, cancel=None):
        self.calls.append({"strength": strength, "seed": seed, "preserve": preserve_mask.copy(),
                           "text": None if text_mask is None else text_mask.copy(),
                           "thread": threading.get_ident()})
        total = steps or self.steps
        rng = np.random.default_rng(seed)
        out = np.asarray(image, np.float32).copy()
        for step in range(total):
            if cancel is not None and cancel.is_set():
                raise RuntimeError("synthesis cancelled")
            out = 0.7 * out + 0.3 * rng.random(out.shape, dtype=np.float32)
            if self.step_seconds:
                time.sleep(self.step_seconds)  # a model's step: the GIL is free meanwhile
            if progress is not None:
                progress(step + 1, total)
            if step == 0:
                self.started.set()
                if self.gate is not None:
                    assert self.gate.wait(10), "the test never released the filter"
        out[preserve_mask] = np.asarray(image, np.float32)[preserve_mask]
        return np.clip(out, 0, 1)
