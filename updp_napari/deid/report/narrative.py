"""Names and places in clinical narrative, found by the company they keep.

Real notes name people where a radiology report template would not: relatives ("son Bill
called", "daughter Grace of Reisterstown"), staff before a credential or a verb of the ward
("EARL N. RAND, RRT", "W. MAROTTA AWARE", "per Dr.ayoub"), places after words of moving and
living ("transferred to Quartermain 3", "lives in catonsville", "REFERRED TO GH"). Whether a
word there is a name is decided by word classes (``WordClasses``): census given names and
surnames, a general English dictionary, a clinical vocabulary and US and world place names.
A word in a dictionary ("Will", "Grace", "Harbor") counts as a name only in strong context;
a word no dictionary knows ("Przybylo", "Quartermain") counts wherever context points at a
person or a place; clinical vocabulary ("OOB", "MICU", "Foley") never does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ...core.spans import Span
from .lexicons import SINGLE_LETTERS, cut_words, index_words
from .vocabulary import WordClasses, clinical_shape, drug_shape, word_classes

# Relatives and others close to the patient, before their name ("son Bill", "DTR SUZETTE").
_RELATIONS = frozenset({
    "son", "sons", "daughter", "daughters", "dtr", "dtrs", "dau", "wife", "husband", "hus", "hsb",
    "spouse", "partner", "sister", "sisters", "sis", "brother", "brothers", "bro", "mother", "mom",
    "mum", "father", "dad", "friend", "friends", "neighbor", "neighbour", "niece", "nephew", "aunt",
    "uncle", "cousin", "grandson", "granddaughter", "grandaughter", "grandchild", "grandmother",
    "grandfather", "stepson", "stepdaughter", "girlfriend", "boyfriend", "fiance", "fiancee",
    "guardian", "proxy", "hcp", "sibling", "in-law", "law", "wife's", "husband's", "carer",
    "caregiver", "nieces", "nephews", "fiancé", "fiancée", "roommate", "housemate", "flatmate",
    "godson", "goddaughter", "stepmother", "stepfather",
    # and as they are often misspelt
    "neice", "neices"})
# What may stand between a relation and the name: "son, Bill", "wife(?) Joellen", "HCP is Ann".
_RELATION_GAP = re.compile(r"(?!['’]s)(?:\s*\((?:\?|hcp|proxy|nok|poa|guardian|hcp/proxy)\))?"
                           r"(?:\s+of\s+\d{1,2}\s+(?:years|yrs)\b)?"  # "wife of 70 years, Isolde"
                           r"(?:\s*[,:=-]+\s*|\s+(?:is|named|name|-)\s+|[ \t]*\([ \t]*|\s+)", re.IGNORECASE)
# Verbs after a person of the ward: "W. MAROTTA AWARE", "Dr. Griffin and Swackhamer aware".
_AFTER_PERSON = frozenset({"aware", "notified", "paged", "called", "updated", "informed",
                           "consulted", "contacted", "spoke", "visited", "visiting", "phoned"})
# Words before a person: "spoke with", "per", "d/w", "met with", "work with", "by".
_BEFORE_PERSON = re.compile(
    r"\b(?:spoke\s+(?:with|to)|talked\s+(?:with|to)|met\s+(?:with|w/?)|work(?:ing|ed)?\s+with"
    r"|consult(?:ed)?\s+with|discussed\s+with|d/w|per|paged|called|notified|reported\s+to"
    r"|seen\s+by|evaluated\s+by|examined\s+by|contact(?:ed)?|updated|update|informed)"
    r"(?![A-Za-z])[ \t]*(?:(?:dr\.?|md|np|rn)[ \t]*)?", re.IGNORECASE)
_CREDENTIALS = frozenset({
    "md", "do", "rn", "rrt", "crt", "rt", "np", "pa", "pa-c", "lpn", "cna", "crna", "cns", "aprn",
    "fnp", "pharmd", "rph", "licsw", "lcsw", "msw", "sw", "slp", "ot", "otr", "dpt", "rd",
    "ccc", "bsn", "msn", "emt", "cm", "rncm", "phd", "cwocn", "wocn", "cwon", "ccrn", "cnm",
    "dnp", "rdn", "cota", "pta", "rgn", "rmn", "rscn", "rm"})
# Roles before a name: "CASEWORKER LEONA LABOWICH", "interpreter Ana".
_ROLES = frozenset({"caseworker", "worker", "nurse", "chaplain", "physician", "physicians",
                    "surgeon", "therapist", "nutritionist", "dietitian", "dietician",
                    "pharmacist", "coordinator", "interpreter", "translator", "manager",
                    "attending", "resident", "intern", "fellow", "np", "rn", "crna", "rrt", "slp",
                    # the roles written short that are words of the chart too, before a name in
                    # brackets only
                    "rt", "pt", "ot", "sw", "cm"})
_BRACKET_ROLES = frozenset({"rt", "pt", "ot", "sw", "cm"})
# Labels of a phone number after a name: "Lopie Certusi cell# 410-…".
_PHONE_LABEL = re.compile(r"[ \t]*\b(?:cell|home|work|phone|tel|ph|mobile|pager|beeper)\b"
                          r"[ \t]*(?:#|no\.?|:)?[ \t]*:?[ \t]*\(?\d", re.IGNORECASE)
# The words each phrase rule can begin with: the rule is tried only where one stands.
_PHONE_LABEL_WORDS = frozenset({"cell", "home", "work", "phone", "tel", "ph", "mobile", "pager", "beeper"})
_BEFORE_PERSON_WORDS = frozenset({
    "spoke", "talked", "met", "work", "working", "worked", "consult", "consulted", "discussed", "d",
    "per", "paged", "called", "notified", "reported", "seen", "evaluated", "examined",
    "contact", "contacted", "updated", "update", "informed"})
_TITLE_WORDS = frozenset({"dr", "drs", "doctor", "mr", "mrs", "ms", "miss"})
_MOVE_WORDS = frozenset({
    "transfer", "transferred", "transfered", "transferring", "trans", "tx", "sent", "admitted",
    "admit", "referred", "arrived", "went", "came", "come", "coming", "taken", "brought",
    "presented", "returned", "return", "discharged", "discharge", "d", "accepted", "followed",
    "medflighted", "flown", "transported", "screened", "go", "going", "slated", "back", "lives",
    "living", "lived", "resides", "residing", "resided", "reside", "live", "born", "vacation",
    "vacationing", "stays", "staying", "home", "rehab", "bed", "cath", "surgery", "admission",
    "stay", "care", "from", "to", "at"})
_SURE_CREDENTIALS = frozenset({"rrt", "crt", "rn", "np", "lpn", "crna", "licsw", "lcsw", "msw",
                               "pharmd", "rph", "aprn", "fnp", "rgn", "rmn", "rscn"})
# (A full stop after a title written out ends its sentence: "Thank you, doctor. Seen today.")
_TITLE = re.compile(r"\b(?:(?:dr|drs|dr's|drs\.|mr|mrs|ms)(?:\.[ \t]*|[ \t]+)|(?:doctor|miss)[ \t]+)",
                    re.IGNORECASE)
# Particles of surnames ("van der Berg", "de la Cruz", "von Essen"): inside a name, in any case.
PARTICLES = frozenset({"van", "von", "der", "den", "de", "del", "della", "dela", "di", "da", "du",
                       "la", "le", "ter", "ten", "dos", "das", "des"})
# Quotes that may open a name: straight or curly, single or double, guillemets.
OPEN_QUOTES = frozenset("\"'\u201c\u201d\u201e\u2018\u2019\u201a\u00ab\u00bb\u2039\u203a")
# Letters of any alphabet ("MÜLLER, JOSÉ"), not digits or underscores.
_INITIAL = re.compile(r"\b([^\W\d_])\.[ \t]*(?=[^\W\d_])")
_TOKEN = re.compile(r"(?<!\w)[^\W\d_][^\W\d_'’]*(?:['’][^\W\d_]+)*(?:-[^\W\d_][^\W\d_'’]*)*(?!\d)")
_LIST_JOIN = re.compile(r"[ \t]*(?:,[ \t]*(?:and[ \t]+|&[ \t]*)?|[ \t]+(?:and|&)[ \t]+|&[ \t]*|/)",
                        re.IGNORECASE)

# Words of moving and living before a place ("transferred to", "lives in", "sent to").
_MOVE = re.compile(
    r"\b(?:transfer(?:r?ed|ring)?(?=[ \t]+(?!(?:to|from|at|into)\b)(?-i:[A-Z]))"
    r"|(?:transfer(?:r?ed|ring)?|trans|tx'?d?|sent|admitted|admit|referred|arrived|went|came|come|coming"
    r"|taken|brought|presented|returned|return|discharged?|d/c'?d|accepted|followed|medflighted"
    r"|flown|transported|screened|go(?:ing)?|slated|back)"
    r"(?:[ \t]+(?:back|here|over|directly|initially|later|today|yesterday|emergently))?"
    r"[ \t]+(?:to|from|at|into|in|by|via|@)"
    r"|(?:lives|living|lived|resides|residing|resided|reside|live|born|vacation(?:ing)?|stays|staying|home)"
    r"[ \t]+(?:in|at|near|on)"
    r"|(?:rehab|bed|cath|surgery|admission|stay|care)[ \t]+(?:at|@|in)"
    r"|(?:from|to|at|@)(?=[ \t]+(?:the[ \t]+)?(?:(?-i:[A-Z])|(?-i:[a-z]{1,2}h)\b|(?-i:[a-z]{4,})[ \t]?\d)))"
    r"[ \t]+(?:the[ \t]+)?",
    re.IGNORECASE)
# Words that end a place's name and make it an institution ("Sacred Heart hospital").
_INSTITUTION_TAIL = frozenset({
    "hospital", "hosp", "hospitals", "rehab", "rehabilitation", "medical", "center", "centre",
    "clinic", "regional", "memorial", "general", "house", "manor", "health",
    "healthcare", "infirmary", "institute", "university", "univ", "square", "hospice"})
# A saint's name begins an institution ("St. Agnes"); "ST elevation" is no saint.
# Words before "hospital" that name no institution ("the outside hospital").
_GENERIC = frozenset({"outside", "other", "local", "community", "another", "previous", "prior",
                      "same", "different", "current", "new", "old", "referring", "private",
                      "nearby", "area", "psychiatric", "psych", "veterans", "teaching", "home",
                      "state", "county", "city", "their", "his", "her", "general", "acute",
                      "chronic", "long", "term", "day", "sending", "receiving", "admitting"})
_INITIAL_BEFORE = re.compile(r"(?<![\w.])[^\W\d_]\.[ \t]*\Z")
_SURNAME_COMMA_BEFORE = re.compile(r"(?<![\w'’-])([^\W\d_][\w'’-]+),[ \t]*\Z")
# A word, or an initial (not the last letter of a word before a full stop: "clear. Ann").
# (A hyphen may stand before it as a dash does: "--hyacinth d. rn".)
_WORD_AT_END = re.compile(r"(?<![\w'’])(?<!\w-)(?:[^\W\d_]\.|[^\W\d_][^\W\d_'’]*(?:-[^\W\d_][^\W\d_'’]*)*)\Z")
# What must follow a bare "to", "at", "from" for it to be tried as a place (checked cheaply
# before the whole rule: these are the commonest words of notes).
_BARE_NEXT = re.compile(r"[ \t]+(?:(?i:the)[ \t]+)?(?:[A-Z]|[a-z]{1,2}h\b|[a-z]{4,}[ \t]?\d{1,2}\b)")
_WARD_TOKEN = re.compile(r"([A-Za-z]{4,})\d{1,2}[A-Za-z]?\b")
# The shape of hospitals' abbreviations: "GH", "MGH", "GBMC", "UH" (lab tests of the same
# shape, "TSH", "LDH", are in the clinical vocabulary).
_HOSPITAL_ABBREVIATION = re.compile(r"\b(?:[A-Z]{1,3}(?:H|MC|HC)|[a-z]{1,2}h)\b(?![/-])")
_SAINT_BEFORE = re.compile(r"\b(?:st\.?|saint)[ \t]{1,2}\Z", re.IGNORECASE)
_WARD_NUMBER = re.compile(r"[ \t]*\d{1,2}[A-Za-z]?\b")
_SAINT = re.compile(r"\b(?:st|saint)\b\.?[ \t]*(?=[A-Z])", re.IGNORECASE)


def skip_open_quote(text: str, pos: int) -> int:
    """``pos`` past an opening quote that stands before a letter: "“BRENNAN, Anna”"."""
    if text[pos:pos + 1] in OPEN_QUOTES and text[pos + 1:pos + 2].isalpha():
        return pos + 1
    return pos


def _case_informative(text: str) -> bool:
    """Whether capitals mean something here: not a note written all in capitals or all in
    lower case."""
    sample = text[:4000].encode("ascii", "ignore")  # letters A-Z and a-z are counted
    upper = len(sample) - len(sample.translate(None, _UPPER))
    lower = len(sample) - len(sample.translate(None, _LOWER))
    if not upper + lower:
        return False
    return 0.02 < upper / (upper + lower) < 0.5


_UPPER = bytes(range(ord("A"), ord("Z") + 1))
_LOWER = bytes(range(ord("a"), ord("z") + 1))


# Small patterns of the rules below, compiled once.
_HYPHENS = re.compile(r"-+")
_NEXT_WORD_WHOLE = re.compile(r"[ \t]{1,2}([^\W\d_][\w'’-]*[^\W\d_])\b")
_NEXT_WORD = re.compile(r"[ \t]{1,2}([^\W\d_][\w'’-]*[^\W\d_])")
_BLANKS = re.compile(r"[ \t]+")
_ROLE_GAP = re.compile(r"(?:[ \t]+in[ \t]+charge)?[ \t]*(?:[:,-][ \t]*|(\()[ \t]*)?")
_CLOSING_BRACKET = re.compile(r"[ \t]*\)")
_ONE_OR_TWO_BLANKS = re.compile(r"[ \t]{1,2}")
_LAST_WORD = re.compile(r"([A-Za-z]+)[ \t]*$")
_BLANKS_WORD = re.compile(r"[ \t]{1,2}([A-Za-z]+)")
_BLANKS_OR_HYPHEN = re.compile(r"[ \t]+|-")
_WORD_BEFORE_GAP = re.compile(r"([A-Za-z][A-Za-z'’-]*)(?:[ \t]{1,2}|-)$")
# How many decisions about single words are kept (a few MB) before they are forgotten.
_DECIDED_LIMIT = 100_000
# Short function words written in capitals, which no initials spell.
_NOT_INITIALS = frozenset({"on", "in", "at", "to", "of", "is", "by", "as", "or", "and", "the", "for", "was",
                           "has", "had", "not", "no", "re", "if", "it", "up", "so", "an", "be", "do", "did",
                           "are", "per", "via"})
# How strongly context points at a person, from nothing to a title of rank.
NONE, WEAK, STRONG, RELATION, TITLE = 0, 1, 2, 3, 4
_PLACE = -1  # the kept decisions of place_word, beside person_word's strengths


class Reader:
    """One note: its word classes and whether capitals tell proper names."""

    def __init__(self, text: str, classes: WordClasses | None = None, words=None, index=None):
        self.text = text
        self.wc = classes or word_classes()
        self.cased = _case_informative(text)
        self.words = words if words is not None else cut_words(text)
        self.index = index if index is not None else index_words(self.words)

    def plausible_place(self, start: int, end: int, tail_words: frozenset[str]) -> bool:
        """Whether ``text[start:end]``, found by its institution word, names one where capitals
        mean nothing: no stop or clinical word in it, and a word that names something."""
        if self.cased:
            return True
        words = [w.lower() for w in _TOKEN.findall(self.text, start, end)]
        named = [w for w in words if w not in tail_words]
        wc = self.wc
        return bool(named) and all(self.place_word(w) or w in wc.places or w in wc.surnames
                                   for w in named if len(w) > 1) and \
            any(w not in wc.dictionary or w in wc.places or w in wc.surnames for w in named)

    def plausible_name(self, start: int, end: int, strength: int) -> bool:
        """Whether ``text[start:end]``, found by another rule, reads as a name: its words
        (initials aside) can all be name words with the given strength of context."""
        return self.name_end(start, end, strength) == end

    def name_end(self, start: int, end: int, strength: int) -> int | None:
        """Where the name found by another rule in ``text[start:end]`` ends: after its last
        word of the words from the start that can be name words ("NP DJURIC MADE AWARE" is
        "DJURIC"), or None when not even the first can."""
        last, particle = None, False
        for m in _TOKEN.finditer(self.text, start, end):
            word = m.group()
            if last is not None and word.lower() in PARTICLES and "\n" not in self.text[last:m.end()]:
                particle = True  # "van der Berg": part of the name when a name word follows,
                continue  # capitalised where capitals mean something ("Moreau de novo")
            if len(word) > 1 and not self.person_word(word, strength) or \
                    last is not None and "\n" in self.text[last:m.start()] or \
                    particle and self.cased and not word[:1].isupper():
                break  # a name stands on one line
            last, particle = m.end(), False
        if last is not None and self.text[start:last].strip(" .").__len__() <= 1:
            return None  # a lone initial
        return last

    def person_word(self, word: str, strength: int) -> bool:
        """Whether ``word`` can be part of a person's name here, given how strongly context
        points at a person (``NONE`` … ``TITLE``)."""
        return self._kept((word, strength, self.cased), self._person_word, word, strength)

    def _kept(self, key: tuple, decide, *args) -> bool:
        """``decide(*args)``, kept across notes under ``key`` (which says what it depends on)."""
        decided = self.wc.decided
        answer = decided.get(key)
        if answer is None:
            if len(decided) >= _DECIDED_LIMIT:
                decided.clear()
            answer = decided[key] = decide(*args)
        return answer

    def _person_word(self, word: str, strength: int) -> bool:
        key = word.lower().replace("’", "'")
        if key.endswith("'s"):
            key = key[:-2]
        if "-" in key.strip("-"):
            # "Smith-Jones" is a name when its parts are; "DAUGHTER-DISCUSSED" is not.
            parts = [p for p in _HYPHENS.split(word) if p]
            return len(parts) > 1 and all(self.person_word(p, strength) for p in parts) and \
                any(p.lower() in self.wc.surnames or p.lower() in self.wc.given for p in parts)
        key = key.strip("-")
        if key in _RELATIONS:
            return False
        wc = self.wc
        capital = word[:1].isupper()
        if strength >= TITLE and word.isupper() and len(word) <= 3 and key not in _NOT_INITIALS:
            return True  # initials in a field ("Typed by: CC"), not a word ("PAGE DR ON 7-3340")
        if len(key) < 2:
            return False
        if key in wc.stop:
            # "Son Will at bedside": a given name written as one after a relation, where
            # capitals mean something.
            return strength >= RELATION and self.cased and capital and not word.isupper() and \
                key in wc.given
        if key in wc.clinical:
            # "Son, Ed": a given name written as one, where capitals mean something.
            if not (strength >= STRONG and self.cased and capital and not word.isupper() and key in wc.given):
                return False
        in_dictionary = key in wc.dictionary
        name = key in wc.given or key in wc.surnames or key in wc.proper
        if strength >= TITLE:
            # After "Dr." anything is a name, but a lower-case word that names nobody where
            # capitals mean something ("by Dr regarding eating"), or a word shaped like a drug.
            if not in_dictionary and not name and drug_shape(key):
                return False
            return capital or not self.cased or not in_dictionary or name
        if self.cased and not capital and (strength < STRONG or not name):
            return False
        if not in_dictionary:
            # A word no dictionary knows: a name when a lexicon says so or context points at
            # one, unless it is shaped like clinical language ("cardioversion") or is a
            # dictionary word misspelt ("AROUSABLE" -> "ARROUSABLE").
            if name:
                return strength > NONE or capital or not self.cased
            # (After a relation or a role, a capitalised word where capitals mean something is
            # taken for a name even one letter off an English word: "Interpreter Farhad".)
            if clinical_shape(key) or wc.misspelt(key) and not (
                    strength >= RELATION and self.cased and capital and not word.isupper()):
                return False
            if self.cased:
                return capital and strength > NONE
            return strength >= STRONG or (strength == WEAK and len(key) >= 4)
        if not name:
            # A capitalised word that is no everyday one, where capitals mean something.
            return strength >= RELATION and self.cased and capital and wc.commonness(key) >= 2
        if strength >= RELATION:
            # "son bill", but not "Husband works at home": where capitals mean something, an
            # everyday word written in lower case is that word.
            return not (self.cased and not capital and wc.commonness(key) <= 1)
        if strength == STRONG:
            return (capital and self.cased) or wc.commonness(key) >= 2
        if strength == WEAK:
            return wc.commonness(key) >= 3 and (capital or not self.cased)
        return False

    def given_and_surname(self, m: re.Match) -> bool:
        """Whether the word matched by ``m`` is a given name followed, a space or two away,
        by a surname that is no dictionary word: the pair reads as a person's name whatever
        the first word also means."""
        wc = self.wc
        first = m.group()
        if first.lower() not in wc.given or first.lower() in wc.clinical or first.lower() in _RELATIONS or \
                (self.cased and not first[:1].isupper()):
            return False
        nxt = _NEXT_WORD_WHOLE.match(self.text[m.end():m.end() + 40])
        if not nxt:
            return False
        second = nxt.group(1)
        if self.cased and not second[:1].isupper():
            return False
        # "Joy Abernathy-Lutz": a surname of two, each part one.
        keys = second.lower().split("-") if "-" in second else (second.lower(),)
        return all(key in wc.surnames and key not in wc.dictionary and key not in wc.clinical and
                   not clinical_shape(key) for key in keys if key)

    def place_word(self, word: str) -> bool:
        """Whether ``word`` can be part of a place's name here."""
        return self._kept((word, _PLACE, self.cased), self._place_word, word)

    def _place_word(self, word: str) -> bool:
        key = word.lower()
        wc = self.wc
        if _owned_by_person(key, wc):
            return False  # "pt's brother's house"
        if key in wc.stop or key in wc.clinical or key in _RELATIONS or \
                (clinical_shape(key) and key not in wc.places and key not in wc.surnames):
            return False
        if self.cased:
            return word[:1].isupper() or key not in wc.dictionary
        return key not in wc.dictionary


