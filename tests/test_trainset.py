"""updp search-trainset: balanced clusters, the Fréchet distance, the greedy search under its
budget, the command end to end on tiny cohorts, and clean errors."""

import json

import numpy as np
import pytest

from updp_napari.cli import main
from updp_napari.cohort.generate import make_cohort
from updp_napari.core.errors import InputError
from updp_napari.evaluate.trainset import (
    balanced_kmeans,
    frechet_distance,
    greedy_union,
    search_pool,
)


def test_balanced_kmeans_gives_equal_sizes_and_is_deterministic():
    rng = np.random.default_rng(0)
    # Three blobs of unequal size: plain k-means would follow them, this one may not.
    x = np.concatenate([rng.normal(0, 1, (40, 3)), rng.normal(6, 1, (15, 3)), rng.normal(-6, 1, (5, 3))])
    labels = balanced_kmeans(x, 6, seed=3)
    assert sorted(np.bincount(labels, minlength=6).tolist()) == [10] * 6
    assert np.array_equal(labels, balanced_kmeans(x, 6, seed=3))
    odd = balanced_kmeans(x[:59], 6, seed=3)
    assert sorted(np.bincount(odd, minlength=6).tolist()) == [9] + [10] * 5
    # Clusters still follow the data: the far blob's rows share clusters with few others.
    assert len(set(labels[55:].tolist())) == 1
    with pytest.raises(InputError, match="clusters"):
        balanced_kmeans(x[:4], 5)


def test_frechet_distance_is_zero_for_one_set_and_grows_with_a_mean_shift():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 1, (30, 4))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    distances = [frechet_distance(a, a + shift) for shift in (0.5, 1.0, 2.0)]
    assert distances[0] > 0 and distances[0] < distances[1] < distances[2]
    # A mean shift of s in every one of 4 dimensions adds 4 s² and nothing else.
    assert distances[2] == pytest.approx(4 * 2.0 ** 2, rel=1e-6)
    # Small sets (fewer rows than dimensions) still have a finite distance.
    assert np.isfinite(frechet_distance(a[:2], a[5:8] + 1))
    with pytest.raises(InputError):
        frechet_distance(a, a[:, :3])


def _blobs(seed=2):
    rng = np.random.default_rng(seed)
    like = rng.normal(3.0, 1.0, (40, 4))      # drawn as the target is
    unlike = rng.normal(0.0, 1.0, (120, 4))
    target = rng.normal(3.0, 1.0, (25, 4))
    pool = np.concatenate([unlike, like])
    return pool, target, np.r_[np.zeros(len(unlike), bool), np.ones(len(like), bool)]


@pytest.mark.parametrize("budget", [1, 7, 20, 40, 90, 160])
def test_the_search_never_exceeds_its_budget_and_its_curve_is_what_it_says(budget):
    pool, target, _ = _blobs()
    found = search_pool(pool, target, budget, clusters=8, seed=0)
    assert len(found.chosen) == budget == len(set(found.chosen.tolist()))
    assert len(found.curve) == 8
    union = np.zeros(len(pool), bool)
    for step in found.curve:
        union |= found.clusters == step["cluster"]
        assert step["studies"] == union.sum()
        assert step["distance"] == pytest.approx(frechet_distance(pool[union], target))
    assert found.curve[-1]["studies"] == len(pool)
    kept = [s["distance"] for s in found.curve[:found.stop]]
    assert all(b < a for a, b in zip(kept, kept[1:]))
    if found.stop < len(found.curve):
        assert found.curve[found.stop]["distance"] >= kept[-1]
    assert found.curve == greedy_union(pool, found.clusters, target)


