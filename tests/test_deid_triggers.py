"""The report rules try each pattern only where a word that can begin it stands.

These tests hold the trigger word lists to the patterns: a pattern edited without its list
would silently stop firing, which no accuracy figure on one cohort would show at once.
"""

import re
from pathlib import Path

import pytest

from updp_napari.deid.report import ReportDeidentifier
from updp_napari.deid.report import detectors as d
from updp_napari.deid.report import narrative as n

# Each pattern, its trigger words, and an example of every way it can begin.
CASES = [
    (d._LABELS, d._LABEL_WORDS, [
        "patient name: ", "patient ", "pt name ", "pt ", "name: ", "signed by ", "signed ",
        "electronically signed by ", "dictated by ", "reported by ", "read by ", "interpreted by ",
        "verified by ", "transcribed by ", "approved by ", "attending ", "referring physician ",
        "referring ", "requesting clinician ", "ref ", "referred by ", "ordered by ", "tech ",
        "technologist ", "technician ", "radiographer ", "radiologist ", "resident ", "fellow ",
        "provisional report by ", "typed by ", "transcriptionist ", "scribe ", "discussed with ",
        "d/w ", "communicated to ", "called to ", "notified ", "paged ", "cc ", "informed ",
        "spoke with ", "conveyed to ", "read back by ", "per ", "from ", "copies to: ",
        "copy to ", "distribution: ", "prepared by: ", "written by ", "completed by ",
        "entered by ", "authored by ", "reviewed by ", "checked by ", "witnessed by ",
        "countersigned by ", "cosigned by ", "co-signed by ", "thanks, Al", "thank you, Al",
        "regards, Al", "best wishes, Al", "thx, Al", "dict: "]),
    (d._TITLE, d._TITLE_WORDS, [
        "Dr. ", "Doctor ", "Drs ", "Mr ", "Mrs. ", "Ms ", "Miss ", "Mx ", "Prof. ", "Professor ",
        "Nurse ", "RN ", "NP ", "PA-C ", "Sister ", "Rev. ", "Reverend ",
        "Sra. ", "Srta ", "Sgt. ", "Capt ", "Officer ", "Rabbi ", "Pastor ", "Chaplain ", "Imam ",
        "Judge ", "Coach ", "Mister ", "Fr. ", "Pandit "]),
    (d._CREDENTIAL, d._CREDENTIAL_WORDS, [
        "MD", "M.D.", "DO", "D.O.", "PhD", "Ph.D.", "RN", "NP", "PA-C", "RT (R)", "RT", "FRCR",
        "MBBS", "FRCP", "md"]),
    (d._LABELLED_ID, d._ID_LABEL_WORDS, [
        "MRN 1234567", "MR # 1234567", "MR No. 1234567", "Medical Record Number 1234567",
        "Hospital number 1234567", "Patient ID 1234567", "PID 1234567", "Unit No. 1234567",
        "ID 1234567", "Acc 1234567", "Accession number 1234567", "Order # 1234567",
        "SSN 123-45-6789", "Social Security Number 123-45-6789"]),
    (d._PAGER, d._PAGER_WORDS, ["pager 4417", "pgr 4417", "pg 4417", "beeper 4417", "bpr 4417",
                                "bleep 4417", "bleeper 4417"]),
    (d._MONTH_DAY_DATE, d._MONTH_WORDS, [
        f"{m} 3" for m in ("Jan", "January", "Feb", "February", "Mar", "March", "Apr", "April",
                           "May", "Jun", "June", "Jul", "July", "Aug", "August", "Sep", "Sept",
                           "September", "Oct", "October", "Nov", "November", "Dec", "December")]),
    (n._LIST_LINE, n._LIST_WORDS, ["cc: Dr. X", "CC : X", "copies to: X", "copy to: X",
                                   "Distribution: X"]),
]


def _first_word(text: str) -> str:
    return re.match(r"\w+", text).group().lower()


@pytest.mark.parametrize("pattern, triggers, examples", CASES,
                         ids=["labels", "titles", "credentials", "id-labels", "pager", "months",
                              "list-lines"])
