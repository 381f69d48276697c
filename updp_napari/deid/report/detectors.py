"""Rule detectors for report PHI: patterns, lexicons with context, and the study's header.

Every detector is a function ``(text, context) -> iterator of Span``. They over-find on
purpose where the cost of a miss is a leak; the whitelist and the resolver then drop what
is clinical vocabulary and merge what overlaps.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache

from ...core.spans import Span
from .lexicons import Lexicons, fold

_MONTHS = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
           r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_YEAR = r"(?:19|20)\d\d"
_I = re.IGNORECASE

_DATE_PATTERNS = [
    re.compile(rf"\b{_YEAR}-(?:0[1-9]|1[0-2])-(?:[0-2]\d|3[01])\b"),  # 2019-05-01
    re.compile(r"(?<![\d/.-])(?:0?[1-9]|1[0-2]|[12]\d|3[01])([/.-])(?:0?[1-9]|1[0-2]|[12]\d|3[01])"
               rf"\1(?:{_YEAR}|\d\d)(?![\d/])"),  # 03/04/2019, 05.01.2019, 3-4-19
    re.compile(rf"\b{_DAY}(?:\s+of)?[\s-]+{_MONTHS}\.?,?(?:[\s-]+{_YEAR})?\b", _I),  # 3 January 2019
    re.compile(rf"\b{_MONTHS}\.?\s+{_DAY}(?:,?\s+{_YEAR})?\b", _I),  # Jan 3rd, January 3, 2019
    re.compile(rf"\b{_MONTHS}\.?(?:\s+of)?,?\s+{_YEAR}\b", _I),  # January of 2019
    re.compile(rf"\b(?:0?[1-9]|[12]\d|3[01])-{_MONTHS}-(?:{_YEAR}|\d\d)\b", _I),  # 20-FEB-2020
    re.compile(rf"\b{_YEAR}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b"),  # 20160822
    # 3/4: month/day without a year, not a fraction ("1/3 of the lung").
    re.compile(r"(?<![\d/.])(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])(?![\d/])"
               r"(?!\s*(?:of|th|rd|nd|cm|mm)\b)"),
]
_TIME = re.compile(r"(?<![\d.:])(?:[01]?\d|2[0-3])[:.h][0-5]\d(?::[0-5]\d)?(?:\s*[ap]\.?m\.?)?"
                   r"(?![\d:]|\.\d|\s*(?:cm|mm|%))", _I)
_TIME_AFTER_DATE = re.compile(r"\s+(?:at\s+)?((?:[01]\d|2[0-3])[0-5]\d)\b")
_TIME_BEFORE_DATE = re.compile(r"(?<![\w.:/-])((?:[01]\d|2[0-3])[0-5]\d)\s+$")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"]+[^\s<>\".,;:)]", _I)
_IP = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_PHONE = re.compile(r"(?<![\w-])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?!\d)"
                    r"|(?<![\w-])0\d{2,4}\s\d{3}\s\d{3,4}(?!\d)"
                    r"|(?<!\w)(?:ext\.?|x)\s?\d{3,5}\b", _I)
_PAGER = re.compile(r"\b(?:pager|pgr|pg|beeper|bleep|bleeper)\.?\s*(?:no\.?|number|#)?\s*[:#]?\s*"
                    r"(\d[\d-]{2,9}\d)\b", _I)
_FAX_CONTEXT = re.compile(r"\bfax\b[^\n\d]{0,12}$", _I)
_AGE = re.compile(r"\b(?:aged?|age:?)\s+(9\d|1[01]\d)\b"
                  r"|\b(9\d|1[01]\d)(?=\s?Y\b|,\s+(?:presents|presenting|with|who|is|has|here|admitted|referred)\b)"
                  r"|\b(9\d|1[01]\d)(?=\s*-?\s*(?:years?[\s-]*old|y(?:ea)?rs?\b|y/?o\b|yo\b|[mf]\b))", _I)
_LABELLED_ID = re.compile(
    r"\b(?P<label>MRN|MR\s?#|MR\s?No\.?|Medical\s+Record(?:\s+(?:Number|No\.?))?|Hospital\s+(?:number|no\.?)"
    r"|Patient\s+ID|PID|Unit\s+No\.?|ID|Acc(?:ession)?\.?(?:\s*(?:no\.?|number|#))?|Order\s*#?"
    r"|SSN|Social\s+Security(?:\s+(?:Number|No\.?))?)\s*[:#]?\s*(?P<value>[A-Z0-9](?:[A-Z0-9-]*[0-9][A-Z0-9-]*))\b",
    _I)
# Unlabelled identifiers: long digit runs, or letters joined to digits (RG-928103, S46898769).
_BARE_ID = re.compile(r"(?<![\w.-])(?:[A-Z]{1,5}-?)?\d(?:[\d-]*\d)?(?:-?[A-Z])?(?![\w.-])")
# Street words must be capitalised ("2019 by Dr." is no address); the suffix may be any case.
_ADDRESS = re.compile(
    r"\b\d{1,5}\s+(?:[NSEW]\.?\s+)?(?:[A-Z][\w'-]*\s+){1,3}(?i:Street|St|Avenue|Ave|Road|Rd|Boulevard|"
    r"Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Parkway|Pkwy|Circle|Cir|Highway|Hwy)\b\.?"
    r"(?:,?\s+(?i:Apt|Suite|Unit|#)\.?\s*\w+)?")
_CITY_STATE_ZIP = re.compile(r"\b((?:[A-Z][\w'.-]*\s){0,2}[A-Z][\w'.-]*)(,?)\s+(?-i:([A-Z]{2}))"
                             r"(?:\s+(\d{5}(?:-\d{4})?))?\b", _I)
_CREDENTIAL_CODES = {"MD", "DO", "PA", "RN", "NP"}
_ZIP_AFTER_STATE = re.compile(r"\b([A-Z]{2})\s+(\d{5}(?:-\d{4})?)\b")
_INSTITUTION_ABBR = re.compile(r"\b(?:(?:ST\.?|SAINT)\s+)?(?:[A-Z][A-Z'-]{2,}\s+){1,3}"
                               r"(?:GH|MC|UH|CH|MH|RMC|UMC|HC|HS)\b")

_TITLES = r"(?:Dr|Doctor|Drs|Mr|Mrs|Ms|Miss|Mx|Prof|Professor|Nurse|RN|NP|PA-C|Sister|Rev)"
_TITLE = re.compile(rf"\b{_TITLES}\b\.?\s+", _I)
_CREDENTIAL = re.compile(r",?\s*(?<![\w.])(?:M\.?D\.?|D\.?O\.?|Ph\.?D\.?|RN|NP|PA-C|RT\s?\(R\)|RT|FRCR"
                         r"|MBBS|FRCP|md)(?![\w])")
_LABELS = re.compile(
    r"\b(?:patient(?:\s+name)?|pt(?:\s+name)?|name|signed\s+by|electronically\s+signed\s+by|signed|dictated\s+by"
    r"|reported\s+by|read\s+by|interpreted\s+by|verified\s+by|transcribed\s+by|approved\s+by|attending"
    r"|referring(?:\s+(?:physician|doctor|clinician|provider))?|requesting(?:\s+(?:physician|clinician|doctor))?"
    r"|ref(?:erred\s+by)?|ordered\s+by|tech(?:nologist)?|technician|radiographer|radiologist|resident|fellow"
    r"|provisional\s+report\s+by|typed\s+by|transcriptionist|scribe|discussed\s+with|d/w|communicated\s+to|called\s+to|notified|paged|cc"
    r"|informed|spoke\s+with|conveyed\s+to|read\s+back\s+by|per|from)\b\.?\s*:?\s*", _I)
_DICTATION = re.compile(r"(?<![\w/])[A-Z]{2,3}/[a-z]{2,3}(?![\w/])")
_VIEW_WORDS = {"lat", "lateral", "ap", "pa", "obl", "oblique", "dec", "lld", "rld", "port"}
_NAME_TOKEN = re.compile(r"[^\W\d_](?:[\w'’-]*[^\W\d_])?\.?|[^\W\d_]\.")

# Words that end a name run in any case: report vocabulary, not names.
_STOP = {
    "md", "do", "phd", "rn", "np", "rt", "mrn", "dob", "acc", "id", "at", "on", "by", "and", "or",
    "the", "a", "an", "to", "of", "in", "with", "for", "from", "via", "per", "re", "cc", "pgr",
    "pager", "tel", "phone", "fax", "email", "telephone", "ext", "date", "time", "exam", "hx",
    "history", "report", "findings", "impression", "conclusion", "comparison", "technique",
    "indication", "consultant", "radiologist", "radiographer", "tech", "technologist", "physician",
    "clinician", "dictated", "signed", "verified", "transcribed", "reported", "read", "who",
    "was", "is", "are", "were", "has", "had", "this", "that", "these", "results", "result",
    "today", "yesterday", "am", "pm", "et", "al", "ward", "unit", "bay", "bed", "room", "ed",
    "icu", "er", "team", "service", "office", "clinic", "dept", "department", "hospital",
    "provisional", "preliminary", "final", "addendum", "page", "paged", "called", "mr",
    "mrs", "ms", "dr", "aged", "age", "yo", "male", "female", "man", "woman", "pt", "patient",
    "y", "o", "m", "f", "name", "ref", "xr", "cxr", "chest", "pa", "ap", "lat", "views", "view",
    "examination", "none", "accession", "number", "no", "hospital number", "ws",
    "workstation", "ip",
}


@dataclass
class HeaderIdentifiers:
    """Identifying values read from the study's own DICOM header, to look for in its report."""

    names: list[list[str]] = field(default_factory=list)  # each person's name parts
    ids: list[str] = field(default_factory=list)  # patient ID, accession, other IDs
    dates: list[str] = field(default_factory=list)  # YYYYMMDD values (birth date, …)
    institutions: list[str] = field(default_factory=list)
    patient_key: str = ""  # what the per-patient date shift is keyed on