def _owned_by_person(key: str, wc: WordClasses) -> bool:
    """Whether ``key`` (lower case) is a possessive of a relation or a pronoun ("brother's",
    "pt's"): what it owns ("… house") is no institution and no place's name."""
    return key.endswith(("'s", "’s")) and (key[:-2] in _RELATIONS or key[:-2] in wc.stop)


def detect_narrative(text: str, ctx) -> Iterator[Span]:
    """Relatives, staff and places in the narrative of clinical notes."""
    reader = ctx.reader(text)
    wc = reader.wc
    text = reader.text
    # Only the words that can point at something are visited (a set intersection); the
    # phrases they begin are then matched there.
    index = reader.index
    for start, end, _ in index.hits(SINGLE_LETTERS):
        if text.startswith(".", end):
            yield from _initial(reader, start, end)
    for start, end, key in index.hits(_CUE_WORDS):
        for cue in _WORD_CUES[key]:
            yield from cue(reader, start, end, key)
    for start, end, _ in index.hits(wc.lone_given):
        yield from _given_name(reader, start, end)
    for start, end, _ in index.hits(wc.lone_places):
        if not reader.cased or text[start].isupper():
            yield Span(start, end, "CITY", "lexicon:place", 0.7)
    yield from _relatives_after(reader)
    yield from _places(reader)
    yield from _institution_openers(reader)


