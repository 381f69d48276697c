"""The plain-data lists behind the report de-identifier (``data/*.txt``), loaded once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache, cached_property
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

    @cached_property
    def state_codes(self) -> frozenset[str]:
        """The two-letter codes of the states, folded ("md", "ga")."""
        return frozenset(key for key in self.states if len(key) == 2)

    @cached_property
    def first_name_set(self) -> frozenset[str]:
        """``first_names`` as a fixed set (what a word index looks words up in)."""
        return frozenset(self.first_names)

    @cached_property
    def city_first_words(self) -> frozenset[str]:
        return first_words(self.cities)

    @cached_property
    def first_name_heads(self) -> frozenset[str]:
        """The first word of first names written with a hyphen or apostrophe (Mary-Jane)."""
        return frozenset(m.group() for name in self.first_names
                         if not name.isalpha() and (m := _WORD.match(name)))

    @cached_property
    def city_last_words(self) -> frozenset[str]:
        return frozenset(city.split()[-1].strip(".") for city in self.cities)

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


_LEAD = "([{\"'“‘"
_TRAIL = ".,;:!?)]}\"'”’"
_WORD = re.compile(r"\w+")
_ASCII_WORD = re.compile(r"\w+", re.ASCII)
_SPACE = re.compile(r"\s+")

Word = tuple[int, int, str]  # start, end, lower case
#: The words of one letter, as the word index holds them (initials: "W. MAROTTA").
SINGLE_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyz")


def cut_words(text: str) -> list[Word]:
    """``text``'s words (runs of letters and digits) as (start, end, lower case)."""
    lowered = text.lower()
    if len(lowered) == len(text):  # the same offsets: cut the lower-case text itself
        # ASCII text is cut by the ASCII pattern: the same words, found in two thirds of the time.
        word = _ASCII_WORD if lowered.isascii() else _WORD
        return [(m.start(), m.end(), m[0]) for m in word.finditer(lowered)]
    return [(m.start(), m.end(), m[0].lower()) for m in _WORD.finditer(text)]


class _WordSets:
    """The fixed word sets that rules look words up in, and for each word the sets it is in.

    A text's index then knows, from one look-up per distinct word, where the words of every
    such set stand: a set intersection per rule and text costs more than that. Only
    frozensets are kept (they cannot change under the memo); a set first asked for after an
    index was made is looked up the ordinary way in that index, and kept for the next one.
    The sets are held (so their ids stay theirs) up to ``MAX_SETS``; then the registry begins
    again with the sets asked for from there on.
    """

    __slots__ = ("sets", "bit", "memo")
    MAX_SETS = 60
    MAX_WORDS = 100_000  # about 12 MB of memo at most (120 bytes a word)

    def __init__(self, sets: tuple = ()):
        self.sets = sets
        self.bit = {id(s): b for b, s in enumerate(sets)}
        self.memo: dict[str, tuple[int, ...]] = {}

    def of(self, word: str) -> tuple[int, ...]:
        """The sets ``word`` is in (their numbers), worked out once per word."""
        found = self.memo.get(word)
        if found is None:
            if len(self.memo) >= self.MAX_WORDS:
                self.memo = {}
            found = self.memo[word] = tuple(b for b, s in enumerate(self.sets) if word in s)
        return found


_word_sets = _WordSets()


def _keep_set(wanted: frozenset) -> None:
    """Add ``wanted`` to the sets the next indexes are made with (a new registry, so that an
    index being made meanwhile keeps the one it began with)."""
    global _word_sets
    current = _word_sets
    if id(wanted) not in current.bit:
        # Full (sets of rules made and dropped, one process after another): begin again.
        kept = current.sets if len(current.sets) < _WordSets.MAX_SETS else ()
        _word_sets = _WordSets((*kept, wanted))


