"""Plain records shared by the cohort generator's parts (people, sites, studies, findings).

Everything here is synthetic: the names, numbers and addresses are drawn from small
lexicons by a seeded generator, so a cohort can carry realistic-looking PHI without any
real person behind it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from ..core.vocabulary import FINDINGS

#: Findings the cohort draws, in the product's fixed order (the label vector of every study).
LABELS: tuple[str, ...] = FINDINGS


@dataclass(frozen=True)
class Person:
    """A synthetic person: a patient or a member of staff."""

    first: str
    last: str
    middle_initial: str = ""
    sex: str = "F"  # "F" or "M"
    title: str = ""  # "Dr." for physicians, "" otherwise
    credentials: str = ""  # "MD", "RT(R)", "RN", …

    @property
    def full(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def dicom_name(self) -> str:
        """PN value, ``LAST^FIRST^MIDDLE`` in upper case as most modalities write it."""
        parts = [self.last.upper(), self.first.upper()]
        if self.middle_initial:
            parts.append(self.middle_initial.upper())
        return "^".join(parts)


@dataclass(frozen=True)
class Patient:
    index: int
    person: Person
    birth_date: dt.date
    mrn: str
    ssn: str
    phone: str
    street: str  # "1200 Harbor Street"
    city: str
    state: str  # two-letter code
    zip_code: str
    height_m: float
    weight_kg: float
    group: str = "g1"  # population group (neutral names, see identities.GROUPS)


@dataclass(frozen=True)
class Site:
    """A hospital with its own scanner look, report style, ID formats and staff."""

    code: str  # "site_a" …
    name: str  # "St. Aldric Medical Center"
    short_name: str  # "ST ALDRIC MC"
    street: str
    city: str
    state: str
    zip_code: str
    phone: str
    fax: str
    domain: str  # e-mail and web domain, "staldric.org"
    report_style: str  # "a" | "b" | "c" | …
    modality: str  # "DX" or "CR"
    photometric: str  # "MONOCHROME2" or "MONOCHROME1"
    bits_stored: int
    manufacturer: str
    model_name: str
    station_name: str
    device_serial: str
    uid_root: str
    mrn_format: str  # a format spec understood by identities.format_identifier
    accession_format: str
    radiologists: tuple[Person, ...] = ()
    referrers: tuple[Person, ...] = ()
    technologists: tuple[Person, ...] = ()
    # scanner look
    gamma: float = 1.0
    noise: float = 0.01
    blur: float = 0.6
    edge_enhance: float = 0.0
    collimation: bool = False
    # demographic mix
    female_fraction: float = 0.5
    age_mean: float = 62.0
    age_sd: float = 14.0
    burn_in_rate: float = 0.35
    group2_fraction: float = 0.3  # share of the site's patients in population group g2


@dataclass(frozen=True)
class Finding:
    """One positive finding of a study, as the report should describe it."""

    label: str  # one of LABELS
    side: str  # "right" | "left" | "bilateral" | "" (patient's side)
    zone: str  # "upper" | "middle" | "lower" | "apical" | "basilar" | ""
    size_cm: float = 0.0  # nodules and masses
    severity: str = ""  # "small" | "moderate" | "large" | "mild" | ""


@dataclass
class Study:
    """What one study is: who, where, when and what was found."""

    study_id: str
    patient: Patient
    site: Site
    index: int  # 0-based study number for this patient
    date: dt.date
    time: dt.time
    accession: str
    view: str  # "PA" or "AP"
    age_years: int
    referrer: Person
    radiologist: Person
    technologist: Person
    previous_date: dt.date | None = None
    findings: list[Finding] = field(default_factory=list)
    history: str = ""  # reason for exam, filled by the report writer's vocabulary

    @property
    def labels(self) -> dict[str, int]:
        positive = {f.label for f in self.findings}
        return {label: int(label in positive) for label in LABELS}
