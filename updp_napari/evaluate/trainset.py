"""``updp search-trainset``: search a pool of labelled studies, without its labels, for a
training set that serves a group the pool under-represents, and measure whether it does.

The search is unsupervised. It sees the features of the pool's images and of the target
group's images (unlabelled, and not told which pool studies belong to which group):

1. every image becomes a feature vector from one of the project's own encoders
   (``FEATURES``: the shipped pathology scorer's pooled encoder, or the re-identification
   scorer's embedding, which holds the anatomy), standardised and reduced to ``dims``
   principal components fitted on pool and target together;
2. the pool is cut into ``clusters`` equal-size clusters (``balanced_kmeans``: k-means whose
   assignment fills every cluster to the same size, deterministic for a seed);
3. each cluster's Fréchet distance to the target images (``frechet_distance``: means and
   covariances, the covariances shrunk toward a multiple of the identity so a cluster of a
   few dozen studies has one);
4. clusters are added greedily (``greedy_union``), each step the one that brings the union
   nearest the target, while the union's distance falls; the distance after each step is the
   curve;
5. the union is cut to ``budget`` studies: whole clusters in the order they were added, the
   last one's studies nearest the target first (and when the union is smaller than the
   budget, the clusters the greedy order adds next fill it).

The comparison uses the pool's labels, for training only: the same small classifier
``evaluate-utility`` trains (``scoring.pathology``) on (a) the searched subset, (b) random
subsets of the same size (``random_draws`` of them: mean and spread) and (c) the whole
pool, each tested on the target cohort's held-out patients' originals. It reports the macro
AUROC on the target group's studies and on the majority group's, and the gap (majority minus
target), with 95 % patient-bootstrap intervals, and the gap's difference between the
searched set and the others bootstrapped on the same resampled patients.

A source is a cohort folder (its originals) or ``COHORT=WORKSPACE`` (the workspace's
counterparts of the cohort's studies, those without one left out; the labels, groups and
held-out originals come from the cohort, as in ``evaluate-utility``). The target cohort's
patients are split per site: a ``test_share`` is held out for testing; the others'
target-group images are what the search looks for. When the target cohort is also in the
pool, its non-test patients are split again: ``reference_share`` of them give the target
images and leave the pool, the rest stay in it; the held-out patients never enter the pool.
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

#: Where features come from: the shipped (or given) scorers' encoders, or the shape part of
#: the shipped filter's domain description.
FEATURES = ("reid", "pathology", "anatomy")
#: The images are read at this size; each encoder and the classifier resize from it.
READ_SIZE = 128
GAP_TARGET = "the target group's AUROC gap to the majority smaller with the searched set " \
             "than with random subsets of the same size and than with the whole pool"

Progress = Callable[[str, int, int], None]


# --- the search ------------------------------------------------------------------------------

def balanced_kmeans(x: np.ndarray, k: int, seed: int = 0, iterations: int = 100) -> np.ndarray:
    """int [N]: the cluster of each row of ``x`` [N, D], ``k`` clusters whose sizes differ by
    at most one (equal when ``k`` divides N). k-means++ seeding from ``seed``, then rounds
    of a capacity-bound assignment (every (row, cluster) pair, nearest first, taken while the
    cluster has room) and centroid updates, until the assignment stops changing."""
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or not len(x):
        raise InputError(f"balanced_kmeans: expected rows of features [N, D], got shape {x.shape}")
    n = len(x)
    if not 1 <= k <= n:
        raise InputError(f"clusters must be between 1 and the number of studies ({n}); got {k}")
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(n)]]
    for _ in range(1, k):
        d2 = np.min(((x[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
        total = d2.sum()
        pick = rng.choice(n, p=d2 / total) if total > 0 else rng.integers(n)
        centres.append(x[pick])
    centres = np.asarray(centres)
    labels = np.full(n, -1)
    for _ in range(iterations):
        d2 = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
        new = _capacity_assignment(d2, k)
        if np.array_equal(new, labels):
            break
        labels = new
        centres = np.stack([x[labels == c].mean(axis=0) for c in range(k)])
    return labels


def _capacity_assignment(d2: np.ndarray, k: int) -> np.ndarray:
    """Each row to a cluster, nearest pairs first, every cluster taking ``n // k`` rows and
    ``n % k`` of them one more."""
    n = len(d2)
    base, extra = divmod(n, k)
    labels = np.full(n, -1)
    counts = np.zeros(k, int)
    for flat in np.argsort(d2, axis=None, kind="stable"):
        row, c = divmod(int(flat), k)
        if labels[row] >= 0:
            continue
        if counts[c] < base or (counts[c] == base and extra > 0):
            if counts[c] == base:
                extra -= 1
            labels[row] = c
            counts[c] += 1
    return labels


def _covariance(x: np.ndarray) -> np.ndarray:
    """The sample covariance shrunk toward ``trace / D`` times the identity by ``D / (N + D)``
    (a small set's covariance is mostly noise), plus a small ridge so it is never singular."""
    n, d = x.shape
    cov = np.cov(x, rowvar=False).reshape(d, d) if n > 1 else np.zeros((d, d))
    scale = max(float(np.trace(cov)) / d, 1e-6)
    shrink = d / (n + d)
    return (1 - shrink) * cov + shrink * scale * np.eye(d) + 1e-6 * np.eye(d)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between the Gaussians fitted to the rows of ``a`` and of ``b``
    (``|m_a - m_b|² + tr(C_a + C_b - 2 (C_a C_b)^½)``), with the covariances regularised as
    ``_covariance`` says; 0 for one set against itself."""
    from scipy import linalg

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or not len(a) or not len(b):
        raise InputError(f"frechet_distance: expected two sets of features [N, D] with the same "
                         f"D, got {a.shape} and {b.shape}")
    ca, cb = _covariance(a), _covariance(b)
    root = linalg.sqrtm(ca @ cb)
    if np.iscomplexobj(root):
        root = root.real
    if not np.isfinite(root).all():
        ridge = 1e-4 * np.eye(len(ca))
        root = linalg.sqrtm((ca + ridge) @ (cb + ridge)).real
    diff = a.mean(axis=0) - b.mean(axis=0)
    value = float(diff @ diff + np.trace(ca) + np.trace(cb) - 2.0 * np.trace(root))
    return max(value, 0.0)


@dataclass
class SearchResult:
    """What ``search_pool`` found: ``chosen`` indices into the pool (at most the budget),
    ``clusters`` the cluster of each pool study, ``curve`` the union's distance after each
    greedy step (every cluster, the steps after ``stop`` included), ``stop`` the number of
    steps kept (the distance fell up to there)."""

    chosen: np.ndarray
    clusters: np.ndarray
    cluster_distances: list[float]
    curve: list[dict]
    stop: int
    chosen_distance: float
    filled_past_stop: bool


def greedy_union(pool: np.ndarray, clusters: np.ndarray, target: np.ndarray) -> list[dict]:
    """The greedy order: start with nothing, each step add the cluster that brings the
    union's Fréchet distance to ``target`` lowest. One entry per step: ``cluster``,
    ``studies`` (in the union), ``distance`` (of the union)."""
    remaining = sorted(set(np.asarray(clusters).tolist()))
    union = np.zeros(len(pool), bool)
    curve = []
    while remaining:
        best = min(remaining, key=lambda c: (frechet_distance(pool[union | (clusters == c)], target), c))
        union |= clusters == best
        remaining.remove(best)
        curve.append({"cluster": int(best), "studies": int(union.sum()),
                      "distance": frechet_distance(pool[union], target)})
    return curve


def search_pool(pool: np.ndarray, target: np.ndarray, budget: int, clusters: int = 8,
                seed: int = 0) -> SearchResult:
    """The search on feature vectors (``pool`` [N, D], ``target`` [M, D]): balanced clusters,
    the greedy union while its distance falls, cut to ``budget`` studies."""
    pool, target = np.asarray(pool, np.float64), np.asarray(target, np.float64)
    if not 1 <= budget <= len(pool):
        raise InputError(f"budget must be between 1 and the pool's {len(pool)} studies; got {budget}")
    labels = balanced_kmeans(pool, clusters, seed=seed)
    distances = [frechet_distance(pool[labels == c], target) for c in range(clusters)]
    curve = greedy_union(pool, labels, target)
    stop = 1
    while stop < len(curve) and curve[stop]["distance"] < curve[stop - 1]["distance"]:
        stop += 1
    # Clusters in the greedy order; past ``stop`` only as far as the budget needs.
    kept = stop
    while kept < len(curve) and curve[kept - 1]["studies"] < budget:
        kept += 1
    order = [step["cluster"] for step in curve[:kept]]
    centre = target.mean(axis=0)
    precision = np.linalg.inv(_covariance(target))
    chosen: list[int] = []
    for c in order:
        rows = np.flatnonzero(labels == c)
        if len(chosen) + len(rows) > budget:
            z = pool[rows] - centre
            near = np.einsum("ij,jk,ik->i", z, precision, z)
            rows = rows[np.argsort(near, kind="stable")[:budget - len(chosen)]]
        chosen.extend(rows.tolist())
        if len(chosen) >= budget:
            break
    chosen_rows = np.array(sorted(chosen), int)
    return SearchResult(chosen_rows, labels, distances, curve, stop,
                        frechet_distance(pool[chosen_rows], target), kept > stop)


# --- features --------------------------------------------------------------------------------

def study_features(images: np.ndarray, kind: str = "reid",
                   scorers: str | os.PathLike | None = None, batch_size: int = 64) -> np.ndarray:
    """float32 [N, D]: one vector per image from what the project already computes:
    ``reid``, the re-identification scorer's unit embedding (the anatomy that stays with a
    patient); ``pathology``, the pathology scorer's last encoder map pooled by mean and by
    maximum (what its training head reads); ``anatomy``, the scores of a 32-pixel thumbnail
    on the shipped filter's domain components (``synth.domain``: the anatomy's shape). The
    scorers are the shipped ones, or those in the folder ``scorers``."""
    if kind not in FEATURES:
        raise InputError(f"features must be one of {', '.join(FEATURES)}; got {kind!r}")
    if kind == "anatomy":
        return _anatomy_features(images)
    import torch

    from ..scoring.networks import as_batch
    from ..scoring.scorers import load_scorers

    loaded = load_scorers(scorers)
    if kind == "reid":
        return loaded.reid.embed(images, batch_size=batch_size)
    scorer = loaded.pathology
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            last = scorer.model.encoder(as_batch(images[i:i + batch_size], scorer.input_size))
            out.append(torch.cat([last.mean(dim=(2, 3)), last.amax(dim=(2, 3))], 1))
    return torch.cat(out).numpy()


def _anatomy_features(images: np.ndarray) -> np.ndarray:
    from ..synth import domain as dm
    from ..synth import masks as mk
    from ..synth.filter import SHIPPED_MODEL

    description = dm.Domain.load(SHIPPED_MODEL)
    if description is None:
        raise InputError(f"{SHIPPED_MODEL}: the shipped filter has no domain description")
    side = int(np.sqrt(description.thumb_mean.size))
    thumbs = np.stack([mk.resize(np.clip(mk.as_image(im), 0.0, 1.0), (side, side)).ravel()
                       for im in images]).astype(np.float64)
    return ((thumbs - description.thumb_mean) @ description.components.T).astype(np.float32)


def reduce_features(pool: np.ndarray, target: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Both sets standardised and projected on the first ``dims`` principal components of
    the two together (no labels involved)."""
    both = np.concatenate([pool, target]).astype(np.float64)
    mean, scale = both.mean(axis=0), both.std(axis=0)
    keep = scale > 1e-8
    z = (both[:, keep] - mean[keep]) / scale[keep]
    dims = max(1, min(dims, z.shape[1], len(z) - 1))
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    projected = z @ vt[:dims].T
    return projected[:len(pool)], projected[len(pool):]


