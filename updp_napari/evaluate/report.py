"""``updp eval-report``: the report de-identifier scored against a cohort's ground truth."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from ..cohort.generate import read_ground_truth
from ..core.errors import InputError
from ..core.files import input_file
from ..ingest import read_report


def _prf(tp_pred: int, n_pred: int, tp_gold: int, n_gold: int) -> dict:
    precision = tp_pred / n_pred if n_pred else 1.0
    recall = tp_gold / n_gold if n_gold else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def evaluate_reports(cohort: str | os.PathLike, deidentifier=None, use_header: bool = True,
                     progress: Callable[[int, int], None] | None = None) -> dict:
    """Precision, recall and F1 (span any-overlap, span exact, character), per category too,
    and how much protected pathology vocabulary stays intact."""
    from ..cohort.reports import EPONYMS
    from ..deid.report import ReportDeidentifier
    from ..deid.report.header_values import read_header

    cohort = Path(cohort)
    records = read_ground_truth(cohort)
    if not records:
        raise InputError(f"{cohort}: ground truth lists no studies")
    deid = deidentifier or ReportDeidentifier()
    eponyms = re.compile("|".join(re.escape(e) for e in EPONYMS))
    tally = {"gold": 0, "gold_hit": 0, "pred": 0, "pred_hit": 0, "gold_exact": 0, "pred_exact": 0,
             "char_gold": 0, "char_pred": 0, "char_both": 0, "protected": 0, "protected_kept": 0}
    per_category: dict[str, dict[str, int]] = {}
    false_sources: dict[str, int] = {}
    for n, r in enumerate(records, 1):
        if not isinstance(r.get("report"), str) or use_header and not isinstance(r.get("image"), str):
            raise InputError(f"{cohort}: ground truth line {n} names no report or image file")
        text = read_report(cohort / r["report"])
        header = read_header(cohort / r["image"]) if use_header else None
        pred = deid.detect(text, header)
        gold = _gold_spans(r.get("phi_spans"), len(text), f"{cohort}: ground truth line {n}")
        tally["gold"] += len(gold)
        tally["pred"] += len(pred)
        exact = {(s.start, s.end) for s in pred}
        for g in gold:
            hit = any(s.start < g["end"] and g["start"] < s.end for s in pred)
            cat = per_category.setdefault(g["category"], {"gold": 0, "hit": 0})
            cat["gold"] += 1
            cat["hit"] += hit
            tally["gold_hit"] += hit
            tally["gold_exact"] += (g["start"], g["end"]) in exact
        gold_exact = {(g["start"], g["end"]) for g in gold}
        for s in pred:
            ok = any(s.start < g["end"] and g["start"] < s.end for g in gold)
            tally["pred_hit"] += ok
            tally["pred_exact"] += (s.start, s.end) in gold_exact
            if not ok:
                false_sources[s.source] = false_sources.get(s.source, 0) + 1
        gold_chars = {i for g in gold for i in range(g["start"], g["end"]) if not text[i].isspace()}
        pred_chars = {i for s in pred for i in range(s.start, s.end) if not text[i].isspace()}
        tally["char_gold"] += len(gold_chars)
        tally["char_pred"] += len(pred_chars)
        tally["char_both"] += len(gold_chars & pred_chars)
        terms = set(deid.protected(text)) | {(m.start(), m.end()) for m in eponyms.finditer(text)}
        # A listed word that is PHI here ("Dr. Murphy") is no pathology term to keep.
        terms = {(s, e) for s, e in terms if not any(g["start"] < e and s < g["end"] for g in gold)}
        for s, e in terms:
            tally["protected"] += 1
            tally["protected_kept"] += not any(p.start < e and s < p.end for p in pred)
        if progress:
            progress(n, len(records))
    t = tally
    span = _prf(t["pred_hit"], t["pred"], t["gold_hit"], t["gold"])
    result = {
        **span,
        "reports": len(records),
        "gold_spans": t["gold"],
        "predicted_spans": t["pred"],
        "span_exact": _prf(t["pred_exact"], t["pred"], t["gold_exact"], t["gold"]),
        "character": _prf(t["char_both"], t["char_pred"], t["char_both"], t["char_gold"]),
        "whitelist_retention": round(t["protected_kept"] / t["protected"], 4) if t["protected"] else 1.0,
        "protected_terms": t["protected"],
        "per_category": {c: {"recall": round(v["hit"] / v["gold"], 4), "gold": v["gold"]}
                         for c, v in sorted(per_category.items())},
        "false_positives_by_source": dict(sorted(false_sources.items(), key=lambda kv: -kv[1])),
        "header_used": use_header,
    }
    return result


# --- Annotated corpora (JSONL) -------------------------------------------------------------
#
# A hospital scores the de-identifier on its own annotated sample: one JSON object a line,
# ``{"id": ..., "text": ..., "spans": [{"start", "end", "category"}, ...]}``. The convention:
# span recall = share of gold spans that any predicted span overlaps (exact-boundary recall and
# character recall beside it), over every category but the excluded ones (by default
# ``DateYear``: a year alone may stay under HIPAA Safe Harbor), which are reported apart;
# precision = share of predicted spans overlapping a gold span; over-redaction = share of the
# non-whitespace characters outside gold spans that were redacted. 95 % percentile intervals
# come from a bootstrap over patients (or notes).

DEFAULT_EXCLUDED = ("DateYear",)
_NOTE_ID = re.compile(r"^.+_([^_]+)_[^_]+$")


def patient_of(note_id: str) -> str | None:
    """The patient part of a note id of the form ``<anything>_<patient>_<note>``
    (``note_012_003`` → ``012``); None for ids of any other form."""
    m = _NOTE_ID.match(note_id)
    return m.group(1) if m else None


def read_corpus(path: str | os.PathLike) -> list[dict]:
    """The notes of an annotated JSONL corpus, checked. Errors name the file and line, never
    the text."""
    import json

    path = input_file(path)
    try:
        # JSON lines end at "\n" alone: a text may hold U+2028 or NEL unescaped.
        lines = [line.rstrip("\r") for line in path.read_text(encoding="utf-8-sig").split("\n")]
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    notes = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not JSON (column {exc.colno})") from None
        except (ValueError, RecursionError):  # nested past any depth, a number of 5,000 digits
            raise InputError(f"{where}: JSON this reader does not take (nested too deep or a "
                             f"number too long)") from None
        if not isinstance(obj, dict):
            raise InputError(f"{where}: not a JSON object")
        text = obj.get("text")
        if not isinstance(text, str):
            raise InputError(f"{where}: note has no text")
        note_id = obj.get("id")
        if not isinstance(note_id, str | int) or isinstance(note_id, bool) or note_id == "":
            raise InputError(f"{where}: note has no id")
        raw = obj.get("spans", [])
        if not isinstance(raw, list):
            raise InputError(f"{where}: spans is not a list")
        spans = []
        for i, s in enumerate(raw, 1):
            if not isinstance(s, dict):
                raise InputError(f"{where}: span {i} is not an object")
            start, end, cat = s.get("start"), s.get("end"), s.get("category")
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
                raise InputError(f"{where}: span {i} needs integer start and end")
            if not isinstance(cat, str) or not cat:
                raise InputError(f"{where}: span {i} has no category")
            if start >= end:
                raise InputError(f"{where}: span {i} has start >= end ({start} >= {end})")
            if start < 0 or end > len(text):
                raise InputError(f"{where}: span {i} out of range ({start}-{end}, text has "
                                 f"{len(text)} characters)")
            spans.append({"start": start, "end": end, "category": cat})
        notes.append({"id": str(note_id), "text": text, "spans": spans, "line": n})
    if not notes:
        raise InputError(f"{path}: no notes (empty file)")
    return notes


def _gold_spans(raw, length: int, where: str) -> list[dict]:
    """A cohort record's ``phi_spans``, checked against its report's length."""
    if not isinstance(raw, list):
        raise InputError(f"{where}: phi_spans is not a list")
    for i, g in enumerate(raw, 1):
        if not isinstance(g, dict) or not isinstance(g.get("category"), str) or not all(
                isinstance(g.get(k), int) and not isinstance(g.get(k), bool) for k in ("start", "end")):
            raise InputError(f"{where}: span {i} needs integer start and end and a category")
        if not 0 <= g["start"] < g["end"] <= length:
            raise InputError(f"{where}: span {i} out of range ({g['start']}-{g['end']}, the "
                             f"report has {length} characters)")
    return raw


def _ratio(num: float, den: float, digits: int = 4) -> float | None:
    return round(num / den, digits) if den else None


def _bootstrap(values, groups: int, resamples: int, seed: int, chunk_cells: int = 4_000_000):
    """Percentile 95 % intervals of ratios of sums. ``values``: (groups, 2k) array of
    numerator/denominator columns per group; returns k (low, high) pairs (None where undefined)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    k = values.shape[1] // 2
    draws = []
    step = max(1, chunk_cells // max(groups, 1))
    done = 0
    while done < resamples:
        b = min(step, resamples - done)
        weights = rng.multinomial(groups, np.full(groups, 1.0 / groups), size=b)
        draws.append(weights @ values)
        done += b
    sums = np.vstack(draws)
    out = []
    for j in range(k):
        num, den = sums[:, 2 * j], sums[:, 2 * j + 1]
        ok = den > 0
        if not ok.any():
            out.append(None)
            continue
        r = num[ok] / den[ok]
        out.append((float(np.percentile(r, 2.5)), float(np.percentile(r, 97.5))))
    return out


def evaluate_corpus(corpus: str | os.PathLike, deidentifier=None,
                    exclude_categories=DEFAULT_EXCLUDED, bootstrap: int = 1000,
                    bootstrap_by: str = "patient", seed: int = 0,
                    progress: Callable[[int, int], None] | None = None) -> dict:
    """Score ``deidentifier.detect(text)`` (no header) against an annotated JSONL corpus."""
    import time

    import numpy as np

    from ..deid.report import ReportDeidentifier

    if bootstrap_by not in ("patient", "note"):
        raise InputError(f"bootstrap over {bootstrap_by!r}: use 'patient' or 'note'")
    if bootstrap < 0:
        raise InputError(f"bootstrap {bootstrap}: the number of resamples cannot be negative")
    corpus = Path(corpus)
    notes = read_corpus(corpus)
    excluded = set(exclude_categories)
    deid = deidentifier or ReportDeidentifier()

    patients = [patient_of(note["id"]) for note in notes]
    by = "patient" if bootstrap_by == "patient" and all(p is not None for p in patients) else "note"
    keys = patients if by == "patient" else list(range(len(notes)))
    group_index: dict = {}
    note_group = [group_index.setdefault(key, len(group_index)) for key in keys]
    # Per group: span hits/gold, character hits/gold, over-redacted/outside characters.
    per_group = np.zeros((len(group_index), 6), dtype=np.int64)

    t = dict.fromkeys(("gold", "head", "head_hit", "head_exact", "pred", "pred_hit", "char_gold",
                       "char_hit", "outside", "over"), 0)
    per_category: dict[str, dict[str, int]] = {}
    fp_chars: dict[str, int] = {}
    detect_seconds = 0.0
    for n, note in enumerate(notes, 1):
        text, gold = note["text"], note["spans"]
        t0 = time.perf_counter()
        pred = deid.detect(text)
        detect_seconds += time.perf_counter() - t0

        nonws = np.fromiter((not c.isspace() for c in text), dtype=bool, count=len(text))
        gold_all = np.zeros(len(text), dtype=bool)
        gold_head = np.zeros(len(text), dtype=bool)
        redacted = np.zeros(len(text), dtype=bool)
        for g in gold:
            gold_all[g["start"]:g["end"]] = True
            if g["category"] not in excluded:
                gold_head[g["start"]:g["end"]] = True
        for s in pred:
            redacted[s.start:s.end] = True
        gold_all &= nonws
        gold_head &= nonws
        redacted &= nonws

        exact = {(s.start, s.end) for s in pred}
        head = hit_sum = 0
        for g in gold:
            hit = any(s.start < g["end"] and g["start"] < s.end for s in pred)
            cat = per_category.setdefault(g["category"], {"gold": 0, "hit": 0, "exact": 0})
            cat["gold"] += 1
            cat["hit"] += hit
            cat["exact"] += (g["start"], g["end"]) in exact
            if g["category"] not in excluded:
                head += 1
                hit_sum += hit
                t["head_exact"] += (g["start"], g["end"]) in exact
        for s in pred:
            t["pred_hit"] += any(s.start < g["end"] and g["start"] < s.end for g in gold)
            wrong = int((redacted[s.start:s.end] & ~gold_all[s.start:s.end]).sum())
            if wrong:
                fp_chars[s.source] = fp_chars.get(s.source, 0) + wrong
        char_gold = int(gold_head.sum())
        char_hit = int((gold_head & redacted).sum())
        outside = int((nonws & ~gold_all).sum())
        over = int((redacted & ~gold_all).sum())

        t["gold"] += len(gold)
        t["pred"] += len(pred)
        t["head"] += head
        t["head_hit"] += hit_sum
        t["char_gold"] += char_gold
        t["char_hit"] += char_hit
        t["outside"] += outside
        t["over"] += over
        per_group[note_group[n - 1]] += (hit_sum, head, char_hit, char_gold, over, outside)
        if progress:
            progress(n, len(notes))

    recall = _ratio(t["head_hit"], t["head"])
    char_recall = _ratio(t["char_hit"], t["char_gold"])
    over_redaction = _ratio(t["over"], t["outside"], 6)
    intervals = {"span_recall": None, "character_recall": None, "over_redaction": None}
    if bootstrap and len(group_index) > 1:
        lo_hi = _bootstrap(per_group.astype(float), len(group_index), bootstrap, seed)
        for (name, digits), ci in zip((("span_recall", 4), ("character_recall", 4),
                                       ("over_redaction", 6)), lo_hi, strict=True):
            intervals[name] = [round(ci[0], digits), round(ci[1], digits)] if ci else None
    top_fp = sorted(fp_chars.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    return {
        "corpus": str(corpus),
        "notes": len(notes),
        "patients": len(group_index) if by == "patient" else None,
        "gold_spans": t["gold"],
        "headline_spans": t["head"],
        "predicted_spans": t["pred"],
        "excluded_categories": sorted(excluded),
        "span_recall": recall,
        "span_recall_ci95": intervals["span_recall"],
        "span_exact_recall": _ratio(t["head_exact"], t["head"]),
        "character_recall": char_recall,
        "character_recall_ci95": intervals["character_recall"],
        "precision": _ratio(t["pred_hit"], t["pred"]),
        "over_redaction": over_redaction,
        "over_redaction_ci95": intervals["over_redaction"],
        "over_redacted_characters": t["over"],
        "outside_characters": t["outside"],
        "per_category": {c: {"recall": _ratio(v["hit"], v["gold"]),
                             "exact_recall": _ratio(v["exact"], v["gold"]),
                             "gold": v["gold"], "excluded": c in excluded}
                         for c, v in sorted(per_category.items())},
        "false_positive_characters_by_source": dict(top_fp),
        "bootstrap": {"resamples": bootstrap if len(group_index) > 1 else 0, "by": by,
                      "groups": len(group_index), "seed": seed, "method": "percentile"},
        "detect_seconds": round(detect_seconds, 4),
        "notes_per_second": round(len(notes) / detect_seconds, 1) if detect_seconds else None,
        "header_used": False,
    }


def format_corpus_result(result: dict) -> list[str]:
    """The corpus figures as a readable table (lines)."""

    def pct(v, digits=2):
        return "n/a" if v is None else f"{100 * v:.{digits}f} %"

    def ci(v, digits=2):
        return "" if not v else f"  (95 % CI {100 * v[0]:.{digits}f}–{100 * v[1]:.{digits}f} %)"

    b = result["bootstrap"]
    who = (f"{result['patients']} patients" if result["patients"] is not None else "")
    excl = ", ".join(result["excluded_categories"]) or "none"
    lines = [f"{result['notes']} notes{' of ' + who if who else ''}, {result['gold_spans']} gold "
             f"spans ({result['headline_spans']} in the headline; excluded: {excl}), "
             f"{result['predicted_spans']} predicted, no header"]
    rows = [("recall (any overlap)", pct(result["span_recall"]), ci(result["span_recall_ci95"])),
            ("recall (exact span)", pct(result["span_exact_recall"]), ""),
            ("character recall", pct(result["character_recall"]),
             ci(result["character_recall_ci95"])),
            ("precision", pct(result["precision"]), ""),
            ("over-redaction", pct(result["over_redaction"], 3),
             ci(result["over_redaction_ci95"], 3))]
    lines += [f"  {name:22s}{value:>10s}{interval}" for name, value, interval in rows]
    if b["resamples"]:
        lines.append(f"  (intervals: percentile bootstrap over {b['groups']} {b['by']}s, "
                     f"{b['resamples']} resamples, seed {b['seed']})")
    lines.append("  per category (recall, any overlap):")
    for cat, m in result["per_category"].items():
        note = "  (excluded from the headline)" if m["excluded"] else ""
        lines.append(f"    {cat:20s}{pct(m['recall']):>10s}  n={m['gold']}{note}")
    rate = result["notes_per_second"]
    lines.append(f"  detection: {result['detect_seconds']:.2f} s, "
                 f"{'n/a' if rate is None else f'{rate:,.1f}'} notes/s")
    fps = result["false_positive_characters_by_source"]
    if fps:
        lines.append("  false-positive characters by source:")
        lines += [f"    {src:28s}{count:>8d}" for src, count in fps.items()]
    return lines
