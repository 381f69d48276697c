"""Report rules on the language of clinical notes: relatives, staff and places by context,
dates and numbers as notes write them, and the clinical look-alikes that are no PHI.

Every sentence here is made up for the test; none comes from a real note.
"""

import pytest

from updp_napari.deid.report import ReportDeidentifier, SiteConfig
from updp_napari.deid.report.narrative import Reader
from updp_napari.deid.report.vocabulary import word_classes


@pytest.fixture(scope="module")
def deid():
    return ReportDeidentifier(use_plugins=False)


def found(deid, text):
    return [(text[s.start:s.end], s.category) for s in deid.detect(text)]


def covered(deid, text, phrase):
    start = text.index(phrase)
    end = start + len(phrase)
    return all(any(s.start <= i < s.end for s in deid.detect(text)) for i in range(start, end)
               if not text[i].isspace() and text[i] not in ".,")


@pytest.mark.parametrize("text, name", [
    ("Social: daughter Rosalind called twice for updates.", "Rosalind"),
    ("social- son bill in to visit this evening.", "bill"),
    ("SOCIAL: WIFE MARGARET AND SON THEODORE IN TO VISIT.", "MARGARET"),
    ("SOCIAL: WIFE MARGARET AND SON THEODORE IN TO VISIT.", "THEODORE"),
    ("Sons Jerome and Patrick in to visit, aware of plan.", "Patrick"),
    ("Niece, Philippa Gronwald, is health care proxy.", "Philippa Gronwald"),
    ("pt's dtr-in-law Rosamund Tully visited.", "Rosamund Tully"),
    ("Contacts: Orlaith Venn (sister) cell# 555-201-4477", "Orlaith Venn"),
    ("Family: Nephew, Al, was updated by the team.", "Al"),
    ("social: rob called twice overnight, aware of plan.", "rob"),
    ("FAMILY: LANCE HAS PHONED FOR AN UPDATE.", "LANCE"),
])
def test_relatives_are_found_by_their_relation(deid, text, name):
    assert covered(deid, text, name), found(deid, text)


@pytest.mark.parametrize("text, name", [
    ("FREQUENT PVCS. T. KOWALSKI AWARE, MG GIVEN.", "T. KOWALSKI"),
    ("ABG improved on current settings.\nHelga Brandt, RRT", "Helga Brandt"),
    ("plan discussed per Dr.Okonkwo this am", "Okonkwo"),
    ("DRS FERREIRA AND LINDQVIST AWARE OF BP.", "LINDQVIST"),
    ("MET WITH CASEWORKER INGRID SOLBERG RE PLACEMENT.", "INGRID SOLBERG"),
    ("line ok to use per NP Bartholomew Quist.", "Bartholomew Quist"),
    ("Remains stable overnight.\nWINIFRED", "WINIFRED"),
    ("will consult with dawn kowalczyk re wound care.", "dawn kowalczyk"),
])
def test_staff_are_found_by_credentials_titles_and_verbs(deid, text, name):
    assert covered(deid, text, name), found(deid, text)


@pytest.mark.parametrize("text, place", [
    ("Will transfer to Wexford 4 when a bed opens.", "Wexford 4"),
    ("PT TRANSFERRED TO WEXFORD7 FOR TELEMETRY.", "WEXFORD7"),
    ("She lives in Frostburg with her husband.", "Frostburg"),
    ("pt lives in frostburg with her husband.", "frostburg"),
    ("REFERRED TO MH FOR CATH.", "MH"),
    ("accepted by St. Bernadette's for rehab", "St. Bernadette"),
    ("family will drive up from San Antonio tomorrow", "San Antonio"),
    ("to go to kessler-ridgeway rehab in the am", "kessler-ridgeway"),
    ("58 YO MAN TRANSFERRED FROM MEMORIAL HOSPITAL WITH CHF", "MEMORIAL HOSPITAL"),
    ("She was first seen at mh. Now on a heparin drip.", "mh"),
    ("DIURESED WELL. TRANSFER WEXFORD 2 IN AM.", "WEXFORD 2"),
    ("belongings sent up from wexford 5 this am", "wexford 5"),
    ("FAMILY DROVE IN FROM THE WESTERN SHORE OVERNIGHT.", "WESTERN SHORE"),
    ("Scan booked for 9am on South Campus, then clinic.", "South Campus"),
    ("moved here from the north county last spring", "north county"),
    ("WIFE IS PRESIDENT OF ACMEX, VISITING DAILY.", "ACMEX"),
    ("Son works at Brindlecombe Foundry, will call tonight.", "Brindlecombe Foundry"),
    ("found down at home -> WH EW, intubated there.", "WH"),
    ("MAY BE EVALUATED BY NWMC FOR VAD.", "NWMC"),
    ("plan for transfer to holy family rehab on monday", "holy family rehab"),
    ("bed offered at rehab(good shepherd Memorial) tomorrow", "good shepherd Memorial"),
    ("will be discharged to Holy Name tomorrow", "Holy Name"),
])
def test_places_are_found_after_words_of_moving_and_living(deid, text, place):
    assert covered(deid, text, place), found(deid, text)