# --- sources ---------------------------------------------------------------------------------

@dataclass
class Studies:
    """Studies from one or more sources, index-aligned. ``images`` are what training sees
    (originals, or a workspace's counterparts); ``originals`` what a test sees."""

    images: np.ndarray
    originals: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    patients: np.ndarray   # "<cohort>|<patient>": unique across cohorts
    studies: np.ndarray
    sites: np.ndarray
    groups: np.ndarray
    source: np.ndarray     # the spec each study came from
    label_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.patients)

    def take(self, rows: np.ndarray) -> Studies:
        return Studies(self.images[rows], self.originals[rows], self.labels[rows], self.masks[rows],
                       self.patients[rows], self.studies[rows], self.sites[rows], self.groups[rows],
                       self.source[rows], self.label_names)


def parse_source(spec: str | os.PathLike) -> tuple[Path, Path | None]:
    """(cohort, workspace or None) from ``COHORT`` or ``COHORT=WORKSPACE``."""
    text = str(spec)
    if "=" in text and not Path(text).exists():
        cohort, workspace = text.split("=", 1)
        return Path(cohort), Path(workspace)
    return Path(text), None


def load_source(spec: str | os.PathLike, progress: Progress | None = None) -> Studies:
    """A source's studies (see the module's docstring). Raises InputError naming the folder
    when it is absent, empty, a workspace given without its cohort, or not a cohort."""
    from ..cohort.generate import read_ground_truth
    from ..review.store import DATABASE

    cohort, workspace = parse_source(spec)
    if not cohort.is_dir():
        raise InputError(f"{cohort}: no such folder")
    if (cohort / DATABASE).is_file():
        raise InputError(f"{cohort}: is a workspace; give it with the cohort it was run on, "
                         f"as COHORT=WORKSPACE (the labels and groups are the cohort's)")
    if not any(cohort.iterdir()):
        raise InputError(f"{cohort}: the folder is empty")
    records = read_ground_truth(cohort)
    if not records:
        raise InputError(f"{cohort}: the cohort holds no studies")
    say = (lambda stage: (lambda d, t: progress(f"{stage} {cohort.name}", d, t))) if progress else None
    if workspace is None:
        from ..cohort.dataset import load_cohort_images

        data = load_cohort_images(cohort, size=READ_SIZE, progress=say("reading") if say else None)
        images, originals = data.images, data.images
        labels, masks, patients = data.labels, data.masks, np.array(data.patients)
        label_names, sites = tuple(data.label_names), np.array(data.sites)
        keep = np.ones(len(records), bool)
    else:
        from .utility import load_utility_data

        data = load_utility_data(cohort, workspace, size=READ_SIZE,
                                 progress=(lambda s, d, t: progress(f"{s} {cohort.name}", d, t))
                                 if progress else None)
        images, originals = data.counterparts, data.originals
        labels, masks, patients = data.labels, data.masks, data.patients
        label_names, sites = data.label_names, data.attributes["site"]
        keep = data.has_counterpart
    groups = np.array([str(r.get("demographics", {}).get("group", "?")) for r in records])
    studies = Studies(images, originals, labels, masks,
                      np.array([f"{cohort.resolve()}|{p}" for p in patients]),
                      np.array([r["study_id"] for r in records]), np.asarray(sites), groups,
                      np.array([str(spec)] * len(records)), label_names)
    return studies.take(np.flatnonzero(keep))


