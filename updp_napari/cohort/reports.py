"""Synthetic chest X-ray reports with exact ground-truth PHI spans.

:func:`write_report` renders one :class:`~updp_napari.cohort.model.Study` as the free text a
radiology information system would hold (header, clinical history, comparison, technique,
findings, impression, signature) and returns with it a span for every piece of protected
health information in the text. The spans are the answer key a de-identifier is scored
against, so they are recorded while the text is assembled (see :class:`_ReportBuilder`) rather
than searched for afterwards.

Three house styles (``Site.report_style``) differ in layout, section names, date, time and name
formats, so that a de-identifier cannot get by on one template:

* ``"a"``: US hospital, upper-case headers, ``03/04/2019`` and ``3/4`` dates, ``SMITH, JOHN A``;
* ``"b"``: narrative, ``3 January 2019``, ``Jan 3rd``, ``January of 2019``, ``Mr John Smith``;
* ``"c"``: terse, ISO and dotted dates, lower-case names, pager, e-mail, results-portal URL and
  workstation IP address.

Span conventions:

* a name span covers the name only; titles and credentials ("Dr.", "Mr", ", MD", "RN") stay
  outside it, since they identify nobody;
* an age is PHI only from 90 upwards, and then the span is just the number;
* an e-mail address or a URL is one span even when it contains a name or an accession number:
  spans never nest or overlap;
* ``role`` says whose PHI it is: the patient's, a member of staff's, the institution's, or
  someone else's (a relative).

Eponyms (``Kerley B lines``, ``Swan-Ganz catheter``, …) look like names but are not PHI; they
are sprinkled into about half of the reports so that a de-identifier's precision is tested too.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

import numpy as np

from ..core.vocabulary import PHI_CATEGORIES
from .model import Finding, Person, Study

__all__ = ["CATEGORIES", "EPONYMS", "INDICATIONS", "ROLES", "write_report"]

#: PHI categories a span of the cohort's reports can carry: the product's, but the generic
#: "ID" (the cohort's identifiers are all of a named kind).
CATEGORIES: tuple[str, ...] = tuple(c for c in PHI_CATEGORIES if c != "ID")

#: Whose PHI a span is.
ROLES: tuple[str, ...] = ("patient", "staff", "institution", "other")

#: Eponymous terms used in reports. They contain surnames but are medical vocabulary, never PHI.
EPONYMS: tuple[str, ...] = (
    "Kerley B lines", "Swan-Ganz catheter", "Hodgkin lymphoma", "Pancoast tumor",
    "Morgagni hernia", "Hampton hump", "Westermark sign", "Fleischner Society",
    "Bochdalek hernia", "Graves disease", "Wilms tumor",
)

#: Reasons for a chest radiograph, used when ``Study.history`` is empty.
INDICATIONS: tuple[str, ...] = (
    "cough", "shortness of breath", "fever", "chest pain", "hypoxia", "pre-operative evaluation",
    "productive cough and fever", "wheezing", "weakness and fatigue", "fall at home",
    "tachycardia", "abnormal breath sounds",
)

# Reasons that fit a positive finding, so that history and findings tell one story.
_INDICATIONS_FOR = {
    "cardiomegaly": ("lower extremity edema", "congestive heart failure"),
    "effusion": ("decreased breath sounds at the base", "dyspnea on exertion"),
    "nodule": ("follow-up of pulmonary nodule", "incidental nodule on prior CT"),
    "mass": ("weight loss and hemoptysis", "persistent cough and weight loss"),
    "consolidation": ("fever and productive cough", "evaluate for pneumonia"),
    "pneumothorax": ("sudden shortness of breath", "chest pain after central line placement"),
    "atelectasis": ("post-operative, low oxygen saturation", "hypoxia after surgery"),
}

# Style c abbreviates as radiologists do when they type their own reports.
_TERSE = {
    "shortness of breath": "sob", "chest pain": "cp", "pre-operative evaluation": "pre-op",
    "follow-up of pulmonary nodule": "f/u nodule", "evaluate for pneumonia": "r/o pna",
    "fever and productive cough": "fever, prod cough", "sudden shortness of breath": "acute sob",
    "dyspnea on exertion": "doe",
}

_HISTORY_EPONYMS = (
    "History of Hodgkin lymphoma.", "History of Wilms tumor in childhood.",
    "History of Graves disease.", "Status post Bochdalek hernia repair in infancy.",
    "Evaluate for Pancoast tumor.",
)
_FINDING_EPONYMS = ("No Kerley B lines.", "No Hampton hump or Westermark sign.",
                    "No Morgagni hernia.")
_DEVICE_EPONYMS = ("Prior Swan-Ganz catheter has been removed.",
                   "Swan-Ganz catheter tip projects over the right pulmonary artery.")

T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Building text and spans together
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Phi:
    """A piece of text that is PHI, not yet placed."""

    text: str
    category: str
    role: str


# What the builder accepts: literal text, PHI, or a sequence of either (a rendered name).
_Piece: TypeAlias = "str | _Phi | tuple[_Piece, ...]"


class _ReportBuilder:
    """Appends text and records PHI offsets as it goes, so spans are right by construction."""

    def __init__(self) -> None:
        self._chunks: list[str] = []
        self._spans: list[dict] = []
        self._length = 0

    def lit(self, text: str) -> None:
        self._chunks.append(text)
        self._length += len(text)

    def phi(self, text: str, category: str, role: str) -> None:
        if category not in CATEGORIES or role not in ROLES:
            raise ValueError(f"unknown PHI category or role: {category!r}, {role!r}")
        if not text or text != text.strip():
            raise ValueError(f"PHI text must be non-empty and trimmed: {text!r}")
        start = self._length
        self.lit(text)
        self._spans.append({"start": start, "end": self._length, "category": category,
                            "text": text, "role": role})

    def add(self, *pieces: _Piece) -> None:
        for piece in pieces:
            if isinstance(piece, str):
                self.lit(piece)
            elif isinstance(piece, _Phi):
                self.phi(piece.text, piece.category, piece.role)
            else:
                self.add(*piece)

    def line(self, *pieces: _Piece) -> None:
        self.add(*pieces, "\n")

    def build(self) -> tuple[str, list[dict]]:
        return "".join(self._chunks), list(self._spans)


# --------------------------------------------------------------------------------------------
# Dates, times and names
# --------------------------------------------------------------------------------------------

# Spelled out rather than taken from strftime so the output does not depend on the locale.
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")

_DateForm = Callable[[dt.date], str]
_TimeForm = Callable[[dt.datetime], str]


def _ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _mdy(d: dt.date) -> str:  # 03/04/2019
    return f"{d.month:02d}/{d.day:02d}/{d.year}"


def _mdy_unpadded(d: dt.date) -> str:  # 3/4/2019
    return f"{d.month}/{d.day}/{d.year}"


def _month_day_year(d: dt.date) -> str:  # March 4, 2019
    return f"{_MONTHS[d.month - 1]} {d.day}, {d.year}"


def _md(d: dt.date) -> str:  # 3/4
    return f"{d.month}/{d.day}"


def _day_month_year(d: dt.date) -> str:  # 4 March 2019
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"


def _ordinal_month_year(d: dt.date) -> str:  # 4th March 2019
    return f"{_ordinal(d.day)} {_MONTHS[d.month - 1]} {d.year}"


def _day_mon_year(d: dt.date) -> str:  # 4 Mar 2019
    return f"{d.day} {_MONTHS[d.month - 1][:3]} {d.year}"


def _mon_ordinal(d: dt.date) -> str:  # Mar 4th
    return f"{_MONTHS[d.month - 1][:3]} {_ordinal(d.day)}"


def _month_of_year(d: dt.date) -> str:  # March of 2019
    return f"{_MONTHS[d.month - 1]} of {d.year}"


def _iso(d: dt.date) -> str:  # 2019-03-04
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def _dotted(d: dt.date) -> str:  # 04.03.2019 (day first, as European systems write it)
    return f"{d.day:02d}.{d.month:02d}.{d.year}"


def _compact(d: dt.date) -> str:  # 20190304
    return f"{d.year:04d}{d.month:02d}{d.day:02d}"


def _hm24(t: dt.datetime) -> str:  # 14:30
    return f"{t.hour:02d}:{t.minute:02d}"


def _hm12(t: dt.datetime) -> str:  # 2:30 PM
    return f"{t.hour % 12 or 12}:{t.minute:02d} {'AM' if t.hour < 12 else 'PM'}"


def _hm_dot(t: dt.datetime) -> str:  # 14.30
    return f"{t.hour:02d}.{t.minute:02d}"


def _hm_compact(t: dt.datetime) -> str:  # 1430
    return f"{t.hour:02d}{t.minute:02d}"


# A name template renders as [title or credential prefix] NAME [credential suffix]. Inside the
# name part, the case of a field says the case of the output: {Last} Smith, {LAST} SMITH,
# {last} smith; {F}/{f} and {L}/{l} are initials, {M} the middle initial. {T}/{t} is the title
# ("Dr.", "Mr."), {C}/{c} the credentials ("MD", "RN"); they stay outside the span.
_NAME_TEMPLATE = re.compile(r"^(?:\{(?P<pre>[TtC])\} )?(?P<body>.*?)(?P<post>,? \{[Cc]\})?$")


def _name(person: Person, template: str, role: str, title: str = "",
          credentials: str | None = None) -> tuple[_Piece, ...]:
    """Render ``person`` through ``template``: literal title, NAME span, literal credentials."""
    parts = _NAME_TEMPLATE.match(template)
    assert parts is not None  # the pattern matches any string
    first, last, middle = person.first, person.last, person.middle_initial
    body = parts["body"].format(
        First=first, FIRST=first.upper(), first=first.lower(),
        Last=last, LAST=last.upper(), last=last.lower(),
        F=first[:1].upper(), f=first[:1].lower(), L=last[:1].upper(), l=last[:1].lower(),
        M=middle.upper(),
    )
    # A missing middle initial leaves a stray separator ("SMITH, JOHN ", "JOHN  SMITH").
    body = re.sub(r" {2,}", " ", body).rstrip(" ^")
    creds = person.credentials if credentials is None else credentials
    pieces: list[_Piece] = []
    prefix = parts["pre"]
    if prefix in ("T", "t") and title:
        pieces.append((title if prefix == "T" else title.lower()) + " ")
    elif prefix == "C" and creds:
        pieces.append(creds + " ")
    pieces.append(_Phi(body, "NAME", role))
    post = parts["post"]
    if post and creds:
        pieces.append(post.replace("{C}", creds).replace("{c}", creds.lower()))
    return tuple(pieces)


# --------------------------------------------------------------------------------------------
# House styles
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Style:
    """Everything that is phrasing rather than layout, per house style."""

    key: str
    # section headers
    exam: str
    indication: tuple[str, ...]
    comparison: str
    technique: str
    findings: str
    impression: str
    # dates and times: the header form, other full forms, and short forms for nearby dates
    header_date: _DateForm
    dates: tuple[_DateForm, ...]
    short_dates: tuple[_DateForm, ...]
    times: tuple[_TimeForm, ...]
    # name templates per place in the report
    patient_header: tuple[str, ...]
    patient_text: tuple[str, ...]
    referrer: tuple[str, ...]
    radiologist: tuple[str, ...]
    technologist: tuple[str, ...]
    # exam names and technique sentences per view
    exam_names: dict[str, tuple[str, ...]]
    techniques: dict[str, tuple[str, ...]]
    no_comparison: tuple[str, ...]
    normal_impression: tuple[str, ...]
    sex_words: dict[str, str]
    patient_titles: dict[str, str]
    terse: bool = False
    zones: bool = False  # describe lung regions as zones ("left lower zone") rather than lobes


_STYLES: dict[str, _Style] = {
    "a": _Style(
        key="a",
        exam="EXAM:",
        indication=("CLINICAL INDICATION:", "INDICATION:", "CLINICAL HISTORY:", "HISTORY:"),
        comparison="COMPARISON:",
        technique="TECHNIQUE:",
        findings="FINDINGS:",
        impression="IMPRESSION:",
        header_date=_mdy,
        dates=(_mdy, _mdy, _mdy_unpadded, _month_day_year),
        short_dates=(_md,),
        times=(_hm24, _hm24, _hm12),
        patient_header=("{LAST}, {FIRST} {M}", "{LAST}, {FIRST}", "{Last}, {First}",
                        "{Last}, {First} {M}"),
        patient_text=("{T} {Last}", "{First} {Last}", "{F}. {Last}"),
        referrer=("{LAST}, {FIRST}", "{T} {First} {Last}", "{First} {Last}, {C}", "{T} {Last}"),
        radiologist=("{First} {Last}, {C}", "{T} {First} {Last}", "{F}. {Last}, {C}",
                     "{FIRST} {M} {LAST}, {C}"),
        technologist=("{First} {Last}, {C}", "{F}. {Last}", "{FIRST} {LAST}"),
        exam_names={"PA": ("XR CHEST 2 VIEWS", "XR CHEST PA AND LATERAL", "CHEST 2 VIEWS PA/LAT"),
                    "AP": ("XR CHEST 1 VIEW PORTABLE", "XR CHEST PORTABLE AP")},
        techniques={"PA": ("PA and lateral views of the chest.", "PA and lateral views.",
                           "Two views of the chest, PA and lateral."),
                    "AP": ("Portable AP view of the chest.",
                           "Single portable AP upright view of the chest.",
                           "AP semi-upright portable view.")},
        no_comparison=("None.", "None available.", "No prior studies."),
        normal_impression=("No acute cardiopulmonary process.",
                           "No acute cardiopulmonary abnormality.", "Normal chest radiograph."),
        sex_words={"F": "female", "M": "male"},
        patient_titles={"F": "Ms.", "M": "Mr."},
    ),
    "b": _Style(
        key="b",
        exam="Examination:",
        indication=("Clinical history:", "Clinical details:"),
        comparison="Comparison:",
        technique="Technique:",
        findings="Findings:",
        impression="Conclusion:",
        header_date=_day_month_year,
        dates=(_day_month_year, _ordinal_month_year, _day_mon_year),
        short_dates=(_mon_ordinal,),
        times=(_hm24, _hm_dot),
        patient_header=("{T} {First} {Last}", "{First} {Last}", "{LAST}, {First}"),
        patient_text=("{T} {Last}", "{T} {First} {Last}"),
        referrer=("{T} {First} {Last}", "{T} {F} {Last}", "{T} {Last}"),
        radiologist=("{T} {First} {Last}", "{T} {F}. {Last}"),
        technologist=("{First} {Last}", "{F}. {Last}"),
        exam_names={"PA": ("Chest X-ray (PA)", "Chest radiograph, PA"),
                    "AP": ("Chest X-ray (AP portable)", "Chest radiograph, AP")},
        techniques={"PA": ("PA and lateral projections.", "Single PA chest radiograph.",
                           "Erect PA view."),
                    "AP": ("AP portable radiograph.", "Supine AP film.",
                           "Semi-erect AP projection.")},
        no_comparison=("None.", "No previous imaging available."),
        normal_impression=("No acute cardiopulmonary abnormality.", "Normal chest radiograph.",
                           "Normal appearances."),
        sex_words={"F": "woman", "M": "man"},
        patient_titles={"F": "Ms", "M": "Mr"},
        zones=True,
    ),
    "c": _Style(
        key="c",
        exam="EXAM:",
        indication=("HX:",),
        comparison="COMP:",
        technique="TECH:",
        findings="REPORT:",
        impression="IMP:",
        header_date=_iso,
        dates=(_iso, _iso, _dotted),
        short_dates=(_iso, _compact),
        times=(_hm24, _hm24, _hm_compact),
        patient_header=("{last}, {first}", "{first} {last}", "{LAST}^{FIRST}^{M}",
                        "{LAST}, {FIRST}"),
        patient_text=("{f}. {last}", "{t} {last}"),
        referrer=("{t} {last}", "{first} {last} {c}", "{f} {last}"),
        radiologist=("{first} {last} {c}", "{t} {first} {last}", "{first} {last}"),
        technologist=("{f} {last}", "{first} {last}"),
        exam_names={"PA": ("CXR PA+LAT", "CXR 2V"), "AP": ("CXR AP PORT", "CXR 1V PORT")},
        techniques={"PA": ("PA/lat.", "pa + lat."), "AP": ("AP port.", "portable AP.")},
        no_comparison=("none.", "None."),
        normal_impression=("no acute cardiopulmonary process.", "NAD.", "normal cxr."),
        sex_words={"F": "F", "M": "M"},
        patient_titles={"F": "Ms.", "M": "Mr."},
        terse=True,
    ),
}


# --------------------------------------------------------------------------------------------
# Per-report state
# --------------------------------------------------------------------------------------------

class _Context:
    """One report in the making: the study, its style, the generator and derived values."""

    def __init__(self, study: Study, rng: np.random.Generator) -> None:
        self.study = study
        self.site = study.site
        self.patient = study.patient
        self.style = _STYLES.get(study.site.report_style, _STYLES["a"])
        self.rng = rng
        # How PHI-dense this report is: optional PHI is scaled by it, so some reports are
        # sparse and some crowded.
        self.density = float(rng.random())
        minutes = self.minutes
        self.exam_at = dt.datetime.combine(study.date, study.time)
        self.read_at = self.exam_at + minutes(10, 240)
        self.called_at = self.read_at + minutes(3, 25)
        self.signed_at = self.called_at + minutes(2, 40)
        self.pager = str(int(rng.integers(1000, 100000)))
        # Eponyms are decided up front (history, findings, devices) and independently, so that
        # about half of the reports carry one.
        self.history_eponym = self.pick(_HISTORY_EPONYMS) if self.coin(0.2) else ""
        self.finding_eponym = self.pick(_FINDING_EPONYMS) if self.coin(0.3) else ""
        self.device_eponym = self.pick(_DEVICE_EPONYMS) if self.coin(0.1) else ""

    # randomness -----------------------------------------------------------------------------

    def coin(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def chance(self, p: float) -> bool:
        """A coin for optional PHI: likelier in dense reports, rarer in light ones."""
        return self.coin(min(1.0, p * (0.3 + 1.4 * self.density)))

    def pick(self, options: Sequence[T]) -> T:
        # Index rather than rng.choice: it keeps Python types and works on any sequence.
        return options[int(self.rng.integers(len(options)))]

    def minutes(self, low: int, high: int) -> dt.timedelta:
        return dt.timedelta(minutes=int(self.rng.integers(low, high)))

    # PHI pieces -----------------------------------------------------------------------------

    def date(self, d: dt.date, forms: Sequence[_DateForm] | None = None) -> _Phi:
        return _Phi(self.pick(forms or self.style.dates)(d), "DATE", "patient")

    def time(self, t: dt.datetime) -> _Phi:
        return _Phi(self.pick(self.style.times)(t), "TIME", "patient")

    def age(self) -> _Piece:
        age = str(self.study.age_years)
        return _Phi(age, "AGE", "patient") if self.study.age_years >= 90 else age

    def patient_name(self, templates: Sequence[str]) -> tuple[_Piece, ...]:
        person = self.patient.person
        title = self.style.patient_titles.get(person.sex, "")
        return _name(person, self.pick(templates), "patient", title)

    def staff_name(self, person: Person, templates: Sequence[str]) -> tuple[_Piece, ...]:
        title = person.title.rstrip(".") if self.style.key == "b" else person.title
        return _name(person, self.pick(templates), "staff", title)

    def institution(self, upper: bool = False, short: bool = False) -> _Phi:
        name = self.site.short_name if short else self.site.name
        return _Phi(name.upper() if upper else name, "INSTITUTION", "institution")

    def place(self, street: str, city: str, state: str, zip_code: str,
              role: str) -> tuple[_Piece, ...]:
        """``1200 Harbor Street, Springfield, IL 62704`` as four spans."""
        return (_Phi(street, "ADDRESS", role), ", ", _Phi(city, "CITY", role), ", ",
                _Phi(state, "STATE", role), " ", _Phi(zip_code, "ZIP", role))

    def email(self, person: Person) -> _Phi:
        first = re.sub(r"[^a-z]", "", person.first.lower())
        last = re.sub(r"[^a-z]", "", person.last.lower())
        local = self.pick((f"{first[:1]}{last}", f"{first}.{last}", f"{last}{first[:1]}"))
        return _Phi(f"{local}@{self.site.domain}", "EMAIL", "staff")

    def portal_url(self) -> _Phi:
        domain, accession = self.site.domain, self.study.accession
        with_accession = (f"https://results.{domain}/study/{accession}",
                          f"https://portal.{domain}/viewer?accession={accession}")
        without = (f"https://{domain}/radiology/results", f"https://portal.{domain}/")
        if self.coin(0.6):
            # The accession makes the link point at this patient's study.
            return _Phi(self.pick(with_accession), "URL", "patient")
        return _Phi(self.pick(without), "URL", "institution")

    def workstation_ip(self) -> _Phi:
        a, b, c = (int(x) for x in self.rng.integers(1, 255, size=3))
        prefix = self.pick(("10", "172.16", "192.168"))
        address = f"{prefix}.{b}.{c}" if prefix.count(".") else f"{prefix}.{a}.{b}.{c}"
        return _Phi(address, "IP", "institution")

    def nurse(self) -> Person:
        """A ward nurse to call results to.

        Sites have no nursing staff on record, so the nurse borrows a technologist identity of
        the same site (preferring one not on this study).
        """
        others = [p for p in self.site.technologists if p != self.study.technologist]
        return self.pick(others) if others else self.study.technologist


# --------------------------------------------------------------------------------------------
# Findings vocabulary
# --------------------------------------------------------------------------------------------

def _sentence(*words: str) -> str:
    """Join the non-empty words and capitalise the first letter."""
    text = " ".join(w for w in words if w)
    return text[:1].upper() + text[1:]


def _region(f: Finding, zones: bool) -> str:
    """Where a lung finding is, with its preposition: "in the right upper lobe", "at both bases"."""
    side, zone = f.side, f.zone
    lobe = {"upper": "upper lobe", "middle": "middle lobe", "lower": "lower lobe",
            "apical": "apex", "basilar": "base", "": "lung"}.get(zone, "lung")
    if side in ("right", "left"):
        place = "the lingula" if (side, zone) == ("left", "middle") else f"the {side} {lobe}"
    elif side == "bilateral":
        place = {"apex": "both apices", "base": "both bases", "lung": "both lungs"}.get(
            lobe, f"both {lobe}s")
    else:
        place = {"apex": "the lung apices", "base": "the lung bases", "lung": "the lungs"}.get(
            lobe, f"the {zone} lungs")
    if zones:  # the British habit: radiographic zones rather than anatomical lobes
        place = place.replace("middle lobe", "mid zone").replace("lingula", "left mid zone")
        place = place.replace("lobe", "zone")
    preposition = "at" if place.endswith(("apex", "base", "bases", "apices")) else "in"
    return f"{preposition} {place}"


def _side(f: Finding) -> str:
    return f.side if f.side in ("right", "left", "bilateral") else ""


def _cm(size: float, default: float) -> str:
    return f"{size if size > 0 else default:.1f} cm"


# Each describer returns (findings sentence, impression sentence) for one positive finding.
# Every findings sentence names the finding plainly so the label can be read back from the text.

def _cardiomegaly(f: Finding, ctx: _Context) -> tuple[str, str]:
    adverb = {"mild": "mildly", "moderate": "moderately", "large": "markedly"}.get(f.severity, "")
    adjective = {"mild": "mild", "moderate": "moderate", "large": "marked"}.get(f.severity, "")
    finding = ctx.pick((_sentence("the cardiac silhouette is", adverb, "enlarged."),
                        _sentence("heart size is", adverb, "enlarged."),
                        _sentence(adjective, "cardiomegaly.")))
    return finding, _sentence(adjective, "cardiomegaly.")


def _effusion(f: Finding, ctx: _Context) -> tuple[str, str]:
    size = {"mild": "small"}.get(f.severity, f.severity)
    noun = "pleural effusions" if f.side == "bilateral" else "pleural effusion"
    angle = "angles" if f.side == "bilateral" else "angle"
    core = _sentence(size, _side(f), noun)
    finding = ctx.pick((f"{core} with blunting of the costophrenic {angle}.", f"{core}.",
                        _sentence("there is a" if f.side != "bilateral" else "there are",
                                  size, _side(f), noun + ".")))
    return finding, f"{core}."


def _nodule(f: Finding, ctx: _Context) -> tuple[str, str]:
    size, where = _cm(f.size_cm, 1.0), _region(f, ctx.style.zones)
    finding = ctx.pick((f"A {size} nodule {where}.", f"There is a {size} rounded nodule {where}.",
                        f"Well-circumscribed {size} nodule {where}."))
    return finding, f"{size} nodule {where}."


def _mass(f: Finding, ctx: _Context) -> tuple[str, str]:
    size, where = _cm(f.size_cm, 4.0), _region(f, ctx.style.zones)
    finding = ctx.pick((f"A {size} mass {where}.", f"Lobulated {size} mass {where}.",
                        f"There is a {size} mass {where}, suspicious for malignancy."))
    impression = ctx.pick((f"{size} mass {where}, concerning for neoplasm. CT chest recommended.",
                           f"{size} mass {where}. Further evaluation with CT is recommended."))
    return finding, impression


def _consolidation(f: Finding, ctx: _Context) -> tuple[str, str]:
    where = _region(f, ctx.style.zones)
    finding = ctx.pick((f"Patchy consolidation {where}, with air bronchograms.",
                        f"Focal airspace consolidation {where}.", f"Dense consolidation {where}."))
    impression = ctx.pick((f"Consolidation {where}, likely pneumonia in the appropriate setting.",
                           f"Consolidation {where}, compatible with pneumonia."))
    return finding, impression


def _pneumothorax(f: Finding, ctx: _Context) -> tuple[str, str]:
    size = {"mild": "small"}.get(f.severity, f.severity)
    noun = "pneumothoraces" if f.side == "bilateral" else "pneumothorax"
    apical = "apical" if f.zone == "apical" else ""
    default_cm = {"small": 1.0, "moderate": 2.5, "large": 4.0}.get(size, 2.0)
    measure = f"{f.size_cm if f.size_cm > 0 else default_cm:g} cm"
    finding = ctx.pick((_sentence(_side(f), apical, noun, f"measuring approximately {measure}."),
                        _sentence(size, _side(f), apical, noun + "."),
                        _sentence("there is a", size, _side(f), noun,
                                  "without mediastinal shift.")))
    return finding, _sentence(size, _side(f), apical, noun + ".")


def _atelectasis(f: Finding, ctx: _Context) -> tuple[str, str]:
    where = _region(f, ctx.style.zones)
    finding = ctx.pick((f"Plate-like atelectasis {where}.", f"Subsegmental atelectasis {where}.",
                        f"Mild linear atelectasis {where}."))
    return finding, f"Atelectasis {where}."


_DESCRIBERS: dict[str, Callable[[Finding, _Context], tuple[str, str]]] = {
    "cardiomegaly": _cardiomegaly, "effusion": _effusion, "nodule": _nodule, "mass": _mass,
    "consolidation": _consolidation, "pneumothorax": _pneumothorax, "atelectasis": _atelectasis,
}

_LUNG_LABELS = ("consolidation", "nodule", "mass", "atelectasis")
_PLEURAL_LABELS = ("effusion", "pneumothorax")
# Findings a radiologist phones through rather than leaving in the report queue.
_CRITICAL_LABELS = ("pneumothorax", "mass")


def _normal_lungs(labels: dict[str, int], ctx: _Context) -> list[str]:
    """Normal-report phrasing for the lungs that never contradicts a positive finding."""
    terse = ctx.style.terse
    if not any(labels[label] for label in _LUNG_LABELS + _PLEURAL_LABELS):
        return [ctx.pick(("lungs clear.", "lungs are clear.") if terse else
                         ("The lungs are clear.", "Lungs are clear without focal consolidation.",
                          "No focal airspace opacity."))]
    sentences = []
    if not labels["consolidation"]:
        sentences.append("no focal consolidation." if terse else "No focal consolidation.")
    if not labels["nodule"] and not labels["mass"] and ctx.coin(0.5):
        sentences.append("no nodule or mass." if terse else
                         "No suspicious pulmonary nodule or mass.")
    return sentences


def _normal_pleura(labels: dict[str, int], ctx: _Context) -> list[str]:
    terse = ctx.style.terse
    if not labels["effusion"] and not labels["pneumothorax"]:
        return [ctx.pick(("no eff/ptx.", "no effusion or ptx.") if terse else
                         ("No pleural effusion or pneumothorax.", "No effusion or pneumothorax.",
                          "The costophrenic angles are sharp. No pneumothorax."))]
    if not labels["effusion"]:
        return ["no effusion." if terse else "No pleural effusion."]
    if not labels["pneumothorax"]:
        return ["no ptx." if terse else "No pneumothorax."]
    return []


def _normal_heart(labels: dict[str, int], ctx: _Context) -> list[str]:
    if labels["cardiomegaly"]:
        return []
    if ctx.style.terse:
        return [ctx.pick(("heart size nl.", "cardiomediastinal silhouette nl."))]
    return [ctx.pick(("Heart size is normal.", "Normal heart size.",
                      "The cardiomediastinal silhouette is within normal limits."))]


def _finding_groups(ctx: _Context) -> list[tuple[str, list[str]]]:
    """Findings sentences in reading order, grouped by anatomy: (group heading, sentences)."""
    study, labels = ctx.study, ctx.study.labels
    described = {f.label: [] for f in study.findings}
    for finding in study.findings:
        described[finding.label].append(_DESCRIBERS[finding.label](finding, ctx)[0])

    def positives(group: Sequence[str]) -> list[str]:
        return [s for label in group for s in described.get(label, [])]

    devices = [ctx.device_eponym] if ctx.device_eponym else []
    lungs = positives(_LUNG_LABELS) + _normal_lungs(labels, ctx)
    if ctx.finding_eponym:
        lungs.append(ctx.finding_eponym)
    pleura = positives(_PLEURAL_LABELS) + _normal_pleura(labels, ctx)
    heart = positives(("cardiomegaly",)) + _normal_heart(labels, ctx)
    if not labels["mass"] and ctx.coin(0.3):
        heart.append("mediastinum unremarkable." if ctx.style.terse
                     else "The mediastinal contours are unremarkable.")
    bones = []
    if ctx.coin(0.5):
        bones.append(ctx.pick(("bones intact.",) if ctx.style.terse else
                              ("No acute osseous abnormality.",
                               "Visualized osseous structures are intact.")))
    groups = [("LINES/TUBES", devices), ("LUNGS", lungs), ("PLEURA", pleura),
              ("HEART/MEDIASTINUM", heart), ("BONES", bones)]
    return [(name, sentences) for name, sentences in groups if sentences]


def _impression_items(ctx: _Context) -> list[str]:
    """One line per positive finding, normal phrasing when there is none."""
    items = []
    for finding in ctx.study.findings:
        item = _DESCRIBERS[finding.label](finding, ctx)[1]
        if finding.label == "nodule" and ctx.coin(0.8):
            item += " " + ctx.pick(("Follow-up per Fleischner Society guidelines.",
                                    "Suggest follow-up CT in line with Fleischner Society "
                                    "guidelines."))
        items.append(item)
    return items or [ctx.pick(ctx.style.normal_impression)]


# --------------------------------------------------------------------------------------------
# Sections shared by all styles
# --------------------------------------------------------------------------------------------

def _exam(b: _ReportBuilder, ctx: _Context) -> None:
    view = ctx.study.view if ctx.study.view in ("PA", "AP") else "PA"
    b.line(ctx.style.exam, " ", ctx.pick(ctx.style.exam_names[view]))


def _reason(ctx: _Context) -> str:
    study = ctx.study
    if study.history:
        reason = study.history.strip().rstrip(".")
    elif study.findings and ctx.coin(0.5):
        reason = ctx.pick(_INDICATIONS_FOR[ctx.pick(study.findings).label])
    else:
        reason = ctx.pick(INDICATIONS)
    return _TERSE.get(reason, reason) if ctx.style.terse else reason


def _history(b: _ReportBuilder, ctx: _Context) -> None:
    style, sex = ctx.style, ctx.patient.person.sex
    sex_word, reason, age = style.sex_words.get(sex, ""), _reason(ctx), ctx.age()
    b.add(ctx.pick(style.indication), " ")
    if style.key == "a":
        if ctx.chance(0.25):
            b.add(ctx.patient_name(style.patient_text), " is a ", age,
                  f"-year-old {sex_word} presenting with {reason}.")
        else:
            b.add(age, ctx.pick(("-year-old", " year old")), f" {sex_word} with {reason}.")
    elif style.key == "b":
        form = ctx.pick(("age first", "name first", "reason first"))
        if form == "name first" and ctx.chance(0.6):
            b.add(ctx.patient_name(style.patient_text), ", ", age, f", presents with {reason}.")
        elif form == "reason first":
            b.add(_sentence(reason + "."), " Patient aged ", age, ".")
        else:
            b.add(age, f" year old {sex_word} with {reason}.")
        if ctx.chance(0.15):
            _relative(b, ctx)
    else:
        form = ctx.pick(("yo", "compact", "y/o"))
        if form == "compact":
            b.add(age, f"{sex_word} {reason}.")
        else:
            b.add(age, f" {form} {sex_word}, {reason}.")
    if ctx.history_eponym:
        b.add(" ", ctx.history_eponym)
    b.lit("\n")


def _relative(b: _ReportBuilder, ctx: _Context) -> None:
    """History given by a relative: a name that is PHI of someone other than the patient."""
    person = ctx.patient.person
    relation = ctx.pick(("wife", "daughter") if person.sex == "M" else ("husband", "daughter"))
    title = "Mr" if relation == "husband" else ctx.pick(("Mrs", "Ms"))
    pronoun = "his" if person.sex == "M" else "her"
    b.add(f" History obtained from {pronoun} {relation}, {title} ",
          _Phi(person.last, "NAME", "other"), ".")


def _comparison(b: _ReportBuilder, ctx: _Context) -> None:
    style, previous = ctx.style, ctx.study.previous_date
    b.add(style.comparison, " ")
    if previous is None:
        b.line(ctx.pick(style.no_comparison))
        return
    same_year = previous.year == ctx.study.date.year
    if style.key == "a":
        if same_year and ctx.coin(0.4):
            b.line("Prior study from ", ctx.date(previous, style.short_dates), ".")
        else:
            b.line(ctx.pick(("", "Chest radiograph dated ")), ctx.date(previous), ".")
    elif style.key == "b":
        form = ctx.pick(("full", "month", "short"))
        if form == "month":
            b.line("Compared with the study from ", ctx.date(previous, (_month_of_year,)), ".")
        elif form == "short" and same_year:
            b.line("Comparison is made with the film of ", ctx.date(previous, style.short_dates),
                   ".")
        else:
            b.line("Previous radiograph of ", ctx.date(previous), ".")
    else:
        b.line(ctx.pick(("", "cxr ")), ctx.date(previous))


def _technique(b: _ReportBuilder, ctx: _Context) -> None:
    view = ctx.study.view if ctx.study.view in ("PA", "AP") else "PA"
    b.add(ctx.style.technique, " ", ctx.pick(ctx.style.techniques[view]))
    if view == "AP" and ctx.style.key == "a" and ctx.chance(0.3):
        b.add(" Obtained at ", ctx.time(ctx.exam_at), ".")
    b.lit("\n")


def _findings(b: _ReportBuilder, ctx: _Context) -> None:
    groups = _finding_groups(ctx)
    style = ctx.style
    if style.key == "a" and ctx.coin(0.4):
        # Structured template, as many US departments use.
        b.line(style.findings)
        for name, sentences in groups:
            b.line(f"{name}: ", " ".join(sentences))
    elif style.key == "b" or (style.key == "a" and ctx.coin(0.5)):
        b.line(style.findings, " ", " ".join(s for _, group in groups for s in group))
    else:
        b.line(style.findings)
        for _, sentences in groups:
            for sentence in sentences:
                b.line(sentence)


def _impression(b: _ReportBuilder, ctx: _Context) -> None:
    items, style = _impression_items(ctx), ctx.style
    if style.key == "b":
        b.line(style.impression, " ", " ".join(items))
    elif len(items) == 1 and style.key == "a":
        b.line(style.impression, " ", items[0])
    else:
        b.line(style.impression)
        for number, item in enumerate(items, start=1):
            b.line(f"{number}. " if style.key == "a" else "- ", item)


def _communication(b: _ReportBuilder, ctx: _Context) -> None:
    """Critical results are phoned through; the call is logged with who, when and read-back."""
    critical = any(f.label in _CRITICAL_LABELS for f in ctx.study.findings)
    if not (ctx.coin(0.8) if critical else ctx.chance(0.12)):
        return
    style, when = ctx.style, ctx.called_at
    to_nurse = ctx.coin(0.3)
    nurse = ctx.nurse()
    if style.key == "a":
        whom = (_name(nurse, "{C} {Last}", "staff", credentials="RN") if to_nurse
                else ctx.staff_name(ctx.study.referrer, ("{T} {Last}", "{T} {First} {Last}")))
        verb = "Critical result communicated to " if to_nurse else "Findings discussed with "
        b.line(verb, whom, " at ", ctx.time(when), " on ",
               ctx.date(when.date(), style.short_dates + style.dates[:1]),
               ctx.pick((" by telephone.", "; read-back confirmed.")))
    elif style.key == "b":
        whom = (_name(nurse, "{C} {Last}", "staff", credentials="Staff Nurse") if to_nurse
                else ctx.staff_name(ctx.study.referrer, ("{T} {Last}", "{T} {First} {Last}")))
        b.line("These findings were discussed with ", whom, " by telephone at ", ctx.time(when),
               " on ", ctx.date(when.date(), style.short_dates + style.dates[:1]), ".")
    else:
        whom = (_name(nurse, "{C} {last}", "staff", credentials="RN") if to_nurse
                else ctx.staff_name(ctx.study.referrer, ("{t} {last}",)))
        b.line("d/w ", whom, " ", ctx.time(when), " ", ctx.date(when.date(), style.short_dates),
               ", read back ok.")


def _preliminary_reader(ctx: _Context) -> Person | None:
    """Another radiologist of the site who gave a preliminary read, on some reports."""
    others = [p for p in ctx.site.radiologists if p != ctx.study.radiologist]
    return ctx.pick(others) if others and ctx.chance(0.1) else None


# --------------------------------------------------------------------------------------------
# Style a: US hospital
# --------------------------------------------------------------------------------------------

def _header_a(b: _ReportBuilder, ctx: _Context) -> None:
    site, patient, study, style = ctx.site, ctx.patient, ctx.study, ctx.style
    b.line(ctx.institution(upper=ctx.coin(0.7)))
    b.line(ctx.pick(("DEPARTMENT OF RADIOLOGY", "Department of Diagnostic Imaging")))
    if ctx.chance(0.5):
        b.line(ctx.place(site.street, site.city, site.state, site.zip_code, "institution"))
    if ctx.chance(0.4) and site.phone:
        b.add("Tel: ", _Phi(site.phone, "PHONE", "institution"))
        if site.fax and ctx.coin(0.6):
            b.add("   Fax: ", _Phi(site.fax, "FAX", "institution"))
        b.lit("\n")
    b.lit("\n")
    b.line("PATIENT: ", ctx.patient_name(style.patient_header),
           f"    SEX: {patient.person.sex}" if ctx.coin(0.5) else "")
    b.add("MRN: ", _Phi(patient.mrn, "MRN", "patient"))
    if ctx.chance(0.9):
        b.add("    DOB: ", ctx.date(patient.birth_date, (style.header_date,)))
        if ctx.coin(0.3):
            b.add(" (", ctx.age(), "Y)")
    b.lit("\n")
    if ctx.chance(0.8):
        b.line("ACCESSION: ", _Phi(study.accession, "ACCESSION", "patient"))
    b.add("EXAM DATE: ", ctx.date(study.date, (style.header_date,)))
    if ctx.chance(0.7):
        b.add(" ", ctx.time(ctx.exam_at))
    b.lit("\n")
    if ctx.chance(0.8):
        b.line("REFERRING PHYSICIAN: ", ctx.staff_name(study.referrer, style.referrer))
    if ctx.chance(0.06) and patient.ssn:
        b.line("SSN: ", _Phi(patient.ssn, "SSN", "patient"))
    if ctx.chance(0.08):
        b.line("Patient address: ", ctx.place(patient.street, patient.city, patient.state,
                                              patient.zip_code, "patient"))
    if ctx.chance(0.05) and patient.phone:
        b.line("Patient phone: ", _Phi(patient.phone, "PHONE", "patient"))
    b.lit("\n")


def _signature_a(b: _ReportBuilder, ctx: _Context) -> None:
    study, style = ctx.study, ctx.style
    radiologist, technologist = study.radiologist, study.technologist
    b.lit("\n")
    prelim = _preliminary_reader(ctx)
    if prelim is not None:
        b.line("Preliminary interpretation by ", ctx.staff_name(prelim, ("{T} {First} {Last}",)),
               ".")
    b.line(ctx.pick(("Electronically signed by: ", "Interpreted by: ")),
           ctx.staff_name(radiologist, style.radiologist), " on ",
           ctx.date(ctx.signed_at.date()), " at ", ctx.time(ctx.signed_at))
    if ctx.chance(0.5):
        transcribed = ctx.read_at + (ctx.signed_at - ctx.read_at) / 2
        b.line("D: ", ctx.date(ctx.read_at.date()), " ", ctx.time(ctx.read_at), "   T: ",
               ctx.date(transcribed.date()), " ", ctx.time(transcribed))
    if ctx.chance(0.3):
        # Dictating radiologist's and transcriptionist's initials: "JR/mp".
        b.line(_name(radiologist, "{F}{L}", "staff"), "/", _name(technologist, "{f}{l}", "staff"))
    if ctx.chance(0.5):
        b.line("Technologist: ", ctx.staff_name(technologist, style.technologist))
    if ctx.chance(0.3):
        b.add("Questions: ")
        if ctx.site.phone:
            b.add("reading room ", _Phi(ctx.site.phone, "PHONE", "institution"), ", ")
        b.line("pager ", _Phi(ctx.pager, "PAGER", "staff"))
    if ctx.chance(0.15):
        b.line("Contact: ", ctx.email(radiologist))
    if ctx.chance(0.15):
        b.line("Images and report: ", ctx.portal_url())


# --------------------------------------------------------------------------------------------
# Style b: narrative
# --------------------------------------------------------------------------------------------

def _header_b(b: _ReportBuilder, ctx: _Context) -> None:
    site, patient, study, style = ctx.site, ctx.patient, ctx.study, ctx.style
    if ctx.coin(0.5):
        b.line(ctx.institution(), ", Department of Radiology")
    else:
        b.line("Radiology Department, ", ctx.institution(short=ctx.coin(0.3)))
    if ctx.chance(0.35):
        b.add(ctx.place(site.street, site.city, site.state, site.zip_code, "institution"))
        if site.phone:
            b.add(". Telephone ", _Phi(site.phone, "PHONE", "institution"))
        b.lit("\n")
    b.lit("\n")
    b.add("Patient: ", ctx.patient_name(style.patient_header))
    b.line(ctx.pick(("    Hospital number: ", "    MRN: ")), _Phi(patient.mrn, "MRN", "patient"))
    if ctx.chance(0.9):
        b.add("Date of birth: ", ctx.date(patient.birth_date, (style.header_date,)))
        if ctx.coin(0.3):
            b.add(" (aged ", ctx.age(), ")")
        b.lit("\n")
    if ctx.chance(0.05):
        b.line("Address: ", ctx.place(patient.street, patient.city, patient.state,
                                      patient.zip_code, "patient"))
    b.add(ctx.pick(("Examination date: ", "Date of examination: ")),
          ctx.date(study.date, (style.header_date,)))
    if ctx.chance(0.6):
        b.add(" at ", ctx.time(ctx.exam_at))
    b.lit("\n")
    if ctx.chance(0.7):
        b.line(ctx.pick(("Referred by: ", "Requesting clinician: ")),
               ctx.staff_name(study.referrer, style.referrer))
    if ctx.chance(0.6):
        b.line("Accession no.: ", _Phi(study.accession, "ACCESSION", "patient"))
    b.lit("\n")


def _signature_b(b: _ReportBuilder, ctx: _Context) -> None:
    study, style = ctx.study, ctx.style
    b.lit("\n")
    b.line(ctx.pick(("Reported by ", "Report by: ")),
           ctx.staff_name(study.radiologist, style.radiologist), ", Consultant Radiologist")
    b.add(ctx.pick(("Date reported: ", "Verified ")), ctx.date(ctx.signed_at.date()))
    if ctx.chance(0.5):
        b.add(" at ", ctx.time(ctx.signed_at))
    b.lit("\n")
    prelim = _preliminary_reader(ctx)
    if prelim is not None:
        b.line("Provisional report by ", ctx.staff_name(prelim, ("{T} {F}. {Last}",)), ".")
    if ctx.chance(0.4):
        b.line("Radiographer: ", ctx.staff_name(study.technologist, style.technologist))
    if ctx.chance(0.2):
        b.line("Typed by: ", _name(study.technologist, "{F}{L}", "staff"))
    if ctx.chance(0.2):
        b.add("Enquiries: ", ctx.institution(), " Radiology")
        if ctx.site.phone:
            b.add(", telephone ", _Phi(ctx.site.phone, "PHONE", "institution"))
        if ctx.coin(0.5):
            b.add(", ", ctx.email(study.radiologist))
        b.lit("\n")


# --------------------------------------------------------------------------------------------
# Style c: terse
# --------------------------------------------------------------------------------------------

def _header_c(b: _ReportBuilder, ctx: _Context) -> None:
    site, patient, study, style = ctx.site, ctx.patient, ctx.study, ctx.style
    b.add(ctx.institution(short=True), " RADIOLOGY")
    if ctx.chance(0.3):
        b.add(" | ", _Phi(site.city, "CITY", "institution"), " ",
              _Phi(site.state, "STATE", "institution"))
    b.lit("\n")
    b.add("pt: ", ctx.patient_name(style.patient_header), "  mrn ",
          _Phi(patient.mrn, "MRN", "patient"))
    if ctx.chance(0.8):
        b.add("  dob ", ctx.date(patient.birth_date))
    if ctx.coin(0.4):
        b.add("  ", ctx.age(), patient.person.sex)
    b.lit("\n")
    b.add("acc ", _Phi(study.accession, "ACCESSION", "patient"), "  exam ",
          ctx.date(study.date, (style.header_date,)), " ", ctx.time(ctx.exam_at))
    if ctx.chance(0.5):
        b.add("  ws ", ctx.workstation_ip())
    b.lit("\n")
    if ctx.chance(0.7):
        b.add("ref: ", ctx.staff_name(study.referrer, style.referrer))
        if ctx.chance(0.4):
            b.add("  pgr ", _Phi(str(int(ctx.rng.integers(1000, 10000))), "PAGER", "staff"))
        b.lit("\n")
    if ctx.chance(0.05) and patient.ssn:
        b.line("ssn ", _Phi(patient.ssn, "SSN", "patient"))


def _signature_c(b: _ReportBuilder, ctx: _Context) -> None:
    study, style = ctx.study, ctx.style
    b.lit("\n")
    b.line("signed: ", ctx.staff_name(study.radiologist, style.radiologist), " ",
           ctx.date(ctx.signed_at.date()), " ", ctx.time(ctx.signed_at))
    contacts: list[_Piece] = []
    if ctx.chance(0.6):
        contacts.append(("pgr ", _Phi(ctx.pager, "PAGER", "staff")))
    if ctx.chance(0.6):
        contacts.append(ctx.email(study.radiologist))
    if contacts:
        for i, contact in enumerate(contacts):
            b.add("  " if i else "", contact)
        b.lit("\n")
    if ctx.chance(0.5):
        b.line("tech: ", ctx.staff_name(study.technologist, style.technologist))
    if ctx.chance(0.6):
        b.line("results: ", ctx.portal_url())
    if ctx.chance(0.3):
        b.line("read at ws ", ctx.workstation_ip())


_LAYOUTS: dict[str, tuple[Callable[[_ReportBuilder, _Context], None], ...]] = {
    # (header, signature) per style
    "a": (_header_a, _signature_a),
    "b": (_header_b, _signature_b),
    "c": (_header_c, _signature_c),
}


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------

def write_report(study: Study, rng: np.random.Generator) -> tuple[str, list[dict]]:
    """Return (text, spans); each span {"start": int, "end": int, "category": str, "text": str,
    "role": str}.

    ``text[start:end] == span["text"]`` for every span; spans are sorted by start and do not
    overlap. Deterministic for the same study and generator state; ``rng`` is the only source
    of randomness.
    """
    ctx = _Context(study, rng)
    header, signature = _LAYOUTS[ctx.style.key]
    builder = _ReportBuilder()
    header(builder, ctx)
    _exam(builder, ctx)
    _history(builder, ctx)
    _comparison(builder, ctx)
    _technique(builder, ctx)
    builder.lit("\n")
    _findings(builder, ctx)
    builder.lit("\n")
    _impression(builder, ctx)
    _communication(builder, ctx)
    signature(builder, ctx)
    return builder.build()
