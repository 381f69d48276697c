"""PHI left in reports that arrive in awkward forms: the synthetic cohort's reports rewritten
as HTML, RTF, with smart quotes, invisible or control characters inside names, full-width
letters, all in one case, hyphenated across line breaks, or with the names listed again on a
``cc:`` line, each de-identified (tag mode) with and without the study's DICOM header.

A *planted token* is an alphanumeric run of a ground-truth PHI span, widened to whole words
("99" of "99F" plants "99F"): two characters or more, or a run of digits. It *survives* when
it can still be read in the output: the output is read by a small reader of its own, written
here independently of the product's normaliser (markup stripped, entities and RTF escapes
decoded, invisible and control characters dropped, NFKC, case folded, words hyphenated across
a line break joined), and the planted token is counted as a whole word. Words that the report
holds outside its PHI too ("PA" the state and "PA" the view) are counted against what the
ideal output holds: the plain report with every ground-truth span removed, read the same way.
So a token survives at most as often as it was planted, and a span redacted only in part
(``PEAR[NAME]``) leaves no whole token behind.

Every variant's survival rate must stay within ``TOLERANCE_PP`` percentage points of the plain
report's, measured in the same run, but for the gaps known today (``KNOWN_GAPS_PP``), which
must not widen. Before de-identification every planted token must be readable in every
variant: the reader is checked on the input, so a zero is no blind spot.

The table is printed (``pytest -s``). Larger runs::

    UPDP_VARIANTS_PATIENTS=30 UPDP_VARIANTS_STUDIES=3 UPDP_VARIANTS_SEED=29 \\
        .venv/bin/pytest tests/test_report_variants.py -x -q -s
"""

from __future__ import annotations

import html
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

_ENV = ("UPDP_VARIANTS_PATIENTS", "UPDP_VARIANTS_STUDIES", "UPDP_VARIANTS_SEED")
PATIENTS = int(os.environ.get("UPDP_VARIANTS_PATIENTS", "6"))
STUDIES = int(os.environ.get("UPDP_VARIANTS_STUDIES", "4"))
SEED = int(os.environ.get("UPDP_VARIANTS_SEED", "11"))
# How much worse than the plain report a variant may do, in percentage points of its planted
# tokens. The variants carry the same tokens as the plain report, so a variant read as well as
# plain text leaves exactly as many: any difference is the form's doing. Half a point leaves
# room for a handful of tokens whose context a form changes legitimately (an upper-case word
# that a rule reads as an abbreviation, a name on a cc: line with no context at all) and still
# fails at a tenth of the 7.5 % that HTML, RTF and folded letters once left.
TOLERANCE_PP = 0.5
# Forms the de-identifier reads worse than plain text today: how many points above plain they
# may leave, keyed by (variant, header used); each allowance about 1.5-2 times the worst rate
# measured, so that the test fails when a gap widens, not while it stays as it is.
# None is known today: quoted names, notes all in lower or upper case and names repeated on a
# cc: line stay within TOLERANCE_PP of plain text (measured on the session cohort and on 30 x 3,
# seed 29; 20 x 4, seed 7; 40 x 3, seed 5; 25 x 4, seed 3, at most 0.03 points above plain).
# UPDP_VARIANTS_STRICT=1 holds every form to TOLERANCE_PP whatever this table says.
KNOWN_GAPS_PP: dict[tuple[str, bool], float] = {}
STRICT = os.environ.get("UPDP_VARIANTS_STRICT") == "1"
# How many surviving tokens to print per variant.
EXAMPLES = int(os.environ.get("UPDP_VARIANTS_EXAMPLES", "4"))

WORD = re.compile(r"[^\W_]+")


# ------------------------------------------------------------------------------ the cohort

