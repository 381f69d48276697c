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


def bench_report(reports: int = 200, repeat: int = 3) -> dict:
    """Reports per second of the rule de-identifier (detect and replace), one process."""
    from .cohort.generate import make_cohort, read_ground_truth
    from .deid.report import ReportDeidentifier
    from .deid.report.header import read_header
    from .ingest import read_report

    if reports < 1 or repeat < 1:
        raise UpdpError("bench report: --studies and --repeat must be at least 1")
    with tempfile.TemporaryDirectory(prefix="updp-bench-") as tmp:
        root = os.path.join(tmp, "cohort")
        per_patient = min(5, reports)
        make_cohort(root, patients=max(1, reports // per_patient), studies=per_patient, seed=99,
                    size=64, sites=5)
        records = read_ground_truth(root)
        texts = [read_report(os.path.join(root, r["report"])) for r in records]
        headers = [read_header(os.path.join(root, r["image"])) for r in records]
    deid = ReportDeidentifier()
    deid.detect(texts[0], headers[0])  # compile patterns and load lexicons outside the timing
    result = {"benchmark": "report", "reports": len(texts),
              "mean_characters": round(sum(map(len, texts)) / len(texts)), "repeats": repeat,
              "machine": _machine()}
    for label, use_header in (("rules", False), ("rules_with_header", True)):
        seconds = []
        for _ in range(repeat):
            start = time.perf_counter()
            for text, header in zip(texts, headers):
                deid.deidentify(text, header if use_header else None, mode="tag")
            seconds.append(time.perf_counter() - start)
        median = statistics.median(seconds)
        result[label] = {"seconds": [round(s, 4) for s in seconds], "median_seconds": round(median, 4),
                         "reports_per_second": round(len(texts) / median, 1)}
    result["target_reports_per_second"] = 2000
    return result


def run_benchmark(what: str, args) -> dict:
    if what == "cohort":
        return bench_cohort(args.studies, args.size, args.repeat)
    if what == "report":
        return bench_report(args.studies, args.repeat)
    raise UpdpError(f"unknown benchmark {what!r}")
