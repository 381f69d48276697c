"""Rule detectors for report PHI: patterns, lexicons with context, and the study's header.

Every detector is a function ``(text, context) -> iterator of Span``. They over-find on
purpose where the cost of a miss is a leak; the whitelist and the resolver then drop what
is clinical vocabulary and merge what overlaps.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache, lru_cache, wraps

from ...core.spans import Span
from ...core.vocabulary import MONTHS, UNSPACED_SCRIPT
from .lexicons import SINGLE_LETTERS, Lexicons, Word, WordIndex, cut_words, first_words, fold, index_words
from .narrative import _RELATIONS as _RELATION_WORDS
from .narrative import OPEN_QUOTES, PARTICLES, RELATION, STRONG, TITLE, WEAK, Reader, skip_open_quote
from .vocabulary import clinical_shape, drug_shape, word_classes

_MONTHS = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
           r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_DAY_NUMBER = r"(?:[12]\d|3[01]|0?[1-9])"  # a day of the month, as digits
_DAY = rf"{_DAY_NUMBER}(?:st|nd|rd|th)?"
_YEAR = r"(?:19|20)\d\d"
_I = re.IGNORECASE

_DATE_PATTERNS = [
    # 2019-05-01, and as ISO 8601 writes it before a time: 2019-05-01T14:22
    re.compile(rf"\b{_YEAR}-(?:0[1-9]|1[0-2])-(?:[0-2]\d|3[01])(?:\b|(?=T\d))"),
    re.compile(r"(?<![\d/.])(?<![\d/.]-)(?:0?[1-9]|1[0-2]|[12]\d|3[01])([/.-])(?:0?[1-9]|1[0-2]|[12]\d|3[01])"
               rf"\1(?:{_YEAR}|\d\d)(?![\d/])"),  # 03/04/2019, 05.01.2019, 3-4-19, "toxicity-9/2/92"
    re.compile(rf"\b{_DAY}(?:\s+of)?[\s-]+{_MONTHS}\.?,?(?:[\s-]+(?:{_YEAR}|'?\d\d(?![\d:])))?\b", _I),
    # 3 January 2019, "21 Apr, 21"
    # Jan 3rd, January 3, 2019, March the 3rd
    re.compile(rf"\b{_MONTHS}\.?\s+(?:the\s+{_DAY_NUMBER}(?:st|nd|rd|th)|{_DAY})(?:,?\s+{_YEAR})?\b", _I),
    re.compile(rf"\b{_MONTHS}\.?(?:\s+of)?,?\s+{_YEAR}\b", _I),  # January of 2019
    re.compile(rf"\b(?:0?[1-9]|[12]\d|3[01])-{_MONTHS}-(?:{_YEAR}|\d\d)\b", _I),  # 20-FEB-2020
    re.compile(rf"\b{_YEAR}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b"),  # 20160822
    # 3/4: month/day without a year, not a fraction ("1/3 of the lung"); see _short_date_ok.
    re.compile(r"(?<![\d/.])(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])(?![\d/])"
               r"(?!\s*(?:of|th|rd|nd|cm|mm|%)\b)"),
    # 8/87, 12/82: month and two-digit year, the year past any day of a month.
    re.compile(r"(?<![\d/.])(?:0?[1-9]|1[0-2])/(?:3[2-9]|[4-9]\d)(?![\d/%]|\.\d)"),
]
# 2019/11/02, 2019.11.02: the year first, as many systems write it.
_YEAR_FIRST_DATE = re.compile(rf"\b{_YEAR}([/.])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12]\d|3[01])(?![\d/]|\.\d)")
# 4 / 1 / 2023, 4/ 1/23: a full date with spaces about its slashes.
_SPACED_NUMBER_DATE = re.compile(
    r"(?<![\d/.])(?:0?[1-9]|1[0-2]|[12]\d|3[01])[ \t]?/[ \t]?(?:0?[1-9]|1[0-2]|[12]\d|3[01])"
    rf"[ \t]?/[ \t]?(?:{_YEAR}|\d\d)(?![\d/])")
# 3/2019: month and four-digit year (no fraction has such a denominator).
_MONTH_LONG_YEAR = re.compile(rf"(?<![\d/.])(?:0?[1-9]|1[0-2])/{_YEAR}(?![\d/])")
# Mar-03-2019, and the forms written without spaces: 03Mar2019, 12SEP18, Apr1 2023.
_MONTH_DASH_DATE = re.compile(rf"\b{_MONTHS}-{_DAY_NUMBER}-(?:{_YEAR}|\d\d)\b", _I)
# "02-Nov" (a day and a month), "Aug-23" (a month and a two-digit year), "2021-03" (a year
# and a month).
_DAY_DASH_MONTH = re.compile(rf"\b{_DAY_NUMBER}-{_MONTHS}\b(?!-)", _I)
_MONTH_DASH_YEAR = re.compile(rf"\b{_MONTHS}-(?:\d\d|{_YEAR})\b(?!-)", _I)
_YEAR_DASH_MONTH = re.compile(rf"\b{_YEAR}-(?:0[1-9]|1[0-2])\b(?![-/]\d)")
# "until 30/6": a day past twelve before the month, as British notes write it, after a word
# that introduces a date and no setting ("on 13/10", "PSV of 15/5" are pressures).
# The day of the week before a date ("Tues 3/4", "Mon 20/5"; not "sat", "sun").
_WEEKDAY_CUES = frozenset({"monday", "mon", "tuesday", "tue", "tues", "wednesday", "wed",
                           "thursday", "thu", "thur", "thurs", "friday", "fri", "saturday",
                           "sunday"})
_DAY_MONTH_CUES = _WEEKDAY_CUES | {"until", "till", "til", "since", "dated", "before", "after",
                                   "through", "thru", "today", "yesterday", "tomorrow"}
_DAY_MONTH_SHORT = re.compile(r"(?<![\d/.])(?:1[3-9]|2\d|3[01])/(?:0?[1-9]|1[0-2])(?![\d/])")
_GLUED_DAY_MONTH = re.compile(rf"\b{_DAY_NUMBER}{_MONTHS}(?:{_YEAR}|\d\d)?\b", _I)
_GLUED_MONTH_DAY = re.compile(rf"\b{_MONTHS}{_DAY_NUMBER}(?:,?\s+{_YEAR})?\b", _I)
_GLUED_MONTH_WORD = re.compile(r"\d{1,2}[a-z]{3,9}(?:\d\d|\d{4})?")
# A dotted time has a two-digit hour or an am/pm: "7.35" is a pH, "10.40" and "7.35 pm" times.
_TIME = re.compile(r"(?<![\d.:])(?:(?:[01]?\d|2[0-3])[:h][0-5]\d(?::[0-5]\d)?(?:\s*[ap]\.?m\.?)?"
                   r"|(?:[01]\d|2[0-3])\.[0-5]\d(?:\s*[ap]\.?m\.?)?|(?:[01]?\d|2[0-3])\.[0-5]\d\s*[ap]\.?m\.?)"
                   r"(?![\d:]|\.\d|\s*(?:cm|mm|%))", _I)
_ISO_TIME = re.compile(r"T((?:[01]\d|2[0-3]):?[0-5]\d(?::?[0-5]\d(?:[.,]\d+)?)?)(?![\d:])")
_TIME_AFTER_DATE = re.compile(r"\s+(?:at\s+)?((?:[01]\d|2[0-3])[0-5]\d)\b")
_TIME_BEFORE_DATE = re.compile(r"(?<![\w.:/-])((?:[01]\d|2[0-3])[0-5]\d)\s+$")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"]+[^\s<>\".,;:)]", _I)
# An address written with spaces about its "@", or spelt out: "jane.doe @ gmail.com",
# "jsmith at gmail dot com".
_EMAIL_SPACED = re.compile(r"(?<![\w.+-])[\w.+-]+[ \t]@[ \t]?[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b"
                           r"|(?<![\w.+-])[\w.+-]+@[ \t][\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")
_DOT = r"[ \t]+(?:dot|\[dot\]|\(dot\))[ \t]+"
_EMAIL_SPELT = re.compile(rf"\b[\w.+-]+[ \t]+(?:at|\[at\]|\(at\))[ \t]+[\w-]+(?:{_DOT}[\w-]+)*{_DOT}"
                          r"(?:com|org|net|edu|gov|us|io|co)\b", _I)
# A handle on a social network after the network's name.
_NETWORK_BEFORE = re.compile(r"\b(?:instagram|twitter|tiktok|facebook|snapchat|threads|ig|handle|x)\b"
                             r"[ \t:]*\Z", _I)
_HANDLE = re.compile(r"@[A-Za-z0-9_.]{3,30}\b")


def _at_signs(text: str, at: int) -> list[Span]:
    """At each "@" from ``at`` on: an address written with spaces about it, and a handle after
    a network's name ("instagram @lindamiller")."""
    found: list[Span] = []
    while at >= 0:
        m = None
        if (at and text[at - 1] in " \t") or text[at + 1:at + 2] in (" ", "\t"):
            k = at
            while k and text[k - 1] in " \t":
                k -= 1
            while k and (text[k - 1].isalnum() or text[k - 1] in "_.+-"):
                k -= 1
            if (m := _EMAIL_SPACED.match(text, k)) and m.end() > at:
                found.append(Span(m.start(), m.end(), "EMAIL", "pattern:email-spaced"))
            else:
                m = None
        if m is None and _NETWORK_BEFORE.search(text, max(0, at - 20), at) and \
                (h := _HANDLE.match(text, at)):
            found.append(Span(h.start(), h.end(), "URL", "pattern:handle"))
        at = text.find("@", at + 1)
    return found


# A web address without its scheme: a host name ending in a common top-level domain, a path
# after it ("facebook.com/linda.miller.5", "gofundme.com/f/help", "mychart.org").
_TLD_WORDS = frozenset({"com", "org", "net", "edu", "gov", "us", "io", "me", "info", "health"})
_BARE_HOST = re.compile(rf"(?<![\w@.-])(?:[A-Za-z0-9-]+\.)+(?:{'|'.join(sorted(_TLD_WORDS))})"
                        r"(?:/[^\s<>\"]*[^\s<>\".,;:)])?(?![\w-])", _I)
_DOT_WORD = frozenset({"dot"})
# IPv6: groups of hexadecimal digits with "::", or eight groups.
_IPV6 = re.compile(r"(?<![\w:])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
                   r"|(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4}"
                   r"|::(?:[0-9A-Fa-f]{1,4}:){0,6}[0-9A-Fa-f]{1,4})(?![\w:])")


_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{4}:")


def _ipv6(text: str) -> list[Span]:
    """IPv6 addresses, looked for only in a text that holds "::" or a colon, four
    hexadecimal digits and a colon (a note's labels and times of day never do)."""
    if "::" not in text and not _IPV6_HINT.search(text):
        return []
    return [Span(m.start(), m.end(), "IP", "pattern:ip") for m in _IPV6.finditer(text)
            if sum(1 for g in m.group().split(":") if g) >= 3]  # not "std::map"


def _bare_hosts(text: str, index: WordIndex) -> list[tuple[int, int]]:
    """Where a bare web address stands: looked for only where a top-level domain stands as a
    word after a full stop joined to a word."""
    found: list[tuple[int, int]] = []
    for tld_start, tld_end, _ in index.hits(_TLD_WORDS):
        pos = tld_start - 1
        if pos < 1 or text[pos] != "." or not text[pos - 1].isalnum() or \
                (found and pos < found[-1][1]):
            continue
        start = pos
        while start and (text[start - 1].isalnum() or text[start - 1] in ".-"):
            start -= 1
        if (m := _BARE_HOST.match(text, start)) and m.end() >= tld_end:
            found.append(m.span())
    return found


# (A full stop after it ends a sentence; one before a digit would make it another number.)
_IP = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)"
                 r"(?!\d|\.\d)")
_SSN = re.compile(r"\b\d{3}([-. ])\d{2}\1\d{4}\b(?![.-]\d)")
# Parts may be set apart by a dash with spaces around it ("212- 476- 8356"); a dash before
# the number may be punctuation ("DAUGHTER---301 944-5032").
_PHONE_SEP = r"(?:[ \t]*[.-][ \t]*|[ \t])"
_PHONE = re.compile(rf"(?<!\w)(?<!\d-)(?:\+?1[\s.-]?)?(?:\(\d{{3}}\)[ \t]?-?[ \t]?|\d{{3}}(?:{_PHONE_SEP}|/))"
                    rf"\d{{3}}{_PHONE_SEP}\d{{4}}(?!\d)"
                    # the number's seven digits run together after the area code
                    r"|(?<!\w)\(?\d{3}\)?[ \t]\d{7}(?!\d)"
                    # a last group mistyped one digit long, where spaces set the groups apart
                    r"|(?<!\w)\(?\d{3}\)?[ \t]\d{3}[ \t]\d{5}(?!\d)"
                    r"|(?<![\w-])0\d{2,4}\s\d{3}\s\d{3,4}(?!\d)"
                    r"|(?<!\w)(?:ext\.?|extension)\s?(?:\d{1,2}-)?\d{2,5}\b"
                    r"|(?<!\w)x\s?(?:\d{1,2}-)?\d{3,5}\b", _I)
# A hospital's internal number, a digit, a dash and four ("page cards @ 3-8821", "call blood bank
# 4-2207"), after a word of calling on the same line.
_INTERNAL_NUMBER = re.compile(r"\d-\d{4}(?![\d-]|\.\d)"
                              r"(?![ \t]*(?:ml|mls|mg|mcg|cc|units?|u|iu|%|kg|g)\b)", _I)
_CALL_BEFORE = re.compile(r"(?:\b(?:call|calls|called|calling|page|pages|paged|paging|pager|beeper|bpr"
                          r"|bleep|reach|contact|phone|ph|tel|ext)\b|@)[^\n\d]{0,30}\Z", _I)
_PAGER = re.compile(r"\b(?:pager|pgr|pg|beeper|bpr|bleep|bleeper)\.?\s*(?:no\.?|number|#)?\s*[:#]?\s*#?"
                    r"(\d[\d-]{2,9}\d)\b", _I)
_FAX_CONTEXT = re.compile(r"\bfax\b[^\n\d]{0,12}$", _I)
_PAGER_CONTEXT = re.compile(r"\b(?:pager|pgr|beeper|bpr|bleep)\b[^\n\d]{0,6}$", _I)
_AGE = re.compile(r"\b(?:aged?|age:?)\s+(9\d|1[01]\d)\b"
                  r"|\b(9\d|1[01]\d)(?=\s?Y\b|,\s+(?:presents|presenting|with|who|is|has|here|admitted|referred)\b)"
                  r"|\b(9\d|1[01]\d)(?=\s*-?\s*(?:years?[\s-]*old|y(?:ea)?rs?\b|y/?o\b|yo?[mf]?\b|[mf]\b"
                  r"|/[mf]\b))", _I)
# The relatives of an age past ninety as notes name them ("Grandmother is 102").
_ELDERS = r"grandmother|grandfather|grandma|grandpa|granny|gran|grandad|granddad|nan|nana"
# An age over 89 told by the words about it: "She is 95.", "turned 92 last week", "M, 90, s/p
# fall", "in her 90s", "her 100th birthday" (not "HR is 95", "turned 90 degrees", "SBP in
# the 90s").
_AGE_BEFORE = re.compile(
    rf"(?:\b(?P<is>she|he|pt|patient|wife|husband|mother|father|{_ELDERS})(?:\s+(?:is|was|will\s+be)"
    r"|['’]ll\s+be)"
    r"|\bturn(?:s|ed|ing)|\b(?:died|passed\s+away|passed)\s+at|\blived\s+to|\b(?:pt|patient)\s*\("
    r"|(?P<at>(?:\A|(?<=[.!?;:\n])\s*)at)"
    rf"|(?<![\w,/])(?P<sex>[MF]|pt|patient|mother|father|husband|wife|sister|brother|aunt|uncle|{_ELDERS})[,/]"
    r"|\bin\s+(?:her|his|their)(?:\s+(?:early|mid|late))?)[ \t-]*\Z", _I)
_AGE_BEFORE_ENDINGS = ("is ", "was ", "turned ", "turns ", "turning ", ",", ", ", "her ", "his ",
                       "their ", "early ", "mid ", "late ", "mid-", "is\t", "was\t", "be ", "at ",
                       "pt (", "pt(", "patient (", "m/", "f/", " to ")  # not every "(95" or "120/95"
# After "she is 98": the end of the phrase, years, or what goes on about her ("and", "(per").
_AGE_AFTER_IS = re.compile(r"\s*(?:[,;)]|\.(?!\d)|\Z|(?:years?|yrs?|and|next|today|now)\b|\("
                           r"|per\b(?!\s*cent))", _I)
_AGE_NOT_AFTER_TURN = re.compile(r"\s*(?:degrees?\b|°|%|/)")
_BIRTHDAY = re.compile(r"\s+birthday\b", _I)
# The same in words: "ninety-two year old", "a nonagenarian", "in his nineties".
_AGE_WORDS_OVER_89 = frozenset({"ninety", "nonagenarian", "nonagenarians", "centenarian",
                                "centenarians", "supercentenarian", "nineties", "hundred"})
# Ninety to one hundred and ten in words: "ninety-two", "a hundred and one".
_AGE_NUMBER_WORDS = (r"(?:ninety(?:[- ](?:one|two|three|four|five|six|seven|eight|nine))?"
                     r"|(?:a|one)[ \t]+hundred(?:[ \t]+and[ \t]+(?:one|two|three|four|five|six|seven"
                     r"|eight|nine|ten))?)")
_AGE_IN_WORDS = re.compile(rf"(?:{_AGE_NUMBER_WORDS}(?=[- ]+(?:years?[- ]+old|yo|y/o)\b)"
                           r"|(?:super)?centenarians?|nonagenarians?)\b", _I)
# "she is ninety-seven", "turns one hundred and two": the age in words after a person's verb.
_AGE_WORDS_ALONE = re.compile(rf"({_AGE_NUMBER_WORDS})\b(?![- ](?:percent|%|degrees|days?|weeks?|months?"
                              r"|hours?|minutes?|mg|ml|units?|times)\b)", _I)
_AGE_VERB_BEFORE = re.compile(r"(?:\b(?:she|he|pt|patient|who)[ \t]+(?:is|was|will[ \t]+be)"
                              r"|\bturn(?:s|ed|ing)|\bage[ \t]*:|\baged)[ \t]+\Z", _I)
_IN_THEIR_NINETIES = re.compile(r"\bin\s+(?:her|his|their)(?:\s+(?:early|mid|late))?[ \t-]+\Z", _I)


_PERSON_AFTER_COMMA = re.compile(r",[ \t]+(?:the[ \t]+)?(?:pt|patient|he|she|mr|mrs|ms|mother|father|husband"
                                 r"|wife)\b", _I)
_DECADE_PART_BEFORE = re.compile(r"\b(?:early|mid|late)[ \t-]?\Z", _I)
_PERSON_AFTER = re.compile(r"[ \t]+(?:female|male|woman|man|lady|gentleman|gent|[fm])\b", _I)


