"""The model detector trained on an annotated JSONL corpus, and cross-validated by patient.

The corpus here is made up by the test (a few notes with names, dates and phones); no words of
a real corpus are in the repository.
"""

import contextlib
import io
import json

import pytest

pytest.importorskip("transformers")

from updp_napari.cli import main
from updp_napari.core.errors import InputError, UpdpError
from updp_napari.deid.report.ner import (
    NerDetector,
    cross_validate_ner,
    map_category,
    patient_folds,
    read_training_notes,
    train_ner,
)

FIRST = ("Marta", "Olek", "Tamsin", "Bruno", "Ilse", "Kofi", "Yara", "Denis", "Runa", "Piet")
LAST = ("Quarles", "Vintner", "Okafor", "Lindqvist", "Barrow", "Szabo", "Ferreira", "Holm",
        "Achebe", "Moreau")
TINY = dict(vocab_size=200, hidden_size=32, layers=1, heads=2)


def _note(patient: int, n: int) -> dict:
    """One made-up nursing note with its spans (corpus categories)."""
    pt = LAST[(patient * 3 + n) % len(LAST)]
    nurse = FIRST[(patient + 2 * n) % len(FIRST)]
    wife = FIRST[(patient * 7 + n + 5) % len(FIRST)]
    parts = [("Pt ", None), (pt, "PTName"), (" resting comfortably overnight. Seen by RN ", None),
             (nurse, "HCPName"), (" on ", None), (f"{1 + patient % 12}/{10 + n}", "Date"),
             (". Lungs clear, sats 97% on 2L NC. Wife ", None), (wife, "RelativeProxyName"),
             (" called from ", None), (f"555-01{patient:02d}", "Phone"),
             (", updated on plan. Prior admit in ", None), (f"{90 + n}", "DateYear"),
             (". Will continue to monitor.", None)]
    text, spans = "", []
    for piece, category in parts:
        if category:
            spans.append({"start": len(text), "end": len(text) + len(piece), "category": category})
        text += piece
    return {"id": f"note_{patient:03d}_{n:03d}", "text": text, "spans": spans}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "notes.jsonl"
    notes = [_note(p, n) for p in range(6) for n in range(3)]
    path.write_text("".join(json.dumps(n) + "\n" for n in notes), encoding="utf-8")
    return path


def test_corpus_categories_map_to_the_product_categories(corpus, tmp_path):
    assert [map_category(c) for c in ("PTName", "HCPName", "RelativeProxyName", "PTNameInitial",
                                      "Date", "Location", "Phone", "Age", "Other")] == [
        "NAME", "NAME", "NAME", "NAME", "DATE", "INSTITUTION", "PHONE", "AGE", "ID"]
    assert map_category("DateYear") is None and map_category("DateYear", train_years=True) == "DATE"
    assert map_category("NAME") == "NAME" and map_category("ID") == "ID"  # already the product's
    with pytest.raises(KeyError):
        map_category("Weather")

    notes = read_training_notes(corpus)
    assert len(notes) == 18 and len({n["patient"] for n in notes}) == 6
    first = notes[0]
    assert {s["category"] for s in first["spans"]} == {"NAME", "DATE", "PHONE"}  # no year
    assert {s["category"] for s in first["gold"]} >= {"PTName", "DateYear"}  # scored as annotated
    with_years = read_training_notes([corpus], train_years=True)[0]
    assert len(with_years["spans"]) == len(first["gold"])

    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({"id": "a", "text": "Hello there",
                               "spans": [{"start": 0, "end": 5, "category": "Weather"}]}) + "\n")
    with pytest.raises(InputError, match=rf"{odd}:1: category 'Weather' has no product category"):
        read_training_notes(odd)


def test_folds_never_share_a_patient(corpus, tmp_path):
    notes = read_training_notes(corpus)
    folds = patient_folds(notes, 3, seed=0)
    assert sorted(j for f in folds for j in f) == list(range(len(notes)))
    patients = [{notes[j]["patient"] for j in f} for f in folds]
    assert all(len(p) == 2 for p in patients)
    assert not (patients[0] & patients[1] or patients[0] & patients[2] or patients[1] & patients[2])
    assert patient_folds(notes, 3, seed=0) == folds  # seeded
    assert any(patient_folds(notes, 3, seed=s) != folds for s in range(1, 6))
    with pytest.raises(UpdpError, match="6 patients"):
        patient_folds(notes, 7)
    with pytest.raises(UpdpError, match="at least 2"):
        patient_folds(notes, 1)
    # Two corpora with the same patient numbers hold different patients; an id with no
    # patient part makes the note its own patient.
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps(dict(_note(0, 0), id="loose")) + "\n"
                     + json.dumps(_note(0, 1)) + "\n")
    both = read_training_notes([corpus, other])
    assert len({n["patient"] for n in both}) == 6 + 2