def _given_name(reader: Reader, start: int, end: int) -> Iterator[Span]:
    """A given name that is no English word ("Suzette", "LUCY", "Gerry Masci"), with the
    surname after it, wherever it stands."""
    text = reader.text
    word = text[start:end]
    if reader.cased and not word[:1].isupper():
        return
    m = _TOKEN.match(text, start)
    if m is None or m.end() != end:
        return
    nxt = _NEXT_WORD.match(text[end:end + 40])  # a wider gap ends a field
    if nxt and reader.person_word(nxt.group(1), WEAK) and nxt.group(1)[:1].isupper() == word[:1].isupper():
        end += nxt.end()
    yield Span(start, end, "NAME", "lexicon:given-name", 0.7)
    # "Both Suzette and Hank": whoever is named beside a name is a person too.
    j = _LIST_JOIN.match(text, end)
    if j:
        for s, e in _name_run(reader, j.end(), STRONG):
            yield Span(s, e, "NAME", "lexicon:given-name", 0.7)


def _name_run(reader: Reader, pos: int, strength: int, limit: int = 3,
              lists: bool = False) -> list[tuple[int, int]]:
    """Name tokens from ``pos`` (initials included), and, with ``lists``, "X, Y and Z"."""
    text = reader.text
    runs: list[tuple[int, int]] = []
    pos = skip_open_quote(text, pos)  # "Dr. “Abigail Ellison”"
    start, end, count = pos, pos, 0
    i = pos
    while True:
        m = _INITIAL.match(text, i)
        if m and count < limit:
            end, i, count = m.end(1) + 1, m.end(), count + 1
            continue
        m = _TOKEN.match(text, i)
        # After a first name word, the next name-like word is its surname ("NP CAROL M"); a
        # given name that is also a word counts when a surname no dictionary knows follows
        # ("consult with patty hoeller").
        if m and count < limit and (reader.person_word(m.group(), strength if count == 0 else
                                                      max(strength, RELATION))
                                    or count == 0 and reader.given_and_surname(m)):
            end, count = m.end(), count + 1
            gap = _BLANKS.match(text[end:end + 3])
            i = end + (gap.end() if gap else 0)
            if gap:
                continue
        # A lone initial is no name ("W."); a name of two letters is ("Son, Ed, was updated").
        if count and not (count == 1 and (end - start <= 1 or text[end - 1] == ".")):
            runs.append((start, end))
        if not lists or not count:
            return runs
        j = _LIST_JOIN.match(text, end)
        if not j:
            return runs
        start = i = j.end()
        end, count = start, 0
        strength = min(strength, RELATION)  # "Dr X, Consultant Radiologist" names one person