@pytest.mark.parametrize("text, date", [
    ("PMH: CABG, echo 8/86 with EF 30%.", "8/86"),
    ("s/p AVR '98, on coumadin", "'98"),
    ("was admitted to rehab in Sept. for weakness", "Sept."),
    ("cultures drawn on the 14th. no growth", "14th"),
    ("NEPHROLITHIASIS-9/2/93. SEE OMR", "9/2/93"),
    ("Progress Note 21 Apr, 21 0700-1900", "21 Apr, 21"),
    ("He went back to the OR on 7-9 for a washout.", "7-9"),
    ("hct drawn on3/22/91 after the transfusion", "3/22/91"),
])
def test_dates_as_notes_write_them(deid, text, date):
    assert covered(deid, text, date), found(deid, text)


@pytest.mark.parametrize("text, phone", [
    ("call sister at 410- 555- 0192 anytime", "410- 555- 0192"),
    ("DAUGHTER---410 555-0134 & SON", "410 555-0134"),
    ("home phone 555-0178", "555-0178"),
    ("Pager: #61123", "61123"),
    ("visited today (410 555 01922) with his son", "410 555 01922"),
])
def test_phone_numbers_split_by_spaces_or_dashes(deid, text, phone):
    assert covered(deid, text, phone), found(deid, text)


@pytest.mark.parametrize("text", [
    "Strength 5/5 in all extremities, 1/2 NS at 75 cc/hr.",
    "Vent settings PS 10/5, FiO2 40%.",
    "SBP 100-120, HR 80-90, shift 1900-0700 uneventful.",
    "ABG 7.35/42/88, K 3.9.",
    "PT REMAINS SEDATED. OOB TO CHAIR. NPO. ALERT AND ORIENTED, MAE.",
    "Pt continues on levophed. Transfer to MICU when bed available. Sent to CT at noon.",
    "Sputum grew S. aureus; C. diff negative.",
    "FOLEY PATENT. CONT TO MONITOR. WILL DIURESE.",
    "Lasix given at 16:00 with good response.",
    "ST ELEVATIONS RESOLVED. MS CHANGES NOTED.",
    "HOB 30' AT ALL TIMES.",
    "Weaned from 2-4 L NC on 5-10 mcg of fentanyl.",
    "Daughter's wedding is next month; son very supportive.",
    "Husband works at home; wife employed by the county.",
    "Crackles at the left base, south of the scar; lateral side clear.",
    "Owner of the dog bite report was notified by the ED.",
    "pt will consult with hope nurses re care; discussed with mark ups team.",
    "Brought in by a good samaritan who called 911.",
    "chaplain visited; prayer to the sacred heart requested by family.",
    "social: wife called twice. Family: will visit tomorrow.",
    "TSH ED LEVEL PENDING. SEEN BY TSH AND LDH.",
    "Son, A., to call back.",
])
def test_clinical_look_alikes_are_not_redacted(deid, text):
    assert found(deid, text) == []


def test_times_of_dated_events_stay_phi_and_a_site_may_redact_every_time(deid):
    assert ("0954", "TIME") in found(deid, "exam 2023-09-20 0954")
    assert ("10:21", "TIME") in found(deid, "Portable AP. Obtained at 10:21.")
    text = "Lasix given at 16:00 with good response."
    assert found(ReportDeidentifier(SiteConfig(times="all"), use_plugins=False), text) == [("16:00", "TIME")]


