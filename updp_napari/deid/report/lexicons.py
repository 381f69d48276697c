"""The plain-data lists behind the report de-identifier (``data/*.txt``), loaded once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

_DATA = "updp_napari.deid.report.data"


def read_list(name: str) -> list[str]:
    text = resources.files(_DATA).joinpath(name).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def fold(word: str) -> str:
    """Case- and apostrophe-insensitive key for lexicon look-ups."""
    return word.casefold().replace("’", "'")


@dataclass
class Lexicons:
    first_names: set[str] = field(default_factory=set)
    last_names: set[str] = field(default_factory=set)
    ambiguous: set[str] = field(default_factory=set)
    states: dict[str, str] = field(default_factory=dict)  # folded name or code -> code
    cities: set[str] = field(default_factory=set)
    institution_words: list[str] = field(default_factory=list)
    whitelist: list[str] = field(default_factory=list)

    def is_name_word(self, word: str) -> bool:
        key = fold(word)
        return key in self.first_names or key in self.last_names

    def copy(self) -> Lexicons:
        return Lexicons(set(self.first_names), set(self.last_names), set(self.ambiguous),
                        dict(self.states), set(self.cities), list(self.institution_words),
                        list(self.whitelist))


@cache
def default_lexicons() -> Lexicons:
    states: dict[str, str] = {}
    for line in read_list("us_states.txt"):
        name, _, code = line.partition("\t")
        states[fold(name.strip())] = code.strip()
        states[fold(code.strip())] = code.strip()
    return Lexicons(
        first_names={fold(w) for w in read_list("first_names.txt")},
        last_names={fold(w) for w in read_list("last_names.txt")},
        ambiguous={fold(w) for w in read_list("ambiguous_names.txt")},
        states=states,
        cities={fold(w) for w in read_list("cities.txt")},
        institution_words=read_list("institution_words.txt"),
        whitelist=read_list("whitelist_terms.txt"),
    )


def phrase_pattern(phrases: list[str], flags: int = re.IGNORECASE) -> re.Pattern | None:
    """One alternation matching any phrase as whole words, longest first."""
    if not phrases:
        return None
    body = "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in sorted(set(phrases), key=len,
                                                                      reverse=True))
    return re.compile(rf"(?<![\w-])(?:{body})(?![\w-])", flags)
