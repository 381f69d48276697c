"""updp evaluate-filter: privacy–utility figures of the generative filter on a cohort."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from updp_napari.cli import main
from updp_napari.scoring import evaluate_scorers, load_scorers

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


def test_figures_curve_and_plot_with_the_shipped_scorers(tiny_models, tmp_path, capsys):
    model, _ = tiny_models
    plot = tmp_path / "curve.png"
    rc = main(["evaluate-filter", str(SAMPLE), "--filter-model", str(model), "--strengths", "0.05",
               "--size", "128", "--json", "--plot", str(plot), "-q"])
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("reid_auc_original", "reid_auc_synthetic", "pathology_auc_original",
                "pathology_auc_synthetic", "curve", "targets"):
        assert key in r
    # the filter's default strength (1 for this model) is always on the curve
    assert [c["strength"] for c in r["curve"]] == [0.05, 1.0] and r["default_strength"] == 1.0
    # the originals' figures are the scorers' own on the cohort
    own = evaluate_scorers(SAMPLE, load_scorers(), size=128)
    assert r["reid_auc_original"] == own["reid"]["verification_auc"] > 0.95
    assert r["pathology_auc_original"] == own["pathology"]["macro_auc"]
    barely, fully = r["curve"]
    # barely noised, the counterpart still carries the patient (less so than the original:
    # this tiny model works at 32 px); an untrained model drawing from noise leaves nothing
    # of the patient outside the kept findings
    assert barely["reid_auc_synthetic"] > fully["reid_auc_synthetic"] + 0.2
    assert fully["reid_auc_synthetic"] < 0.65
    assert barely["ssim_outside"] > fully["ssim_outside"]
    assert r["reid_auc_synthetic"] == fully["reid_auc_synthetic"]
    # the preserve region is kept at every strength, the rest is not
    for c in (barely, fully):
        assert c["ssim_inside"] > 0.8 > c["ssim_outside"] + 0.5
    assert r["targets"]["reid_auc_synthetic <= 0.60"]["value"] == fully["reid_auc_synthetic"]
    # the gap carries an interval from resampling patients, and it holds the gap
    gap = r["pathology_auc_gap"]
    assert gap["resampled"] == "patients" and gap["resamples"] > 1000
    assert gap["ci95"][0] <= gap["value"] <= gap["ci95"][1]
    assert gap["value"] == pytest.approx(r["pathology_auc_original"] - r["pathology_auc_synthetic"], abs=2e-4)
    assert r["targets"]["pathology_auc drop <= 0.02"]["ci95"] == gap["ci95"]
    assert r["targets"]["pathology_auc drop <= 0.02"]["value"] == gap["value"]
    # the kept region, pasted from the original, shows by its noise: the tell is measured
    assert 0.5 <= fully["region_noise_auc"] <= 1.0
    assert r["targets"]["region_noise_auc <= 0.60"]["value"] == r["region_noise_auc"]
    attack = r["region_attack"]
    assert attack["queries"] > 0 and 0 <= attack["top1"] <= 1 and attack["chance"] > 0
    assert r["targets"]["region attack top-1 <= 2 x chance"]["value"] == attack["top1"]
    image = np.asarray(Image.open(plot).convert("L"))
    assert image.shape[1] > 800 and image.std() > 10


def test_the_region_attack_finds_a_patient_by_the_kept_region_alone():
    """Each patient's studies share an outline in the kept region; a counterpart that copies
    the region is re-identified from the other studies, one that draws it afresh is not."""
    from updp_napari.synth.measure import region_attack

    rng = np.random.default_rng(1)
    patients = [f"p{k}" for k in range(12) for _ in range(2)]
    shapes = {p: rng.random((20, 20)) for p in set(patients)}
    originals = np.stack([np.pad(shapes[p] + 0.05 * rng.random((20, 20)), 6)
                          for p in patients]).astype(np.float32)
    preserve = np.zeros(originals.shape, bool)
    preserve[:, 6:26, 6:26] = True
    copied = region_attack(originals, originals, preserve, patients)
    assert copied["top1"] > 0.9 and copied["verification_auc"] > 0.9
    assert copied["chance"] == pytest.approx(1 / 12, abs=1e-3)
    drawn = region_attack(originals, rng.random(originals.shape).astype(np.float32), preserve,
                          patients)
    assert drawn["top1"] < 0.35 and 0.3 < drawn["verification_auc"] < 0.7


def test_the_region_tell_finds_a_pasted_region_by_its_noise():
    from updp_napari.synth.measure import region_noise_auc

    rng = np.random.default_rng(0)
    base = np.clip(0.5 + 0.02 * rng.standard_normal((128, 128)), 0, 1)
    region = np.zeros((128, 128), bool)
    region[40:90, 40:90] = True
    pasted = base.copy()
    pasted[region] = np.clip(0.5 + 0.06 * rng.standard_normal(region.sum()), 0, 1)
    assert region_noise_auc(pasted, region) > 0.95  # a noisier region: found
    smoother = base.copy()
    smoother[region] = 0.5
    assert region_noise_auc(smoother, region) < 0.05  # a smoother one too, the other way
    assert 0.4 < region_noise_auc(base, region) < 0.6  # the same noise: no tell
    assert region_noise_auc(base, np.zeros_like(region)) is None


def test_the_table_and_bad_input(tiny_models, tmp_path, capsys):
    model, _ = tiny_models
    assert main(["evaluate-filter", str(SAMPLE), "--filter-model", str(model), "--strengths", "1",
                 "--size", "64", "--limit", "9", "--eta", "1", "-q"]) == 0
    out = capsys.readouterr().out
    assert "re-id AUC" in out and "target reid_auc_synthetic <= 0.60" in out
    assert ", eta 1\n" in out
    assert "95 % interval" in out and "patients resampled" in out
    assert main(["evaluate-filter", str(SAMPLE), "--filter-model", str(model), "--eta", "2", "-q"]) == 2
    assert "eta must be in [0, 1]" in capsys.readouterr().err
    assert main(["evaluate-filter", str(SAMPLE), "--filter-model", str(model), "--strengths", "0,2"]) == 2
    assert "strengths must lie in (0, 1]" in capsys.readouterr().err
    assert main(["evaluate-filter", str(tmp_path / "nothing"), "--filter-model", str(model)]) == 2
    assert "no such cohort folder" in capsys.readouterr().err
    assert main(["evaluate-filter", str(SAMPLE), "--model", str(tmp_path / "none")]) == 2  # old spelling
    assert str(tmp_path / "none") in capsys.readouterr().err
