"""``updp bench``: timings of real work, reported as medians over repeats, as JSON."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from .core.errors import UpdpError


def _machine() -> dict:
    # The interpreter's own build matters to pure-Python timings: a distribution's optimised
    # build runs the report rules about 14 % faster than one compiled with default options.
    return {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "platform": platform.platform(),
            "python_interpreter": os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
            "python_build": " ".join(platform.python_build())}


def bench_cohort(studies: int = 200, size: int = 256, repeat: int = 3) -> dict:
    """Seconds to write a cohort of ``studies`` studies (10 per patient, 3 sites)."""
    from .cohort.generate import make_cohort

    if studies < 1 or repeat < 1:
        raise UpdpError("bench cohort: studies and repeat must be at least 1")
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


def bench_report(reports: int = 200, repeat: int = 3, ner_model: str | None = None,
                 corpus: str | None = None) -> dict:
    """Reports per second of the rule de-identifier (detect and replace), one process; with
    ``ner_model`` (a folder made by ``updp train-ner``) also with the model detector added;
    with ``corpus`` (an annotated JSONL corpus, as ``updp eval-report`` reads) also notes per
    second on its notes."""
    from .cohort.generate import make_cohort, read_ground_truth
    from .deid.report import ReportDeidentifier
    from .deid.report.detectors import clear_header_caches
    from .deid.report.header_values import read_header
    from .ingest import read_report

    if reports < 1 or repeat < 1:
        raise UpdpError("bench report: reports and repeat must be at least 1")
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
        seconds, cpu = [], []
        for _ in range(repeat):
            # Each study's header is new to the de-identifier, as in a real run: what it works
            # out from a header once (the values to look for) is timed too.
            fresh = [_fresh_header(h) for h in headers] if use_header else [None] * len(texts)
            clear_header_caches()  # within a pass, a value is new the first time, as in a run
            start, cpu_start = time.perf_counter(), time.process_time()
            for text, header in zip(texts, fresh):
                deid.deidentify(text, header, mode="tag")
            seconds.append(time.perf_counter() - start)
            cpu.append(time.process_time() - cpu_start)
        result[label] = _rates(seconds, cpu, len(texts), "reports")
    if corpus:
        from .evaluate.report import read_corpus

        notes = [note["text"] for note in read_corpus(corpus)]
        result["corpus"] = {"notes": len(notes),
                            "mean_characters": round(sum(map(len, notes)) / len(notes))}
        for label, deid, _ in runs:
            if label.endswith("_header"):
                continue  # a corpus has no DICOM headers
            seconds, cpu = [], []
            for _ in range(repeat):
                start, cpu_start = time.perf_counter(), time.process_time()
                for text in notes:
                    deid.deidentify(text, None, mode="tag")
                seconds.append(time.perf_counter() - start)
                cpu.append(time.process_time() - cpu_start)
            result["corpus"][label] = _rates(seconds, cpu, len(notes), "notes")
    result["target_reports_per_second"] = 2000
    return result


def _rates(seconds: list[float], cpu: list[float], count: int, unit: str) -> dict:
    """Median wall-clock and CPU rates of repeated passes over ``count`` items. On a shared
    machine the CPU rate is the steadier one: time taken by other work is not counted."""
    median, median_cpu = statistics.median(seconds), statistics.median(cpu)
    return {"seconds": [round(s, 4) for s in seconds], "median_seconds": round(median, 4),
            "cpu_seconds": [round(s, 4) for s in cpu], "median_cpu_seconds": round(median_cpu, 4),
            f"{unit}_per_second": round(count / median, 1),
            f"{unit}_per_cpu_second": round(count / median_cpu, 1)}


def _fresh_header(header):
    """A copy of ``header`` without what was worked out from it."""
    import dataclasses

    return type(header)(**{f.name: getattr(header, f.name) for f in dataclasses.fields(header)
                           if not f.name.startswith("_")})


def bench_dicom(studies: int = 200, size: int = 256, repeat: int = 3, ocr_files: int = 20) -> dict:
    """Files per second of ``deid-dicom``: header only, beside dicognito on the same files in
    the same run, and with the OCR pixel scan (on the first ``ocr_files`` files)."""
    from .cohort.generate import make_cohort
    from .deid.dicom import DicomDeidentifier, input_files

    if studies < 1 or repeat < 1:
        raise UpdpError("bench dicom: studies and repeat must be at least 1")
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


def bench_synth(repeat: int = 3, images: int = 4, threads: tuple[int, ...] = (1,),
                gpu_batch: int = 16, model: str | None = None) -> dict:
    """Seconds per 256-pixel image of the generative filter on the CPU (default model,
    strength and steps; median over ``repeat`` × ``images`` calls, for each count of torch
    threads in ``threads``), and with
    CUDA, images per second at 256 and 512 pixels, 25 steps from noise, ``gpu_batch`` at once."""
    import numpy as np
    import torch

    from .cohort.dataset import load_cohort_images
    from .cohort.generate import make_cohort
    from .synth.filter import GenerativeFilter
    from .synth.masks import resize

    if repeat < 1 or images < 1 or not threads or min(threads) < 1:
        raise UpdpError("bench synth: repeat, images and each thread count must be at least 1")
    threads_before = torch.get_num_threads()
    filt = GenerativeFilter.load(model, device="cpu")
    with tempfile.TemporaryDirectory(prefix="updp-bench-") as tmp:
        root = os.path.join(tmp, "cohort")
        make_cohort(root, patients=2, studies=max(1, (images + 1) // 2), seed=7, size=256, sites=2)
        data = load_cohort_images(root, 256)
    picks = [i % len(data) for i in range(images)]
    result = {"benchmark": "synth", "size": 256, "repeats": repeat, "images_per_repeat": images,
              "strength": filt.default_strength, "steps": filt.default_steps, "eta": filt.default_eta,
              "denoising_steps_run": max(1, round(filt.default_steps * filt.default_strength)),
              "model_size": filt.size, "machine": _machine(), "cpu": {}}
    try:
        for count in threads:
            torch.set_num_threads(count)
            filt.synthesize(data.images[0], data.preserve[0], data.text_boxes[0])  # warm up
            seconds = []
            for r in range(repeat):
                for k, i in enumerate(picks):
                    start = time.perf_counter()
                    filt.synthesize(data.images[i], data.preserve[i], data.text_boxes[i], seed=r * images + k)
                    seconds.append(time.perf_counter() - start)
            median = statistics.median(seconds)
            result["cpu"][f"threads_{count}"] = {"seconds": [round(s, 3) for s in seconds],
                                                 "median_seconds_per_image": round(median, 3)}
    finally:
        torch.set_num_threads(threads_before)
    one = result["cpu"].get("threads_1", {}).get("median_seconds_per_image")
    result["target_seconds_per_image"] = 2.0
    result["meets_target"] = None if one is None else one <= 2.0
    if not torch.cuda.is_available():
        result["cuda"] = "not available"
        return result
    gpu = GenerativeFilter.load(model, device="cuda")
    result["cuda"] = {"device": torch.cuda.get_device_name(0), "batch": gpu_batch, "steps": 25}
    for side in (256, 512):
        batch = [resize(data.images[i % len(data)], (side, side)) for i in range(gpu_batch)]
        keep = [resize(data.preserve[i % len(data)].astype(np.float32), (side, side)) > 0.5
                for i in range(gpu_batch)]
        gpu.synthesize_batch(batch, keep, strength=1.0, steps=25, batch_size=gpu_batch)  # warm up
        seconds = []
        for r in range(repeat):
            torch.cuda.synchronize()
            start = time.perf_counter()
            gpu.synthesize_batch(batch, keep, strength=1.0, steps=25, batch_size=gpu_batch,
                                 seeds=[r * gpu_batch + k for k in range(gpu_batch)])
            torch.cuda.synchronize()
            seconds.append(time.perf_counter() - start)
        median = statistics.median(seconds)
        result["cuda"][f"size_{side}"] = {"seconds": [round(s, 3) for s in seconds],
                                          "images_per_second": round(gpu_batch / median, 1)}
    return result


def bench_review(repeat: int = 3, model: str | None = None, steps: int = 25) -> dict:
    """The longest stall of the Qt event loop while the review dock regenerates a case on its
    worker thread with the generative filter (``model``, else the shipped one, else an
    untrained one of the default shape: the same work per step), in a 1600x1000 window."""
    import re

    import numpy as np
    from PIL import Image

    from ._qt.launch import SCREENSHOT_WINDOW, display, dock_in_napari
    from ._sample_data import sample_cohort_path
    from .cohort.generate import read_ground_truth
    from .ingest import display_image, read_report
    from .review.artifacts import put_array, put_text
    from .review.session import ReviewSession
    from .review.store import ReviewStore
    from .synth.filter import SHIPPED_MODEL, GenerativeFilter

    if repeat < 1 or steps < 1:
        raise UpdpError("bench review: repeat and steps must be at least 1")
    cohort = sample_cohort_path()
    record = next(r for r in read_ground_truth(cohort) if r.get("masks"))
    with tempfile.TemporaryDirectory(prefix="updp-bench-") as tmp:
        workspace = Path(tmp) / "ws"
        with ReviewStore.open(workspace, create=True) as store:
            case = store.add_case(f"bench:{record['study_id']}")
            image = display_image(cohort / record["image"])
            mask = np.zeros(image.shape, np.uint8)
            for name in record["masks"].values():
                with Image.open(cohort / name) as im:
                    mask[np.asarray(im.convert("L")) > 0] = 1
            put_array(store, case, "original", image)
            put_array(store, case, "preserve_mask", mask)
            put_array(store, case, "synthetic", image)
            put_text(store, case, "report", read_report(cohort / record["report"]))
        if model is not None:
            filt = GenerativeFilter.load(model, threads=1)
        elif (SHIPPED_MODEL / "unet").is_dir():
            filt, model = GenerativeFilter.load(threads=1), "shipped"
        else:
            from .synth.model import build_unet, noise_schedule, save_model_folder

            card = {"model": {"size": 128, "patch": 2, "conditioning": "mask+known"},
                    "model_id": "untrained (bench review)",
                    "defaults": {"strength": 1.0, "steps": steps, "dilation": 0.02}}
            save_model_folder(Path(tmp) / "filter", build_unet(), noise_schedule(), card)
            filt = GenerativeFilter.load(Path(tmp) / "filter", threads=1)
            model = "untrained, default architecture"
        with display(virtual=True):
            from napari.utils.info import sys_info

            viewer, widget = dock_in_napari("Review", size=SCREENSHOT_WINDOW)
            widget.filter = filt
            widget.open_session(ReviewSession.open(workspace, reviewer="bench"))
            widget.strength.setValue(1.0)
            measured = widget.benchmark_regeneration(repeat)
            widget.session.close()
            viewer.close()
            gl = re.search(r"GL version:\s*(.+)", sys_info())
    runs = measured["runs"]
    worst = max(r["max_stall_ms"] for r in runs)
    return {"benchmark": "review", "window": list(SCREENSHOT_WINDOW), "image": list(image.shape),
            "filter": {"model": str(model), "size": filt.size, "steps": filt.default_steps,
                       "threads": 1},
            "repeats": repeat, "runs": runs,
            "median_seconds": round(statistics.median(r["seconds"] for r in runs), 3),
            "max_stall_ms": worst,
            "max_stall_while_running_ms": max(r["max_stall_while_running_ms"] for r in runs),
            "max_stall_showing_result_ms": max(r["max_stall_showing_result_ms"] for r in runs),
            "redraw_ms_median": measured["redraw_ms_median"], "redraw_ms": measured["redraw_ms"],
            "gl": gl.group(1).strip() if gl else None, "target_max_stall_ms": 100.0,
            "meets_target": worst < 100.0, "machine": _machine()}


def bench_evaluate(studies: int = 300, size: int = 256, repeat: int = 1, seeds: tuple[int, ...] = (0, 1, 2),
                   epochs: int = 12) -> dict:
    """Seconds of ``evaluate_utility`` with every condition (``sites``) and ``seeds`` on a fresh
    five-site cohort of ``studies`` studies (2 per patient), after one pipeline run (timed
    apart, header and report only: no OCR) made its counterparts; the headline figures too."""
    from .cohort.generate import make_cohort
    from .evaluate.utility import evaluate_utility
    from .pipeline import run_pipeline

    if studies < 20 or repeat < 1:
        raise UpdpError("bench evaluate: studies must be at least 20 and repeat at least 1")
    with tempfile.TemporaryDirectory(prefix="updp-bench-") as tmp:
        cohort, workspace = os.path.join(tmp, "cohort"), os.path.join(tmp, "ws")
        make_cohort(cohort, patients=studies // 2, studies=2, seed=4711, size=size, sites=5)
        start = time.perf_counter()
        run_pipeline(cohort, workspace, pixels="off")
        pipeline_seconds = time.perf_counter() - start
        seconds, result = [], {}
        for _ in range(repeat):
            start = time.perf_counter()
            result = evaluate_utility(cohort, workspace, sites=True, seeds=seeds, epochs=epochs)
            seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    comp = result["comparisons"]
    gain = comp.get("local_plus_shared_minus_local", {})
    return {"benchmark": "evaluate", "studies": (studies // 2) * 2, "size": size, "sites": 5,
            "seeds": list(seeds), "epochs": epochs, "repeats": repeat,
            "trainings": len(result["conditions"]) * len(seeds) + result["realism"].get("folds", 0),
            "pipeline_seconds": round(pipeline_seconds, 1),
            "seconds": [round(s, 1) for s in seconds], "median_seconds": round(median, 1),
            "target_seconds": 900.0,
            "meets_target": median < 900.0 if (studies // 2) * 2 == 300 and size == 256 else None,
            "originals_macro_auroc": result["conditions"]["originals"]["macro_auroc"],
            "counterparts_macro_auroc": result["conditions"]["counterparts"]["macro_auroc"],
            "counterparts_minus_originals": comp.get("counterparts_minus_originals"),
            "smallest_site_gain": gain.get("per_site", {}).get(gain.get("smallest_site")),
            "realism_auc": result["realism"].get("auc"),
            "machine": _machine()}


BENCHMARKS = ("cohort", "report", "dicom", "synth", "review", "dp", "ocr", "evaluate", "run")


def parse_threads(text: str) -> tuple[int, ...]:
    """``"1,2"`` → ``(1, 2)``: the torch thread counts of :func:`bench_synth`."""
    try:
        return tuple(int(n) for n in str(text).split(",") if n.strip())
    except ValueError:
        raise UpdpError(f"threads: not a comma list of whole numbers: {text!r}") from None


def run_benchmark(what: str, *, studies: int = 200, size: int = 256, repeat: int = 3,
                  ner_model: str | None = None, corpus: str | None = None,
                  filter_model: str | os.PathLike | None = None,
                  threads: tuple[int, ...] = (1,), seed: int | None = None,
                  **run_options) -> dict:
    """Run the benchmark ``what`` (one of :data:`BENCHMARKS`) with the options it takes:
    ``studies`` (reports for ``report``), ``size``, ``repeat``, ``ner_model`` and ``corpus``
    (report), ``filter_model`` (synth, review, run), ``threads`` (synth), ``seed`` (ocr, dp:
    the cohorts'); ``run_options``: those of :func:`bench_run.bench_run` (run), ``progress`` (dp)."""
    if what == "cohort":
        return bench_cohort(studies, size, repeat)
    if what == "dicom":
        return bench_dicom(studies, size, repeat)
    if what == "report":
        return bench_report(studies, repeat, ner_model, corpus=corpus)
    if what == "review":
        return bench_review(repeat, model=filter_model)
    if what == "synth":
        return bench_synth(repeat, threads=threads, model=filter_model)
    if what == "dp":  # one run: train-dp over four budgets and evaluate-dp take minutes
        from .bench_dp import bench_dp

        return {**bench_dp(studies, size, threads=threads[0], progress=run_options.get("progress"),
                           **({} if seed is None else {"seed": seed})),
                "machine": _machine()}
    if what == "ocr":
        from .bench_ocr import bench_ocr

        return bench_ocr(studies, size, repeat, seed=seed)
    if what == "evaluate":
        return bench_evaluate(studies, size, repeat)
    if what == "run":
        from .bench_run import bench_run

        return bench_run(studies, size, repeat, model=filter_model, **run_options)
    raise UpdpError(f"unknown benchmark {what!r}")