def test_trigger_words_are_exactly_the_words_that_begin_the_pattern(pattern, triggers, examples):
    for example in examples:
        assert pattern.match(example), f"{example!r} is not an example of the pattern"
        assert _first_word(example) in triggers, f"{example!r} begins with no trigger word"
    unused = set(triggers) - {_first_word(e) for e in examples}
    assert not unused, f"trigger words that begin no example: {sorted(unused)}"


def test_every_match_in_the_cohort_begins_at_a_trigger_word(wide_cohort):
    root, records = wide_cohort
    texts = [(Path(root) / r["report"]).read_text(encoding="utf-8") for r in records]
    for pattern, triggers, _ in CASES:
        for text in texts:
            for m in pattern.finditer(text):
                # The letters a word begins with: "ACC40557405" is tried as "acc".
                word = re.search(r"[^\W\d_]+", m.group())
                assert word and word.group().lower() in triggers, (pattern.pattern[:40], m.group())


def test_dates_in_all_shapes_are_found_from_their_first_word():
    deid = ReportDeidentifier(use_plugins=False)
    for date in ("2019-05-01", "03/04/2019", "05.01.2019", "3-4-19", "3 January 2019",
                 "3rd of January", "Jan 3rd", "January 3, 2019", "January of 2019",
                 "20-FEB-2020", "20160822", "3/4"):
        text = f"Compared with the study of {date}, unchanged."
        spans = [(s.start, s.end) for s in deid.detect(text) if s.category == "DATE"]
        start = text.index(date)
        assert (start, start + len(date)) in spans, date


def test_numbers_inside_numbers_are_not_tried_twice():
    deid = ReportDeidentifier(use_plugins=False)
    text = "Phone (608) 555-0140, IP 10.0.12.7, SSN 123-45-6789, seen 12:30 on 2019-05-01."
    got = {text[s.start:s.end]: s.category for s in deid.detect(text)}
    assert got["(608) 555-0140"] == "PHONE"
    assert got["10.0.12.7"] == "IP"
    assert got["123-45-6789"] == "SSN"
    assert got["12:30"] == "TIME"
    assert got["2019-05-01"] == "DATE"
    assert len(got) == 5


def test_city_state_zip_found_from_the_state_code():
    deid = ReportDeidentifier(use_plugins=False)
    text = "Outside films from Savannah, GA 31485 and from Boston, MA reviewed. ID IDAHO."
    got = {text[s.start:s.end]: s.category for s in deid.detect(text)}
    assert got.get("Savannah") == "CITY" and got.get("GA") == "STATE" and got.get("31485") == "ZIP"
    assert got.get("Boston") == "CITY" and got.get("MA") == "STATE"


def test_header_values_joined_by_underscores_are_found():
    from updp_napari.deid.report import HeaderIdentifiers

    deid = ReportDeidentifier(use_plugins=False)
    header = HeaderIdentifiers(names=[["Okafor", "Adaeze"]], ids=["H1234567"])
    text = "Images saved as OKAFOR_ADAEZE_H1234567.dcm for review."
    found = {text[s.start:s.end] for s in deid.detect(text, header)}
    assert any("OKAFOR" in f for f in found) and any("ADAEZE" in f for f in found)
    assert any("H1234567" in f for f in found)


def test_an_eponym_inside_a_hyphenated_surname_protects_nothing():
    deid = ReportDeidentifier(use_plugins=False)
    text = "Discussed with Dr. Smith-Graves at 14:10."
    assert "Smith-Graves" in {text[s.start:s.end] for s in deid.detect(text)}
    assert deid.protected("Graves disease noted.") == [(0, 14)]


# The short cuts of the fast path must find exactly what the plain form finds.
@pytest.mark.parametrize("text", [
    "typed AB/cd today", "ABC/de", "xAB/cd", "AB/cd/EF", "AB/cde/f", "/AB/cd", "AB/c", "A/bc",
    "PA/lat and MH/jk\nRT/ab", "ab/CD", "  XY/zz  ", "", "no slash here", "ÄB/cd"])
def test_dictation_initials_where_slashes_stand_match_a_whole_scan(text):
    fast = [m.span() for m in d._dictation_initials(text)]
    assert fast == [m.span() for m in d._DICTATION.finditer(text)]


