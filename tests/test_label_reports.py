"""Finding labels from report text (``labels.report``) and ``updp label-reports``.

Made-up sentences pin down the rules: mentions, negation and its scope, uncertainty, normal
statements, sections. The last tests measure the labeller against the MeSH terms of the
Indiana University chest X-ray reports (fetched once from the torchxrayvision wheel, see
``public_data``; skipped without network).
"""

from __future__ import annotations

import json
import os
import tarfile

import pytest
from public_data import iu_reports_dir

from updp_napari.cli import main
from updp_napari.core.errors import InputError, UpdpError
from updp_napari.core.vocabulary import FINDINGS
from updp_napari.labels import (
    NEGATIVE,
    POSITIVE,
    UNCERTAIN,
    apply_uncertain,
    evaluate_against_mesh,
    evaluate_openi_halves,
    label_report,
    label_reports,
    mesh_findings,
    read_openi,
    read_report_inputs,
)

POS, NEG, UNC = POSITIVE, NEGATIVE, UNCERTAIN


def labelled(text: str) -> dict:
    """The findings that got a label, and their labels."""
    return {f: label for f, label in label_report(text).items() if label is not None}


# -- mentions --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, finding", [
    ("Cardiomegaly.", "cardiomegaly"),
    ("Enlarged cardiac silhouette.", "cardiomegaly"),
    ("The heart size is mildly enlarged.", "cardiomegaly"),
    ("The heart is again moderately enlarged.", "cardiomegaly"),
    ("There is stable enlargement of the cardiac silhouette.", "cardiomegaly"),
    ("Borderline cardiomegaly.", "cardiomegaly"),
    ("The cardiac silhouette is borderline enlarged.", "cardiomegaly"),
    ("Small left pleural effusion.", "effusion"),
    ("Bilateral effusions.", "effusion"),
    ("There is fluid in the right costophrenic angle.", "effusion"),
    ("Layering fluid posteriorly.", "effusion"),
    ("A 9 mm nodule in the right upper lobe.", "nodule"),
    ("Multiple pulmonary nodules.", "nodule"),
    ("A large right hilar mass.", "mass"),
    ("Mass-like opacity in the left apex.", "mass"),
    ("Right lower lobe consolidation.", "consolidation"),
    ("Patchy airspace disease at the left base.", "consolidation"),
    ("Left lower lobe infiltrate.", "consolidation"),
    ("Right middle lobe pneumonia.", "consolidation"),
    ("Small right apical pneumothorax.", "pneumothorax"),
    ("Large left hydropneumothorax.", "pneumothorax"),
    ("Bibasilar atelectasis.", "atelectasis"),
    ("Volume loss in the left lower lobe.", "atelectasis"),
    ("Complete collapse of the left lung.", "atelectasis"),
])
def test_mentions_are_positive(text, finding):
    assert labelled(text) == {finding: POS} | ({"effusion": POS} if "hydro" in text else {})


@pytest.mark.parametrize("text", [
    "Small pericardial effusion.",
    "Calcified granuloma in the right upper lobe.",  # a granuloma is not a nodule here
    "No mass effect on the trachea.",
    "Known thyroid mass.",
    "Compression collapse of a thoracic vertebral body.",
    "Low lung volumes.",  # not volume loss
    "Bilateral interstitial infiltrates.",  # not airspace filling
    "The cardiac silhouette is unchanged.",  # the heart, but nothing said of its size
])
def test_phrases_that_are_no_mention(text):
    assert labelled(text) == {}


@pytest.mark.parametrize("text, finding", [
    ("Patchy airspace opacity at the left base.", "consolidation"),  # or atelectasis, edema
    ("A 1 cm nodular opacity in the right midlung.", "nodule"),  # or a vessel, a nipple
    ("Blunting of the left costophrenic angle.", "effusion"),  # or scarring
    ("Fluid in the minor fissure.", "effusion"),
    ("The cardiac silhouette is prominent.", "cardiomegaly"),
])
def test_signs_with_several_causes_are_uncertain(text, finding):
    assert labelled(text) == {finding: UNC}