@dataclass
class Context:
    lexicons: Lexicons
    header: HeaderIdentifiers | None = None
    extra_patterns: list[tuple[re.Pattern, str]] = field(default_factory=list)  # site config


def _spans(pattern: re.Pattern, text: str, category: str, source: str, group: int = 0,
           confidence: float = 1.0) -> Iterator[Span]:
    for m in pattern.finditer(text):
        if m.group(group):
            yield Span(m.start(group), m.end(group), category, source, confidence)


def detect_patterns(text: str, ctx: Context) -> Iterator[Span]:
    """Dates, times, contact details, identifiers, ages over 89, addresses."""
    dates = []
    for pattern in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            dates.append(Span(m.start(), m.end(), "DATE", "pattern:date"))
    yield from dates
    for d in dates:
        m = _TIME_AFTER_DATE.match(text, d.end)
        if m:
            yield Span(m.start(1), m.end(1), "TIME", "pattern:time")
        m = _TIME_BEFORE_DATE.search(text, max(0, d.start - 12), d.start)
        if m:
            yield Span(m.start(1), m.end(1), "TIME", "pattern:time")
    yield from _spans(_TIME, text, "TIME", "pattern:time")
    yield from _spans(_EMAIL, text, "EMAIL", "pattern:email")
    yield from _spans(_URL, text, "URL", "pattern:url")
    yield from _spans(_IP, text, "IP", "pattern:ip")
    yield from _spans(_SSN, text, "SSN", "pattern:ssn")
    for m in _PHONE.finditer(text):
        before = text[max(0, m.start() - 16):m.start()]
        category = "FAX" if _FAX_CONTEXT.search(before) else "PHONE"
        if re.search(r"\b(?:pager|pgr|beeper|bleep)\b[^\n\d]{0,6}$", before, _I):
            category = "PAGER"
        yield Span(m.start(), m.end(), category, "pattern:phone")
    yield from _spans(_PAGER, text, "PAGER", "pattern:pager", group=1)
    for m in _AGE.finditer(text):
        g = next(i for i in (1, 2, 3) if m.group(i))
        yield Span(m.start(g), m.end(g), "AGE", "pattern:age")
    for m in _LABELLED_ID.finditer(text):
        label = m.group("label").lower()
        category = ("ACCESSION" if label.startswith("acc") else
                    "SSN" if label.startswith(("ssn", "social")) else "MRN")
        yield Span(m.start("value"), m.end("value"), category, "pattern:labelled-id")
    for m in _BARE_ID.finditer(text):
        digits = sum(c.isdigit() for c in m.group())
        if digits >= 6 or (digits >= 5 and any(c.isalpha() for c in m.group())):
            yield Span(m.start(), m.end(), "ID", "pattern:id", 0.8)
    yield from _spans(_ADDRESS, text, "ADDRESS", "pattern:address")
    for m in _CITY_STATE_ZIP.finditer(text):
        state, zip_code = m.group(3), m.group(4)
        if state != state.upper() or fold(state) not in ctx.lexicons.states:
            continue
        # The trailing words that are a known city; without one, a ZIP must vouch for it
        # ("Jones, MD" and "chest, PA" are no places).
        city_words = m.group(1).split()
        city = None
        for k in range(len(city_words)):
            candidate = " ".join(city_words[k:])
            if fold(candidate) in ctx.lexicons.cities:
                city = candidate
                break
        if city is None and not (zip_code and m.group(2)):
            continue
        if state in _CREDENTIAL_CODES and not zip_code:
            continue  # "Lowell, MD" signs a report; "Lowell, MD 21201" is a place
        if city is None:
            city = city_words[-1]
        yield Span(m.end(1) - len(city), m.end(1), "CITY", "pattern:city-state")
        yield Span(m.start(3), m.end(3), "STATE", "pattern:city-state")
        if zip_code:
            yield Span(m.start(4), m.end(4), "ZIP", "pattern:zip")
    for m in _ZIP_AFTER_STATE.finditer(text):
        if fold(m.group(1)) in ctx.lexicons.states and m.group(1).isupper():
            yield Span(m.start(2), m.end(2), "ZIP", "pattern:zip")
    for pattern, category in ctx.extra_patterns:
        yield from _spans(pattern, text, category, "config:pattern")


