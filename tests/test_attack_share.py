"""updp attack-share: an attacker trained on the shared counterparts alone, used on originals."""

import json
import shutil
from pathlib import Path

import pytest

from updp_napari.cli import main
from updp_napari.core.vocabulary import FINDINGS

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


@pytest.mark.slow
def test_an_attacker_trained_on_the_share_is_measured_against_chance(tiny_models, tmp_path,
                                                                      capsys):
    from updp_napari.evaluate.attack import share_attack
    from updp_napari.pipeline import run_pipeline

    filt, scorers = tiny_models
    ws = tmp_path / "ws"
    run_pipeline(SAMPLE, ws, model=filt, scorers=scorers, pixels="off")  # 8 patients
    r = share_attack(ws, steps=20, input_size=32, seed=1)
    assert r["trained_on"]["patients"] == 4 and r["attacked"]["patients"] == 4
    assert r["trained_on"]["counterparts"] + r["attacked"]["originals"] == 24
    assert r["chance"] == 0.25 and 0.0 <= r["top1"] <= 1.0
    assert r["top1_over_chance"] == pytest.approx(r["top1"] * 4, abs=0.01)
    assert 0.0 <= r["verification_auc"] <= 1.0
    assert share_attack(ws, steps=20, input_size=32, seed=1) == r  # reproducible
    # The adversary who ran the pipeline on its own patients trains on their originals too.
    paired = share_attack(ws, steps=20, input_size=32, seed=1, with_originals=True)
    assert paired["trained_on"]["originals"] == paired["trained_on"]["counterparts"] > 0
    assert paired["attacked"] == r["attacked"] and "originals" in paired["attack"]
    assert paired["verification_auc"] != r["verification_auc"]  # another network
    # Split by the cohort's findings: studies with findings and normal ones add up.
    split = share_attack(ws, steps=20, input_size=32, seed=1, cohort=SAMPLE)["per_finding"]
    assert split["with findings"]["originals"] + split["normal"]["originals"] == 12
    assert all(0.0 <= f["top1"] <= 1.0 and f["chance"] == 0.25 for f in split.values())
    assert set(split) - {"with findings", "normal"} <= set(FINDINGS)

    assert main(["attack-share", str(ws), "--steps", "10", "--json", "-q"]) == 0
    assert set(json.loads(capsys.readouterr().out)) >= {"top1", "chance", "verification_auc"}
    assert main(["attack-share", str(ws), "--steps", "10", "--with-originals", "-q",
                 "--cohort", str(SAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "counterparts and 12 originals of 4 patients" in out and "with findings" in out
    assert main(["attack-share", str(ws), "--accepted-only", "-q"]) == 2  # nothing accepted
    assert "at least 4 patients" in capsys.readouterr().err
    assert main(["attack-share", str(ws), "--train-share", "1.5", "-q"]) == 2
    assert "train_share" in capsys.readouterr().err


def test_a_folder_that_is_no_workspace_is_one_line(tmp_path, capsys):
    shutil.copytree(SAMPLE / "p0000_s01", tmp_path / "x")
    assert main(["attack-share", str(tmp_path / "x"), "-q"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