def _age_by_context(text: str, start: int, digits_end: int, word: str) -> tuple[int, int] | None:
    """Where the number of 90 to 119 at ``start`` is an age by the words about it."""
    suffix = word[digits_end - start:]  # "th" of "100th", "s" of "90s"
    if suffix in ("st", "nd", "rd", "th"):
        return (start, start + len(word)) if _BIRTHDAY.match(text, start + len(word)) else None
    if suffix == "s" and word[-2] == "0" and _DECADE_PART_BEFORE.search(text, max(0, start - 8), start) \
            and _PERSON_AFTER.match(text, start + len(word)):
        return start, start + len(word)  # "Late-90s female", "mid 90s man"
    if not text[max(0, start - 9):start].lower().endswith(_AGE_BEFORE_ENDINGS):
        return None  # "HR 95", "sats 98": the rest is not tried
    before = _AGE_BEFORE.search(text, max(0, start - 24), start)
    if before is None:
        return None
    if before.group("is"):
        ok = _AGE_AFTER_IS.match(text, digits_end) is not None and word.isdigit()
    elif before.group("sex"):
        ok = word.isdigit() and (text.startswith(",", digits_end) or before.group().rstrip(" \t-")[-1:] == "/"
                                 and not text[digits_end:digits_end + 1].isdigit())
    elif before.group().lower().startswith("turn"):
        ok = word.isdigit() and not _AGE_NOT_AFTER_TURN.match(text, digits_end)
    elif before.group().rstrip(" \t-").endswith("("):  # "pt (97)"
        ok = word.isdigit() and text.startswith(")", digits_end)
    elif before.group("at"):  # "At 97, pt remains sharp": a sentence opens with the age
        ok = word.isdigit() and _PERSON_AFTER_COMMA.match(text, digits_end) is not None
    elif before.group().rstrip(" \t-").lower().endswith((" at", " to")):  # "died at 96", "lived to 104"
        ok = word.isdigit() and not _AGE_NOT_AFTER_TURN.match(text, digits_end)
    else:  # in her 90s
        ok = suffix == "s" and word[-2] == "0"
        return (start, start + len(word)) if ok else None
    return (start, digits_end) if ok else None


# A national identity number after its label, whole, masked or its last digits: "SSN
# ***-**-1120", "ssn last four 4471", "SIN 718 253 994", "NHS number 943 476 5919", "NI number
# JT 48 21 93 B".
# Other countries' numbers after their label: India's Aadhaar (twelve digits), New Zealand's
# IRD and NHI, Ireland's PPSN, Australia's TFN.
_NATIONAL_NUMBER = re.compile(
    r"(?:SSN|social[ \t]+security(?:[ \t]+(?:number|no\.?|#))?|SIN|NHS(?:[ \t]+(?:number|no\.?|#))?"
    r"|NI(?:[ \t]+(?:number|no\.?|#))|national[ \t]+insurance(?:[ \t]+(?:number|no\.?|#))?"
    r"|Aadhaa?r(?:[ \t]+(?:number|no\.?|#))?|(?:IRD|NHI|PPSN?|TFN)(?:[ \t]+(?:number|no\.?|#))?)"
    r"[ \t]*(?:is[ \t]+)?[:#]?[ \t]*(?:(?:last|ending)(?:[ \t]+(?:four|4|digits|in))*[ \t]*[:#]?[ \t]*)?"
    r"(?P<value>[*Xx]{3}[ -]?[*Xx]{2}[ -]?\d{4}|\d{4}[ -]?\d{4}[ -]?\d{4}|\d{3}[ -]?\d{3}[ -]?\d{3,4}"
    r"|\d{7}[A-W][A-IW]?|[A-Z]{3}\d{4}|[A-Z]{3}\d{2}[A-Z]{2}|\d{4}"
    r"|[A-Z]{2}[ ]?\d{2}[ ]?\d{2}[ ]?\d{2}[ ]?[A-D]|\d{3}[ -]?\d{2}[ -]?\d{4})(?![\w-])", _I)
_NATIONAL_NUMBER_WORDS = frozenset({"ssn", "social", "sin", "nhs", "ni", "national", "aadhaar",
                                    "aadhar", "ird", "nhi", "pps", "ppsn", "tfn"})
# Labels that are everyday words in lower case ("sin"), counted in capitals only.
_CAPITALS_ONLY = frozenset({"sin", "ird", "nhi", "pps", "ppsn", "tfn"})
# Labels of a vehicle's plate, whose number may hold two digits among its letters ("KX19 FPL").
_PLATE_WORDS = frozenset({"plate", "reg", "registration", "rego"})
_LABELLED_ID = re.compile(
    r"\b(?P<label>MRN|MR\s?#|MR\s?No\.?|Medical\s+Record(?:\s+(?:Number|No\.?))?|Hospital\s+(?:number|no\.?)"
    r"|Patient\s+ID|PID|Unit\s+No\.?|ID|Acc(?:ession)?\.?(?:\s*(?:no\.?|number|#))?|Order\s*#?"
    r"|SSN|Social\s+Security(?:\s+(?:Number|No\.?))?)(?:\s*[:#]?\s*|-)(?P<value>[A-Z0-9](?:[A-Z0-9-]*[0-9][A-Z0-9-]*))\b",
    _I)
# A unit after a number makes it an amount, no record's number ("lot 5000 units").
_UNITS = r"ml|mls|mg|mcg|cc|l|kg|g|units?|%|mmhg|hours?|hrs?|days?"
_NO_UNIT_AFTER = rf"(?![ \t]*(?:{_UNITS}|min(?:utes?)?)\b)"
# Other numbers HIPAA lists, after their label: vehicle (VIN, licence plate), device (serial,
# lot), and a case's, study's or examination's own number; four digits or more, not a year.
_OTHER_ID = re.compile(
    r"(?:VIN|MBI|(?:licen[cs]e|plate|lot|serial|SN|case|study|exam(?:ination)?|policy|claim|member"
    r"|account|acct|group|grp|reg(?:istration)?|rego|certificate|cert|permit|passport|medicare|medicaid"
    r"|insurance|subscriber|beneficiary|card|OHIP|IHI|PHN|DL)"
    r"(?:\s+plate)?(?:\s+(?:card\s+)?(?:no\.?|number|#|id))?)\s*[:#]?\s*(?:[A-Z]{2,4}\s)?"
    r"(?P<value>(?=[A-Z-]*\d)[A-Z0-9](?:[A-Z0-9-]*[A-Z0-9])?(?:[ ](?=[A-Z-]*\d)[A-Z0-9-]*[A-Z0-9]){0,3})"
    r"(?![\w/.-]\w)" + _NO_UNIT_AFTER, _I)
_OTHER_ID_WORDS = frozenset({"vin", "mbi", "license", "licence", "plate", "rego", "lot", "serial", "sn",
                             "case", "study", "exam", "examination", "policy", "claim", "member",
                             "account", "acct", "group", "grp", "reg", "registration",
                             "certificate", "cert", "permit", "passport", "medicare", "medicaid",
                             "insurance", "subscriber", "beneficiary", "card", "ohip", "ihi",
                             "phn", "dl"})
# Any record's number after "no.", "number" or "ref" and its noun: "Employee no. 55081", "Case
# no. 23/PF/1187", "Coroner's ref 2024/0931/PM", "lab no. 24H017720" (four digits or more).
_NUMBERED_ID = re.compile(
    r"(?<=[^\W\d_][ \t])(?:no\.|no:|nr\.?|number|ref\.?|reference)[ \t]*[:#]?[ \t]*"
    r"(?P<value>(?=[A-Z/-]*\d)[A-Z0-9](?:[A-Z0-9/-]*[A-Z0-9])?"
    r"(?:[ ](?=[A-Z-]*\d)[A-Z0-9][A-Z0-9-]*[A-Z0-9]){0,3})"
    r"(?![\w.-]\w)" + _NO_UNIT_AFTER, _I)
_NUMBERED_ID_WORDS = frozenset({"no", "nr", "number", "ref", "reference"})
_RATIO = re.compile(r"\d{1,3}/\d{1,3}")
# A number after a noun and "#": "old record # 77-21-305", "JOB#: 88213".
_HASH_LABEL = re.compile(r"([^\W\d_]{2,})[ \t]*#[ \t]*:?[ \t]*\Z")
_AFTER_HASH = re.compile(r"#[ \t]*:?[ \t]*")
_NUMBER_OF_A_PHONE = frozenset({"pager", "pgr", "pg", "beeper", "bpr", "bleep", "bleeper", "phone", "tel",
                                "cell", "mobile", "fax", "ph", "home", "work"})  # the phone rules' own
_HASH_VALUE = re.compile(rf"\d(?:[\dA-Z-]*\d)?(?![\w/.-]\w)(?![ \t]*(?:{_UNITS}|min)\b)", _I)
_YEAR_ALONE = re.compile(r"(?:19|20)\d\d")
# A DICOM UID: five dotted numbers or more, from the root 1 or 2 ("1.2.840.113619.2.55…").
_UID = re.compile(r"(?<![\d.])[12](?:\.(?:0|[1-9]\d*)){4,}(?![\d.]|\.\d)")
# A pager's number after the word that pages it: "paged ortho #34567", "paged fellow, p 54321".
_PAGED = re.compile(r"paged\b[^\n\d.;]{0,30}?(?:#|\bp\.?[ \t]*#?)[ \t]*(\d{4,6})(?![\d-])", _I)
# Unlabelled identifiers: long digit runs, or letters joined to digits (RG-928103, S46898769).
_BARE_ID = re.compile(r"(?<![\w.-])(?:[A-Z]{1,5}-?)?\d(?:[\d-]*\d)?(?:-?[A-Z])?(?![\w-]|\.\w)")
# The kinds of street an address ends with, as written in the US, Canada, the UK, Ireland,
# Australia and New Zealand (one list: the address patterns, the words that trigger them and
# the words of an address that name nothing are made from it).
_STREET_KINDS = ("Street", "St", "Avenue", "Ave", "Road", "Rd", "Boulevard", "Blvd", "Lane", "Ln",
                 "Drive", "Dr", "Court", "Ct", "Way", "Place", "Pl", "Terrace", "Parkway", "Pkwy",
                 "Circle", "Cir", "Highway", "Hwy", "Crescent", "Cres", "Grove", "Close", "Parade",
                 "Pde", "Square", "Sq", "Mews", "Gardens", "Gdns", "Rise", "Esplanade", "Quay",
                 "Row", "Trail", "Loop", "Alley", "Wynd", "Park")
# (Not "View" or "Walk": "2 Lateral View", "6 Minute Walk" are an examination and a test.)
# Street words must be capitalised ("2019 by Dr." is no address); the suffix may be any case. The
# number may carry a letter or a unit's number before a slash ("31B Jacaranda Ave", "9/14 Ngaio
# Street"; the letter A to F: "3L CORDIS STILL IN PLACE" is three litres).
_ADDRESS = re.compile(
    r"\b(?:\d{1,4}/)?\d{1,5}[A-Fa-f]?\s+(?:[NSEW]\.?\s+)?(?:[A-Z][\w'-]*\s+){1,3}"
    rf"(?i:{'|'.join(_STREET_KINDS)})\b\.?"
    r"(?:,?\s+(?i:Apt|Suite|Unit|#)\.?\s*\w+)?")
# Street words in any case ("3790 oakridge road"): an address only where a state code and a
# ZIP follow on the same line ("…, tucson, az 85761").
_ADDRESS_ANY_CASE = re.compile(_ADDRESS.pattern.replace("[A-Z][\\w'-]*", "[^\\W\\d_][\\w'-]*"))
# A dwelling's word before its address: "lives at", "staying at pt's house at", "drive him home
# to", "senior housing at", "apartment at".
_LIVES_AT = re.compile(r"\b(?:lives|living|lived|resides|residing|stays|staying|stay|home|house|apartment|apt"
                       r"|condo|housing|address|addr)(?:[ \t]+(?:at|on|to))?[ \t]*:?[ \t]*\Z", _I)
_STATE_ZIP_AHEAD = re.compile(r"[^\n]{0,60}?\b([A-Za-z]{2})\.?\s+\d{5}(?:-\d{4})?\b")
_STATE_ZIP_ANY_CASE = re.compile(r"\b([A-Za-z]{2})\.?\s+(\d{5}(?:-\d{4})?)\b")
# The street words the address patterns end with, in lower case.
_STREET_SUFFIXES = frozenset(k.lower() for k in _STREET_KINDS)
_STREET_WORDS = _STREET_SUFFIXES | {"apt", "suite", "unit", "n", "s", "e", "w"}
# Up to three words of a city's name that end just before a state code ("Savannah, GA").
_CITY_BEFORE_STATE = re.compile(r"\b((?:[A-Z][\w'.-]*\s){0,2}[A-Z][\w'.-]*)(,?)\s+\Z", _I)
# What may follow a state code written without its ZIP: the end of the line or of a field.
_STATE_ENDS_FIELD = re.compile(r"[ \t]*(?:$|[,;|)]|[ \t]{2})", re.MULTILINE)
_CREDENTIAL_CODES = {"MD", "DO", "PA", "RN", "NP"}
_ZIP_AFTER_STATE = re.compile(r"\b([A-Z]{2})\s+(\d{5}(?:-\d{4})?)\b")
_INSTITUTION_ABBR = re.compile(r"\b(?:(?:ST\.?|SAINT)\s+)?(?:[A-Z][A-Z'-]{2,}\s+){1,3}"
                               r"(?:GH|MC|UH|CH|MH|RMC|UMC|HC|HS)\b")

# Titles written short take a full stop; one written out ends a sentence there ("Thank you,
# doctor. Reviewed by ...").
_TITLES = (r"(?:(?:Dr|Drs|Mr|Mrs|Ms|Mx|Prof|RN|NP|PA-C|Rev|Sra|Srta|Sgt|Capt)\b\.?"
           r"|(?<!\d)(?<!\d\s)Fr\."  # a priest ("Fr. Keogh"), not a catheter's size ("14 Fr.")
           r"|(?:Doctor|Miss|Professor|Nurse|Sister|Reverend|Officer|Rabbi|Pastor|Chaplain|Imam|Judge"
           r"|Coach|Mister|Pandit)\b)")
_TITLE = re.compile(rf"\b{_TITLES}\s+", _I)
_CREDENTIAL = re.compile(r",?\s*(?<![\w.])(?:M\.?D\.?|D\.?O\.?|Ph\.?D\.?|RN|NP|PA-C|RT\s?\(R\)|RT|FRCR"
                         r"|MBBS|FRCP|md)(?![\w])")
_LABELS = re.compile(
    r"\b(?:patient(?:['’]s)?\s+name|pt(?:['’]s)?\s+name|patient|pt|name(?:\s+is|['’]s)?|signed\s+by|electronically\s+signed\s+by|signed|dictated\s+by"
    r"|reported\s+by|read\s+by|interpreted\s+by|verified\s+by|transcribed\s+by|approved\s+by|attending"
    r"|referring(?:\s+(?:physician|doctor|clinician|provider))?|requesting(?:\s+(?:physician|clinician|doctor))?"
    r"|ref(?:erred\s+by)?|ordered\s+by|tech(?:nologist)?|technician|radiographer|radiologist|resident|fellow"
    r"|provisional\s+report\s+by|typed\s+by|transcriptionist|scribe|discussed\s+with|d/w|communicated\s+to|called\s+to|notified|paged|cc"
    r"|informed|spoke\s+with|conveyed\s+to|read\s+back\s+by|per|from|cop(?:y|ies)\s+to"
    r"|distribution|(?:prepared|written|completed|entered|authored|reviewed|checked|witnessed|countersigned"
    r"|co-?signed)\s+by"
    # a letter's or a message's signature: "Thanks, Priyanka", "Kind regards, Siobhan"
    r"|(?:thanks|thx|thank\s+you|regards|best\s+wishes)[ \t]*[,-][ \t]*|dict)\b\.?\s*:?\s*", _I)
_DICTATION = re.compile(r"(?<![\w/])[A-Z]{2,3}/[a-z]{2,3}(?![\w/])")
_DICTATION_LINE = re.compile(r"^[ \t]*([A-Za-z]{2,3})/([A-Za-z]{2,3})[ \t]*$", re.MULTILINE)


def _dictation_initials(text: str) -> Iterator[re.Match]:
    """``_DICTATION.finditer(text)``, tried only where a slash stands (two or three capitals
    before it): each match holds one slash, and one slash begins at most one match."""
    pos = text.find("/")
    while pos >= 0:
        for start in (pos - 3, pos - 2):
            if start >= 0 and (m := _DICTATION.match(text, start)):
                yield m
                break
        pos = text.find("/", pos + 1)


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
    # Every date the header holds (datetime.date): the shift maps none onto another.
    all_dates: set = field(default_factory=set)
    _needles: list[tuple[str, list[tuple]]] | None = field(default=None, repr=False,
                                                         compare=False)

    def needles(self, lexicons: Lexicons) -> list[tuple[str, list[tuple]]]:
        """The values to search reports for, worked out once per header."""
        if self._needles is None:
            self._needles = _header_needles(self, lexicons)
        return self._needles


@dataclass
class Context:
    lexicons: Lexicons
    header: HeaderIdentifiers | None = None
    extra_patterns: list[tuple[re.Pattern, str]] = field(default_factory=list)  # site config
    all_times: bool = False  # every time of day, not only those of a dated event (site config)
    _words: tuple[str, list[Word]] | None = None
    _reader: object = None
    _index: tuple[str, WordIndex] | None = None

    def index(self, text: str) -> WordIndex:
        """Where each word of ``text`` stands (built once per text)."""
        if self._index is None or self._index[0] is not text:
            self._index = (text, index_words(self.words(text)))
        return self._index[1]

    def reader(self, text: str):
        """The narrative reader of ``text`` (word classes, whether capitals mean names)."""
        if self._reader is None or self._reader.text is not text:
            self._reader = Reader(text, words=self.words(text), index=self.index(text))
        return self._reader

    def words(self, text: str) -> list[Word]:
        """``text``'s words (runs of letters and digits) as (start, end, lower case), cut once."""
        if self._words is None or self._words[0] is not text:
            self._words = (text, cut_words(text))
        return self._words[1]


_LETTERS = re.compile(r"[^\W\d_]*")


def _spans(pattern: re.Pattern, text: str, category: str, source: str, group: int = 0,
           confidence: float = 1.0, pos: int = 0) -> Iterator[Span]:
    for m in pattern.finditer(text, pos):
        if m.group(group):
            yield Span(m.start(group), m.end(group), category, source, confidence)


# Every pattern is tried only where a word can start it, found in one pass over the words:
# a dozen scans of the whole report cost far more than a look-up per word. Each set below
# lists the lower-case words that can begin its pattern (tests hold them to the patterns).
_MONTH_WORDS = {w for m in MONTHS for w in (m.lower(), m[:3].lower())} | {"sept"}
_ID_LABEL_WORDS = {"mrn", "mr", "medical", "hospital", "patient", "pid", "unit", "id", "acc",
                   "accession", "order", "ssn", "social"}
_PAGER_WORDS = {"pager", "pgr", "pg", "beeper", "bpr", "bleep", "bleeper"}
_URL_WORDS = {"http", "https", "www"}
_AGE_WORDS = {"age", "aged"}
_ISO_DATE, _NUMBER_DATE, _DAY_MONTH_DATE, _MONTH_DAY_DATE, _MONTH_YEAR_DATE, _DD_MON_DATE, \
    _COMPACT_DATE, _SHORT_DATE, _MONTH_SHORT_YEAR = _DATE_PATTERNS
_WORD_DATES = (_MONTH_DAY_DATE, _MONTH_YEAR_DATE, _MONTH_DASH_DATE)
# "November second", "June the fifth": a month's name, capitalised (not "may"), and its day in
# words.
_ORDINAL_WORDS = (r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh"
                  r"|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth"
                  r"|nineteenth|twentieth|thirtieth|(?:twenty|thirty)[- ](?:first|second|third"
                  r"|fourth|fifth|sixth|seventh|eighth|ninth))")