@cache
def _institution_pattern(words: tuple[str, ...]) -> re.Pattern | None:
    """Capitalised words ending in an institution word ("… Medical Center"), built once."""
    if not words:
        return None
    ordered = sorted(words, key=len, reverse=True)
    tail = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in ordered)
    tail_upper = "|".join(re.escape(w.upper()).replace(r"\ ", r"\s+") for w in ordered)
    return re.compile(
        rf"\b(?:(?:St\.?|Saint)\s+)?(?:[A-Z][\w'.&-]*\s+(?:of\s+(?:the\s+)?)?){{1,5}}(?:{tail})\b"
        rf"|\b(?:(?:ST\.?|SAINT)\s+)?(?:[A-Z][A-Z'.&-]+\s+){{1,5}}(?:{tail_upper})\b")


def detect_places(text: str, ctx: Context) -> Iterator[Span]:
    """Institutions by their tell-tale words, and cities and states from the lexicons."""
    pattern = _institution_pattern(tuple(ctx.lexicons.institution_words))
    if pattern is not None:
        for m in pattern.finditer(text):
            start = m.start()
            # A sentence's first word ("The", "At") is no part of the name.
            words_in = m.group().split()
            if words_in[0].lower() in ("the", "at", "from", "to", "in", "of", "and", "seen"):
                start = m.start() + m.group().index(words_in[1], len(words_in[0]))
            yield Span(start, m.end(), "INSTITUTION", "lexicon:institution")
    yield from _spans(_INSTITUTION_ABBR, text, "INSTITUTION", "pattern:institution-abbr", confidence=0.9)
    for m in re.finditer(r"\b[A-Z][\w'.-]*(?:\s+[A-Z][\w'.-]*){0,2}\b", text):
        words_ = m.group().split()
        for k in range(len(words_)):
            for j in range(len(words_), k, -1):
                phrase = " ".join(words_[k:j])
                key = fold(phrase)
                if key in ctx.lexicons.cities and key not in ctx.lexicons.ambiguous:
                    start = m.start() + m.group().index(phrase)
                    yield Span(start, start + len(phrase), "CITY", "lexicon:city", 0.7)


