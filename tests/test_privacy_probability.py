"""The privacy attack as a calibrated probability: temperature scaling fitted on counterparts
whose patients are known, and each case's probability against chance."""

import numpy as np
import pytest

from updp_napari.core.metrics import calibration_error, fit_temperature, softmax_own


def test_temperature_scaling_recovers_the_temperature_that_made_the_answers():
    rng = np.random.default_rng(0)
    scores = rng.normal(0.0, 1.0, (4000, 12))
    true_t = 0.35
    z = scores / true_t
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    own = np.array([rng.choice(12, p=row) for row in p])  # the truth drawn as the softmax says
    t = fit_temperature(scores, own)
    assert t == pytest.approx(true_t, rel=0.1)
    # calibrated: the top guess's stated confidence matches how often it is right
    guess = scores.argmax(axis=1)
    confidence = softmax_own(scores, guess, t)
    assert calibration_error(confidence, guess == own) < 0.03
    # a far too sharp temperature is not calibrated
    assert calibration_error(softmax_own(scores, guess, t / 10), guess == own) > 0.2
    assert softmax_own(np.zeros((1, 4)), [2], 1.0)[0] == pytest.approx(0.25)  # chance
    with pytest.raises(ValueError):
        fit_temperature(np.zeros((0, 3)), [])


def test_each_case_gets_a_probability_only_from_a_calibration_of_its_scorers(tmp_path):
    from updp_napari.review.artifacts import CaseArtifacts, put_json
    from updp_napari.review.scores import reid_probability
    from updp_napari.review.store import ReviewStore

    with ReviewStore.open(tmp_path / "ws", create=True) as store:
        case = store.add_case("1.2.3")
        art = CaseArtifacts(store, case)
        best = np.array([0.9, 0.1, 0.0, -0.2])
        none = reid_probability(art, best, 0, 4, "abc")
        assert none["reid_probability"] is None and "not calibrated" in none["reid_probability_basis"]
        calibration = {"temperature": 0.1, "scorers": "abc", "pairs": 300, "patients": 100,
                       "heldout": {"calibration_error": 0.04}}
        put_json(store, case, "image_risk", {"table": None, "privacy_calibration": calibration})
        got = reid_probability(art, best, 0, 4, "abc")
        expected = np.exp(9) / (np.exp(9) + np.exp(1) + 1 + np.exp(-2))
        assert got["reid_probability"] == pytest.approx(expected, abs=1e-4)
        assert got["reid_chance"] == 0.25 and "300 counterparts" in got["reid_probability_basis"]
        # other scorers than the calibration's: no probability
        assert reid_probability(art, best, 0, 4, "other")["reid_probability"] is None
        assert reid_probability(art, best[:1], 0, 1, "abc")["reid_probability"] is None


def test_the_dock_words_say_the_probability_against_chance():
    pytest.importorskip("qtpy")
    from updp_napari._qt.review_dock import reid_probability_html

    assert reid_probability_html({}) == ""
    text = reid_probability_html({"reid_probability": 0.2, "reid_chance": 0.05})
    assert "0.20" in text and "4.0× chance" in text and "#ff6060" in text
    assert "#ff6060" not in reid_probability_html({"reid_probability": 0.06, "reid_chance": 0.05})


@pytest.mark.slow
def test_evaluate_filter_calibrates_and_the_pipeline_scores_with_it(tiny_models, tmp_path):
    import json
    import shutil
    from pathlib import Path

    from updp_napari.pipeline import run_pipeline
    from updp_napari.review.store import ReviewStore
    from updp_napari.scoring import load_scorers
    from updp_napari.synth.evaluate import evaluate_filter, record_risk, summary_lines

    sample = Path(__file__).resolve().parent.parent / "sample_data"
    filt, scorers = tiny_models
    result = evaluate_filter(sample, filt, scorers, [1.0], size=64, limit=12,
                             realism_cnn=False)
    calibration = result["privacy_calibration"]
    assert calibration["pairs"] == 12 and calibration["patients"] == 4
    assert calibration["scorers"] == load_scorers(scorers).reid.digest
    assert calibration["temperature"] > 0 and calibration["heldout"]["top1"] is not None
    assert any(line.startswith("privacy as a probability") for line in summary_lines(result))

    folder = tmp_path / "filter"
    shutil.copytree(filt, folder)
    record_risk(folder, result)
    card = json.loads((folder / "updp_filter.json").read_text())
    assert card["privacy_calibration"]["temperature"] == calibration["temperature"]
    studies = tmp_path / "in"
    for name in ("p0000_s01", "p0001_s01", "p0002_s02"):
        shutil.copytree(sample / name, studies / name)
    run_pipeline(studies, tmp_path / "ws", model=folder, scorers=scorers, pixels="off")
    with ReviewStore.open(tmp_path / "ws") as store:
        from updp_napari.review.artifacts import CaseArtifacts

        details = [CaseArtifacts(store, c.case_id).json("scores") for c in store.cases()]
    assert all(0.0 < d["reid_probability"] < 1.0 and d["reid_chance"] == pytest.approx(1 / 3,
                                                                                     abs=1e-3)
               for d in details)
    assert "calibrated on 12 counterparts of 4 patients" in details[0]["reid_probability_basis"]


@pytest.mark.slow
def test_counterparts_and_privacy_scores_do_not_depend_on_the_workspace_key(tiny_models,
                                                                             tmp_path):
    import shutil
    from pathlib import Path

    from updp_napari.pipeline import run_pipeline
    from updp_napari.review.artifacts import CaseArtifacts
    from updp_napari.review.store import ReviewStore

    sample = Path(__file__).resolve().parent.parent / "sample_data"
    filt, scorers = tiny_models
    for name in ("p0000_s01", "p0001_s01", "p0002_s02"):
        shutil.copytree(sample / name, tmp_path / "in" / name)
    seen = []
    for ws in ("ws1", "ws2"):  # each workspace makes its own key
        run_pipeline(tmp_path / "in", tmp_path / ws, model=filt, scorers=scorers, pixels="off")
        with ReviewStore.open(tmp_path / ws) as store:
            cases = store.cases()  # in input order
            seen.append(([CaseArtifacts(store, c.case_id).array("synthetic") for c in cases],
                         [c.privacy_score for c in cases], [c.case_id for c in cases],
                         store.key))
    (images1, privacy1, ids1, key1), (images2, privacy2, ids2, key2) = seen
    assert key1 != key2 and ids1 != ids2  # other keys, other case ids...
    assert all(np.array_equal(a, b) for a, b in zip(images1, images2))  # ...the same counterparts
    assert privacy1 == privacy2