def test_the_search_prefers_pool_studies_drawn_like_the_target():
    pool, target, like = _blobs()
    found = search_pool(pool, target, 30, clusters=8, seed=0)
    assert like[found.chosen].mean() >= 0.9      # the pool holds 25 % such studies
    assert found.chosen_distance < frechet_distance(pool, target)
    with pytest.raises(InputError, match="budget"):
        search_pool(pool, target, len(pool) + 1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainset")
    # site_b carries g2 (60 % of its patients), site_a few or none.
    make_cohort(root / "target", patients=16, studies=2, seed=42, size=64, sites=2)
    make_cohort(root / "pool", patients=16, studies=2, seed=41, size=64, sites=2)
    return root


def test_the_command_runs_end_to_end_and_writes_the_named_fields(tiny, tmp_path, capsys):
    out = tmp_path / "s.json"
    rc = main(["search-trainset", "--target", str(tiny / "target"), "--group", "g2",
               "--pool", str(tiny / "pool"), "--budget", "10", "--clusters", "4",
               "--random-draws", "2", "--epochs", "1", "--size", "32", "--bootstrap", "20",
               "--json-out", str(out), "--threads", "1", "-q"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "union distance per step" in printed and "gap, searched - random" in printed
    result = json.loads(out.read_text())
    search = result["search"]
    assert search["chosen_studies"] == len(search["chosen"]) == 10
    assert {c["pool"] for c in search["chosen"]} == {str(tiny / "pool")}
    assert len(search["curve"]) == 4 and search["curve"][-1]["studies"] == 32
    assert isinstance(search["seconds"], float)
    comparison = result["comparison"]
    for name in ("searched", "random", "whole_pool"):
        entry = comparison[name]
        for key in ("target_auroc", "majority_auroc", "gap", "target_interval", "gap_interval"):
            assert key in entry
    assert comparison["searched"]["train_studies"] == comparison["random"]["train_studies"] == 10
    assert comparison["whole_pool"]["train_studies"] == 32
    assert len(comparison["random"]["per_draw"]) == 2
    assert "difference" in comparison["searched_gap_minus_whole_pool_gap"]
    assert result["majority_group"] == "g1" and isinstance(comparison["met"], (bool, type(None)))


def test_a_target_that_is_also_the_pool_keeps_its_test_and_reference_patients_out(tiny, capsys):
    target = str(tiny / "target")
    rc = main(["search-trainset", "--target", target, "--group", "g2", "--pool", target,
               str(tiny / "pool"), "--budget", "12", "--clusters", "4", "--search-only",
               "--reference-share", "0.6", "--json", "-q"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    split = result["split"]
    assert split["target_in_pool"] and "comparison" not in result
    # The target's studies that are not tested give the images searched for or join the
    # pool (the other cohort's 32 studies all do), never both.
    from_target = split["pool_studies"] - 32
    assert 0 < from_target < split["target_studies"] - split["test_studies"]
    assert split["target_images_searched_for"] > 0
    assert main(["search-trainset", "--target", target, "--group", "g2", "--pool", target,
                 "--budget", "5", "--search-only", "--reference-share", "0.01", "-q"]) == 2
    assert "reference_share 0.01" in capsys.readouterr().err


def test_errors_are_one_clean_line(tiny, tmp_path, capsys):
    target, pool = str(tiny / "target"), str(tiny / "pool")
    empty = tmp_path / "empty"
    empty.mkdir()
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "workspace.sqlite").write_bytes(b"")
    cases = [
        (["--group", "g3", "--pool", pool, "--budget", "5"], "no study of group 'g3'"),
        (["--group", "g2", "--pool", pool, "--budget", "500"], "larger than the pool"),
        (["--group", "g2", "--pool", str(empty), "--budget", "5"], "the folder is empty"),
        (["--group", "g2", "--pool", str(tmp_path / "absent"), "--budget", "5"], "no such folder"),
        (["--group", "g2", "--pool", str(workspace), "--budget", "5"], "COHORT=WORKSPACE"),
        (["--group", "g2", "--pool", pool, "--budget", "5", "--clusters", "99"], "clusters"),
        (["--group", "g2", "--pool", pool, "--budget", "0"], "budget"),
    ]
    for extra, message in cases:
        assert main(["search-trainset", "--target", target, *extra, "--search-only", "-q"]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


@pytest.mark.slow
def test_a_pool_of_counterparts_and_every_feature_kind(tiny, tiny_models, capsys):
    from updp_napari.pipeline import run_pipeline

    model, scorers = tiny_models
    workspace = tiny / "pool_ws"
    run_pipeline(tiny / "pool", workspace, model=model, scorers=scorers, pixels="off")
    source = f"{tiny / 'pool'}={workspace}"
    for kind in ("reid", "pathology", "anatomy"):
        rc = main(["search-trainset", "--target", str(tiny / "target"), "--group", "g2",
                   "--pool", source, "--budget", "8", "--clusters", "3", "--features", kind,
                   "--scorers", str(scorers), "--search-only", "--json", "-q"])
        assert rc == 0
        result = json.loads(capsys.readouterr().out)
        assert result["settings"]["features"] == kind
        assert 0 < result["split"]["pool_studies"] <= 32
        assert {c["pool"] for c in result["search"]["chosen"]} == {source}
        assert result["search"]["chosen_studies"] == 8
