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
