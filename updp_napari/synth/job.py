"""Synthesis as background work: a generator with progress and cancel, and a runner.

``SynthesisJob`` is a plain generator, free of Qt: iterating it loads the model (cached),
yields ``(done, total)`` after every denoising step and finally yields (and returns) a
:class:`SynthesisResult`. It checks its cancel token (anything with ``is_set()``, such as a
``threading.Event``) before every step, so it stops within one step of being told; a
cancelled job ends without a result and says so in ``job.cancelled``. The review app wraps
it in a thread worker; a notebook or script just iterates it, or calls :func:`run_job`.

``run_job`` runs a job to its end. With CUDA it runs the model in a process of its own
(``multiprocessing``, spawn), so cancelling or closing gives all of the GPU memory back;
on the CPU, or when ``UPDP_SYNC=1`` (tests), it runs inline.
"""

from __future__ import annotations

import os
import queue as queue_module
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import UpdpError
from ..core.jobs import inline_jobs, run_to_end

# How long a worker process may take to stop after a cancel before it is terminated.
STOP_GRACE_S = 10.0
_FILTERS: dict = {}


@dataclass
class SynthesisResult:
    """The synthetic images, index-aligned with the job's inputs, and how they were made."""

    images: list[np.ndarray]
    seeds: list[int]
    signature: dict = field(default_factory=dict)


def load_filter(model=None, device: str | None = None, threads: int | None = None):
    """A loaded filter, kept for the next job of the same model and device."""
    from .filter import GenerativeFilter

    key = (None if model is None else os.fspath(model), device)
    if key not in _FILTERS:
        _FILTERS[key] = GenerativeFilter.load(model, device=device, threads=threads)
    elif threads is not None:
        import torch

        torch.set_num_threads(max(1, int(threads)))
    return _FILTERS[key]


def release_filters() -> None:
    """Forget the cached models (and, on a GPU, hand their memory back)."""
    _FILTERS.clear()
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class SynthesisJob:
    """Counterparts of ``images``; iterate to run. Settings as ``GenerativeFilter.synthesize``."""

    def __init__(self, images: Sequence, preserve_masks: Sequence, text_masks: Sequence | None = None, *,
                 model=None, seeds: Sequence[int] | None = None, strength: float | None = None,
                 steps: int | None = None, dilation: float | None = None, batch_size: int = 8,
                 cancel=None, device: str | None = None, threads: int | None = None):
        self.images, self.preserve_masks, self.text_masks = list(images), list(preserve_masks), text_masks
        self.model, self.device, self.threads = model, device, threads
        self.seeds = list(range(len(self.images))) if seeds is None else [int(s) for s in seeds]
        self.settings = {"strength": strength, "steps": steps, "dilation": dilation}
        self.batch_size = batch_size
        self.cancel = cancel
        self.cancelled = False
        self.result: SynthesisResult | None = None

    def _cancel_requested(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def __iter__(self) -> Iterator:
        if self._cancel_requested():
            self.cancelled = True
            return None
        filt = load_filter(self.model, self.device, self.threads)
        work = filt.iterate_batch(self.images, self.preserve_masks, self.text_masks, seeds=self.seeds,
                                  batch_size=self.batch_size, **self.settings)
        while True:
            if self._cancel_requested():
                work.close()
                self.cancelled = True
                return None
            try:
                step = next(work)
            except StopIteration as finished:
                images = finished.value
                break
            yield step
        strength, steps, dilation = filt.resolve_settings(**self.settings)
        signature = filt.signature(strength, steps, dilation, self.seeds[0] if self.seeds else 0)
        signature.pop("seed")
        self.result = SynthesisResult(images, self.seeds, signature)
        yield self.result
        return self.result


def _isolate_default() -> bool:
    if inline_jobs():
        return False
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def run_job(images: Sequence, preserve_masks: Sequence, text_masks: Sequence | None = None, *,
            progress: Callable[[int, int], None] | None = None, cancel=None,
            isolate: bool | None = None, **settings) -> SynthesisResult | None:
    """Run a :class:`SynthesisJob` to its end; None when ``cancel`` was set.

    ``isolate``: run the model in a worker process (default: when CUDA is present and
    ``UPDP_SYNC`` is not ``1``). ``settings``: ``model``, ``seeds``, ``strength``, ``steps``,
    ``dilation``, ``batch_size``, ``device``, ``threads``.
    """
    if isolate is None:
        isolate = _isolate_default()
    if not isolate:
        job = SynthesisJob(images, preserve_masks, text_masks, cancel=cancel, **settings)
        run_to_end(job, progress)
        return job.result
    return _run_in_process(images, preserve_masks, text_masks, progress, cancel, settings)


def _worker(messages, stop, images, preserve_masks, text_masks, settings) -> None:
    """The worker process: run the job, send progress, then the result or the error."""
    try:
        job = SynthesisJob(images, preserve_masks, text_masks, cancel=stop, **settings)
        run_to_end(job, lambda done, total: messages.put(("progress", done, total)))
        messages.put(("cancelled",) if job.cancelled else ("result", job.result))
    except UpdpError as exc:
        messages.put(("error", str(exc)))
    except Exception as exc:  # the parent reports it as one line; the traceback stays here
        messages.put(("error", f"synthesis failed in the worker process ({type(exc).__name__}: {exc})"))


def _run_in_process(images, preserve_masks, text_masks, progress, cancel, settings):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    stop = context.Event()
    process = context.Process(target=_worker, name="updp-synthesis", daemon=True,
                              args=(messages, stop, list(images), list(preserve_masks),
                                    None if text_masks is None else list(text_masks), settings))
    process.start()
    stop_asked_at = None
    try:
        while True:
            if cancel is not None and cancel.is_set() and stop_asked_at is None:
                import time

                stop.set()
                stop_asked_at = time.monotonic()
            try:
                message = messages.get(timeout=0.1)
            except queue_module.Empty:
                if not process.is_alive():
                    try:  # the last message may land just after the process ends
                        message = messages.get(timeout=1.0)
                    except queue_module.Empty:
                        raise UpdpError(f"the synthesis worker process ended without a result "
                                        f"(exit code {process.exitcode})") from None
                elif stop_asked_at is not None:
                    import time

                    if time.monotonic() - stop_asked_at > STOP_GRACE_S:
                        return None
                    continue
                else:
                    continue
            kind = message[0]
            if kind == "progress":
                if progress is not None:
                    progress(message[1], message[2])
            elif kind == "result":
                return message[1]
            elif kind == "cancelled":
                return None
            elif kind == "error":
                raise UpdpError(message[1])
    finally:
        # Ending the process is what frees the GPU memory the model held.
        if process.is_alive():
            stop.set()
            process.join(timeout=STOP_GRACE_S if stop_asked_at is None else 1.0)
        if process.is_alive():
            process.terminate()
            process.join(timeout=5.0)
        messages.close()