@pytest.fixture(scope="module")
def cohort_records(request, tmp_path_factory) -> tuple[Path, list[dict]]:
    """The shared session cohort by default; a cohort of its own when a size or seed is set."""
    if not any(name in os.environ for name in _ENV):
        return request.getfixturevalue("cohort"), request.getfixturevalue("records")
    from updp_napari.cohort.generate import make_cohort, read_ground_truth

    out = tmp_path_factory.mktemp("variants") / "c"
    make_cohort(out, patients=PATIENTS, studies=STUDIES, seed=SEED, size=64, sites=3)
    return out, read_ground_truth(out)


# --------------------------------------------------------------------- building variants

def _segments(text: str, spans: list[dict], start: int = 0, end: int | None = None):
    """``text[start:end]`` as (piece, span or None), in order."""
    end = len(text) if end is None else end
    pos = start
    for span in spans:
        s, e = max(span["start"], start), min(span["end"], end)
        if e <= s:
            continue
        if pos < s:
            yield text[pos:s], None
        yield text[s:e], span
        pos = e
    if pos < end:
        yield text[pos:end], None


def _lines(text: str):
    """(start, end) of each line, without its newline."""
    pos = 0
    for line in text.split("\n"):
        yield pos, pos + len(line)
        pos += len(line) + 1


def _in_tokens(fn: Callable[[str, int], str]) -> Callable[[str, list[dict]], str]:
    """A variant that rewrites each alphanumeric token of the PHI spans (and nothing else)."""

    def build(text: str, spans: list[dict]) -> str:
        out, n = [], 0
        for piece, span in _segments(text, spans):
            if span is None:
                out.append(piece)
                continue
            pos = 0
            for m in WORD.finditer(piece):
                out.append(piece[pos:m.start()])
                out.append(fn(m.group(), n))
                n += 1
                pos = m.end()
            out.append(piece[pos:])
        return "".join(out)

    return build


def _split(insert: tuple[str, ...]):
    def fn(token: str, n: int) -> str:
        if len(token) < 2:
            return token
        k = len(token) // 2
        return token[:k] + insert[n % len(insert)] + token[k:]
    return fn


def _full_width(token: str, n: int) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() else c for c in token)


def _hyphenate(token: str, n: int) -> str:
    if len(token) < 4 or not token.isalpha():
        return token
    k = len(token) // 2
    return token[:k] + "-\n" + token[k:]


def _html_escape(text: str) -> str:
    out = []
    for ch in text:
        if ch == "&":
            out.append("&amp;")
        elif ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        elif ch == "'":
            out.append("&#39;")
        elif ch == '"':
            out.append("&quot;")
        elif not ch.isascii():
            out.append(f"&#{ord(ch)};")
        else:
            out.append(ch)
    return "".join(out)


def _html(text: str, spans: list[dict]) -> str:
    # No title: the wrapper adds no words, so the ideal output is the plain report's.
    out = ['<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n']
    n = 0
    for start, end in _lines(text):
        inner = []
        for piece, span in _segments(text, spans, start, end):
            escaped = _html_escape(piece)
            if span is None:
                inner.append(escaped)
            elif n % 2:
                inner.append(f'<span class="phi">{escaped}</span>')
            else:
                inner.append(f"<b>{escaped}</b>")
            n += span is not None
        out.append(f"<p>{''.join(inner)}</p>\n" if inner else "<br>\n")
    out.append("</body></html>\n")
    return "".join(out)


def _rtf_escape(text: str) -> str:
    out = []
    for ch in text.replace("'", "\u2019"):  # a word processor's apostrophe: \'92
        if ch in "\\{}":
            out.append("\\" + ch)
        elif ch.isascii():
            out.append(ch)
        else:
            try:
                out.append(f"\\'{ch.encode('cp1252')[0]:02x}")
            except UnicodeEncodeError:
                code = ord(ch)
                out.append(f"\\u{code - 65536 if code > 32767 else code}?")
    return "".join(out)