_MONTH_DAY_IN_WORDS = re.compile(
    rf"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?"
    rf"|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?\s+(?:the\s+)?{_ORDINAL_WORDS}\b"
    rf"(?:,?\s+{_YEAR}\b)?", _I)
# "the fifth of June", "twenty second of may": the day in words before "of" and the month;
# "twelfth November": right before it.
_ORDINAL_OF = re.compile(rf"(?<![\w-])({_ORDINAL_WORDS})[ \t]+of[ \t]+\Z", _I)
_ORDINAL_ENDINGS = ("st", "nd", "rd", "th")
_ORDINAL_BEFORE = re.compile(rf"(?<![\w-])({_ORDINAL_WORDS})[ \t]+\Z", _I)
# "18-19 March", "3rd to 5th June 2024": a range of days before its month (the first day is
# no date alone: a number after a dash goes on the number before it).
_DAY_RANGE_MONTH = re.compile(rf"\b{_DAY}[ \t]*(?:-|–|to)[ \t]*{_DAY}(?:\s+of)?[\s-]+{_MONTHS}\b\.?"
                              rf"(?:,?[\s-]+{_YEAR}\b)?", _I)
_DAY_ALONE = (_DAY_MONTH_DATE,)
_DAY_OR_RANGE = (_DAY_MONTH_DATE, _DAY_RANGE_MONTH)
_YEAR_AFTER = re.compile(rf",?[ \t]+{_YEAR}\b")
# A month's name one letter off ("Febuary 2", "Octobr 18"), then a day or a year.
_MONTH_LIKE_DATE = re.compile(rf"[^\W\d_]+\.?\s+(?:{_DAY}(?:,?\s+{_YEAR})?|{_YEAR})\b(?![/:.]\d)")


@cache
def _misspelt_months() -> frozenset[str]:
    """Every word one letter off a month's full name (changed, dropped, added, or two
    swapped) that is no English, clinical or name word: "febuary", "octobr", "janaury"."""
    wc = word_classes()
    letters = "abcdefghijklmnopqrstuvwxyz"
    found: set[str] = set()
    for month in MONTHS:
        m = month.lower()
        if len(m) < 5:
            continue
        for i in range(len(m) + 1):
            found.update(m[:i] + c + m[i:] for c in letters)
        for i in range(len(m)):
            found.add(m[:i] + m[i + 1:])
            found.update(m[:i] + c + m[i + 1:] for c in letters)
            if i + 1 < len(m):
                found.add(m[:i] + m[i + 1] + m[i] + m[i + 2:])
    return frozenset(w for w in found if len(w) >= 4 and w not in _MONTH_WORDS and
                     w not in wc.dictionary and w not in wc.clinical and w not in wc.given and
                     w not in wc.surnames and w not in wc.stop)


# Holidays name a day of the year ("Christmas Day", "Thanksgiving 2019", "New Year's Eve";
# "Good Friday" capitalised only).
_HOLIDAY = re.compile(
    r"(?:Christmas(?:[ \t]+(?:Eve|Day))?|Thanksgiving(?:[ \t]+Day)?|Easter(?:[ \t]+(?:Sunday|Monday))?"
    r"|New[ \t]+Year(?:[’']?s(?:[ \t]+(?:Eve|Day))?|[ \t]+(?:Eve|Day))"
    r"|Halloween|Hanukk?ah|Chanukk?ah|Passover"
    r"|Good[ \t]+Friday|Fourth[ \t]+of[ \t]+July|Yom[ \t]+Kippur|Rosh[ \t]+Hashanah"
    r"|(?:Memorial|Labou?r|Independence|Veterans[’']?|Columbus|Presidents[’']?|Mother[’']?s"
    r"|Father[’']?s|Valentine[’']?s|Boxing|St\.?[ \t]+Patrick[’']?s|Anzac|Waitangi|Australia"
    r"|Canada|Victoria|Remembrance|Armistice|Bastille)[ \t]+Day"
    r"|Diwali|Deepavali|Holi|Eid(?:[ \t-]+(?:al|ul)[ \t-]+(?:Fitr|Adha))?"
    r"|(?:Lunar|Chinese)[ \t]+New[ \t]+Year|Bonfire[ \t]+Night|Guy[ \t]+Fawkes(?:[ \t]+Night)?)"
    rf"(?:[ \t]+(?:of[ \t]+)?{_YEAR})?(?![\w’'])", _I)
_HOLIDAY_WORDS = frozenset({
    "christmas", "thanksgiving", "easter", "new", "halloween", "hanukkah", "hanukah", "chanukah",
    "chanukkah", "passover", "good", "fourth", "yom", "rosh", "memorial", "labor", "labour",
    "independence", "veterans", "columbus", "presidents", "mother", "mothers", "father",
    "fathers", "valentine", "valentines", "boxing", "st", "anzac", "waitangi", "australia",
    "canada", "victoria", "remembrance", "armistice", "bastille", "diwali", "deepavali", "holi",
    "eid", "lunar", "chinese", "bonfire", "guy"})
_CITY_STATE_REACH = 80  # characters before a state code where its city may start


def _date_patterns_at(text: str, end: int, word: str) -> tuple[re.Pattern, ...]:
    """The date patterns that can begin with the number ``word`` (ending at ``end``)."""
    after = text[end:end + 1]
    digits = word.isdigit()
    if after in ("/", ".", "-") and digits:
        if len(word) == 4 and after != "-":
            return (_YEAR_FIRST_DATE,)  # 2019/11/02; no other form begins with four digits
        if after == "/":
            if text[end + 1:end + 5].isdigit() and not text[end + 5:end + 6].isdigit():
                return (_MONTH_LONG_YEAR,)  # 3/2019: no other form has four digits there
            if text[end + 1:end + 2] in (" ", "\t"):
                return (_SPACED_NUMBER_DATE,)  # 4/ 1/23
            # "until 30/6": a British day and month, after a word that dates it (see the loop)
            return (_NUMBER_DATE, _SHORT_DATE, _MONTH_SHORT_YEAR, _DAY_MONTH_SHORT) if len(word) == 2 \
                else (_NUMBER_DATE, _SHORT_DATE, _MONTH_SHORT_YEAR)
        if after == "-":
            return (_ISO_DATE, _NUMBER_DATE, _DD_MON_DATE, _YEAR_DASH_MONTH) if len(word) == 4 else \
                (_NUMBER_DATE, _DD_MON_DATE, _DAY_DASH_MONTH, _DAY_RANGE_MONTH) if len(word) <= 2 else \
                (_NUMBER_DATE, _DD_MON_DATE)  # "2021-03", "02-Nov"
        return (_NUMBER_DATE,)
    if after == " " and text[end + 1:end + 2] == "/" and digits and len(word) <= 2:
        return (_SPACED_NUMBER_DATE,)  # 4 / 1 / 2023
    if len(word) == 8 and digits:
        return (_COMPACT_DATE,)
    if not digits:
        # a day glued to its month ("03mar2019"): the letters must be a month's name
        glued = _GLUED_MONTH_WORD.fullmatch(word)
        if glued and word.strip("0123456789") in _MONTH_WORDS:
            return (_GLUED_DAY_MONTH,)
    if len(word) > 4:
        return ()
    # "3rd-5th June", "18 - 19 March", "3 to 5 June": a range of days before its month
    if after == " ":
        following = text[end + 1:end + 2]
        return _DAY_OR_RANGE if following and following in "t-–" and \
            text.startswith((" to ", " - ", " – "), end) else _DAY_ALONE
    return _DAY_OR_RANGE if after in ("-", "–") else _DAY_ALONE


_BARE_SHORT_DATES = (_SHORT_DATE, _MONTH_SHORT_YEAR)
# The second date of a range: "10/14-10/16", "3/1 to 3/4"; after a month's name the second
# day alone: "Oct 14-16" (not a dose or a count: "Oct 14-16 mg" is none).
_RANGE_END = re.compile(r"[ \t]?(?:-|to)[ \t]?((?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])"
                        r"(?:/(?:\d{4}|\d\d))?)(?![\d/])", _I)
_RANGE_END_DAY = re.compile(rf"[ \t]?(?:-|to)[ \t]?({_DAY_NUMBER})(?![\d/.:,]\d|[\d/:])"
                            r"(?!\s*(?:mg|mcg|g|ml|cm|mm|units?|%|x|times|hours?|hrs?|days?|"
                            r"weeks?|wks?|months?|years?|yrs?)\b)", _I)
# Dates written loosely in notes: a month alone after "in" ("in Sept."), a day alone after
# "the" at the end of a phrase ("on the 11th."), a year as "'09" or "74'" after an event.
_LOOSE_MONTH = re.compile(
    r"(?:in|since|until|during|of|last|early|late|mid|from|through|thru|till|by|before|after)\s+"
    r"((?:January|February|March|April|June|July|August"
    r"|September|October|November|December|Sept?|Aug|Oct|Nov|Feb|Apr)\b\.?)(?!\s*\d)", _I)
_WEEKDAY_THE = re.compile(r"\b(?:mon|tues|wednes|thurs|fri|satur|sun)day[ \t]+the[ \t]+"
                          r"((?:[12]?\d|3[01])(?:st|nd|rd|th))\Z", _I)
_LOOSE_DAY = re.compile(r"the\s+((?:[12]?\d|3[01])(?:st|nd|rd|th))\b"
                        r"(?=\s*(?:[.,;:)\"]|$|of\s+(?:the\s+)?month))", _I | re.MULTILINE)
# "seen in the ED on the 21st and sent home", "on the 15th for surgery": a day after "on the"
# before a word that goes on the sentence, not a noun ("on the 3rd floor", "on the 2nd day",
# "on the 4th and 5th ribs", "on the 2nd and final attempt").
_ON_THE_DAY = re.compile(r"\b(?:on|since|until|till|by|from|to|through)[ \t]+the[ \t]+((?:[12]?\d|3[01])"
                         r"(?:st|nd|rd|th))"
                         r"(?=[ \t]+(?:and(?![ \t]+(?:final|last|only|most|least|best|worst)\b)|but|when"
                         r"|where|after|before|until|because|so|then|for|at|with|if|unless|by)"
                         r"[ \t]+(?!\d)[a-z]"
                         r"|[ \t]+of[ \t]+(?:last|this|next|the)[ \t]+month\b)", _I)
# "intubated from the 5th to the 8th": the first day of a range whose last is a date.
_FROM_THE_DAY = re.compile(r"\b(?:from|between)[ \t]+the[ \t]+((?:[12]?\d|3[01])(?:st|nd|rd|th))"
                           r"[ \t]+(?:to|and|through|until|till)[ \t]+the[ \t]+\Z", _I)
# A year with an apostrophe: "'09" (tried where the quote stands before a two-digit number)
# and "74'" (after it), but not the angle of the head of the bed ("HOB 30'").
_YEAR_QUOTED_BEFORE = re.compile(r"(?<![\w'’])['’]\d\d(?![\w'’])")
_YEAR_QUOTED_AFTER = re.compile(r"(?<![\w'’.])[1-9]\d['’](?![\w'’\"])(?!\s*\d)")
_NOT_YEAR_BEFORE = re.compile(r"(?:hob|head of bed)\s+\Z", _I)
# "returned to OR on 7-8 for coiling": a month-day after "on", not a range of some unit.
_LOOSE_MONTH_DAY = re.compile(r"(?:on|since|until)\s+((?:0?[1-9]|1[0-2])-(?:0?[1-9]|[12]\d|3[01]))(?![\d-])"
                              r"(?!\s*(?:mg|mcg|cm|mm|ml|l|liters?|units?|hrs?|hours?|days?|wks?|weeks?|x|times"
                              r"|%|am|pm|min|mins|minutes|breaths|bpm)\b)(?=[\s.,;)])", _I)
_LOOSE_MONTH_CUES = frozenset({"in", "during", "of", "last", "early", "late", "mid", "on", "since",
                               "from", "through", "thru", "till", "by", "before", "after",
                               "until"})
_LOOSE_DAY_CUES = frozenset({"the"})
_LOOSE_MONTH_DAY_CUES = frozenset({"on", "since", "until"})
_PREVIOUS_WORD = re.compile(r"([^\W\d_]+)[ \t\r\n]+\Z")


def _loose_date(text: str, start: int, pattern: re.Pattern, cues: frozenset[str]) -> re.Match | None:
    """``pattern`` matched from the word before ``start`` when that word is one of ``cues``:
    the loose dates are tried from their rare part (a month, an ordinal, a month-day), not
    from the everyday word before it ("in", "the", "on")."""
    before = _PREVIOUS_WORD.search(text, max(0, start - 12), start)
    if before is None or before.group(1).lower() not in cues:
        return None
    m = pattern.match(text, before.start())
    return m if m is not None and m.start(1) == start else None
# Words before a number that make it a date ("since 3/4", "study of 1/2").
_DATE_CUES = _WEEKDAY_CUES | {"on", "since", "from", "of", "dated", "until", "till", "til", "through",
                              "thru", "before", "after", "last", "dos", "date", "in"}
# Words before a pair of numbers that make it a measurement: ventilator settings, strength,
# scores, ratios ("PS 10/5", "strength 5/5", "GCS 3/15").
_MEASURE_CUES = frozenset({
    "ps", "peep", "cpap", "bipap", "ipap", "epap", "psv", "imv", "simv", "vent", "settings",
    "strength", "grade", "power", "motor", "gcs", "score", "bp", "nbp", "abp", "map", "x",
    "ratio", "scale", "flow", "fio2", "ie", "cmv", "prvc", "vc",
    # pain and other scores out of a total ("pain 7/10", "murmur 3/6"); not cultures, which
    # are dated as often as counted ("blood cultures 10/1")
    "pain", "pains", "discomfort", "rated", "rates", "rating", "intensity", "severity",
    "murmur", "sem", "pulses", "cores",
    # a symptom scored out of ten ("c/o HA 4/10", "CP 6/10") and a course's day ("day 3/14")
    "ha", "cp", "headache", "ache", "aches", "cramping", "soreness", "day"})
# Words after a pair of numbers that make it a score or a count: "7/10 pain", "2/6 SEM".
_MEASURE_AFTER = frozenset({"pain", "discomfort", "murmur", "sem", "hsm", "dm", "cultures",
                            "bottles", "cores", "pulses", "nodes", "nodules", "positive",
                            "scale", "points", "ngtd", "ngsf"})
# A muscle's strength out of 5 before the limb it is of: "3/5 LUE", "4/5 grip".
_LIMB_WORDS = frozenset({"lue", "rue", "lle", "rle", "bue", "ble", "ue", "le", "ues", "les", "arm", "arms",
                         "leg", "legs", "grip", "hip", "knee", "ankle", "wrist", "shoulder", "deltoid",
                         "deltoids", "biceps", "triceps", "quads", "quadriceps", "hamstrings", "extremity",
                         "extremities", "dorsiflexion", "plantarflexion", "proximally", "distally", "prox",
                         "proximal", "distal"})
_NEXT_WORD_AFTER = re.compile(r"[ \t]*([^\W\d_]+)")
# A scale's word or another score of it near a pair out of 5 or 10.
_SCORE_NEARBY = re.compile(r"\b(?:pain|score|scale|rated|rating|fatigue|nausea|anxiety|strength|power"
                           r"|motor|assessment)\b|(?<![\d/])\d{1,2}/(?:10|5)(?![\d/])", _I)
_DURATION_CUES = frozenset({"for", "in", "within", "over", "ros", "x", "a", "past", "last", "approx",
                            "about", "after"})
_FRACTIONS = frozenset({(1, 2), (1, 3), (2, 3), (1, 4), (3, 4), (1, 8), (5, 5)})


def _short_date_ok(text: str, m: re.Match) -> bool:
    """Whether a month/day or month/year without a full year reads as a date here.

    Clinical notes are full of number pairs that look like one: fractions ("1/2"), equal
    parts ("5/5" strength), ventilator settings ("PS 10/5"). A pair reads as a measure after a
    measuring word or before "+"; fractions and equal parts read as dates only after a word
    that introduces a date ("since 3/4"); half, thirds, quarters and full strength (5/5)
    are read as such.
    """
    before = _word_before(text, m.start())
    if before in _MEASURE_CUES or text[m.end():m.end() + 1] == "+" or \
            text[max(0, m.start() - 1):m.start()] in ("+", "x"):
        return False
    after = _NEXT_WORD_AFTER.match(text, m.end())
    a, _, b = m.group().partition("/")
    if after and before not in _DATE_CUES and (after.group(1).lower() in _MEASURE_AFTER or
                                               b == "5" and after.group(1).lower() in _LIMB_WORDS):
        return False
    if (a[0] == "0" or b[0] == "0") and a != "0" and b != "0":
        return True  # "checked 2/03": no fraction or score is written with a leading zero
    if (int(a), int(b)) in _FRACTIONS:
        return before in _DATE_CUES
    if before in _DATE_CUES and before not in _DURATION_CUES:
        return True
    if int(b) in (5, 10) and int(a) <= int(b) and any(
            h.start() != m.start() for h in
            _SCORE_NEARBY.finditer(text, max(0, m.start() - 60), min(len(text), m.end() + 20))):
        # "Pain 7/10 … relief to 3/10", "strength 5/5 …, 4/5 LLE": a second score of a scale
        return False
    if b == "52" or (b in ("12", "7") and (before in _DURATION_CUES or
                                          (after and after.group(1).lower() in ("ago", "history", "hx")))):
        return False  # weeks, months and days as British notes count them: "for 5/7", "6/12 ago"
    return True


# What a word (lower case, letters only) can begin, besides a name.
_ALPHA_TRIGGERS = {**{w: "month" for w in _MONTH_WORDS}, **{w: "url" for w in _URL_WORDS},
                   **{w: "age" for w in _AGE_WORDS}, **{w: "pager" for w in _PAGER_WORDS},
                   **{w: "id-label" for w in _ID_LABEL_WORDS}, "ext": "extension", "x": "extension",
                   "extension": "extension", "zip": "zip", "postal": "zip", "box": "po-box", "bag": "po-box",
                   "rr": "rural-route", "rural": "rural-route", "r": "rural-route",
                   "sin": "national-number", "nhs": "national-number", "ni": "national-number",
                   "national": "national-number",
                   **{w: "national-number" for w in ("aadhaar", "aadhar", "ird", "nhi", "pps", "ppsn",
                                                     "tfn")},
                   **{w: "phone-label" for w in ("tel", "telephone", "ph", "phone", "fax", "mobile",
                                                 "mob", "cell", "landline", "contact", "home",
                                                 "work")},
                   "postcode": "zip", "eircode": "zip",
                   "apt": "apartment", "apartment": "apartment", "suite": "apartment",
                   "ste": "apartment",
                   **{w: "other-id" for w in _OTHER_ID_WORDS}, "paged": "paged",
                   **{w: "numbered-id" for w in _NUMBERED_ID_WORDS},
                   **{w: "au-state" for w in ("nsw", "vic", "qld", "sa", "wa", "tas", "nt", "act")}}


# Every word a pattern can begin with: the loop visits these only.
_ALPHA_TRIGGERS.update({**{w: "holiday" for w in _HOLIDAY_WORDS},
                        **{w: "age-word" for w in _AGE_WORDS_OVER_89}})
_PATTERN_WORDS = frozenset(_ALPHA_TRIGGERS)


@cache
def _pattern_words() -> frozenset[str]:
    """The words a pattern can begin with, a month's name one letter off among them."""
    return _PATTERN_WORDS | _misspelt_months()


_LETTERS_BEFORE = re.compile(r"(?<![\w.-])[^\W\d_]{1,5}\Z")


