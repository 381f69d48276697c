import os

import pytest

# Jobs run inline in tests (no worker processes), and tests never touch a model hub.
os.environ.setdefault("UPDP_SYNC", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def cohort(tmp_path_factory):
    """A small cohort shared by the read-only tests: 6 patients, 4 studies each, 3 sites."""
    from updp_napari.cohort.generate import make_cohort

    out = tmp_path_factory.mktemp("cohort") / "c"
    make_cohort(out, patients=6, studies=4, seed=11, size=256, sites=3)
    return out


@pytest.fixture(scope="session")
def records(cohort):
    from updp_napari.cohort.generate import read_ground_truth

    return read_ground_truth(cohort)


@pytest.fixture(scope="session")
def wide_cohort(tmp_path_factory):
    """More patients at a small size, for statistics over the cohort (rare cases, identity)."""
    from updp_napari.cohort.generate import make_cohort, read_ground_truth

    out = tmp_path_factory.mktemp("wide") / "c"
    make_cohort(out, patients=40, studies=3, seed=5, size=128, sites=5)
    return out, read_ground_truth(out)