# -- negation --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("No pleural effusion or pneumothorax.", {"effusion": NEG, "pneumothorax": NEG}),
    ("There is no focal consolidation, pleural effusion, or pneumothorax.",
     {"consolidation": NEG, "effusion": NEG, "pneumothorax": NEG}),
    ("Negative for pneumothorax.", {"pneumothorax": NEG}),
    ("The lungs are free of consolidation.", {"consolidation": NEG}),
    ("The lungs are clear of focal airspace disease.", {"consolidation": NEG}),
    ("Without evidence of effusion.", {"effusion": NEG}),
    ("No evidence of pneumothorax.", {"pneumothorax": NEG}),
    ("Interval resolution of the left effusion.", {"effusion": NEG}),
    ("The right pneumothorax has resolved.", {"pneumothorax": NEG}),
    ("Pneumothorax is not seen.", {"pneumothorax": NEG}),
    ("Effusion or pneumothorax is not identified.", {"effusion": NEG, "pneumothorax": NEG}),
    ("Consolidation, atelectasis, and effusion have cleared.",
     {"consolidation": NEG, "atelectasis": NEG, "effusion": NEG}),
    ("Findings of atelectasis rather than pneumonia.",
     {"atelectasis": POS, "consolidation": NEG}),
    ("The heart is not enlarged.", {"cardiomegaly": NEG}),
    ("No enlargement of the cardiac silhouette.", {"cardiomegaly": NEG}),
    ("The costophrenic angles are not blunted.", {"effusion": NEG}),
    ("There is no focal air space opacity to suggest a pneumonia.", {"consolidation": NEG}),
    ("This does not look like an acute infiltrate.", {"consolidation": NEG}),
    ("Pneumothorax is unlikely.", {"pneumothorax": NEG}),
])
def test_negation(text, expected):
    assert labelled(text) == expected


@pytest.mark.parametrize("text, expected", [
    # the sentence ends the scope
    ("No pneumothorax. Small left effusion.", {"pneumothorax": NEG, "effusion": POS}),
    # so do words that turn the clause
    ("No pneumothorax, but there is a small left effusion.",
     {"pneumothorax": NEG, "effusion": POS}),
    ("No acute disease; however, mild cardiomegaly.", {"cardiomegaly": POS}),
    ("No consolidation other than bibasilar atelectasis.",
     {"consolidation": NEG, "atelectasis": POS}),
    ("No effusion, although the heart is enlarged.", {"effusion": NEG, "cardiomegaly": POS}),
    # a bare "not" reaches the phrase right after it only
    ("The lungs are not hyperinflated and show a small area of atelectasis.",
     {"atelectasis": POS}),
    # a line break before a capital starts a new sentence; a wrapped line does not
    ("No pneumothorax\nSmall left effusion", {"pneumothorax": NEG, "effusion": POS}),
    ("No pleural effusion or\npneumothorax.", {"effusion": NEG, "pneumothorax": NEG}),
    # a cue after a mention is about it only when close and not past another phrase
    ("Cardiomegaly with mild bibasilar infiltrates versus atelectasis.",
     {"cardiomegaly": POS, "consolidation": UNC, "atelectasis": UNC}),
])
def test_negation_scope(text, expected):
    assert labelled(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("No change in the small left pleural effusion.", {"effusion": POS}),
    ("No significant interval change in cardiomegaly.", {"cardiomegaly": POS}),
    ("Mild cardiomegaly, not significantly changed.", {"cardiomegaly": POS}),
    ("No enlargement of the right upper lobe nodule.", {"nodule": POS}),
])
def test_pseudo_negations_leave_the_finding_positive(text, expected):
    assert labelled(text) == expected


# -- uncertainty -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("Possible small left effusion.", {"effusion": UNC}),
    ("Opacity which may represent atelectasis.", {"atelectasis": UNC}),
    ("Early pneumonia cannot be excluded.", {"consolidation": UNC}),
    ("Cannot exclude a small pneumothorax.", {"pneumothorax": UNC}),
    ("Questionable nodule in the left midlung.", {"nodule": UNC}),
    ("Findings suggestive of pneumonia.", {"consolidation": UNC}),
    ("Opacity suspicious for a mass.", {"mass": UNC}),
    ("Subsegmental atelectasis versus early infiltrate.",
     {"atelectasis": UNC, "consolidation": UNC}),
    ("Small effusion?", {"effusion": UNC}),
    ("Differential diagnosis includes pneumonia.", {"consolidation": UNC}),
    # A differential runs down its list: the last item is hedged as the first is.
    ("Differential considerations include a prominent epicardial fat pad, thymic "
     "tissue, a pericardial cyst or a pleural mass.", {"mass": UNC}),
])
def test_uncertainty(text, expected):
    assert labelled(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("Opacity likely representing atelectasis.", {"atelectasis": POS}),
    ("Findings consistent with right lower lobe pneumonia.", {"consolidation": POS}),
    ("Streaky opacities, probably atelectasis.", {"atelectasis": POS}),
])
def test_committed_readings_are_positive(text, expected):
    assert labelled(text) == expected


