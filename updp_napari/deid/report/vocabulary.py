"""Word classes for telling names and places from clinical language.

Built once from the public lexicons (census names, places, an English dictionary with a
commonness class per word) and the package's own clinical vocabulary and the abbreviations
of its pathology whitelist. Standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache, cached_property

from .lexicons import SINGLE_LETTERS, PhraseMatcher, default_lexicons, fold, read_list
from .public_lexicons import public_lexicons

# Function words and the words of charting that no name or place begins with.
_STOP = frozenset({
    "a", "an", "the", "and", "or", "but", "if", "of", "in", "on", "at", "to", "for", "from", "by",
    "with", "w", "without", "into", "onto", "via", "per", "as", "is", "was", "are", "were", "be",
    "been", "being", "has", "had", "have", "will", "would", "can", "could", "may", "might",
    "should", "shall", "must", "did", "does", "do", "not", "no", "yes", "he", "she", "it", "they",
    "we", "i", "you", "his", "her", "their", "our", "my", "your", "him", "them", "me", "us",
    "this", "that", "these", "those", "who", "whom", "which", "what", "when", "where", "why",
    "how", "all", "any", "some", "each", "both", "other", "also", "very", "well", "then",
    "than", "there", "here", "today", "tonight", "yesterday", "tomorrow", "now", "pt", "pts",
    "patient", "patients", "family", "mr", "mrs", "ms", "dr", "drs", "am", "pm", "s", "o",
    "x", "c", "p", "re", "about", "after", "before", "over", "under", "up", "down", "out",
    "off", "again", "still", "just", "only", "even", "so", "too", "called", "aware", "in-law",
    "law", "step", "cont", "con't", "cont'd", "wants", "plan", "states", "stated", "reports",
    "reported", "says", "said", "feels", "felt", "asked", "requested", "expressed", "visited",
    "visiting", "phoned", "calls", "came", "went", "left", "arrived", "updated", "present",
    "during", "members", "member", "monday", "tuesday", "wednesday", "thursday",
    "friday", "saturday", "sunday", "mon", "tues", "wed", "thurs", "fri", "sat", "sun",
    # roles and field labels that follow names in signatures and headers
    "consultant", "radiologist", "physician", "technologist", "radiographer", "registrar",
    "surgeon", "resident", "attending", "intern", "department", "mrn", "dob", "sex", "acc",
    "accession", "ssn", "pid", "csn", "fin", "dos", "typed", "dictated", "signed",
    "transcribed", "verified", "age", "aged"})


# The shape of clinical words that no dictionary lists ("cardioversion", "nondistended",
# "azithromycin", "ectopy"): their endings and beginnings. A word of this shape is no name
# and no place unless a name lexicon lists it.
_CLINICAL_SHAPE = re.compile(
    r"(?:itis|osis|emia|aemia|ectomy|otomy|ostomy|plasty|scopy|graphy|gram|pathy|algia|ology"
    r"|ologist|opy|tion|sion|ated|ized|ised|ing|ness|ment|ity|ous|ive|ical|tic|ular|mycin"
    r"|cillin|olol|pril|sartan|statin|azole|floxacin|azepam|azolam|idine|amine|opine|oxone"
    r"|phylline|parin|plastin|emic|uria|pnea|pnoea|cardia|penia|cytosis|oma|omas|ectasis|trophy"
    r"|rrhea|rrhage|lysis|genic|ergic|ectomies|ers|ed|able|ible|ably|ly)$"
    r"|^(?:non|post|pre|hyper|hypo|peri|trans|intra|extra|sub|anti|tachy|brady|cardio|neuro"
    r"|gastro|pulmo|hemo|haemo|nephro|hepat|broncho|uro|osteo|myo|electro|echo|endo|re|un|dis"
    r"|mis|over|under)(?=[a-z]{4})", re.IGNORECASE)


_DRUG_SHAPE = re.compile(r"(?:mycin|cillin|olol|pril|sartan|statin|azole|floxacin|azepam|azolam|oxone"
                         r"|phylline|parin|dipine|tidine|prazole|triptan|dronate)$", re.IGNORECASE)


def clinical_shape(word: str) -> bool:
    return _CLINICAL_SHAPE.search(word) is not None


def drug_shape(word: str) -> bool:
    """Shaped like a drug's generic name ("esmolol", "vancomycin"); surnames seldom are."""
    return _DRUG_SHAPE.search(word) is not None


