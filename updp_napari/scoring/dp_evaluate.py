"""``updp evaluate-dp``: what privacy costs the pathology classifier, and whom it costs.

For every model folder ``updp train-dp`` wrote (one per ε), on a test cohort:

- the macro AUROC over the findings on all test studies, on the studies of the sites the
  model was trained on (in-site) and of the others (off-site), each with a 95 % interval
  from a patient bootstrap (patients are resampled with all their studies);
- per subgroup (sex, age group, site, population group where the cohort records one): the
  macro AUROC, the positive rate, the true- and false-positive rates of the "abnormal"
  decision, the statistical parity difference (the group's positive rate minus the
  size-weighted mean rate of the other groups) and, per attribute, the equalized-odds
  difference (the largest gap between groups in true-positive or false-positive rate);
- the Pearson correlation, over all subgroups, between a subgroup's size in the test cohort
  and its AUROC loss against the non-private (ε = ∞) model.

The "abnormal" decision is: the highest finding probability of a study above the cut that
flags as many test studies as are truly abnormal. A private model keeps no threshold learned
from its training data (that would spend budget), and models of different ε are calibrated
differently; matching the rate compares their ranking, not their calibration.

The metrics are small numpy functions on plain arrays; ``evaluate_dp`` loads the models
(torch) and the cohort, ``write_html`` draws the page (matplotlib, PNGs inlined).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..core.fairness import macro_auroc, pearson

#: Demographic fields of a cohort's ground truth read as subgroups, in report order.
ATTRIBUTES = ("sex", "age_group", "site", "population_group")
#: Other spellings a cohort may use for the population group.
POPULATION_KEYS = ("population_group", "population", "group")


# --- metrics on arrays ---------------------------------------------------------------------

def patient_bootstrap(probabilities: np.ndarray, labels: np.ndarray, patients: Sequence[str],
                      repeats: int = 200, seed: int = 0, level: float = 0.95) -> dict:
    """Macro AUROC with a percentile interval: patients drawn with replacement, each with all
    of their studies. ``low``/``high`` are None when fewer than half the draws have an AUROC."""
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    point = macro_auroc(probabilities, labels)
    names, index = np.unique(np.asarray(patients), return_inverse=True)
    rows_of = [np.flatnonzero(index == k) for k in range(len(names))]
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(repeats):
        rows = np.concatenate([rows_of[k] for k in rng.integers(0, len(names), len(names))])
        value = macro_auroc(probabilities[rows], labels[rows])
        if value is not None:
            draws.append(value)
    low = high = None
    if point is not None and len(draws) >= repeats / 2:
        tail = (1 - level) / 2 * 100
        low, high = (float(v) for v in np.percentile(draws, [tail, 100 - tail]))
    return {"auroc": _round(point), "low": _round(low), "high": _round(high),
            "studies": int(len(labels)), "patients": int(len(names)), "repeats": repeats}


def positive_rates(decisions: np.ndarray, groups: Sequence[str]) -> dict[str, float]:
    """Share of positive decisions in each group."""
    decisions, groups = np.asarray(decisions, bool), np.asarray(groups)
    return {g: float(decisions[groups == g].mean()) for g in sorted(set(groups.tolist()))}


def statistical_parity(decisions: np.ndarray, groups: Sequence[str]) -> dict[str, float]:
    """Per group: its positive rate minus the size-weighted mean positive rate of the other
    groups (0 = parity; a single group has nothing to compare with and gets 0)."""
    decisions, groups = np.asarray(decisions, bool), np.asarray(groups)
    out = {}
    for g in sorted(set(groups.tolist())):
        inside, outside = decisions[groups == g], decisions[groups != g]
        out[g] = float(inside.mean() - outside.mean()) if outside.size else 0.0
    return out


def rates(decisions: np.ndarray, truth: np.ndarray) -> tuple[float | None, float | None]:
    """(true-positive rate, false-positive rate); None where a class is absent."""
    decisions, truth = np.asarray(decisions, bool), np.asarray(truth, bool)
    tpr = float(decisions[truth].mean()) if truth.any() else None
    fpr = float(decisions[~truth].mean()) if (~truth).any() else None
    return tpr, fpr


def equalized_odds(decisions: np.ndarray, truth: np.ndarray, groups: Sequence[str]) -> float | None:
    """The larger of the between-group ranges of the true-positive and the false-positive
    rate (0 = equal odds); None when no rate is defined in two groups."""
    groups = np.asarray(groups)
    tprs, fprs = [], []
    for g in sorted(set(groups.tolist())):
        tpr, fpr = rates(np.asarray(decisions)[groups == g], np.asarray(truth)[groups == g])
        if tpr is not None:
            tprs.append(tpr)
        if fpr is not None:
            fprs.append(fpr)
    gaps = [max(v) - min(v) for v in (tprs, fprs) if len(v) >= 2]
    return float(max(gaps)) if gaps else None


def rate_matched_decisions(probabilities: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """"Abnormal" where a study's highest finding probability is among the top k, k the
    number of truly abnormal studies (ties at the cut all count as positive)."""
    score = np.asarray(probabilities).max(axis=1)
    k = int(np.asarray(truth, bool).sum())
    if k == 0:
        return np.zeros(len(score), bool)
    cut = np.sort(score)[::-1][k - 1]
    return score >= cut


def _round(value, digits: int = 4):
    return None if value is None else round(float(value), digits)


# --- the evaluation ------------------------------------------------------------------------

def model_folders(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Each path is a model folder (``pathology/`` inside) or a ``train-dp`` output holding
    ``eps-*`` model folders; the model folders, in the order found."""
    from .dp import run_folders
    from .scorers import PATHOLOGY_DIR

    return run_folders(paths, lambda p: (p / PATHOLOGY_DIR).is_dir(),
                       "neither a model folder (pathology/) nor a folder of them (eps-*/) made "
                       "by updp train-dp")