_GLUED_CUE = re.compile(r"([a-z]+)\d")


def detect_patterns(text: str, ctx: Context) -> list[Span]:
    """Dates, times, contact details, identifiers, ages over 89, addresses."""
    found: list[Span] = []
    dates: list[Span] = []
    index = ctx.index(text)
    # An address holds a street word as a word of its own after its number: where they stand
    # (ASCII text only: in any case "ſt" is "st" to the pattern, not to the word cut; None
    # where any number may begin one).
    streets = _StreetWords(text, [s for s, _, _ in index.hits(_STREET_SUFFIXES)]) \
        if text.isascii() else None
    for start, end, word in index.numbers:
        if start < 2 or text[start - 1] not in "/.:-" or not text[start - 2].isdigit():
            for pattern in _date_patterns_at(text, end, word):
                if (m := pattern.match(text, start)) and (
                        pattern not in _BARE_SHORT_DATES or _short_date_ok(text, m)) and not (
                        pattern is _NUMBER_DATE and len(m.group()) <= 8 and
                        _word_before(text, m.start()) in _MEASURE_CUES) and (
                        pattern is not _DAY_MONTH_SHORT or _word_before(text, start) in _DAY_MONTH_CUES) and (
                        not m.group().endswith("may") or _word_before(text, start) in _DATE_CUES):
                    dates.append(Span(m.start(), m.end(), "DATE", "pattern:date"))
            _numeric_at(text, start, end, word, found, ctx, streets)
            if len(word) == 2:
                if start and text[start - 1] in "'’" and (m := _YEAR_QUOTED_BEFORE.match(text, start - 1)):
                    dates.append(Span(m.start(), m.end(), "DATE", "pattern:date"))
                elif text[end:end + 1] in ("'", "’") and (m := _YEAR_QUOTED_AFTER.match(text, start)) and \
                        not _NOT_YEAR_BEFORE.search(text, max(0, start - 14), start):
                    dates.append(Span(m.start(), m.end(), "DATE", "pattern:date"))
            if word.endswith(("st", "nd", "rd", "th")):
                m = _loose_date(text, start, _LOOSE_DAY, _LOOSE_DAY_CUES) or \
                    _WEEKDAY_THE.search(text, max(0, start - 16), start + len(word)) or \
                    _ON_THE_DAY.search(text, max(0, start - 16), start + len(word) + 22)
            elif text.startswith("-", end):
                m = _loose_date(text, start, _LOOSE_MONTH_DAY, _LOOSE_MONTH_DAY_CUES)  # "on 7-8"
            else:
                m = None
            if m:
                dates.append(Span(m.start(1), m.end(1), "DATE", "pattern:date"))
    # A full date run into the word before it by a missing space: "labs on10/14/82".
    for start, _end, word in index.mixed:
        glued = _GLUED_CUE.match(word)
        if glued and glued.group(1) in _DATE_CUES and \
                (m := _NUMBER_DATE.match(text, start + glued.end(1))):
            dates.append(Span(m.start(), m.end(), "DATE", "pattern:date"))
    state_codes = ctx.lexicons.state_codes
    triggered = [*index.hits(_pattern_words()), *index.hits(state_codes)]
    for start, _, word in index.mixed:  # letters joined to digits: S46898769, MRN12345, x4417
        _bare_id_at(text, start, found)
        if word.rstrip("0123456789") in _MONTH_WORDS and (m := _GLUED_MONTH_DAY.match(text, start)):
            dates.append(Span(m.start(), m.end(), "DATE", "pattern:date"))  # "Apr1 2023"
        letters = _LETTERS.match(word).group()
        if letters in _PATTERN_WORDS:
            triggered.append((start, start + len(letters), letters))
    for start, _, _ in index.numbers:
        # Up to five letters, a dash and the number: an identifier ("RG-928103").
        if start >= 2 and text[start - 1] == "-" and text[start - 2].isalpha():
            m = _LETTERS_BEFORE.search(text, max(0, start - 7), start - 1)
            if m:
                _bare_id_at(text, m.start(), found)
    url_start = url_end = 0
    for start, end, word in triggered:
        if word == "no" and text[end:end + 1] not in ".:":
            continue  # "No effusion": "no" begins most sentences of a report, "no." a number
        if word in state_codes and text[start:end].isupper():  # "ID" is Idaho too
            found += _places_before_state(text, start, end, ctx)
        elif word in state_codes and (m := _STATE_ZIP_ANY_CASE.match(text, start)) and \
                text[max(0, start - 3):start].rstrip().endswith(","):
            found += _lower_case_place(text, m, ctx)  # "tucson, az 85761"; not "ok 12345"
        elif word in state_codes and text[start:end].islower():
            found += _places_before_state(text, start, end, ctx, lower=True)  # "savannah ga"
        trigger = _ALPHA_TRIGGERS.get(word)
        if trigger is None:
            if word in _misspelt_months() and (m := _MONTH_LIKE_DATE.match(text, start)):
                dates.append(Span(m.start(), m.end(), "DATE", "pattern:date"))  # "Febuary 2"
            continue
        if trigger == "numbered-id":
            if (m := _NUMBERED_ID.match(text, start)) and \
                    sum(map(str.isdigit, v := m.group("value"))) >= 4 and not _YEAR_ALONE.fullmatch(v) \
                    and not _RATIO.fullmatch(v) and not _RANGE.fullmatch(v):
                found.append(Span(m.start("value"), m.end("value"), "ID", "pattern:labelled-id"))
        elif trigger == "id-label" or trigger == "national-number":
            if word in _NATIONAL_NUMBER_WORDS and (m := _NATIONAL_NUMBER.match(text, start)) and \
                    (word not in _CAPITALS_ONLY or text[start:end].isupper()):
                found.append(Span(m.start("value"), m.end("value"), "SSN", "pattern:labelled-id"))
            elif trigger == "id-label" and (m := _LABELLED_ID.match(text, start)):
                label = m.group("label").lower()
                category = ("ACCESSION" if label.startswith("acc") else
                            "SSN" if label.startswith(("ssn", "social")) else "MRN")
                found.append(Span(m.start("value"), m.end("value"), category, "pattern:labelled-id"))
        elif trigger == "month":
            if text[end:end + 1] == "-" and (m := _MONTH_DASH_YEAR.match(text, start)):
                dates.append(Span(m.start(), m.end(), "DATE", "pattern:date"))  # "Aug-23"
            for pattern in _WORD_DATES:
                if m := pattern.match(text, start):
                    dates.append(Span(m.start(), m.end(), "DATE", "pattern:date"))
            # "June fifth", "march the fourth"; "may" in lower case is the verb ("may first try").
            named = text[start].isupper() or word != "may"
            if named and not text[end + 1:end + 2].isdigit() and \
                    (m := _MONTH_DAY_IN_WORDS.match(text, start)):
                dates.append(Span(m.start(), m.end(), "DATE", "pattern:date"))
            # (an ordinal word before it ends in "st", "nd", "rd" or "th" after a letter)
            if named and text[start - 3:start - 1].lower() in _ORDINAL_ENDINGS and \
                    text[start - 4:start - 3].isalpha() and text[start - 1:start] in (" ", "\t") and \
                    (o := _ORDINAL_BEFORE.search(text, max(0, start - 24), start)):
                y = _YEAR_AFTER.match(text, end)  # "twelfth November", "fifth May 2019"
                dates.append(Span(o.start(1), y.end() if y else end, "DATE", "pattern:date"))
            if m := _loose_date(text, start, _LOOSE_MONTH, _LOOSE_MONTH_CUES):  # "in Sept."
                dates.append(Span(m.start(1), m.end(1), "DATE", "pattern:date"))
            if text[max(0, start - 3):start].lower() == "of " and \
                    (o := _ORDINAL_OF.search(text, max(0, start - 40), start)):
                y = _YEAR_AFTER.match(text, end)  # "the twenty-second of May, 2019"
                dates.append(Span(o.start(1), y.end() if y else end, "DATE", "pattern:date"))
        elif trigger == "url" and not url_start <= start < url_end and (m := _URL.match(text, start)):
            # An address runs to the end of its run of characters: "www" or "http" inside the
            # one just found is part of it (matched again from each, a long run would cost its
            # square).
            found.append(Span(m.start(), m.end(), "URL", "pattern:url"))
            url_start, url_end = m.span()
        elif trigger == "age" and (m := _AGE.match(text, start)) and m.group(1):
            found.append(Span(m.start(1), m.end(1), "AGE", "pattern:age"))
        elif trigger == "pager" and (m := _PAGER.match(text, start)):
            found.append(Span(m.start(1), m.end(1), "PAGER", "pattern:pager"))
        elif trigger == "zip" and (m := _LABELLED_ZIP.match(text, start)):
            found.append(Span(m.start(1), m.end(1), "ZIP", "pattern:zip"))  # "ZIP: 02114"
        elif trigger == "po-box" and (m := _PO_BOX.match(text, start)) and \
                (p := _PO_BEFORE.search(text, max(0, start - 10), start)) and \
                (word == "box") == (p.group(1) is None) and (word == "box" or text[start] == "B"):
            found.append(Span(p.start(), m.end(), "ADDRESS", "pattern:address"))  # "PO Box 123"
            found += _town_after_address(text, m.end(), ctx)  # "PO Box 4471, Wanganoa"
        elif trigger == "phone-label":
            if (m := _LABELLED_PHONE.match(text, start)) and \
                    7 <= sum(map(str.isdigit, m.group(1))) <= 13 and not _TIME.match(m.group(1)) \
                    and not _DECIMAL.search(m.group(1)):  # "pH 7.35 7.40 7.38"
                _add_phone(text, m.start(1), m.end(1), "PHONE", found, ctx)
        elif trigger == "rural-route" and (m := _RURAL_ROUTE.match(text, start)):
            found.append(Span(m.start(), m.end(), "ADDRESS", "pattern:address"))  # "RR 2 Box 117"
            found += _town_after_address(text, m.end(), ctx)
        elif trigger == "apartment" and (m := _APARTMENT.match(text, start)):
            found.append(Span(m.start(), m.end(), "ADDRESS", "pattern:address"))  # "Apt 4C"
        elif trigger == "other-id" and (m := _OTHER_ID.match(text, start)) and \
                (sum(map(str.isdigit, v := m.group("value"))) >= 4 or
                 word in _PLATE_WORDS and sum(map(str.isdigit, v)) >= 2 and
                 sum(map(str.isalnum, m.group()[end - start:])) >= 4) and \
                not _YEAR_ALONE.fullmatch(v) and not _RANGE.fullmatch(v) and \
                not _ISO_DATE.match(v) and not _COMPACT_DATE.match(v):  # "exam 2020-12-09 1257"
            found.append(Span(m.start("value"), m.end("value"), "ID", "pattern:labelled-id"))
        elif trigger == "holiday":
            if (m := _HOLIDAY.match(text, start)) and (text[start] == "G" or text[start] not in "gG"):
                dates.append(Span(m.start(), m.end(), "DATE", "pattern:holiday"))
        elif trigger == "age-word":
            if word == "nineties":
                if _IN_THEIR_NINETIES.search(text, max(0, start - 24), start):
                    found.append(Span(start, start + len(word), "AGE", "pattern:age"))
                continue
            if word == "hundred":  # "one hundred": from its first word
                start = text.rfind(" ", 0, max(0, start - 1)) + 1
            if m := _AGE_IN_WORDS.match(text, start):
                found.append(Span(m.start(), m.end(), "AGE", "pattern:age"))
            elif _AGE_VERB_BEFORE.search(text, max(0, start - 24), start) and \
                    (m := _AGE_WORDS_ALONE.match(text, start)):
                found.append(Span(m.start(1), m.end(1), "AGE", "pattern:age"))
        elif trigger == "au-state" and text[start:end].isupper() and \
                (m := _AU_POSTCODE.match(text, start)) and (town := _town_before(text, start, ctx)):
            found.append(Span(*town, "CITY", "pattern:city-state"))  # "Penrith NSW 2750"
            found.append(Span(m.start(1), m.end(1), "ZIP", "pattern:zip"))
        elif trigger == "paged" and (m := _PAGED.match(text, start)):
            found.append(Span(m.start(1), m.end(1), "PAGER", "pattern:pager"))
        elif trigger == "extension" and (m := _PHONE.match(text, start)):
            found.append(Span(m.start(), m.end(), "PHONE", "pattern:phone"))
    for start, _, _ in index.hits(_COMPASS_WORDS):  # a ward: "7 North" (found from its wing)
        if "A" <= text[start] <= "Z" and (f := _WARD_FLOOR.search(text, max(0, start - 3), start)) \
                and (m := _WARD.match(text, f.start())):
            found.append(Span(m.start(), m.end(), "INSTITUTION", "pattern:ward", 0.9))
    for d in dates[:]:
        if text.startswith(("-", " -", " to "), d.end) and text[d.end - 1].isdigit():
            pattern = _RANGE_END_DAY if any(c.isalpha() for c in text[d.start:d.end]) else _RANGE_END
            if m := pattern.match(text, d.end):
                dates.append(Span(m.start(1), m.end(1), "DATE", "pattern:date"))
        if text.startswith("T", d.end) and (m := _ISO_TIME.match(text, d.end)):
            found.append(Span(m.start(1), m.end(1), "TIME", "pattern:time"))  # 2019-05-01T14:22
        elif m := _TIME_AFTER_DATE.match(text, d.end):
            found.append(Span(m.start(1), m.end(1), "TIME", "pattern:time"))
        if m := _TIME_BEFORE_DATE.search(text, max(0, d.start - 12), d.start):
            found.append(Span(m.start(1), m.end(1), "TIME", "pattern:time"))
        if text[d.start - 5:d.start].lower() == " the " and \
                (m := _FROM_THE_DAY.search(text, max(0, d.start - 40), d.start)):
            dates.append(Span(m.start(1), m.end(1), "DATE", "pattern:date"))
    if (at := text.find("@")) >= 0:
        # No address begins before the run of its characters that ends at the first "@".
        start = at
        while start and (text[start - 1].isalnum() or text[start - 1] in "_.+-"):
            start -= 1
        found += _spans(_EMAIL, text, "EMAIL", "pattern:email", pos=start)
        found += _at_signs(text, at)
    if index.hits(_DOT_WORD):  # "jsmith at gmail dot com"
        found += _spans(_EMAIL_SPELT, text, "EMAIL", "pattern:email-spelt")
    for tld in _bare_hosts(text, index):  # "facebook.com/linda.miller.5", "zoom.us/j/98765432101"
        found.append(Span(*tld, "URL", "pattern:url"))
    found += _ipv6(text)
    found += _street_corner(text, index)
    found += _number_in_words(text, index)
    at = text.find("#")
    while at >= 0:
        found += _number_after_hash(text, at)
        at = text.find("#", at + 1)
    for pattern, category in ctx.extra_patterns:
        found += _spans(pattern, text, category, "config:pattern")
    if not ctx.all_times:
        found = [s for s in found if s.category != "TIME" or _dated_time(text, s, dates)]
    return dates + found


# Words before a time that make it the time of a recorded event even without a date near it.
_TIME_LABEL = re.compile(r"\b(?:time|obtained|performed|acquired|exam(?:ination)?|examined|signed|dictated"
                         r"|transcribed|reported|verified|dob|born|d|t)\s*(?:at|on)?\s*[:.-]?\s*$", _I)


# A street corner: "the corner of Main and Elm", "intersection of 5th & Pine St" (the streets'
# names capitalised: "the corner of the bed" is none).
_STREET_NAME = (r"(?:[A-Z][\w'.-]*|\d{1,3}(?i:st|nd|rd|th))"
                r"(?:[ \t]+(?:[A-Z][\w'.-]*|\d{1,3}(?i:st|nd|rd|th))){0,3}")
_CORNER = re.compile(rf"(?i:corner|intersection)s?[ \t]+(?i:of)[ \t]+({_STREET_NAME}[ \t]+(?i:and|&|at|/)"
                     rf"[ \t]+{_STREET_NAME})")
_CORNER_WORDS = frozenset({"corner", "corners", "intersection", "intersections"})


def _street_corner(text: str, index) -> Iterator[Span]:
    for start, _, _ in index.hits(_CORNER_WORDS):
        if m := _CORNER.match(text, start):
            yield Span(m.start(1), m.end(1), "ADDRESS", "pattern:street-corner")


# A number read out digit by digit ("six one seven five five five zero one two two"): seven
# digits or more in words, a phone number where a word of calling stands before it, else an
# identifier ("medical record number is four five two two nine one eight").
_DIGIT_VALUES = {"zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
                 "seven": 7, "eight": 8, "nine": 9}
_DIGIT_WORDS = frozenset(_DIGIT_VALUES)
_DIGIT_WORD_GAP = re.compile(r"[ \t]*[-,]?[ \t]*")
_CALL_BEFORE = re.compile(r"\b(?:call(?:ed)?|phone|cell|mobile|tel(?:ephone)?|reach(?:ed)?|contact|dial"
                          r"|text|page[dr]?|pager|fax)\b", _I)


def _number_in_words(text: str, index) -> Iterator[Span]:
    positions = index.positions(_DIGIT_WORDS)
    if len(positions) < 7:
        return
    words = index.words
    run = [positions[0]]
    for i in [*positions[1:], None]:
        if i is not None and i == run[-1] + 1 and \
                _DIGIT_WORD_GAP.fullmatch(text, words[run[-1]][1], words[i][0]):
            run.append(i)
            continue
        values = [_DIGIT_VALUES[words[k][2]] for k in run]
        # Counting out loud ("one, two, three, …") is no number of anybody's.
        if len(run) >= 7 and any(b != a + 1 for a, b in zip(values, values[1:])):
            start, end = words[run[0]][0], words[run[-1]][1]
            category = "PHONE" if _CALL_BEFORE.search(text, max(0, start - 40), start) else "ID"
            yield Span(start, end, category, "pattern:number-in-words")
        run = [i]


def _dated_time(text: str, span: Span, dates: list[Span]) -> bool:
    """Whether a time of day is an element of a date: a date stands on its line, or a label
    says whose time it is ("Obtained at 10:21"). A time alone ("at 16:00 turned") is not among
    the identifiers HIPAA lists, and nursing notes are full of them."""
    line_start = text.rfind("\n", 0, span.start) + 1
    line_end = text.find("\n", span.end)
    line_end = len(text) if line_end < 0 else line_end
    if any(line_start <= d.start and d.end <= line_end for d in dates):
        return True
    return bool(_TIME_LABEL.search(text, max(line_start, span.start - 30), span.start))


