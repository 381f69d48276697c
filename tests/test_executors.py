"""updp run --executor / --workers: cases prepared in worker processes, one writer, the same
workspace byte for byte; resumable after a stop half-way; executors from plugins."""

import multiprocessing
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from updp_napari import pipeline
from updp_napari.cli import main
from updp_napari.core.errors import InputError, UpdpError
from updp_napari.deid.pixels import tesseract_available
from updp_napari.executors import LocalExecutor, get_executor, known_executors
from updp_napari.pipeline import run_pipeline
from updp_napari.review.store import ReviewStore

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
STUDIES = ["p0000_s01", "p0000_s02", "p0001_s01", "p0002_s02", "p0003_s01", "p0004_s03"]

requires_tesseract = pytest.mark.skipif(not tesseract_available(),
                                        reason="tesseract is not installed (tesseract-ocr)")


def _input(tmp_path, studies=STUDIES) -> Path:
    root = tmp_path / "in"
    for study in studies:
        shutil.copytree(SAMPLE / study, root / study)
    return root


def _workspace_with_key(tmp_path, name: str, key_from: Path | None) -> Path:
    """A workspace folder holding the key of ``key_from`` (same key: same case ids, same
    keyed stand-ins), as an existing workspace run again would."""
    ws = tmp_path / name
    if key_from is not None:
        ws.mkdir(mode=0o700)
        shutil.copy(key_from / "secret.key", ws / "secret.key")
    return ws


def _contents(ws: Path) -> dict:
    """Every case's status, scores, artifacts (content hashes and signatures) and spans."""
    with ReviewStore.open(ws) as store:
        return {c.case_id: {"status": c.status, "failure": c.failure_reason,
                            "privacy": c.privacy_score, "utility": c.utility_score,
                            "artifacts": c.artifacts,
                            "spans": [(s.start, s.end, s.category, s.source, s.origin,
                                       s.proposed_action, s.action)
                                      for s in store.spans(c.case_id)]}
                for c in store.cases()}


def _no_worker_left() -> bool:
    for _ in range(50):
        if not multiprocessing.active_children():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("pixels", ["off", pytest.param("ocr", marks=[requires_tesseract,
                                                                       pytest.mark.slow])])
def test_two_workers_fill_the_workspace_byte_for_byte_as_one(tmp_path, tiny_models, pixels):
    model, scorers = tiny_models
    root = _input(tmp_path, STUDIES[:4])
    one = tmp_path / "one"
    serial = run_pipeline(root, one, model=model, scorers=scorers, pixels=pixels, workers=1)
    two = _workspace_with_key(tmp_path, "two", one)
    pooled = run_pipeline(root, two, model=model, scorers=scorers, pixels=pixels, workers=2)
    assert (serial.done, serial.failed, serial.workers) == (4, [], 1)
    assert (pooled.done, pooled.failed, pooled.workers) == (4, [], 2)
    expected, got = _contents(one), _contents(two)
    assert got == expected
    assert all({"original", "cleaned", "dicom", "synthetic", "scores"} <= set(c["artifacts"])
               for c in got.values())
    if pixels == "ocr":  # the burned-in name of p0002_s02 was found in a worker, as here
        assert any(c["artifacts"]["text_boxes"]["path"] != got[next(iter(got))]["artifacts"]
                   ["text_boxes"]["path"] for c in got.values())
    assert pooled.seconds["prepare_worker"] > 0 and pooled.seconds["synthesis"] > 0
    assert _no_worker_left()


