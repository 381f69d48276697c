"""``updp eval-report``: the report de-identifier scored against a cohort's ground truth."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from ..cohort.generate import read_ground_truth
from ..core.errors import InputError
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
    from ..deid.report.header import read_header

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
        text = read_report(cohort / r["report"])
        header = read_header(cohort / r["image"]) if use_header else None
        pred = deid.detect(text, header)
        gold = r["phi_spans"]
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
