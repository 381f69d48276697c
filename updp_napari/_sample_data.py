"""napari sample data: the small synthetic cohort shipped with the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .core.errors import InputError


def sample_cohort_path() -> Path:
    """Where the shipped sample cohort lives (inside a wheel, or in a source checkout)."""
    packaged = Path(str(resources.files("updp_napari"))) / "sample_data"
    checkout = Path(__file__).resolve().parent.parent / "sample_data"
    for candidate in (packaged, checkout):
        if (candidate / "ground_truth.jsonl").is_file():
            return candidate
    raise InputError(f"sample cohort not found (looked in {packaged} and {checkout}); "
                     f"reinstall updp-napari or run `make sample-data`")


def sample_cohort() -> list[tuple]:
    from ._reader import read_path

    return read_path(sample_cohort_path())