def _married(reader: Reader, start: int, end: int, key: str) -> Iterator[Span]:
    """The name after "married to": "MARRIED TO ROBIN"."""
    if (m := _TO_AFTER.match(reader.text, end)):
        for s, e in _name_run(reader, m.end(), RELATION):
            yield Span(s, e, "NAME", "context:relation", 0.9)


_TO_AFTER = re.compile(r"[ \t]+to[ \t]+", re.IGNORECASE)
_BRACKETED_WORD = re.compile(r"([^\W\d_][\w'’-]{2,})[ \t]*\)")


def _relative(reader: Reader, start: int, end: int, key: str) -> Iterator[Span]:
    """The name after a relation: "son Bill", "DTR-IN-LAW RITA HICKEY", "Sons A and B"."""
    text = reader.text
    if text.startswith("-in-law", end) or text.startswith("-IN-LAW", end):
        end += 7
    elif text.startswith("-", end) and text[end + 1:end + 2].isalpha():
        return  # "daughter-discussed"
    gap = _RELATION_GAP.match(text, end)
    if gap:
        wc = reader.wc
        if "(" in gap.group() and (b := _BRACKETED_WORD.match(text, gap.end())):
            key = b.group(1).lower()
            if key not in wc.dictionary and key not in wc.clinical and key not in wc.stop and \
                    key not in _RELATIONS and not clinical_shape(key):
                # "WIFE (HONORA)": one word in brackets after a relation is the relative's name,
                # even one letter off an English word.
                yield Span(b.start(1), b.end(1), "NAME", "context:relation", 0.9)
                return
        for s, e in _name_run(reader, gap.end(), RELATION, lists=True):
            word = text[s:e].lower()
            # Where capitals mean nothing, one everyday word after a relation is a name only
            # when it is a given name ("son bill", not "hcp form", "neighbour found her").
            if not reader.cased and " " not in word and wc.commonness(word) <= 1 and word not in wc.given \
                    and not ("(" in text[end:s] and text.startswith(")", e)):  # "granddaughter (wren)"
                continue
            yield Span(s, e, "NAME", "context:relation", 0.9)


def _relatives_after(reader: Reader) -> Iterator[Span]:
    """A relation or a role after the name: "Hank Przybylo (son)", "Marcela Carlson (sister)",
    "Joy (HHA)", "Dawn (night RN)", "Patience (home health aide)"; "Grace, pt's wife",
    "Aarav, 6 yo grandson"."""
    text = reader.text
    found = []
    # Tried at each "(" and "," after a letter, found by a plain search (a pattern's scan
    # of a whole note costs more).
    at = text.find("(")
    while at > 0:
        k = at
        while k > 0 and text[k - 1] in " \t":
            k -= 1
        if k > 0 and text[k - 1].isalpha() and (m := _PAREN_AFTER_NAME.match(text, at)):
            last = m.group(1).split()[-1].lower().strip("-")
            if last in _RELATIONS or last in _ROLES or last in _CREDENTIALS or last in _AIDES:
                found += _back_run(reader, k, RELATION, "context:relation", initials=last in _RELATIONS)
        at = text.find("(", at + 1)
    at = text.find(", ")
    while at > 0:
        if text[at - 1].isalpha() and (m := _RELATION_AFTER_COMMA.match(text, at)) and \
                any(w.lower() in _RELATIONS for w in m.groups() if w):
            found += _back_run(reader, at, RELATION, "context:relation")
        at = text.find(", ", at + 1)
    for span in found:
        # "Per Dawn (night RN)": the word that leads to a person is not part of the name.
        first = _FIRST_TOKEN.match(text, span.start)
        if first and first.group().lower() in _LEADING_WORDS and first.end() < span.end:
            start = first.end()
            while text[start].isspace():
                start += 1
            span = Span(start, span.end, span.category, span.source, span.confidence)
        yield span


