"""Report input normalisation: PHI in HTML, RTF and text with invisible or folded characters
is found as in plain text, redacted in the original, markup outside the spans left as it was."""

import html
import re
import unicodedata

import pytest

from updp_napari.deid.leaks import Identifiers, normalise
from updp_napari.deid.report import HeaderIdentifiers, ReportDeidentifier
from updp_napari.deid.report.normalise import fold_text, is_plain, normalise_for_detection

# The same made-up report, written in each of the ways reports arrive.
PHI = ("PEARSON", "PATRICK", "4829301", "03/14/2021", "Maeve", "Connell")
PLAIN = ("Patient: PEARSON, PATRICK\nMRN: 4829301\nDate of exam: 03/14/2021\n"
         "FINDINGS: No focal consolidation. Heart size is normal.\n"
         "Dictated by Dr. Maeve O'Connell.\n")
VARIANTS = {
    "plain": PLAIN,
    "html": (
        "<!DOCTYPE html><html><head><title>Report</title><style>p { color: #808080 }</style>"
        "</head><body><p>Patient: <b>PEARSON, PATRICK</b></p>\n<p>MRN:&nbsp;4829301<br>"
        "Date of exam: 03/14/2021</p>\n<p>FINDINGS: No focal consolidation &amp; heart size "
        "is normal.</p><p>Dictated by Dr. Maeve O&#39;Connell.</p>"
        "<script>var x = '<p>';</script></body></html>"),
    "html, tags inside": (
        "<div class=\"hdr\">Patient: <b>PEARSON</b>, <i>PATRICK</i></div>"
        "<table><tr><td>MRN:</td><td><span>4829301</span></td></tr></table>"
        "<p>Date of exam: 03/<b>14</b>/2021</p><p>FINDINGS: No focal consolidation.</p>"
        "<p>Dictated by Dr. <u>Maeve</u> O&rsquo;Connell.</p>"),
    "rtf": (
        r"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fswiss Helvetica;}}"
        r"{\colortbl;\red0\green0\blue0;}{\*\generator Writer 1.0;}\f0\fs20 "
        r"Patient: {\b PEARSON, PATRICK}\par MRN: 4829301\par Date of exam: 03/14/2021\par "
        r"FINDINGS: No focal consolidation. Heart size is normal.\par "
        r"Dictated by Dr. Ma\'65ve O\rquote Conn\u101?ll.\par}"),
    "smart quotes": PLAIN.replace("O'Connell", "O\u2019Connell").replace(
        "Dr.", "\u201cDr.").replace("Connell.", "Connell.\u201d"),
    "zero width": (
        "Patient: PEA\u200bRSON, PAT\u2060RICK\nMRN: 482\u200d9301\n"
        "Date of exam: 03/\ufeff14/2021\nFINDINGS: No focal consolidation. Heart size is "
        "normal.\nDictated by Dr. Ma\u200ceve O'Con\u200bnell.\n"),
    "control characters": PLAIN.replace("PEARSON", "PEAR\x00SON").replace(
        "PATRICK", "PAT\x07RICK").replace("Maeve", "Ma\x1beve"),
    "soft hyphens": PLAIN.replace("PEARSON", "PEAR\u00adSON").replace("Connell", "Con\u00adnell"),
    "full width": (
        "Patient: \uff30\uff25\uff21\uff32\uff33\uff2f\uff2e, \uff30\uff21\uff34\uff32\uff29"
        "\uff23\uff2b\nMRN: \uff14\uff18\uff12\uff19\uff13\uff10\uff11\n"
        "Date of exam: \uff10\uff13\uff0f\uff11\uff14\uff0f\uff12\uff10\uff12\uff11\n"
        "FINDINGS: No focal consolidation. Heart size is normal.\n"
        "Dictated by Dr. \uff2d\uff41\uff45\uff56\uff45 O'Connell.\n"),
    "hyphen at line end": PLAIN.replace("PEARSON", "PEAR-\nSON").replace(
        "Connell", "Con-\n   nell"),
}
MARKUP = {"html", "html, tags inside", "rtf"}


@pytest.fixture(scope="module")
def deid():
    return ReportDeidentifier(use_plugins=False)