def test_a_run_stopped_half_way_resumes_without_redoing_or_losing_a_case(tmp_path, tiny_models,
                                                                         monkeypatch):
    model, scorers = tiny_models
    monkeypatch.setattr(pipeline, "BATCH", 2)  # batches finish before the stop
    root = _input(tmp_path)
    reference = tmp_path / "reference"
    run_pipeline(root, reference, model=model, scorers=scorers, pixels="off", workers=1)
    ws = _workspace_with_key(tmp_path, "ws", reference)

    def stop_half_way(done, total):
        if done == total // 2:
            raise KeyboardInterrupt  # as Ctrl-C would, in the middle of the run

    with pytest.raises(KeyboardInterrupt):
        run_pipeline(root, ws, model=model, scorers=scorers, pixels="off", workers=2,
                     progress=stop_half_way)
    assert _no_worker_left()  # the pool was stopped, not left behind
    with ReviewStore.open(ws) as store:
        finished = {c.case_id: c.artifacts["synthetic"] for c in store.cases()
                    if "synthetic" in c.artifacts}
        added = len(store.cases())
    assert 0 < len(finished) < len(STUDIES) and added >= len(finished)
    again = run_pipeline(root, ws, model=model, scorers=scorers, pixels="off", workers=2)
    # nothing done twice, nothing lost
    assert (again.already_done, again.done, again.failed) == \
        (len(finished), len(STUDIES) - len(finished), [])
    after = _contents(ws)
    assert {c: after[c]["artifacts"]["synthetic"] for c in finished} == finished
    assert after == _contents(reference)  # and the same bytes as a run never stopped


def test_a_counterpart_does_not_depend_on_the_cases_batched_with_it(tmp_path, tiny_models,
                                                                    monkeypatch):
    """A resumed run batches its cases otherwise than a run never stopped (here: one case
    was run first, alone); the counterparts are the same bytes all the same."""
    model, scorers = tiny_models
    monkeypatch.setattr(pipeline, "BATCH", 4)
    reference = tmp_path / "reference"
    run_pipeline(_input(tmp_path), reference, model=model, scorers=scorers, pixels="off")
    ws = _workspace_with_key(tmp_path, "ws", reference)
    first = run_pipeline(_input(tmp_path / "first", STUDIES[:1]), ws, model=model,
                         scorers=scorers, pixels="off")
    rest = run_pipeline(_input(tmp_path / "all"), ws, model=model, scorers=scorers,
                        pixels="off", workers=2)
    assert (first.done, rest.already_done, rest.done) == (1, 1, len(STUDIES) - 1)
    assert _contents(ws) == _contents(reference)


def test_a_study_failing_in_a_worker_is_recorded_and_the_others_go_on(tmp_path, tiny_models):
    model, scorers = tiny_models
    root = _input(tmp_path, STUDIES[:3])
    (root / STUDIES[1] / "report.txt").write_bytes(b"\x00\x01binary")
    dicom = root / STUDIES[2] / "image.dcm"
    dicom.write_bytes(dicom.read_bytes()[:2000])  # truncated: header readable, pixels not
    one = tmp_path / "one"
    serial = run_pipeline(root, one, model=model, scorers=scorers, pixels="off", workers=1)
    two = _workspace_with_key(tmp_path, "two", one)
    pooled = run_pipeline(root, two, model=model, scorers=scorers, pixels="off", workers=2)
    assert pooled.done == 1 and len(pooled.failed) == 2
    assert pooled.failed == serial.failed  # same cases, same one-line reasons
    reasons = " | ".join(reason for _, _, reason in pooled.failed)
    assert f"{STUDIES[1]}/report.txt: report is binary" in reasons
    assert f"{STUDIES[2]}/image.dcm: pixel data is truncated" in reasons
    assert _contents(two) == _contents(one)


def test_the_cli_runs_with_workers_and_names_unknown_executors(tmp_path, tiny_models, capsys):
    model, scorers = tiny_models
    root = _input(tmp_path, STUDIES[:2])
    args = ["run", str(root), str(tmp_path / "ws"), "--filter-model", str(model), "--scorers",
            str(scorers), "--pixels", "off", "-q"]
    assert main(args + ["--executor", "nope"]) == 2
    err = capsys.readouterr().err
    assert "executor 'nope' is unknown; known executors: local" in err
    assert "Traceback" not in err
    assert main(args + ["--workers", "0"]) == 2
    assert "workers must be at least 1" in capsys.readouterr().err
    assert main(args + ["--workers", "2"]) == 0
    assert "2 done now" in capsys.readouterr().out
    with pytest.raises(InputError, match="known executors: local"):
        get_executor("nope")


