"""Long work as a job: a generator that yields its progress as ``(done, total)`` pairs, then
its result (any other object), honouring a cancel token between steps.

The review app runs such a job off the UI thread; a script or a notebook iterates it, or
calls :func:`run_to_end`. ``UPDP_SYNC=1`` (tests) asks every runner to run jobs inline:
:func:`inline_jobs` is the one place that switch is read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable


def inline_jobs() -> bool:
    """Whether jobs run inline on the calling thread (``UPDP_SYNC=1``, for tests)."""
    return os.environ.get("UPDP_SYNC") == "1"


def is_progress(item) -> bool:
    """Whether a job's yielded ``item`` is its progress ``(done, total)``, not its result."""
    return isinstance(item, tuple) and len(item) == 2


def run_to_end(job: Iterable, progress: Callable[[int, int], None] | None = None):
    """Iterate ``job`` to its end, reporting its progress; the last non-progress item it
    yielded (its result), or None when it yielded none (it was cancelled)."""
    result = None
    for item in job:
        if is_progress(item):
            if progress is not None:
                progress(*item)
        else:
            result = item
    return result


class JobCancelled(Exception):
    """Raised inside work run by :class:`CallbackJob` at its next progress report once the
    job was cancelled; the job then ends without a result."""


class CallbackJob:
    """Work that reports progress through a callback run as a job.

    ``work(progress)`` is any function that calls ``progress(done, total)`` (or
    ``progress(stage, done, total)``) between steps, such as ``pipeline.run_pipeline`` or
    ``export.export_package`` with their ``progress`` argument. Iterating the job runs the
    work on a helper thread and yields its progress as ``(done, total)`` pairs, then its
    return value; an error in the work is raised from the iteration. :meth:`cancel` makes
    the work's next progress call raise :class:`JobCancelled`: it stops there (a workspace
    run resumes where it stopped) and the job ends without a result.
    """

    def __init__(self, work: Callable[[Callable[..., None]], object]):
        import threading

        self.work = work
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def __iter__(self):
        import queue
        import threading

        events: queue.Queue = queue.Queue()
        resume = threading.Semaphore(0)  # the work waits at each report until it is taken

        def progress(*args) -> None:
            if self._cancelled.is_set():
                raise JobCancelled
            done, total = args[-2:]
            events.put(("progress", (int(done), int(total))))
            resume.acquire()
            if self._cancelled.is_set():
                raise JobCancelled

        def run() -> None:
            try:
                events.put(("result", self.work(progress)))
            except BaseException as exc:  # handed to the iterating thread
                events.put(("error", exc))

        threading.Thread(target=run, name="updp-job", daemon=True).start()
        ended = False
        try:
            while True:
                kind, value = events.get()
                if kind == "progress":
                    yield value
                    resume.release()
                    continue
                ended = True
                if kind == "result":  # the work ended before a cancel could stop it
                    yield value
                elif not isinstance(value, JobCancelled):
                    raise value
                return
        finally:
            if not ended:  # the iteration was abandoned: the work stops at its next report
                self._cancelled.set()
                resume.release()