@pytest.mark.parametrize("text", [
    "Pt seen at 10:30; BP 120/80, son_in_law called.", "MRN12345 x4417 2020-05-16",
    "dash—and ’quotes’ and café", "İstanbul KELVIN", "ümlaut Ünal", "a_b __ 3x_y"])
def test_ascii_texts_are_cut_into_the_same_words_as_any_text(text):
    from updp_napari.deid.report import lexicons

    unicode_cut = [(m.start(), m.end(), m.group().lower()) for m in lexicons._WORD.finditer(text)]
    assert lexicons.cut_words(text) == unicode_cut


def test_phrase_first_words_of_no_phrase_of_their_own_still_find_their_phrases():
    from updp_napari.deid.report.lexicons import PhraseMatcher, cut_words, index_words

    matcher = PhraseMatcher(["San Diego", "San Luis Obispo", "Diego", "ED", "ED bay"])
    text = "From San Diego to san luis obispo; san francisco; Diego. San"
    assert [text[s:e] for s, e in matcher.find(text)] == ["San Diego", "san luis obispo", "Diego"]
    words = cut_words(text)
    assert matcher.find(text, words, index_words(words)) == matcher.find(text)
    written = PhraseMatcher(["ED", "ED bay", "CT"], case_sensitive=True)
    text = "to ED bay, ed bay, CT and ct; ED"
    words = cut_words(text)
    assert [text[s:e] for s, e in written.find(text, words, index_words(words))] == ["ED bay", "CT", "ED"]
    assert written.find(text, words, index_words(words)) == written.find(text)


def test_word_decisions_kept_across_notes_depend_on_whether_capitals_mean_something():
    cased = n.Reader("Seen by Dr. Smith. Son Bill called about the plan for today.")
    shouting = n.Reader("SEEN BY DR SMITH. SON BILL CALLED ABOUT THE PLAN FOR TODAY.")
    assert cased.cased and not shouting.cased
    words = ["bill", "Bill", "BILL", "hope", "Quartermain", "alert", "Smith-Jones", "will"]
    for _ in range(2):  # the second pass reads the kept decisions
        for reader in (cased, shouting):
            for word in words:
                for strength in (n.NONE, n.WEAK, n.STRONG, n.RELATION, n.TITLE):
                    assert reader.person_word(word, strength) == reader._person_word(word, strength)
                assert reader.place_word(word) == reader._place_word(word)


def test_header_values_are_looked_for_by_their_first_word_letters_or_number():
    from updp_napari.deid.report.detectors import Context, HeaderIdentifiers, detect_header_identifiers

    header = HeaderIdentifiers(names=[["Doe", "Jane"]], ids=["4417", "77-31", "RG928"],
                               dates=["20200516"], institutions=["Mercy Valley Clinic"])
    text = "Study 4417 (rg928) compared with 77-31 of 16.05.2020 at MERCY VALLEY by Jane, Doe."
    found = {text[s.start:s.end]: s.source for s in
             detect_header_identifiers(text, Context(ReportDeidentifier().lexicons, header))}
    assert found == {"4417": "header:id", "rg928": "header:id", "77-31": "header:id",
                     "16.05.2020": "header:date", "MERCY VALLEY": "header:institution",
                     "Jane": "header:name", "Doe": "header:name"}
    # Words joined by "_" are one word to the cut: then every value is searched.
    joined = text.replace(" of ", "_of_")
    found = {joined[s.start:s.end] for s in
             detect_header_identifiers(joined, Context(ReportDeidentifier().lexicons, header))}
    assert "16.05.2020" in found and "4417" in found


def test_street_suffixes_are_the_street_words_of_the_address_patterns():
    """Without one of these words in a note no address is looked for."""
    words = d._ADDRESS.pattern.split("(?i:")[1].split(")")[0].split("|")
    assert {w.lower() for w in words} == d._STREET_SUFFIXES
    for pattern in (d._ADDRESS, d._ADDRESS_ANY_CASE):
        assert "(?i:" + "|".join(words) + ")" in pattern.pattern
    found = ReportDeidentifier().detect("Lives at 221 Baker Street, seen 12 times.")
    assert any(s.category == "ADDRESS" for s in found)


