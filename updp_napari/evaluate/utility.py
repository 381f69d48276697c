"""``updp evaluate-utility``: does a classifier trained on the shared counterparts learn what
one trained on the originals learns, for every site and every subgroup?

The same small classifier (the project's pathology network, ``scoring.pathology``) is trained
under each condition and tested on the *originals* of held-out patients of every site:

* ``originals``: the training patients' originals, all sites (what sharing originals gives);
* ``counterparts``: their synthetic counterparts from the workspace (what the pipeline shares);
* per site (``sites=True``): ``local:S`` (site S's own originals alone), ``local+shared:S`` (S's
  originals and the other sites' counterparts: what joining the sharing gives S) and
  ``local+shared-originals:S`` (S's originals and the same studies of the other sites as
  originals: the upper bound sharing could reach), and the cross-site matrix of ``local:S``
  tested on each site.

Labels come from the cohort's ground truth; so do the subgroups (sex, age group, site, and the
population group, which the workspace does not hold: the shared header drops EthnicGroup and
the evaluation reads it from the cohort it evaluates). AUROC intervals are 95 % patient
bootstraps; a difference between two conditions is bootstrapped on the same resampled
patients. Each condition's prediction is the mean over ``seeds`` of the trained networks'.

The realism AUC: the same network trained to tell counterparts from originals, patient-grouped
cross-validation (a patient's originals and counterparts always in the same fold); 0.5 is
indistinguishable.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import fairness
from ..core.errors import InputError

#: Subgroup attributes, read from the cohort's ground truth.
ATTRIBUTES = ("sex", "age_group", "site", "group")
REALISM_GOAL = 0.75
PARITY_TARGET = 0.03  # counterparts vs originals, macro AUROC
GAIN_TARGET = 0.02  # local + shared vs local alone, on a small site

Progress = Callable[[str, int, int], None]


@dataclass
class UtilityData:
    """The cohort's studies at the classifier's input size, with their counterparts."""

    originals: np.ndarray       # float32 [N, s, s]
    counterparts: np.ndarray    # float32 [N, s, s]; zeros where has_counterpart is False
    has_counterpart: np.ndarray  # bool [N]
    labels: np.ndarray          # uint8 [N, L]
    masks: np.ndarray           # uint8 [N, s, s], bit j where label j lies
    patients: np.ndarray        # str [N]
    attributes: dict[str, np.ndarray]  # ATTRIBUTES -> str [N]
    label_names: tuple[str, ...]


def load_utility_data(cohort: str | os.PathLike, workspace: str | os.PathLike, size: int = 64,
                      progress: Progress | None = None) -> UtilityData:
    """The cohort's originals and the workspace's counterparts of them.

    Raises InputError when the workspace holds none of the cohort's studies, or holds them
    without a synthetic counterpart."""
    from ..cohort.dataset import load_cohort_images, resize
    from ..cohort.generate import read_ground_truth
    from ..ingest import quiet_pydicom
    from ..review.artifacts import CaseArtifacts
    from ..review.store import ReviewStore

    cohort = Path(cohort)
    records = read_ground_truth(cohort)
    quiet_pydicom()
    store = ReviewStore.open(workspace)
    try:
        images = load_cohort_images(
            cohort, size=size, progress=(lambda d, t: progress("originals", d, t)) if progress else None)
        cases = {c.case_id for c in store.cases()}
        n = len(records)
        synthetic = np.zeros_like(images.images)
        has = np.zeros(n, bool)
        matched = 0
        for i, rec in enumerate(records):
            case_id = study_case_id(cohort, rec, store)
            if case_id in cases:
                matched += 1
                image = CaseArtifacts(store, case_id).array("synthetic")
                if image is not None:
                    synthetic[i] = resize(np.asarray(image, np.float32), size)
                    has[i] = True
            if progress:
                progress("counterparts", i + 1, n)
    finally:
        store.close()
    if not matched:
        raise InputError(f"{workspace}: holds none of the studies of {cohort}; run "
                         f"updp run on that cohort into this workspace first")
    if not has.any():
        raise InputError(f"{workspace}: holds the cohort's studies but no synthetic counterpart "
                         "of any (all out of domain, failed, or not yet synthesized)")
    attributes = {
        "sex": np.array([r.get("demographics", {}).get("sex", "?") for r in records]),
        "age_group": np.array([r.get("demographics", {}).get("age_group", "?") for r in records]),
        "site": np.array(images.sites),
        "group": np.array([r.get("demographics", {}).get("group", "?") for r in records]),
    }
    return UtilityData(images.images, synthetic, has, images.labels, images.masks,
                       np.array(images.patients), attributes, tuple(images.label_names))


def study_case_id(cohort: Path, record: dict, store) -> str:
    """The id ``store`` gives the case of a cohort study (the pipeline keys cases by the
    StudyInstanceUID); an InputError naming the file when its header cannot be read."""
    import pydicom

    try:
        ds = pydicom.dcmread(cohort / record["image"], stop_before_pixels=True,
                             specific_tags=["StudyInstanceUID"])
        uid = str(ds.StudyInstanceUID)
    except Exception:  # any unreadable header is a value-free error
        raise InputError(f"{cohort / record['image']}: cannot read its StudyInstanceUID") \
            from None
    return store.case_id_for(uid)


def split_patients(patients: np.ndarray, sites: np.ndarray, test_share: float = 0.4,
                   seed: int = 0) -> np.ndarray:
    """bool [N]: the test studies — ``test_share`` of each site's patients (at least one),
    drawn with ``seed``; a patient's studies all fall on one side."""
    if not 0.0 < test_share < 1.0:
        raise InputError(f"test_share must be between 0 and 1 (got {test_share})")
    rng = np.random.default_rng(seed)
    test = np.zeros(len(patients), bool)
    for site in sorted(set(sites.tolist())):
        names = sorted(set(patients[sites == site].tolist()))
        order = rng.permutation(len(names))
        k = max(1, int(round(test_share * len(names)))) if len(names) > 1 else 0
        chosen = {names[j] for j in order[:k]}
        test |= np.isin(patients, list(chosen)) & (sites == site)
    return test


