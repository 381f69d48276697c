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


_TOKEN = re.compile(r"\S+")
_LEAD = "([{\"'“‘"
_TRAIL = ".,;:!?)]}\"'”’"


def _tokens(text: str) -> list[tuple[int, int, str]]:
    """Whitespace tokens without surrounding punctuation, as (start, end, core)."""
    out = []
    for m in _TOKEN.finditer(text):
        word = m.group()
        core = word.lstrip(_LEAD)
        start = m.start() + len(word) - len(core)
        stripped = core.rstrip(_TRAIL)
        # Keep the period of an abbreviation such as "St." when that is how the phrase is listed.
        out.append((start, start + len(stripped), stripped))
        if stripped != core and core.endswith("."):
            out.append((start, start + len(stripped) + 1, stripped + "."))
    return out


class PhraseMatcher:
    """Finds listed phrases as whole words, longest first, by word n-gram look-up.

    Much faster than one regular expression alternating over hundreds of phrases, and the
    cost grows with the text, not with the list.
    """

    def __init__(self, phrases: list[str], case_sensitive: bool = False):
        self.case_sensitive = case_sensitive
        self.phrases: set[str] = set()
        self.first_words: set[str] = set()
        self.longest = 0
        for phrase in phrases:
            words = [w.strip(_LEAD).rstrip(_TRAIL.replace(".", "")) for w in phrase.split()]
            if words and all(words):
                self.phrases.add(self._key(words))
                self.first_words.add(self._key(words[:1]))
                self.longest = max(self.longest, len(words))

    def _key(self, words: list[str]) -> str:
        joined = " ".join(words)
        return joined if self.case_sensitive else fold(joined)

    def find(self, text: str) -> list[tuple[int, int]]:
        if not self.phrases:
            return []
        toks = _tokens(text)
        keys = [t[2] if self.case_sensitive else fold(t[2]) for t in toks]
        found: list[tuple[int, int]] = []
        i = 0
        while i < len(toks):
            hit = None
            if keys[i] in self.first_words:
                for n in range(min(self.longest, len(toks) - i), 0, -1):
                    if " ".join(keys[i:i + n]) in self.phrases:
                        hit = (toks[i][0], toks[i + n - 1][1])
                        break
            if hit:
                found.append(hit)
                # Skip past the match (alternate tokens for "St." share a start).
                while i < len(toks) and toks[i][0] < hit[1]:
                    i += 1
            else:
                i += 1
        return found