# -- normal statements -----------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("Heart size normal.", {"cardiomegaly": NEG}),
    ("Normal heart size.", {"cardiomegaly": NEG}),
    ("The cardiomediastinal silhouette is within normal limits.", {"cardiomegaly": NEG}),
    ("The heart, pulmonary vascularity and mediastinum are within normal limits.",
     {"cardiomegaly": NEG}),
    ("Heart size at the upper limits of normal.", {"cardiomegaly": NEG}),
    ("The costophrenic angles are sharp.", {"effusion": NEG}),
    ("The lungs are clear.", {"consolidation": NEG}),
    ("The lungs are clear. Small right effusion.", {"consolidation": NEG, "effusion": POS}),
])
def test_normal_statements(text, expected):
    assert labelled(text) == expected


# -- sections, reports, evidence -------------------------------------------------------------

def test_indication_history_and_comparison_are_not_labelled():
    text = ("INDICATION: Rule out pneumothorax.\nHISTORY: Prior right lower lobe pneumonia.\n"
            "COMPARISON: Chest CT with a known nodule.\n"
            "FINDINGS: Mild cardiomegaly. No effusion.\nIMPRESSION: Cardiomegaly.")
    assert labelled(text) == {"cardiomegaly": POS, "effusion": NEG}
    assert labelled("Reason for exam: ? pneumonia. Findings: clear lungs.") == {
        "consolidation": NEG}
    # a skipped section ends at a blank line: the paragraph after it has no heading of its own
    assert labelled("Comparison: none. History of pneumothorax.\n\nThe heart is enlarged.") == {
        "cardiomegaly": POS}


def test_report_label_is_the_strongest_of_its_mentions():
    # positive over uncertain over negative, as the CheXpert labeller
    text = "No effusion on the right. Possible small left effusion. Small left effusion."
    labels = label_report(text)
    assert labels["effusion"] == POS
    assert [m.label for m in labels.evidence("effusion")] == [POS, NEG, UNC]
    assert labelled("No effusion. Possible effusion.") == {"effusion": UNC}


def test_labels_cover_every_finding_and_spans_point_into_the_text():
    text = "FINDINGS:  Moderate cardiomegaly.\n\nThere is no pneumothorax."
    labels = label_report(text)
    assert list(labels) == list(FINDINGS)
    assert labels["nodule"] is None
    by_finding = {m.finding: m for m in labels.mentions}
    heart, ptx = by_finding["cardiomegaly"], by_finding["pneumothorax"]
    assert text[heart.start:heart.end] == "cardiomegaly" and heart.rule == "affirmed"
    assert text[ptx.start:ptx.end] == "pneumothorax" and text[slice(*ptx.cue)] == "no"
    out = labels.as_json(text)
    assert out["labels"]["pneumothorax"] == NEG
    assert {"finding": "pneumothorax", "text": "pneumothorax", "cue_text": "no",
            "label": NEG, "rule": "negation"}.items() <= out["mentions"][1].items()


def test_apply_uncertain_policies():
    labels = label_report("Possible pneumothorax. Cardiomegaly. No effusion.")
    assert apply_uncertain(labels, None)["pneumothorax"] == UNC
    assert apply_uncertain(labels, "positive")["pneumothorax"] == POS
    assert apply_uncertain(labels, "negative")["pneumothorax"] == NEG
    assert apply_uncertain(labels, "ignore")["pneumothorax"] is None
    assert labels.positives() == {"cardiomegaly"}
    assert labels.positives("positive") == {"cardiomegaly", "pneumothorax"}
    with pytest.raises(UpdpError):
        apply_uncertain(labels, "maybe")


def test_label_reports_keeps_ids_and_order_and_reports_progress():
    calls = []
    out = label_reports({"b": "Cardiomegaly.", "a": "No pneumothorax."},
                        progress=lambda done, total: calls.append((done, total)))
    assert list(out) == ["b", "a"]
    assert out["b"]["cardiomegaly"] == POS and out["a"]["pneumothorax"] == NEG
    assert calls[-1] == (2, 2)
    assert list(label_reports([("x", "Nodule.")])) == ["x"]
    with pytest.raises(UpdpError):
        label_report(b"bytes")