def _rtf(text: str, spans: list[dict]) -> str:
    out = [r"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fswiss Arial;}}"
           r"{\colortbl;\red0\green0\blue0;}\viewkind4\uc1\pard\f0\fs20 "]
    for start, end in _lines(text):
        for piece, span in _segments(text, spans, start, end):
            escaped = _rtf_escape(piece)
            out.append(escaped if span is None else r"{\b " + escaped + "}")
        out.append("\\par\n")
    out.append("}")
    return "".join(out)


def _quote_names(open_quote: str, close_quote: str) -> Callable[[str, list[dict]], str]:
    """Full names (two words or more) in quotes, "Dr. “Xavier Chandler”"; with curly quotes,
    apostrophes curly too ("O’Brien")."""

    def build(text: str, spans: list[dict]) -> str:
        text = "".join(f"{open_quote}{piece}{close_quote}" if span and span["category"] == "NAME"
                       and len(re.findall(r"[^\W\d_]{2,}", piece)) >= 2 else piece
                       for piece, span in _segments(text, spans))
        if open_quote != '"':
            text = re.sub(r"(?<=\w)'", "\u2019", text).replace("'", "\u2018")
        return text

    return build


ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff")
CONTROLS = ("\x01", "\x02", "\x07", "\x1b", "\x1f", "\x7f", "\x00")

# name -> builder(text, spans) -> variant text. Each holds the same PHI as the plain report.
VARIANTS: dict[str, Callable[[str, list[dict]], str]] = {
    "plain": lambda text, spans: text,
    "crlf": lambda text, spans: text.replace("\n", "\r\n"),
    "html": _html,
    "rtf": _rtf,
    "smart quotes": _quote_names("\u201c", "\u201d"),
    # The same names in ASCII quotes: whether it is the curly quotes or the quoting.
    "straight quotes": _quote_names('"', '"'),
    "zero width": _in_tokens(_split(ZERO_WIDTH)),
    "control chars": _in_tokens(_split(CONTROLS)),
    "soft hyphen": _in_tokens(_split(("\u00ad",))),
    "full width": _in_tokens(_full_width),
    "lower case": lambda text, spans: text.lower(),
    "upper case": lambda text, spans: text.upper(),
    "line hyphen": _in_tokens(_hyphenate),
    "cc list": None,  # below: the only variant that adds PHI
}


def _names(text: str, spans: list[dict]) -> list[str]:
    seen: list[str] = []
    for span in spans:
        name = text[span["start"]:span["end"]]
        # Person names, not dictation initials ("JC/gg").
        if (span["category"] == "NAME" and name not in seen and "/" not in name
                and re.search(r"[^\W\d_]{3}", name)):
            seen.append(name)
    return seen


def _whole_words(text: str, start: int, end: int) -> str:
    """``text[start:end]`` widened to whole words: the AGE span "99" of "99F" plants "99F"."""
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    return text[start:end]


def build_variant(name: str, text: str, spans: list[dict]) -> tuple[str, list[str], str]:
    """The variant's text, the PHI texts planted in it, and the ideal output as plain text."""
    planted = [_whole_words(text, s["start"], s["end"]) for s in spans]
    ideal = "".join(" " if span else piece for piece, span in _segments(text, spans))
    if name == "cc list":
        names = _names(text, spans)
        if not names:
            return text, planted, ideal
        return (text.rstrip("\n") + "\ncc: " + "; ".join(names) + "\n", planted + names,
                ideal.rstrip("\n") + "\ncc: \n")
    return VARIANTS[name](text, spans), planted, ideal


# ----------------------------------------------------------------- the independent reader

_RTF_HIDDEN = re.compile(r"\{\\(?:fonttbl|colortbl|stylesheet|\*)(?:[^{}]|\{[^{}]*\})*\}")
_RTF_TOKEN = re.compile(
    r"\\'([0-9a-fA-F]{2})|\\u(-?[0-9]+)\??|\\([a-zA-Z]+)(-?[0-9]+)? ?|\\([\\{}])|[{}]|\r?\n")
