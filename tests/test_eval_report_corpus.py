"""``updp eval-report CORPUS.jsonl``: scoring on an annotated corpus, bootstrap intervals."""

import json

import pytest

from updp_napari.cli import main
from updp_napari.core.errors import InputError
from updp_napari.core.spans import Span
from updp_napari.deid.report import ReportDeidentifier
from updp_napari.evaluate.report import evaluate_corpus, patient_of, read_corpus

# Two patients, four notes; "zorblat" is a place no rule knows, "2019" alone is a DateYear.
NOTES = [
    ("note_001_001", "Seen by Dr. John Smith on 03/04/2019. Lives near zorblat.",
     [("John Smith", "HCPName"), ("03/04/2019", "Date"), ("zorblat", "Location")]),
    ("note_001_002", "Follow-up in 2019 with Dr. John Smith.",
     [("2019", "DateYear"), ("John Smith", "HCPName")]),
    ("note_002_001", "No acute findings. Heart size normal.", []),
    ("note_002_002", "Called on 05/06/2020 about the film.", [("05/06/2020", "Date")]),
]


def _note(note_id, text, spans):
    out = []
    for piece, category in spans:
        start = text.index(piece)
        out.append({"start": start, "end": start + len(piece), "category": category})
    return {"id": note_id, "text": text, "spans": out}


def write_corpus(path, notes=NOTES):
    path.write_text("".join(json.dumps(_note(*n)) + "\n" for n in notes), encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "notes.jsonl")


class Fixed:
    """A stand-in de-identifier predicting given pieces of text (first occurrence)."""

    PIECES = {"John Smith": "fake:name", "03/04": "fake:date", "Seen": "fake:fp",
              "Heart": "fake:fp", "05/06/2020": "fake:date"}

    def __init__(self, skip_second_note=True):
        self.skip = skip_second_note

    def detect(self, text, header=None):
        if self.skip and text.startswith("Follow-up"):
            return []
        return [Span(text.index(p), text.index(p) + len(p), "X", src)
                for p, src in self.PIECES.items() if p in text]


def _outside_chars():
    total = 0
    for _, text, spans in NOTES:
        gold = set()
        for piece, _ in spans:
            s = text.index(piece)
            gold |= set(range(s, s + len(piece)))
        total += sum(not c.isspace() for i, c in enumerate(text) if i not in gold)
    return total


def test_figures_against_known_predictions(corpus):
    r = evaluate_corpus(corpus, Fixed(), bootstrap=0)
    # Headline gold: note 1 three spans, note 2 one (its DateYear is excluded), note 4 one.
    assert (r["notes"], r["patients"], r["gold_spans"], r["headline_spans"]) == (4, 2, 6, 5)
    assert r["span_recall"] == 0.6  # John Smith, 03/04/2019 (partly), 05/06/2020
    assert r["span_exact_recall"] == 0.4  # John Smith in note 1, 05/06/2020
    assert r["character_recall"] == round(24 / 45, 4)  # 9 + 5 + 10 of 26 + 9 + 10
    assert r["precision"] == 0.6  # 3 of 5 predicted spans overlap gold
    assert r["over_redacted_characters"] == 9  # "Seen" and "Heart"
    assert r["outside_characters"] == _outside_chars()
    assert r["over_redaction"] == round(9 / _outside_chars(), 6)
    assert r["false_positive_characters_by_source"] == {"fake:fp": 9}
    assert r["span_recall_ci95"] is None and r["bootstrap"]["resamples"] == 0
    assert r["per_category"]["HCPName"] == {"recall": 0.5, "exact_recall": 0.5, "gold": 2,
                                            "excluded": False}
    assert r["per_category"]["Location"]["recall"] == 0.0
    assert r["per_category"]["DateYear"] == {"recall": 0.0, "exact_recall": 0.0, "gold": 1,
                                             "excluded": True}
    assert r["notes_per_second"] > 0 and r["header_used"] is False


def test_excluded_categories_are_a_parameter(corpus):
    r = evaluate_corpus(corpus, Fixed(), exclude_categories=(), bootstrap=0)
    assert r["headline_spans"] == 6 and r["span_recall"] == 0.5
    assert r["per_category"]["DateYear"]["excluded"] is False
    # Excluding a category never makes its redaction count as over-redaction.
    assert r["over_redacted_characters"] == 9
    r = evaluate_corpus(corpus, Fixed(), exclude_categories=("DateYear", "Location"), bootstrap=0)
    assert r["headline_spans"] == 4 and r["span_recall"] == 0.75