def _name_run(text: str, pos: int, ctx: Context, lowercase_ok: bool) -> tuple[int, int] | None:
    """The name starting at ``pos``: up to four name tokens, ``LAST, FIRST M`` included."""
    end, count, first_token = pos, 0, None
    i = pos
    while count < 4:
        m = _NAME_TOKEN.match(text, i)
        if not m:
            break
        token = m.group().rstrip(".")
        key = fold(token)
        is_initial = len(token) == 1
        capitalised = token[:1].isupper()
        if key in _STOP and not (is_initial and capitalised and count == 0):
            break
        if not capitalised and not lowercase_ok:
            break
        if not capitalised and not (ctx.lexicons.is_name_word(token) or count == 0 or is_initial):
            break
        if first_token is None:
            first_token = token
        end = m.end() if not m.group().endswith(".") or is_initial else m.end() - 1
        count += 1
        nxt = re.match(r"(,\s|\s)(?=[^\W\d_])", text[end:end + 3])
        if not nxt:
            break
        if nxt.group(1).startswith(",") and count > 1:
            break
        i = end + len(nxt.group(1))
    if count == 0:
        return None
    # A lone initial is no name.
    if count == 1 and len(first_token or "") == 1:
        return None
    return pos, end


def detect_names(text: str, ctx: Context) -> Iterator[Span]:
    """Names by context (titles, labels, credentials) and by the name lexicons."""
    for m in _TITLE.finditer(text):
        run = _name_run(text, m.end(), ctx, lowercase_ok=True)
        if run:
            yield Span(*run, "NAME", "context:title")
    for m in _LABELS.finditer(text):
        start = m.end()
        t = _TITLE.match(text, start)
        if t:
            start = t.end()
        lowercase_ok = m.group()[:1].islower() or text[start:start + 1].islower()
        run = _name_run(text, start, ctx, lowercase_ok=lowercase_ok)
        if run:
            s, e = run
            tokens = text[s:e].replace(",", " ").split()
            # After a loose label ("per", "from"), a name must look like one.
            loose = m.group().strip(" :.").lower() in ("per", "from", "name", "ref", "cc", "notified")
            named = any(ctx.lexicons.is_name_word(t.rstrip(".")) for t in tokens)
            # After a loose label, or in lower case ("tech: portable"), a name must look like one.
            if (loose or all(t[:1].islower() for t in tokens)) and not named:
                continue
            yield Span(s, e, "NAME", "context:label")
    for m in _CREDENTIAL.finditer(text):
        # Walk back over up to four name tokens before ", MD".
        before = text[max(0, m.start() - 60):m.start()]
        tokens = list(re.finditer(r"[^\W\d_][\w'’.-]*", before))
        picked = []
        for t in reversed(tokens):
            if fold(t.group().rstrip(".")) in _STOP or len(picked) == 4:
                break
            # A full stop after a word ends a sentence, not a name ("no hope. RN Hall").
            if t.group().endswith(".") and len(t.group()) > 2:
                break
            gap = before[t.end():(picked[-1].start() if picked else len(before))]
            if gap.strip(" ,") or "\n" in gap:
                break
            picked.append(t)
        lowercase_credential = m.group().strip(" ,").islower()
        if picked and len(picked[0].group().rstrip(".")) >= 2 and (
                picked[0].group()[:1].isupper() or lowercase_credential):
            offset = max(0, m.start() - 60)
            yield Span(offset + picked[-1].start(), offset + picked[0].end(), "NAME", "context:credential")
    for m in _DICTATION.finditer(text):
        # "PA/lat" names two views, not a radiologist and a typist.
        if m.group().split("/")[1] not in _VIEW_WORDS:
            yield Span(m.start(), m.end(), "NAME", "pattern:dictation-initials", 0.8)
    # Lexicon: a known first name followed by a capitalised word, or a known surname after
    # an initial; ambiguous words (Hope, Bill, Hall) need one of the context rules above.
    lex = ctx.lexicons
    for m in re.finditer(r"\b([^\W\d_][\w'’-]*)(\s+[A-Z]\.?)?\s+([A-Z][\w'’-]+)\b", text):
        first, last = m.group(1), m.group(3)
        if not first[:1].isupper():
            continue
        fk, lk = fold(first), fold(last)
        # An ambiguous first name ("Will", "Mark") counts before a surname that is no word.
        sure_last = lk in lex.last_names and lk not in lex.ambiguous and last[:1].isupper()
        if fk in lex.first_names and (fk not in lex.ambiguous or sure_last) and lk not in _STOP and (
                lk in lex.last_names or last[:1].isupper() and not last.isupper() or last.isupper()
                and first.isupper()):
            if lk in lex.ambiguous and lk not in lex.last_names:
                continue
            yield Span(m.start(1), m.end(3), "NAME", "lexicon:first-last", 0.8)
    for m in re.finditer(r"\b([A-Z])\.?\s+([A-Z][\w'’-]+)\b", text):
        if fold(m.group(2)) in lex.last_names and fold(m.group(2)) not in lex.ambiguous:
            yield Span(m.start(), m.end(), "NAME", "lexicon:initial-last", 0.8)