_FIRST_TOKEN = re.compile(r"[A-Za-z'’-]+")


# A parenthesis of up to three words after a name, the last a relation, role or credential.
_PAREN_AFTER_NAME = re.compile(r"\([ \t]*((?:[A-Za-z'’-]+[ \t]+){0,2}[A-Za-z-]+)[ \t]*\)")
# ", pt's wife", ", the pt's foster daughter", ", her son", ", 6 yo grandson".
_RELATION_AFTER_COMMA = re.compile(
    r",[ \t]+(?:the[ \t]+)?(?:(?:pt|patient)['’]?s|her|his|their"
    r"|\d{1,2}[ \t]*(?:yo|y/o|year[ -]old))[ \t]+([A-Za-z-]+)(?:[ \t]+([A-Za-z-]+))?\b", re.IGNORECASE)
_LEADING_WORDS = frozenset({"per", "by", "with", "to", "from", "and", "the", "a", "an", "seen",
                            "called", "told", "asked", "informed", "notified"})
_AIDES = frozenset({"aide", "hha", "pca", "cna", "vna", "caregiver", "sitter", "companion"})


def _back_run(reader: Reader, end: int, strength: int, source: str,
              initials: bool = False) -> Iterator[Span]:
    """Up to three name tokens (initials included) ending just before ``end``; with
    ``initials``, a name of two capitals alone too (what "TJ (boyfriend)" is called by)."""
    text = reader.text
    k = end
    while k > 0 and text[k - 1] in " \t,":
        k -= 1
    stop, count = k, 0
    begin = None
    while count < 3:
        m = _WORD_AT_END.search(text, max(0, k - 40), k)
        if not m:
            break
        word = m.group()
        s = k - len(word)
        if word.endswith("."):
            if len(word) != 2:
                break
        elif count == 0 and len(word) == 1 and word.isupper() and \
                (c := _SURNAME_COMMA_BEFORE.search(text, max(0, s - 40), s)) and \
                reader.person_word(c.group(1), max(strength, RELATION)):
            # "HALVORSEN, K RN": the surname, a comma and the initial of the given name.
            begin, count = c.start(1), 2
            break
        elif not reader.person_word(word, strength if count == 0 else max(strength, RELATION)):
            # "Q. LANDER RRT": an initial before the word makes it a surname.
            if not (_INITIAL_BEFORE.search(text, max(0, s - 4), s) and
                    reader.person_word(word, RELATION)):
                break
        begin, count = s, count + 1
        k = s
        while k > 0 and text[k - 1] in " \t":
            k -= 1
        if k == s:
            break
    if begin is not None and (stop - begin > 2 or initials and stop - begin == 2 and
                              text[begin:stop].isalpha() and text[begin:stop].isupper()):
        yield Span(begin, stop, "NAME", source, 0.85)


def _ward_verb(reader: Reader, start: int, end: int, key: str) -> Iterator[Span]:
    """The person before "aware", "notified", "paged": "W. MAROTTA AWARE"."""
    if not reader.text.startswith("-", end):
        yield from _back_run(reader, start, WEAK, "context:ward-verb")


def _credential(reader: Reader, start: int, end: int, key: str) -> Iterator[Span]:
    """The person before a credential: "V. Finn, RRT", "florencia cooke np". Short ones ("PT",
    "MS", "OT") are words of the chart too, so they count after a comma only."""
    text = reader.text
    if start == 0 or text[start - 1] not in " \t," or text.startswith("-", end):
        return
    comma = text[max(0, start - 2):start].strip() == ","
    if comma or key in _SURE_CREDENTIALS:
        yield from _back_run(reader, start, STRONG, "context:credential")


def _role(reader: Reader, start: int, end: int, key: str) -> Iterator[Span]:
    """The person after a role: "CASEWORKER LEONA LABOWICH", "interpreter Ana"."""
    text = reader.text
    # "RN Park"; "rn" in lower case only where the whole note is ("communicated to rn park"),
    # "np" never ("6l np": nasal prongs).
    if key in ("np", "rn") and not text[start:end].isupper() and (key == "np" or reader.cased):
        return
    # "nurse in charge (Kieran)": the role's own words, then the name, perhaps in brackets.
    gap = _ROLE_GAP.match(text, end)
    bracket = gap.group(1) is not None
    if key in _BRACKET_ROLES and not bracket and not (
            text[gap.end():gap.end() + 1].isupper() and (t := _TOKEN.match(text, gap.end())) and
            reader.given_and_surname(t)):
        return  # "PT", "OT", "CM" are words of the chart too: "per RT (Tamsin)", "CM Joy Abernathy"
    for s, e in _name_run(reader, gap.end(), RELATION):
        # In brackets a word says what the role is as often as who ("Interpreter (Mandarin)"):
        # there a name's words are names or no English word.
        if not bracket or _CLOSING_BRACKET.match(text, e) and all(
                w.lower() not in reader.wc.dictionary or w.lower() in reader.wc.given or
                w.lower() in reader.wc.surnames for w in _TOKEN.findall(text, s, e) if len(w) > 1):
            yield Span(s, e, "NAME", "context:role", 0.85)


# A note's section of family and visitors opens with a label: "social: bill called once",
# "FAMILY: DAVID HAS PHONED". The first word there, a given name before a verb of contact, is
# the visitor's name whatever else the word means ("bill", "bob").
_SECTION_LABELS = frozenset({"social", "family", "visitors", "visitor"})
_SECTION_PERSON = re.compile(r"[ \t]*:[ \t]*([^\W\d_][\w'’-]*)[ \t]+(?:has[ \t]+|had[ \t]+|was[ \t]+)?"
                             r"([a-z]+)\b", re.IGNORECASE)


def _section_person(reader: Reader, start: int, end: int, key: str) -> Iterator[Span]:
    m = _SECTION_PERSON.match(reader.text, end)
    if not m or m.group(2).lower() not in _AFTER_PERSON:
        return
    word = m.group(1)
    name = word.lower()
    wc = reader.wc
    if name in wc.given and name not in wc.stop and name not in wc.clinical and \
            name not in _RELATIONS and (not reader.cased or word[:1].isupper()):
        yield Span(m.start(1), m.end(1), "NAME", "context:section", 0.8)


def _family(reader: Reader, start: int, end: int, key: str) -> Iterator[Span]:
    """The name before "family": "keep the Romero family aware"."""
    if start > 0:
        yield from _back_run(reader, start, WEAK, "context:family")


def _institution_word(reader: Reader, start: int, end: int, key: str) -> Iterator[Span]:
    yield from _before_institution_word(reader, start, end)


def _phone_label(reader: Reader, start: int, end: int, key: str) -> Iterator[Span]:
    """The person before a labelled phone number: "Lopie Certusi cell# 410-…"."""
    text = reader.text
    if _PHONE_LABEL.match(text, start):
        # "Home phone:", "Lopie Certusi home phone": the label's own first word is no name.
        w = _WORD_BEFORE_GAP.search(text[max(0, start - 12):start])
        if w and w.group(1).lower() in _PHONE_LABEL_WORDS:
            start -= len(w.group())
        yield from _back_run(reader, start, STRONG, "context:phone-label")


def _before_person(reader: Reader, start: int, end: int, key: str) -> Iterator[Span]:
    """The person after "spoke with", "per", "d/w", "paged"."""
    m = _BEFORE_PERSON.match(reader.text, start)
    if m:
        for s, e in _name_run(reader, m.end(), WEAK, lists=True):
            yield Span(s, e, "NAME", "context:ward-verb", 0.85)


