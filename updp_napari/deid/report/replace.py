"""Replacing found spans: tags, masks, or consistent surrogates with shifted dates."""

from __future__ import annotations

import datetime as dt
import re
from functools import cache

from ...core.keys import keyed_int
from ...core.spans import Span
from ...core.times import time_to_hour
from ...core.vocabulary import MONTHS
from .lexicons import read_list

MODES = ("surrogate", "tag", "mask")
_FAKE_INSTITUTIONS = ("Central Hospital", "Valley Medical Center", "Northside Clinic",
                      "Harbor General Hospital", "Lakeside Health Center", "Westbrook Hospital")
_FAKE_STREETS = ("Main Street", "Oak Avenue", "Park Road", "Elm Drive", "River Lane", "Hill Court")
_FAKE_CITIES = ("Springdale", "Fairview", "Riverton", "Greenfield", "Lakewood", "Milford")
_FAKE_STATES = ("ZZ", "QQ")
_MONTHS = MONTHS
_MON = {m[:3].lower(): i for i, m in enumerate(_MONTHS, start=1)}


_NAME_WORD = re.compile(r"[^\W\d_][\w'’-]*\.?")


@cache
def _surrogate_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(read_list("first_names.txt")), tuple(read_list("last_names.txt"))


def _match_case(fake: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return fake.upper()
    if like.islower():
        return fake.lower()
    return fake


class Replacer:
    """Builds replacement text; surrogates are keyed on the workspace key, per patient."""

    def __init__(self, mode: str, key: bytes | None = None, shift_days: int = 0,
                 avoid_names: set[str] = frozenset()):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        if mode == "surrogate" and key is None:
            raise ValueError("surrogate mode needs a key")
        self.mode, self.key, self.shift = mode, key, shift_days
        # Names a fake must not be: everyone the study's header names (staff included).
        self.avoid_names = {n.casefold() for n in avoid_names}
        self._real_names: set[str] = set()

    def apply(self, text: str, spans: list[Span]) -> str:
        # A fake name must never be one of the real names of the same report ("John Smith"
        # must not become "Smith Jones"); only surrogates need them.
        if self.mode == "surrogate":
            self._real_names = self.avoid_names | {
                w.casefold() for span in spans if span.category == "NAME"
                for w in _NAME_WORD.findall(text[span.start:span.end])}
        out, pos = [], 0
        for span in spans:
            out.append(text[pos:span.start])
            out.append(self.replacement(text[span.start:span.end], span.category))
            pos = span.end
        out.append(text[pos:])
        return "".join(out)

    def replacement(self, original: str, category: str) -> str:
        if self.mode == "tag":
            return f"[{category}]"
        if self.mode == "mask":
            return re.sub(r"\S", "*", original)
        return self._surrogate(original, category)

    def _int(self, purpose: str, value: str, modulo: int) -> int:
        assert self.key is not None
        return keyed_int(self.key, purpose, value.casefold(), modulo)

    def _surrogate(self, original: str, category: str) -> str:
        if category == "NAME":
            firsts, lasts = _surrogate_names()
            def token(m: re.Match) -> str:
                word = m.group()
                if len(word.rstrip(".")) == 1:
                    return chr(ord("A") + self._int("initial", word, 26)) + word[1:]
                start = self._int("name", word, len(lasts))
                fake = next(f for k in range(len(lasts))
                            if (f := lasts[(start + k) % len(lasts)]).casefold()
                            not in self._real_names)
                return _match_case(fake, word)
            return _NAME_WORD.sub(token, original)
        if category == "DATE":
            shifted = self._shift_date(original)
            return shifted if shifted is not None else "[DATE]"
        if category == "AGE":
            return "90+"
        if category == "INSTITUTION":
            return _match_case(_FAKE_INSTITUTIONS[self._int("inst", original, 6)], original)
        if category == "ADDRESS":
            return f"{100 + self._int('addr-n', original, 9800)} " + \
                _FAKE_STREETS[self._int("addr", original, len(_FAKE_STREETS))]
        if category == "CITY":
            return _match_case(_FAKE_CITIES[self._int("city", original, len(_FAKE_CITIES))], original)
        if category == "STATE":
            return _FAKE_STATES[self._int("state", original, 2)]
        if category == "EMAIL":
            return f"user{self._int('email', original, 10**6):06d}@example.org"
        if category == "URL":
            return f"https://example.org/{self._int('url', original, 10**8):08d}"
        if category == "TIME":
            return self._time(original)
        # Identifiers and numbers: same shape, keyed characters.
        return self._same_shape(original, category)

    def _time(self, original: str) -> str:
        # The header's rule (``time_to_hour``): kept to the hour, so times keep their order
        # and agree with the header; dates move by whole days, so date and time stay together.
        parsed = parse_time(original)
        if parsed is None:  # no time of day to keep to the hour ("noon", "24:00"): as dates do
            return "[TIME]"
        time, render = parsed
        return render(time_to_hour(time))

    def _same_shape(self, original: str, category: str) -> str:
        out = []
        for i, ch in enumerate(original):
            if ch.isdigit():
                out.append(str(self._int(f"{category}:{i}", original, 10)))
            elif ch.isalpha():
                c = chr(ord("A") + self._int(f"{category}:{i}", original, 26))
                out.append(c if ch.isupper() else c.lower())
            else:
                out.append(ch)
        return "".join(out)

    def _shift_date(self, original: str) -> str | None:
        parsed = parse_date(original)
        if parsed is None:
            return None
        date, render = parsed
        return render(date + dt.timedelta(days=self.shift))


def parse_date(text: str):
    """(date, render) where render writes a date back in the same format; None if unparsed."""
    t = text.strip()
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", t)
    if m:
        return _mk(int(m[1]), int(m[2]), int(m[3]), lambda d: d.strftime("%Y-%m-%d"))
    m = re.fullmatch(r"(\d{4})([/.])(\d{1,2})\2(\d{1,2})", t)  # 2019/11/02, 2019.11.02
    if m:
        sep, wm, wd = m[2], len(m[3]), len(m[4])
        return _mk(int(m[1]), int(m[3]), int(m[4]),
                   lambda x: f"{x.year:04d}{sep}{x.month:0{wm}d}{sep}{x.day:0{wd}d}")
    m = re.fullmatch(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{2}|\d{4})", t)
    if m:
        a, sep, b, y = int(m[1]), m[2], int(m[3]), m[4]
        year = int(y) if len(y) == 4 else 2000 + int(y)
        day_first = sep == "." or a > 12
        mo, d = (b, a) if day_first else (a, b)
        wa, wb, ylen = len(m[1]), len(m[3]), len(y)

        def render(x, day_first=day_first, wa=wa, wb=wb, sep=sep, ylen=ylen):
            first, second = (x.day, x.month) if day_first else (x.month, x.day)
            yy = f"{x.year:04d}" if ylen == 4 else f"{x.year % 100:02d}"
            return f"{first:0{wa}d}{sep}{second:0{wb}d}{sep}{yy}"
        return _mk(year, mo, d, render)
    m = re.fullmatch(r"(\d{1,2})/(\d{1,2})", t)
    if m:
        wa, wb = len(m[1]), len(m[2])
        return _mk(2000, int(m[1]), int(m[2]), lambda x: f"{x.month:0{wa}d}/{x.day:0{wb}d}")
    m = re.fullmatch(r"(\d{1,2})(st|nd|rd|th)?(\s+of)?[\s-]+([A-Za-z]+)\.?(,?[\s-]+(\d{4}))?", t)
    if m and m[4][:3].lower() in _MON:
        return _named(int(m[1]), m[4], m[6], day_first=True, text=t)
    m = re.fullmatch(r"([A-Za-z]+)\.?\s+(\d{1,2})(st|nd|rd|th)?(,?\s+(\d{4}))?", t)
    if m and m[1][:3].lower() in _MON:
        return _named(int(m[2]), m[1], m[5], day_first=False, text=t)
    m = re.fullmatch(r"([A-Za-z]+)\.?(\s+of)?,?\s+(\d{4})", t)
    if m and m[1][:3].lower() in _MON:
        month = _MON[m[1][:3].lower()]
        of = " of" if m[2] else ""
        return _mk(int(m[3]), month, 15, lambda x: f"{_fmt_month(x.month, m[1])}{of} {x.year}")
    return None


# 14:30, 2:30 PM, 9.05am, 14h30, 14:32:10; 0954 and 095410 written without a separator; 3 pm.
_TIME_FORMS = (
    re.compile(r"(?<!\d)(?P<h>\d{1,2})(?P<sep>[:.hH])(?P<m>\d{2})"
               r"(?:(?P<sep2>[:.])(?P<s>\d{2})(?P<f>\.\d{1,6})?)?(?!\d)"),
    re.compile(r"(?<!\d)(?P<h>\d{2})(?P<sep>)(?P<m>\d{2})(?:(?P<sep2>)(?P<s>\d{2}))?(?!\d)"),
    re.compile(r"(?<!\d)(?P<h>\d{1,2})(?=\s*[ap]\.?m\b)", re.I),
)
_MERIDIEM = re.compile(r"\s*([ap])\.?m\b", re.I)


def parse_time(text: str):
    """(time, render) where render writes a time back exactly as ``text`` writes it: the
    same clock (12-hour with its am/pm marker as written, or 24-hour), widths, separators
    and surrounding text; None if no time of day is found."""
    for form in _TIME_FORMS:
        m = form.search(text)
        if m:
            break
    else:
        return None
    parts = m.groupdict()
    minutes, seconds, fraction = parts.get("m"), parts.get("s"), parts.get("f") or ""
    hour = int(parts["h"])
    marker = _MERIDIEM.match(text, m.end())
    twelve = marker is not None and 1 <= hour <= 12  # "0:30 am", "13:34 PM": read as 24-hour
    if twelve:
        hour = hour % 12 + (12 if marker[1].lower() == "p" else 0)
    try:  # a leap second (60) is zeroed anyway
        time = dt.time(hour, int(minutes or 0), min(int(seconds or 0), 59),
                       int(fraction[1:].ljust(6, "0")) if fraction else 0)
    except ValueError:
        return None
    before, after, width = text[:m.start()], text[m.end():], len(parts["h"])

    def render(t: dt.time) -> str:
        out = f"{(t.hour % 12 or 12) if twelve else t.hour:0{width}d}"
        if minutes is not None:
            out += f"{parts['sep']}{t.minute:02d}"
        if seconds is not None:
            out += f"{parts['sep2']}{t.second:02d}"
        if fraction:
            out += "." + f"{t.microsecond:06d}"[:len(fraction) - 1]
        return before + out + after
    return time, render


def _fmt_month(month: int, like: str) -> str:
    name = _MONTHS[month - 1]
    if len(like) <= 4 and like.rstrip(".").lower() != name.lower():
        name = name[:3]
    return _match_case(name, like)


def _named(day: int, month_word: str, year: str | None, day_first: bool, text: str):
    month = _MON[month_word[:3].lower()]
    suffix = re.search(r"\d(st|nd|rd|th)", text)

    def render(x):
        d = f"{x.day}{_ordinal(x.day) if suffix else ''}"
        mw = _fmt_month(x.month, month_word)
        y = f" {x.year}" if year else ""
        if day_first:
            of = " of" if re.search(r"\sof\s", text) else ""
            return f"{d}{of} {mw}{y}"
        return f"{mw} {d}{',' if year and ',' in text else ''}{y}"
    return _mk(int(year) if year else 2000, month, day, render)


def _ordinal(n: int) -> str:
    return "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _mk(year: int, month: int, day: int, render):
    try:
        return dt.date(year, month, day), render
    except ValueError:
        return None