def _find_word(text: str, lowered: str, value: str) -> Iterator[tuple[int, int]]:
    """Case-insensitive whole-word occurrences of ``value`` (plain search, no regex to build)."""
    needle = value.lower()
    if not needle:
        return
    if len(lowered) != len(text):  # lower() changed lengths (rare letters): fall back
        for m in re.finditer(rf"(?<!\w){re.escape(value)}(?!\w)", text, _I):
            yield m.start(), m.end()
        return
    pos = lowered.find(needle)
    while pos >= 0:
        end = pos + len(needle)
        if (pos == 0 or not lowered[pos - 1].isalnum()) and \
                (end == len(lowered) or not lowered[end].isalnum()):
            yield pos, end
        pos = lowered.find(needle, pos + 1)


def detect_header_identifiers(text: str, ctx: Context) -> Iterator[Span]:
    """The study's own identifiers, as they may be written in its report."""
    header = ctx.header
    if header is None:
        return
    lowered = text.lower()

    def find(value: str, category: str, source: str, confidence: float = 1.0) -> Iterator[Span]:
        for start, end in _find_word(text, lowered, value):
            yield Span(start, end, category, source, confidence)

    for parts in header.names:
        for part in parts:
            if len(part) >= 2:
                yield from find(part, "NAME", "header:name")
        # Initials in DICOM order (family, given) and in speaking order (given, family).
        letters = [p[0].upper() for p in parts if p]
        if len(letters) >= 2:
            orders = {"".join(letters), letters[1] + letters[0] + "".join(letters[2:]),
                      letters[1] + letters[0]}
            for initials in orders:
                # Initials only as written, in capitals: "js" is no one's initials.
                for variant in (initials, ".".join(initials) + "."):
                    pos = text.find(variant)
                    while pos >= 0:
                        end = pos + len(variant)
                        if (pos == 0 or not text[pos - 1].isalnum() and text[pos - 1] != ".") and \
                                (end == len(text) or not text[end].isalnum()):
                            yield Span(pos, end, "NAME", "header:initials", 0.7)
                        pos = text.find(variant, pos + 1)
    for value in header.ids:
        if len(value) >= 3:
            yield from find(value, "ID", "header:id")
    for value in header.dates:
        for variant in date_variants(value):
            yield from find(variant, "DATE", "header:date")
    for value in header.institutions:
        for variant in institution_variants(value, ctx.lexicons.institution_words):
            yield from find(variant, "INSTITUTION", "header:institution")