_HTML_SNIFF = re.compile(r"<(?:p|br|html|body|b|span|div)\b[^>]*>", re.IGNORECASE)
_HTML_HIDDEN = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_HTML_BLOCK = re.compile(r"</?(?:p|br|div|html|body|head|title|tr|td|li|table)\b[^>]*>",
                         re.IGNORECASE)
_TAG = re.compile(r"<[^<>]*>")
_REPLACEMENT = re.compile(r"\[[A-Z]+(?:_[A-Z]+)*\]")  # what tag mode writes: [NAME], [DATE]
_LINE_HYPHEN = re.compile(r"(?<=[^\W\d_])-\n[ \t]*(?=[^\W\d_])")


def _rtf_token(m: re.Match) -> str:
    hexbyte, code, word, _, symbol = m.groups()
    if hexbyte:
        return bytes([int(hexbyte, 16)]).decode("cp1252", "replace")
    if code is not None:
        value = int(code)
        return chr(value + 65536 if value < 0 else value)
    if word:
        return "\n" if word in ("par", "line", "row", "sect", "page") else (
            "\t" if word in ("tab", "cell") else "")
    return symbol or ""


def read(text: str) -> str:
    """``text`` as a reader sees it, folded for matching whole words."""
    if text.lstrip("\ufeff \t\r\n").startswith("{\\rtf"):
        text = _RTF_TOKEN.sub(_rtf_token, _RTF_HIDDEN.sub("", text))
    elif _HTML_SNIFF.search(text):
        text = _HTML_HIDDEN.sub(" ", text)
        text = _TAG.sub("", _HTML_BLOCK.sub("\n", text))
        text = html.unescape(text)
    text = _REPLACEMENT.sub(" ", text)
    text = "".join(ch for ch in text if ch in "\t\n\r" or (
        unicodedata.category(ch) not in ("Cc", "Cf") and ch != "\u00ad"))
    text = unicodedata.normalize("NFKC", text).casefold().replace("\r\n", "\n").replace("\r", "\n")
    return _LINE_HYPHEN.sub("", text)


def tokens(text: str) -> list[str]:
    """The planted tokens of ``text`` (already read): runs of two or more, or of digits."""
    return [t for t in WORD.findall(text) if len(t) >= 2 or t.isdigit()]


def test_reader_is_independent_and_reads_every_form():
    assert read("<p>Patient: <b>PEAR\u200bSON</b>, O&#39;Brien &amp; co</p>").split() == [
        "patient:", "pearson,", "o'brien", "&", "co"]
    assert read(r"{\rtf1\ansi{\fonttbl{\f0 Arial;}}\f0 {\b O\'92BRIEN}\par Ma\u235?lle}") == \
        "o\u2019brien\nma\u00eblle"
    assert read("\uff30\uff25\uff21\uff32-\nSON [NAME] x\x01y") == "pearson   xy"


# ------------------------------------------------------------------------------ measuring

def measure(cohort: Path, records: list[dict], use_header: bool) -> dict[str, dict]:
    from updp_napari.deid.report import ReportDeidentifier
    from updp_napari.deid.report.header_values import read_header
    from updp_napari.ingest import read_report

    deid = ReportDeidentifier()
    results = {name: {"planted": 0, "survived": 0, "readable": 0, "changed": 0, "reports": 0,
                      "by_category": Counter(), "examples": []} for name in VARIANTS}
    for record in records:
        text = read_report(cohort / record["report"])
        spans = sorted(record["phi_spans"], key=lambda s: s["start"])
        header = read_header(cohort / record["image"]) if use_header else None
        category_of: dict[str, str] = {}
        for span in spans:
            for token in tokens(read(_whole_words(text, span["start"], span["end"]))):
                category_of.setdefault(token, span["category"])
        for name in VARIANTS:
            variant, planted_texts, ideal = build_variant(name, text, spans)
            planted = Counter(t for p in planted_texts for t in tokens(read(p)))
            expected = Counter(tokens(read(ideal)))
            before = Counter(tokens(read(variant)))
            output = read(deid.deidentify(variant, header).text)
            after = Counter(tokens(output))
            r = results[name]
            r["reports"] += 1
            r["changed"] += variant != text
            for token, count in planted.items():
                left = min(count, max(0, after[token] - expected[token]))
                r["planted"] += count
                r["readable"] += min(count, max(0, before[token] - expected[token]))
                r["survived"] += left
                if left:
                    r["by_category"][category_of.get(token, "NAME")] += left
                    if len(r["examples"]) < EXAMPLES:
                        r["examples"].append((record["study_id"], token, _context(output, token),
                                              _context(read(variant), token)))
    for r in results.values():
        r["rate"] = r["survived"] / r["planted"] if r["planted"] else 0.0
    return results