def _concatenate(parts: Sequence[Studies]) -> Studies:
    names = {p.label_names for p in parts}
    if len(names) != 1:
        raise InputError("the pool's cohorts name different findings; they cannot train one classifier")
    return Studies(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("images", "originals", "labels", "masks", "patients", "studies",
                               "sites", "groups", "source")), parts[0].label_names)


# --- the whole evaluation --------------------------------------------------------------------

def search_trainset(target: str | os.PathLike, group: str, pools: Sequence[str | os.PathLike],
                    budget: int, *, clusters: int = 8, features: str = "reid", dims: int = 4,
                    scorers: str | os.PathLike | None = None, compare: bool = True,
                    random_draws: int = 5, seeds: Sequence[int] = (0,), epochs: int = 12,
                    size: int = 64, test_share: float = 0.4, reference_share: float = 0.3,
                    bootstrap: int = 1000, seed: int = 0, progress: Progress | None = None) -> dict:
    """Search ``pools`` for ``budget`` studies like ``group``'s images in ``target``, then
    (``compare``) train on them, on random subsets and on the whole pool and test on the
    target's held-out patients; the figures as a JSON-ready dict (see the module's
    docstring)."""
    from .utility import split_patients

    if not pools:
        raise InputError("give at least one pool folder")
    if budget < 1 or clusters < 1 or dims < 1 or random_draws < 1 or epochs < 1 or size < 16 \
            or bootstrap < 0 or not seeds:
        raise InputError("search_trainset: budget, clusters, dims, random_draws and epochs ≥ 1, "
                         "size ≥ 16, bootstrap ≥ 0 and at least one seed")
    if not 0.0 < reference_share < 1.0:
        raise InputError(f"reference_share must be between 0 and 1 (got {reference_share})")
    if features not in FEATURES:
        raise InputError(f"features must be one of {', '.join(FEATURES)}; got {features!r}")
    started = time.perf_counter()
    tgt = load_source(target, progress)
    if not (tgt.groups == group).any():
        present = ", ".join(sorted(set(tgt.groups.tolist())))
        raise InputError(f"{target}: holds no study of group {group!r} (its groups: {present})")
    test = split_patients(tgt.patients, tgt.sites, test_share, seed=seed)
    target_cohort = parse_source(target)[0].resolve()
    pool_parts = []
    overlap = False
    for spec in pools:
        part = load_source(spec, progress)
        if parse_source(spec)[0].resolve() == target_cohort:
            overlap = True
        pool_parts.append(part)
    reference = ~test
    if overlap:
        # The target's patients are split three ways: test, reference (the images searched
        # for) and pool; the first two never enter the pool.
        rest = np.flatnonzero(~test)
        share = min(reference_share, 0.99)
        picked = split_patients(tgt.patients[rest], tgt.sites[rest], share, seed=seed + 1)
        reference = np.zeros(len(test), bool)
        reference[rest[picked]] = True
    excluded = set(tgt.patients[test | reference].tolist())
    pool = _concatenate(pool_parts)
    pool = pool.take(np.flatnonzero(~np.isin(pool.patients, list(excluded))))
    if not len(pool):
        raise InputError("the pool holds no study once the target's own patients are left out")
    if budget > len(pool):
        raise InputError(f"budget {budget} is larger than the pool ({len(pool)} studies)")
    if clusters > len(pool):
        raise InputError(f"clusters {clusters} is more than the pool's {len(pool)} studies")
    query = np.flatnonzero(reference & (tgt.groups == group))
    if not len(query):
        where = f"test_share {test_share}" + (f", reference_share {reference_share}" if overlap else "")
        raise InputError(f"{target}: no study of group {group!r} among the patients whose images "
                         f"are searched for ({where}); the search has nothing to look for")
    test_rows = np.flatnonzero(test)
    test_groups = tgt.groups[test_rows]
    if not (test_groups == group).any():
        raise InputError(f"{target}: no held-out study of group {group!r}; nothing to test it on")
    others = [g for g in test_groups.tolist() if g != group]
    majority = max(sorted(set(others)), key=others.count) if others else None

    # The search: features of the pool and the target's images, no labels, no groups.
    t0 = time.perf_counter()
    if progress:
        progress("features", 0, 2)
    f_pool = study_features(pool.images, features, scorers)
    if progress:
        progress("features", 1, 2)
    f_target = study_features(tgt.images[query], features, scorers)
    if progress:
        progress("features", 2, 2)
    t1 = time.perf_counter()
    x_pool, x_target = reduce_features(f_pool, f_target, dims)
    found = search_pool(x_pool, x_target, budget, clusters, seed=seed)
    t2 = time.perf_counter()

    is_group = pool.groups == group
    cluster_info = [{"cluster": c, "studies": int((found.clusters == c).sum()),
                     "distance": _round(found.cluster_distances[c]),
                     "group_share": _round(is_group[found.clusters == c].mean())}
                    for c in range(clusters)]
    result: dict = {
        "target": str(target), "group": group, "majority_group": majority,
        "pools": [str(p) for p in pools],
        "settings": {"budget": budget, "clusters": clusters, "features": features, "dims":
                     int(x_pool.shape[1]), "random_draws": random_draws,
                     "seeds": [int(s) for s in seeds], "epochs": epochs, "size": size,
                     "test_share": test_share, "reference_share": reference_share if overlap
                     else None, "bootstrap": bootstrap, "seed": seed},
        "split": {"target_studies": int(len(tgt.patients)), "test_studies": int(len(test_rows)),
                  "test_group_studies": int((test_groups == group).sum()),
                  "test_majority_studies": int((test_groups == majority).sum()) if majority else 0,
                  "target_images_searched_for": int(len(query)), "pool_studies": int(len(pool)),
                  "target_in_pool": overlap},
        "search": {
            "chosen": [{"pool": str(pool.source[i]), "study": str(pool.studies[i])}
                       for i in found.chosen],
            "chosen_studies": int(len(found.chosen)),
            "curve": [{"step": k + 1, "cluster": s["cluster"], "studies": s["studies"],
                       "distance": _round(s["distance"]), "kept": k < found.stop}
                      for k, s in enumerate(found.curve)],
            "stopped_after": found.stop, "filled_past_stop": found.filled_past_stop,
            "chosen_distance": _round(found.chosen_distance),
            "whole_pool_distance": _round(frechet_distance(x_pool, x_target)),
            "clusters": cluster_info,
            "feature_seconds": round(t1 - t0, 2), "search_seconds": round(t2 - t1, 3),
            "seconds": round(t2 - t0, 2),
        },
        # Read from the groups the search never saw: did it find the group?
        "group_share": {"pool": _round(is_group.mean()),
                        "searched": _round(is_group[found.chosen].mean())},
    }
    if compare:
        result["comparison"] = _compare(pool, tgt, test_rows, found.chosen, group, majority,
                                        random_draws, seeds, epochs, size, bootstrap, seed,
                                        result, progress)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _round(value, places: int = 4):
    return None if value is None else round(float(value), places)


