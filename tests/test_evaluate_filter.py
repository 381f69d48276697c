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
    # the preserve region is kept at every strength, the rest is not (kept as far as the 32-px
    # model sees it: its fine noise is fresh, which SSIM at 128 px counts against it)
    for c in (barely, fully):
        assert c["ssim_inside"] > c["ssim_outside"] + 0.3
    assert r["targets"]["reid_auc_synthetic <= 0.60"]["value"] == fully["reid_auc_synthetic"]
    # the gap carries an interval from resampling patients, and it holds the gap
    gap = r["pathology_auc_gap"]
    assert gap["resampled"] == "patients" and gap["resamples"] > 1000
    assert gap["ci95"][0] <= gap["value"] <= gap["ci95"][1]
    assert gap["value"] == pytest.approx(r["pathology_auc_original"] - r["pathology_auc_synthetic"], abs=2e-4)
    assert r["targets"]["pathology_auc drop <= 0.02"]["ci95"] == gap["ci95"]
    assert r["targets"]["pathology_auc drop <= 0.02"]["value"] == gap["value"]
    # the tell is measured (this untrained model draws rough noise around the kept region, so
    # the region shows by it)
    assert 0.5 <= fully["region_noise_auc"] <= 1.0
    assert r["targets"]["region_noise_auc <= 0.60"]["value"] == r["region_noise_auc"]
    attack = r["region_attack"]
    assert attack["queries"] > 0 and 0 <= attack["top1"] <= 1 and attack["chance"] > 0
    assert r["targets"]["region attack top-1 <= 2 x chance"]["value"] == attack["top1"]
    image = np.asarray(Image.open(plot).convert("L"))
    assert image.shape[1] > 800 and image.std() > 10
    # realism: an untrained model's counterparts are told from the originals at once
    by = r["realism_auc_by_classifier"]
    assert set(by) == {"logistic", "cnn"} and r["realism_auc"] == max(by.values()) > 0.9
    assert r["realism"]["folds"] == 5 and r["realism"]["grouped_by"] == "patient"
    assert r["targets"]["realism AUC <= 0.75"]["value"] == r["realism_auc"]
    assert r["targets"]["realism AUC <= 0.75"]["met"] is False
    # conspicuity: every finding, its AUCs the ones of the pathology figures
    conspicuity = r["conspicuity"]
    assert list(conspicuity) == list(r["pathology_auc_per_label_original"])
    diffs = {}
    for name, c in conspicuity.items():
        assert c["auc_original"] == r["pathology_auc_per_label_original"][name]
        assert c["auc_synthetic"] == fully["pathology_auc_per_label_synthetic"][name]
        if c["auc_original"] is not None:
            diffs[name] = c["auc_difference"]
            assert c["auc_difference"] == pytest.approx(c["auc_synthetic"] - c["auc_original"], abs=2e-4)
    target = r["targets"]["per-finding AUC within 0.03"]
    assert target["value"] == max(abs(v) for v in diffs.values())
    assert target["outside"] == sorted(k for k, v in diffs.items() if abs(v) > 0.03)
    # new positives: the normal studies of the cohort, at the scorer's thresholds
    normal = int((~(np.asarray(own_labels(SAMPLE)) > 0).any(axis=1)).sum())
    assert r["normal_studies"] == r["new_positives"]["normal_studies"] == normal > 0
    assert r["new_positive_rate"] == pytest.approx(r["new_positive_count"] / normal, abs=1e-4)
    assert r["new_positives"]["thresholds_from"] == "scorer"
    assert r["targets"]["new positives on normal studies <= 0.02"]["value"] == r["new_positive_rate"]


def own_labels(cohort):
    from updp_napari.cohort.dataset import load_cohort_images

    return load_cohort_images(cohort, 32).labels


