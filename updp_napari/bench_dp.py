"""``updp bench dp``: the whole private-training evaluation, timed on this machine.

Two fresh cohorts of ``studies`` studies over five sites (one study per patient, so the
unit of privacy is a patient): the models are trained with ``updp train-dp`` on four of the
sites for every ε, and evaluated with ``updp evaluate-dp`` on the other cohort (the fifth
site is off-site). The result holds the seconds of each stage, the AUROC figures, and the
targets: every run spends its ε to within 0.05, the ε = 8 AUROC is within 0.05 of the
non-private one, and the whole evaluation takes under 20 minutes.
"""

from __future__ import annotations

import math
import os
import tempfile
import time

from .core.errors import UpdpError

TARGET_SECONDS = 20 * 60.0


def bench_dp(studies: int = 300, size: int = 256, epsilons: tuple[float, ...] = (1, 3, 8, math.inf),
             epochs: int | None = None, batch: int | None = None, seed: int = 4242,
             threads: int = 1, progress=None) -> dict:
    """Seconds and figures of train-dp + evaluate-dp on fresh cohorts (see the module);
    ``epochs`` and ``batch`` default to train-dp's."""
    from .cohort.generate import make_cohort
    from .scoring.dp import DP_BATCH, DP_EPOCHS, train_dp
    from .scoring.dp_evaluate import evaluate_dp

    epochs = DP_EPOCHS if epochs is None else epochs
    batch = DP_BATCH if batch is None else batch

    if studies < 20:
        raise UpdpError("bench dp: studies must be at least 20 (four per site)")
    seconds: dict = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="updp-bench-dp-") as tmp:
        train, test = os.path.join(tmp, "train"), os.path.join(tmp, "test")
        t = time.perf_counter()
        make_cohort(train, patients=studies, studies=1, seed=seed, size=size, sites=5)
        make_cohort(test, patients=studies, studies=1, seed=seed + 1, size=size, sites=5)
        seconds["cohorts"] = time.perf_counter() - t
        t = time.perf_counter()
        summary = train_dp(train, os.path.join(tmp, "models"), epsilons=epsilons, epochs=epochs,
                           batch_size=batch, sites=["site_a", "site_b", "site_c", "site_d"],
                           seed=seed, threads=threads, progress=progress)
        seconds["train"] = time.perf_counter() - t
        t = time.perf_counter()
        result = evaluate_dp([os.path.join(tmp, "models")], test, threads=threads)
        seconds["evaluate"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - started
    runs = {}
    for m in result["models"]:
        name = os.path.basename(m["folder"])
        run, a = summary["runs"][name], m["auroc"]
        runs[name] = {"epsilon_target": run["epsilon"], "epsilon_spent": run["privacy"]["epsilon_spent"],
                      "noise_multiplier": run["privacy"]["noise_multiplier"],
                      "steps": run["privacy"]["steps"],
                      "expected_batch": run["privacy"]["expected_batch"],
                      "train_seconds": run["seconds"], "auroc": a["all"], "in_site": a["in_site"],
                      "off_site": a["off_site"], "drop": a["drop"],
                      "equalized_odds": m["equalized_odds"],
                      "size_vs_auroc_loss": m["size_vs_auroc_loss"]["pearson_r"]}
    spent_ok = all(r["epsilon_spent"] is None or abs(r["epsilon_spent"] - r["epsilon_target"]) <= 0.05
                   for r in runs.values())
    reference = runs.get("eps-inf", {}).get("auroc", {}).get("auroc")
    at8 = runs.get("eps-8", {}).get("auroc", {}).get("auroc")
    gap8 = None if reference is None or at8 is None else round(reference - at8, 4)
    return {"benchmark": "dp", "studies_per_cohort": studies, "sites": 5,
            "training_studies": summary["studies"], "delta": summary["delta"], "size": size,
            "epochs": epochs, "batch": batch, "seed": seed, "threads": threads, "repeats": 1,
            "seconds": {k: round(v, 1) for k, v in seconds.items()}, "runs": runs,
            "auroc_gap_eps8_vs_inf": gap8,
            "targets": {"epsilon_spent_within_0.05": spent_ok,
                        "eps8_within_0.05_of_non_private": None if gap8 is None else gap8 <= 0.05,
                        "under_20_minutes": seconds["total"] < TARGET_SECONDS}}