def test_an_executor_whose_plugin_is_not_installed_names_how_to_install_it(tmp_path, capsys):
    if "ray" in known_executors():
        pytest.skip("the ray executor's plugin is installed here")
    root = _input(tmp_path, STUDIES[:1])
    assert main(["run", str(root), str(tmp_path / "ws"), "--executor", "ray", "-q"]) == 2
    err = capsys.readouterr().err
    assert "executor 'ray' is unknown; known executors: local; its plugin is in this " \
           "checkout, install it with: pip install -e " in err
    assert err.rstrip().endswith(str(Path("plugins") / "updp-ray")) and "Traceback" not in err
    assert not (tmp_path / "ws").exists()  # stopped before the workspace was made


# -- the local executor itself ------------------------------------------------------------------

class _Slow:
    """A picklable preparer: sleeps longer for earlier tasks, so they finish last."""

    def __call__(self, task):
        time.sleep(0.05 * (4 - task % 4))
        return task * 10


class _Dies:
    def __call__(self, task):
        if task == 2:
            os._exit(3)  # a worker killed (out of memory, a crash in a library)
        return task


def test_local_executor_keeps_task_order_and_reads_tasks_lazily():
    drawn = []

    def tasks():
        for n in range(12):
            drawn.append(n)
            yield n

    outcomes = LocalExecutor(2).map(_Slow(), tasks(), ahead=3)
    assert next(outcomes) == 0
    assert len(drawn) <= 2 + 3  # the workers' tasks and `ahead` more, not the archive
    assert list(outcomes) == [n * 10 for n in range(1, 12)]
    assert _no_worker_left()
    assert list(LocalExecutor(1).map(_Slow(), range(3))) == [0, 10, 20]  # in this process


def _modules_loaded(queue):
    queue.put({name: name in sys.modules for name in ("torch", "diffusers.models.unets.unet_2d",
                                                      "updp_napari.pipeline")})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a fork server on Linux only")
def test_model_workers_begin_with_torch_and_the_models_code_imported(monkeypatch):
    """Workers that synthesise come from a fork server that imported torch and the model's
    code once, started by ``start()`` while the run loads its own: each begins at once."""
    from updp_napari import executors

    monkeypatch.setattr(executors, "_gpu_available", lambda: False)
    runner = LocalExecutor(2)
    assert runner.synthesizes
    runner.start(wait=True)
    context = executors._model_worker_context()
    assert context.get_start_method() == "forkserver"
    queue = context.Queue()
    child = context.Process(target=_modules_loaded, args=(queue,))
    child.start()
    loaded = queue.get(timeout=60)
    child.join(timeout=30)
    assert loaded == {"torch": True, "diffusers.models.unets.unet_2d": True,
                      "updp_napari.pipeline": True}
    LocalExecutor(1).start(wait=True)  # one worker: nothing to start, nothing raised


class _Where:
    """A picklable preparer reporting the folder and an environment variable it runs with."""

    def __call__(self, task):
        return os.getcwd(), os.environ.get("UPDP_TEST_PROBE")


class _NoModel:
    """A picklable stand-in for the model stage: one case a batch, nothing drawn."""

    batch = 1

    def setup(self, threads=None):
        pass

    def fill(self, outcomes):
        pass