def test_real_rules_find_name_and_date_and_miss_the_unknown_place(corpus):
    r = evaluate_corpus(corpus, ReportDeidentifier(use_plugins=False), bootstrap=200)
    cats = r["per_category"]
    assert cats["HCPName"]["recall"] == 1.0 and cats["Date"]["recall"] == 1.0
    assert cats["Location"]["recall"] == 0.0
    assert r["span_recall"] == 0.8
    for name in ("span_recall", "character_recall", "over_redaction"):
        low, high = r[f"{name}_ci95"]
        assert 0.0 <= low <= r[name] <= high <= 1.0


def test_patient_grouping():
    assert patient_of("note_012_003") == "012"
    assert patient_of("site_a_7_2") == "7"
    assert patient_of("plain") is None and patient_of("x_1") is None


def test_bootstrap_over_patients_or_notes(corpus, tmp_path):
    r = evaluate_corpus(corpus, Fixed(), bootstrap=1000, seed=3)
    assert r["bootstrap"] == {"resamples": 1000, "by": "patient", "groups": 2, "seed": 3,
                              "method": "percentile"}
    # Patient 001 alone twice: 2/4; patient 002 alone twice: 1/1; each a quarter of draws.
    assert r["span_recall_ci95"] == [0.5, 1.0]
    assert r == evaluate_corpus(corpus, Fixed(), bootstrap=1000, seed=3) | {
        "detect_seconds": r["detect_seconds"], "notes_per_second": r["notes_per_second"]}
    by_note = evaluate_corpus(corpus, Fixed(), bootstrap=1000, bootstrap_by="note")
    assert by_note["bootstrap"]["by"] == "note" and by_note["bootstrap"]["groups"] == 4
    assert by_note["patients"] is None
    # Ids of another form: resampled by note.
    other = [(f"n{i}", text, spans) for i, (_, text, spans) in enumerate(NOTES)]
    r = evaluate_corpus(write_corpus(tmp_path / "other.jsonl", other), Fixed(), bootstrap=100)
    assert r["bootstrap"]["by"] == "note" and r["bootstrap"]["groups"] == 4


SECRET = "Seen by Dr. Secret Name"


@pytest.mark.parametrize("lines, message", [
    (None, "no such file"),
    ([], "no notes"),
    (["", "  "], "no notes"),
    ([{"id": "a_1_1", "text": SECRET, "spans": []}, "{not json " + SECRET], ":2: not JSON"),
    ([{"id": "a_1_1", "spans": []}], ":1: note has no text"),
    ([{"id": "a_1_1", "text": SECRET, "spans": [{"start": 0, "end": 99, "category": "X"}]}],
     ":1: span 1 out of range"),
    ([{"id": "a_1_1", "text": SECRET, "spans": [{"start": 4, "end": 4, "category": "X"}]}],
     ":1: span 1 has start >= end"),
])
def test_bad_input_is_a_one_line_error(tmp_path, capsys, lines, message):
    path = tmp_path / "bad.jsonl"
    if lines is not None:
        path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n"
                                for x in lines), encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_corpus(path)
    assert str(path) in str(exc.value) and message in str(exc.value)
    assert main(["eval-report", str(path), "-q"]) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("updp eval-report: error: ") and message in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert "Secret" not in err + captured.out


def test_cli_table_and_json(corpus, capsys):
    assert main(["eval-report", str(corpus), "-q", "--bootstrap", "200"]) == 0
    out = capsys.readouterr().out
    for label in ("recall (any overlap)", "recall (exact span)", "character recall",
                  "precision", "over-redaction", "95 % CI", "notes/s", "HCPName",
                  "excluded from the headline"):
        assert label in out
    assert "80.00 %" in out and "John" not in out

    assert main(["eval-report", str(corpus), "--json", "-q", "--exclude-categories", "",
                 "--bootstrap", "0", "--bootstrap-by", "note"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["excluded_categories"] == [] and result["headline_spans"] == 6
    assert result["span_recall_ci95"] is None and result["bootstrap"]["by"] == "note"
