"""``updp bench run``: ``updp run`` end to end on a synthetic cohort, for several worker
counts: studies per second end to end and per stage, the scaling from the fewest workers to
the most, whether every worker count filled the workspace with the same bytes, and what an
archive of a stated size would take at the measured rates (rates × counts, on this machine).

The worker counts take turns, repeat by repeat, so a busy moment of a shared machine falls
on all of them; medians are reported, with the machine's load before and after."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from .core.errors import UpdpError

#: Stages of a run as ``RunSummary.seconds`` names them, and what each measures.
STAGES = {
    "prepare_worker": "decode, header profile, OCR, report, domain check: seconds summed over "
                      "the workers (per study: one worker's cost)",
    "write": "storing the prepared case (the single writer)",
    "synthesis": "the generative filter, in batches, in the run's process",
    "scoring": "privacy and utility of every case against all originals",
}


def _digest(workspace: Path) -> str:
    """One hash of everything a run leaves per case: status, scores, artifact hashes and
    signatures, spans (what the executors' outputs are compared on)."""
    import hashlib
    import json

    from .review.store import ReviewStore

    with ReviewStore.open(workspace) as store:
        cases = [{"case": c.case_id, "status": c.status, "privacy": c.privacy_score,
                  "utility": c.utility_score, "artifacts": c.artifacts,
                  "spans": [(s.start, s.end, s.category, s.source, s.action)
                            for s in store.spans(c.case_id)]} for c in store.cases()]
    return hashlib.sha256(json.dumps(cases, sort_keys=True).encode()).hexdigest()


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have ended (workers, OCR), with
    those of workers forked by the fork server (its children, once it has reaped them)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime \
        + _forkserver_children_cpu()


def _forkserver_children_cpu() -> float:
    """CPU seconds of the ended children of this process's fork server (0 without one, or
    where ``/proc`` cannot tell)."""
    from multiprocessing import forkserver

    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    if not pid:
        return 0.0
    try:  # fields after the command's closing bracket: cutime and cstime are the 14th, 15th
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _hours(seconds: float) -> float:
    return round(seconds / 3600.0, 1)


def bench_run(studies: int = 40, size: int = 256, repeat: int = 3, workers: tuple[int, ...] = (1, 2),
              executor: str = "local", archive: int = 590_000, pixels: str = "ocr",
              model: str | os.PathLike | None = None, scorers: str | os.PathLike | None = None,
              torch_threads: int = 1, progress=None) -> dict:
    """Time ``updp run`` over a cohort of ``studies`` studies at ``size`` pixels with each
    worker count of ``workers`` (``repeat`` times each; torch on ``torch_threads`` threads for
    synthesis and scoring) and project the measured rates onto ``archive`` studies."""
    import torch

    from .cohort.generate import make_cohort
    from .executors import usable_cores
    from .pipeline import run_pipeline
    from .synth.job import load_filter

    if studies < 2 or repeat < 1 or not workers or min(workers) < 1 or archive < 1:
        raise UpdpError("bench run: studies at least 2, repeat, each worker count and archive "
                        "at least 1")
    workers = tuple(dict.fromkeys(int(w) for w in workers))
    threads_before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(torch_threads)))
    load_before = os.getloadavg()
    runs: dict[int, list[dict]] = {w: [] for w in workers}
    digests: dict[int, set] = {w: set() for w in workers}
    try:
        with tempfile.TemporaryDirectory(prefix="updp-bench-") as tmp:
            root = Path(tmp) / "cohort"
            per_patient = min(4, studies)
            patients = max(1, studies // per_patient)
            make_cohort(root, patients=patients, studies=per_patient, seed=21, size=size, sites=5)
            load_filter(model)  # loaded once, as in a run over an archive: not timed
            from .executors import LocalExecutor, get_executor

            for w in workers:  # so is what local workers start from (executors)
                runner = get_executor(executor, w)
                if isinstance(runner, LocalExecutor):
                    runner.start(wait=True)
            key = None
            total = repeat * len(workers)
            for r in range(repeat):
                for w in (workers if r % 2 == 0 else workers[::-1]):  # neither always first
                    ws = Path(tmp) / f"ws-{r}-{w}"
                    if key is not None:  # one key: the same case ids and bytes in every run
                        ws.mkdir(mode=0o700)
                        shutil.copy(key, ws / "secret.key")
                    start, cpu = time.perf_counter(), _cpu_seconds()
                    summary = run_pipeline(root, ws, model=model, scorers=scorers, pixels=pixels,
                                           executor=executor, workers=w)
                    wall = time.perf_counter() - start
                    cpu = _cpu_seconds() - cpu
                    if summary.failed or summary.done != summary.cases:
                        raise UpdpError(f"bench run: {len(summary.failed)} of {summary.cases} "
                                        "studies failed or were left undone")
                    key = key or ws / "secret.key"
                    runs[w].append({"seconds": wall, "cpu": cpu, **summary.seconds})
                    digests[w].add(_digest(ws))
                    if key != ws / "secret.key":
                        shutil.rmtree(ws)
                    if progress:
                        progress(sum(len(v) for v in runs.values()), total)
            made = summary.cases
    finally:
        torch.set_num_threads(threads_before)
    result = {"benchmark": "run", "studies": made, "size": size, "pixels": pixels,
              "executor": executor, "repeats": repeat, "torch_threads": torch_threads,
              "model": str(model) if model else "shipped", "stages": STAGES,
              "machine": {"python": platform.python_version(), "machine": platform.machine(),
                          "cpus": os.cpu_count(), "platform": platform.platform(),
                          "usable_cores": usable_cores(),
                          "load_average_before": [round(x, 2) for x in load_before],
                          "load_average_after": [round(x, 2) for x in os.getloadavg()]},
              "workers": {}}
    for w in workers:
        median = {k: statistics.median(run[k] for run in runs[w]) for k in runs[w][0]}
        result["workers"][str(w)] = {
            "seconds": [round(run["seconds"], 2) for run in runs[w]],
            "median_seconds": round(median["seconds"], 2),
            "studies_per_second": round(made / median["seconds"], 3),
            "cases_seconds": round(median["cases"], 2),
            # CPU time of the run and its workers (OCR included) over wall time: the cores the
            # run had. On a machine shared with other work it stays below the worker count.
            "cpu_seconds": [round(run["cpu"], 2) for run in runs[w]],
            "cores_used": round(statistics.median(run["cpu"] / run["seconds"] for run in runs[w]), 2),
            "per_stage_seconds_per_study": {k: round(median[k] / made, 4) for k in STAGES},
            "per_stage_studies_per_second": {k: round(made / median[k], 3) if median[k] else None
                                             for k in STAGES},
        }
    one, most = min(workers), max(workers)
    if most > one:
        speedup = result["workers"][str(most)]["studies_per_second"] \
            / result["workers"][str(one)]["studies_per_second"]
        result["scaling"] = {"from_workers": one, "to_workers": most, "speedup": round(speedup, 3),
                             "of_linear": round(speedup / (most / one), 3),
                             "target_of_linear": 0.8, "meets_target": speedup / (most / one) >= 0.8}
    result["identical_outputs"] = len(set().union(*digests.values())) == 1
    # Rates × counts: what `archive` studies would take here, at each measured rate.
    projection = {"studies": archive, "machine": f"this machine ({usable_cores()} usable cores, "
                  f"{platform.machine()} {platform.system()})", "end_to_end_hours": {}, "per_stage_hours": {}}
    for w in workers:
        rate = result["workers"][str(w)]["studies_per_second"]
        projection["end_to_end_hours"][f"workers_{w}"] = _hours(archive / rate)
    for k in STAGES:
        per_study = result["workers"][str(one)]["per_stage_seconds_per_study"][k]
        projection["per_stage_hours"][k] = _hours(per_study * archive)
    projection["note"] = ("scoring is projected linearly from a cohort of this size; it compares "
                          "every case with all originals of the workspace and holds them in "
                          "memory, so on a whole archive it grows faster than linearly")
    result["projection"] = projection
    return result

