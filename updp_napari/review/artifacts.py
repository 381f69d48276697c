"""What a case holds in the workspace: the artifact names the pipeline writes and the review
reads, and one place that reads and writes them.

Every artifact is a content-addressed file (:meth:`ReviewStore.put_artifact`) attached to the
case under a name, with the signature of how it was made:

=================  ==========================================================================
``original``       float32 [H, W] 0…1, the study's image as read (bright is dense), burned-in
                   text still in it. PHI: stays in the workspace.
``cleaned``        float32 [H, W] 0…1, burned-in text filled — what synthesis starts from.
``synthetic``      float32 [H, W] 0…1, the generative filter's counterpart (what is shared).
``preserve_mask``  uint8 [H, W] label image: 0 background, i + 1 where ``core.vocabulary.FINDINGS[i]`` lies —
                   the region the filter keeps (the pipeline's; a reviewer's edit is
                   ``reviewer_mask``, same format, and wins when present).
``text_boxes``     JSON list of ``{"box": [x0, y0, x1, y1], "reason": …}`` in image pixels,
                   half-open (``core.boxes``: columns x0…x1 - 1, rows y0…y1 - 1) — the
                   pixels the pipeline filled, and the text mask every regeneration uses.
``report``         UTF-8 text, the original report. PHI: stays in the workspace.
``report_context`` JSON ``{"shift_days": int, "avoid_names": [...]}``: what re-renders the
                   redacted report from the spans exactly as the pipeline did.
``source``         the original DICOM file, as read. PHI: stays in the workspace; the export's
                   leak scan collects the identifiers to search for from it.
``dicom``          the de-identified DICOM file (header profile applied, burned-in text
                   filled); export puts the synthetic pixels into it.
``scores``         JSON: the per-case privacy and utility measurements (see ``pipeline``).
``identity``       JSON ``{"patient": "PT-…"}``: the keyed stand-in of the patient, which
                   groups a patient's studies for re-identification scores.
``image_risk``     JSON: the filter's measured re-identification risk of a kept region, per
                   finding (its card's ``image_risk`` table, from ``updp evaluate-filter
                   --record-risk``; ``{"table": null}`` when it has none). A case that keeps a
                   finding the table does not show safe is not shareable as an image
                   (:meth:`CaseArtifacts.image_risk`): only its report can leave.
``domain``         JSON ``{"in_domain", "distance", "threshold", "model", "reason"}``: the
                   cleaned image against the filter's training images (``synth.domain``). A
                   case out of domain (or whose filter has no domain description) has no
                   synthetic counterpart: only its original, burned-in text removed, can
                   be shared, and only when a reviewer accepts exactly that.
=================  ==========================================================================
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..core.boxes import Box, boxes_from_json, boxes_mask
from ..core.errors import InputError, UpdpError

IMAGES = ("original", "cleaned", "synthetic")
MASKS = ("preserve_mask", "reviewer_mask")
JSONS = ("text_boxes", "report_context", "scores", "identity", "domain", "image_risk")
TEXTS = ("report",)


@dataclass
class CaseArtifacts:
    """Read access to one case's artifacts: the one reader of what the pipeline wrote (each
    read from the store when asked for; ``read_array``, when given, reads an array artifact
    by its path instead of ``store.get_array``, e.g. through a cache)."""

    store: object  # ReviewStore
    case_id: str
    read_array: Callable[[str], np.ndarray] | None = None

    def _entry(self, name: str) -> dict | None:
        return self.store.case(self.case_id).artifacts.get(name)

    def has(self, name: str) -> bool:
        return self._entry(name) is not None

    def signature(self, name: str):
        entry = self._entry(name)
        return None if entry is None else entry.get("signature")

    def array(self, name: str) -> np.ndarray | None:
        entry = self._entry(name)
        if entry is None:
            return None
        return (self.read_array or self.store.get_array)(entry["path"])

    def _bytes(self, name: str) -> bytes | None:
        entry = self._entry(name)
        return None if entry is None else self.store.get_artifact(entry["path"])

    def json(self, name: str):
        data = self._bytes(name)
        try:
            return None if data is None else json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise UpdpError(f"case {self.case_id}: artifact {name} is not valid JSON") from None

    def text(self, name: str) -> str | None:
        data = self._bytes(name)
        try:
            return None if data is None else data.decode("utf-8")
        except UnicodeDecodeError:
            raise UpdpError(f"case {self.case_id}: artifact {name} is not UTF-8 text") from None

    def out_of_domain(self) -> dict | None:
        """The ``domain`` record when the case's image is out of the filter's domain (or the
        domain could not be checked); None when it is in domain or was never checked."""
        record = self.json("domain")
        if record is None or (isinstance(record, dict) and record.get("in_domain") is True):
            return None
        return record if isinstance(record, dict) else {"in_domain": False,
                                                         "reason": "unreadable domain record"}

    def image_risk(self) -> dict | None:
        """Why the case's synthetic image may not be shared (``{"findings", "reason"}``), or
        None when it may: it keeps no finding of the patient, or only findings whose kept
        region the filter's measured attack did not re-identify beyond its limit. A case out
        of domain has no synthetic image and is judged by :meth:`out_of_domain` instead."""
        if self.out_of_domain() is not None:
            return None
        mask = self.mask()
        found = set() if mask is None else {int(v) for v in np.unique(mask) if v}
        record = self.json("image_risk")
        table = record.get("table") if isinstance(record, dict) else None
        return image_risk_verdict(table, sorted(found))

    def mask(self) -> np.ndarray | None:
        """The preserved region as it stands: the reviewer's edit when there is one."""
        reviewer = self.array("reviewer_mask")
        return reviewer if reviewer is not None else self.array("preserve_mask")

    def shape(self) -> tuple[int, int] | None:
        """(rows, cols) of the case's images: of the first of ``IMAGES`` stored, else None."""
        for name in IMAGES:
            image = self.array(name)
            if image is not None:
                return tuple(image.shape[:2])
        return None

    def text_boxes(self) -> list[Box]:
        """The burned-in text boxes (half-open, see ``core.boxes``); [] when none."""
        try:
            return boxes_from_json(self.json("text_boxes"))
        except InputError as exc:
            raise UpdpError(f"case {self.case_id}: artifact text_boxes is malformed ({exc})") \
                from None

    def text_mask(self, shape: tuple[int, int] | None = None) -> np.ndarray | None:
        """bool mask of the burned-in text boxes (always regenerated by the filter): the
        pixels the pipeline filled. ``shape`` defaults to the images' (None when the case
        has no image)."""
        shape = self.shape() if shape is None else shape
        return None if shape is None else boxes_mask(self.text_boxes(), shape)