def test_pathological_input_stays_fast():
    import time

    start = time.monotonic()
    for text in ("no " + "nodule " * 5000, "effusion, " * 5000 + "not seen",
                 "heart " * 5000, "no " * 5000 + "effusion"):
        label_report(text)
    assert time.monotonic() - start < 10


# -- reading inputs --------------------------------------------------------------------------

def test_read_folder_recursively_and_skip_what_cannot_be_read(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("Cardiomegaly.", encoding="utf-8")
    (tmp_path / "sub" / "b.TXT").write_bytes("Épanchement? No effusion.".encode("cp1252"))
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01PK")
    (tmp_path / "notes.md").write_text("Pneumothorax.", encoding="utf-8")
    os.symlink(tmp_path / "a.txt", tmp_path / "link.txt")
    items, skipped = read_report_inputs(tmp_path)
    assert [i for i, _ in items] == ["a.txt", "sub/b.TXT"]
    assert dict(items)["sub/b.TXT"].startswith("Épanchement")
    assert dict(skipped) == {"binary.txt": "report is binary, not text",
                             "link.txt": "symbolic link, not followed"}
    items, skipped = read_report_inputs(tmp_path, follow_symlinks=True)
    assert "link.txt" in dict(items)


def test_read_jsonl_corpus(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "r1", "text": "Cardiomegaly."}\n\nnot json\n'
                      '{"id": "r3"}\n{"text": "No effusion."}\n'
                      '{"id": "r1", "text": "again"}\n', encoding="utf-8")
    items, skipped = read_report_inputs(corpus)
    assert items == [("r1", "Cardiomegaly."), ("line 5", "No effusion.")]
    assert [i for i, _ in skipped] == ["line 3", "line 4", "line 6"]
    with pytest.raises(InputError, match="no such file"):
        read_report_inputs(tmp_path / "missing")
    (tmp_path / "x.csv").write_text("a", encoding="utf-8")
    with pytest.raises(InputError, match="not a folder"):
        read_report_inputs(tmp_path / "x.csv")


# -- the command -----------------------------------------------------------------------------

def _folder(tmp_path):
    reports = tmp_path / "reports"
    (reports / "2024").mkdir(parents=True)
    (reports / "r1.txt").write_text("FINDINGS: Mild cardiomegaly. No pleural effusion.\n"
                                    "IMPRESSION: Cardiomegaly.", encoding="utf-8")
    (reports / "2024" / "r2.txt").write_text(
        "INDICATION: pneumothorax?\nIMPRESSION: Possible small left pleural effusion.",
        encoding="utf-8")
    (reports / "bad.txt").write_bytes(b"\x00\x00\x00")
    return reports


def test_label_reports_prints_a_table_and_lists_the_bad_file(tmp_path, capsys):
    assert main(["label-reports", str(_folder(tmp_path)), "-q"]) == 1
    out, err = capsys.readouterr()
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:3]}
    header = out.splitlines()[0].split()
    assert header == ["report", *FINDINGS]
    assert rows["r1.txt"] == ["pos", "neg", ".", ".", ".", ".", "."]
    assert rows["2024/r2.txt"] == [".", "unc", ".", ".", ".", ".", "."]
    assert "2 reports labelled" in out
    assert "skipped bad.txt: report is binary, not text" in err
    assert "Traceback" not in err


def test_label_reports_json_and_uncertain_policy(tmp_path, capsys):
    reports = _folder(tmp_path)
    assert main(["label-reports", str(reports), "--json", "--uncertain", "positive", "-q"]) == 1
    data = json.loads(capsys.readouterr().out)
    by_id = {r["id"]: r for r in data["reports"]}
    assert by_id["2024/r2.txt"]["labels"]["effusion"] == POS
    assert by_id["r1.txt"]["labels"]["cardiomegaly"] == POS
    text = (reports / "r1.txt").read_text(encoding="utf-8")
    for mention in by_id["r1.txt"]["mentions"]:
        assert text[mention["start"]:mention["end"]] == mention["text"]
    assert data["skipped"] == [{"id": "bad.txt", "reason": "report is binary, not text"}]
    assert main(["label-reports", str(reports), "--uncertain", "ignore", "-q"]) == 1
    out = capsys.readouterr().out
    assert next(line for line in out.splitlines() if line.startswith("2024/r2.txt")).split()[1:] \
        == ["."] * 7


