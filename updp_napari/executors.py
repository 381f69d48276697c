"""Executors: where ``updp run`` prepares its cases (``updp run --executor NAME --workers N``).

Preparing a case — decode, header profile, burned-in text (OCR), report spans, domain
check — needs no store and no model, so it can run anywhere; the run's own process stays
the only writer of the workspace, and synthesises and scores in batches (one model, on
the GPU when there is one). An executor is what runs the preparations.

**The executor protocol.** An executor is an object with

- ``workers`` (int): how many preparations may run at once (shown in summaries), and
- ``map(preparer, tasks, ahead)``: a generator yielding ``preparer(task)`` for each task of
  the iterable ``tasks``, **in the order of** ``tasks``. ``preparer`` is picklable and is
  sent once to each worker, which calls ``preparer.setup()`` before its first task (it
  holds the workspace key: send it only where the workspace itself may be read). It
  returns the case's result, a failure included, so an exception out of it means the
  worker broke: raise it (an :class:`UpdpError` for a worker that died). ``tasks`` is
  read lazily, in the calling thread (reading it writes to the store); keep at most
  about ``ahead`` results waiting beyond the workers' own, so memory stays bounded on any
  archive. When the generator is closed early (an error, Ctrl-C), stop every worker
  before returning.
- optionally ``start()``: called by the run before it reads its input and loads its own
  models, to start workers (or what they start from) in the background.

Order is what makes every executor's workspace the same, byte for byte: the run batches
the prepared cases for synthesis in the order they come back.

**Optionally, the model stage too.** An executor whose ``synthesizes`` attribute is true
is called as ``map(preparer, tasks, ahead, synthesizer=...)``: ``synthesizer`` (a
:class:`~updp_napari.pipeline.CaseSynthesizer`, picklable; ``setup()`` loads the model
where it runs) called with a list of prepared cases returns their counterparts, and the
executor sets each in-domain case's ``synthetic`` to its own before yielding it (out of
domain and failed cases pass as they are; ``synthesizer.fill(outcomes)`` does this). The
run then stores the counterparts instead of making them. The synthesizer always runs the
model on full batches, so the bytes are the same whichever cases an executor groups.

The built-in ``local`` executor runs a pool of processes on this machine (one worker: in
this process, the sequential run); without a GPU its workers run the model stage too, on
a batch of cases each, one core each. Others come from plugins: a class (or factory) in the
entry-point group ``updp_napari.executors``, called as ``factory(workers=N)`` (N may be
None: the executor's own choice) and returning an object as above (``plugins/README.md``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from .core.errors import InputError, UpdpError

GROUP = "updp_napari.executors"
BUILT_IN = ("local",)


class Executor(Protocol):
    """What ``updp run`` asks of an executor (see the module's description)."""

    workers: int

    def map(self, preparer: Callable[[Any], Any], tasks: Iterable, ahead: int) -> Iterator: ...


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class LocalExecutor:
    """Prepare cases in ``workers`` processes of this machine (None: one per usable core);
    with one worker, in this process. Worker processes ignore Ctrl-C (the run stops them)
    and are terminated when the run ends early. Without a GPU they also synthesise (see
    ``synthesizes``) and come from a fork server that imported torch and the model's code
    once (spawned elsewhere), each loading the model once; otherwise, on Linux, they
    are forked (they start at once) and never touch torch, the GPU or the store the run's
    process holds. Elsewhere they are spawned (a script then needs an
    ``if __name__ == "__main__"`` guard)."""

    def __init__(self, workers: int | None = None):
        if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
            raise InputError(f"workers must be at least 1 (got {workers})")
        self.workers = usable_cores() if workers is None else int(workers)

    @property
    def synthesizes(self) -> bool:
        """With several workers and no GPU, each worker runs the model stage on the cases it
        prepared, a batch at a time, on one core: the run's own process would otherwise be
        the one every worker waits on. With a GPU the model stays in the run's process, on
        the GPU, once."""
        return self.workers > 1 and not _gpu_available()

    def start(self, wait: bool = False) -> None:
        """Begin starting what the workers fork from, in the background, so that it imports
        torch, the model's code and the de-identifiers while the run loads its own (the run
        calls this first; optional in the protocol); with ``wait``, return once it has.
        Nothing to do for one worker."""
        if self.synthesizes:  # several workers, no GPU
            _model_worker_context(wait=wait)

    def map(self, preparer, tasks: Iterable, ahead: int = 8, synthesizer=None) -> Iterator:
        if self.workers == 1:
            yield from _in_process(preparer, tasks)
            return
        yield from _in_pool(preparer, tasks, self.workers, max(0, int(ahead)), synthesizer)


#: What a model worker needs, imported once by the process workers are forked from.
_PRELOAD = ("numpy", "torch", "diffusers.models.unets.unet_2d", "diffusers.schedulers",
            "updp_napari.pipeline", "updp_napari.deid.dicom", "updp_napari.deid.report",
            "updp_napari.synth.job")


def _model_worker_context(wait: bool = True):
    """The multiprocessing context for workers that run the model: on Linux a fork server,
    started once per process with torch and the model's code imported but no thread started
    (a fork of a process whose torch has started threads can hang), so each worker begins
    at once instead of importing them itself (seconds a worker); elsewhere spawn. With
    ``wait``, returns once the server has imported them."""
    import multiprocessing

    if not sys.platform.startswith("linux"):
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    from multiprocessing import forkserver

    try:
        context.set_forkserver_preload(list(_PRELOAD))  # for a server not yet running
        forkserver.ensure_running()
        if wait:  # a process started through it comes back only after the imports
            probe = context.Process(target=_nothing, name="updp-forkserver-ready", daemon=True)
            probe.start()
            probe.join()
    except (OSError, ValueError):  # no socket or temporary folder for it here: spawn instead
        return multiprocessing.get_context("spawn")
    return context


def _nothing() -> None:
    pass


def _gpu_available() -> bool:
    try:
        import torch
    except ImportError:  # no model stage without torch
        return False
    return bool(torch.cuda.is_available())


def _in_process(preparer, tasks: Iterable) -> Iterator:
    setup = getattr(preparer, "setup", None)
    if setup is not None:
        setup()
    for task in tasks:
        yield preparer(task)


def _worker_loop(preparer, tasks, results, synthesizer=None, state=None) -> None:
    """One worker process: leave Ctrl-C to the run, build the de-identifiers (and load the
    model, given a synthesizer) once, then prepare the tasks sent on its pipe until told to
    stop (None). A message is a first task number and up to a batch of tasks; with a
    synthesizer the in-domain cases among them get their counterparts in one model call.
    Results go back through a queue whose feeder thread sends them while the next
    tasks are prepared."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if state is not None:  # forked from a server started earlier: the run's folder and
        cwd, environ = state  # environment as they are now, as a spawned worker has them
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(environ)
    try:
        setup = getattr(preparer, "setup", None)
        if setup is not None:
            setup()
        if synthesizer is not None:
            import torch

            torch.set_num_threads(1)  # one core per worker: the workers fill the machine
            synthesizer.setup(threads=1)
        while True:
            message = tasks.recv()
            if message is None:
                break
            first, chunk = message
            done = [preparer(task) for task in chunk]
            if synthesizer is not None:
                synthesizer.fill(done)
            for k, outcome in enumerate(done):
                results.put((first + k, "ok", outcome))
    except EOFError:  # the run is gone
        return
    except BaseException as exc:  # the preparer broke (not a study: it returns those)
        results.put((-1, "error", type(exc).__name__))
    finally:
        results.close()
        results.join_thread()


def _in_pool(preparer, tasks: Iterable, workers: int, ahead: int, synthesizer=None) -> Iterator:
    import multiprocessing
    import queue

    # Workers that run the model come from a fork server (or are spawned): torch in a child
    # forked from a process whose torch has started threads can hang.
    state = None
    if synthesizer is not None:
        context = _model_worker_context(wait=False)
        if context.get_start_method() == "forkserver":
            state = (os.getcwd(), dict(os.environ))
    else:
        context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    results = context.Queue()
    pipes, processes = [], []
    for n in range(workers):
        parent_end, child_end = context.Pipe()
        process = context.Process(target=_worker_loop, name=f"updp-prepare-{n + 1}",
                                  args=(preparer, child_end, results, synthesizer, state),
                                  daemon=True)
        process.start()
        child_end.close()
        pipes.append(parent_end)
        processes.append(process)
    source = iter(tasks)
    # Tasks go out one at a time, or a model batch at a time when the workers synthesise.
    chunk = max(1, int(getattr(synthesizer, "batch", 1))) if synthesizer is not None else 1
    # Every worker busy, and a batch's worth done while the run stores or synthesises.
    limit = workers * chunk + ahead
    owner: dict[int, int] = {}  # task number -> worker still preparing it
    done: dict = {}
    drawn = yielded = 0
    exhausted = finished = False
    try:
        while True:
            while not exhausted and drawn - yielded < limit:
                batch = []
                while len(batch) < chunk:
                    task = next(source, _END)
                    if task is _END:
                        exhausted = True
                        break
                    batch.append(task)
                if not batch:
                    break
                load = [0] * workers
                for w in owner.values():
                    load[w] += 1
                worker = load.index(min(load))
                pipes[worker].send((drawn, batch))
                for k in range(len(batch)):
                    owner[drawn + k] = worker
                drawn += len(batch)
            if yielded in done:
                result = done.pop(yielded)
                yielded += 1
                yield result
                continue
            if exhausted and yielded == drawn:
                break
            try:
                seq, kind, payload = results.get(timeout=0.5)
            except queue.Empty:
                dead = [p for p in processes if p.exitcode is not None]
                if dead:
                    raise UpdpError(f"a worker process of the local executor ended unexpectedly "
                                    f"(exit code {dead[0].exitcode}; out of memory?); run again "
                                    f"to resume") from None
                continue
            if kind == "error":
                if payload == "MemoryError":
                    raise MemoryError
                raise UpdpError(f"a worker process of the local executor failed ({payload})")
            owner.pop(seq, None)
            done[seq] = payload
        finished = True
    finally:
        if finished:
            for pipe in pipes:
                pipe.send(None)
        else:  # stopped early: running preparations are abandoned, not waited for
            for process in processes:
                process.terminate()
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
        for pipe in pipes:
            pipe.close()
        results.close()
        results.cancel_join_thread()


_END = object()


def known_executors() -> list[str]:
    """The built-in executors and those the installed plugins register (not imported)."""
    from .core.registry import discover

    return list(BUILT_IN) + [name for name in discover(GROUP) if name not in BUILT_IN]


def _plugin_hint(name: str) -> str:
    """How to install the executor ``name`` when its plugin lies in this checkout."""
    from pathlib import Path

    if not name.replace("-", "").isalnum():
        return ""
    folder = Path(__file__).resolve().parent.parent / "plugins" / f"updp-{name}"
    if not (folder / "pyproject.toml").is_file():
        return ""
    return f"; its plugin is in this checkout, install it with: pip install -e {folder}"


def get_executor(name: str = "local", workers: int | None = None):
    """The executor called ``name`` with ``workers`` workers; an :class:`InputError` listing
    the known ones when there is none of that name."""
    if name == "local":
        return LocalExecutor(workers)
    from .core.registry import discover, load

    if name not in discover(GROUP):
        raise InputError(f"executor {name!r} is unknown; known executors: "
                         + ", ".join(known_executors()) + _plugin_hint(name))
    factory = load(GROUP, name)
    executor = factory(workers=workers)
    if not callable(getattr(executor, "map", None)):
        raise UpdpError(f"executor {name!r} ({GROUP}) has no map(preparer, tasks, ahead) method")
    return executor