@pytest.mark.slow  # the first model trained in the process: a few seconds of set-up
def test_a_jsonl_corpus_trains_a_model_that_finds_its_names(corpus, tmp_path):
    out = tmp_path / "model"
    card = train_ner(corpus, out, epochs=20, validation_share=0, **TINY)
    assert card["training"]["train_reports"] == 18 and card["validation"] is None
    assert card["training"]["inputs"] == [str(corpus)]
    assert card["category_map"]["HCPName"] == "NAME" and card["category_map"]["DateYear"] is None
    assert set(card["labels"]) == {"O", "B-NAME", "I-NAME", "B-DATE", "I-DATE", "B-PHONE", "I-PHONE"}
    detector = NerDetector(out)
    note = _note(4, 1)
    spans = detector(note["text"])
    names = [g for g in note["spans"] if g["category"].endswith("Name")]
    found = [g for g in names if any(s.start < g["end"] and g["start"] < s.end for s in spans)]
    assert len(found) >= 2, [note["text"][s.start:s.end] for s in spans]


def test_cross_validation_prints_each_fold_and_the_pooled_figures(corpus, tmp_path):
    printed = io.StringIO()
    figures = tmp_path / "cv.json"
    with contextlib.redirect_stdout(printed):
        assert main(["train-ner", str(corpus), "--cv", "2", "--cv-only", "--epochs", "2",
                     "--json-out", str(figures), "-q"]) == 0
    text = printed.getvalue()
    assert "fold 1/2:" in text and "fold 2/2:" in text and "pooled over the 2 folds" in text
    assert "the model on top of the rules: recall" in text and "rules+model" in text
    result = json.loads(figures.read_text())
    assert result["folds_k"] == 2 and result["notes"] == 18 and result["model"] is None
    assert len(result["folds"]) == 2
    for fold in result["folds"]:
        assert fold["test_patients"] == 3 and fold["train_patients"] == 3
        for name in ("rules", "model", "rules+model"):
            m = fold[name]
            assert 0 <= m["span_recall"] <= 1 and m["over_redaction"] is not None
            assert m["excluded_categories"] == ["DateYear"] and "HCPName" in m["per_category"]
    pooled = result["pooled"]
    rules = pooled["rules"]
    assert rules["notes"] == 18 and rules["patients"] == 6
    assert rules["gold_spans"] == sum(f["rules"]["gold_spans"] for f in result["folds"])
    for name in ("rules", "model", "rules+model"):
        assert pooled[name]["over_redacted_characters"] == sum(
            f[name]["over_redacted_characters"] for f in result["folds"])
    assert pooled["rules+model"]["span_recall"] >= rules["span_recall"]
    assert pooled["gain"]["span_recall"] == pytest.approx(
        pooled["rules+model"]["span_recall"] - rules["span_recall"], abs=1e-4)


def test_cross_validation_then_trains_the_final_model_on_everything(corpus, tmp_path):
    out = tmp_path / "model"
    result = cross_validate_ner(corpus, 2, out, epochs=1, bootstrap=0, **TINY)
    card = json.loads((out / "updp_ner.json").read_text())
    assert result["model"]["out"] == str(out)
    assert card["training"]["train_reports"] == 18 and card["validation"] is None
    assert card["cross_validation"]["folds"] == 2
    assert set(card["cross_validation"]) >= {"rules", "model", "rules+model"}


def _error_line(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    return err


def test_bad_corpus_input_is_a_one_line_error_naming_the_file(corpus, tmp_path, capsys):
    out = str(tmp_path / "model")
    missing = tmp_path / "absent.jsonl"
    err = _error_line(capsys, ["train-ner", str(missing), "--out", out, "-q"])
    assert err.startswith("updp train-ner: error: ") and f"{missing}: no such file" in err

    nowhere = tmp_path / "no-cohort"
    err = _error_line(capsys, ["train-ner", str(nowhere), "--cv", "2", "--cv-only", "-q"])
    assert f"{nowhere}: no such file or folder" in err

    bad = tmp_path / "bad.jsonl"
    bad.write_text(corpus.read_text().splitlines()[0] + "\n{not json\n")
    err = _error_line(capsys, ["train-ner", str(corpus), str(bad), "--out", out, "-q"])
    assert f"{bad}:2: not JSON" in err
    err = _error_line(capsys, ["train-ner", str(bad), "--cv", "2", "--cv-only", "-q"])
    assert f"{bad}:2: not JSON" in err

    err = _error_line(capsys, ["train-ner", str(corpus), "--cv", "2", "-q"])
    assert "--out DIR is needed" in err
    err = _error_line(capsys, ["train-ner", str(corpus), "--out", out, "--cv-only", "-q"])
    assert "--cv-only needs --cv" in err
    err = _error_line(capsys, ["train-ner", str(corpus), "--cv", "9", "--cv-only", "-q"])
    assert "6 patients" in err
    assert not (tmp_path / "model").exists()
