"""The job convention: progress pairs, then a result; one switch for running jobs inline."""
import pytest

from updp_napari.core.jobs import inline_jobs, is_progress, run_to_end


def test_run_to_end_reports_progress_and_returns_the_result():
    seen = []

    def job():
        yield (1, 3)
        yield (2, 3)
        yield (3, 3)
        yield {"image": "done"}

    assert run_to_end(job(), lambda d, t: seen.append((d, t))) == {"image": "done"}
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_a_cancelled_job_has_no_result():
    def job():
        yield (1, 5)

    assert run_to_end(job()) is None
    assert is_progress((1, 5)) and not is_progress({"image": 1}) and not is_progress((1, 2, 3))


def test_inline_jobs_follows_updp_sync(monkeypatch):
    monkeypatch.setenv("UPDP_SYNC", "1")
    assert inline_jobs()
    monkeypatch.setenv("UPDP_SYNC", "0")
    assert not inline_jobs()


def test_a_callback_job_yields_progress_then_the_result_and_raises_the_work_error():
    from updp_napari.core.errors import InputError
    from updp_napari.core.jobs import CallbackJob

    def work(progress):
        for i in range(3):
            progress("stage", i + 1, 3)  # a stage name is allowed before the pair
        return {"done": 3}

    assert list(CallbackJob(work)) == [(1, 3), (2, 3), (3, 3), {"done": 3}]

    def broken(progress):
        progress(1, 2)
        raise InputError("x.dcm: not DICOM")

    job = iter(CallbackJob(broken))
    assert next(job) == (1, 2)
    with pytest.raises(InputError, match="not DICOM"):
        next(job)


def test_a_cancelled_callback_job_stops_the_work_at_its_next_step():
    from updp_napari.core.jobs import CallbackJob

    steps = []

    def work(progress):
        for i in range(100):
            steps.append(i)
            progress(i + 1, 100)
        return "finished"

    job = CallbackJob(work)
    seen = []
    for item in job:
        seen.append(item)
        job.cancel()
    assert seen == [(1, 100)] and job.cancelled
    assert len(steps) <= 2  # the work stopped at the first report after the cancel