def _numeric_at(text: str, start: int, end: int, word: str, found: list[Span], ctx: Context,
                streets: _StreetWords | None = None) -> None:
    """The patterns that begin with a digit, tried where a number begins (into ``found``)."""
    after = text[end:end + 1]
    if after in (":", ".") or "h" in word:
        m = _TIME.match(text, start)
        if m:
            found.append(Span(m.start(), m.end(), "TIME", "pattern:time"))
        m = _IP.match(text, start) if after == "." else None
        if after == "." and word in ("1", "2") and (u := _UID.match(text, start)):
            found.append(Span(u.start(), u.end(), "ID", "pattern:uid"))
            m = None
        if m:
            found.append(Span(m.start(), m.end(), "IP", "pattern:ip"))
    # three digits, a separator, two digits and the same separator again: checked before
    # the pattern is tried (a separator after three digits is common, the rest is not)
    if len(word) == 3 and after in ("-", ".", " ") and text[end + 3:end + 4] == after:
        m = _SSN.match(text, start)
        if m:
            found.append(Span(m.start(), m.end(), "SSN", "pattern:ssn"))
    n = len(word)
    # A phone number opens with a country code 1, an area code of three digits (perhaps in
    # brackets or after "+"), or a 0 trunk prefix.
    if n == 3 or word == "1" or (n == 4 and word[0] == "1") or (word[0] == "0" and n <= 5):
        at = start - 1 if start and text[start - 1] in "(+" else start
        m = _PHONE.match(text, at)
        if m:
            before = text[max(0, m.start() - 16):m.start()]
            category = "FAX" if _FAX_CONTEXT.search(before) else "PHONE"
            if _PAGER_CONTEXT.search(before):
                category = "PAGER"
            _add_phone(text, m.start(), m.end(), category, found, ctx)
        elif n == 3 and after == "-" and (m := _LOCAL_PHONE.match(text, start)) and \
                not (word.endswith("0") and m.group().endswith("0")):
            _add_phone(text, m.start(), m.end(), "PHONE", found, ctx)
    if n == 1 and after == "-" and (start == 0 or text[start - 1] in " \t@#:(") and \
            (m := _INTERNAL_NUMBER.match(text, start)) and \
            _CALL_BEFORE.search(text, max(0, start - 40), start):
        _add_phone(text, m.start(), m.end(), "PHONE", found, ctx)
    digits = word.rstrip("abcdefghijklmnopqrstuvwxyz")  # "93yo"
    if (len(digits) == 2 and digits[0] == "9") or (len(digits) == 3 and digits[:2] in ("10", "11")):
        m = _AGE.match(text, start)
        if m:
            g = 2 if m.group(2) else 3
            found.append(Span(m.start(g), m.end(g), "AGE", "pattern:age"))
        elif span := _age_by_context(text, start, start + len(digits), word):
            found.append(Span(*span, "AGE", "pattern:age"))
    # The number may be a unit's and a house's: "9/14 Ngaio Street" (the gap is the second's).
    unit = _UNIT_SLASH.match(text, end) if after == "/" else None
    if n <= 5 and (after.isspace() or unit) and \
            (streets is None or streets.ahead(unit.end() if unit else end)):  # "221 Baker Street"
        m = _ADDRESS.match(text, start)
        if m and ctx.reader(text).plausible_place(end, m.end(), _STREET_WORDS):
            found.append(Span(m.start(), m.end(), "ADDRESS", "pattern:address"))
            found += _town_after_address(text, m.end(), ctx)
        elif (m := _ADDRESS_ANY_CASE.match(text, start)) and (
                (z := _STATE_ZIP_AHEAD.match(text, m.end())) and
                z.group(1).lower() in ctx.lexicons.state_codes and
                text[max(0, z.start(1) - 3):z.start(1)].rstrip().endswith(",")
                or _LIVES_AT.search(text, max(0, start - 24), start)):  # "lives at 12 main st"
            found.append(Span(m.start(), m.end(), "ADDRESS", "pattern:address"))
            found += _town_after_address(text, m.end(), ctx)
    if len(word) >= 5 or after == "-":
        _bare_id_at(text, start, found)
    if start and text[start - 1] == "+" and n <= 3 and (m := _INTERNATIONAL_PHONE.match(text, start - 1)) \
            and 9 <= sum(map(str.isdigit, m.group())) <= 15:
        _add_phone(text, m.start(), m.end(), "PHONE", found, ctx)  # "+44 20 7946 0321"


# A number in international form: "+", a country code and groups of digits.
_INTERNATIONAL_PHONE = re.compile(r"\+\d{1,3}(?:[ .-]\(?\d{1,5}\)?){2,5}(?![\d.-]\d|\d)")


# A ZIP code after its label, and a post office box.
_LABELLED_ZIP = re.compile(r"(?:zip|postal|postcode|eircode)(?:[ \t]*code)?(?:[ \t]+(?:is|was))?"
                           r"[ \t]*[:#]?[ \t]*(\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2}"
                           r"|[A-Z]\d[A-Z][ \t]?\d[A-Z]\d|[A-Z]\d{2}[ \t]?[A-Z\d]{4})(?![\w-])", _I)
_DECIMAL = re.compile(r"(?<!\d)\d\.\d")
# A number after the word that says it is one ("Tel: 020 7946 0833", "Ph (02) 9555 1234", "home
# phone 555 0187"): seven to thirteen digits in groups, in any country's layout.
_LABELLED_PHONE = re.compile(
    r"(?:tel(?:ephone)?|ph(?:one)?|fax|mobile|mob|cell|landline|contact|(?:home|work)(?=[ \t]*(?:#|no\.)))"
    r"\.?(?:[ \t]*(?:no\.?|number|#))?"
    r"[ \t]*[:#]?[ \t]*(\+?\(?\d[\d \t().-]{5,20}\d)(?![\d/:.]\d|\d)", _I)
# A post office box, and a private bag as New Zealand's post has them ("Private Bag 3018").
_PO_BOX = re.compile(r"(?:box|bag)[ \t]*#?[ \t]*\d{1,6}\b", _I)
# A rural route's box ("RR 2 Box 117") and an apartment or suite ("Apt 4C", "Suite 210").
_RURAL_ROUTE = re.compile(r"(?:RR|R\.R\.|Rural[ \t]+Route)[ \t]*\d{1,3},?[ \t]+Box[ \t]*#?[ \t]*\d{1,6}\b",
                          _I)
_APARTMENT = re.compile(r"(?:Apt|Apartment|Suite|Ste)\.?[ \t]*#?[ \t]*(?=[A-Z]?\d)[A-Z]?\d{1,5}[A-Z]?\b"
                        r"(?![ \t]*(?:mg|ml|units?|of)\b)")
_PO_BEFORE = re.compile(r"\b(?:p\.?[ \t]?o\.?|(private))[ \t]+\Z", _I)


# A ward named by its floor and wing, the wing capitalised: "7 North", "4 SOUTH" ("2 blocks
# west" is none). Found from the wing, a word of its own; the floor is the number before it.
_WARD = re.compile(r"(?<![\w/.,-])(?:[1-9]|[1-3]\d) (?:North|South|East|West|NORTH|SOUTH|EAST|WEST)"
                   r"(?![\w-])(?! (?:Carolina|Dakota|CAROLINA|DAKOTA)\b)")
_WARD_FLOOR = re.compile(r"(?<![\w/.,-])(?:[1-9]|[1-3]\d) \Z")
_COMPASS_WORDS = frozenset({"north", "south", "east", "west"})


_UNIT_SLASH = re.compile(r"/\d{1,5}[A-Za-z]?(?=\s)")
# What the address patterns do not allow between a number and its street word (they allow
# words, apostrophes, hyphens, a direction's full stop, spaces).
_ADDRESS_BARRIER = re.compile(r"[^\w'.\s-]")


class _StreetWords:
    """Where a text's street words start, to tell whether an address can begin at a number:
    a street word starts after it with nothing between that the address patterns do not
    allow. For each street word the last such character before it is found once, over the
    text since the street word before it, so that the question costs a look-up however far
    the street word stands and however many numbers ask (linear in the text, where a search
    from each number would be quadratic in a long note)."""

    __slots__ = ("text", "starts", "barriers")

    def __init__(self, text: str, starts: list[int]):
        self.text, self.starts = text, starts
        self.barriers: dict[int, int] = {}  # street word (its number) -> last barrier before it

    def ahead(self, end: int) -> bool:
        """Whether an address can begin at the number ending at ``end``."""
        starts = self.starts
        k = bisect_right(starts, end)
        if k == len(starts):
            return False
        last = self.barriers.get(k)
        if last is None:
            last = -1
            # The numbers that ask about this street word end after the one before it.
            for b in _ADDRESS_BARRIER.finditer(self.text, starts[k - 1] if k else 0, starts[k]):
                last = b.start()
            self.barriers[k] = last
        return last < end


# Two numbers of up to four digits joined by a dash are a range ("100-120", "1900-0700"),
# not an identifier; identifiers, phone and social security numbers have other shapes.
_RANGE = re.compile(r"\d{1,4}-\d{1,4}")
# A local number without its area code: three digits, a dash, four digits, unless both are
# round like the ends of a range ("500-1000").
# An identifier has a run of four digits or more; "114-17-49" and "MAP-75-100" are values.
_DIGIT_RUN = re.compile(r"\d{4}")
_LOCAL_PHONE = re.compile(r"(?<![\w-])(?<!\d-)\d{3}-\d{4}(?![\w-])")


def _bare_id_at(text: str, start: int, found: list[Span]) -> None:
    m = _BARE_ID.match(text, start)
    if m and not _RANGE.fullmatch(g := m.group()) and _DIGIT_RUN.search(g):
        digits = sum(map(str.isdigit, g))
        if digits >= 6 or (digits >= 5 and any(map(str.isalpha, g))):
            found.append(Span(m.start(), m.end(), "ID", "pattern:id", 0.8))


def _word_before(text: str, start: int) -> str:
    """The word before ``start``, past spaces and one comma, in lower case."""
    k = start
    while k > 0 and text[k - 1].isspace():
        k -= 1
    if k > 0 and text[k - 1] == ",":
        k -= 1
    end = k
    while k > 0 and (text[k - 1].isalnum() or text[k - 1] in "'.-"):
        k -= 1
    return fold(text[k:end].strip("."))


def _places_before_state(text: str, start: int, end: int, ctx: Context,
                         lower: bool = False) -> Iterator[Span]:
    """A city (and ZIP) around an upper-case state code: "Savannah, GA 31485", "SAVANNAH GA";
    with ``lower``, a lower-case one after a known city ("savannah ga", "tucson az 85761")."""
    m = _ZIP_AFTER_STATE.match(text, start) if not lower else _STATE_ZIP_ANY_CASE.match(text, start)
    zip_code = m.group(2) if m else None
    if zip_code and not lower:
        yield Span(m.start(2), m.end(2), "ZIP", "pattern:zip")
    elif _word_before(text, start) not in ctx.lexicons.city_last_words:
        return  # without a ZIP only a known city makes a place of "chest PA"
    # The words before the state code, on its line: the city is their last one to three.
    c = _CITY_BEFORE_STATE.search(text, max(0, start - _CITY_STATE_REACH), start)
    if c is None:
        return
    # The trailing words that are a known city; without one, a ZIP must vouch for it
    # ("Jones, MD" and "chest, PA" are no places).
    city_words = c.group(1).split()
    city = None
    for k in range(len(city_words)):
        candidate = " ".join(city_words[k:])
        if fold(candidate) in ctx.lexicons.cities:
            city = candidate
            break
    if lower:
        # "savannah ga", "salem or": a known city that is no everyday word, and the code ends
        # its line or field unless a ZIP follows; no credential ("lowell md", "jackson ms").
        if city is None or fold(city) in ctx.lexicons.ambiguous or not zip_code and (
                text[start:end].upper() in _CREDENTIAL_CODES | {"MS"} or
                not _STATE_ENDS_FIELD.match(text, end)):
            return
    elif city is None and not (zip_code and c.group(2)):
        return
    if text[start:end] in _CREDENTIAL_CODES and not zip_code:
        return  # "Lowell, MD" signs a report; "Lowell, MD 21201" is a place
    if city is None:
        city = city_words[-1]
    yield Span(c.end(1) - len(city), c.end(1), "CITY", "pattern:city-state")
    yield Span(start, end, "STATE", "pattern:city-state")
    if zip_code and lower:
        yield Span(m.start(2), m.end(2), "ZIP", "pattern:zip")


# An Australian postcode after its state's abbreviation ("Penrith NSW 2750"), where a town's
# name stands before it: a capitalised word that is a known place or no English word ("NT
# 0800" after "abd soft" is non-tender at eight o'clock).
_AU_POSTCODE = re.compile(r"(?:NSW|VIC|QLD|SA|WA|TAS|NT|ACT)\.?[ \t]+(\d{4})(?![\d-])")
_WORD_BEFORE_STATE = re.compile(r"(?<![\w'-])([A-Z][A-Za-z'-]+),?[ \t]+\Z")


def _town_before(text: str, start: int, ctx: Context) -> tuple[int, int] | None:
    """Where the town before the state's abbreviation at ``start`` stands, if one does."""
    m = _WORD_BEFORE_STATE.search(text, max(0, start - 40), start)
    if m is None:
        return None
    wc = ctx.reader(text).wc
    key = m.group(1).lower()
    return m.span(1) if key in wc.places or key not in wc.dictionary and key not in wc.clinical \
        else None


# The town after a street address and a comma ("55 Kowhai Street, Ōtāhuhu", "31B Jacaranda
# Ave, Greenslopes"): up to three capitalised words, the first no English word (a place of the
# lists may be one: "12 Elm Rd, Salem"), none a clinical or stop word; then perhaps a state's or
# province's letters and the postcode, in the shapes of the US, Canada, the UK, Ireland,
# Australia, New Zealand and India ("Toronto, ON M4K 3R8", "Hamilton 3200", "PR9 3LT").
_TOWN_WORD = r"[^\W\d_](?:[^\W\d_]|['’-])*"
_WORDS_AFTER_COMMA = re.compile(rf",[ \t]*({_TOWN_WORD}(?:[ \t]{_TOWN_WORD}){{0,2}})(?![\w'’-])")
_WORDS_AFTER_IN = re.compile(rf"[ \t]+in[ \t]+({_TOWN_WORD}(?:[ \t]{_TOWN_WORD}){{0,2}})(?![\w'’-])")
_ZIP_AFTER_TOWN_STATE = re.compile(r"[ \t]+(\d{5}(?:-\d{4})?)(?![\w-])")
_POSTCODE_AFTER = re.compile(
    r"(?:,?[ \t]+[A-Z]{2,3})?,?[ \t]+(\d{4,6}(?:-\d{4})?|[A-Z]\d[A-Z][ \t-]?\d[A-Z]\d"
    r"|[A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2}|[A-Z]\d{2}[ \t]?[A-Z\d]{4})(?![\w-])")


def _town_after_address(text: str, end: int, ctx: Context) -> list[Span]:
    """The towns (a suburb, then a town: "Te Rapa Hills, Hamilton 3200", "48 Cobbler Lane in
    Milbrook", "77 Harrow Lane, New Corwin") after the address ending at ``end``, and the state
    and the postcode after them ("ashcombe, nh 03287")."""
    wc = word_classes()
    cased = ctx.reader(text).cased
    states = ctx.lexicons.states
    found: list[Span] = []
    while len(found) < 3 and (m := (_WORDS_AFTER_COMMA.match(text, end) or
                                    (None if found else _WORDS_AFTER_IN.match(text, end)))):
        words = m.group(1).split()
        first = fold(words[0])
        after_first = m.start(1) + len(words[0])
        if found and first in states and (z := _ZIP_AFTER_TOWN_STATE.match(text, after_first)):
            found.append(Span(m.start(1), after_first, "STATE", "pattern:city-state"))
            found.append(Span(z.start(1), z.end(1), "ZIP", "pattern:zip"))  # "…, ashcombe, nh 03287"
            return found
        opened = first in _TOWN_OPENERS and len(words) > 1 and fold(words[1]) not in wc.dictionary
        if (cased and not words[0][:1].isupper()) or first in wc.clinical or first in wc.stop or \
                first in wc.dictionary and first not in wc.places and first not in ctx.lexicons.cities \
                and not opened:
            break
        end = after_first
        for word in words[1:]:
            key = fold(word)
            if (cased and not word[:1].isupper()) or key in wc.clinical or key in wc.stop or \
                    key in states or \
                    not cased and key in wc.dictionary and key not in _TOWN_ENDINGS:
                break
            end = text.index(word, end) + len(word)
        found.append(Span(m.start(1), end, "CITY", "pattern:town-after-address", 0.9))
    if found and (z := _POSTCODE_AFTER.match(text, end)):
        found.append(Span(z.start(1), z.end(1), "ZIP", "pattern:zip"))
    return found


# A place named right after a telephone number, perhaps in brackets: "Tel 04-555-3821
# Wellington", "98201 55437 (Mumbai)", "ph 09 555 8812 (Auckland landline)".
_PLACE_AFTER_NUMBER = re.compile(r"[ \t]*(?:\([ \t]*|[,-][ \t]*)?([A-Z][a-z]+(?:[ \t][A-Z][a-z]+)?)")


def _number_after_hash(text: str, at: int) -> list[Span]:
    """The record's number after a noun and the "#" at ``at``: "Clinic # 4402-118", "JOB#:
    88213" (not a pager's or a telephone's, which their own rules find)."""
    start = _AFTER_HASH.match(text, at).end()
    if (m := _HASH_VALUE.match(text, start)) and sum(map(str.isdigit, v := m.group())) >= 4 and \
            not _YEAR_ALONE.fullmatch(v) and (h := _HASH_LABEL.search(text, max(0, start - 30), start)) and \
            h.group(1).lower() not in _NUMBER_OF_A_PHONE and \
            not _CALL_BEFORE.search(text, max(0, start - 40), start):  # "paged ortho #34567"
        return [Span(m.start(), m.end(), "ID", "pattern:labelled-id")]
    return []


def _add_phone(text: str, start: int, end: int, category: str, found: list[Span], ctx: Context) -> None:
    """A telephone number into ``found``, and the city a lexicon knows, capitalised, right
    after it."""
    found.append(Span(start, end, category, "pattern:phone"))
    if not (m := _PLACE_AFTER_NUMBER.match(text, end)):
        return
    wc = word_classes()
    for candidate in (m.group(1), m.group(1).split()[0]):
        key = fold(candidate)
        if (key in wc.places or key in ctx.lexicons.cities) and key not in wc.dictionary and \
                key not in wc.clinical and key not in wc.given:
            found.append(Span(m.start(1), m.start(1) + len(candidate), "CITY", "pattern:place-after-phone",
                              0.9))
            return


def _lower_case_place(text: str, m: re.Match, ctx: Context) -> Iterator[Span]:
    """A state code in any case with its ZIP after a comma and a city a lexicon knows:
    "tucson, az 85761" (not "…, ok 12345 units")."""
    before = re.search(r"([^\W\d_][\w'.-]*(?:\s[^\W\d_][\w'.-]*){0,2}),?\s*$",
                       text[max(0, m.start() - 40):m.start()])
    if before:
        words_ = before.group(1).split()
        offset = max(0, m.start() - 40) + before.start(1)
        for k in range(len(words_)):
            candidate = " ".join(words_[k:])
            if fold(candidate) in ctx.lexicons.cities or fold(candidate) in \
                    ctx.reader(text).wc.places:
                start = offset + before.group(1).rindex(candidate)
                yield Span(start, start + len(candidate), "CITY", "pattern:city-state")
                yield Span(m.start(1), m.end(1), "STATE", "pattern:city-state")
                yield Span(m.start(2), m.end(2), "ZIP", "pattern:zip")
                return


@dataclass(frozen=True)
class _InstitutionRules:
    tail: re.Pattern  # an institution word, as listed or in capitals
    name_ending_here: re.Pattern  # capitalised words and an institution word, ending at endpos
    first_words: frozenset[str]  # lower-case first words of the institution words
    tail_lower: re.Pattern  # an institution word in lower case
    lower_name_ending_here: re.Pattern  # the same in lower case, for notes written so