def test_model_workers_run_in_the_runs_folder_and_environment_as_they_are_now(
        tmp_path, monkeypatch):
    """The fork server may have started long before (an earlier run in this process): its
    workers still see the folder and environment of the run that uses them."""
    from updp_napari import executors

    monkeypatch.setattr(executors, "_gpu_available", lambda: False)
    LocalExecutor(2).start(wait=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("UPDP_TEST_PROBE", "now")
    seen = list(LocalExecutor(2).map(_Where(), range(4), ahead=1, synthesizer=_NoModel()))
    assert seen == [(str(tmp_path), "now")] * 4


def test_model_workers_are_spawned_where_no_fork_server_can_start(monkeypatch):
    from multiprocessing import forkserver

    from updp_napari import executors

    def cannot(*args, **kwargs):
        raise OSError("no room for a socket")

    monkeypatch.setattr(executors, "_gpu_available", lambda: False)
    monkeypatch.setattr(forkserver, "ensure_running", cannot)
    assert executors._model_worker_context().get_start_method() == "spawn"
    LocalExecutor(2).start(wait=True)  # nothing raised: the run goes on without it
    seen = list(LocalExecutor(2).map(_Where(), range(2), ahead=1, synthesizer=_NoModel()))
    assert seen == [(os.getcwd(), os.environ.get("UPDP_TEST_PROBE"))] * 2


def test_a_worker_that_dies_stops_the_run_with_a_message():
    with pytest.raises(UpdpError, match="worker process .* ended unexpectedly.*run again"):
        list(LocalExecutor(2).map(_Dies(), range(6), ahead=2))
    assert _no_worker_left()


# -- executors from plugins ----------------------------------------------------------------------

@pytest.fixture
def executor_plugin(tmp_path, monkeypatch):
    """An installed distribution registering an executor (runs in the calling process and
    counts its cases) in the entry-point group updp_napari.executors."""
    (tmp_path / "fake_executor_plugin.py").write_text(
        "CALLS = []\n"
        "class InlineExecutor:\n"
        "    def __init__(self, workers=None):\n"
        "        self.workers = workers or 1\n"
        "    def map(self, preparer, tasks, ahead):\n"
        "        preparer.setup()\n"
        "        for task in tasks:\n"
        "            CALLS.append(task.case_id)\n"
        "            yield preparer(task)\n")
    dist = tmp_path / "fake_executor_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-executor-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[updp_napari.executors]\ninline = fake_executor_plugin:InlineExecutor\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("fake_executor_plugin", None)


def test_an_executor_plugin_is_listed_and_runs_the_cases(tmp_path, tiny_models, executor_plugin,
                                                         capsys):
    model, scorers = tiny_models
    assert known_executors()[0] == "local" and "inline" in known_executors()
    assert main(["plugins"]) == 0
    assert "inline = fake_executor_plugin:InlineExecutor" in capsys.readouterr().out
    with pytest.raises(InputError, match="known executors: local, inline"):
        get_executor("nope")
    root = _input(tmp_path, STUDIES[:2])
    one = tmp_path / "one"
    run_pipeline(root, one, model=model, scorers=scorers, pixels="off", workers=1)
    two = _workspace_with_key(tmp_path, "two", one)
    summary = run_pipeline(root, two, model=model, scorers=scorers, pixels="off",
                           executor="inline", workers=3)
    import fake_executor_plugin

    assert summary.workers == 3 and len(fake_executor_plugin.CALLS) == 2
    assert _contents(two) == _contents(one)


def test_bench_run_reports_rates_scaling_identity_and_a_projection(tiny_models):
    from updp_napari.bench_run import bench_run

    model, scorers = tiny_models
    result = bench_run(studies=2, size=64, repeat=1, workers=(1, 2), archive=1000, pixels="off",
                       model=model, scorers=scorers)
    assert result["studies"] == 2 and set(result["workers"]) == {"1", "2"}
    assert result["identical_outputs"] is True
    for measured in result["workers"].values():
        assert measured["studies_per_second"] > 0
        assert set(measured["per_stage_seconds_per_study"]) == \
            {"prepare_worker", "write", "synthesis", "scoring"}
    scaling = result["scaling"]
    # Rounded to three places: on two studies spawned workers' start makes the speedup tiny.
    assert scaling["speedup"] == pytest.approx(result["workers"]["2"]["studies_per_second"]
                                               / result["workers"]["1"]["studies_per_second"],
                                               rel=0.01, abs=0.001)
    projection = result["projection"]
    assert projection["studies"] == 1000 and "usable cores" in projection["machine"]
    rate = result["workers"]["1"]["studies_per_second"]
    assert projection["end_to_end_hours"]["workers_1"] == pytest.approx(1000 / rate / 3600, abs=0.06)
