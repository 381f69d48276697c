import os
import shutil
from pathlib import Path

import pytest
from review_fixtures import SAFE_RISK

# Jobs run inline in tests (no worker processes), and tests never touch a model hub.
os.environ.setdefault("UPDP_SYNC", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHIPPED_DOMAIN = Path(__file__).resolve().parent.parent / "updp_napari" / "models" / "filter" / "domain.npz"


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


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """An untrained filter and barely trained scorers: the plumbing, not the quality."""
    import torch

    from updp_napari.scoring import train_scorers
    from updp_napari.synth.model import build_unet, noise_schedule, save_model_folder

    torch.set_num_threads(1)
    # The untrained filter's weights are drawn from a fixed seed: figures measured through it
    # (SSIM in windows that reach past the kept region) are then the same on every run.
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("models")
    card = {"model": {"size": 32, "patch": 2, "conditioning": "mask+known"},
            "model_id": "tiny untrained", "defaults": {"strength": 1.0, "steps": 3, "dilation": 0.02},
            "image_risk": SAFE_RISK}
    save_model_folder(out / "filter", build_unet(size=32, channels=(16, 32)), noise_schedule(), card)
    # The images it is for are the cohort generator's, which the shipped filter's domain
    # description covers (updp fit-domain): without one every case would be out of domain.
    shutil.copy(SHIPPED_DOMAIN, out / "filter" / "domain.npz")
    sample = Path(__file__).resolve().parent.parent / "sample_data"
    train_scorers(sample, out / "scorers", size=32, reid_steps=3, pathology_epochs=1)
    return out / "filter", out / "scorers"
