"""Jobs off the UI thread, and a meter for how long the UI thread stalls meanwhile."""

from __future__ import annotations

import time
from collections.abc import Callable

from qtpy.QtCore import QObject, Qt, QTimer

from ..core.jobs import inline_jobs


def run_in_background_default() -> bool:
    """Jobs run on a worker thread unless ``UPDP_SYNC=1`` (tests) says run them inline."""
    return not inline_jobs()


def _drive(job):
    yield from job


class JobRunner(QObject):
    """Runs one job generator at a time: each yielded item goes to ``on_item`` and the end
    to ``on_done(error)`` (None when it ended well), both on the UI thread."""

    def __init__(self, on_item: Callable, on_done: Callable, background: bool | None = None,
                 parent=None):
        super().__init__(parent)
        self.on_item, self.on_done = on_item, on_done
        self.background = run_in_background_default() if background is None else background
        self.worker = None
        self.job = None
        self._errors: list[BaseException] = []
        if self.background:
            # Imported now, not when the first job starts: the import would stall the UI.
            import napari.qt.threading  # noqa: F401

    @property
    def running(self) -> bool:
        return self.job is not None

    def start(self, job) -> None:
        if self.job is not None:
            raise RuntimeError("a job is already running")
        self.job = job
        if not self.background:
            error = None
            try:
                for item in job:
                    self.on_item(item)
            except Exception as exc:  # reported by on_done, like a worker's error
                error = exc
            self._finish(error)
            return
        from napari.qt.threading import create_worker

        worker = create_worker(_drive, job, _start_thread=False, _ignore_errors=True)
        self._errors = []
        worker.yielded.connect(self.on_item)
        worker.errored.connect(self._errors.append)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        worker.start()

    def _on_finished(self) -> None:
        error = self._errors[0] if self._errors else None
        self.worker = None
        self._finish(error)

    def _finish(self, error) -> None:
        self.job = None
        self.on_done(error)

    def cancel(self) -> None:
        """Ask the job to stop (it ends within a step; ``on_done`` still follows)."""
        if self.job is not None:
            self.job.cancel()
        if self.worker is not None:
            self.worker.quit()


class StallMeter(QObject):
    """Ticks every ``interval_ms`` on the UI thread and keeps the gaps between ticks: how
    long the event loop was kept from running (``interval_ms`` when it never was).

    :meth:`mark` splits the gaps in two phases (for regeneration: while the model runs,
    and showing its result, which includes drawing one frame of the canvas).
    """

    def __init__(self, interval_ms: int = 10, parent=None):
        super().__init__(parent)
        self.interval_ms = interval_ms
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[float] = []
        self.marked_at: int | None = None
        self._last = 0.0

    def start(self) -> None:
        self.gaps = []
        self.marked_at = None
        self._last = time.perf_counter()
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self._last = now

    def mark(self) -> None:
        """Gaps that end from now on belong to the second phase."""
        if self.marked_at is None:
            self.marked_at = len(self.gaps)

    def stop(self) -> dict:
        self._tick()  # the time since the last tick counts too
        self.timer.stop()
        split = len(self.gaps) if self.marked_at is None else self.marked_at
        return {"ticks": len(self.gaps), "interval_ms": self.interval_ms,
                "max_stall_ms": _ms(max(self.gaps)),
                "median_gap_ms": _ms(sorted(self.gaps)[len(self.gaps) // 2]),
                "max_stall_while_running_ms": _ms(max(self.gaps[:split], default=0.0)),
                "max_stall_showing_result_ms": _ms(max(self.gaps[split:], default=0.0))}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