def _title(reader: Reader, start: int, end: int, key: str) -> Iterator[Span]:
    m = _TITLE.match(reader.text, start)
    if m:
        # "MS changes" is mental status, "MR" mitral regurgitation: capitals prove little.
        title = m.group().strip(" .")
        weak = title.upper() in ("MS", "MR", "MRS", "MISS") and (title.isupper() or title.islower())
        strength = WEAK if weak else TITLE
        for s, e in _name_run(reader, m.end(), strength, lists=True):
            yield Span(s, e, "NAME", "context:title", 0.9)


def _initial(reader: Reader, start: int, end: int) -> Iterator[Span]:
    """An initial and a surname: "W. MAROTTA", "d. renna"."""
    text = reader.text
    m = _INITIAL.match(text, start)
    t = _TOKEN.match(text, m.end()) if m else None
    if t and (start == 0 or not text[start - 1].isalnum()) and \
            reader.person_word(t.group(), WEAK) and t.group().lower() in reader.wc.surnames:
        yield Span(start, t.end(), "NAME", "lexicon:initial-surname", 0.8)


def _move(reader: Reader, start: int, end: int, key: str) -> Iterator[Span]:
    """A place after a word of moving or living: "transferred to Quartermain 3"."""
    text = reader.text
    if key in ("to", "at", "from") and not _BARE_NEXT.match(text, end):
        return  # a bare preposition counts only before a capital or a hospital's abbreviation
    m = _MOVE.match(text, start)
    if m:
        span = _place_run(reader, m.end(), bare=m.group().strip().lower() in ("from", "to", "at", "@"))
        if span:
            yield span


# A hospital's emergency ward after its abbreviation: "found unresponsive -> GH EW", "to MGH ED".
_EMERGENCY_WARDS = frozenset({"ew", "er", "ed"})
_WORD_BEFORE = re.compile(r"(?<![\w/-])([A-Za-z]+)[ \t]{1,2}\Z")


def _hospital_abbreviation(reader: Reader, start: int, end: int) -> Span | None:
    """The hospital's abbreviation at ``start:end`` ("GH", "GBMC"), unless it is a clinical or
    English word of the same shape ("TSH", "LDH")."""
    word = reader.text[start:end].lower()
    if word in reader.wc.clinical or word in reader.wc.dictionary:
        return None
    return Span(start, end, "INSTITUTION", "context:hospital-abbreviation", 0.8)


def _emergency_ward(reader: Reader, start: int, end: int, key: str) -> Iterator[Span]:
    text = reader.text
    if not text[start:end].isupper():
        return
    m = _WORD_BEFORE.search(text, max(0, start - 8), start)
    if m and m.group(1).isupper() and _HOSPITAL_ABBREVIATION.fullmatch(m.group(1)):
        span = _hospital_abbreviation(reader, m.start(1), m.end(1))
        if span:
            yield span


def _by_hospital(reader: Reader, start: int, end: int, key: str) -> Iterator[Span]:
    """A hospital's abbreviation after "by": "MAY BE W/U BY GBMC"."""
    text = reader.text
    gap = _ONE_OR_TWO_BLANKS.match(text[end:end + 2])
    m = _HOSPITAL_ABBREVIATION.match(text, end + gap.end()) if gap else None
    if m and m.group()[:1].isupper():
        span = _hospital_abbreviation(reader, m.start(), m.end())
        if span:
            yield span


def _saint(reader: Reader, start: int, end: int, key: str) -> Iterator[Span]:
    """"St. Agnes", "St Mary's": a saint's name at the start of a name is an institution;
    after a capitalised word it ends a street ("Clover St.")."""
    text, wc = reader.text, reader.wc
    m = _SAINT.match(text, start)
    if not m:
        return
    before = _LAST_WORD.search(text[max(0, start - 30):start])
    if before and before.group(1)[:1].isupper() and before.group(1).lower() not in wc.stop:
        return
    t = _TOKEN.match(text, m.end())
    saint = t.group().lower().removesuffix("'s") if t else ""
    initial = len(saint) == 1 and text.startswith(".", t.end()) if t else False  # "St A."
    named = saint not in wc.dictionary and saint not in wc.clinical and (
        saint in wc.given or saint in wc.surnames or saint in wc.proper)
    if t and (initial or named):
        yield Span(start, t.end(), "INSTITUTION", "context:saint", 0.8)


def _places(reader: Reader) -> Iterator[Span]:
    text, wc = reader.text, reader.wc
    if "@" in text:
        for m in re.finditer(r"@[ \t]*", text):
            span = _place_run(reader, m.end(), bare=True)
            if span:
                yield span
    for s, e in wc.place_phrases.find(text, reader.words, reader.index):
        words = text[s:e].split()
        if all(w[:1].isupper() for w in words) if reader.cased else \
                any(w.lower() not in wc.dictionary for w in words):
            yield Span(s, e, "CITY", "lexicon:place", 0.7)


# The words before an institution's opening phrase that make it a place without an institution
# word after it: "to sacred heart", "at Holy Cross" (not "a prayer to the Sacred Heart").
_TO_PLACE_BEFORE = re.compile(r"\b(?:to|from|at|@|in|into|via)[ \t]{1,2}\Z|\(\Z", re.IGNORECASE)


_OF_NAME = re.compile(r"[ \t]+of[ \t]+(?:the[ \t]+)?[A-Z][\w'’-]+(?:[ \t]+[A-Z][a-z][\w'’-]*)?")
# The openers that name an institution only with what they are of.
_OPENERS_WITH_OF = frozenset({("our", "lady")})


def _institution_openers(reader: Reader) -> Iterator[Span]:
    """"sacred heart Memorial", "to holy cross": a phrase that opens hospitals' names, with the
    institution words after it, before one or after a word of moving."""
    text, words, openers = reader.text, reader.words, reader.wc.institution_openers
    for i in reader.index.positions(reader.wc.institution_opener_words):
        s, e, first = words[i]
        if i + 1 >= len(words) or words[i + 1][2] not in openers[first] or \
                not _ONE_OR_TWO_BLANKS.fullmatch(text[e:words[i + 1][0]]):
            continue
        end, tails = words[i + 1][1], 0
        # "Our Lady of Sorrows": the name goes on with "of" and what it is of.
        named_of = _OF_NAME.match(text, end)
        if named_of:
            end = named_of.end()
        elif (first, words[i + 1][2]) in _OPENERS_WITH_OF:
            continue  # "prayed to Our Lady"
        while tails < 2 and (m := _BLANKS_WORD.match(text[end:end + 20])) and \
                m.group(1).lower() in _INSTITUTION_TAIL:
            end, tails = end + m.end(), tails + 1
        if tails or _TO_PLACE_BEFORE.search(text, max(0, s - 12), s):
            yield Span(s, end, "INSTITUTION", "lexicon:institution-opener", 0.8)


