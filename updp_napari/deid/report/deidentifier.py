"""``ReportDeidentifier``: every detector, the whitelist, and the replacement, in one place."""

from __future__ import annotations

import datetime as dt
import os
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import tomllib

from ...core.errors import InputError, UpdpError
from ...core.keys import date_shift_days
from ...core.spans import Span, join_adjacent, resolve
from .detectors import (
    Context,
    HeaderIdentifiers,
    detect_header_identifiers,
    detect_names,
    detect_patterns,
    detect_places,
)
from .lexicons import Lexicons, PhraseMatcher, Word, cut_words, default_lexicons
from .narrative import detect_narrative, propagate
from .replace import Replacer

Detector = Callable[[str, Context], Iterable[Span]]
RULE_DETECTORS: tuple[Detector, ...] = (detect_patterns, detect_places, detect_names,
                                        detect_narrative, detect_header_identifiers)
# Sources whose hits yield to the whitelist. Structured patterns (dates, numbers) and the
# study's own header values never do: "Hodgkin 03/04/2019" still hides the date.
_YIELDING = ("lexicon:", "pattern:institution", "pattern:dictation", "pattern:holiday", "header:initials",
             "model:")
# Sources a protected term may overrule: the yielding ones, and names found by their context.
_OVERRULED = _YIELDING + ("context:",)