def _compare(pool: Studies, tgt: Studies, test_rows: np.ndarray, chosen: np.ndarray, group: str,
             majority: str | None, draws: int, seeds: Sequence[int], epochs: int, size: int,
             bootstrap: int, seed: int, result: dict, progress: Progress | None) -> dict:
    from ..scoring.pathology import train_pathology

    rng = np.random.default_rng(seed + 1000)
    subsets = {"searched": [chosen],
               "random": [np.sort(rng.choice(len(pool), len(chosen), replace=False))
                          for _ in range(draws)],
               "whole_pool": [np.arange(len(pool))]}
    x_test, y_test = tgt.originals[test_rows], tgt.labels[test_rows]
    total = sum(len(v) for v in subsets.values()) * len(seeds)
    done = 0
    predictions: dict[str, list[np.ndarray]] = {}
    for name, rows_list in subsets.items():
        for rows in rows_list:
            probs = []
            for s in seeds:
                scorer = train_pathology(pool.images[rows], pool.labels[rows], pool.label_names,
                                         pool.masks[rows], input_size=size, epochs=epochs,
                                         seed=int(s))
                probs.append(scorer.predict(x_test))
                done += 1
                if progress:
                    progress("training", done, total)
            predictions.setdefault(name, []).append(np.mean(probs, axis=0))
    is_group = pool.groups == group
    result["group_share"]["random"] = _round(np.mean([is_group[r].mean() for r in subsets["random"]]))
    groups = tgt.groups[test_rows]
    patients = tgt.patients[test_rows]

    # Every statistic below is built from one AUROC per (prediction, group, resample); the
    # bootstrap passes share their resamples, so each is computed once.
    memo: dict = {}

    def auroc(p, rows, g):
        key = (id(p), g, rows.tobytes())
        if key not in memo:
            picked = rows[groups[rows] == g]
            memo[key] = fairness.macro_auroc(p[picked], y_test[picked]) if len(picked) else None
        return memo[key]

    def stat(kind: str, preds: list[np.ndarray]):
        def value(rows):
            values = []
            for p in preds:
                t = auroc(p, rows, group)
                if kind == "target":
                    v = t
                else:
                    m = auroc(p, rows, majority) if majority else None
                    v = m if kind == "majority" else (None if m is None or t is None else m - t)
                if v is None:
                    return None
                values.append(v)
            return float(np.mean(values))
        return value

    def interval(statistic, boot_seed=0):
        if not bootstrap:
            return None
        low, high, _ = fairness.patient_bootstrap(statistic, patients, bootstrap, seed=boot_seed)
        return None if low is None else [_round(low), _round(high)]

    everything = np.arange(len(test_rows))
    out: dict = {}
    for name, preds in predictions.items():
        entry = {"train_studies": int(len(subsets[name][0]))}
        for kind in ("target", "majority", "gap"):
            statistic = stat(kind, preds)
            entry[f"{kind}_auroc" if kind != "gap" else "gap"] = _round(statistic(everything))
            entry[f"{kind}_interval" if kind != "gap" else "gap_interval"] = interval(statistic)
        if len(preds) > 1:
            per = [{k: _round(stat(k, [p])(everything)) for k in ("target", "majority", "gap")}
                   for p in preds]
            entry["per_draw"] = per
            for k in ("target", "majority", "gap"):
                values = [d[k] for d in per if d[k] is not None]
                entry[f"{k}_sd"] = _round(np.std(values)) if len(values) > 1 else None
        out[name] = entry

    def gap_difference(other: str) -> dict:
        a, b = stat("gap", predictions["searched"]), stat("gap", predictions[other])

        def diff(rows):
            x, y = a(rows), b(rows)
            return None if x is None or y is None else x - y
        return {"difference": _round(diff(everything)), "interval": interval(diff, 1)}

    searched_gap = out["searched"]["gap"]
    out["searched_gap_minus_random_gap"] = gap_difference("random")
    out["searched_gap_minus_whole_pool_gap"] = gap_difference("whole_pool")
    out["target"] = GAP_TARGET
    out["met"] = None if searched_gap is None or out["random"]["gap"] is None or \
        out["whole_pool"]["gap"] is None else bool(
            searched_gap < out["random"]["gap"] and searched_gap < out["whole_pool"]["gap"])
    return out


