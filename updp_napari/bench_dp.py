"""``updp bench dp``: the whole private-training evaluation, timed on this machine.

Three fresh cohorts over five sites, one study per patient (so the unit of privacy is a
patient): a *public* one of ``public_studies`` studies, rendered at the size the models
read (it stands for a public archive; no budget covers it), and two of ``studies`` studies,
one to train on (the "hospital's" private studies: its first four sites) and one to test
on (its fifth site is off-site). On the private studies, ``updp train-dp`` trains for every ε

- from random weights, every parameter (``random/``);
- from a base trained without privacy on the public cohort, its decoder alone
  (``public-base/``, ``--base … --tune decoder``): what a hospital with a few hundred
  studies should run;
- and, as the strongest non-private reference, from the base with every parameter at ε = ∞
  (``public-base-all/``).

``updp evaluate-dp`` scores all of them and the base alone on the test cohort. The result
holds the seconds of each stage, the AUROC figures, and the targets: every run spends its ε
to within 0.05, ε = 8 from the public base is within 0.05 of the best non-private model
trained on the same studies, and the whole evaluation takes under 20 minutes. The gap of
the random start, which small cohorts leave at chance, is reported beside it.
"""

from __future__ import annotations

import math
import os
import tempfile
import time

from .core.errors import UpdpError

TARGET_SECONDS = 20 * 60.0
#: Studies of the public cohort the base is trained on.
PUBLIC_STUDIES = 1200
TRAINING_SITES = ("site_a", "site_b", "site_c", "site_d")