def test_label_reports_on_a_corpus_with_progress(tmp_path, capsys):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "n1", "text": "No pneumothorax."}\n', encoding="utf-8")
    assert main(["label-reports", str(corpus)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[1].split() == ["n1", ".", ".", ".", ".", ".", "neg", "."]
    assert "label-reports: 1/1" in err  # progress, as a line when not on a terminal


def test_label_reports_errors_are_messages(tmp_path, capsys):
    assert main(["label-reports"]) == 2
    assert "give a folder" in capsys.readouterr().err
    assert main(["label-reports", str(tmp_path / "none")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["label-reports", str(tmp_path), "--iu", str(tmp_path)]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["label-reports", "--iu", str(tmp_path)]) == 2  # no reports there
    err = capsys.readouterr().err
    assert "no OpenI reports" in err and "Traceback" not in err


# -- MeSH evaluation -------------------------------------------------------------------------

def _openi_xml(findings: str, impression: str, majors: list[str]) -> str:
    terms = "".join(f"<major>{m}</major>" for m in majors)
    return ('<?xml version="1.0" encoding="utf-8"?><eCitation><MedlineCitation><Article>'
            '<Abstract><AbstractText Label="INDICATION">Pneumonia?</AbstractText>'
            f'<AbstractText Label="FINDINGS">{findings}</AbstractText>'
            f'<AbstractText Label="IMPRESSION">{impression}</AbstractText></Abstract>'
            f"</Article></MedlineCitation><MeSH>{terms}</MeSH></eCitation>")


def _openi_folder(tmp_path):
    folder = tmp_path / "NLMCXR_reports" / "ecgen-radiology"
    folder.mkdir(parents=True)
    reports = {
        1: ("Mild cardiomegaly. No effusion.", "Cardiomegaly.", ["Cardiomegaly/mild"]),
        2: ("Small left pleural effusion.", "Effusion.", ["Pleural Effusion/left/small"]),
        3: ("Possible pneumothorax.", "No acute disease.", ["normal"]),
        4: ("Cardiomegaly.", "Cardiomegaly.", ["No Indexing"]),
        5: ("Lungs are clear.", "Normal.", ["Pneumothorax/small"]),
    }
    for n, (findings, impression, majors) in reports.items():
        (folder / f"{n}.xml").write_text(_openi_xml(findings, impression, majors),
                                         encoding="utf-8")
    return folder.parent


def test_mesh_mapping():
    assert mesh_findings(["Cardiac Shadow/enlarged/mild", "Pleural Effusion/left"]) == {
        "cardiomegaly", "effusion"}
    assert mesh_findings(["Hydropneumothorax/left/large"]) == {"effusion", "pneumothorax"}
    assert mesh_findings(["Infiltrate/lung/base/patchy"]) == {"consolidation"}
    assert mesh_findings(["Infiltrate/lung/base/interstitial"]) == set()
    assert mesh_findings(["Calcified Granuloma/lung", "Costophrenic Angle/blunted",
                          "Opacity/lung/round", "Lung/hypoinflation", "normal"]) == set()


def test_read_openi_folder_and_archive(tmp_path):
    folder = _openi_folder(tmp_path)
    reports = read_openi(folder)
    assert [r.id for r in reports] == ["1", "2", "3", "4", "5"]
    assert reports[0].text == ("INDICATION: Pneumonia?\nFINDINGS: Mild cardiomegaly. No effusion."
                               "\nIMPRESSION: Cardiomegaly.")
    assert reports[0].mesh == ("Cardiomegaly/mild",)
    assert [r.half for r in reports] == ["development", "test", "development", "test",
                                         "development"]
    archive = tmp_path / "NLMCXR_reports.tgz"
    with tarfile.open(archive, "w:gz") as tgz:
        tgz.add(folder / "ecgen-radiology", arcname="ecgen-radiology")
    assert read_openi(archive) == reports
    (folder / "ecgen-radiology" / "6.xml").write_text("<eCitation>", encoding="utf-8")
    with pytest.raises(InputError, match="not well-formed"):
        read_openi(folder)


def test_evaluate_against_mesh_counts(tmp_path):
    reports = read_openi(_openi_folder(tmp_path))
    result = evaluate_against_mesh(reports, errors=5)
    assert result["reports"] == 4  # "No Indexing" left out
    heart, effusion, ptx = (result["findings"][f]
                            for f in ("cardiomegaly", "effusion", "pneumothorax"))
    assert (heart["tp"], heart["fp"], heart["fn"], heart["f1"]) == (1, 0, 0, 1.0)
    assert (effusion["tp"], effusion["fp"], effusion["fn"]) == (1, 0, 0)
    assert (ptx["tp"], ptx["fp"], ptx["fn"], ptx["recall"]) == (0, 0, 1, 0.0)
    assert result["errors"]["pneumothorax"] == {"fp": [], "fn": ["5"]}
    hedged = evaluate_against_mesh(reports, uncertain="positive")["findings"]["pneumothorax"]
    assert (hedged["tp"], hedged["fp"], hedged["fn"]) == (0, 1, 1)
    tuples = [(r.id, r.text, r.mesh) for r in reports]
    assert evaluate_against_mesh(tuples)["findings"] == result["findings"]
    halves = evaluate_openi_halves(reports)
    assert set(halves) == {"negative", "positive"}
    assert [halves["negative"][h]["reports"] for h in ("development", "test", "all")] == [3, 1, 4]


def test_label_reports_iu_option(tmp_path, capsys):
    assert main(["label-reports", "--iu", str(_openi_folder(tmp_path)), "-q"]) == 0
    out = capsys.readouterr().out
    for title in ("development half: 3 indexed reports, uncertain counted negative",
                  "test half: 1 indexed reports, uncertain counted negative",
                  "all reports: 4 indexed reports, uncertain counted positive"):
        assert title in out
    assert main(["label-reports", "--iu", str(_openi_folder(tmp_path / "j")), "--json",
                 "--uncertain", "negative", "-q"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["negative"]
    assert data["negative"]["all"]["findings"]["cardiomegaly"]["f1"] == 1.0


# -- the Indiana University reports ----------------------------------------------------------

# F1 per finding against the MeSH major terms, uncertain counted negative (the indexers left
# hedged findings out), a margin under what was measured (docs/MEASUREMENTS.md, "Finding
# labels on real reports"): development half (odd report numbers, where the rules were written) and the test
# half (even numbers, held out). Few reports name a pneumothorax (13 in each half) or a mass
# (8 and 9): one report moves their F1 by 0.04 to 0.1, so their margins are wider.
MIN_F1 = {
    "development": {"cardiomegaly": 0.95, "effusion": 0.93, "nodule": 0.83, "mass": 0.70,
                    "consolidation": 0.91, "pneumothorax": 0.85, "atelectasis": 0.93},
    "test": {"cardiomegaly": 0.95, "effusion": 0.90, "nodule": 0.76, "mass": 0.60,
             "consolidation": 0.88, "pneumothorax": 0.78, "atelectasis": 0.89},
}


@pytest.fixture(scope="module")
def iu_halves():
    folder, reason = iu_reports_dir()
    if folder is None:
        pytest.skip(f"Indiana University reports unavailable: {reason}")
    reports = read_openi(folder)
    assert len(reports) > 3900
    return evaluate_openi_halves(reports, policies=("negative", "positive"))


@pytest.mark.slow
@pytest.mark.parametrize("half", ["development", "test"])
def test_agreement_with_mesh_on_the_indiana_reports(iu_halves, half):
    result = iu_halves["negative"][half]
    assert result["reports"] > 1850
    low = {f: round(m["f1"], 3) for f, m in result["findings"].items()
           if m["f1"] < MIN_F1[half][f]}
    assert not low, f"F1 under the floor on the {half} half: {low}"


@pytest.mark.slow
def test_hedged_findings_count_against_mesh_precision(iu_halves):
    """Counting uncertain as positive keeps the recall and costs precision: the indexers
    left most hedged findings out (cardiomegaly, rarely hedged, hardly moves)."""
    for half in ("development", "test"):
        neg, pos = iu_halves["negative"][half]["micro"], iu_halves["positive"][half]["micro"]
        assert pos["recall"] >= neg["recall"] and pos["precision"] < neg["precision"]
        heart = iu_halves["positive"][half]["findings"]["cardiomegaly"]
        assert heart["f1"] > 0.95