def _test_groups(cohort: Path, records: list[dict]) -> dict[str, list[str]]:
    """Subgroup of each test study per attribute (attributes the cohort lacks left out)."""
    groups: dict[str, list[str]] = {}
    demographics = [r.get("demographics") or {} for r in records]
    for attribute in ATTRIBUTES:
        if attribute == "site":
            values = [str(r.get("site", "unknown")) for r in records]
        elif attribute == "population_group":
            values = [next((str(d[k]) for k in POPULATION_KEYS if d.get(k) is not None), None)
                      for d in demographics]
        else:
            values = [None if d.get(attribute) is None else str(d[attribute]) for d in demographics]
        if all(v is None for v in values):
            continue
        groups[attribute] = ["unknown" if v is None else v for v in values]
    return groups


def evaluate_dp(models: Sequence[str | os.PathLike], test: str | os.PathLike, *,
                size: int = 64, repeats: int = 200, seed: int = 0, threads: int = 1,
                progress: Callable[[int, int], None] | None = None) -> dict:
    """The figures of the module docstring for the model folders ``models`` (or train-dp
    outputs) on the test cohort ``test`` (a folder made by ``updp make-cohort``)."""
    import torch

    from ..cohort.dataset import load_cohort_images
    from ..cohort.generate import read_ground_truth
    from .pathology import PathologyScorer
    from .scorers import PATHOLOGY_DIR

    folders = model_folders(models)
    test = Path(test)
    data = load_cohort_images(test, size)
    records = read_ground_truth(test)
    groups = _test_groups(test, records)
    truth = data.labels.astype(bool).any(axis=1)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    runs = []
    try:
        for k, folder in enumerate(folders):
            scorer = PathologyScorer.load(folder / PATHOLOGY_DIR)
            if tuple(scorer.label_names) != tuple(data.label_names):
                raise InputError(f"{folder}: the model's findings differ from the test cohort's")
            runs.append((folder, scorer.card, scorer.predict(data.images)))
            if progress:
                progress(k + 1, len(folders))
    finally:
        torch.set_num_threads(threads_before)

    result = {"test": {"cohort": str(test), "studies": len(data), "patients": len(set(data.patients)),
                       "sites": sorted(set(data.sites)), "attributes": list(groups),
                       "bootstrap_repeats": repeats},
              "models": []}
    reference = None
    for folder, card, probs in runs:
        privacy = card.get("privacy") or {}
        trained_on = card.get("training_sites") or sorted(set(data.sites))
        in_site = np.array([s in set(trained_on) for s in data.sites])
        entry = {"folder": str(folder), "epsilon": privacy.get("target_epsilon"),
                 "epsilon_spent": privacy.get("epsilon_spent"), "delta": privacy.get("delta"),
                 "noise_multiplier": privacy.get("noise_multiplier"),
                 "training_studies": (card.get("training") or {}).get("images"),
                 "training_sites": trained_on}
        patients = np.asarray(data.patients)
        entry["auroc"] = {"all": patient_bootstrap(probs, data.labels, patients, repeats, seed)}
        for name, rows in (("in_site", in_site), ("off_site", ~in_site)):
            entry["auroc"][name] = (patient_bootstrap(probs[rows], data.labels[rows], patients[rows],
                                                      repeats, seed) if rows.any() else None)
        ins, off = entry["auroc"]["in_site"], entry["auroc"]["off_site"]
        entry["auroc"]["drop"] = (_round(ins["auroc"] - off["auroc"]) if ins and off and
                                  ins["auroc"] is not None and off["auroc"] is not None else None)
        decisions = rate_matched_decisions(probs, truth)
        entry["subgroups"], entry["equalized_odds"] = {}, {}
        for attribute, values in groups.items():
            values = np.asarray(values)
            parity = statistical_parity(decisions, values)
            table = {}
            for g in sorted(set(values.tolist())):
                rows = values == g
                tpr, fpr = rates(decisions[rows], truth[rows])
                table[g] = {"studies": int(rows.sum()),
                            "auroc": _round(macro_auroc(probs[rows], data.labels[rows])),
                            "positive_rate": _round(decisions[rows].mean()),
                            "tpr": _round(tpr), "fpr": _round(fpr),
                            "statistical_parity_difference": _round(parity[g])}
            entry["subgroups"][attribute] = table
            entry["equalized_odds"][attribute] = _round(equalized_odds(decisions, truth, values))
        if entry["epsilon"] is None and reference is None:
            reference = entry
        result["models"].append(entry)
    result["models"].sort(key=lambda e: math.inf if e["epsilon"] is None else e["epsilon"])
    for entry in result["models"]:
        entry["size_vs_auroc_loss"] = _size_vs_loss(entry, reference)
    return result


