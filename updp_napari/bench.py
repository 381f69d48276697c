"""``updp bench``: timings of real work, reported as medians over repeats, as JSON."""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

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


def bench_report(reports: int = 200, repeat: int = 3, ner_model: str | None = None) -> dict:
    """Reports per second of the rule de-identifier (detect and replace), one process; with
    ``ner_model`` (a folder made by ``updp train-ner``) also with the model detector added."""
    from .cohort.generate import make_cohort, read_ground_truth
    from .deid.report import ReportDeidentifier
    from .deid.report.header import read_header
    from .ingest import read_report

    if reports < 1 or repeat < 1:
        raise UpdpError("bench report: --studies and --repeat must be at least 1")
    rules = ReportDeidentifier()
    runs = [("rules", rules, False), ("rules_with_header", rules, True)]
    if ner_model:
        from .deid.report.ner import NerDetector

        with_model = ReportDeidentifier(extra_detectors=[NerDetector(ner_model)])
        runs += [("rules_with_model", with_model, False),
                 ("rules_with_model_and_header", with_model, True)]
    with tempfile.TemporaryDirectory(prefix="updp-bench-") as tmp:
        root = os.path.join(tmp, "cohort")
        per_patient = min(5, reports)
        make_cohort(root, patients=max(1, reports // per_patient), studies=per_patient, seed=99,
                    size=64, sites=5)
        records = read_ground_truth(root)
        texts = [read_report(os.path.join(root, r["report"])) for r in records]
        headers = [read_header(os.path.join(root, r["image"])) for r in records]
    result = {"benchmark": "report", "reports": len(texts),
              "mean_characters": round(sum(map(len, texts)) / len(texts)), "repeats": repeat,
              "machine": _machine()}
    for label, deid, use_header in runs:
        deid.detect(texts[0], headers[0])  # compile patterns, load lexicons, warm the model
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


def bench_dicom(studies: int = 200, size: int = 256, repeat: int = 3, ocr_files: int = 20) -> dict:
    """Files per second of ``deid-dicom``: header only, beside dicognito on the same files in
    the same run, and with the OCR pixel scan (on the first ``ocr_files`` files)."""
    from .cohort.generate import make_cohort
    from .deid.dicom import DicomDeidentifier, input_files

    if studies < 1 or repeat < 1:
        raise UpdpError("bench dicom: --studies and --repeat must be at least 1")
    key = bytes(range(32))
    result = {"benchmark": "dicom", "repeats": repeat, "machine": _machine()}
    with tempfile.TemporaryDirectory(prefix="updp-bench-") as tmp:
        root = os.path.join(tmp, "cohort")
        per_patient = min(5, studies)
        make_cohort(root, patients=max(1, studies // per_patient), studies=per_patient, seed=7,
                    size=size, sites=5)
        files = [(p, rel) for p, rel in input_files(Path(root))
                 if p.suffix == ".dcm"]
        result.update(files=len(files), size=size)
        out = os.path.join(tmp, "out")
        header_only = DicomDeidentifier(key, pixels="off")

        def ours(subset):
            for path, rel in subset:
                record = header_only.deidentify_file(path, Path(out) / rel, rel)
                if record.status != "ok":
                    raise UpdpError(f"bench dicom: {rel} was skipped ({record.reason})")

        runs = {"updp_header": ours}
        try:
            import dicognito.anonymizer
            import pydicom

            anonymizer = dicognito.anonymizer.Anonymizer()

            def dicognito_run(subset):
                for path, rel in subset:
                    ds = pydicom.dcmread(path)
                    anonymizer.anonymize(ds)
                    target = os.path.join(tmp, "dicognito", rel)
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    ds.save_as(target)

            runs["dicognito_header"] = dicognito_run
        except ImportError:
            result["dicognito_header"] = "not installed (pip install dicognito)"
        for run in runs.values():
            run(files[:1])  # load tables and lexicons outside the timing, for both tools
        # The tools take turns, repeat by repeat, so that a busy moment of a shared machine
        # falls on both; wall and CPU time are both kept.
        wall: dict[str, list[float]] = {name: [] for name in runs}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(repeat):
            for name, run in runs.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                run(files)
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
        for name in runs:
            median = statistics.median(wall[name])
            result[name] = {"seconds": [round(s, 3) for s in wall[name]],
                            "median_seconds": round(median, 3),
                            "files_per_second": round(len(files) / median, 1),
                            "cpu_seconds": [round(s, 3) for s in cpu[name]],
                            "median_cpu_seconds": round(statistics.median(cpu[name]), 3)}
        if "dicognito_header" in runs:
            result["cpu_speed_ratio_vs_dicognito"] = round(
                result["dicognito_header"]["median_cpu_seconds"]
                / result["updp_header"]["median_cpu_seconds"], 2)
            result["speed_ratio_vs_dicognito"] = round(
                result["updp_header"]["files_per_second"]
                / result["dicognito_header"]["files_per_second"], 2)
        from .deid.pixels import tesseract_available

        if tesseract_available() and ocr_files > 0:
            with_ocr = DicomDeidentifier(key, pixels="ocr")
            subset = files[:ocr_files]
            start = time.perf_counter()
            for path, rel in subset:
                with_ocr.deidentify_file(path, Path(out) / rel, rel)
            seconds = time.perf_counter() - start
            result["updp_with_ocr"] = {"files": len(subset), "seconds": round(seconds, 3),
                                       "files_per_second": round(len(subset) / seconds, 2)}
        else:
            result["updp_with_ocr"] = "tesseract not installed"
    return result


def run_benchmark(what: str, args) -> dict:
    if what == "cohort":
        return bench_cohort(args.studies, args.size, args.repeat)
    if what == "dicom":
        return bench_dicom(args.studies, args.size, args.repeat)
    if what == "report":
        return bench_report(args.studies, args.repeat, getattr(args, "ner_model", None))
    raise UpdpError(f"unknown benchmark {what!r}")
