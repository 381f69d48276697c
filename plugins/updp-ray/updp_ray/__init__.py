"""The ``ray`` executor for ``updp run --executor ray``: Ray Data over the cases to do.

The run hands over the cases still to do (finished ones are skipped before, so a rerun
resumes); Ray Data reads that list and streams it through two stages:

1. **prepare** (decode, header profile, burned-in text, report spans, domain check):
   ``workers`` CPU actors, each building its de-identifiers once (the run's
   ``CasePreparer``; a stateless task would build the lexicons again for every case);
2. **model**: an actor pool holding the generative filter (``map_batches``, ``batch_size``
   cases at a time; one GPU per actor when the cluster has GPUs), running the run's
   ``CaseSynthesizer``, which always gives the model full batches of 8.

Cases come back in input order (Ray Data's ``preserve_order``) to the run's own process,
which alone writes the workspace and scores; so the workspace is byte for byte the one
the ``local`` executor leaves.

Ray: a local instance is started for the run and shut down after it (no dashboard; its
folder a private temporary one, removed at the end) unless ``UPDP_RAY_ADDRESS`` names a
cluster (``ray start --head`` there; ``auto``: the one started on this machine). Settings,
as arguments or environment variables:

- ``address`` / ``UPDP_RAY_ADDRESS``: a Ray cluster to join (none: start one here);
- ``num_cpus`` / ``UPDP_RAY_NUM_CPUS``: CPUs of the local instance (the usable cores);
- ``object_store_mb`` / ``UPDP_RAY_OBJECT_STORE_MB``: its object store in MiB (512);
- ``batch_size`` / ``UPDP_RAY_BATCH_SIZE``: cases a model actor takes at once (8).

A Ray job hangs when actors hold every CPU: the model actor asks for half a CPU and the
preparing actors share what is left (fractions of a CPU each), so both stages always fit.
"""

from __future__ import annotations

import os
import pickle

__all__ = ["RayExecutor", "MODEL_CPUS"]

#: The CPU share a model actor asks for (it waits on the preparations most of the time on a
#: CPU-only machine, and on its GPU on another).
MODEL_CPUS = 0.5

_ENV = {"address": "UPDP_RAY_ADDRESS", "num_cpus": "UPDP_RAY_NUM_CPUS",
        "object_store_mb": "UPDP_RAY_OBJECT_STORE_MB", "batch_size": "UPDP_RAY_BATCH_SIZE"}
_DEFAULTS = {"object_store_mb": 512, "batch_size": 8}
_MINIMUM = {"num_cpus": 1, "object_store_mb": 100, "batch_size": 1}


def _setting(name: str, value):
    """A whole-number setting from its argument, else its environment variable, else the
    default; an InputError naming both when it is not a whole number at least the minimum."""
    from updp_napari.core.errors import InputError

    where = f"{name} / {_ENV[name]}"
    if value is None:
        value = os.environ.get(_ENV[name]) or _DEFAULTS.get(name)
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InputError(f"ray executor: {where} must be a whole number (got {value!r})") from None
    if isinstance(value, bool) or number < _MINIMUM[name]:
        raise InputError(f"ray executor: {where} must be at least {_MINIMUM[name]} (got {value!r})")
    return number


def _import_ray():
    from updp_napari.core.errors import InputError

    try:
        import ray
        import ray.data  # needs pyarrow and pandas
    except ImportError as exc:
        raise InputError(f"the ray executor needs Ray Data: pip install \"ray[data]\" "
                         f"(missing: {exc.name})") from None
    return ray


