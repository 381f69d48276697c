"""updp run --executor ray: listed once installed, the same workspace byte for byte as the
local executor, and a run killed half-way resumes without redoing or losing a case."""

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest
from test_executors import SAMPLE, STUDIES, _contents, _input, _workspace_with_key

from updp_napari.cli import main
from updp_napari.deid.pixels import tesseract_available
from updp_napari.pipeline import run_pipeline
from updp_napari.review.store import ReviewStore

# Ray starts in seconds, its actors in more; its DataContext warns of its own deprecations.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")]


@pytest.fixture
def ray_tmp(short_tmp, monkeypatch):
    """Ray's folder of a run made under a short temporary folder of the test's own. The local
    executor's fork server, which the tests' local runs use and which keeps its socket in a
    temporary folder until the process ends, is started first, outside it."""
    from updp_napari.executors import LocalExecutor

    LocalExecutor(2).start(wait=True)
    monkeypatch.setattr(tempfile, "tempdir", str(short_tmp))
    return short_tmp


def test_ray_is_listed_and_its_settings_are_checked(tmp_path, ray_plugin, capsys, monkeypatch):
    from updp_napari.executors import get_executor, known_executors

    assert "ray" in known_executors()
    assert main(["plugins"]) == 0
    assert "ray = updp_ray:RayExecutor" in capsys.readouterr().out
    monkeypatch.setenv("UPDP_RAY_BATCH_SIZE", "0")
    assert main(["run", str(_input(tmp_path, STUDIES[:1])), str(tmp_path / "ws"), "--executor",
                 "ray"]) == 2
    err = capsys.readouterr().err
    assert "batch_size / UPDP_RAY_BATCH_SIZE must be at least 1" in err and "Traceback" not in err
    monkeypatch.setenv("UPDP_RAY_BATCH_SIZE", "4")
    monkeypatch.setenv("UPDP_RAY_OBJECT_STORE_MB", "lots")
    with pytest.raises(Exception, match="UPDP_RAY_OBJECT_STORE_MB must be a whole number"):
        get_executor("ray", 2)
    monkeypatch.delenv("UPDP_RAY_OBJECT_STORE_MB")
    executor = get_executor("ray", 2)
    assert (executor.workers, executor.batch_size, executor.synthesizes) == (2, 4, True)


@pytest.mark.parametrize("pixels", ["off", pytest.param("ocr", marks=pytest.mark.skipif(
    not tesseract_available(), reason="tesseract is not installed (tesseract-ocr)"))])
def test_ray_fills_the_workspace_byte_for_byte_as_local(tmp_path, tiny_models, ray_plugin,
                                                        ray_tmp, pixels, capsys):
    import ray

    model, scorers = tiny_models
    root = _input(tmp_path, STUDIES[:4])
    local = tmp_path / "local"
    expected = run_pipeline(root, local, model=model, scorers=scorers, pixels=pixels, workers=2)
    ws = _workspace_with_key(tmp_path, "ray", local)
    # Through the command line, as a user runs it; a batch of 3 for the model actor: the
    # model still gets full batches of the run's size, so the bytes do not change.
    os.environ["UPDP_RAY_BATCH_SIZE"] = "3"
    try:
        code = main(["run", str(root), str(ws), "--filter-model", str(model), "--scorers",
                     str(scorers), "--pixels", pixels, "--executor", "ray", "--workers", "2",
                     "--threads", "1", "-q"])
    finally:
        del os.environ["UPDP_RAY_BATCH_SIZE"]
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "4 done now, 0 already done, 0 failed; 4 scored" in out.out
    assert (expected.done, expected.failed) == (4, [])
    got = _contents(ws)
    assert got == _contents(local)
    assert all({"original", "cleaned", "dicom", "synthetic", "scores"} <= set(c["artifacts"])
               for c in got.values())
    # Ray was shut down and its folder removed
    assert not ray.is_initialized() and list(ray_tmp.iterdir()) == []


