"""The large public lexicons behind the report de-identifier (``data/*.tsv``), loaded once.

``scripts/build-lexicons.py`` (``make lexicons``) writes them from pinned public packages:
1990 US Census names, GeoNames cities, US ZIP-code places and counties (PyPI), and an
English dictionary with a commonness class per word plus the proper nouns it lists only
capitalised, from SCOWL's American word lists (Debian's wamerican packages); each file's
``#`` header names its source, version and licence. Every key is case-folded like
``lexicons.fold``. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

_DATA = "updp_napari.deid.report.data"

FILES = {
    "first_names": "census_first_names.tsv",
    "surnames": "census_surnames.tsv",
    "us_places": "us_places.tsv",
    "world_cities": "world_cities.tsv",
    "dictionary": "english_dictionary.tsv",
    "proper": "english_proper.tsv",
}


@dataclass(frozen=True)
class PublicLexicons:
    first_names: dict[str, float]  # given name -> percent of the 1990 US population (of a sex)
    surnames: dict[str, float]  # surname -> percent of the 1990 US population
    us_places: dict[str, str]  # place or county name -> USPS state codes, comma-separated
    world_cities: frozenset[str]  # GeoNames cities outside the US, >= 15000 people
    dictionary: dict[str, int]  # lower-case English word -> 1 (common) .. 3 (rare): SCOWL size 35/50/70
    proper: frozenset[str]  # words SCOWL lists only capitalised (david, cooke), lower-cased


def read_rows(name: str) -> list[str]:
    """The data lines of ``data/name``: no ``#`` header lines, no blank lines."""
    text = resources.files(_DATA).joinpath(name).read_text(encoding="utf-8")
    return [line for line in text.split("\n") if line and line[0] != "#"]


def read_table(name: str) -> dict[str, str]:
    """``data/name`` as key -> value, from lines ``key<TAB>value``."""
    return dict(line.split("\t", 1) for line in read_rows(name))


def read_numbers(name: str) -> dict[str, float]:
    """``data/name`` as key -> number; equal numbers share one float object."""
    table = read_table(name)
    numbers = {text: float(text) for text in set(table.values())}
    return {key: numbers[text] for key, text in table.items()}


@cache
def public_lexicons() -> PublicLexicons:
    return PublicLexicons(
        first_names=read_numbers(FILES["first_names"]),
        surnames=read_numbers(FILES["surnames"]),
        us_places=read_table(FILES["us_places"]),
        world_cities=frozenset(read_table(FILES["world_cities"])),
        dictionary={word: int(rank) for word, rank in read_table(FILES["dictionary"]).items()},
        proper=frozenset(read_rows(FILES["proper"])),
    )