@cache
def _institution_rules(words: tuple[str, ...]) -> _InstitutionRules | None:
    """Capitalised words ending in an institution word ("… Medical Center"), built once."""
    if not words:
        return None
    ordered = sorted(words, key=len, reverse=True)
    tail = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in ordered)
    tail_upper = "|".join(re.escape(w.upper()).replace(r"\ ", r"\s+") for w in ordered)
    # Words of one name stand one or two spaces apart, or across one line break; a wider gap
    # separates fields ("Patient: Mr A B    Hospital number: …").
    gap = r"(?:[ \t]{1,2}|[ \t]*\n[ \t]*)"
    tail_lower = "|".join(re.escape(w.lower()).replace(r"\ ", r"\s+") for w in ordered)
    name = (rf"\b(?:(?:St\.?|Saint){gap})?(?:[A-Z][\w'.&-]*{gap}(?:of{gap}(?:the{gap})?)?){{1,5}}(?:{tail})\b"
            rf"|\b(?:(?:ST\.?|SAINT){gap})?(?:[A-Z][A-Z'.&-]+{gap}){{1,5}}(?:{tail_upper})\b")
    # Where capitals mean nothing, in lower case too ("… winterberry assisted living").
    lower = (rf"\b(?:(?:st\.?|saint){gap})?(?:[a-z][\w'.&-]*{gap}(?:of{gap}(?:the{gap})?)?){{1,5}}"
             rf"(?:{tail_lower})\b")
    return _InstitutionRules(
        tail=re.compile(rf"(?:{tail}|{tail_upper})\b"),
        name_ending_here=re.compile(rf"(?:{name})\Z"),
        first_words=first_words(words),
        tail_lower=re.compile(rf"(?:{tail_lower})\b"),
        lower_name_ending_here=re.compile(rf"(?:{lower})\Z"))


# The words of institution names that say what they are, not which one ("Medical Center").
_TAIL_WORDS = frozenset({"hospital", "hosp", "medical", "center", "centre", "clinic", "health",
                         "general", "regional", "memorial", "university", "institute", "care",
                         "infirmary", "healthcare", "system", "st", "saint", "of", "the"})
_INSTITUTION_REACH = 120  # characters before an institution word where its name may start
_ABBR_SUFFIXES = frozenset({"gh", "mc", "uh", "ch", "mh", "rmc", "umc", "hc", "hs"})
_INSTITUTION_ABBR_ENDING_HERE = re.compile(rf"(?:{_INSTITUTION_ABBR.pattern})\Z")
_CAPITALISED_RUN = re.compile(r"[A-Z][\w'.-]*(?:\s+[A-Z][\w'.-]*){0,2}\b")


_PER_LEXICONS: dict[tuple[str, int], tuple[Lexicons, object]] = {}


def _per_lexicons(make):
    """``make(lexicons)``, worked out once for each set of lexicons (kept by identity: lexicons
    are not hashable) instead of once per note."""
    @wraps(make)
    def kept(lexicons: Lexicons):
        key = (make.__name__, id(lexicons))
        made = _PER_LEXICONS.get(key)
        if made is None or made[0] is not lexicons:
            made = _PER_LEXICONS[key] = (lexicons, make(lexicons))
        return made[1]
    return kept


@_per_lexicons
def _place_rules(lexicons: Lexicons) -> tuple[_InstitutionRules | None, frozenset[str]]:
    """The institution rules of ``lexicons`` and the words a place can begin with (a look-up
    per note, not a union of word sets)."""
    rules = _institution_rules(tuple(lexicons.institution_words))
    wanted = lexicons.city_first_words | _ABBR_SUFFIXES | _ROAD_WORDS | _NAMED_PLACE_ENDINGS | \
        (rules.first_words if rules is not None else frozenset())
    return rules, wanted


def detect_places(text: str, ctx: Context) -> Iterator[Span]:
    """Institutions by their tell-tale words, and cities and states from the lexicons."""
    rules, wanted = _place_rules(ctx.lexicons)
    cities, city_starts = ctx.lexicons.cities, ctx.lexicons.city_first_words
    index = ctx.index(text)
    yield from _places_after_in(text, index, ctx)
    yield from _lakes_and_mountains(text, index, ctx)
    yield from _wards_by_number(text, index, ctx)
    for start, end, word in index.hits(wanted):
        if word in _NAMED_PLACE_ENDINGS and "A" <= text[start] <= "Z":
            yield from _named_place_before(text, start, end, word, ctx)
        if word in _ROAD_WORDS:
            if (m := _ROAD.match(text, start)) and (word != "i" or (
                    m.group(1) not in _ISOTOPES and (_ROAD_BEFORE.search(text, max(0, start - 8), start)
                                                     or _ROAD_AFTER.match(text, m.end())))):
                yield Span(m.start(), m.end(), "ADDRESS", "pattern:road")
        if rules is not None and word in rules.first_words:
            tail, name_ending_here = rules.tail.match(text, start), rules.name_ending_here
            cased = ctx.reader(text).cased
            if tail is None and not cased:
                tail, name_ending_here = rules.tail_lower.match(text, start), rules.lower_name_ending_here
            if tail:
                m = name_ending_here.search(text, max(0, start - _INSTITUTION_REACH), tail.end())
                # (Where capitals mean nothing, what reads as a place is the name alone, not the
                # words that say which kind: "winterberry", not "assisted living".)
                if m and (span := _institution_span(m, start, cased)) is not None and \
                        ctx.reader(text).plausible_place(span.start, start, _TAIL_WORDS) and \
                        (cased or _names_something(text, span.start, start)):
                    yield span
        if word in _ABBR_SUFFIXES and text[start:end].isupper():
            m = _INSTITUTION_ABBR_ENDING_HERE.search(text, max(0, start - 60), end)
            if m and ctx.reader(text).plausible_place(m.start(), start, _TAIL_WORDS):
                yield Span(m.start(), m.end(), "INSTITUTION", "pattern:institution-abbr", 0.9)
        elif word in _ABBR_SUFFIXES and text[start:end].islower() and not ctx.reader(text).cased:
            yield from _lower_case_institution_abbr(text, start, end, ctx)
        if word in city_starts and "A" <= text[start] <= "Z":
            m = _CAPITALISED_RUN.match(text, start)
            if not m:
                continue
            words_ = m.group().split()
            for j in range(len(words_), 0, -1):
                phrase = " ".join(words_[:j])
                key = fold(phrase)
                if key in cities and key not in ctx.lexicons.ambiguous:
                    yield Span(start, start + len(phrase), "CITY", "lexicon:city", 0.7)


# A road by its number: "Route 128", "Highway 1", "Interstate 95", and "I-93" where a road is
# meant ("on I-93", "I-93 northbound"; not iodine-123, -125 or -131).
_ROAD = re.compile(r"(?:Route|Rte\.?|Highway|Hwy\.?|Interstate|I)[ \t]?-?[ \t]?(\d{1,3})"
                   r"(?![\w.-]\w|[\w])", _I)
_ROAD_WORDS = frozenset({"route", "rte", "highway", "hwy", "interstate", "i"})
_ISOTOPES = frozenset({"123", "124", "125", "131"})
_ROAD_BEFORE = re.compile(r"\b(?:on|off|onto|via|near|from|along|to|the)[ \t]+\Z", _I)
_ROAD_AFTER = re.compile(r"[ \t]+(?:north|south|east|west)(?:bound)?\b|[ \t]+exit\b", _I)
_IN_WORDS = frozenset({"in", "near", "outside", "suburb", "town", "hometown", "village"})
_COUNTY_WORDS = frozenset({"county", "parish", "borough", "township", "shire"})
# The words that may stand between "in" and a place: "in rural Ashby County".
_PLACE_MODIFIERS = frozenset({"rural", "suburban", "downtown", "upstate", "central", "northern", "southern",
                              "eastern", "western", "greater", "coastal", "remote"})
# A ward named after a person or a place ("Lister Ward", "McKinnon Ward"), and a street named
# without its number after a word that places someone on it ("on Oxley Street", "outside a
# café on Queen St E"): the name a surname, a place or a word no dictionary holds.
_NAMED_PLACE_ENDINGS = frozenset({"ward", "street", "avenue", "ave", "road", "rd", "boulevard",
                                  "blvd", "lane", "drive", "parkway", "terrace", "st"})
_NAME_BEFORE_ENDING = re.compile(r"(?<![\w'’-])((?:[A-Z][\w'’-]+[ \t]){1,2})\Z")
_ON_BEFORE = re.compile(r"\b(?:on|at|off|along|near|down|up|from|to|of|onto|corner[ \t]+of)[ \t]+\Z", _I)
_DIRECTION_AFTER = re.compile(r"[ \t]+(?:[NSEW]|N[EW]|S[EW])\b(?!\.\w)")


def _named_place_before(text: str, start: int, end: int, word: str, ctx: Context) -> Iterator[Span]:
    m = _NAME_BEFORE_ENDING.search(text, max(0, start - 40), start)
    if m is None:
        return
    names = m.group(1).split()
    wc = word_classes()
    keys = [fold(n) for n in names]
    if not all((k not in wc.dictionary or k in wc.surnames or k in wc.places) and k not in wc.clinical
               and k not in _STOP and k not in wc.stop for k in keys):
        return
    if word == "ward":
        yield Span(m.start(1), end, "INSTITUTION", "pattern:named-ward", 0.9)
        return
    if word == "st" and text[end:end + 1] == "." and text[end + 1:end + 3].strip()[:1].isupper():
        return  # "St. Mary's": a saint, before a name
    if _ON_BEFORE.search(text, max(0, m.start(1) - 14), m.start(1)):
        stop = end + (1 if text[end:end + 1] == "." and word in ("st", "ave", "rd", "blvd") else 0)
        if d := _DIRECTION_AFTER.match(text, stop):
            stop = d.end()
        yield Span(m.start(1), stop, "ADDRESS", "pattern:street", 0.9)


# A lake's or a mountain's name ("boating on Lake Winnipesaukee", "fell hiking Mt. Monadnock"):
# its name capitalised and no English word (a scale named after one, "Lake Louise score", is
# a protected term and wins).
_LAKE_OR_MOUNT = re.compile(r"(?<![\w/-])(?:Lake|LAKE|Mount|MOUNT|Mt\.?|MT\.)[ \t]+"
                            r"([A-Z][\w'’-]{3,}(?:[ \t][A-Z][\w'’-]+)?)")
_LAKE_WORDS = frozenset({"lake", "mount", "mt"})


# A landmark named by the word before it ("found on the Kingsmere Bridge", "the Pemberton
# Bypass"), where capitals mean something: the name capitalised, not in capitals alone (an
# acronym: "LVAD bridge"), and no English word ("Central Station" stays).
_LANDMARK_WORDS = frozenset({"bridge", "viaduct", "bypass", "flyover", "overpass", "underpass",
                             "tunnel", "station", "pier", "mall"})
_LANDMARK_NAME_BEFORE = re.compile(r"(?<![\w'’-])((?:[A-Z][a-z][\w'’-]*[ \t]){1,2})\Z")


def _lakes_and_mountains(text: str, index: WordIndex, ctx: Context) -> Iterator[Span]:
    """Lakes, mountains and landmarks named as places are ("Lake Winnipesaukee")."""
    wc = word_classes()

    def named(words: list[str]) -> bool:
        return all(fold(w) not in wc.dictionary and fold(w) not in wc.clinical and fold(w) not in wc.stop
                   for w in words)

    for start, _, _ in index.hits(_LAKE_WORDS):
        if (m := _LAKE_OR_MOUNT.match(text, start)) and named(m.group(1).split()):
            yield Span(start, m.end(), "CITY", "lexicon:lake-or-mountain", 0.8)
    landmarks = index.hits(_LANDMARK_WORDS)
    if landmarks and ctx.reader(text).cased:
        for start, end, _ in landmarks:
            if "A" <= text[start] <= "Z" and \
                    (m := _LANDMARK_NAME_BEFORE.search(text, max(0, start - 40), start)) and \
                    named(m.group(1).split()):
                yield Span(m.start(1), end, "CITY", "lexicon:landmark", 0.8)


# Words of living, staying or travelling, on the same line before "in": "lives with son in",
# "stays at her daughter's in", "holidaying in".
_RESIDENCE_BEFORE = re.compile(r"\b(?:liv(?:es|ed|ing|e)|resid(?:es|ed|ing|ent)|stay(?:s|ed|ing)?"
                               r"|holiday(?:s|ed|ing)?|vacation(?:s|ed|ing)?|visit(?:s|ed|ing)|moved|born"
                               r"|raised|grew[ \t]+up|based|sleeps?|settled)"
                               r"\b[^\n.;]{0,30}\Z", _I)


# Where someone lives or stays, before "in" on the same line and in the same clause: "lives in
# a 2nd fl apt in otterburn", "staying at her brother's house in dorrance", "from home in x".
_DWELLING_BEFORE = re.compile(r"\b(?:liv(?:es|ed|ing|e)|resid(?:es|ed|ing|e)|stay(?:s|ed|ing)?|home|house"
                              r"|apt|apartment|condo|trailer|farm|ranch|shelter|moved|visiting|drove"
                              r"|coming|came|daughters?|sons?|sisters?|brothers?|mother|father|aunt|uncle"
                              r"|cousins?|family|relatives)\b[^\n.;]{0,40}\Z", _I)
# Words that begin towns' names ("new corwin", "south ivers", "lake cressy") and end them
# ("wexley heights", "corwin hills").
_TOWN_OPENERS = frozenset({"north", "south", "east", "west", "new", "old", "port", "lake", "mount",
                           "mt", "fort", "little", "lower", "upper", "great", "glen", "san", "santa", "st",
                           "saint"})
_TOWN_ENDINGS = frozenset({"hills", "heights", "falls", "springs", "park", "ridge", "lakes", "village",
                           "junction", "corners", "crossing", "harbor", "harbour", "beach", "bay", "point",
                           "valley", "creek", "grove", "mills", "plains", "rapids", "woods", "hollow",
                           "center", "centre", "city", "town", "landing", "station", "glen", "green", "vale",
                           "dale", "haven", "gardens", "fields", "square"})


# A ward named after a person, with its floor's number, after a word that puts someone there:
# "who is on Pemberton 7", "transfer to floor (Ridley 5)", "call LYDON 10 nurses station".
_WARD_CUE_BEFORE = re.compile(r"(?:\b(?:on|to|from|at|call|@)[ \t]+|\([ \t]*)\Z", _I)


@cache
def _ward_names() -> frozenset[str]:
    """The surnames that wards are named after as the rule below takes them: no English,
    clinical or stop word, four letters or more, not shaped like a drug (a fixed set, so that a
    note's word index finds where they stand at once)."""
    wc = word_classes()
    return frozenset(k for k in wc.surnames if len(k) >= 4 and k.isalpha() and k not in wc.dictionary
                     and k not in wc.clinical and k not in wc.stop and not drug_shape(k))


def _wards_by_number(text: str, index: WordIndex, ctx: Context) -> Iterator[Span]:
    """A surname no dictionary or clinical list holds (drugs are none: "on Lasix 40"), and a
    number of one or two digits with no unit after it, after a word of being or moving there."""
    words = index.words
    last = len(words) - 1
    for i in index.positions(_ward_names()):
        if i >= last:
            break
        begin, name_end, _ = words[i]
        start, end, number = words[i + 1]
        if start != name_end + 1 or text[name_end] != " " or len(number) > 2 or not number.isdigit() or \
                _UNIT_AFTER.match(text, end) or not _WARD_CUE_BEFORE.search(text, max(0, begin - 12), begin):
            continue
        if ctx.reader(text).cased and not text[begin].isupper() or \
                text[begin - 1:begin] == "(" and not text.startswith(")", end):
            continue  # "(Shiley 6 cuffless)" is a tube's size; "(Ridley 5)" a ward
        yield Span(begin, end, "INSTITUTION", "pattern:ward", 0.85)


_UNIT_AFTER = re.compile(r"(?:[.,/:]\d|[ \t]*(?:mg|mcg|g|ml|cc|l|units?|u|iu|%|mmhg|kg|lbs?|hrs?|hours?|min"
                         r"|minutes?|days?|x|times|mcg/kg|mg/hr|ml/hr)\b)", _I)


def _towns_after_in_uncased(text: str, index: WordIndex, positions: list[int],
                            ctx: Context) -> Iterator[Span]:
    """Where capitals mean nothing, a town after "in" where a word of living, staying or a
    home stands before it in the clause: a word no dictionary or clinical list holds, no
    misspelt word and not shaped like a drug or a clinical term, perhaps after a word that
    opens towns' names ("south ivers") and before one that ends them ("wexley heights")."""
    wc, words, states = word_classes(), index.words, ctx.lexicons.states

    def town_word(key: str, opened: bool = False) -> bool:  # (a state alone is no town)
        if len(key) < 4 or not key.isalpha() or key in wc.dictionary or key in wc.clinical or \
                key in states or key in wc.stop:
            return False
        # (after "south", "new": a town's name, whatever English or clinical word it looks like)
        return opened or not (clinical_shape(key) or drug_shape(key) or wc.misspelt(key))

    for i in positions:
        if words[i][2] != "in" or i + 1 >= len(words) or \
                not _DWELLING_BEFORE.search(text, max(0, words[i][0] - 60), words[i][0]):
            continue
        j = i + 1
        if words[j][2] in _TOWN_OPENERS and j + 1 < len(words) and text[words[j][1]:words[j + 1][0]] == " " \
                and town_word(words[j + 1][2], opened=True):
            j += 1
        elif not (text[words[i][1]:words[j][0]] == " " and town_word(words[j][2])):
            continue
        end = words[j][1]
        if j + 1 < len(words) and text[end:words[j + 1][0]] == " " and (
                words[j + 1][2] in _TOWN_ENDINGS or words[j + 1][2] in _COUNTY_WORDS):
            end = words[j + 1][1]
        yield Span(words[i + 1][0], end, "CITY", "lexicon:place-after-in", 0.8)


def _places_after_in(text: str, index: WordIndex, ctx: Context) -> Iterator[Span]:
    """Where capitals mean something, a town after "in", "near" or "outside" ("PCP in
    Needham"), or after a label of one ("Suburb: Bankstown"): a capitalised single-word place of
    four letters or more that no dictionary holds as a word (not "in Bed", "in Lyme disease"
    or "in Addison's")."""
    positions = index.positions(_IN_WORDS)
    if not positions:
        return
    if not ctx.reader(text).cased:
        yield from _towns_after_in_uncased(text, index, positions, ctx)
        return
    wc, words, ambiguous = word_classes(), index.words, ctx.lexicons.ambiguous
    for i in positions:
        if i + 2 < len(words) and words[i + 1][2] in _PLACE_MODIFIERS and words[i][2] == "in" and \
                text[words[i + 1][1]:words[i + 2][0]] == " " and text[words[i + 1][0]].islower():
            i += 1  # "lives in rural Ashby County", "in upstate Harwick"
        if i + 1 >= len(words):
            break
        s, e, key = words[i + 1]
        gap = text[words[i][1]:s]
        if "A" <= text[s] <= "Z" and len(key) >= 4 and not text[s:e].isupper() and \
                (gap == " " or gap in (": ", ":") and words[i][2] not in ("in", "near", "outside")) and \
                (key in wc.places or (words[i][2] in ("near", "outside") or
                                      _RESIDENCE_BEFORE.search(text, max(0, words[i][0] - 40), words[i][0]))
                 and not clinical_shape(key) and not drug_shape(key)) and key not in wc.dictionary and \
                key not in wc.clinical and key not in wc.stop and key not in ambiguous and \
                not text.startswith(("'", "’", "-"), e):
            # (After "near" or "outside", or "in" after a word of living or staying, a
            # capitalised word no dictionary holds is taken for a place even where no list knows
            # it: "near Pukekohe", "holidaying in Kerikeri"; "in" alone leads to drugs and
            # diseases as often.) Capitalised words of no dictionary after it are the rest of
            # its name ("Wagga Wagga").
            j = i + 2
            while j < len(words) and j <= i + 3 and text[words[j - 1][1]:words[j][0]] == " " and \
                    "A" <= text[words[j][0]] <= "Z" and (words[j][2] in _COUNTY_WORDS or
                                                         words[j][2] not in wc.dictionary and
                                                         words[j][2] not in wc.clinical and
                                                         words[j][2] not in wc.stop):
                e = words[j][1]
                j += 1
            yield Span(s, e, "CITY", "lexicon:place-after-in", 0.8)  # a guess: yields to terms


