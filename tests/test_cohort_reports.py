"""Synthetic radiology reports: exact PHI spans, styles, findings and determinism."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time

import numpy as np
import pytest

from updp_napari.cohort.model import LABELS, Finding, Patient, Person, Site, Study
from updp_napari.cohort.reports import CATEGORIES, EPONYMS, ROLES, write_report

STYLES = ("a", "b", "c")
EXAM_DATE = dt.date(2019, 3, 4)
# The header form of the exam date in each style.
EXAM_DATE_TEXT = {"a": "03/04/2019", "b": "4 March 2019", "c": "2019-03-04"}
FINDINGS_HEADER = {"a": "FINDINGS:", "b": "Findings:", "c": "REPORT:"}
IMPRESSION_HEADER = {"a": "IMPRESSION:", "b": "Conclusion:", "c": "IMP:"}

# A word per label that any description of it uses.
KEYWORDS = {
    "cardiomegaly": ("cardiomegaly", "enlarged"),
    "effusion": ("effusion",),
    "nodule": ("nodule",),
    "mass": ("mass",),
    "consolidation": ("consolidation",),
    "pneumothorax": ("pneumothora",),
    "atelectasis": ("atelectasis",),
}
NEGATION = re.compile(r"\b(no|not|without|normal|nl|clear)\b", re.IGNORECASE)

ALL_FINDINGS = [
    Finding("cardiomegaly", "", "", severity="moderate"),
    Finding("effusion", "bilateral", "basilar", severity="small"),
    Finding("nodule", "right", "upper", size_cm=1.4),
    Finding("mass", "left", "lower", size_cm=5.2),
    Finding("consolidation", "right", "lower"),
    Finding("pneumothorax", "right", "apical", size_cm=2.0, severity="small"),
    Finding("atelectasis", "left", "basilar"),
]
SINGLE_FINDINGS = [[f] for f in ALL_FINDINGS]


def person(first, last, middle="", sex="F", title="", credentials=""):
    return Person(first=first, last=last, middle_initial=middle, sex=sex, title=title,
                  credentials=credentials)


RADIOLOGISTS = (person("Desmond", "Farrowe", "K", "M", "Dr.", "MD"),
                person("Ilse", "Brantmoor", "", "F", "Dr.", "MD"))
REFERRERS = (person("Priya", "Halvorsen", "", "F", "Dr.", "MD"),
             person("Lucan", "Tremayne", "B", "M", "Dr.", "MD"))
TECHNOLOGISTS = (person("Tobias", "Wrenley", "J", "M", "", "RT(R)"),
                 person("Marit", "Oszlany", "", "F", "", "RT(R)"))
STAFF = RADIOLOGISTS + REFERRERS + TECHNOLOGISTS

PATIENTS = (
    Patient(index=0, person=person("Orla", "Quenby", "T", "F"), birth_date=dt.date(1951, 2, 7),
            mrn="4417823", ssn="123-45-6789", phone="(503) 555-0199", street="77 Larch Road",
            city="Brookhollow", state="OR", zip_code="97203", height_m=1.62, weight_kg=61.0),
    Patient(index=1, person=person("Anselm", "Varkonyi", "", "M"),
            birth_date=dt.date(1926, 11, 23), mrn="8830412", ssn="987-65-4320",
            phone="(503) 555-0177", street="9 Quillon Lane", city="Brookhollow", state="OR",
            zip_code="97204", height_m=1.75, weight_kg=80.0),
)


def make_site(style: str) -> Site:
    return Site(
        code=f"site_{style}", name="St. Aldric Medical Center", short_name="ST ALDRIC MC",
        street="1200 Harbor Street", city="Fairhaven", state="OR", zip_code="97201",
        phone="(503) 555-0142", fax="(503) 555-0143", domain="staldric.org",
        report_style=style, modality="DX", photometric="MONOCHROME2", bits_stored=12,
        manufacturer="Lumora Imaging", model_name="DRX Vista 2", station_name="DRX01",
        device_serial="SN0001", uid_root="1.2.826.0.1.3680043.10.1", mrn_format="#######",
        accession_format="ACC########", radiologists=RADIOLOGISTS, referrers=REFERRERS,
        technologists=TECHNOLOGISTS,
    )


def make_study(style="a", findings=(), age=67, previous=dt.date(2019, 1, 3), patient=0,
               view="PA", history="") -> Study:
    return Study(
        study_id="S0001", patient=PATIENTS[patient], site=make_site(style), index=0,
        date=EXAM_DATE, time=dt.time(9, 14), accession="ACC20190304", view=view, age_years=age,
        referrer=REFERRERS[0], radiologist=RADIOLOGISTS[0], technologist=TECHNOLOGISTS[0],
        previous_date=previous, findings=list(findings), history=history,
    )


@pytest.fixture(scope="module")
def studies() -> list[Study]:
    """Every style with no, single, and all findings, young and old, with and without priors."""
    out = []
    for style in STYLES:
        for findings in [[], ALL_FINDINGS, *SINGLE_FINDINGS]:
            for age, patient, previous, view in ((67, 0, dt.date(2019, 1, 3), "PA"),
                                                 (92, 1, None, "AP"),
                                                 (45, 0, dt.date(2017, 6, 30), "AP")):
                out.append(make_study(style, findings, age, previous, patient, view))
    return out


@pytest.fixture(scope="module")
def reports(studies) -> list[tuple[Study, str, list[dict]]]:
    out = []
    for i, study in enumerate(studies):
        for seed in range(3):
            text, spans = write_report(study, np.random.default_rng(1000 * seed + i))
            out.append((study, text, spans))
    return out


def covered(spans, start, end, categories=None) -> bool:
    return any(s["start"] <= start and end <= s["end"]
               and (categories is None or s["category"] in categories) for s in spans)


def uncovered_words(text, spans, word, categories=None) -> list[str]:
    """Whole-word, case-insensitive occurrences of ``word`` not inside a span of ``categories``."""
    pattern = re.compile(rf"(?<![\w]){re.escape(word)}(?![\w])", re.IGNORECASE)
    return [text[max(0, m.start() - 30):m.end() + 30] for m in pattern.finditer(text)
            if not covered(spans, m.start(), m.end(), categories)]


def section(text: str, style: str) -> str:
    """Findings and impression onwards (the part that describes the image)."""
    start = text.index(FINDINGS_HEADER[style])
    return text[start:]


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<!Dr)\.\s|\n", text) if s.strip()]


# ---------------------------------------------------------------------------------------------
# spans


def test_spans_are_exact_sorted_disjoint_and_typed(reports):
    for _, text, spans in reports:
        assert spans
        previous_end = 0
        for span in spans:
            assert set(span) == {"start", "end", "category", "text", "role"}
            assert text[span["start"]:span["end"]] == span["text"]
            assert span["text"] == span["text"].strip() and span["text"]
            assert span["start"] >= previous_end, "spans overlap or are out of order"
            previous_end = span["end"]
            assert span["category"] in CATEGORIES
            assert span["role"] in ROLES


def test_every_report_has_patient_name_date_and_staff_name(reports):
    for _, _, spans in reports:
        kinds = {(s["category"], s["role"]) for s in spans}
        assert ("NAME", "patient") in kinds
        assert ("NAME", "staff") in kinds
        assert any(s["category"] == "DATE" for s in spans)


def test_patient_identifiers_only_inside_spans(reports):
    for study, text, spans in reports:
        patient = study.patient
        for word in (patient.person.first, patient.person.last):
            assert not uncovered_words(text, spans, word, {"NAME"}), word
        assert not uncovered_words(text, spans, patient.mrn, {"MRN"})
        assert not uncovered_words(text, spans, study.accession, {"ACCESSION", "URL"})
        for value in (patient.ssn, patient.phone, patient.street):
            assert not uncovered_words(text, spans, value)


def test_staff_names_only_inside_spans(reports):
    for _, text, spans in reports:
        for member in STAFF:
            # An e-mail address may carry the name; it is one EMAIL span.
            assert not uncovered_words(text, spans, member.last, {"NAME", "EMAIL"}), member.last
            assert not uncovered_words(text, spans, member.first, {"NAME", "EMAIL"}), member.first


def test_site_details_only_inside_spans(reports):
    for study, text, spans in reports:
        site = study.site
        for value in (site.name, site.short_name, site.street, site.phone, site.fax,
                      site.zip_code, site.domain):
            assert not uncovered_words(text, spans, value), value


def test_exam_date_in_style_format_is_a_date_span(reports):
    for study, text, spans in reports:
        style = study.site.report_style
        needle = EXAM_DATE_TEXT[style]
        hits = [m.start() for m in re.finditer(re.escape(needle), text)]
        assert hits, f"exam date {needle!r} missing in style {style}"
        for start in hits:
            assert covered(spans, start, start + len(needle), {"DATE"})


def test_date_and_time_like_strings_are_spans(reports):
    patterns = (r"\b\d{1,2}/\d{1,2}/\d{4}\b", r"\b\d{4}-\d{2}-\d{2}\b", r"\b\d{2}\.\d{2}\.\d{4}\b",
                r"\b\d{1,2}:\d{2}\b", r"\b\d{1,2}/\d{1,2}\b",
                r"\b\d{1,2} (January|February|March|November|December|June) \d{4}\b")
    for _, text, spans in reports:
        for pattern in patterns:
            for m in re.finditer(pattern, text):
                assert covered(spans, m.start(), m.end()), (pattern, m.group())


def test_dates_and_times_vary_in_form(reports):
    forms = {style: set() for style in STYLES}
    for study, _, spans in reports:
        for span in spans:
            if span["category"] == "DATE":
                shape = re.sub(r"[A-Za-z]+", "A", re.sub(r"\d", "9", span["text"]))
                forms[study.site.report_style].add(shape)
    assert all(len(shapes) >= 3 for shapes in forms.values()), forms
    times = {s["text"] for _, _, spans in reports for s in spans if s["category"] == "TIME"}
    assert "09:14" in times
    assert any(t.endswith(("AM", "PM")) for t in times)


def test_comparison_line_follows_previous_date(reports):
    headers = {"a": "COMPARISON:", "b": "Comparison:", "c": "COMP:"}
    for study, text, spans in reports:
        start = text.index(headers[study.site.report_style])
        end = text.index("\n", start)
        inside = [s for s in spans if start <= s["start"] < end]
        if study.previous_date is None:
            assert re.search(r"none|no prior|no previous", text[start:end].lower())
            assert not inside
        else:
            assert [s["category"] for s in inside] == ["DATE"]


# ---------------------------------------------------------------------------------------------
# ages


def test_ages_below_90_are_not_spans(reports):
    for study, text, spans in reports:
        if study.age_years >= 90:
            continue
        assert not [s for s in spans if s["category"] == "AGE"]
        assert re.search(rf"(?<!\d){study.age_years}(?!\d)", text), "age missing"


def test_ages_of_90_and_over_are_age_spans(reports):
    for study, text, spans in reports:
        if study.age_years < 90:
            continue
        ages = [s for s in spans if s["category"] == "AGE"]
        assert ages and all(s["text"] == str(study.age_years) for s in ages)
        assert not uncovered_words(text, spans, str(study.age_years))


# ---------------------------------------------------------------------------------------------
# determinism and variety


def test_same_seed_same_report_different_seed_different_report():
    study = make_study("a", ALL_FINDINGS)
    first = write_report(study, np.random.default_rng(7))
    again = write_report(study, np.random.default_rng(7))
    assert first == again
    others = {write_report(study, np.random.default_rng(seed))[0] for seed in range(8, 20)}
    assert len(others) >= 10 and first[0] not in others


def test_reports_vary_in_phi_density_and_cover_every_category():
    counts, categories, roles, names = [], set(), set(), set()
    for i in range(300):
        study = make_study(STYLES[i % 3], SINGLE_FINDINGS[i % 7], age=(67, 93)[i % 2],
                           patient=i % 2)
        _, spans = write_report(study, np.random.default_rng(i))
        counts.append(len(spans))
        categories |= {s["category"] for s in spans}
        roles |= {s["role"] for s in spans}
        names |= {s["text"] for s in spans if s["category"] == "NAME" and s["role"] == "patient"}
    assert categories == set(CATEGORIES)
    assert roles == set(ROLES)
    assert max(counts) >= 2 * min(counts)
    assert len(names) >= 8  # name orders, cases and initials


def test_patient_history_is_used_when_given():
    study = make_study("b", history="Fall from a ladder")
    text, _ = write_report(study, np.random.default_rng(0))
    assert "fall from a ladder" in text.lower()


def test_fast_enough():
    study = make_study("c", ALL_FINDINGS)
    start = time.perf_counter()
    for seed in range(200):
        write_report(study, np.random.default_rng(seed))
    assert (time.perf_counter() - start) / 200 < 0.002


# ---------------------------------------------------------------------------------------------
# findings


def test_each_positive_finding_is_described_and_not_negated(reports):
    for study, text, _ in reports:
        body = section(text, study.site.report_style).lower()
        for label, positive in study.labels.items():
            if not positive:
                continue
            assert any(k in body for k in KEYWORDS[label]), (label, body)
            for sentence in sentences(body):
                if any(k in sentence for k in KEYWORDS[label]):
                    assert not sentence.startswith("no "), (label, sentence)


def test_normal_study_has_no_positive_description(reports):
    normal = [(s, t) for s, t, _ in reports if not s.findings]
    assert normal
    for study, text in normal:
        style = study.site.report_style
        for sentence in sentences(section(text, style)):
            if any(k in sentence.lower() for words in KEYWORDS.values() for k in words):
                assert NEGATION.search(sentence), sentence
        impression = text[text.index(IMPRESSION_HEADER[style]):].lower()
        assert any(p in impression for p in ("no acute", "normal", "nad"))


def test_negatives_only_mention_absent_findings():
    # One positive at a time: the normal phrasing must leave it alone.
    for style in STYLES:
        for findings in SINGLE_FINDINGS:
            label = findings[0].label
            for seed in range(10):
                text, _ = write_report(make_study(style, findings), np.random.default_rng(seed))
                body = section(text, style).lower()
                for sentence in sentences(body):
                    for keyword in KEYWORDS[label]:
                        assert not re.search(rf"\b(no|without)\b.*{keyword}", sentence), sentence
                if label in ("effusion", "pneumothorax", "consolidation", "atelectasis"):
                    assert "lungs are clear" not in body and "lungs clear" not in body


def test_finding_details_are_rendered():
    study = make_study("a", ALL_FINDINGS)
    text, _ = write_report(study, np.random.default_rng(3))
    assert "1.4 cm" in text and "5.2 cm" in text
    assert "right upper lobe" in text and "left lower lobe" in text
    uk, _ = write_report(make_study("b", ALL_FINDINGS), np.random.default_rng(3))
    assert "left lower zone" in uk


def test_labels_cover_model():
    assert set(KEYWORDS) == set(LABELS)


# ---------------------------------------------------------------------------------------------
# eponyms


def test_eponyms_appear_in_about_half_and_are_never_phi():
    with_eponym, seen = 0, set()
    total = 0
    for style in STYLES:
        for seed in range(40):
            findings = ALL_FINDINGS[2:3] if seed % 4 == 0 else []
            text, spans = write_report(make_study(style, findings), np.random.default_rng(seed))
            total += 1
            found = [e for e in EPONYMS if e in text]
            with_eponym += bool(found)
            seen |= set(found)
            for eponym in found:
                for m in re.finditer(re.escape(eponym), text):
                    assert not any(s["start"] < m.end() and m.start() < s["end"] for s in spans)
            for span in spans:
                assert not any(e.split()[0].lower() in span["text"].lower() for e in EPONYMS)
    assert 0.3 <= with_eponym / total <= 0.8, with_eponym / total
    assert len(seen) >= 8, seen


def test_nodule_brings_fleischner_recommendation():
    texts = [write_report(make_study("a", ALL_FINDINGS[2:3]), np.random.default_rng(s))[0]
             for s in range(20)]
    assert sum("Fleischner Society" in t for t in texts) >= 10


# ---------------------------------------------------------------------------------------------
# styles


def test_styles_have_their_own_section_headers():
    texts = {style: write_report(make_study(style, ALL_FINDINGS), np.random.default_rng(1))[0]
             for style in STYLES}
    for style, text in texts.items():
        assert FINDINGS_HEADER[style] in text
        assert IMPRESSION_HEADER[style] in text
        for other in STYLES:
            if other != style:
                assert FINDINGS_HEADER[other] not in text
                assert IMPRESSION_HEADER[other] not in text
    assert "Clinical history:" in texts["b"] or "Clinical details:" in texts["b"]
    assert "HX:" in texts["c"]


def test_style_specific_phi():
    def spans_of(style):
        out = []
        for seed in range(60):
            study = make_study(style, ALL_FINDINGS)
            out += write_report(study, np.random.default_rng(seed))[1]
        return out

    a, b, c = spans_of("a"), spans_of("b"), spans_of("c")
    assert any(s["category"] == "IP" for s in c)
    assert not any(s["category"] == "IP" for s in a + b)
    assert any(s["category"] == "URL" for s in c) and any(s["category"] == "EMAIL" for s in c)
    assert any(s["category"] == "PAGER" for s in c)
    assert any(re.fullmatch(r"[a-z]+, [a-z]+", s["text"]) for s in c if s["category"] == "NAME")
    assert any(re.fullmatch(r"[A-Z]+, [A-Z]+( [A-Z])?", s["text"]) for s in a)
    assert any(re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}(st|nd|rd|th)", s["text"]) for s in b)
    assert any(s["text"].endswith("of 2019") for s in b)
    assert not any(s["category"] == "SSN" for s in b)


def test_unknown_style_falls_back_to_a():
    study = make_study("a", ALL_FINDINGS)
    odd = dataclasses.replace(study, site=dataclasses.replace(study.site, report_style="zz"))
    assert write_report(odd, np.random.default_rng(5)) == write_report(
        study, np.random.default_rng(5))


def test_age_forms_in_history():
    texts = [write_report(make_study(style, age=67), np.random.default_rng(s))[0]
             for style in STYLES for s in range(15)]
    joined = "\n".join(texts)
    for form in ("67-year-old", "67 year old", "67 yo", "67F"):
        assert form in joined, form