def readable(text: str) -> str:
    """What a reader of ``text`` sees, worked out independently of the package: entities and
    RTF escapes decoded, invisible and control characters gone, NFKC, quotes and line-end
    hyphens folded, case folded."""
    text = re.sub(r"\\'([0-9a-f]{2})", lambda m: bytes.fromhex(m[1]).decode("cp1252"), text)
    text = re.sub(r"\\u(\d+)\?", lambda m: chr(int(m[1])), text)
    text = re.sub(r"<(script|style)>.*?</\1>", "", text)
    text = html.unescape(re.sub(r"<[^>]*>", "", text))
    text = "".join(ch for ch in unicodedata.normalize("NFKC", text)
                   if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf"))
    text = text.replace("\u2019", "'").replace("\\rquote ", "'")
    return re.sub(r"-\n\s*", "", text).casefold()


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_found_in_plain_text_is_found(deid, variant):
    text = VARIANTS[variant]
    seen = readable(text)
    assert all(piece.casefold() in seen for piece in PHI)  # the report does hold them
    out = deid.deidentify(text, mode="tag").text
    left = readable(out)
    for piece in PHI:
        assert piece.casefold() not in left, f"{variant}: {piece} left in"
    assert "no focal consolidation" in left
    # The same kinds of PHI found as in the plain report.
    assert {s.category for s in deid.detect(text)} == {s.category for s in deid.detect(PLAIN)}


@pytest.mark.parametrize("variant", VARIANTS)
def test_spans_are_valid_offsets_of_the_original(deid, variant):
    text = VARIANTS[variant]
    spans = deid.detect(text)
    assert spans
    last = 0
    for span in spans:
        assert last <= span.start < span.end <= len(text)
        last = span.end
        piece = text[span.start:span.end]
        assert any(ch.isalnum() for ch in piece)
        if variant in MARKUP:  # never a tag or a control word inside a span
            # (``\rquote``, ``\'65`` and ``\u101?`` are characters)
            assert not re.search(r"[<>{}]|\\(?!rquote |'[0-9a-f]{2}|u\d+\?)", piece), piece
    redaction = deid.deidentify(text, mode="tag")
    assert redaction.spans == spans
    assert [s["text"] for s in redaction.as_json(text)["spans"]] == [
        text[s.start:s.end] for s in spans]


@pytest.mark.parametrize("variant", sorted(MARKUP))
def test_markup_outside_spans_is_kept(deid, variant):
    text = VARIANTS[variant]
    out = deid.deidentify(text, mode="tag").text
    markup = r"<[^>]*>|[{}]|\\(?:par|b|f\d|fs\d+|rtf1|ansi\w*|fonttbl|colortbl|\*)\b"
    assert re.findall(markup, out) == re.findall(markup, text)


def test_only_the_text_inside_tags_is_redacted(deid):
    tag = lambda t: deid.deidentify(t, mode="tag").text  # noqa: E731
    assert tag("<p>Patient: <b>PEARSON, PATRICK</b></p>") == "<p>Patient: <b>[NAME]</b></p>"
    assert (tag("<p>Patient: <b>PEARSON</b>, <i>PATRICK</i></p>")
            == "<p>Patient: <b>[NAME]</b>, <i>[NAME]</i></p>")
    assert (tag(r"{\rtf1\ansi Patient: {\b PEARSON, PATRICK}\par MRN: 4829301\par}")
            == r"{\rtf1\ansi Patient: {\b [NAME]}\par MRN: [MRN]\par}")
    # Block tags keep words apart: "Patient" and the name stay two words.
    norm = normalise_for_detection("<div>Patient:</div><div>PEARSON</div>")
    assert norm.text.split() == ["Patient:", "PEARSON"]


def test_names_split_by_invisible_characters_are_redacted_whole(deid):
    text = "Patient: PEA\u200bRSON, PAT\u00adRICK seen today."
    spans = deid.detect(text)
    assert [text[s.start:s.end] for s in spans] == ["PEA\u200bRSON, PAT\u00adRICK"]
    assert deid.deidentify(text, mode="tag").text == "Patient: [NAME] seen today."
    hyphenated = "Patient: PEAR-\n   SON, PATRICK seen today."
    assert deid.deidentify(hyphenated, mode="tag").text == "Patient: [NAME] seen today."


def test_header_identifiers_are_searched_in_the_normalised_text(deid):
    header = HeaderIdentifiers(names=[["QUIMBY", "ZEBEDIAH"]], ids=["X77123"], patient_key="X77123")
    text = "<p>Discussed with <b>Quim\u200bby</b>; ref <span>X77</span>123.</p>"
    out = deid.deidentify(text, header, mode="tag").text
    assert "quimby" not in readable(out) and "x77123" not in readable(out)
    assert out.startswith("<p>Discussed with <b>") and out.endswith("</p>")


def test_plain_text_comes_back_unchanged_with_an_identity_map(deid):
    for text in (PLAIN, "", "x <y and z> mass", "NEURO- \nAlert", "A&P: stable", "Smith-\nJones",
                 "Patient: MÜLLER, JOSÉ. Größe normal, 5 °C"):
        norm = normalise_for_detection(text)
        assert norm.text == text
        assert norm.identity
        assert norm.offsets == list(range(len(text) + 1))
        assert norm.spans_to_original(deid.detect(text)) == deid.detect(text)
    assert is_plain(PLAIN)
    for variant, text in VARIANTS.items():
        if variant != "plain":
            assert not is_plain(text), variant
            assert not normalise_for_detection(text).identity, variant
    text, offsets = normalise_for_detection(PLAIN)
    assert text is PLAIN and offsets[-1] == len(PLAIN)


def test_the_offset_map():
    norm = normalise_for_detection("Dr. PEA\u200bRSON \uff30\ufb01 O&#39;B <b>x</b>\n")
    assert norm.text == "Dr. PEARSON Pfi O'B x\n"
    original = norm.original
    # A range of the detection text covers whole characters of the original.
    start = norm.text.index("PEARSON")
    assert original.__getitem__(slice(*norm.to_original(start, start + 7))) == "PEA\u200bRSON"
    fi = norm.text.index("fi")
    assert norm.to_original(fi, fi + 1) == norm.to_original(fi + 1, fi + 2) == norm.to_original(fi, fi + 2)
    quote = norm.text.index("'")
    assert original.__getitem__(slice(*norm.to_original(quote, quote + 1))) == "&#39;"
    assert norm.to_original(len(norm.text), len(norm.text)) == (len(original), len(original))
    assert len(norm.offsets) == len(norm.text) + 1
    # Mapped spans leave tags out.
    x = norm.text.index("x")
    assert [original[s:e] for s, e in norm.pieces(x - 2, x + 1)] == ["B", "x"]


def test_html_details():
    norm = normalise_for_detection(
        "<html><head><script>alert('PEARSON')</script><style>b{}</style></head>"
        "<body>a<br/>b<p class='x > y'>c</p>d&nbsp;e &lt;f&gt; <!-- PATRICK --></body></html>")
    assert "PEARSON" not in norm.text and "PATRICK" not in norm.text and "alert" not in norm.text
    assert norm.text.split() == ["a", "b", "c", "d", "e", "<f>"]
    assert "x > y" not in norm.text


def test_rtf_details():
    norm = normalise_for_detection(
        r"{\rtf1\ansi\ansicpg1252\uc1{\fonttbl{\f0 Courier;}}{\*\bkmkstart here}"
        r"{\info{\author PEARSON}}Jos\'e9 M\u252?ller \u-10179?\u-8704? a\tab b\line c\~d"
        r"\{x\}\\ e\-f{\pict\pngblip 89504e47}\par}")
    assert re.sub(r"\n+", "\n", norm.text) == "\nPEARSON\nJosé Müller \U0001f600 a\tb\nc d{x}\\ ef\n"
    original = norm.original
    at = norm.text.index("Müller")
    assert original[slice(*norm.to_original(at, at + 6))] == r"M\u252?ller"
    at = norm.text.index("José")
    assert original[slice(*norm.to_original(at, at + 4))] == r"Jos\'e9"
    assert "Courier" not in norm.text and "here" not in norm.text


def test_leak_scanner_sees_through_the_same_characters_and_markup():
    assert normalise("PEA\u200bRSON^PATRICK") == " pearson patrick "
    assert normalise("\uff30\uff25\uff21\uff32\uff33\uff2f\uff2e") == " pearson "
    assert normalise("<p>Patient: PEAR<b>SON</b></p>") == " patient pearson "
    assert normalise(r"{\rtf1 {\b PEAR}SON\par}") == " pearson "
    assert normalise("PEAR\x00SON") == " pearson "
    assert normalise("Pearson, Patrick") == " pearson patrick "  # as before
    ids = Identifiers()
    ids.add("PEARSON^PATRICK", "name", "PatientName")
    ids.add("PEARSON", "name", "PatientName")
    for text in ("Comment: PEA\u200bRSON PATRICK", "<b>PEARSON</b> <i>PAT</i>RICK",
                 "\uff30\uff25\uff21\uff32\uff33\uff2f\uff2e, PATRICK"):
        assert ids.find(text) == {"name": {"PatientName"}}, text
    # Nothing in markup escapes the scanner: hidden parts are read too.
    assert "pearson" in fold_text("<img alt='PEARSON'>").casefold()
    assert "pearson" in fold_text(r"{\rtf1{\*\comment PEARSON}ok}").casefold()