def _conditions(data: UtilityData, train: np.ndarray, sites: bool
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Condition name -> (rows, use the counterpart per row)."""
    out = {}
    rows = np.flatnonzero(train)
    out["originals"] = (rows, np.zeros(len(rows), bool))
    rows = np.flatnonzero(train & data.has_counterpart)
    out["counterparts"] = (rows, np.ones(len(rows), bool))
    if sites:
        site_of = data.attributes["site"]
        for s in sorted(set(site_of.tolist())):
            local = np.flatnonzero(train & (site_of == s))
            shared = np.flatnonzero(train & (site_of != s) & data.has_counterpart)
            both = np.concatenate([local, shared])
            out[f"local:{s}"] = (local, np.zeros(len(local), bool))
            out[f"local+shared:{s}"] = (both, np.r_[np.zeros(len(local), bool), np.ones(len(shared), bool)])
            out[f"local+shared-originals:{s}"] = (both, np.zeros(len(both), bool))
    return out


def evaluate_utility(cohort: str | os.PathLike, workspace: str | os.PathLike, *, sites: bool = False,
                     seeds: Sequence[int] = (0,), epochs: int = 12, size: int = 64,
                     test_share: float = 0.4, bootstrap: int = 1000, realism_folds: int = 3,
                     progress: Progress | None = None) -> dict:
    """Train under every condition, test on the originals of held-out patients; the figures
    as a JSON-ready dict (see the module's docstring)."""
    from ..scoring.pathology import train_pathology

    if epochs < 1 or size < 16 or bootstrap < 0 or realism_folds < 2 or not seeds:
        raise InputError("evaluate_utility: epochs ≥ 1, size ≥ 16, bootstrap ≥ 0, "
                         "realism_folds ≥ 2 and at least one seed")
    started = time.perf_counter()
    data = load_utility_data(cohort, workspace, size, progress)
    test = split_patients(data.patients, data.attributes["site"], test_share)
    train = ~test
    conditions = _conditions(data, train, sites)
    test_rows = np.flatnonzero(test)
    y_test = data.labels[test_rows]
    x_test = data.originals[test_rows]
    predictions: dict[str, np.ndarray] = {}
    thresholds: dict[str, np.ndarray] = {}
    per_seed: dict[str, list] = {}
    total = len(conditions) * len(seeds)
    done = 0
    for name, (rows, synthetic) in conditions.items():
        if len(rows) == 0:
            continue
        x = np.where(synthetic[:, None, None], data.counterparts[rows], data.originals[rows])
        probs, cuts = [], []
        for seed in seeds:
            scorer = train_pathology(x, data.labels[rows], data.label_names, data.masks[rows],
                                     input_size=size, epochs=epochs, seed=int(seed))
            p = scorer.predict(x_test)
            probs.append(p)
            cuts.append(scorer.thresholds)
            per_seed.setdefault(name, []).append(_round(fairness.macro_auroc(p, y_test)))
            done += 1
            if progress:
                progress("training", done, total)
        predictions[name] = np.mean(probs, axis=0)
        thresholds[name] = np.mean(cuts, axis=0)

    test_patients = data.patients[test_rows]
    boot = _Bootstrap(test_patients, y_test, bootstrap)
    result: dict = {
        "cohort": _describe(data, train, test),
        "settings": {"seeds": [int(s) for s in seeds], "epochs": epochs, "size": size,
                     "test_share": test_share, "bootstrap": bootstrap, "sites": sites,
                     "realism_folds": realism_folds},
        "conditions": {},
    }
    for name, (rows, synthetic) in conditions.items():
        if name not in predictions:
            continue
        p = predictions[name]
        result["conditions"][name] = {
            "train_studies": int(len(rows)), "train_counterparts": int(synthetic.sum()),
            **boot.macro(p), "per_seed_macro_auroc": per_seed[name],
            "per_finding": {label: boot.finding(p, j) for j, label in enumerate(data.label_names)},
        }
    result["comparisons"] = _comparisons(predictions, boot, data, train, sites)
    if sites:
        result["cross_site"] = _cross_site(predictions, data, test_rows)
    result["subgroups"] = _subgroups(predictions, thresholds, data, test_rows, train)
    result["realism"] = realism_auc(data, folds=realism_folds, epochs=epochs, size=size,
                                    seed=int(seeds[0]), bootstrap=bootstrap, progress=progress)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _round(value: float | None, places: int = 4) -> float | None:
    return None if value is None else round(float(value), places)


class _Bootstrap:
    """Patient-bootstrap intervals on the test set, the same resamples for every statistic."""

    def __init__(self, patients: np.ndarray, labels: np.ndarray, rounds: int):
        self.patients = patients
        self.labels = labels
        self.rounds = rounds

    def _interval(self, statistic) -> list | None:
        if not self.rounds:
            return None
        low, high, used = fairness.patient_bootstrap(statistic, self.patients, self.rounds, seed=0)
        return None if low is None else [_round(low), _round(high)]

    def macro(self, p: np.ndarray) -> dict:
        return {"macro_auroc": _round(fairness.macro_auroc(p, self.labels)),
                "interval": self._interval(lambda r: fairness.macro_auroc(p[r], self.labels[r]))}

    def finding(self, p: np.ndarray, j: int) -> dict:
        return {"auroc": _round(fairness.auroc_or_none(p[:, j], self.labels[:, j])),
                "positives": int(self.labels[:, j].sum()),
                "interval": self._interval(lambda r: fairness.auroc_or_none(p[r, j], self.labels[r, j]))}

    def difference(self, a: np.ndarray, b: np.ndarray, rows: np.ndarray | None = None) -> dict:
        """Macro AUROC of ``a`` minus that of ``b`` (on ``rows`` of the test set, default all)."""
        rows = np.arange(len(self.labels)) if rows is None else rows
        y = self.labels

        def diff(r):
            r = rows[r]
            x1, x2 = fairness.macro_auroc(a[r], y[r]), fairness.macro_auroc(b[r], y[r])
            return None if x1 is None or x2 is None else x1 - x2

        value = diff(np.arange(len(rows)))
        interval = None
        if self.rounds:
            low, high, _ = fairness.patient_bootstrap(diff, self.patients[rows], self.rounds, seed=1)
            interval = None if low is None else [_round(low), _round(high)]
        return {"difference": _round(value), "interval": interval}


def _comparisons(predictions, boot: _Bootstrap, data: UtilityData, train, sites: bool) -> dict:
    out = {}
    if "counterparts" in predictions:
        d = boot.difference(predictions["counterparts"], predictions["originals"])
        met = None if d["difference"] is None else abs(d["difference"]) <= PARITY_TARGET
        # The point estimate can meet the target while the data cannot tell: say which.
        shown = None if d["interval"] is None else bool(
            -PARITY_TARGET <= d["interval"][0] and d["interval"][1] <= PARITY_TARGET)
        out["counterparts_minus_originals"] = {**d, "target": f"|difference| <= {PARITY_TARGET}",
                                               "met": met, "interval_within_target": shown}
    if sites:
        site_of = data.attributes["site"]
        gains = {}
        for s in sorted(set(site_of.tolist())):
            a, b = predictions.get(f"local+shared:{s}"), predictions.get(f"local:{s}")
            if a is None or b is None:
                continue
            d = boot.difference(a, b)
            upper = predictions.get(f"local+shared-originals:{s}")
            gains[s] = {**d, "local_train_studies": int((train & (site_of == s)).sum()),
                        "upper_bound_difference": None if upper is None else
                        boot.difference(upper, b)["difference"],
                        "met": None if d["interval"] is None else
                        bool(d["difference"] >= GAIN_TARGET and d["interval"][0] > 0)}
        if gains:
            smallest = min(gains, key=lambda s: gains[s]["local_train_studies"])
            out["local_plus_shared_minus_local"] = {
                "per_site": gains, "smallest_site": smallest,
                "target": f"difference >= {GAIN_TARGET} with the interval above 0 on a small site",
                "met": gains[smallest]["met"]}
    return out


def _cross_site(predictions, data: UtilityData, test_rows: np.ndarray) -> dict:
    site_of = data.attributes["site"][test_rows]
    y = data.labels[test_rows]
    names = sorted(set(data.attributes["site"].tolist()))
    matrix, in_site, off_site, drop = [], {}, {}, {}
    for s in names:
        p = predictions.get(f"local:{s}")
        row = [None if p is None else _round(fairness.macro_auroc(p[site_of == t], y[site_of == t]))
               for t in names]
        matrix.append(row)
        own = row[names.index(s)]
        others = [v for t, v in zip(names, row) if t != s and v is not None]
        in_site[s] = own
        off_site[s] = _round(np.mean(others)) if others else None
        drop[s] = None if own is None or not others else _round(own - np.mean(others))
    values = [v for v in drop.values() if v is not None]
    return {"train_sites": names, "test_sites": names, "macro_auroc": matrix, "in_site": in_site,
            "off_site_mean": off_site, "in_minus_off_site": drop,
            "mean_in_minus_off_site": _round(np.mean(values)) if values else None}


def _subgroups(predictions, thresholds, data: UtilityData, test_rows, train) -> dict:
    y = data.labels[test_rows]
    out: dict = {}
    for name in ("originals", "counterparts"):
        if name not in predictions:
            continue
        p = predictions[name]
        predicted = p >= thresholds[name]
        per_attr = {}
        for attr in ATTRIBUTES:
            groups = data.attributes[attr][test_rows]
            rates = fairness.group_rates(predicted, y, groups)
            sizes = {g: r["n"] for g, r in rates.items()}
            per_attr[attr] = {
                "auroc": {g: {"n": v["n"], "auroc": _round(v["auroc"])}
                          for g, v in fairness.subgroup_auroc(p, y, groups).items()},
                "rates": {g: {k: _round(v) if isinstance(v, float) else v for k, v in r.items()}
                          for g, r in rates.items()},
                "parity_positive_rate": {g: _round(v) for g, v in fairness.parity_difference(
                    {g: r["positive_rate"] for g, r in rates.items()}, sizes).items()},
                "parity_accuracy": {g: _round(v) for g, v in fairness.parity_difference(
                    {g: r["accuracy"] for g, r in rates.items()}, sizes).items()},
                "equalized_odds_difference": _round(fairness.equalized_odds_difference(rates)),
            }
        out[name] = per_attr
    if "originals" in out and "counterparts" in out:
        pairs = []
        for attr in ATTRIBUTES:
            train_groups = data.attributes[attr][train]
            for g, v in out["originals"][attr]["auroc"].items():
                w = out["counterparts"][attr]["auroc"].get(g, {}).get("auroc")
                if v["auroc"] is None or w is None:
                    continue
                pairs.append({"attribute": attr, "subgroup": g,
                              "train_size": int((train_groups == g).sum()),
                              "loss": _round(v["auroc"] - w)})
        out["size_loss"] = {
            "pairs": pairs, "what": "loss = subgroup AUROC trained on originals minus on counterparts",
            "pearson": _round(fairness.pearson([q["train_size"] for q in pairs],
                                               [q["loss"] for q in pairs]))}
    return out


def realism_auc(data: UtilityData, folds: int = 3, epochs: int = 12, size: int = 64, seed: int = 0,
                bootstrap: int = 1000, progress: Progress | None = None) -> dict:
    """How well the pathology network, trained to tell counterparts from originals, tells
    them apart on patients it did not train on (patient-grouped ``folds``-fold)."""
    from ..scoring.pathology import train_pathology

    rows = np.flatnonzero(data.has_counterpart)
    patients = data.patients[rows]
    names = np.array(sorted(set(patients.tolist())))
    if len(names) < folds:
        return {"auc": None, "reason": f"fewer patients with counterparts ({len(names)}) than folds"}
    fold_of_name = np.random.default_rng(seed).permutation(len(names)) % folds
    fold = fold_of_name[np.searchsorted(names, patients)]
    scores = np.zeros(2 * len(rows), np.float64)
    for k in range(folds):
        fit, held = rows[fold != k], np.flatnonzero(fold == k)
        x = np.concatenate([data.originals[fit], data.counterparts[fit]])
        y = np.r_[np.zeros(len(fit)), np.ones(len(fit))][:, None]
        scorer = train_pathology(x, y, ("counterpart",), None, input_size=size, epochs=epochs,
                                 seed=seed)
        p = scorer.predict(np.concatenate([data.originals[rows[held]], data.counterparts[rows[held]]]))
        scores[held] = p[:len(held), 0]
        scores[len(rows) + held] = p[len(held):, 0]
        if progress:
            progress("realism", k + 1, folds)
    truth = np.r_[np.zeros(len(rows)), np.ones(len(rows))]
    both = np.r_[patients, patients]
    auc = fairness.auroc_or_none(scores, truth)
    interval = None
    if bootstrap:
        low, high, _ = fairness.patient_bootstrap(
            lambda r: fairness.auroc_or_none(scores[r], truth[r]), both, bootstrap, seed=2)
        interval = None if low is None else [_round(low), _round(high)]
    return {"auc": _round(auc), "interval": interval, "folds": folds, "pairs": int(len(rows)),
            "goal": REALISM_GOAL, "met": None if auc is None else bool(auc <= REALISM_GOAL)}


def _describe(data: UtilityData, train: np.ndarray, test: np.ndarray) -> dict:
    site_of = data.attributes["site"]
    return {
        "studies": int(len(data.patients)), "patients": int(len(set(data.patients.tolist()))),
        "train_studies": int(train.sum()), "test_studies": int(test.sum()),
        "with_counterpart": int(data.has_counterpart.sum()),
        "without_counterpart": int((~data.has_counterpart).sum()),
        "per_site": {s: {"train": int((train & (site_of == s)).sum()),
                         "test": int((test & (site_of == s)).sum())}
                     for s in sorted(set(site_of.tolist()))},
        "labels": list(data.label_names),
        "test_positives": {label: int(data.labels[test, j].sum())
                           for j, label in enumerate(data.label_names)},
    }


# --- the report ------------------------------------------------------------------------------

def summary_lines(result: dict) -> list[str]:
    """What the command prints: the headline figures with their intervals."""
    def fmt(entry: dict, key: str = "macro_auroc") -> str:
        value, iv = entry.get(key), entry.get("interval")
        text = "n/a" if value is None else f"{value:.3f}"
        return text + (f" [{iv[0]:.3f}, {iv[1]:.3f}]" if iv else "")

    c = result["cohort"]
    lines = [f"{c['studies']} studies, {c['patients']} patients; trained on {c['train_studies']}, "
             f"tested on the originals of {c['test_studies']} (held-out patients of every site); "
             f"{c['without_counterpart']} without a counterpart"]
    for name, entry in result["conditions"].items():
        lines.append(f"  {name:<32} macro AUROC {fmt(entry)}  ({entry['train_studies']} training studies)")
    comp = result["comparisons"]
    if "counterparts_minus_originals" in comp:
        d = comp["counterparts_minus_originals"]
        shown = {True: "; the interval is within it", False: "; the interval is not within it",
                 None: ""}[d.get("interval_within_target")]
        lines.append(f"counterparts - originals: {fmt(d, 'difference')}  target {d['target']}: "
                     f"{'met' if d['met'] else 'not met'}{shown}")
    if "local_plus_shared_minus_local" in comp:
        g = comp["local_plus_shared_minus_local"]
        for s, d in g["per_site"].items():
            lines.append(f"local+shared - local, {s} ({d['local_train_studies']} local studies): "
                         f"{fmt(d, 'difference')}; upper bound {d['upper_bound_difference']}")
        lines.append(f"  smallest site {g['smallest_site']}: target {g['target']}: "
                     f"{'met' if g['met'] else 'not met'}")
    if "cross_site" in result:
        lines.append(f"cross-site: in-site minus off-site macro AUROC, mean "
                     f"{result['cross_site']['mean_in_minus_off_site']}")
    for attr in ATTRIBUTES:
        sub = result["subgroups"].get("counterparts", {}).get(attr)
        if sub:
            parts = ", ".join(f"{g} {v['auroc']}" for g, v in sub["auroc"].items())
            lines.append(f"counterparts, AUROC by {attr}: {parts}; equalized-odds difference "
                         f"{sub['equalized_odds_difference']}")
    size_loss = result["subgroups"].get("size_loss")
    if size_loss:
        lines.append(f"subgroup training size vs AUROC loss: Pearson r {size_loss['pearson']}")
    r = result["realism"]
    lines.append(f"realism AUC (counterparts vs originals): {fmt(r, 'auc')}  goal <= {REALISM_GOAL}: "
                 f"{'met' if r.get('met') else 'not met'}")
    lines.append(f"{result['seconds']} s")
    return lines


def write_figures(result: dict, folder: str | os.PathLike) -> dict[str, Path]:
    """PNG plots (matplotlib, Agg): macro AUROC per condition with intervals, the cross-site
    heatmap, subgroup AUROC. Returns name -> path."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from ..core.files import private_folder

    folder = Path(folder)
    private_folder(folder)
    out = {}
    names = list(result["conditions"])
    values = [result["conditions"][n]["macro_auroc"] or 0.0 for n in names]
    errors = np.array([[v - (e["interval"] or [v, v])[0], (e["interval"] or [v, v])[1] - v]
                       for v, e in zip(values, (result["conditions"][n] for n in names))]).T
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1.5))
    ax.barh(names, values, xerr=errors, color="#4c72b0", capsize=3)
    ax.set_xlim(0.4, 1.0)
    ax.invert_yaxis()
    ax.set_xlabel("macro AUROC on held-out originals (95 % patient bootstrap)")
    fig.tight_layout()
    out["conditions"] = folder / "conditions.png"
    fig.savefig(out["conditions"], dpi=100)
    plt.close(fig)
    if "cross_site" in result:
        cs = result["cross_site"]
        m = np.array([[np.nan if v is None else v for v in row] for row in cs["macro_auroc"]])
        fig, ax = plt.subplots(figsize=(5, 4))
        im = ax.imshow(m, vmin=0.5, vmax=1.0, cmap="viridis")
        ax.set_xticks(range(len(cs["test_sites"])), cs["test_sites"], rotation=45)
        ax.set_yticks(range(len(cs["train_sites"])), cs["train_sites"])
        ax.set_xlabel("tested on")
        ax.set_ylabel("trained on (local originals)")
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if np.isfinite(m[i, j]):
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", color="w", fontsize=8)
        fig.colorbar(im, ax=ax, label="macro AUROC")
        fig.tight_layout()
        out["cross_site"] = folder / "cross_site.png"
        fig.savefig(out["cross_site"], dpi=100)
        plt.close(fig)
    subs = result["subgroups"]
    if "originals" in subs:
        labels, a, b = [], [], []
        for attr in ATTRIBUTES:
            for g, v in subs["originals"][attr]["auroc"].items():
                labels.append(f"{attr}={g}")
                a.append(v["auroc"] or np.nan)
                b.append((subs.get("counterparts", {}).get(attr, {}).get("auroc", {}).get(g, {})
                          .get("auroc")) or np.nan)
        fig, ax = plt.subplots(figsize=(8, 0.3 * len(labels) + 1.5))
        y = np.arange(len(labels))
        ax.barh(y - 0.2, a, height=0.4, label="trained on originals")
        ax.barh(y + 0.2, b, height=0.4, label="trained on counterparts")
        ax.set_yticks(y, labels)
        ax.set_xlim(0.4, 1.0)
        ax.invert_yaxis()
        ax.set_xlabel("macro AUROC within the subgroup")
        ax.legend(loc="lower right")
        fig.tight_layout()
        out["subgroups"] = folder / "subgroups.png"
        fig.savefig(out["subgroups"], dpi=100)
        plt.close(fig)
    return out


def write_html(result: dict, out: str | os.PathLike) -> dict[str, Path]:
    """A self-contained HTML report (the PNGs embedded as base64), the PNGs beside it in
    ``<out stem>_figures/``. Returns the PNG paths."""
    import base64
    import html
    import json

    from ..core.files import write_text_atomic

    out = Path(out)
    figures = write_figures(result, out.with_name(out.stem + "_figures"))
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>Utility evaluation</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style>",
             "</head><body><h1>Utility of the shared counterparts</h1><pre>",
             html.escape("\n".join(summary_lines(result))), "</pre>"]
    titles = {"conditions": "Macro AUROC per training condition",
              "cross_site": "Cross-site matrix (local originals)",
              "subgroups": "AUROC per subgroup"}
    for name, path in figures.items():
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(f"<h2>{titles[name]}</h2><img alt='{name}' src='data:image/png;base64,{data}'>")
    parts.append("<h2>Per finding</h2><table><tr><th>condition</th>" +
                 "".join(f"<th>{html.escape(label)}</th>" for label in result["cohort"]["labels"]) + "</tr>")
    for name, entry in result["conditions"].items():
        cells = "".join(f"<td>{_cell(v)}</td>" for v in entry["per_finding"].values())
        parts.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    parts.append("</table><h2>All figures (JSON)</h2><pre>" +
                 html.escape(json.dumps(result, indent=1, sort_keys=True)) + "</pre></body></html>")
    write_text_atomic(out, "".join(parts))
    return figures


def _cell(entry: dict) -> str:
    if entry["auroc"] is None:
        return "n/a"
    iv = entry.get("interval")
    return f"{entry['auroc']:.3f}" + (f" [{iv[0]:.2f}, {iv[1]:.2f}]" if iv else "")