def test_word_index_finds_the_words_of_kept_sets_as_an_intersection_would(monkeypatch):
    from updp_napari.deid.report import lexicons

    monkeypatch.setattr(lexicons, "_word_sets", lexicons._WordSets())
    monkeypatch.setattr(lexicons._WordSets, "MAX_SETS", 3)
    text = "Son Bill called; bill paid. The son of Ann, ann and ANN: 3 calls, x2 bills."
    words = lexicons.cut_words(text)

    def intersected(wanted):  # numbers are not indexed as words
        return sorted(i for i, (_, _, w) in enumerate(words) if w in wanted and not w[0].isdigit())

    sets = [frozenset({"son", "ann"}), frozenset({"bill", "calls", "zzz"}), frozenset({"the"}),
            frozenset({"x2", "3"}), frozenset()]
    before = lexicons.index_words(words)  # made before any set was kept
    assert [before.positions(s) for s in sets] == [intersected(s) for s in sets]
    # The first three are kept; the fourth finds the registry full, which begins again with it.
    assert lexicons._word_sets.sets == (sets[3], sets[4])
    after = lexicons.index_words(words)
    assert after.sets is lexicons._word_sets
    assert [after.positions(s) for s in sets] == [intersected(s) for s in sets]
    kept = lexicons.index_words(words)
    assert kept.sets.sets and len(kept.in_set) == len(kept.sets.sets)
    assert [kept.positions(s) for s in sets] == [intersected(s) for s in sets]
    assert [kept.hits(s) for s in sets] == [[words[i] for i in intersected(s)] for s in sets]
    # A set that is no frozenset (it may change) is intersected every time, never kept.
    mutable = {"son"}
    assert after.positions(mutable) == intersected(mutable)
    assert all(s is not mutable for s in lexicons._word_sets.sets)
    # A few words (a dict of a note's names) are looked for word by word; a long list through
    # the map of every word, made then: the same positions either way.
    few, many = {"ann": "NAME", "3": "x", "bill": "NAME"}, {f"w{k}" for k in range(20)} | {"son"}
    fresh = lexicons.index_words(words)
    assert fresh.positions(few) == intersected(few) and "at" not in fresh.__dict__
    assert fresh.positions(many) == intersected(many) and "at" in fresh.__dict__
    assert fresh.positions(few) == intersected(few)


@pytest.mark.parametrize("text", [
    "221 Baker Street, 12 n. o'brien-smith   court\nway", "5345 Orchard Drive. Dr Blackwood",
    "4.8 cm mass, 3 lesions; see 10 Main St. and 7 W Elm Rd Apt 4", "12 Court Street", "9 x, 2 St",
    "3790 oakridge road, tucson, az 85761", "15 N. MAIN ST", "1 a b c d Street", "20 Oak\n\nLane"])
def test_an_address_is_looked_for_only_where_a_street_word_can_end_it(text):
    from updp_napari.deid.report.lexicons import cut_words, index_words

    index = index_words(cut_words(text))
    streets = d._StreetWords(text, [s for s, _, _ in index.hits(d._STREET_SUFFIXES)])
    for start, end, _ in index.numbers:
        if d._ADDRESS.match(text, start) or d._ADDRESS_ANY_CASE.match(text, start):
            assert streets.ahead(end)


def test_whether_a_street_word_is_ahead_is_the_search_from_each_number():
    """``_StreetWords.ahead`` answers as matching the characters an address allows from the
    number to the next street word would, on random texts and street words."""
    import random

    allowed = re.compile(r"[\w'.\s-]*")
    rng = random.Random(11)
    for _ in range(2000):
        text = "".join(rng.choice("ab Z'.-_1,:(\n;é") for _ in range(rng.randint(0, 40)))
        starts = sorted(rng.sample(range(len(text) + 1), rng.randint(0, min(4, len(text) + 1))))
        streets = d._StreetWords(text, starts)
        for end in rng.sample(range(len(text) + 1), len(text) + 1):  # asked in any order
            nxt = [s for s in starts if s > end]
            expected = bool(nxt) and allowed.match(text, end, nxt[0]).end() == nxt[0]
            assert streets.ahead(end) == expected, (text, starts, end)


