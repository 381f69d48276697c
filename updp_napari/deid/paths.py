"""Output path names that carry no identifier and always fit the file system.

Archives are filed by MRN, accession number, birth date or the patient's name
(``SMITH_JOHN/19510510/ACC61224783.dcm``, ``PEARSON.txt``): a mirrored path would carry them
out. :class:`PathCleaner` replaces, in every folder and file name,

- the values it is given (the file's own header values, each with its stand-in),
- dates, social security numbers and runs of six digits or more (keyed digits of the same
  length, so names still sort and stay apart),
- words that are given names or surnames and no English or clinical word (a keyed stand-in),

and shortens a name longer than :data:`NAME_BYTES` to a prefix and a keyed hash of the whole,
so that replacing an MRN by a longer stand-in, or adding ``.part`` while writing, never
makes a name the file system refuses. Replacements are keyed: the same original name gives the
same output name in one workspace, and nothing can be read back from it without the key.
"""

from __future__ import annotations

import re

from ..core.keys import keyed_digest, keyed_int

#: Longest file or folder name written, in UTF-8 bytes: NAME_MAX is 255 on common file systems,
#: less room for the suffixes added while writing (``.part``, ``.tmp``).
NAME_BYTES = 200

_DATE = re.compile(r"(?<!\d)(?:(?:19|20)\d\d[-._](?:0?[1-9]|1[0-2])[-._](?:0?[1-9]|[12]\d|3[01])"
                   r"|(?:0?[1-9]|[12]\d|3[01])[-._](?:0?[1-9]|[12]\d|3[01])[-._](?:19|20)\d\d)(?!\d)")
_SSN = re.compile(r"(?<!\d)\d{3}[-_ ]\d{2}[-_ ]\d{4}(?!\d)")
_DIGITS = re.compile(r"\d{6,}")
_WORD = re.compile(r"[^\W\d_]{3,}")
#: Surnames this frequent (percent of the 1990 census population) are names in a file name
#: even when they are English words too: Smith, Brown, Miller, White, Hall, Young.
_FREQUENT_SURNAME = 0.05


class PathCleaner:
    """Replaces identifiers in relative paths (``a/b/c.ext``) with keyed stand-ins.

    ``values``: (value, replacement) pairs searched first, longest first, in any case; a
    value of fewer than three characters only as a whole token (``Li`` in ``Li_Wei``, not in
    ``Lisinopril``)."""

    def __init__(self, key: bytes, values: list[tuple[str, str]] = ()):
        self.key = key
        self.values = sorted(((v, r) for v, r in values if v), key=lambda p: len(p[0]),
                             reverse=True)
        self._classes = None

    def clean(self, rel: str) -> str:
        return "/".join(self.clean_name(part) for part in rel.split("/"))

    def clean_name(self, name: str) -> str:
        """One folder or file name, its identifiers replaced and its length bounded."""
        if name in ("", ".", ".."):
            return name
        stem, suffix = _split_suffix(name)
        pieces = [(stem, False)]  # (text, already replaced)
        for value, replacement in self.values:
            pattern = re.escape(value)
            if len(value) < 3:
                pattern = rf"(?<![^\W_]){pattern}(?![^\W_])"
            pieces = _replace(pieces, re.compile(pattern, re.IGNORECASE), lambda m, r=replacement: r)
        pieces = _replace(pieces, _DATE, lambda m: "D" + self._hex("date", m.group(), 8))
        pieces = _replace(pieces, _SSN, lambda m: self._digits(re.sub(r"\D", "", m.group())))
        pieces = _replace(pieces, _DIGITS, lambda m: self._digits(m.group()))
        pieces = _replace(pieces, _WORD, self._name_word)
        return short_name("".join(text for text, _ in pieces) + suffix, self.key)

    def _name_word(self, m: re.Match) -> str | None:
        word = m.group()
        if self._classes is None:
            from .report.vocabulary import word_classes

            self._classes = word_classes()
        c = self._classes
        key = word.casefold()
        if key in c.clinical or key in c.stop:
            return None  # "chest", "image", "series", "portable"
        share = c.surnames.get(key) or 0.0  # percent of the census population
        common = c.commonness(key)
        # Alone in a file name a word is a name when it is one and no everyday word ("will",
        # "case"), or a frequent surname whatever else it is ("SMITH.txt", "Brown/").
        if (key in c.given and common >= 2) or share >= _FREQUENT_SURNAME or \
                (share > 0 and common >= 2):
            return "N" + self._hex("name", key, 8)
        return None

    def _hex(self, purpose: str, value: str, n: int) -> str:
        return keyed_digest(self.key, f"path-{purpose}", value).hex()[:n]

    def _digits(self, digits: str) -> str:
        return "".join(str(keyed_int(self.key, f"path-digit-{i}", digits, 10))
                       for i in range(len(digits)))


def short_name(name: str, key: bytes, limit: int = NAME_BYTES) -> str:
    """``name`` itself when it fits ``limit`` UTF-8 bytes, else a prefix of it, ``~`` and a
    keyed hash of the whole name, with the suffix (``.dcm``) kept."""
    if len(name.encode("utf-8")) <= limit:
        return name
    stem, suffix = _split_suffix(name)
    tail = "~" + keyed_digest(key, "path-short", name).hex()[:16] + suffix
    room = max(limit - len(tail.encode("utf-8")), 1)
    prefix = stem.encode("utf-8")[:room].decode("utf-8", "ignore")
    return prefix + tail


def _split_suffix(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    if dot and stem and 0 < len(ext) <= 8 and ext.isalnum():
        return stem, "." + ext
    return name, ""


def _replace(pieces: list[tuple[str, bool]], pattern: re.Pattern, make) -> list[tuple[str, bool]]:
    """``pieces`` with every match of ``pattern`` in a piece not yet replaced made ``make(m)``
    (a match for which ``make`` gives None stays)."""
    out: list[tuple[str, bool]] = []
    for text, done in pieces:
        if done:
            out.append((text, done))
            continue
        last = 0
        for m in pattern.finditer(text):
            replacement = make(m)
            if replacement is None:
                continue
            if m.start() > last:
                out.append((text[last:m.start()], False))
            out.append((replacement, True))
            last = m.end()
        if last < len(text):
            out.append((text[last:], False))
    return out