def encode_array(array: np.ndarray) -> bytes:
    """The bytes an array artifact is stored as (``.npy``, no pickles): what
    :meth:`ReviewStore.put_array` writes, so that work done elsewhere stores the same file."""
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def encode_json(value) -> bytes:
    """The bytes a JSON artifact is stored as (keys sorted, UTF-8)."""
    return json.dumps(value, sort_keys=True).encode("utf-8")


def put_array(store, case_id: str, name: str, array: np.ndarray, signature=None) -> str:
    path = store.put_artifact(encode_array(array), suffix=".npy")
    store.set_artifact(case_id, name, path, signature)
    return path


def put_json(store, case_id: str, name: str, value, signature=None) -> str:
    path = store.put_artifact(encode_json(value), suffix=".json")
    store.set_artifact(case_id, name, path, signature)
    return path


def put_text(store, case_id: str, name: str, text: str, signature=None) -> str:
    path = store.put_artifact(text.encode("utf-8"), suffix=".txt")
    store.set_artifact(case_id, name, path, signature)
    return path


def image_risk_verdict(table: dict | None, labels) -> dict | None:
    """None when a counterpart keeping the findings with mask ``labels`` (values of the label
    image: ``FINDINGS[v - 1]``) may be shared as an image under the filter's ``table`` (its
    card's ``image_risk``); else ``{"findings", "reason"}`` in words for the reviewer."""
    from ..core.vocabulary import FINDINGS

    names = [FINDINGS[v - 1] if 0 < v <= len(FINDINGS) else f"region {v}" for v in labels]
    if not names:
        return None
    if not isinstance(table, dict) or not isinstance(table.get("per_finding"), dict):
        return {"findings": names,
                "reason": "the filter's card holds no measured re-identification risk of kept "
                          "regions (updp evaluate-filter --record-risk), so a kept "
                          + ", ".join(names) + " region cannot be shown safe"}
    reasons, risky = [], []
    for name in names:
        rec = table["per_finding"].get(name)
        if not isinstance(rec, dict):
            risky.append(name)
            reasons.append(f"{name}: not measured")
        elif rec.get("shareable") is not True:
            risky.append(name)
            reasons.append(f"the kept {name} region re-identified patients at "
                           f"{rec.get('ratio', float('nan')):.1f}x chance (top-1 "
                           f"{rec.get('top1', float('nan')):.3f}, chance "
                           f"{rec.get('chance', float('nan')):.3f}, {rec.get('queries', '?')} studies)")
    if not risky:
        return None
    where = table.get("measured_on") or {}
    on = f" in evaluation on cohort seed {where['seed']}" if "seed" in where else ""
    return {"findings": risky, "reason": "; ".join(reasons) + on}