_WORD_ENDING_HERE = re.compile(r"(?<![\w'’-])([^\W\d_][\w'’-]*)[ \t]{1,2}\Z")
_SAINT_ENDING_HERE = re.compile(r"\b(?:st\.?|saint)[ \t]{1,2}\Z", _I)


def _lower_case_institution_abbr(text: str, start: int, end: int, ctx: Context) -> Iterator[Span]:
    """A hospital's abbreviation in a note written all in lower case: "northfield uh",
    "riverside gh", "st. aldric mc". The words before it must name a place (a place, a
    surname or a word no dictionary knows), not say what it is ("the uh", "at bedtime hs")."""
    reader = ctx.reader(text)
    wc = reader.wc
    if text[start:end] in wc.clinical or text[start:end] in wc.stop or text.startswith(("/", "-"), end):
        return
    k, begin, known = start, None, False
    for _ in range(3):
        w = _WORD_ENDING_HERE.search(text, max(0, k - 40), k)
        if w is None:
            break
        key = w.group(1).lower()
        if key in wc.stop or key in wc.clinical or key in _STOP or key in _TAIL_WORDS or \
                len(key) < 3 or not (key in wc.places or key in wc.surnames or key not in wc.dictionary):
            break
        known = known or key in wc.places or key not in wc.dictionary
        k = begin = w.start(1)
    if begin is None or not known:
        return
    saint = _SAINT_ENDING_HERE.search(text, max(0, begin - 8), begin)
    yield Span(saint.start() if saint else begin, end, "INSTITUTION", "pattern:institution-abbr", 0.9)


def _names_something(text: str, start: int, end: int) -> bool:
    """Whether a word of ``text[start:end]`` is no English, clinical or stop word: where capitals
    mean nothing, what makes "winterberry assisted living" a name and "poor health" none."""
    wc = word_classes()
    return any(w not in wc.dictionary and w not in wc.clinical and w not in wc.stop and len(w) > 2
               for w in (m.group().lower() for m in _TOKEN_OF_NAME.finditer(text, start, end)))


_TOKEN_OF_NAME = re.compile(r"[^\W\d_]+")


def _institution_span(m: re.Match, tail_start: int, cased: bool = True) -> Span | None:
    start = m.start()
    # A name does not go on over a full stop that ends a sentence ("… PNA.\nHospital course",
    # "the Local Hospital. From Riverside …"), only over one that ends a short word ("St.").
    for stop in _SENTENCE_STOP.finditer(m.string, start, tail_start):
        start = stop.end()
    # A sentence's first word ("The", "At") and a word that says which kind ("Home VNA", "Local
    # Hospital") are no part of the name.
    if not cased:
        # Where capitals mean nothing the name begins after the last little word before it
        # ("CAN RETURN TO WINTERBERRY ASSISTED LIVING").
        for little in _LITTLE_WORD.finditer(m.string, start, tail_start):
            start = little.end()
    while start < tail_start and (w := _FIRST_NAME_WORD.match(m.string, start, tail_start)) and \
            w.group(1).lower() in _NOT_OF_THE_NAME:
        start = w.end()
    # (Nothing left before the institution's word: no name.)
    return Span(start, m.end(), "INSTITUTION", "lexicon:institution") if start < tail_start else None


_FIRST_NAME_WORD = re.compile(r"\s*([\w'.&-]+)\s*")
_SENTENCE_STOP = re.compile(r"[\w'&-]{3,}\.\s+")
_LITTLE_WORD = re.compile(r"\b(?:to|from|at|in|on|by|for|with|w|is|was|can|will|pt|the|a|an|her|his|their|our"
                          r"|and|or|per|via|into|@)\b[ \t]+", _I)
_NOT_OF_THE_NAME = frozenset({"the", "at", "from", "to", "in", "of", "and", "seen", "home", "local",
                              "outside", "community", "private", "public", "nearby", "area", "new",
                              "old", "previous", "prior", "current", "same", "another", "other"})


# Between the words of a name: a space, a comma (LAST, FIRST) or DICOM's caret (LAST^FIRST^M).
_NAME_GAP = re.compile(r"(,\s|\s|\^)(?=[^\W\d_])")
# Quotes that may close a name before its credential ("“elena marshall” md"), or nothing.
_NAME_SPLIT = re.compile(r"[\s,^]+")  # the words of a name found
_CLOSE_QUOTES = frozenset({"", *OPEN_QUOTES})
# A lower-case initial before a name word ("ref: m lopez"); after the one-letter words of
# notes ("a", "i", "x ray") only before a name that is no everyday word.
_INITIAL_THEN_WORD = re.compile(r"[ \t]{1,2}([^\W\d_][\w'’-]*[^\W\d_])")
_ONE_LETTER_WORDS = frozenset("aix")


def _initial_before_name(text: str, end: int, letter: str, ctx: Context) -> bool:
    """Whether the lower-case initial ending at ``end`` stands before a name word."""
    n = _INITIAL_THEN_WORD.match(text, end)
    if n is None:
        return False
    word = n.group(1)
    key = fold(word)
    if key in _STOP or not _census_name(word, ctx):
        return False
    return letter not in _ONE_LETTER_WORDS or word_classes().commonness(key) >= 3


def _name_run(text: str, pos: int, ctx: Context, lowercase_ok: bool) -> tuple[int, int] | None:
    """The name starting at ``pos``: up to four name tokens, ``LAST, FIRST M`` included
    (``LAST^FIRST^M`` too, and particles: "Peter van der Berg"). A name in quotes begins
    after the opening quote and ends at the closing one."""
    pos = skip_open_quote(text, pos)
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
        if count and text[end:end + 1] == "^":
            # A part of a DICOM name ("YAMADA^TAMSIN^M"), whatever its case or its words.
            end = m.end() if not m.group().endswith(".") or is_initial else m.end() - 1
            count += 1
            i = end + 1
            if text[end:end + 1] != "^" or not text[end + 1:end + 2].isalpha():
                break
            continue
        if key in PARTICLES and count and text[m.end():m.end() + 1] == " " and \
                _NAME_TOKEN.match(text, m.end() + 1):
            i = m.end() + 1  # "van der": part of the name when a name word follows
            continue
        if key in _STOP and not (is_initial and count == 0 and (
                capitalised or lowercase_ok and not m.group().endswith(".") and
                _initial_before_name(text, m.end(), key, ctx))):
            break
        if not capitalised and not lowercase_ok:
            break
        if not capitalised and not (_census_name(token, ctx) or count == 0 or is_initial or
                                    (count == 1 and text[end:end + 1] == "," and
                                     _given_name(token))):  # "lindqvist, maria"
            break
        if first_token is None:
            first_token = token
        end = m.end() if not m.group().endswith(".") or is_initial else m.end() - 1
        count += 1
        nxt = _NAME_GAP.match(text, end, end + 3)
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


_TITLE_WORDS = {"dr", "doctor", "drs", "mr", "mrs", "ms", "miss", "mx", "prof", "professor", "nurse",
                "rn", "np", "pa", "sister", "rev", "reverend",
                # Spanish forms of address ("Sr" is sinus rhythm), ranks of the police and the
                # forces, the clergy, ...
                "sra", "srta", "sgt", "capt", "officer", "rabbi", "pastor", "chaplain", "fr", "pandit",
                "imam", "judge", "coach", "mister"}
_LABEL_WORDS = {"patient", "pt", "name", "signed", "electronically", "dictated", "reported", "read",
                "interpreted", "verified", "transcribed", "approved", "attending", "referring",
                "requesting", "ref", "referred", "ordered", "tech", "technologist", "technician",
                "radiographer", "radiologist", "resident", "fellow", "provisional", "typed",
                "transcriptionist", "scribe", "discussed", "d", "communicated", "called", "notified",
                "paged", "cc", "informed", "spoke", "conveyed", "per", "from", "copies",
                "copy", "distribution", "prepared", "written", "completed", "entered", "authored",
                "reviewed", "checked", "witnessed", "countersigned", "cosigned", "co", "thanks",
                "thank", "regards", "best", "thx", "dict"}
_CREDENTIAL_WORDS = {"md", "m", "do", "d", "phd", "ph", "rn", "np", "pa", "rt", "frcr", "mbbs", "frcp"}
_FIRST_LAST = re.compile(r"\b([^\W\d_][\w'’-]*)(\s+[A-Z]\.?)?\s+([A-Z][\w'’-]+)\b")
_INITIAL_LAST = re.compile(r"\b([A-Z])\.?\s+([A-Z][\w'’-]+)\b")


_SOFT_TITLES = frozenset({"sra", "srta"})
_ROLE_WORDS = frozenset(_TITLE_WORDS | _LABEL_WORDS | {"staff", "registrar", "consultant",
                                                       "surgeon", "physician", "house"})
_RANK_TITLES = {"dr", "doctor", "drs", "mr", "mrs", "ms", "miss", "mx", "prof", "professor"}
_TITLE_CUE, _LABEL_CUE, _CREDENTIAL_CUE = 1, 2, 4
_NAME_CUES: dict[str, int] = {}
for _cue, _words in ((_TITLE_CUE, _TITLE_WORDS), (_LABEL_CUE, _LABEL_WORDS),
                     (_CREDENTIAL_CUE, _CREDENTIAL_WORDS)):
    for _w in _words:
        _NAME_CUES[_w] = _NAME_CUES.get(_w, 0) | _cue
_NAME_CUE_WORDS = frozenset(_NAME_CUES)


def detect_names(text: str, ctx: Context) -> list[Span]:
    """Names by context (titles, labels, credentials) and by the name lexicons."""
    lex = ctx.lexicons
    index = ctx.index(text)
    found: list[Span] = []
    for start, _end, word in index.hits(_NAME_CUE_WORDS):
        cues = _NAME_CUES[word]
        if cues & _TITLE_CUE and (m := _TITLE.match(text, start)):
            run = _name_run(text, m.end(), ctx, lowercase_ok=True)
            # "MS changes" is mental status, "Ms Changes" a person.
            # Titles of rank take any word for a name; "Nurse", "Sister", "RN" a name-like one.
            strength = WEAK if m.group().strip(" .").isupper() and word in ("ms", "pa") else \
                TITLE if word in _RANK_TITLES else STRONG
            # "Sra. Enfermera": after a form of address, a role is no name.
            if run and word in _SOFT_TITLES and \
                    text[run[0]:run[1]].split()[0].strip(".,").lower() in _ROLE_WORDS:
                run = None
            end_ = ctx.reader(text).name_end(run[0], run[1], strength) if run else None
            if end_ is not None:
                found.append(Span(run[0], end_, "NAME", "context:title"))
        if cues & _LABEL_CUE and (m := _LABELS.match(text, start)):
            found += _name_after_label(text, m, ctx)
        if cues & _CREDENTIAL_CUE and (m := _CREDENTIAL.match(text, start)):
            found += _name_before_credential(text, m, ctx)
    if "/" in text:
        wc = ctx.reader(text).wc
        for m in _dictation_initials(text):
            # "PA/lat" names two views, not a radiologist and a typist; "POC/pt" is a plan of
            # care for the patient. On a line of its own a typist's initials may spell a
            # little word or an abbreviation ("PC/as").
            second = m.group().lower().split("/")[1]
            if second not in _VIEW_WORDS and (second not in wc.clinical and second not in wc.stop
                                              or _alone_on_line(text, m.start(), m.end())):
                found.append(Span(m.start(), m.end(), "NAME", "pattern:dictation-initials", 0.8))
        if not ctx.reader(text).cased:
            # A note all in capitals or all in lower case ("IA/OD", "ia/od"): initials on a
            # line of their own, neither pair a view, a word of notes or an everyday word.
            # One of them may be an abbreviation or a little word ("BG/JP", "AT/WR"), not
            # both ("GI/GU", "AND/OR").
            for m in _DICTATION_LINE.finditer(text):
                pair = (m.group(1).lower(), m.group(2).lower())
                if not any(p in _VIEW_WORDS or p in _CREDENTIAL_WORDS for p in pair) and \
                        any(p not in wc.clinical and p not in wc.stop and wc.commonness(p) >= 3
                            for p in pair):
                    found.append(Span(m.start(1), m.end(2), "NAME", "pattern:dictation-initials", 0.8))
    for start, _, _ in index.hits(SINGLE_LETTERS):
        if "A" <= text[start] <= "Z" and (m := _INITIAL_LAST.match(text, start)):
            if fold(m.group(2)) in lex.last_names and fold(m.group(2)) not in lex.ambiguous:
                found.append(Span(m.start(), m.end(), "NAME", "lexicon:initial-last", 0.8))
    # Lexicon: a known first name followed by a capitalised word, or a known surname after an
    # initial; ambiguous words (Hope, Bill, Hall) need one of the context rules above.
    for start, _, _ in [*index.hits(lex.first_name_set), *index.hits(lex.first_name_heads)]:
        if m := _FIRST_LAST.match(text, start):
            reader = ctx.reader(text)
            # Where capitals mean nothing ("PER HO"), both words must be names of their own.
            if _first_last(m, lex) and (reader.cased or reader.plausible_name(m.start(1), m.end(3), STRONG)):
                found.append(Span(m.start(1), m.end(3), "NAME", "lexicon:first-last", 0.8))
    if "," in text:
        found += _last_first_lines(text, ctx)
    # Where capitals mean something, a given name of the census the package's list lacks
    # ("Maria Garcia"), before a surname that is no English word.
    census_given = _census_given_only(lex)
    if census_given and ctx.reader(text).cased:
        wc = word_classes()
        for start, _, _ in index.hits(census_given):
            if (m := _FIRST_LAST.match(text, start)) and _census_first_last(m, lex, wc):
                found.append(Span(m.start(1), m.end(3), "NAME", "lexicon:census-first-last", 0.8))
        found += _names_by_family_words(text, index, ctx)
    return found


# A line that opens with a patient's name in "LAST, First" order, then what a list of patients
# writes after it: "SMITH, JOHN 64M", "Garcia, Maria 45F", "Smith, John (MRN on file)",
# "Adams, J.", a name alone on its line.
_LAST_FIRST_LINE = re.compile(
    r"^[ \t]*([A-Z][A-Za-z'’-]+),[ \t]*([A-Z][A-Za-z'’-]*)\.?(?:[ \t]+([A-Z])\.?)?"
    r"(?=[ \t]*(?:\d{1,3}[ \t]?(?:[MF]|y/?o|yo|yrs?)\b|\(|\Z|\n|[ \t]{2,}|,|[ \t]+(?:DOB|MRN|Age|Sex)\b))",
    re.MULTILINE)


def _last_first_lines(text: str, ctx: Context) -> list[Span]:
    lex, wc, found = ctx.lexicons, word_classes(), []
    comma = text.find(",")
    while comma > 0:
        line_start = text.rfind("\n", 0, comma) + 1
        m = _LAST_FIRST_LINE.match(text, line_start) if comma - line_start <= 40 and \
            " " not in text[line_start:comma].strip() else None
        line_end = text.find("\n", comma)  # one try a line: the next line's first comma
        comma = text.find(",", line_end) if line_end >= 0 else -1
        if m is None:
            continue
        last, first = fold(m.group(1)), fold(m.group(2))
        if not (last in wc.surnames or last in lex.last_names) or last in wc.clinical or \
                last in wc.stop or last in _STOP or last in _RELATION_WORDS or last in _ROLE_WORDS:
            continue
        if len(first) == 1:
            ok = m.group(2).isupper()  # "Adams, J."
        else:
            ok = (first in lex.first_names or first in wc.given) and first not in wc.clinical and \
                first not in wc.stop and first not in _STOP and first not in _NOT_GIVEN
        if ok:
            found.append(Span(m.start(1), m.end(3) if m.group(3) else m.end(2), "NAME",
                              "context:last-first-line", 0.9))
    return found


# Where capitals mean something, a surname told by the words about it: "Taylor's son", "the
# Smiths", "the Smith family", "Baby Girl Jones", "prefers to be called Bob", "Perez at
# bedside".
_POSSESSIVE_BEFORE = re.compile(r"(?<![\w'’-])([A-Z][a-z]+(?:-[A-Z][a-z]+)?)['’]s[ \t]+\Z")
_SURNAME_BEFORE = re.compile(r"(?<![\w'’-])([A-Z][a-z]+(?:-[A-Z][a-z]+)?)[ \t]+\Z")
_BABY = re.compile(r"Baby[ \t]+(?:Boy|Girl)[ \t]+([A-Z][\w'’-]+)")
_CALLED = re.compile(r"(?:prefers[ \t]+to[ \t]+be[ \t]+called|goes[ \t]+by|known[ \t]+as|nicknamed"
                     r"|aka)[ \t]+[\"“'‘]?([A-Z][a-z'’-]+)", _I)
_FAMILY_TRIGGERS = frozenset({"family", "baby", "prefers", "goes", "known", "nicknamed", "aka"})
_AT_BEDSIDE_BEFORE = re.compile(r"(?<![\w'’-])([A-Z][a-z]+(?:-[A-Z][a-z]+)?)[ \t]+(?:at|to)[ \t]+"
                                r"(?:the[ \t]+)?\Z", _I)
# (Fixed sets, made once: an index keeps where the words of each set it is asked for stand.)
_THE_PLURAL = re.compile(r"the ([A-Z][a-z]{3,}s)\b")
_KIN = _RELATION_WORDS - {"friend", "friends", "proxy", "hcp", "law", "in-law", "wife's",
                          "husband's", "guardian", "partner"}
_FAMILY_WORDS = _KIN | _FAMILY_TRIGGERS | {"bedside"}


def _surname_word(word: str, lex: Lexicons, wc) -> bool:
    """A capitalised word that is a surname (census or list) and no English or clinical word."""
    key = fold(word)
    return all((k in wc.surnames or k in lex.last_names or k in wc.given) and k not in wc.dictionary
               and k not in wc.clinical and k not in wc.stop and k not in lex.ambiguous
               for k in key.split("-"))


def _names_by_family_words(text: str, index: WordIndex, ctx: Context) -> list[Span]:
    lex, wc, found = ctx.lexicons, word_classes(), []
    for start, _, word in index.hits(_FAMILY_WORDS):
        m = None
        if word in _KIN:  # "Taylor's son"
            if (m := _POSSESSIVE_BEFORE.search(text, max(0, start - 30), start)) and \
                    not _surname_word(m.group(1), lex, wc):
                m = None
        elif word == "bedside":  # "Perez at bedside"
            if (m := _AT_BEDSIDE_BEFORE.search(text, max(0, start - 40), start)) and \
                    not _surname_word(m.group(1), lex, wc):
                m = None
        elif word == "family":  # "the Smith family"
            if (b := _SURNAME_BEFORE.search(text, max(0, start - 30), start)) and \
                    _surname_word(b.group(1), lex, wc):
                found.append(Span(b.start(1), b.end(1), "NAME", "context:kin", 0.9))
        elif word == "baby":
            m = _BABY.match(text, start)
        else:
            m = _CALLED.match(text, start)
            if m and fold(m.group(1)) in wc.dictionary and fold(m.group(1)) not in wc.given:
                m = None  # "known as Mass"
        if m:
            found.append(Span(m.start(1), m.end(1), "NAME", "context:kin", 0.9))
    for m in _THE_PLURAL.finditer(text):  # "the Smiths", "the Joneses"
        s, e = m.span(1)
        key = fold(m.group(1))
        if (m.start() == 0 or not text[m.start() - 1].isalnum()) and key not in wc.dictionary and \
                key[:-1] not in lex.states and (_surname_word(text[s:e - 1], lex, wc) or
                                                key.endswith("es") and _surname_word(text[s:e - 2], lex, wc)):
            found.append(Span(s, e, "NAME", "context:kin", 0.9))
    return found