@dataclass
class WordIndex:
    """Where each word of a text stands, so that a rule visits only the words that can begin
    it instead of every word of the text."""

    words: list[Word]  # the text's words, in order
    numbers: list[Word]  # words that begin with a digit, in order
    mixed: list[Word]  # letters joined to digits ("s46898769", "mrn12345"), in order
    # The word sets known when the index was made, and per set the positions in ``words`` of
    # its words (words that begin with a digit aside), in order.
    sets: _WordSets | None = None
    in_set: list[list[int]] | None = None

    @cached_property
    def lower(self) -> list[str]:
        """The lower-case words alone, in order (made when first asked for)."""
        return [w for _, _, w in self.words]

    @cached_property
    def at(self) -> dict[str, list[int]]:
        """Lower-case word (letters first) -> its positions in ``words`` (made when first
        asked for: the rules' fixed sets are answered from ``in_set``)."""
        at: dict[str, list[int]] = {}
        for i, word in enumerate(self.lower):
            if not word[0].isdigit():
                places = at.get(word)
                if places is None:
                    at[word] = [i]
                else:
                    places.append(i)
        return at

    def positions(self, wanted) -> list[int]:
        """Positions in ``words`` of every occurrence of the words of ``wanted``, in order
        (words that begin with a digit are never found). The list may be the index's own:
        do not change it."""
        if type(wanted) is frozenset:
            sets = self.sets
            bit = sets.bit.get(id(wanted)) if sets is not None else None
            if bit is not None and sets.sets[bit] is wanted:
                return self.in_set[bit]
            _keep_set(wanted)
        if "at" not in self.__dict__ and len(wanted) <= 16:
            # A few words (a note's own names): one pass over the words costs less than
            # building the whole map of them.
            return [i for i, w in enumerate(self.lower) if w in wanted and not w[0].isdigit()]
        at = self.at
        # Intersect on the smaller side, in C: a note has a few hundred distinct words, a
        # lexicon thousands.
        if isinstance(wanted, dict):
            keys = at.keys() & wanted.keys()
        elif len(at) <= len(wanted):
            keys = wanted.intersection(at)
        else:
            keys = at.keys() & wanted
        if len(keys) == 1:
            return at[next(iter(keys))]
        found: list[int] = []
        for key in keys:
            found += at[key]
        found.sort()
        return found

    def hits(self, wanted) -> list[Word]:
        """(start, end, word) of every occurrence of the words of ``wanted``, in order."""
        words = self.words
        return [words[i] for i in self.positions(wanted)]


def index_words(words: list[Word]) -> WordIndex:
    numbers: list[Word] = []
    mixed: list[Word] = []
    sets = _word_sets
    in_set: list[list[int]] = [[] for _ in sets.sets]
    known = sets.memo.get
    for i, item in enumerate(words):
        word = item[2]
        if word[0].isdigit():
            numbers.append(item)
            continue
        if not word.isalpha():
            mixed.append(item)
        of = known(word)
        if of is None:
            of = sets.of(word)
        for bit in of:
            in_set[bit].append(i)
    return WordIndex(words, numbers, mixed, sets, in_set)


def first_words(phrases) -> frozenset[str]:
    """The folded first word (letters and digits) of each phrase: where a look-up can start."""
    return frozenset(m.group() for p in phrases if (m := _WORD.match(fold(p))))


def _gap(between: str) -> str:
    """What stands between two words of a phrase, spacing normalised ("St. Jude", "f/u")."""
    return " " if between.isspace() else _SPACE.sub(" ", between).replace("’", "'")


