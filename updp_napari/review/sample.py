"""The sample cohort's review workspace (``updp review --sample``): run through the pipeline
with the shipped models on first use, in ``~/.cache/updp-napari/sample-workspace``, and
brought up to date when another version or other shipped models open it. Cheap to import.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

#: Holds :func:`shipped_models_stamp` of the run that last brought the workspace up to date.
STAMP_FILE = "sample-stamp"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def sample_workspace_path() -> Path:
    """Where the sample workspace lives: under ``$XDG_CACHE_HOME`` (or ``~/.cache``)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "updp-napari" / "sample-workspace"


def sample_workspace(log: Callable[[str], None] = _stderr) -> Path:
    """The sample cohort's workspace, built (or brought up to date) first where needed;
    ``log`` is told when that happens (standard error by default)."""
    from .._sample_data import sample_cohort_path
    from ..core.progress import Progress
    from ..pipeline import run_pipeline

    workspace = sample_workspace_path()
    stamp_file, stamp = workspace / STAMP_FILE, shipped_models_stamp()
    if not (workspace / "workspace.sqlite").is_file() or not all_cases_run(workspace):
        log(f"building the sample workspace in {workspace} (once)")
    elif not stamp_file.is_file() or stamp_file.read_text(encoding="ascii", errors="replace") != stamp:
        # Made by another version or other shipped models: the run redoes the cases whose
        # synthetic image those models would no longer make (decided cases stay as decided).
        log(f"updating the sample workspace in {workspace} to this version's models")
    else:
        return workspace
    run_pipeline(sample_cohort_path(), workspace, progress=Progress("sample"))
    stamp_file.write_text(stamp, encoding="ascii")
    return workspace


def shipped_models_stamp() -> str:
    """The package version and a digest of the shipped models' files (cheap: no torch)."""
    import hashlib

    from .. import __version__

    models = Path(__file__).resolve().parent.parent / "models"
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(models.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(models).as_posix().encode() + b"\0" + path.read_bytes())
    return f"{__version__} {digest.hexdigest()}"


def all_cases_run(workspace: Path) -> bool:
    """Whether every case of ``workspace`` has its synthetic image (or failed)."""
    from .store import ReviewStore

    with ReviewStore.open(workspace) as store:
        cases = store.cases()
        return bool(cases) and all("synthetic" in c.artifacts or c.status == "failed"
                                   for c in cases)