# A place that is also a surname this common (percent of the population) needs context.
SURNAME_PLACE = 0.0005


@dataclass(frozen=True)
class WordClasses:
    given: frozenset[str]  # census given names
    surnames: dict[str, float]  # census surnames -> percent of the population
    proper: frozenset[str]  # words the dictionary lists capitalised only (David, Cooke)
    dictionary: dict[str, int]  # lower-case English words -> commonness 1 (common) to 3 (rare)
    clinical: frozenset[str]  # clinical vocabulary and single pathology words: never PHI
    places: frozenset[str]  # single-word US places and world cities
    us_places: frozenset[str]  # single-word US places
    lone_given: frozenset[str]  # given names that are names and nothing else (found anywhere)
    lone_places: frozenset[str]  # US places that are places and nothing else (found anywhere)
    place_phrases: PhraseMatcher  # US places of several words ("San Diego", "Bel Air")
    institution_openers: dict[str, frozenset[str]]  # "sacred" -> {"heart"}: hospitals' names open so
    stop: frozenset[str]
    # Decisions about single words, kept across notes: (word, strength, cased) -> bool.
    decided: dict = field(default_factory=dict, compare=False, repr=False)

    def misspelt(self, word: str) -> bool:
        """Whether ``word`` (no dictionary word itself) is one letter away from a dictionary
        word of six letters or more: one dropped, added, changed or two swapped
        ("ARROUSABLE", "PERCAUTIONS", "tranplant")."""
        if len(word) < 6 or not word.isalpha():
            return False
        d = self.dictionary
        n = len(word)
        for i in range(n):
            if word[:i] + word[i + 1:] in d:
                return True
            if i + 1 < n and word[:i] + word[i + 1] + word[i] + word[i + 2:] in d:
                return True
        for i in range(n + 1):
            for c in SINGLE_LETTERS:
                if word[:i] + c + word[i:] in d or (i < n and word[:i] + c + word[i + 1:] in d):
                    return True
        return False

    @cached_property
    def institution_opener_words(self) -> frozenset[str]:
        """The first words of ``institution_openers``: a fixed set, so that a word index
        answers where they stand at once."""
        return frozenset(self.institution_openers)

    def commonness(self, word: str) -> int:
        """1 for everyday words, 2 for ordinary ones, 3 for rare ones, 4 for none."""
        return self.dictionary.get(word, 4)


def _word_pairs(phrases: list[str]) -> dict[str, frozenset[str]]:
    """Phrases of two words as first word -> the second words that may follow it (folded)."""
    pairs: dict[str, set[str]] = {}
    for phrase in phrases:
        first, second = fold(phrase).split()
        pairs.setdefault(first, set()).add(second)
    return {first: frozenset(seconds) for first, seconds in pairs.items()}


@cache
def word_classes() -> WordClasses:
    public = public_lexicons()
    lex = default_lexicons()
    # The pathology whitelist stays out: its eponyms are surnames too ("Dr. Murphy"), and it
    # protects its terms on its own.
    clinical = {fold(w) for w in read_list("clinical_words.txt")}
    # Its abbreviations are clinical words all the same ("to SVC", "AP").
    clinical |= {fold(t) for t in lex.whitelist if t.isupper() and " " not in t}
    us_places = frozenset(p for p in public.us_places if " " not in p)
    places = us_places | {p for p in public.world_cities if " " not in p}
    dictionary = public.dictionary
    given = frozenset(public.first_names) | lex.first_names
    surnames = {**dict.fromkeys(lex.last_names, 0.0), **public.surnames}
    # Words that are names or places and nothing else: no English word, no clinical or stop
    # word; a place also no given name nor a common surname ("Foley", "Muir").
    plain = {w for w in given | us_places if w not in dictionary and w not in clinical and w not in _STOP}
    lone_given = frozenset(w for w in plain & given if len(w) >= 3)
    lone_places = frozenset(w for w in plain & us_places if len(w) > 3 and w not in given
                            and surnames.get(w, 0.0) < SURNAME_PLACE)
    return WordClasses(
        given=given,
        surnames=surnames,
        proper=public.proper,
        dictionary=public.dictionary,
        clinical=frozenset(clinical),
        places=frozenset(places),
        us_places=us_places,
        lone_given=lone_given,
        lone_places=lone_places,
        place_phrases=PhraseMatcher([p for p in public.us_places if " " in p]),
        institution_openers=_word_pairs(read_list("institution_openers.txt")),
        stop=_STOP,
    )