def test_a_ray_executor_closed_early_shuts_ray_down_and_keeps_order(ray_plugin, ray_tmp):
    """As when the run stops (Ctrl-C, an error): the generator is closed half-way."""
    import ray
    from test_executors import _Slow

    from updp_napari.executors import get_executor

    outcomes = get_executor("ray", 2).map(_Slow(), range(8), ahead=2)
    assert [next(outcomes) for _ in range(4)] == [0, 10, 20, 30]  # in order, whoever was first
    assert ray.is_initialized()
    outcomes.close()
    assert not ray.is_initialized() and list(ray_tmp.iterdir()) == []


def test_a_ray_worker_that_dies_stops_the_run_with_a_message(ray_plugin, ray_tmp):
    """Not restarted for ever: the case that killed one worker would kill the next."""
    import ray
    from test_executors import _Dies

    from updp_napari.core.errors import UpdpError
    from updp_napari.executors import get_executor

    with pytest.raises(UpdpError, match="Ray worker .* ended unexpectedly.*run again to resume"):
        list(get_executor("ray", 2).map(_Dies(), range(6), ahead=2))
    assert not ray.is_initialized() and list(ray_tmp.iterdir()) == []


_KILLED_RUN = textwrap.dedent("""
    import sys
    from updp_napari import pipeline

    pipeline.BATCH = 3  # batches are stored while the run goes on, so a kill falls between
    pipeline.run_pipeline(sys.argv[1], sys.argv[2], model=sys.argv[3], scorers=sys.argv[4],
                          pixels="off", executor="ray", workers=2)
""")


def _synthesised(ws) -> dict:
    """The counterparts in the workspace by case (none while the run is still making it)."""
    from updp_napari.core.errors import InputError

    try:
        with ReviewStore.open(ws) as store:
            return {c.case_id: c.artifacts["synthetic"] for c in store.cases()
                    if "synthetic" in c.artifacts}
    except InputError:  # no folder, no database, or one still empty
        return {}


def test_a_ray_run_killed_half_way_resumes_without_redoing_or_losing_a_case(
        tmp_path, tiny_models, ray_plugin, ray_tmp, monkeypatch):
    from updp_napari import pipeline

    model, scorers = tiny_models
    monkeypatch.setattr(pipeline, "BATCH", 3)
    studies = sorted(p.name for p in SAMPLE.iterdir() if p.is_dir())[:12]
    root = _input(tmp_path, studies)
    reference = tmp_path / "reference"
    run_pipeline(root, reference, model=model, scorers=scorers, pixels="off", workers=1)
    ws = _workspace_with_key(tmp_path, "ws", reference)

    # The run in a process of its own (with the Ray it starts), killed once half the cases
    # have their counterparts in the workspace: no clean-up, as after a crash or power cut.
    run = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(root), str(ws), str(model),
                            str(scorers)], env={**os.environ, "TMPDIR": str(ray_tmp),
                                                "UPDP_RAY_BATCH_SIZE": "3"},
                           start_new_session=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while len(_synthesised(ws)) < len(studies) // 2:
            assert run.poll() is None, f"the run ended before it was killed: {run.stderr.read()}"
            assert time.monotonic() < deadline, "no half of the cases after 300 s"
            time.sleep(0.1)
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # the run, its Ray and Ray's workers
        run.wait()
        run.stderr.close()
    finished = _synthesised(ws)
    assert len(studies) // 2 <= len(finished) < len(studies)

    again = run_pipeline(root, ws, model=model, scorers=scorers, pixels="off", executor="ray",
                         workers=2)
    # nothing done twice, nothing lost
    assert (again.already_done, again.done, again.failed) == \
        (len(finished), len(studies) - len(finished), [])
    after = _contents(ws)
    assert {c: after[c]["artifacts"]["synthetic"] for c in finished} == finished
    assert after == _contents(reference)  # and the same bytes as a run never stopped