@dataclass
class SiteConfig:
    """A hospital's additions (TOML): staff names, identifier formats, protected terms."""

    staff: list[str] = field(default_factory=list)
    id_patterns: list[tuple[str, str]] = field(default_factory=list)  # (regex, category)
    protected_terms: list[str] = field(default_factory=list)
    institutions: list[str] = field(default_factory=list)
    # Times of day: "dated" (those of a dated or labelled event, the default) or "all".
    times: str = "dated"

    @classmethod
    def load(cls, path: str | os.PathLike) -> SiteConfig:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{path}: site configuration not found") from None
        except OSError as exc:
            raise InputError(f"{path}: site configuration cannot be read "
                             f"({exc.strerror or type(exc).__name__})") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: not valid TOML ({exc})") from None
        for name in ("staff", "protected_terms", "institutions"):
            # A string where a list belongs would be read letter by letter: no name found.
            value = data.get(name, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InputError(f"{path}: {name} must be a list of strings "
                                 f'({name} = ["…", "…"])')
        if not isinstance(data.get("id_formats", []), list):
            raise InputError(f"{path}: id_formats must be a list of tables ([[id_formats]])")
        ids = []
        for i, item in enumerate(data.get("id_formats", [])):
            if not isinstance(item, dict) or "pattern" not in item:
                raise InputError(f"{path}: id_formats[{i}] needs a 'pattern'")
            try:
                re.compile(item["pattern"])
            except re.error as exc:
                raise InputError(f"{path}: id_formats[{i}] is not a valid regular expression "
                                 f"({exc})") from None
            ids.append((item["pattern"], str(item.get("category", "ID")).upper()))
        times = str(data.get("times", "dated"))
        if times not in ("dated", "all"):
            raise InputError(f"{path}: times must be 'dated' or 'all'")
        return cls(staff=[str(s) for s in data.get("staff", [])], id_patterns=ids, times=times,
                   protected_terms=[str(t) for t in data.get("protected_terms", [])],
                   institutions=[str(t) for t in data.get("institutions", [])])


@dataclass
class Redaction:
    text: str  # the redacted report
    spans: list[Span]  # offsets into the original text

    def as_json(self, original: str) -> dict:
        return {"text": self.text, "spans": [
            {"start": s.start, "end": s.end, "category": s.category, "source": s.source,
             "confidence": round(s.confidence, 3), "text": original[s.start:s.end]}
            for s in self.spans]}


class ReportDeidentifier:
    """Find and replace PHI in report text; pathology vocabulary is left byte-identical."""

    def __init__(self, config: SiteConfig | None = None, lexicons: Lexicons | None = None,
                 extra_detectors: Iterable[Detector] = (), use_plugins: bool = True):
        self.lexicons = lexicons or default_lexicons()
        self.config = config or SiteConfig()
        self._staff = PhraseMatcher(self.config.staff)
        self._institutions = PhraseMatcher(self.config.institutions)
        terms = self.lexicons.whitelist + self.config.protected_terms
        # Abbreviations (ED, PA, CT) are protected as written: "ed" in "AA/ed" is no department.
        abbreviations = [t for t in terms if t.isupper() and len(t) <= 5]
        self._whitelist = PhraseMatcher([t for t in terms if t not in abbreviations])
        self._abbreviations = PhraseMatcher(abbreviations, case_sensitive=True)
        self._extra_patterns = [(re.compile(p), c) for p, c in self.config.id_patterns]
        self.detectors: list[Detector] = list(RULE_DETECTORS) + list(extra_detectors)
        if use_plugins:
            self.detectors += _plugin_detectors()

    def protected(self, text: str, words: list[Word] | None = None, index=None) -> list[tuple[int, int]]:
        """Where whitelisted pathology, anatomy and device terms stand in ``text``. Given its
        ``words``, ``text`` is taken as the detectors read it; else it is read so first (HTML,
        RTF, invisible characters: see ``normalise``) and the ranges map back to it."""
        if words is None and index is None:
            from .normalise import normalise_for_detection

            norm = normalise_for_detection(text)
            if not norm.identity:
                return norm.ranges_to_original(self.protected(norm.text, cut_words(norm.text)))
        words = words if words is not None else cut_words(text)
        return sorted(self._whitelist.find(text, words, index) + self._abbreviations.find(text, words, index))

    def detect(self, text: str, header: HeaderIdentifiers | None = None) -> list[Span]:
        # Detectors read the text as a reader sees it (markup gone, invisible characters
        # removed, letters folded); what they find maps back to ``text`` as written.
        from .normalise import normalise_for_detection

        norm = normalise_for_detection(text)
        text = norm.text
        ctx = Context(self.lexicons, header, self._extra_patterns, self.config.times == "all")
        found: list[Span] = []
        for detector in self.detectors:
            found.extend(detector(text, ctx))
        words, index = ctx.words(text), ctx.index(text)
        for matcher, category, source in ((self._staff, "NAME", "config:staff"),
                                          (self._institutions, "INSTITUTION", "config:institution")):
            found.extend(Span(start, end, category, source)
                         for start, end in matcher.find(text, words, index))
        # The protected terms are looked up once, when a span first needs them.
        protected = cache(lambda: self.protected(text, words, index))
        found = self._apply_whitelist(text, found, protected)
        # What the note repeats of a found name yields to protected terms as well: "Dr Hampton"
        # found, "Hampton hump" stays.
        found += self._apply_whitelist(text, propagate(ctx.reader(text), found), protected)
        return norm.spans_to_original(join_adjacent(resolve(found), text, "NAME"))

    def _apply_whitelist(self, text: str, spans: list[Span],
                         protected_terms: Callable[[], list[tuple[int, int]]]) -> list[Span]:
        # Structured patterns and the header's own values never yield: when nothing else was
        # found there is no need to look for protected terms at all.
        if not any(span.source.startswith(_OVERRULED) for span in spans):
            return spans
        protected = protected_terms()
        if not protected:
            return spans
        starts = [s for s, _ in protected]
        reach = max(e - s for s, e in protected)
        kept = []
        for span in spans:
            if not span.source.startswith(_OVERRULED):
                kept.append(span)
                continue
            hit = None
            # The first protected term overlapping the span: terms start before its end.
            for j in range(bisect_left(starts, span.end) - 1, -1, -1):
                s, e = protected[j]
                if s + reach <= span.start:
                    break
                if e > span.start:
                    hit = (s, e)
            if hit is None:
                kept.append(span)
                continue
            term = text[hit[0]:hit[1]]
            multiword = " " in term.strip() or "-" in term
            inside = hit[0] <= span.start and span.end <= hit[1]
            # A name guessed from the lexicon yields to any protected term; a place yields only
            # to a term that holds it whole ("Mass General Hospital" is no mass); a name found
            # by its context ("Dr. Hampton") yields only to a whole phrase ("Hampton hump").
            if span.source.startswith(_YIELDING):
                if span.category == "NAME" or inside:
                    continue
            elif span.source.startswith("context:") and multiword:
                continue
            kept.append(span)
        return kept

    def deidentify(self, text: str, header: HeaderIdentifiers | None = None, mode: str = "tag",
                   key: bytes | None = None) -> Redaction:
        spans = self.detect(text, header)
        patient = header.patient_key if header is not None else ""
        shift = date_shift_days(key, patient, study_dates(text, spans, header)) \
            if key is not None else 0
        avoid = {part for parts in header.names for part in parts} if header is not None else set()
        return Redaction(Replacer(mode, key, shift, avoid_names=avoid).apply(text, spans), spans)


def study_dates(text: str, spans: Iterable[Span], header: HeaderIdentifiers | None = None
                ) -> set[dt.date]:
    """The calendar dates a report's spans and its header hold: what its date shift must not
    map one onto another of (``keys.date_shift_days``)."""
    from .replace import parse_date

    dates: set[dt.date] = set()
    for span in spans:
        if span.category == "DATE" and (parsed := parse_date(text[span.start:span.end])):
            dates.add(parsed[0])
    if header is not None:
        dates |= header.all_dates
        for value in header.dates:
            try:
                dates.add(dt.datetime.strptime(value.strip()[:8], "%Y%m%d").date())
            except ValueError:
                continue
    return dates


def _plugin_detectors() -> list[Detector]:
    """Detectors installed as plugins (entry-point group ``updp_napari.detectors``)."""
    from ...core.registry import discover, load

    detectors = []
    for name in discover("updp_napari.detectors"):
        obj = load("updp_napari.detectors", name)
        detectors.append(_adapt(name, obj))
    return detectors


def _adapt(name: str, obj) -> Detector:
    """A plugin's ``detect(text)`` yields Spans or ``(start, end, category[, confidence])``."""
    detect = obj() if isinstance(obj, type) else obj
    detect = getattr(detect, "detect", detect)
    if not callable(detect):
        raise UpdpError(f"plugin {name!r} is not callable and has no detect()")

    def run(text: str, ctx: Context) -> Iterable[Span]:
        for item in detect(text):
            if isinstance(item, Span):
                yield item
            else:
                start, end, category, *rest = item
                yield Span(int(start), int(end), str(category).upper(), f"plugin:{name}",
                           float(rest[0]) if rest else 1.0)
    return run