def _context(text: str, token: str) -> str:
    m = re.search(r"(?<![^\W_])" + re.escape(token) + r"(?![^\W_])", text)
    if not m:
        return ""
    line_start = text.rfind("\n", 0, m.start()) + 1
    line_end = text.find("\n", m.end())
    return text[line_start:line_end if line_end >= 0 else len(text)].strip()[:100]


def table(results: dict[str, dict], title: str) -> list[str]:
    lines = [title, f"  {'variant':15s}{'planted':>9s}{'survived':>10s}{'rate':>9s}   by category"]
    total_planted = total_survived = 0
    for name, r in results.items():
        total_planted += r["planted"]
        total_survived += r["survived"]
        cats = ", ".join(f"{c} {n}" for c, n in r["by_category"].most_common())
        lines.append(f"  {name:15s}{r['planted']:9d}{r['survived']:10d}"
                     f"{100 * r['rate']:8.2f}%   {cats}")
    rate = total_survived / total_planted if total_planted else 0.0
    lines.append(f"  {'total':15s}{total_planted:9d}{total_survived:10d}{100 * rate:8.2f}%")
    for name, r in results.items():
        for study, token, out, src in r["examples"]:
            lines.append(f"    {name}: {study} {token!r}\n      in : {src!r}\n      out: {out!r}")
    return lines


@pytest.fixture(scope="module", params=[True, False], ids=["header", "no-header"])
def measured(request, cohort_records) -> tuple[bool, dict[str, dict]]:
    cohort, records = cohort_records
    results = measure(cohort, records, use_header=request.param)
    title = (f"PHI tokens left per report form, {len(records)} reports, "
             f"{'with' if request.param else 'without'} the DICOM header"
             + (f" (seed {SEED}, {PATIENTS}x{STUDIES})" if any(n in os.environ for n in _ENV)
                else " (session cohort)"))
    print("\n" + "\n".join(table(results, title)))
    return request.param, results


def test_every_variant_plants_readable_phi(measured):
    for name, r in measured[1].items():
        assert r["planted"] > 0, name
        # The reader finds every planted token in the variant before de-identification.
        assert r["readable"] == r["planted"], (name, r["readable"], r["planted"])
        if name != "plain":
            assert r["changed"] > 0, f"{name}: no report was changed"


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "plain"])
def test_variant_leaves_no_more_than_plain(measured, variant):
    use_header, results = measured
    plain, r = results["plain"], results[variant]
    allowed = TOLERANCE_PP if STRICT else KNOWN_GAPS_PP.get((variant, use_header), TOLERANCE_PP)
    assert r["rate"] <= plain["rate"] + allowed / 100, (
        f"{variant}: {100 * r['rate']:.2f} % of planted tokens left ({r['survived']}/"
        f"{r['planted']}: {dict(r['by_category'])}), plain text {100 * plain['rate']:.2f} %; "
        f"allowed {allowed} points more")


def test_crlf_reads_as_plain(measured):
    results = measured[1]
    assert results["crlf"]["survived"] <= results["plain"]["survived"]
