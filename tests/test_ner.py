"""The optional model detector: trained here on a small cohort, scored on other patients."""

import contextlib
import io
import json
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("transformers")

from updp_napari.cli import main
from updp_napari.cohort.generate import make_cohort, read_ground_truth
from updp_napari.core.errors import InputError
from updp_napari.ingest import read_report

pytestmark = pytest.mark.slow
IDENTIFIERS = ("NAME", "MRN", "ACCESSION")
# Measured on this pair of cohorts (training seeds 0-3, 20 epochs): 0.91-0.95 of the held-out
# names and IDs found, 0.6-0.7 of them with exact boundaries. A model that learnt nothing
# finds close to none.
MIN_RECALL = 0.8
MIN_EXACT = 0.4


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """40 reports to train on (through the CLI), 12 reports of other patients to score;
    the cohort root and what train-ner printed."""
    root = tmp_path_factory.mktemp("ner")
    make_cohort(root / "train", patients=20, studies=2, seed=31, size=64, sites=5)
    make_cohort(root / "held", patients=6, studies=2, seed=32, size=64, sites=5)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["train-ner", str(root / "train"), "--out", str(root / "model"),
                     "--epochs", "20", "--seed", "0", "-q"]) == 0
    return root, printed.getvalue()


@pytest.fixture(scope="module")
def model_dir(trained):
    return trained[0] / "model"


@pytest.fixture(scope="module")
def detector(model_dir):
    from updp_napari.deid.report.ner import NerDetector

    return NerDetector(model_dir)


def test_train_ner_saves_a_loadable_model_with_its_figures(model_dir, trained):
    root, printed = trained
    assert "trained on 32 reports" in printed and "held-out patients" in printed
    assert "span (any overlap)   precision" in printed and "NAME" in printed
    names = {p.name for p in model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "updp_ner.json"} <= names
    assert model_dir.stat().st_mode & 0o077 == 0  # fitted to reports: owner-only like them
    card = json.loads((model_dir / "updp_ner.json").read_text())
    assert card["labels"][0] == "O" and "B-NAME" in card["labels"]
    t, v = card["training"], card["validation"]
    assert t["train_reports"] + t["validation_reports"] == 40
    assert t["validation_patients"] >= 1 and t["parameters"] < 1_000_000
    assert v["span"]["recall"] >= MIN_RECALL and v["token"]["recall"] > 0.5
    # The vocabulary was built with the PHI blanked: no patient or staff name is an entry.
    vocab = json.loads((model_dir / "tokenizer.json").read_text())["model"]["vocab"]
    names = {w for r in read_ground_truth(root / "train") for s in r["phi_spans"]
             if s["category"] == "NAME" for w in s["text"].replace(",", " ").split() if len(w) > 3}
    assert not names & set(vocab)


def test_detector_finds_held_out_names_and_ids_at_the_right_offsets(detector, trained):
    root, _ = trained
    # All held-out reports as one long text (hundreds of windows) behind non-ASCII separators:
    # offsets must land in the whole input, not in a window.
    text, gold = "", []
    for r in read_ground_truth(root / "held"):
        text += "\n\n— nächster Befund —\n\n"
        gold += [dict(g, start=g["start"] + len(text), end=g["end"] + len(text))
                 for g in r["phi_spans"] if g["category"] in IDENTIFIERS]
        text += read_report(root / "held" / r["report"])
    spans = detector(text, None)
    assert all(s.source == "model:ner" and 0.0 < s.confidence <= 1.0 for s in spans)
    assert all(text[s.start:s.end] == text[s.start:s.end].strip() != "" for s in spans)
    found = exact = 0
    for g in gold:
        hits = [s for s in spans if s.start < g["end"] and g["start"] < s.end]
        found += bool(hits)
        for s in hits:
            if (s.start, s.end) == (g["start"], g["end"]):
                assert text[s.start:s.end] == g["text"]
                exact += 1
    assert len(gold) > 40
    assert found / len(gold) >= MIN_RECALL
    assert exact / len(gold) >= MIN_EXACT
    assert detector("", None) == [] and detector("  \n", None) == []


def test_cli_merges_the_model_with_the_rules(model_dir, trained, tmp_path, capsys):
    root, _ = trained
    record = read_ground_truth(root / "held")[0]
    report = root / "held" / record["report"]
    assert main(["deid-report", str(report), "--ner-model", str(model_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for g in record["phi_spans"]:
        if g["category"] == "NAME":
            assert g["text"] not in out["text"]
    assert main(["eval-report", str(root / "held"), "--json", "-q"]) == 0
    rules = json.loads(capsys.readouterr().out)
    assert main(["eval-report", str(root / "held"), "--json", "-q", "--ner-model", str(model_dir)]) == 0
    merged = json.loads(capsys.readouterr().out)
    assert merged["recall"] >= rules["recall"]
    assert merged["whitelist_retention"] == 1.0
    assert merged["precision"] > 0.9


def _error_line(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    return err


def test_missing_or_invalid_model_folder_is_a_one_line_error(model_dir, trained, tmp_path, capsys):
    from updp_napari.deid.report.ner import NerDetector

    root, _ = trained
    report = str(root / "held" / read_ground_truth(root / "held")[0]["report"])
    missing = tmp_path / "no-model"
    err = _error_line(capsys, ["deid-report", report, "--ner-model", str(missing)])
    assert err.startswith("updp deid-report: error: ") and f"{missing}: no such folder" in err

    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("not a model")
    err = _error_line(capsys, ["eval-report", str(root / "held"), "--ner-model", str(junk)])
    assert f"{junk}: not a model made by updp train-ner (missing updp_ner.json" in err

    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(InputError, match="cannot load the model"):
        NerDetector(broken)

    err = _error_line(capsys, ["train-ner", str(root / "held"), "--out", str(junk), "-q"])
    assert "is not empty" in err


def test_the_rule_path_imports_neither_torch_nor_transformers():
    code = ("import sys, updp_napari.cli, updp_napari.deid.report, updp_napari.deid.report.ner; "
            "print(sorted({'torch', 'transformers', 'tokenizers'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
