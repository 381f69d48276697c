"""The job convention: progress pairs, then a result; one switch for running jobs inline."""

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