# --- the report ------------------------------------------------------------------------------

def summary_lines(result: dict) -> list[str]:
    """What the command prints: the split, the search, the comparison."""
    s, q = result["split"], result["search"]
    lines = [f"target {result['target']}: group {result['group']} ({s['target_images_searched_for']} "
             f"images searched for), tested on {s['test_studies']} held-out studies "
             f"({s['test_group_studies']} of {result['group']}, {s['test_majority_studies']} of "
             f"{result['majority_group']}); pool {s['pool_studies']} studies",
             f"search ({result['settings']['features']} features, {len(q['clusters'])} clusters): "
             f"{q['chosen_studies']} studies chosen, distance {q['chosen_distance']} "
             f"(whole pool {q['whole_pool_distance']}); {q['seconds']} s "
             f"({q['feature_seconds']} s features)",
             "  union distance per step: " + ", ".join(
                 f"{c['distance']}" + ("" if c["kept"] else "*") for c in q["curve"])
             + f"  (* past the stop{', used to fill the budget' if q['filled_past_stop'] else ''})"]
    share = result["group_share"]
    lines.append(f"share of {result['group']} (groups unseen by the search): pool {share['pool']}, "
                 f"searched {share['searched']}"
                 + (f", random {share['random']}" if "random" in share else ""))
    comp = result.get("comparison")
    if comp:
        def fmt(entry, key, iv_key):
            value, iv = entry.get(key), entry.get(iv_key)
            text = "n/a" if value is None else f"{value:.3f}"
            return text + (f" [{iv[0]:.3f}, {iv[1]:.3f}]" if iv else "")

        for name in ("searched", "random", "whole_pool"):
            e = comp[name]
            spread = f" (sd of the gap {e['gap_sd']})" if e.get("gap_sd") is not None else ""
            lines.append(f"  {name:<10} {e['train_studies']:>4} studies: {result['group']} AUROC "
                         f"{fmt(e, 'target_auroc', 'target_interval')}, {result['majority_group']} "
                         f"{fmt(e, 'majority_auroc', 'majority_interval')}, gap "
                         f"{fmt(e, 'gap', 'gap_interval')}{spread}")
        for key, what in (("searched_gap_minus_random_gap", "random"),
                          ("searched_gap_minus_whole_pool_gap", "whole pool")):
            lines.append(f"  gap, searched - {what}: {fmt(comp[key], 'difference', 'interval')}")
        lines.append(f"target ({comp['target']}): {'met' if comp['met'] else 'not met'}")
    lines.append(f"{result['seconds']} s")
    return lines
