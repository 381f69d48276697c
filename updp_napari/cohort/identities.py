"""Synthetic people, hospitals and identifiers for the cohort.

Names and places come from small lexicons in ``data/``; numbers follow each site's own
formats. Everything is drawn from a seeded generator, so a cohort is reproducible.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from importlib import resources

import numpy as np

from .model import Patient, Person, Site

_DATA = "updp_napari.cohort.data"


@cache
def _lexicon(name: str) -> tuple[str, ...]:
    text = resources.files(_DATA).joinpath(name).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


@cache
def _cities() -> tuple[tuple[str, str, str], ...]:
    return tuple(tuple(line.split("\t")) for line in _lexicon("cities.tsv"))  # type: ignore[misc]


def _pick(rng: np.random.Generator, items: tuple[str, ...]) -> str:
    return items[int(rng.integers(len(items)))]


def format_identifier(spec: str, rng: np.random.Generator) -> str:
    """Fill a site's identifier format: ``#`` a digit, ``@`` an upper-case letter, else literal."""
    out = []
    for ch in spec:
        if ch == "#":
            out.append(str(int(rng.integers(10))))
        elif ch == "@":
            out.append(chr(ord("A") + int(rng.integers(26))))
        else:
            out.append(ch)
    return "".join(out)


def make_person(rng: np.random.Generator, sex: str | None = None, title: str = "",
                credentials: str = "") -> Person:
    if sex is None:
        sex = "F" if rng.random() < 0.5 else "M"
    first = _pick(rng, _lexicon("first_names_female.txt" if sex == "F" else "first_names_male.txt"))
    middle = chr(ord("A") + int(rng.integers(26))) if rng.random() < 0.6 else ""
    return Person(first=first, last=_pick(rng, _lexicon("last_names.txt")), middle_initial=middle,
                  sex=sex, title=title, credentials=credentials)


def _phone(rng: np.random.Generator, area: str) -> str:
    # 555-01xx is the range set aside for fiction; the rest of the number varies.
    return f"({area}) 555-{int(rng.integers(100, 200)):04d}"


def _street(rng: np.random.Generator) -> str:
    suffix = _pick(rng, ("Street", "Avenue", "Road", "Boulevard", "Lane", "Drive", "Court"))
    return f"{int(rng.integers(1, 9900))} {_pick(rng, _lexicon('streets.txt'))} {suffix}"


def _place(rng: np.random.Generator) -> tuple[str, str, str]:
    cities = _cities()
    city, state, prefix = cities[int(rng.integers(len(cities)))]
    return city, state, f"{prefix}{int(rng.integers(100)):02d}"


# The fixed character of each hospital: scanner look, report style, ID formats, demographic
# mix (sex, age, and the share of population group g2, which differs between sites as a
# catchment area's population does). Staff, addresses and phone numbers are drawn from the cohort seed.
_SITE_PROFILES: tuple[dict, ...] = (
    dict(code="site_a", name="St. Aldric Medical Center", short_name="ST ALDRIC MC",
         domain="staldric.org", report_style="a", modality="DX", photometric="MONOCHROME2",
         bits_stored=12, manufacturer="Lumora Imaging", model_name="DRX Vista 2",
         mrn_format="#######", accession_format="ACC########", uid_root="1.2.826.0.1.3680043.8.498.71.1",
         gamma=1.0, noise=0.010, blur=0.6, edge_enhance=0.3, collimation=False,
         female_fraction=0.5, age_mean=63.0, age_sd=14.0, burn_in_rate=0.35,
         group2_fraction=0.15, area="617"),
    dict(code="site_b", name="Riverside General Hospital", short_name="RIVERSIDE GH",
         domain="riverside-gh.org", report_style="b", modality="CR", photometric="MONOCHROME1",
         bits_stored=14, manufacturer="Corvane Medical", model_name="CR Plate 900",
         mrn_format="RG-######", accession_format="RGH####-####", uid_root="1.2.826.0.1.3680043.8.498.71.2",
         gamma=0.85, noise=0.018, blur=0.9, edge_enhance=0.0, collimation=True,
         female_fraction=0.62, age_mean=70.0, age_sd=13.0, burn_in_rate=0.5,
         group2_fraction=0.6, area="312"),
    dict(code="site_c", name="Northfield University Hospital", short_name="NORTHFIELD UH",
         domain="northfield-uh.edu", report_style="c", modality="DX", photometric="MONOCHROME2",
         bits_stored=16, manufacturer="Halvek Systems", model_name="Axiom DR 5",
         mrn_format="@########", accession_format="NUH-##-######", uid_root="1.2.826.0.1.3680043.8.498.71.3",
         gamma=1.15, noise=0.007, blur=0.5, edge_enhance=0.6, collimation=False,
         female_fraction=0.4, age_mean=55.0, age_sd=16.0, burn_in_rate=0.25,
         group2_fraction=0.1, area="608"),
    dict(code="site_d", name="Lakeshore Community Hospital", short_name="LAKESHORE CH",
         domain="lakeshore-ch.org", report_style="a", modality="CR", photometric="MONOCHROME2",
         bits_stored=12, manufacturer="Corvane Medical", model_name="CR Plate 700",
         mrn_format="##-###-###", accession_format="LS#########", uid_root="1.2.826.0.1.3680043.8.498.71.4",
         gamma=0.95, noise=0.015, blur=0.8, edge_enhance=0.1, collimation=True,
         female_fraction=0.55, age_mean=66.0, age_sd=15.0, burn_in_rate=0.4,
         group2_fraction=0.45, area="503"),
    dict(code="site_e", name="Mercy Valley Clinic", short_name="MERCY VALLEY",
         domain="mercyvalley.org", report_style="b", modality="DX", photometric="MONOCHROME2",
         bits_stored=14, manufacturer="Lumora Imaging", model_name="DRX Vista 3",
         mrn_format="MV#######@", accession_format="MV-A-#######", uid_root="1.2.826.0.1.3680043.8.498.71.5",
         gamma=1.05, noise=0.012, blur=0.7, edge_enhance=0.4, collimation=False,
         female_fraction=0.48, age_mean=58.0, age_sd=17.0, burn_in_rate=0.3,
         group2_fraction=0.3, area="734"),
)