def _toy_studies(patients: int = 40, per: int = 3, side: int = 64, seed: int = 0):
    """Smooth 'anatomy' per patient, a little per study, and fine noise: (bases, patients)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    bases = []
    for _ in range(patients):
        anatomy = 3 * ndimage.gaussian_filter(rng.standard_normal((side, side)), 6)
        for _ in range(per):
            bases.append(0.5 + anatomy + 0.05 * ndimage.gaussian_filter(rng.standard_normal((side, side)), 3))
    return np.array(bases, np.float32), np.repeat([f"p{k}" for k in range(patients)], per)


def test_the_realism_test_tells_visible_changes_and_not_fresh_noise():
    """Counterparts that differ from their originals only by a fresh draw of the same noise
    cannot be told apart (AUC near 0.5 for both classifiers; an original and its counterpart
    share their anatomy, so the figure swings more than its 120 images suggest); blurred
    ones, or ones with a faint planted texture weaker than the noise, are found (AUC near 1)."""
    import torch

    from updp_napari.synth.realism import realism_test

    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    bases, patients = _toy_studies(30, 2)

    def noise():
        return 0.02 * rng.standard_normal(bases.shape).astype(np.float32)

    originals = bases + noise()
    same = realism_test(originals, bases + noise(), patients)
    assert same["folds"] == 5 and same["originals"] == same["counterparts"] == len(bases)
    assert set(same["by_classifier"]) == {"logistic", "cnn"}
    assert all(0.3 < v < 0.65 for v in same["by_classifier"].values()), same["by_classifier"]
    assert same["auc"] == max(same["by_classifier"].values())
    from scipy import ndimage

    blurred = ndimage.gaussian_filter(bases, (0, 1, 1)) + 0.5 * noise()
    found = realism_test(originals, blurred, patients)
    assert all(v > 0.95 for v in found["by_classifier"].values()), found["by_classifier"]
    yy, xx = np.mgrid[:bases.shape[1], :bases.shape[2]]
    texture = (0.01 * np.cos(np.pi * (xx + yy) / 2)).astype(np.float32)  # period 4, diagonal
    planted = realism_test(originals, bases + noise() + texture, patients, cnn=False)
    assert planted["by_classifier"]["logistic"] > 0.95 and "cnn" not in planted["by_classifier"]


def test_grouped_folds_keep_a_patient_together():
    from updp_napari.synth.realism import grouped_folds

    patients = np.repeat([f"p{k}" for k in range(23)], 3)
    groups = np.concatenate([patients, patients])  # originals and counterparts
    folds = grouped_folds(groups, 5, seed=0)
    assert sorted(set(folds)) == [0, 1, 2, 3, 4]
    for p in set(patients):
        assert len(set(folds[groups == p])) == 1
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 6  # one patient's six images at most apart
    assert np.array_equal(folds, grouped_folds(groups, 5, seed=0))
    assert not np.array_equal(folds, grouped_folds(groups, 5, seed=1))
    assert sorted(set(grouped_folds(["a", "b", "a"], 5))) == [0, 1]  # fewer groups than folds


def test_the_conspicuity_shift_follows_the_scores():
    """Counterparts that score the findings higher: a positive shift on the positives,
    none on the negatives, every positive higher; the AUCs on each side and their gap."""
    from updp_napari.synth.measure import conspicuity_shift

    labels = np.array([[1, 0], [1, 0], [0, 0], [0, 1], [0, 0], [1, 1]])
    p_o = np.array([[0.6, 0.1], [0.3, 0.2], [0.4, 0.3], [0.5, 0.7], [0.2, 0.4], [0.35, 0.6]])
    p_s = p_o.copy()
    p_s[labels[:, 0] > 0, 0] += np.array([0.1, 0.3, 0.2])
    p_s[:, 1] = p_o[:, 1] - 0.05
    r = conspicuity_shift(p_o, p_s, labels, ("a", "b"))
    a, b = r["a"], r["b"]
    assert a["positives"] == 3 and a["negatives"] == 3
    assert a["shift_positives"] == {"median": pytest.approx(0.2), "mean": pytest.approx(0.2)}
    assert a["shift_negatives"] == {"median": 0.0, "mean": 0.0}
    assert a["share_positives_higher"] == 1.0
    # originals: positives 0.6, 0.3, 0.35 against 0.4, 0.5, 0.2 -> 5 of 9 pairs; counterparts
    # 0.7, 0.6, 0.55 against the same -> 9 of 9
    assert a["auc_original"] == pytest.approx(5 / 9, abs=1e-4) and a["auc_synthetic"] == 1.0
    assert a["auc_difference"] == pytest.approx(1 - 5 / 9, abs=2e-4)
    # a uniform drop everywhere: the AUC stands, the shift is negative, no positive higher
    assert b["auc_difference"] == 0.0 and b["share_positives_higher"] == 0.0
    assert b["shift_positives"]["median"] == pytest.approx(-0.05)
    none = conspicuity_shift(p_o, p_o, np.zeros_like(labels), ("a", "b"))
    assert none["a"]["auc_original"] is None and none["a"]["shift_positives"] is None
    assert none["a"]["share_positives_higher"] is None and none["a"]["shift_negatives"]["mean"] == 0.0


def test_the_new_positive_rate_counts_findings_drawn_into_normal_studies():
    from updp_napari.synth.measure import new_positive_rate, specificity_thresholds

    labels = np.array([[0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [1, 0]])
    p_o = np.array([[0.1, 0.1], [0.9, 0.1], [0.9, 0.1], [0.1, 0.1], [0.1, 0.1], [0.1, 0.1]])
    p_s = np.array([[0.8, 0.1],   # new: a, not called on the original
                    [0.9, 0.1],   # a on both: not new
                    [0.9, 0.8],   # a on both, b new: counted
                    [0.1, 0.2],   # nothing called
                    [0.1, 0.1],
                    [0.9, 0.9]])  # new calls, but not a normal study
    r = new_positive_rate(p_o, p_s, labels, ("a", "b"), thresholds=[0.5, 0.5])
    assert r["normal_studies"] == 5 and r["count"] == 2 and r["rate"] == 0.4
    assert r["per_finding"] == {"a": 1, "b": 1} and r["thresholds_from"] == "scorer"
    assert r["original_positive_rate"] == 0.4 and r["lost_positive_rate"] == 0.0
    # no thresholds: 95 % specificity on the normal originals
    p_normal = np.linspace(0, 1, 40)[:, None]
    t = specificity_thresholds(p_normal)
    assert (p_normal >= t).sum() == 2 and (p_normal >= np.nextafter(t[0], -1)).sum() == 3
    r = new_positive_rate(p_o, p_s, labels, ("a", "b"))
    assert r["thresholds_from"].startswith("95 % specificity")
    # five normal studies allow no call on the originals: a's threshold lies above 0.9, b's
    # just above 0.1, where two counterparts now score
    assert r["thresholds"]["a"] == 0.9 and r["count"] == 2 and r["per_finding"] == {"a": 0, "b": 2}
    assert new_positive_rate(p_o, p_s, np.ones_like(labels), ("a", "b"))["rate"] is None


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
    assert "realism test (counterparts vs originals" in out and "target realism AUC <= 0.75" in out
    assert "finding         pos  AUC orig / synth" in out
    assert "target per-finding AUC within 0.03" in out
    assert "new positives on normal studies:" in out
    assert "target new positives on normal studies <= 0.02" in out
    assert main(["evaluate-filter", str(SAMPLE), "--filter-model", str(model), "--eta", "2", "-q"]) == 2
    assert "eta must be in [0, 1]" in capsys.readouterr().err
    assert main(["evaluate-filter", str(SAMPLE), "--filter-model", str(model), "--strengths", "0,2"]) == 2
    assert "strengths must lie in (0, 1]" in capsys.readouterr().err
    assert main(["evaluate-filter", str(tmp_path / "nothing"), "--filter-model", str(model)]) == 2
    assert "no such cohort folder" in capsys.readouterr().err
    assert main(["evaluate-filter", str(SAMPLE), "--model", str(tmp_path / "none")]) == 2  # old spelling
    assert str(tmp_path / "none") in capsys.readouterr().err