def bench_dp(studies: int = 300, size: int = 256, epsilons: tuple[float, ...] = (1, 3, 8, math.inf),
             epochs: int | None = None, batch: int | None = None, seed: int = 4242,
             threads: int = 1, public_studies: int = PUBLIC_STUDIES, progress=None) -> dict:
    """Seconds and figures of train-dp + evaluate-dp on fresh cohorts (see the module);
    ``epochs`` and ``batch`` default to train-dp's; cohorts of seeds ``seed`` (training),
    ``seed`` + 1 (test) and ``seed`` + 2 (public); ``public_studies`` 0: no public base.
    ``progress(stage, done, total)`` hears of each training run's steps ("random/eps-8")."""
    from .cohort.generate import make_cohort, read_ground_truth
    from .scoring.dp import DP_BATCH, DP_EPOCHS, DP_SIZE, train_dp
    from .scoring.dp_evaluate import evaluate_dp

    epochs = DP_EPOCHS if epochs is None else epochs
    batch = DP_BATCH if batch is None else batch

    if studies < 20:
        raise UpdpError("bench dp: studies must be at least 20 (four per site)")
    if public_studies and public_studies < max(10, batch):
        raise UpdpError(f"bench dp: public studies must be 0 (none) or at least 10 (two per site) "
                        f"and the batch of {batch}")
    seconds: dict = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="updp-bench-dp-") as tmp:
        train, test, public = (os.path.join(tmp, name) for name in ("train", "test", "public"))
        t = time.perf_counter()
        make_cohort(train, patients=studies, studies=1, seed=seed, size=size, sites=5)
        # Refused before any training: the batch is a share of the training studies.
        training = sum(r.get("site") in TRAINING_SITES for r in read_ground_truth(train))
        if batch > training:
            raise UpdpError(f"bench dp: the batch of {batch} is more than the {training} studies "
                            f"of sites a-d among {studies}: use --studies "
                            f"{math.ceil(batch * 1.5 / 4) * 5} or more")
        make_cohort(test, patients=studies, studies=1, seed=seed + 1, size=size, sites=5)
        if public_studies:
            make_cohort(public, patients=public_studies, studies=1, seed=seed + 2, size=DP_SIZE,
                        sites=5)
        seconds["cohorts"] = time.perf_counter() - t
        options = dict(epochs=epochs, batch_size=batch, seed=seed, threads=threads)

        def report(plan: str):  # train-dp's (ε folder, done, total), named by its plan
            return None if progress is None else \
                lambda name, done, total: progress(f"{plan}/{name}", done, total)

        base = os.path.join(tmp, "base")
        if public_studies:
            t = time.perf_counter()
            train_dp(public, base, epsilons=[math.inf], progress=report("base"), **options)
            seconds["base"] = time.perf_counter() - t
        t = time.perf_counter()
        plans = [("random", epsilons, {})]
        if public_studies:
            start = os.path.join(base, "eps-inf")
            plans += [("public-base", epsilons, {"base": start, "tune": "decoder"}),
                      ("public-base-all", [math.inf], {"base": start, "tune": "all"})]
        summaries = {name: train_dp(train, os.path.join(tmp, name), epsilons=budgets,
                                    sites=list(TRAINING_SITES), progress=report(name),
                                    **kwargs, **options)
                     for name, budgets, kwargs in plans}
        seconds["train"] = time.perf_counter() - t
        t = time.perf_counter()
        folders = [os.path.join(tmp, name) for name, _, _ in plans]
        if public_studies:
            folders.append(os.path.join(base, "eps-inf"))
        result = evaluate_dp(folders, test, threads=threads)
        seconds["evaluate"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - started
    runs: dict[str, dict] = {}
    base_alone = None
    for m in result["models"]:
        name = os.path.relpath(m["folder"], tmp)
        a = m["auroc"]
        figures = {"auroc": a["all"], "in_site": a["in_site"], "off_site": a["off_site"],
                   "drop": a["drop"], "equalized_odds": m["equalized_odds"],
                   "size_vs_auroc_loss": m["size_vs_auroc_loss"]["pearson_r"]}
        if name == os.path.join("base", "eps-inf"):
            base_alone = figures
            continue
        plan, folder = os.path.split(name)
        run = summaries[plan]["runs"][folder]
        runs[name] = {"epsilon_target": run["epsilon"],
                      "epsilon_spent": run["privacy"]["epsilon_spent"],
                      "noise_multiplier": run["privacy"]["noise_multiplier"],
                      "steps": run["privacy"]["steps"],
                      "expected_batch": run["privacy"]["expected_batch"],
                      "train_seconds": run["seconds"], **figures}

    def auroc(name: str) -> float | None:
        return (runs.get(name) or {}).get("auroc", {}).get("auroc")

    def gap(reference: float | None, private: float | None) -> float | None:
        return None if reference is None or private is None else round(reference - private, 4)

    spent_ok = all(r["epsilon_spent"] is None or abs(r["epsilon_spent"] - r["epsilon_target"]) <= 0.05
                   for r in runs.values())
    non_private = [v for name, r in runs.items() if r["epsilon_target"] is None
                   and (v := auroc(name)) is not None]
    strongest = max(non_private) if non_private else None
    recommended = "public-base" if public_studies else "random"
    gaps = {"random": gap(auroc("random/eps-inf"), auroc("random/eps-8"))}
    if public_studies:
        gaps["public-base"] = gap(auroc("public-base/eps-inf"), auroc("public-base/eps-8"))
    gaps["eps8_vs_strongest_non_private"] = gap(strongest, auroc(f"{recommended}/eps-8"))
    at_target = gaps["eps8_vs_strongest_non_private"]
    return {"benchmark": "dp", "studies_per_cohort": studies, "sites": 5,
            "training_studies": summaries["random"]["studies"],
            "public_studies": public_studies, "delta": summaries["random"]["delta"],
            "size": size, "epochs": epochs, "batch": batch, "seed": seed, "threads": threads,
            "repeats": 1, "seconds": {k: round(v, 1) for k, v in seconds.items()},
            "runs": runs, "public_base_alone": base_alone, "recommended": recommended,
            "strongest_non_private_auroc": strongest, "auroc_gap_eps8": gaps,
            "targets": {"epsilon_spent_within_0.05": spent_ok,
                        "eps8_within_0.05_of_non_private": None if at_target is None
                        else at_target <= 0.05,
                        "under_20_minutes": seconds["total"] < TARGET_SECONDS}}