class RayExecutor:
    """Prepare cases on ``workers`` Ray actors (None: one per CPU of the cluster) and make
    their counterparts on a model actor pool; the executor protocol of
    ``updp_napari.executors``, with the model stage (``synthesizes``)."""

    synthesizes = True

    def __init__(self, workers: int | None = None, *, address: str | None = None,
                 num_cpus: int | None = None, object_store_mb: int | None = None,
                 batch_size: int | None = None):
        from updp_napari.core.errors import InputError

        if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
            raise InputError(f"workers must be at least 1 (got {workers})")
        self.workers = None if workers is None else int(workers)
        self.address = address or os.environ.get(_ENV["address"]) or None
        self.num_cpus = _setting("num_cpus", num_cpus)
        self.object_store_mb = _setting("object_store_mb", object_store_mb)
        self.batch_size = _setting("batch_size", batch_size)

    # -- Ray itself ----------------------------------------------------------------------

    def _start(self, ray) -> tuple[bool, str | None]:
        """Join the cluster or start a local instance; (whether this run started Ray, the
        private folder to remove after it)."""
        import logging
        import tempfile

        if ray.is_initialized():  # a notebook's own Ray: used as it is, left running
            return False, None
        # Ray's own notices (token authentication, progress bars off) stay out of the run's
        # output; its errors reach the run as exceptions.
        quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
        if self.address:
            ray.init(address=self.address, **quiet)
            return True, None
        from updp_napari.executors import usable_cores

        folder = tempfile.mkdtemp(prefix="updp-ray-")  # owner-only: spilled objects hold PHI
        ray.init(address="local", num_cpus=self.num_cpus or usable_cores(),
                 object_store_memory=self.object_store_mb * 1024 * 1024,
                 include_dashboard=False, _temp_dir=folder, **quiet)
        return True, folder

    @staticmethod
    def _stop(ray, started: bool, folder: str | None) -> None:
        import shutil

        if started:
            ray.shutdown()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    # -- the protocol ----------------------------------------------------------------------

    def map(self, preparer, tasks, ahead: int = 8, synthesizer=None):
        """Yield ``preparer(task)`` for each task in order; with ``synthesizer``, each
        in-domain case carries its counterpart (``synthetic``). What waits in memory is
        bounded by Ray Data's backpressure (its share of the object store), not ``ahead``."""
        ray = _import_ray()
        # The list Ray Data reads, drawn here (drawing adds the cases to the store); a task
        # is a case id and the study's paths, small beside what a prepared case holds.
        todo = [pickle.dumps(task, protocol=5) for task in tasks]
        if not todo:
            return
        started, folder = self._start(ray)
        try:
            yield from self._stream(ray, preparer, todo, synthesizer)
        finally:
            self._stop(ray, started, folder)

    def _stream(self, ray, preparer, todo: list[bytes], synthesizer):
        import logging
        import warnings

        from updp_napari.core.errors import UpdpError

        resources = ray.cluster_resources()
        cpus, gpus = float(resources.get("CPU", 1)), int(resources.get("GPU", 0))
        model_actors = max(1, gpus)
        model_cpus = MODEL_CPUS * model_actors if synthesizer is not None else 0.0
        self.workers = self.workers or max(1, int(cpus - model_cpus + 0.5))
        # What the preparing actors may ask for together: the CPUs the model actors leave.
        share = max(0.01, int(100 * min(1.0, (cpus - model_cpus) / self.workers)) / 100)

        context = ray.data.DataContext.get_current()
        before = (context.execution_options.preserve_order, context.enable_progress_bars)
        context.execution_options.preserve_order = True  # the run batches in input order
        context.enable_progress_bars = False
        # Ray Data's messages stay off the console (its log file in Ray's folder keeps them):
        # its errors reach the run as exceptions (its own printing of them shows a worker's
        # traceback, which may hold a study's values), and its notices are noise here.
        console = [h for h in logging.getLogger("ray.data").handlers
                   if isinstance(h, logging.StreamHandler)]
        for handler in console:
            handler.addFilter(_silent)
        try:
            # One case a block (up to 10,000 blocks): the actors share cases, not chunks.
            data = ray.data.from_items([{"task": t} for t in todo],
                                       override_num_blocks=min(len(todo), 10_000))
            with warnings.catch_warnings():  # Ray 2.60 names no parameter for _ONCE's
                warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated")
                data = data.map(_Prepare, fn_constructor_args=(preparer,), num_cpus=share,
                                compute=ray.data.ActorPoolStrategy(size=self.workers), **_ONCE)
                if synthesizer is not None:
                    import torch

                    data = data.map_batches(
                        _Synthesize, fn_constructor_args=(synthesizer, torch.get_num_threads()),
                        batch_size=self.batch_size, batch_format="pyarrow", num_cpus=MODEL_CPUS,
                        num_gpus=1 if gpus else 0,
                        compute=ray.data.ActorPoolStrategy(size=model_actors), **_ONCE)
            try:
                for row in data.iter_rows():
                    yield pickle.loads(row["case"])
            except ray.exceptions.RayError as exc:
                cause = _root_cause(exc)
                if isinstance(cause, MemoryError) or _error_name(exc) == "MemoryError":
                    raise MemoryError from None
                died = ("ActorDiedError", "WorkerCrashedError")
                if type(cause).__name__ in died or _error_name(exc) in died:
                    raise UpdpError("a Ray worker of the ray executor ended unexpectedly (out of "
                                    "memory, or a crash in a library?); run again to resume") \
                        from None
                raise UpdpError(f"a Ray worker of the ray executor failed ({_error_name(exc)}); "
                                f"run again to resume") from None
        finally:
            context.execution_options.preserve_order, context.enable_progress_bars = before
            for handler in console:
                handler.removeFilter(_silent)


def _silent(record) -> bool:
    return False


#: An actor that dies is not restarted, nor its task tried again: a case that kills its
#: worker (out of memory, a crash in a library) would kill the next one too, for ever. The
#: run stops with a message instead, and the next run resumes.
_ONCE = {"max_restarts": 0, "max_task_retries": 0}


def _error_name(exc: BaseException) -> str:
    """The name of the error a worker met: Ray Data sends it as text (its traceback), from
    which only the exception's name is taken (its message may hold a study's values)."""
    import re

    names = re.findall(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt)):", str(exc), re.M)
    names = [name for name in names if not name.startswith("ray.")]
    return names[0].rsplit(".", 1)[-1] if names else type(exc).__name__


def _root_cause(exc: BaseException) -> BaseException:
    """The exception under Ray's wrappers (Ray Data's, the task's)."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "cause", None) or exc.__cause__
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


class _Prepare:
    """A preparing actor: the run's CasePreparer, its de-identifiers built once."""

    def __init__(self, preparer):
        setup = getattr(preparer, "setup", None)
        if setup is not None:
            setup()
        self.preparer = preparer

    def __call__(self, row: dict) -> dict:
        outcome = self.preparer(pickle.loads(row["task"]))
        return {"case": pickle.dumps(outcome, protocol=5)}


class _Synthesize:
    """A model actor: the run's CaseSynthesizer, its filter loaded once, on this actor's GPU
    when it has one (torch on as many CPU threads as the run's process has, else)."""

    def __init__(self, synthesizer, threads: int):
        import torch

        torch.set_num_threads(max(1, int(threads)))
        synthesizer.setup(threads=threads)
        self.synthesizer = synthesizer

    def __call__(self, batch):
        import pyarrow

        cases = [pickle.loads(data) for data in batch.column("case").to_pylist()]
        self.synthesizer.fill(cases)  # the model runs here, not in a process of its own
        return pyarrow.table({"case": pyarrow.array(
            [pickle.dumps(c, protocol=5) for c in cases], pyarrow.binary())})