def _size_vs_loss(entry: dict, reference: dict | None) -> dict:
    """Pearson r between subgroup size and AUROC loss against the ε = ∞ model."""
    if reference is None:
        return {"pearson_r": None, "subgroups": 0, "note": "no ε = ∞ model to compare with"}
    sizes, losses = [], []
    for attribute, table in entry["subgroups"].items():
        for g, row in table.items():
            ref = reference["subgroups"].get(attribute, {}).get(g)
            if ref and ref["auroc"] is not None and row["auroc"] is not None:
                sizes.append(row["studies"])
                losses.append(ref["auroc"] - row["auroc"])
    return {"pearson_r": _round(pearson(sizes, losses)), "subgroups": len(sizes)}


# --- the page ------------------------------------------------------------------------------

def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _label(epsilon) -> str:
    return "ε = ∞" if epsilon is None else f"ε = {epsilon:g}"


def plots(result: dict) -> dict[str, str]:
    """Base64 PNGs: ``auroc_vs_epsilon`` and one ``subgroups_<attribute>`` per attribute."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = result["models"]
    finite = [m["epsilon"] for m in models if m["epsilon"] is not None]
    inf_x = (max(finite) * 2 if finite else 1.0)
    xs = [inf_x if m["epsilon"] is None else m["epsilon"] for m in models]
    out = {}
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for key, colour, shift in (("all", "black", 1.0), ("in_site", "tab:blue", 0.93),
                               ("off_site", "tab:orange", 1.07)):
        # Side by side, not on top of each other: the three share each ε.
        points = [(x * shift, m["auroc"][key]) for x, m in zip(xs, models) if m["auroc"].get(key)
                  and m["auroc"][key]["auroc"] is not None]
        if not points:
            continue
        x = [p[0] for p in points]
        y = [p[1]["auroc"] for p in points]
        low = [p[1]["auroc"] - (p[1]["low"] if p[1]["low"] is not None else p[1]["auroc"]) for p in points]
        high = [(p[1]["high"] if p[1]["high"] is not None else p[1]["auroc"]) - p[1]["auroc"] for p in points]
        ax.errorbar(x, y, yerr=[low, high], marker="o", capsize=3, color=colour,
                    label=key.replace("_", "-"))
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(xs)
    ax.set_xticklabels(["∞" if m["epsilon"] is None else f"{m['epsilon']:g}" for m in models])
    ax.set_xlabel("ε")
    ax.set_ylabel("macro AUROC (95 % patient bootstrap)")
    ax.axhline(0.5, color="grey", lw=0.5, ls=":")
    ax.legend(fontsize=8)
    ax.set_title("Pathology AUROC against the privacy budget")
    out["auroc_vs_epsilon"] = _png(fig)
    plt.close(fig)
    for attribute in result["test"]["attributes"]:
        names = sorted({g for m in models for g in m["subgroups"].get(attribute, {})})
        fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(names) * len(models) / 2 + 2), 3.5))
        width = 0.8 / max(1, len(models))
        for k, m in enumerate(models):
            table = m["subgroups"].get(attribute, {})
            y = [table.get(g, {}).get("auroc") or 0.0 for g in names]
            ax.bar(np.arange(len(names)) + k * width, y, width, label=_label(m["epsilon"]))
        ax.set_xticks(np.arange(len(names)) + width * (len(models) - 1) / 2)
        ax.set_xticklabels(names, fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("macro AUROC")
        ax.set_title(f"AUROC per {attribute.replace('_', ' ')}")
        ax.legend(fontsize=7)
        out[f"subgroups_{attribute}"] = _png(fig)
        plt.close(fig)
    return out


def _fmt(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _interval(a: dict | None) -> str:
    if not a or a["auroc"] is None:
        return "–"
    if a["low"] is None:
        return f"{a['auroc']:.3f}"
    return f"{a['auroc']:.3f} [{a['low']:.3f}, {a['high']:.3f}]"


def html_page(result: dict) -> str:
    """A self-contained HTML page: the tables and the plots (PNG inlined as base64)."""
    e = html.escape
    images = plots(result)
    t = result["test"]
    rows = "".join(
        f"<tr><td>{e(_label(m['epsilon']))}</td><td>{_fmt(m['epsilon_spent'])}</td>"
        f"<td>{_fmt(m['noise_multiplier'])}</td><td>{e(_interval(m['auroc']['all']))}</td>"
        f"<td>{e(_interval(m['auroc']['in_site']))}</td><td>{e(_interval(m['auroc']['off_site']))}</td>"
        f"<td>{_fmt(m['auroc']['drop'])}</td><td>{_fmt(m['size_vs_auroc_loss']['pearson_r'])}</td></tr>"
        for m in result["models"])
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Private training: evaluation"
        "</title><style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
        "font-size:13px;text-align:right}th{background:#eee}</style></head><body>",
        "<h1>Private training: what each budget costs</h1>",
        f"<p>Test cohort: {t['studies']} studies of {t['patients']} patients, sites "
        f"{e(', '.join(t['sites']))}; intervals from {t['bootstrap_repeats']} patient bootstrap "
        "draws. Off-site: studies of sites the model was not trained on.</p>",
        "<table><tr><th>budget</th><th>ε spent</th><th>σ</th><th>AUROC all</th><th>in-site</th>"
        "<th>off-site</th><th>in − off</th><th>r(size, loss)</th></tr>", rows, "</table>",
        f"<img alt='AUROC against epsilon' src='data:image/png;base64,{images['auroc_vs_epsilon']}'>",
    ]
    for attribute in t["attributes"]:
        parts.append(f"<h2>{e(attribute.replace('_', ' '))}</h2>")
        parts.append(f"<img alt='AUROC per {e(attribute)}' "
                     f"src='data:image/png;base64,{images['subgroups_' + attribute]}'>")
        parts.append("<table><tr><th>budget</th><th>group</th><th>studies</th><th>AUROC</th>"
                     "<th>positive rate</th><th>SPD</th><th>TPR</th><th>FPR</th></tr>")
        for m in result["models"]:
            for g, row in m["subgroups"].get(attribute, {}).items():
                parts.append(
                    f"<tr><td>{e(_label(m['epsilon']))}</td><td>{e(g)}</td><td>{row['studies']}</td>"
                    f"<td>{_fmt(row['auroc'])}</td><td>{_fmt(row['positive_rate'])}</td>"
                    f"<td>{_fmt(row['statistical_parity_difference'])}</td><td>{_fmt(row['tpr'])}</td>"
                    f"<td>{_fmt(row['fpr'])}</td></tr>")
            parts.append(f"<tr><td>{e(_label(m['epsilon']))}</td><td colspan='7' "
                         f"style='text-align:left'>equalized-odds difference "
                         f"{_fmt(m['equalized_odds'].get(attribute))}</td></tr>")
        parts.append("</table>")
    parts.append("<details><summary>all figures (JSON)</summary><pre>"
                 + e(json.dumps(result, indent=1)) + "</pre></details></body></html>")
    return "".join(parts)


def write_html(result: dict, out: str | os.PathLike) -> Path:
    from ..core.files import write_text_atomic

    out = Path(out)
    write_text_atomic(out, html_page(result))
    return out