# Relations, roles and titles the census also lists as given names ("Son", "Major").
_NOT_GIVEN = _RELATION_WORDS | _ROLE_WORDS | _TITLE_WORDS | _CREDENTIAL_WORDS | {
    "major", "private", "general", "colonel", "sergeant", "baby", "boy", "girl", "infant"}


@_per_lexicons
def _census_given_only(lex: Lexicons) -> frozenset[str]:
    """The census's given names that ``lex``'s own list lacks and that are no stop, clinical
    or ambiguous word."""
    wc = word_classes()
    return frozenset(w for w in wc.given if w.isalpha() and len(w) >= 3 and
                     w not in lex.first_names and w not in lex.ambiguous and
                     w not in wc.stop and w not in wc.clinical and w not in _STOP and
                     w not in _NOT_GIVEN)


def _census_first_last(m: re.Match, lex: Lexicons, wc) -> bool:
    """A census given name then a surname, both capitalised (not in capitals alone); the
    surname a census or list surname that no dictionary holds as a word."""
    first, last = m.group(1), m.group(3)
    if "\n" in m.group():
        return False
    if not (first[:1].isupper() and not first.isupper() and last[:1].isupper() and not last.isupper()):
        return False
    lk = fold(last)
    return (lk in wc.surnames or lk in lex.last_names) and lk not in wc.dictionary and \
        lk not in wc.clinical and lk not in lex.ambiguous and lk not in _STOP and lk not in wc.stop


def _alone_on_line(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` stands on a line of its own (spaces aside)."""
    line_start = text.rfind("\n", 0, start) + 1
    return not text[line_start:start].strip() and not text[end:_line_end(text, end)].strip()


def _first_last(m: re.Match, lex: Lexicons) -> bool:
    first, last = m.group(1), m.group(3)
    if not first[:1].isupper():
        return False
    fk, lk = fold(first), fold(last)
    # An ambiguous first name ("Will", "Mark") counts before a surname that is no word.
    sure_last = lk in lex.last_names and lk not in lex.ambiguous and last[:1].isupper()
    if lk in lex.ambiguous and lk not in lex.last_names:
        return False
    return fk in lex.first_names and (fk not in lex.ambiguous or sure_last) and lk not in _STOP and (
        lk in lex.last_names or last[:1].isupper() and not last.isupper()
        or last.isupper() and first.isupper())


_FIRST_WORD = re.compile(r"[^\W\d_][\w'’-]*")


def _census_name(token: str, ctx: Context) -> bool:
    """Whether ``token`` is a given name or surname (the package's lists or the census's) and
    no everyday, clinical or stop word: what lets a lower-case word continue a name ("jane
    kaplan", not "alert and oriented")."""
    if ctx.lexicons.is_name_word(token):
        return True
    if "-" in token.strip("-"):  # "nakagawa-reid": each part a name
        return all(_census_name(part, ctx) for part in token.split("-") if part)
    key = fold(token)
    wc = word_classes()
    return (key in wc.given or key in wc.surnames) and wc.commonness(key) >= 2 \
        and key not in wc.clinical and key not in wc.stop


def _given_name(token: str) -> bool:
    return fold(token) in word_classes().given


def _name_after_label(text: str, m: re.Match, ctx: Context) -> Iterator[Span]:
    # A quote may open the field's name ("Patient: “BRENNAN, Anna”", "ref: 'Dr. X'").
    start = skip_open_quote(text, m.end())
    given_and_surname = False
    t = _TITLE.match(text, start)
    if t:
        start = skip_open_quote(text, t.end())
    elif ":" not in m.group() and m.group().strip(" .").lower() in ("pt", "patient"):
        # "PT REMAINS SEDATED": checked on the first word before the whole rule runs (this
        # is the commonest word of nursing notes).
        first = _FIRST_WORD.match(text, start)
        if first is None:
            return
        if not ctx.reader(text).person_word(first.group(), WEAK):
            # "Patient Joy Abernathy-Lutz": a given name that is also a word, and a surname.
            if not ctx.reader(text).given_and_surname(first):
                return
            given_and_surname = True
    lowercase_ok = m.group()[:1].islower() or text[start:start + 1].islower()
    run = _name_run(text, start, ctx, lowercase_ok=lowercase_ok)
    if not run:
        return
    s, e = run
    tokens = _NAME_SPLIT.split(text[s:e].strip())
    label = " ".join(m.group().strip().strip(" :.,").lower().split())
    loose = label in ("per", "from", "name", "ref", "cc", "notified")
    if label in _TYPIST_LABELS and _lower_initials(tokens):
        yield Span(s, e, "NAME", "context:label")  # "typed by: rp"
        return
    named = any(_census_name(t.rstrip("."), ctx) for t in tokens)
    # After a loose label ("per", "from"), or in lower case ("tech: portable"), a name must
    # look like one.
    if (loose or all(t[:1].islower() for t in tokens)) and not named:
        return
    # Without a colon, "pt" and "patient" begin sentences of clinical notes ("PT REMAINS
    # SEDATED"); what follows them, and any loose label, must read as a name.
    # A field ("Referring physician: BILL HALL") holds a name whatever its words.
    patient = label in ("pt", "patient", "pt name")
    if ":" in m.group():
        strength = RELATION if patient else TITLE  # "PATIENT: SMITH, JOHN"; "PT: ALERT" is none
    else:
        strength = STRONG if given_and_surname else WEAK if loose or patient else STRONG
    e = ctx.reader(text).name_end(s, e, strength)
    if e is not None:
        yield Span(s, e, "NAME", "context:label")
        if label in _LIST_LABELS:
            yield from _names_listed(text, e, ctx)


# Labels of whoever typed a report, signed with initials ("typed by: rp").
_TYPIST_LABELS = frozenset({"typed by", "transcribed by", "transcriptionist", "scribe"})


def _lower_initials(tokens: list[str]) -> bool:
    """Whether ``tokens`` are initials written in lower case: one run of two or three letters
    that is no stop word (an abbreviation or a unit may be: "na", "cm")."""
    if len(tokens) != 1 or not 2 <= len(tokens[0]) <= 3 or not tokens[0].isalpha() or \
            not tokens[0].islower():
        return False
    key = fold(tokens[0])
    wc = word_classes()
    return key not in _STOP and key not in wc.stop


# Labels of a list of people: "cc: Pearson, Patrick; Okafor, Ngozi", "copies to:" and a name
# a line.
_LIST_LABELS = {"cc", "copies to", "copy to", "distribution"}
_LIST_NEXT = re.compile(r"[ \t]*(?:;|\n|\r\n?)[ \t]*(?=[^\W\d_])")


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end < 0 else end


def _names_listed(text: str, pos: int, ctx: Context) -> Iterator[Span]:
    """The names that follow one of a list, each after a semicolon or on a line of its own,
    while they read as names: a given name or surname among their words, and none of them
    an everyday, clinical or stop word ("chest clinic" ends the list)."""
    wc = word_classes()

    def possible(token: str) -> bool:
        key = fold(token)
        return len(key) == 1 or ((wc.commonness(key) >= 2 or key in wc.given)
                                 and key not in wc.clinical and key not in wc.stop)

    while (gap := _LIST_NEXT.match(text, pos)) is not None:
        run = _name_run(text, gap.end(), ctx, lowercase_ok=True)
        if run:
            s, e = run
            tokens = [t.rstrip(".") for t in _NAME_SPLIT.split(text[s:e]) if t]
        if run and all(possible(t) for t in tokens) and any(_census_name(t, ctx) for t in tokens):
            yield Span(s, e, "NAME", "context:list")
            pos = e
            continue
        # An entry that reads as no name ends the list, but within its line ("cc: Dr X;
        # Park; Y"): the entries after it on the line are tried all the same.
        if "\n" in gap.group():
            return
        semicolon = text.find(";", gap.end(), _line_end(text, gap.end()))
        if semicolon < 0:
            return
        pos = semicolon


def _name_before_credential(text: str, m: re.Match, ctx: Context) -> Iterator[Span]:
    """Up to four name tokens before ", MD"."""
    # Where the credential's ", " or spaces begin, as a scan of the whole text would see it.
    cred_start = m.start()
    while cred_start > 0 and text[cred_start - 1].isspace():
        cred_start -= 1
    if cred_start > 0 and text[cred_start - 1] == ",":
        cred_start -= 1
    offset = max(0, cred_start - 60)
    before = text[offset:cred_start]
    picked = []
    quoted = False
    for t in reversed(list(_WORD_BEFORE_CREDENTIAL.finditer(before))):
        if fold(t.group().rstrip(".")) in _STOP or len(picked) == 4:
            break
        # A full stop after a word ends a sentence, not a name ("no hope. RN Hall").
        if t.group().endswith(".") and len(t.group()) > 2:
            break
        gap = before[t.end():(picked[-1].start() if picked else len(before))]
        if not picked and gap.strip(" ,") in _CLOSE_QUOTES:
            quoted = bool(gap.strip(" ,"))  # "“elena marshall” md": the name in quotes
        elif gap.strip(" ,") or "\n" in gap:
            break
        if "\n" in gap:
            break
        picked.append(t)
        if quoted and t.start() and before[t.start() - 1] in OPEN_QUOTES:
            break  # the opening quote begins the name
    lowercase_credential = m.group().strip(" ,").islower()
    if picked and len(picked[0].group().rstrip(".")) >= 2 and (
            picked[0].group()[:1].isupper() or lowercase_credential):
        s, e = offset + picked[-1].start(), offset + picked[0].end()
        # "PLEASE SEE RT NOTE": in notes written in capitals a credential proves little.
        sure = m.group().strip(" ,.").lower().replace(".", "") in _SURE_CREDENTIAL_WORDS
        if ctx.reader(text).plausible_name(s, e, STRONG if sure else WEAK):
            yield Span(s, e, "NAME", "context:credential")


# Credentials that are no words of the chart ("PT", "RT", "DO", "MS" are).
_SURE_CREDENTIAL_WORDS = frozenset({"md", "phd", "rn", "np", "pa-c", "frcr", "mbbs", "frcp"})
_WORD_BEFORE_CREDENTIAL = re.compile(r"[^\W\d_][\w'’.-]*")


def _find_word(text: str, lowered: str, value: str, exact: bool = False) -> list[tuple[int, int]]:
    """Whole-word occurrences of ``value``, any case unless ``exact`` (plain search, no regex)."""
    needle = value if exact else value.lower()
    hay = text if exact else lowered
    if not needle or needle not in hay:
        return []
    if not exact and len(lowered) != len(text):  # lower() changed lengths (rare letters)
        return [m.span() for m in re.finditer(rf"(?<!\w){re.escape(value)}(?!\w)", text, _I)]
    # A name in a script written without spaces (山田太郎) has no word boundary to look for.
    open_start = open_end = False
    if not needle.isascii():
        open_start = UNSPACED_SCRIPT.match(needle[0]) is not None
        open_end = UNSPACED_SCRIPT.match(needle[-1]) is not None
    found = []
    size, length = len(hay), len(needle)
    pos = hay.find(needle)
    while pos >= 0:
        end = pos + length
        # Initials (exact) must not follow a full stop either: "J.S." is not "S." inside it.
        if (open_start or pos == 0 or not hay[pos - 1].isalnum() and not (exact and hay[pos - 1] == ".")) \
                and (open_end or end == size or not hay[end].isalnum()):
            found.append((pos, end))
        pos = hay.find(needle, pos + 1)
    return found


def detect_header_identifiers(text: str, ctx: Context) -> Iterator[Span]:
    """The study's own identifiers, as they may be written in its report."""
    if ctx.header is None:
        return
    lowered = text.lower()
    # A substring search per value (in C) before the whole-word one: cheaper than any index.
    # Values that share a part are looked for only where it stands (a date's ways of being
    # written, where its year does).
    for guard, needles in ctx.header.needles(ctx.lexicons):
        if guard and guard not in lowered:
            continue
        for value, category, source, confidence, exact in needles:
            # A value that is its own guard (a name part, an ID) is known to stand there.
            if value is guard or value in (text if exact else lowered):
                for start, end in _find_word(text, lowered, value, exact):
                    yield Span(start, end, category, source, confidence)
    # A name of the header one letter off in the text (a typing error on either side, or a
    # damaged header): "JANKOWSKY" for JANKOWSKI. Parts of five letters or more only.
    # The word must be no English or clinical word itself ("block" is one letter from Black).
    parts = {part.lower() for parts in ctx.header.names for part in parts
             if len(part) >= 5 and part.isalpha()}
    if parts:
        wc = word_classes()
        # One edit in a word of five letters or more leaves its first two letters or its last
        # two as they were: a set look-up each rules out nearly every word before any edit is
        # counted.
        heads, tails = {p[:2] for p in parts}, {p[-2:] for p in parts}
        index = ctx.index(text)
        dictionary, clinical = wc.dictionary, wc.clinical
        misspelt = {word for word in set(index.lower)
                    if word not in dictionary and word not in clinical and
                    len(word) >= 5 and (word[:2] in heads or word[-2:] in tails) and
                    word not in parts and word.isalpha() and
                    any(abs(len(word) - len(p)) <= 1 and _one_edit(word, p) for p in parts)}
        if misspelt:
            for start, end, _ in index.hits(misspelt):
                yield Span(start, end, "NAME", "header:name-misspelt", 0.9)


def _one_edit(a: str, b: str) -> bool:
    """Whether ``a`` becomes ``b`` by one letter changed, dropped, added, or two swapped."""
    if a == b:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    if len(a) > len(b):
        a, b = b, a
    i = next((k for k in range(len(a)) if a[k] != b[k]), len(a))
    return a[i:] == b[i + 1:]


def _header_needles(header: HeaderIdentifiers, lexicons: Lexicons) -> list[tuple[str, list[tuple]]]:
    """What to look for: groups of (guard, [(value, category, source, confidence,
    case-sensitive), …]); a group's values can stand only where its guard (lower case) does
    ("" for any text). Each value once, however often the header holds it.

    Values that are not case-sensitive are given in lower case.
    """
    # A header names the same people and holds the same values several times over, and the
    # studies of an archive the same staff and sites: each value's needles are worked out
    # once (a value and its source give its guard, so equal pairs are the same needle).
    pairs: list[tuple[str, tuple]] = []
    for parts in dict.fromkeys(map(tuple, header.names)):
        pairs += _name_needles(parts)
    for value in dict.fromkeys(header.ids):
        if len(value) >= 3:
            key = value.lower()
            pairs.append((key, (key, "ID", "header:id", 1.0, False)))
    for value in dict.fromkeys(header.dates):
        pairs += _date_needles(value)
    if header.institutions:
        words = tuple(lexicons.institution_words)
        for value in dict.fromkeys(header.institutions):
            pairs += _institution_needles(value, words)
    groups: dict[str, list[tuple]] = {}
    for guard, needle in dict.fromkeys(pairs):
        group = groups.get(guard)
        if group is None:
            groups[guard] = [needle]
        else:
            group.append(needle)
    return list(groups.items())


def clear_header_caches() -> None:
    """Forget the needles worked out from header values so far (a benchmark's fresh start)."""
    for cached in (_name_needles, _date_needles, _institution_needles):
        cached.cache_clear()


@lru_cache(maxsize=4096)
def _name_needles(parts: tuple[str, ...]) -> tuple[tuple[str, tuple], ...]:
    """One person's (guard, needle) pairs: each name part, and the initials."""
    pairs = []
    for part in parts:
        if len(part) >= 2:
            key = part.lower()
            pairs.append((key, (key, "NAME", "header:name", 1.0, False)))
    # Initials in DICOM order (family, given) and in speaking order (given, family), only as
    # written, in capitals: "js" is no one's initials.
    letters = [p[0].upper() for p in parts if p and not UNSPACED_SCRIPT.match(p)]
    if len(letters) >= 2:
        orders = {"".join(letters), letters[1] + letters[0] + "".join(letters[2:]),
                  letters[1] + letters[0]}
        for initials in sorted(orders):
            for variant in (initials, ".".join(initials) + "."):
                pairs.append(("", (variant, "NAME", "header:initials", 0.7, True)))
    return tuple(pairs)


@lru_cache(maxsize=4096)
def _date_needles(value: str) -> tuple[tuple[str, tuple], ...]:
    """A DICOM date's (guard, needle) pairs: each way of writing it, guarded by its year."""
    return tuple((value[:4], (variant.lower(), "DATE", "header:date", 1.0, False))
                 for variant in date_variants(value))  # each holds the year


@lru_cache(maxsize=1024)
def _institution_needles(value: str, words: tuple[str, ...]) -> tuple[tuple[str, tuple], ...]:
    """An institution's (guard, needle) pairs: its name and its distinctive part."""
    return tuple((key, (key, "INSTITUTION", "header:institution", 1.0, False))
                 for key in (v.lower() for v in institution_variants(value, list(words))))


@cache
def _longest_first(words: tuple[str, ...]) -> tuple[tuple[str, ...], list[tuple[str, int]]]:
    """Institution words as a name ends with them (" " and lower case), all at once and one
    by one longest first, with their length as written."""
    ordered = [(" " + w.lower(), len(w)) for w in sorted(words, key=len, reverse=True)]
    return tuple(ending for ending, _ in ordered), ordered


_SAINT_OPENING = re.compile(r"^(?:St\.?|Saint)\s+", _I)
_EIGHT_DIGITS = re.compile(r"\d{8}")


def institution_variants(name: str, institution_words: list[str]) -> list[str]:
    """An institution's name and its distinctive part ("Mercy Valley Clinic" → "Mercy Valley")."""
    variants = [name]
    core = name
    lowered = core.lower()
    endings, ordered = _longest_first(tuple(institution_words))
    if lowered.endswith(endings):
        for ending, length in ordered:
            if lowered.endswith(ending):
                core = core[: -length - 1].strip(" ,")
                break
    core = _SAINT_OPENING.sub("", core)
    if core != name and len(core) >= 4 and " " in core or (core != name and len(core) >= 6):
        variants.append(core)
    return variants




def date_variants(yyyymmdd: str) -> list[str]:
    """The ways a DICOM date is commonly written in text."""
    if not _EIGHT_DIGITS.fullmatch(yyyymmdd):
        return []
    y, m, d = yyyymmdd[:4], int(yyyymmdd[4:6]), int(yyyymmdd[6:])
    if not (1 <= m <= 12 and 1 <= d <= 31):
        return []
    month = MONTHS[m - 1]
    return [f"{y}-{m:02d}-{d:02d}", f"{m:02d}/{d:02d}/{y}", f"{m}/{d}/{y}", f"{d:02d}.{m:02d}.{y}",
            f"{d}.{m}.{y}", f"{d:02d}/{m:02d}/{y}", f"{d} {month} {y}", f"{month} {d}, {y}",
            f"{d:02d}-{month[:3]}-{y}", yyyymmdd]