def test_site_config_times_must_be_dated_or_all(tmp_path):
    from updp_napari.core.errors import InputError

    path = tmp_path / "site.toml"
    path.write_text('times = "some"\n', encoding="utf-8")
    with pytest.raises(InputError, match="times"):
        SiteConfig.load(path)
    path.write_text('times = "all"\n', encoding="utf-8")
    assert SiteConfig.load(path).times == "all"


def test_word_classes_tell_names_words_and_clinical_vocabulary_apart():
    wc = word_classes()
    reader = Reader("Daughter Rosalind called. She will go home.", wc)
    assert reader.cased
    assert reader.person_word("Rosalind", 0)  # a given name that is no English word
    assert not reader.person_word("Grace", 0) and reader.person_word("Grace", 2)  # a word too
    assert not reader.person_word("OOB", 2) and not reader.person_word("will", 2)
    assert reader.person_word("Small", 3)  # after a title anything but stop words
    assert not Reader("PT REMAINS SEDATED ON PROPOFOL", wc).cased


def test_a_name_found_once_is_found_again_in_the_same_note(deid):
    text = "Son Tarquin at bedside.\nLater Tarquin asked about discharge."
    assert [t for t, c in found(deid, text)].count("Tarquin") == 2


def test_misspelt_and_clinically_shaped_words_are_no_names(deid):
    wc = word_classes()
    assert wc.misspelt("initally") and wc.misspelt("percautions")
    assert not wc.misspelt("przybylo")
    reader = Reader("PT INITALLY ON PRECAUTIONS, CARDIOVERSION DONE.", wc)
    assert not reader.person_word("INITALLY", 2) and not reader.person_word("CARDIOVERSION", 2)
    assert reader.person_word("PRZYBYLO", 2)


@pytest.mark.parametrize("text, name, after", [
    ("Patient: VAN DER BERG, Dorothy    MRN: 1234567", "Dorothy", "MRN"),
    ("PATIENT: MORALES, ERIC M    SEX: M", "ERIC", "SEX"),
    ("Reported by Dr Zoe Martinez, Consultant Radiologist", "Martinez", "Consultant"),
    ("Dictated by: M. Jankowski\nTyped by: CC", "Jankowski", "Typed"),
])
def test_a_name_ends_at_the_next_field_the_line_or_the_role(deid, text, name, after):
    assert covered(deid, text, name)
    assert not any(after in t for t, _ in found(deid, text)), found(deid, text)


def test_surrogates_leave_the_next_field_label_alone(deid):
    out = deid.deidentify("PATIENT: MORALES, ERIC M    SEX: M", mode="surrogate", key=b"k" * 32).text
    assert out.endswith("    SEX: M") and "MORALES" not in out and "ERIC" not in out


def test_a_name_found_again_yields_to_a_protected_term(deid):
    text = "Discussed with Dr Hampton.\nNo Hampton hump or Westermark sign."
    starts = [s.start for s in deid.detect(text)]
    assert text.index("Hampton") in starts and text.index("Hampton hump") not in starts


def test_the_last_letter_of_a_sentence_is_no_initial_before_a_name(deid):
    # "clear. Orla Venn, RRT": the "r." ending "clear" begins no name.
    text = "Lungs clear. Orla Venn, RRT"
    names = [t for t, c in found(deid, text) if c == "NAME"]
    assert names and all(t == "Orla Venn" for t in names), names
    assert covered(deid, "Seen by J.S. VENN RRT", "J.S. VENN")


@pytest.mark.parametrize("text, place", [
    ("transferred from pinecrest general hospital today", "pinecrest general hospital"),
    ("imaging at st. aldwin medical center, reviewed", "st. aldwin medical center"),
])
def test_institution_words_before_an_institution_word_in_a_lower_case_note(deid, text, place):
    assert covered(deid, text, place)


def test_rn_before_a_name_in_a_note_all_in_lower_case(deid):
    assert covered(deid, "critical result called to rn quinlan at 10:00, rn aware.", "quinlan")
    assert not [t for t, c in found(deid, "sats 97 on 4 l np, tol well.") if c == "NAME"]