def institution_variants(name: str, institution_words: list[str]) -> list[str]:
    """An institution's name and its distinctive part ("Mercy Valley Clinic" → "Mercy Valley")."""
    variants = [name]
    core = name
    for word in sorted(institution_words, key=len, reverse=True):
        if core.lower().endswith(" " + word.lower()):
            core = core[: -len(word) - 1].strip(" ,")
            break
    core = re.sub(r"^(?:St\.?|Saint)\s+", "", core, flags=_I)
    if core != name and len(core) >= 4 and " " in core or (core != name and len(core) >= 6):
        variants.append(core)
    return variants


_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August",
                "September", "October", "November", "December")


def date_variants(yyyymmdd: str) -> list[str]:
    """The ways a DICOM date is commonly written in text."""
    if not re.fullmatch(r"\d{8}", yyyymmdd):
        return []
    y, m, d = yyyymmdd[:4], int(yyyymmdd[4:6]), int(yyyymmdd[6:])
    if not (1 <= m <= 12 and 1 <= d <= 31):
        return []
    month = _MONTH_NAMES[m - 1]
    return [f"{y}-{m:02d}-{d:02d}", f"{m:02d}/{d:02d}/{y}", f"{m}/{d}/{y}", f"{d:02d}.{m:02d}.{y}",
            f"{d}.{m}.{y}", f"{d:02d}/{m:02d}/{y}", f"{d} {month} {y}", f"{month} {d}, {y}",
            f"{d:02d}-{month[:3]}-{y}", yyyymmdd]