def _place_run(reader: Reader, pos: int, bare: bool) -> Span | None:
    """A place's name from ``pos``: up to four words, and a ward number ("Quartermain 5")."""
    text, wc = reader.text, reader.wc
    end, words, evidence = pos, [], False
    i = pos
    ward = _WARD_TOKEN.match(text, i)
    if ward and not bare and ward.group(1).lower() not in wc.dictionary and \
            ward.group(1).lower() not in wc.clinical:
        return Span(pos, ward.end(), "INSTITUTION", "context:movement", 0.8)  # "Quartermain7"
    abbreviation = _HOSPITAL_ABBREVIATION.match(text, i)
    if abbreviation and abbreviation.group().lower() not in wc.clinical and \
            abbreviation.group().lower() not in wc.dictionary:
        return Span(pos, abbreviation.end(), "INSTITUTION", "context:movement", 0.8)  # "to GH"
    while len(words) < 4:
        m = _TOKEN.match(text, i)
        if not m:
            break
        word = m.group()
        key = word.lower()
        # A name may open with an institution word when another follows ("Memorial Hospital").
        tail_pair = key in _INSTITUTION_TAIL and (words or _next_is_tail(text, m.end()))
        if not reader.place_word(word) and not tail_pair:
            break
        words.append(word)
        end = m.end()
        in_dictionary = key in wc.dictionary
        known = key in wc.places or key in wc.given or key in wc.surnames or key in wc.proper
        # What makes the words a place: a known place or name that is no English word, an
        # institution word after a name, a short abbreviation after a verb of moving ("sent
        # to GH"), a capitalised word where capitals mean something. A bare "to" or "from"
        # needs more than an abbreviation or a capital.
        if (known and not in_dictionary) or (key in _INSTITUTION_TAIL and len(words) > 1):
            evidence = True
        elif not bare and not in_dictionary and (len(key) <= 3 or len(key) == 4 and word.isupper()):
            evidence = True
        elif reader.cased and word[:1].isupper() and (not bare or not in_dictionary or len(words) > 1):
            evidence = True
        gap = _BLANKS_OR_HYPHEN.match(text[end:end + 3])
        if not gap:
            break
        i = end + gap.end()
    n = _WARD_NUMBER.match(text, end) if words else None
    # "Quartermain 5": a ward; after a bare "from" or "to" only a word no dictionary knows.
    if n and (not bare or len(words) == 1 and len(words[0]) >= 5 and words[0].lower() not in wc.dictionary
              and not wc.misspelt(words[0].lower()) and not clinical_shape(words[0])):
        end, evidence = n.end(), True
    if not words or not evidence:
        return None
    if len(words) == 1 and len(words[0]) < 2:
        return None
    return Span(pos, end, "INSTITUTION", "context:movement", 0.8)


def _next_is_tail(text: str, end: int) -> bool:
    m = _TOKEN.match(text, end + 1) if text[end:end + 1] in (" ", "\t") else None
    return m is not None and m.group().lower() in _INSTITUTION_TAIL


_TO_PLACE_CUE = re.compile(r"\b(?:to|at|from|via|@)[ \t]+(?:the[ \t]+)?\Z|@[ \t]*\Z", re.IGNORECASE)


def _before_institution_word(reader: Reader, start: int, end: int) -> Iterator[Span]:
    """Up to three words before "hospital", "rehab", "house": "sacred heart hospital"."""
    text, wc = reader.text, reader.wc
    k, begin, count, tails = start, None, 0, 0
    last_tail = text[start:end].lower()  # a word written twice ends the name ("hosp hosp")
    while count < 3:
        # Words of one name stand one or two spaces apart: a wider gap separates fields.
        w = _WORD_BEFORE_GAP.search(text[max(0, k - 40):k])
        if not w:
            break
        word = w.group(1)
        key = word.lower()
        if key in _INSTITUTION_TAIL and begin is None and tails < 2 and key != last_tail and \
                (not reader.cased or word[:1].isupper()):
            # "riverside general hospital": institution words before this one, then its name.
            k -= len(w.group())
            tails, last_tail = tails + 1, key
            continue
        known = key in wc.places or key in wc.surnames or key in wc.given
        if key in wc.stop or key in wc.clinical or key in _INSTITUTION_TAIL or key in _GENERIC or \
                _owned_by_person(key, wc) or \
                not reader.cased and len(key) <= 2 or \
                (reader.cased and not word[:1].isupper()) or \
                (not reader.cased and wc.commonness(key) <= 1 and not known):
            break
        k -= len(w.group())
        begin, count = k, count + 1
    if begin is not None and not reader.cased and \
            all(wc.commonness(w) <= 2 and (w not in wc.places or wc.commonness(w) == 1)
                for w in text[begin:start].lower().split()) and \
            not _TO_PLACE_CUE.search(text, max(0, begin - 12), begin):
        # Where capitals mean nothing, everyday words before "rehab" or "health" name a place
        # only after a word that sends someone there ("referral to harbor crest house"), not
        # in "poss rehab", "begin rehab", "in poor health".
        begin = None
    if begin is not None:
        # "st. aldric medical center": a saint's name begins it.
        saint = _SAINT_BEFORE.search(text, max(0, begin - 8), begin)
        yield Span(saint.start() if saint else begin, end, "INSTITUTION", "context:institution-word", 0.8)


# A region named by a compass point and a kind of place: "the Eastern Shore", "North Campus".
_REGION_NOUNS = frozenset({"shore", "coast", "county", "valley", "campus"})
_COMPASS_BEFORE = re.compile(r"\b(?:north|south|east|west)(?:ern)?[ \t]{1,2}\Z", re.IGNORECASE)
# Where a person works: "CEO of IBM", "works at Acme", "employed by Smithson".
_EMPLOYER_WORDS = frozenset({"ceo", "cfo", "president", "owner", "founder", "works", "worked",
                             "working", "employed", "employee"})
_EMPLOYER = re.compile(r"(?:ceo|cfo|president|owner|founder|employee)[ \t]+of[ \t]+"
                       r"|(?:works|worked|working|employed)[ \t]+(?:at|for|by)[ \t]+",
                       re.IGNORECASE)


def _region(reader: Reader, start: int, end: int, key: str) -> Iterator[Span]:
    """A compass point before a kind of place: "from the EASTERN SHORE", "on North Campus"."""
    m = _COMPASS_BEFORE.search(reader.text, max(0, start - 12), start)
    if m:
        yield Span(m.start(), end, "CITY", "context:region", 0.75)


def _employer(reader: Reader, start: int, end: int, key: str) -> Iterator[Span]:
    """The employer after a word of working: "HUSBAND CEO OF IBM", "works at Calvert Mills"."""
    m = _EMPLOYER.match(reader.text, start)
    if m:
        span = _place_run(reader, m.end(), bare=False)
        if span:
            yield Span(span.start, span.end, "INSTITUTION", "context:employer", 0.75)


_WORD_CUES: dict[str, tuple] = {}
for _handler, _keys in ((_institution_word, _INSTITUTION_TAIL), (_role, _ROLES),
                        (_credential, _CREDENTIALS), (_ward_verb, _AFTER_PERSON),
                        (_relative, _RELATIONS - {"in-law", "wife's", "husband's"}),
                        (_family, {"family"}), (_section_person, _SECTION_LABELS),
                        (_phone_label, _PHONE_LABEL_WORDS),
                        (_before_person, _BEFORE_PERSON_WORDS), (_title, _TITLE_WORDS),
                        (_move, _MOVE_WORDS), (_saint, {"st", "saint"}),
                        (_region, _REGION_NOUNS), (_employer, _EMPLOYER_WORDS),
                        (_emergency_ward, _EMERGENCY_WARDS), (_by_hospital, {"by"}),
                        (_married, {"married"})):
    for _key in _keys:
        _WORD_CUES[_key] = (*_WORD_CUES.get(_key, ()), _handler)
_CUE_WORDS = frozenset(_WORD_CUES)


# What a name or place found in context teaches about the rest of the note.
_PROPAGATING = ("context:relation", "context:section", "context:title", "context:credential", "context:role",
                "context:movement", "context:saint", "context:phone-label", "lexicon:given-name",
                "lexicon:initial-surname")