def test_a_long_note_is_read_once_for_its_street_word_not_once_per_number(monkeypatch):
    """Numbers far before a street word, nothing an address forbids between: the text before
    the street word is read once, not from every number (quadratic in a long note)."""
    from updp_napari.deid.report.lexicons import default_lexicons

    read = []

    class Counting:
        def __init__(self, pattern):
            self.pattern = pattern

        def finditer(self, text, pos, endpos):
            read.append(endpos - pos)
            return self.pattern.finditer(text, pos, endpos)

    monkeypatch.setattr(d, "_ADDRESS_BARRIER", Counting(d._ADDRESS_BARRIER))
    text = "took 5 pills and went home " * 2000 + "lives at 12 Baker Street"
    spans = d.detect_patterns(text, d.Context(default_lexicons()))
    assert [text[s.start:s.end] for s in spans if s.category == "ADDRESS"] == ["12 Baker Street"]
    assert sum(read) <= len(text)


@pytest.mark.parametrize("text", [
    "contact: j.doe+x@mail.example.org, or @home", "x @ y.com then a@b.co", "ü.ß@host.de",
    "--a@b.cd", "a@b", "mail@@host.com and k@l.mn", "_x_@y.z\n@", "@a.b c@d.ef", "n°1@ex.org"])
def test_an_address_is_looked_for_from_the_run_before_the_first_at_sign(text):
    """The email pattern starts where the first "@"'s run of address characters does: the
    same addresses as a search of the whole text."""
    from updp_napari.deid.report.lexicons import default_lexicons

    ctx = d.Context(default_lexicons())
    found = [(s.start, s.end) for s in d.detect_patterns(text, ctx) if s.source == "pattern:email"]
    assert found == [m.span() for m in d._EMAIL.finditer(text)]


def test_the_word_before_a_name_is_read_backwards_as_the_pattern_would_find_it():
    """``_letters_before_space`` is the search ``(?<![\\w'’.-])([^\\W\\d_]+) \\Z`` over the 30
    characters before a name, on random texts of letters, digits, marks and spaces."""
    import random

    pattern = re.compile(r"(?<![\w'’.-])([^\W\d_][^\W\d_'’-]*) \Z")
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice("ab Z'’.-_1²é\n,") for _ in range(rng.randint(0, 45)))
        for end in range(len(text) + 1):
            m = pattern.search(text, max(0, end - 30), end)
            assert n._letters_before_space(text, end) == (m.start(1) if m else None), (text, end)


def test_a_long_line_of_lists_yields_each_listed_name_once():
    """Every "cc:" on one long line opens a list to the line's end: read once, not again from
    each (the same names over and over, the square of the line)."""
    text = "Dr Ann Lee and Dr Bob Park saw him. " + "cc: Ann Lee, Bob Park, " * 300
    spans = ReportDeidentifier().detect(text)
    tail = text.index("cc:")
    for m in re.finditer(r"Ann|Lee|Bob|Park", text[tail:]):
        assert any(s.start <= tail + m.start() and tail + m.end() <= s.end for s in spans)
    reader = n.Reader(text)
    found = [s for s in spans if s.category == "NAME"]
    again = list(n._names_on_lists(reader, found, set()))
    assert len(again) == len({(s.start, s.end) for s in again})


def test_a_web_address_is_matched_once_not_from_every_www_inside_it(monkeypatch):
    from updp_napari.deid.report.lexicons import default_lexicons

    calls = []

    class Counting:
        def __init__(self, pattern):
            self.pattern = pattern

        def match(self, text, pos=0):
            calls.append(pos)
            return self.pattern.match(text, pos)

    monkeypatch.setattr(d, "_URL", Counting(d._URL))
    for text in ("see " + "www." * 2000 + "x", "see " + "http://a.com/" * 1000 + "x"):
        calls.clear()
        spans = [s for s in d.detect_patterns(text, d.Context(default_lexicons())) if s.category == "URL"]
        assert (min(s.start for s in spans), max(s.end for s in spans)) == (4, len(text))
        assert len(calls) == 1