MAX_SITES = len(_SITE_PROFILES)


def make_sites(n: int, rng: np.random.Generator) -> list[Site]:
    """The first ``n`` hospitals, with staff and contact details drawn from ``rng``."""
    if not 1 <= n <= MAX_SITES:
        raise ValueError(f"the cohort knows {MAX_SITES} sites; asked for {n}")
    sites = []
    for profile in _SITE_PROFILES[:n]:
        profile = dict(profile)
        area = profile.pop("area")
        city, state, zip_code = _place(rng)
        sites.append(Site(
            street=_street(rng), city=city, state=state, zip_code=zip_code,
            phone=_phone(rng, area), fax=_phone(rng, area),
            station_name=f"{profile['short_name'].split()[0][:4]}-XR{int(rng.integers(1, 20)):02d}",
            device_serial=format_identifier("SN-####-@@##", rng),
            radiologists=tuple(make_person(rng, title="Dr.", credentials="MD") for _ in range(4)),
            referrers=tuple(make_person(rng, title="Dr.", credentials="MD") for _ in range(6)),
            technologists=tuple(make_person(rng, credentials="RT(R)") for _ in range(3)),
            **profile,
        ))
    return sites


#: Population groups, neutral names: ``g2`` patients differ from ``g1`` in their anatomy's
#: distributions (``anatomy.group_traits``), never in their findings.
GROUPS: tuple[str, ...] = ("g1", "g2")


def draw_group(site: Site, rng: np.random.Generator) -> str:
    """A patient's population group, by the site's mix. The caller passes a stream of its
    own, so adding the group left every other draw of an existing seed as it was."""
    return "g2" if rng.random() < site.group2_fraction else "g1"


def make_patient(index: int, site: Site, rng: np.random.Generator, reference_date: dt.date,
                 group: str = "g1") -> tuple[Patient, int]:
    """A patient of ``site`` in population ``group`` and their age in years at
    ``reference_date`` (their first study)."""
    sex = "F" if rng.random() < site.female_fraction else "M"
    # A few very old patients so the cohort exercises the "ages over 89" rule.
    if rng.random() < 0.06:
        age = int(rng.integers(90, 99))
    else:
        age = int(np.clip(round(rng.normal(site.age_mean, site.age_sd)), 18, 89))
    birth = reference_date - dt.timedelta(days=int(age * 365.25 + rng.integers(0, 365)))
    person = make_person(rng, sex=sex)
    city, state, zip_code = _place(rng)
    height = float(rng.normal(1.63 if sex == "F" else 1.76, 0.07))
    bmi = float(np.clip(rng.normal(26.5, 4.5), 17.0, 42.0))
    patient = Patient(
        index=index, person=person, birth_date=birth,
        mrn=format_identifier(site.mrn_format, rng),
        ssn=f"{int(rng.integers(100, 899)):03d}-{int(rng.integers(10, 99)):02d}-"
            f"{int(rng.integers(1000, 9999)):04d}",
        phone=_phone(rng, site.phone[1:4]), street=_street(rng), city=city, state=state,
        zip_code=zip_code, height_m=round(height, 2), weight_kg=round(bmi * height * height, 1),
        group=group,
    )
    return patient, age


def age_group(age: int) -> str:
    """Coarse age bands used for subgroup (fairness) analysis."""
    if age < 40:
        return "18-39"
    if age < 65:
        return "40-64"
    if age < 90:
        return "65-89"
    return "90+"
