"""``updp bench``: timings of real work, reported as medians over repeats, as JSON."""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time

from .core.errors import UpdpError


def _machine() -> dict:
    return {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "platform": platform.platform()}


def bench_cohort(studies: int = 200, size: int = 256, repeat: int = 3) -> dict:
    """Seconds to write a cohort of ``studies`` studies (10 per patient, 3 sites)."""
    from .cohort.generate import make_cohort

    if studies < 1 or repeat < 1:
        raise UpdpError("bench cohort: --studies and --repeat must be at least 1")
    per_patient = min(10, studies)
    patients = max(1, studies // per_patient)
    seconds = []
    for r in range(repeat):
        with tempfile.TemporaryDirectory(prefix="updp-bench-") as tmp:
            start = time.perf_counter()
            make_cohort(os.path.join(tmp, "cohort"), patients=patients, studies=per_patient,
                        seed=r, size=size, sites=3)
            seconds.append(time.perf_counter() - start)
    made = patients * per_patient
    median = statistics.median(seconds)
    return {"benchmark": "cohort", "studies": made, "size": size, "repeats": repeat,
            "seconds": [round(s, 3) for s in seconds], "median_seconds": round(median, 3),
            "studies_per_second": round(made / median, 2), "target_seconds": 60.0,
            "meets_target": median < 60.0 if made == 200 and size == 256 else None,
            "machine": _machine()}


def run_benchmark(what: str, args) -> dict:
    if what == "cohort":
        return bench_cohort(args.studies, args.size, args.repeat)
    raise UpdpError(f"unknown benchmark {what!r}")