def propagate(reader: Reader, spans: list[Span]) -> list[Span]:
    """Every other mention in the note of a name or place that context found once.

    "Son Smokey to go to security", then "Smokey" alone; "transfer to Quartermain 3", then
    "ON QUARTERMAIN 2". Only words that are no English word of every day, no clinical or stop
    word, are carried over, and only as whole words. On a list of people ("cc: m lopez;
    Park") every word of a name found anywhere in the note is carried over, everyday or not.
    """
    wc = reader.wc
    text = reader.text
    learned: dict[str, str] = {}
    for span in spans:
        # "Mount Tabor Regional (MTR)": an institution's initials in brackets after its name.
        if span.category == "INSTITUTION" and (a := _ACRONYM_AFTER.match(text, span.end)) and \
                a.group(1).lower() not in wc.clinical and a.group(1).lower() not in wc.stop and \
                a.group(1) == "".join(w[0] for w in _TOKEN.findall(text, span.start, span.end)
                                      if w[0].isupper()):
            learned[a.group(1).lower()] = span.category
        if span.category not in ("NAME", "INSTITUTION", "CITY") or not span.source.startswith(_PROPAGATING):
            continue
        for m in _TOKEN.finditer(text, span.start, span.end):
            key = m.group().lower()
            if len(key) < 2 or key in wc.stop or key in wc.clinical or key in _RELATIONS or \
                    key in _INSTITUTION_TAIL or wc.commonness(key) <= 2 or \
                    (len(key) < 4 and not m.group().isupper()):
                continue
            learned[key] = span.category
    covered = {(s.start, s.end) for s in spans}
    out = []
    if learned:
        for start, end, key in reader.index.hits(learned):
            category = learned[key]
            if (start, end) not in covered and (not reader.cased or text[start].isupper() or
                                                not key.isalpha() or key not in wc.dictionary):
                out.append(Span(start, end, category, "context:same-note", 0.8))
    out += _names_on_lists(reader, spans, covered)
    out += _given_names_before(reader, spans + out)
    return out


_ACRONYM_AFTER = re.compile(r"[ \t]*\([ \t]*([A-Z]{2,6})[ \t]*\)")


def _letters_before_space(text: str, end: int, reach: int = 30) -> int | None:
    r"""Where the word of letters that ends one space before ``end`` begins (it begins at most
    ``reach`` characters before ``end``, after no letter, digit, underscore, apostrophe, full
    stop or hyphen), or None: ``(?<![\w'’.-])([^\W\d_]+) \Z`` searched in
    ``text[end - reach:end]``, read backwards."""
    low = max(0, end - reach)
    space = end - 1
    if space < low or text[space] != " ":
        return None
    start = space
    # A letter is what \w holds but for digits and the underscore: isalnum(), not isdecimal().
    while start > low and (c := text[start - 1]).isalnum() and not c.isdecimal():
        start -= 1
    if start == space or start and (text[start - 1].isalnum() or text[start - 1] in "_'’.-"):
        return None
    return start


def _given_names_before(reader: Reader, spans: list[Span]) -> Iterator[Span]:
    """A given name just before a name found by its context: "Martin" of "Martin Lopez is a
    68-year-old man" where "Lopez" was found elsewhere. Capitalised where capitals mean
    something, and no everyday word where they do not. And the surname before a given name
    the lexicon found, in "LAST, First" order (``_surname_before_comma``)."""
    text, wc = reader.text, reader.wc
    starts = {s.start for s in spans}
    tried = set()
    for span in spans:
        # A letter, one space, the name: checked before the pattern is (once per start).
        if span.category != "NAME" or span.start < 2 or text[span.start - 1] != " ":
            continue
        if text[span.start - 2] == ",":
            if span.source.startswith(_GIVEN_SOURCES) and \
                    (surname := _surname_before_comma(reader, span, starts)) is not None:
                yield surname
            continue
        if not text[span.start].isalpha() or not text[span.start - 2].isalpha() or \
                span.start in tried:
            continue
        tried.add(span.start)
        begin = _letters_before_space(text, span.start)
        if begin is None or begin in starts:
            continue
        word = text[begin:span.start - 1]
        key = word.lower()
        if key not in wc.given or key in wc.stop or key in wc.clinical or key in _RELATIONS or \
                key in _TITLE_WORDS or key in _CREDENTIALS or key in _ROLES:
            continue
        if reader.cased:
            if not (word[:1].isupper() and text[span.start].isupper()):
                continue
        elif wc.commonness(key) <= 1:
            continue
        yield Span(begin, span.start - 1, "NAME", "context:given-before-name", 0.8)


def _surname_before_comma(reader: Reader, span: Span, starts: set[int]) -> Span | None:
    """The surname before the given name ``span`` (found by the lexicon, after ", ") in
    "LAST, First" order ("Thompson, Mary (RN)"): a census surname that is no stop, clinical
    or relation word, capitalised where capitals mean something; an everyday word ("Brown",
    "Young") only where capitals mean something and no sentence begins with it."""
    text, wc = reader.text, reader.wc
    end = k = span.start - 2
    while k > 0 and (text[k - 1].isalpha() or text[k - 1] in "'’-"):
        k -= 1
    if end - k < 2 or k in starts or (k and (text[k - 1].isalnum() or text[k - 1] in "_.")):
        return None
    word = text[k:end]
    key = word.lower().replace("’", "'")
    if key not in wc.surnames or key in wc.stop or key in wc.clinical or key in _RELATIONS \
            or key in _TITLE_WORDS or key in _CREDENTIALS or key in _ROLES:
        return None
    if reader.cased:
        if not (word[:1].isupper() and text[span.start].isupper()):
            return None
        if wc.commonness(key) <= 1 and (k == 0 or text[:k].rstrip()[-1:] in (".", "!", "?", "")):
            return None  # "Young, Mary said": an everyday word opening a sentence
    elif wc.commonness(key) <= 1:
        return None
    return Span(k, end, "NAME", "context:surname-before-given", 0.8)


_GIVEN_SOURCES = ("lexicon:given-name", "lexicon:first-last")


# A list of people: "cc: Pearson, Patrick; Okafor, Ngozi", "copies to: …" up to the line's end.
_LIST_LINE = re.compile(r"\b(?:cc|copies[ \t]+to|copy[ \t]+to|distribution)[ \t]*:[^\n]*", re.IGNORECASE)
_LIST_WORDS = frozenset({"cc", "copies", "copy", "distribution"})


def _names_on_lists(reader: Reader, spans: list[Span], covered: set) -> Iterator[Span]:
    """The words of a list of people that are words of names found elsewhere in the note:
    "RN Park" in the findings, "cc: J Sullivan; Park" below them."""
    text, wc = reader.text, reader.wc
    lists = []
    for start, _, _ in reader.index.hits(_LIST_WORDS):
        # A list runs to the end of its line: one that opens inside another is part of it
        # (read again from there, a long line of lists would cost its square).
        if (not lists or start >= lists[-1].end()) and \
                (start == 0 or not text[start - 1].isalnum()) and (m := _LIST_LINE.match(text, start)):
            lists.append(m)
    if not lists:
        return
    names: set[str] = set()
    for span in spans:
        if span.category != "NAME" or span.source == "context:same-note":
            continue
        for m in _TOKEN.finditer(text, span.start, span.end):
            key = m.group().lower()
            if len(key) >= 2 and key not in wc.stop and key not in wc.clinical and \
                    key not in _RELATIONS and key not in _LIST_WORDS:
                names.add(key)
    if not names:
        return
    for line in lists:
        for m in _TOKEN.finditer(text, line.start(), line.end()):
            if m.group().lower() in names and (m.start(), m.end()) not in covered:
                yield Span(m.start(), m.end(), "NAME", "context:same-note", 0.8)