def _whole_token(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is whole between spaces, but for punctuation around it.

    "Graves" in "Smith-Graves" is not a phrase of its own; "(Graves)" and "Graves," are.
    """
    k = start
    while k > 0 and not text[k - 1].isspace():
        if text[k - 1] not in _LEAD:
            return False
        k -= 1
    k = end
    while k < len(text) and not text[k].isspace():
        if text[k] not in _TRAIL:
            return False
        k += 1
    return True


class _WrittenKeys:
    """The words of a word list as ``text`` writes them, cut where needed."""

    __slots__ = ("text", "words")

    def __init__(self, text: str, words: list[Word]):
        self.text, self.words = text, words

    def __getitem__(self, i: int) -> str:
        start, end, _ = self.words[i]
        return self.text[start:end]


class PhraseMatcher:
    """Finds listed phrases as whole words, longest first, by walking word prefixes.

    Much faster than one regular expression alternating over hundreds of phrases, and the
    cost grows with the text, not with the list. Words are compared in lower case (or as
    written, for abbreviations), and what stands between them must be what the phrase has,
    up to spacing: "Swan-Ganz" is not "Swan Ganz".
    """

    def __init__(self, phrases: list[str], case_sensitive: bool = False):
        self.case_sensitive = case_sensitive
        self.phrases: dict[str, str] = {}  # key -> punctuation it must end with ("St.")
        self.prefixes: set[str] = set()  # keys that some longer phrase continues
        self.first_words: set[str] = set()
        self.first_lower: set[str] = set()  # the first words in lower case, as an index holds them
        self._seconds: dict[str, set[str]] = {}  # first word -> the words that follow it
        for phrase in phrases:
            parts = list(_WORD.finditer(phrase))
            if not parts:
                continue
            key = self._norm(parts[0].group())
            self.first_words.add(key)
            self.first_lower.add(key.lower())
            if len(parts) > 1:
                self._seconds.setdefault(key, set()).add(self._norm(parts[1].group()))
            for prev, m in zip(parts, parts[1:]):
                self.prefixes.add(key)
                key += _gap(phrase[prev.end():m.start()]) + self._norm(m.group())
            tail = phrase[parts[-1].end():].strip()
            # The same words listed with and without a closing full stop: the looser wins.
            self.phrases[key] = "" if self.phrases.get(key) == "" else tail
        # Fixed from here on: an index keeps where the words of fixed sets stand.
        self.first_words, self.first_lower = frozenset(self.first_words), frozenset(self.first_lower)
        # One look-up per step of the walk: key -> (its phrase's closing punctuation or None
        # when no phrase ends there, whether a longer phrase continues it).
        self._steps = {key: (self.phrases.get(key), key in self.prefixes)
                       for key in self.phrases.keys() | self.prefixes}

    def _norm(self, word: str) -> str:
        return word if self.case_sensitive else word.lower()

    def find(self, text: str, words: list[Word] | None = None,
             index: WordIndex | None = None) -> list[tuple[int, int]]:
        if not self.phrases:
            return []
        words = words if words is not None else cut_words(text)
        first = self.first_words
        if self.case_sensitive:
            keys = _WrittenKeys(text, words)
            starts = index.positions(self.first_lower) if index is not None else range(len(words))
            starts = [i for i in starts if keys[i] in first]
        else:
            keys = index.lower if index is not None else [w for _, _, w in words]
            starts = index.positions(first) if index is not None else \
                [i for i, (_, _, k) in enumerate(words) if k in first]
        found: list[tuple[int, int]] = []
        skip_to = -1
        steps = self._steps
        last = len(words) - 1
        for i in starts:
            start = words[i][0]
            if start < skip_to:
                continue
            best, key, j = None, keys[i], i
            # A first word that is no phrase of its own needs one of its second words next.
            if steps[key][0] is None and (i >= last or keys[i + 1] not in self._seconds[key]):
                continue
            while (step := steps.get(key)) is not None:
                tail, more = step
                if tail is not None:
                    end = words[j][1]
                    if not tail:
                        if _whole_token(text, start, end):
                            best = end
                    elif text.startswith(tail, end) and _whole_token(text, start, end + len(tail)):
                        best = end + len(tail)
                if not more or j >= last:
                    break
                between = text[words[j][1]:words[j + 1][0]]
                key += (" " if between == " " else _gap(between)) + keys[j + 1]
                j += 1
            if best is not None:
                found.append((start, best))
                skip_to = best
        return found
