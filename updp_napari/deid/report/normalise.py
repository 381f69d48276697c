"""Report text as the detectors should read it, with a map back to the text as written.

Reports arrive as HTML or RTF, or with characters that split a name for a program but not for
a reader: zero-width and other invisible characters, soft hyphens, full-width letters, smart
quotes, a name hyphenated across a line break. :func:`normalise_for_detection` returns the
text a reader sees (markup dropped, entities and escapes decoded, characters folded) and,
for every character of it, the characters of the original it came from, so that what is
found in the one is redacted in the other. Plain ASCII text costs one regular-expression
search and comes back unchanged with an identity map.

Markup never ends up inside a mapped span: a span across ``<b>PEARSON</b>, <i>PATRICK</i>``
becomes one span per run of text, so the tags stay and only the name goes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator

from ...core.spans import Span, resolve

# Per character of the detection text, in ``_flags``: the character stands for markup (the
# newline of a ``<p>``, the tab of an RTF ``\cell``), not for text; or markup was dropped just
# before it. A mapped span never covers the one and is cut in two at the other.
_SYNTHETIC = 1
_BREAK = 2

# ASCII bytes that plain text may hold: printable characters and whitespace.
_PLAIN_BYTES = bytes(range(0x20, 0x7F)) + b"\t\n\r\x0b\x0c"
_RTF_START = re.compile(r"\A[\ufeff\s]*\{\\rtf")

# ---------------------------------------------------------------------------------- HTML

_INLINE_TAGS = frozenset(
    "a abbr acronym b bdi bdo big blink cite code data del dfn em font i ins kbd mark nobr q "
    "rp rt ruby s samp small span strike strong sub sup time tt u var wbr".split())
_BLOCK_TAGS = frozenset(
    "address article aside blockquote body br caption center dd details dialog dir div dl dt "
    "fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 head header hr html legend li "
    "main menu nav ol p pre section summary table tbody tfoot thead title tr ul".split())
_CELL_TAGS = frozenset({"td", "th"})
_KNOWN_TAGS = _INLINE_TAGS | _BLOCK_TAGS | _CELL_TAGS | {"img", "meta", "link", "script",
                                                        "style", "o:p", "xml"}
# "Tags present": a known element, a comment or a doctype; "x <y and z>" in a note is no HTML.
_TAG_NAMES = "|".join(re.escape(t) for t in sorted(_KNOWN_TAGS, key=len, reverse=True))
_HTML_SNIFF = re.compile(r"<(?:!--|!doctype\b|/?(?:" + _TAG_NAMES + r")(?=[\s/>])[^<>]*>)",
                         re.IGNORECASE)
# At most so many characters of attributes: "<b" never closed is then read in linear time.
_ATTRS = r"""(?:[^>"'<]|"[^"<]{0,2000}"|'[^'<]{0,2000}'){0,2000}"""
_HTML_TOKEN = re.compile(
    r"<!--.*?(?:-->|\Z)"  # a comment
    r"|<(script|style)\b" + _ATTRS + r">.*?(?:</\1\s*>|\Z)"  # hidden content, dropped
    r"|<(/?)([A-Za-z][^\s/>]*)(" + _ATTRS + r")>"  # a tag: (closing) (name) (attributes)
    r"|<[!?][^>]*(?:>|\Z)"  # doctype, processing instruction, CDATA
    r"|&(?:#[0-9]{1,7};?|#[xX][0-9a-fA-F]{1,6};?|[A-Za-z][A-Za-z0-9]{1,31};)",  # an entity
    re.IGNORECASE | re.DOTALL)
_ENTITY = re.compile(r"&(?:#[0-9]{1,7};?|#[xX][0-9a-fA-F]{1,6};?|[A-Za-z][A-Za-z0-9]{1,31};)")
_ATTR_VALUE = re.compile(r"""=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")

# ----------------------------------------------------------------------------------- RTF

_RTF_TOKEN = re.compile(
    r"\\([a-zA-Z]{1,32})(-?[0-9]{1,10})? ?"  # a control word, its parameter, its delimiter
    r"|\\'([0-9a-fA-F]{2})"  # a byte in the document's code page
    r"|\\(\r\n|[\s\S])"  # a control symbol
    r"|([{}])"
    r"|(\r\n|\r|\n)"  # line breaks in RTF source mean nothing
    r"|([^\\{}\r\n]+)")
# Destinations that hold no text of the document (tables of fonts, colours and styles,
# pictures, metadata for programs). Others (``\info``, headers, footers, fields) are read.
_HIDDEN_DESTINATIONS = frozenset(
    "fonttbl colortbl stylesheet listtable listoverridetable revtbl rsidtbl filetbl pict "
    "themedata colorschememapping datastore latentstyles xmlnstbl generator pgdsctbl "
    "objdata mmathPr".split())
# Destinations read apart from the text around them (a line of their own): metadata that
# may well name someone, headers, footers, notes.
_APART_DESTINATIONS = frozenset(
    "info title subject author manager company operator category keywords comment doccomm "
    "header headerl headerr headerf footer footerl footerr footerf footnote annotation "
    "atnauthor".split())
_RTF_BREAKS = {"par": "\n", "line": "\n", "sect": "\n", "page": "\n", "row": "\n",
               "tab": "\t", "cell": "\t", "nestcell": "\t"}
_RTF_CHARS = {"emdash": "\u2014", "endash": "\u2013", "lquote": "'", "rquote": "'",
              "ldblquote": '"', "rdblquote": '"', "bullet": "\u2022", "emspace": " ",
              "enspace": " ", "qmspace": " ", "zwj": "", "zwnj": ""}

# ----------------------------------------------------------------------------- characters

# Quotes and hyphens as ASCII; line and paragraph separators as newlines.
_FOLD = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u02bc": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2212": "-",
    "\u2028": "\n", "\u2029": "\n", "\x85": "\n"})
_KEEP_CONTROLS = frozenset("\t\n\r\x0b\x0c")
# Marks that belong to no script: accents written after their letter (as macOS and some
# forms save "José": "Jose" and U+0301) and variation selectors. A word cut stops at them
# ("Jos" + mark), so each is joined to the letter before it: composed with it where Unicode
# has the letter ("é"), else read as part of it.
_MARK_RANGES = (r"\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe00-\ufe0f\ufe20-\ufe2f"
                r"\U000e0100-\U000e01ef")
# Characters of NFKC text that folding still changes: controls, format characters (Unicode's
# category Cf: zero-width characters, the soft hyphen, bidirectional marks …), lone
# surrogates, the quotes, hyphens and separators of _FOLD, and the marks above.
_SPECIAL = re.compile(
    r"[\x00-\x08\x0e-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891"
    r"\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    r"\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    r"\U000e0001\U000e0020-\U000e007f\ud800-\udfff"
    r"\u2018-\u201f\u2032\u2033\u02bc\u00ab\u00bb\u2010-\u2013\u2212\u2028\u2029"
    + _MARK_RANGES + "]")
_GENERIC_MARK = re.compile(f"[{_MARK_RANGES}]")
# A hyphen ending a line between two letters: "PEAR-\nSON". A space after the hyphen ("NEURO- ")
# marks a label, not a broken word; a capital after a small letter ("Smith-\nJones") a name
# of two words, left as it is.
_LINE_HYPHEN = re.compile(r"(?<=[^\W\d_])-\r?\n[ \t]*(?=[^\W\d_])")


class Normalised:
    """The detection text of one report and where each of its characters came from.

    ``text`` is what the detectors read. With ``identity`` it is the original itself; else
    its character ``i`` came from ``original[starts[i]:ends[i]]`` (several characters may
    share one original character: NFKC turns one into many).
    """

    __slots__ = ("original", "text", "_starts", "_ends", "_flags")

    def __init__(self, original: str, text: str | None = None, starts: list[int] | None = None,
                 ends: list[int] | None = None, flags: bytearray | None = None):
        self.original = original
        self.text = original if text is None else text
        self._starts, self._ends, self._flags = starts, ends, flags

    @property
    def identity(self) -> bool:
        return self._starts is None

    @property
    def offsets(self) -> list[int]:
        """Where each character of ``text`` starts in the original; the original's length last."""
        if self._starts is None:
            return list(range(len(self.original) + 1))
        return self._starts + [len(self.original)]

    def __iter__(self) -> Iterator:  # ``text, offsets = normalise_for_detection(report)``
        return iter((self.text, self.offsets))

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """``text[start:end]`` as a range of the original, widened to whole characters of it."""
        if self._starts is None:
            return start, end
        n = len(self.text)
        start, end = max(0, min(start, n)), max(0, min(end, n))
        if end <= start:
            at = self._starts[start] if start < n else len(self.original)
            return at, at
        return self._starts[start], self._ends[end - 1]

    def ranges_to_original(self, ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
        """Each range whole (protected terms): markup inside one does not cut it."""
        return [self.to_original(s, e) for s, e in ranges]

    def pieces(self, start: int, end: int) -> list[tuple[int, int]]:
        """``text[start:end]`` as ranges of the original holding only its text: cut where
        markup was dropped, the characters markup stood for left out. A range that had to be
        cut keeps only its pieces holding a letter or a digit, trimmed of spaces."""
        if self._starts is None:
            return [(start, end)] if start < end else []
        flags, text = self._flags, self.text
        runs: list[list[int]] = []
        cut = left_out = False
        for i in range(max(0, start), min(end, len(text))):
            flag = flags[i]
            if flag & _SYNTHETIC:
                cut = left_out = True
            elif runs and not cut and not flag & _BREAK:
                runs[-1][1] = i + 1
            else:
                runs.append([i, i + 1])
                cut = False
        if len(runs) > 1 or left_out:
            trimmed = []
            for s, e in runs:
                while s < e and text[s].isspace():
                    s += 1
                while e > s and text[e - 1].isspace():
                    e -= 1
                if any(ch.isalnum() for ch in text[s:e]):
                    trimmed.append([s, e])
            runs = trimmed
        return [(self._starts[s], self._ends[e - 1]) for s, e in runs]

    def spans_to_original(self, spans: Iterable[Span]) -> list[Span]:
        """Spans found in ``text`` as spans of the original (see :meth:`pieces`)."""
        if self._starts is None:
            return list(spans)
        return resolve(Span(s, e, span.category, span.source, span.confidence)
                       for span in spans for s, e in self.pieces(span.start, span.end))


def is_plain(text: str) -> bool:
    """Whether ``text`` reads as it is written: NFKC without control or invisible
    characters, smart quotes, markup, entities or words broken at the end of a line. Cheap
    (a few microseconds a report): substring tests first, a regular expression only where
    one of them hits."""
    if text.isascii():
        if text.encode("ascii").translate(None, _PLAIN_BYTES):
            return False
    elif _SPECIAL.search(text) or not unicodedata.is_normalized("NFKC", text):
        return False
    if "<" in text and _HTML_SNIFF.search(text):
        return False
    if "&" in text and _ENTITY.search(text):
        return False
    if ("-\n" in text or "-\r" in text) and _LINE_HYPHEN.search(text):
        return False
    return not ("{\\rtf" in text[:256] and _RTF_START.match(text))


def normalise_for_detection(text: str) -> Normalised:
    """The report as the detectors should read it, mapped back to ``text`` (see the module)."""
    if is_plain(text):
        return Normalised(text)
    chars, starts, ends, flags = _markup(text, keep_hidden=False)
    chars, starts, ends, flags = _fold(chars, starts, ends, flags, join_lines=True)
    out = "".join(chars)
    if out == text and starts == list(range(len(text))):  # nothing to do ("x <y and z>")
        return Normalised(text)
    return Normalised(text, out, starts, ends, flags)


def fold_text(text: str) -> str:
    """``text`` as a reader sees it, for matching: markup dropped but every piece of text in
    it kept (attribute values, scripts, RTF tables and all), entities and escapes decoded,
    invisible characters removed, NFKC, quotes folded. Lines are not joined at hyphens."""
    if is_plain(text):
        return text
    chars, starts, ends, flags = _markup(text, keep_hidden=True)
    return "".join(_fold(chars, starts, ends, flags, join_lines=False)[0])


# ------------------------------------------------------------------------------ internals

class _Builder:
    """Characters and where they came from, appended one by one."""

    __slots__ = ("chars", "starts", "ends", "flags", "pending")

    def __init__(self) -> None:
        self.chars: list[str] = []
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.flags = bytearray()
        self.pending = 0  # flags owed to the next character (markup dropped before it)

    def text(self, chars: str, start: int, end: int) -> None:
        """``chars``, each from ``original[start:end]``."""
        for ch in chars:
            self.chars.append(ch)
            self.starts.append(start)
            self.ends.append(end)
            self.flags.append(self.pending)
            self.pending = 0

    def run(self, run: str, start: int) -> None:
        """``run`` as written at ``start``."""
        if not run:
            return
        self.chars.extend(run)
        self.starts.extend(range(start, start + len(run)))
        self.ends.extend(range(start + 1, start + len(run) + 1))
        self.flags.append(self.pending)
        self.flags.extend(bytes(len(run) - 1))
        self.pending = 0

    def markup(self, stands_for: str, start: int, end: int) -> None:
        """Markup at ``original[start:end]``: gone, or read as ``stands_for`` (whitespace)."""
        self.pending |= _BREAK
        for ch in stands_for:
            self.chars.append(ch)
            self.starts.append(start)
            self.ends.append(end)
            self.flags.append(_SYNTHETIC | self.pending)
            self.pending = _BREAK

    def result(self):
        return self.chars, self.starts, self.ends, self.flags


def _markup(text: str, keep_hidden: bool):
    if _RTF_START.match(text):
        return _rtf(text, keep_hidden)
    if _HTML_SNIFF.search(text):
        return _html(text, keep_hidden)
    out = _Builder()
    pos = 0
    for m in _ENTITY.finditer(text):  # escaped text without tags ("O&#39;Brien")
        decoded = _entity(m.group())
        if decoded is None:
            continue
        out.run(text[pos:m.start()], pos)
        out.text(decoded, m.start(), m.end())
        pos = m.end()
    out.run(text[pos:], pos)
    return out.result()


def _entity(entity: str) -> str | None:
    import html

    decoded = html.unescape(entity)
    return None if decoded == entity else decoded


def _html(text: str, keep_hidden: bool):
    out = _Builder()
    pos = 0
    for m in _HTML_TOKEN.finditer(text):
        out.run(text[pos:m.start()], pos)
        pos = m.end()
        token = m.group()
        if token[0] == "&":
            decoded = _entity(token)
            if decoded is None:
                out.run(token, m.start())
            else:
                out.text(decoded, m.start(), m.end())
        elif m.group(1):  # <script>, <style>
            if keep_hidden:
                out.markup(" " + re.sub(r"<[^>]*>", " ", token) + " ", m.start(), m.end())
            else:
                out.markup("\n", m.start(), m.end())
        elif m.group(3):  # a tag
            name = m.group(3).lower()
            sep = "" if name in _INLINE_TAGS else "\t" if name in _CELL_TAGS else (
                "\n" if name in _BLOCK_TAGS else " ")
            if keep_hidden:
                values = [next(v for v in a.groups() if v is not None)
                          for a in _ATTR_VALUE.finditer(m.group(4))]
                if values:
                    sep = " " + " ".join(values) + " "
            out.markup(sep, m.start(), m.end())
        elif keep_hidden and token.startswith("<!--"):
            out.markup(" " + token[4:].removesuffix("-->") + " ", m.start(), m.end())
        else:
            out.markup("", m.start(), m.end())
    out.run(text[pos:], pos)
    return out.result()


def _rtf(text: str, keep_hidden: bool):
    import codecs

    out = _Builder()
    stack: list[tuple[bool, bool, int]] = []
    # In a hidden destination (dropped; kept with ``keep_hidden``); in a destination read on
    # lines of its own; how many characters after a \uN stand in for it, and how many of
    # them are still to pass over.
    skip = apart = False
    uc = 1
    fallback = 0
    group_start = star = False
    binary = 0  # bytes of \binN data still to pass over
    decoder = codecs.getincrementaldecoder("cp1252")(errors="replace")
    byte_start = -1  # where the bytes the decoder holds began

    for m in _RTF_TOKEN.finditer(text):
        start, end = m.start(), m.end()
        word, param, hexbyte, symbol, brace, newline, run = m.groups()
        if binary:
            take = min(binary, end - start)
            binary -= take
            out.markup("", start, start + take)
            if take < end - start:  # the rest of this token is text again: rare, read it plain
                out.run(text[start + take:end], start + take)
            continue
        if hexbyte is None and byte_start >= 0:
            decoder.reset()
            byte_start = -1
        if brace is not None:
            if brace == "{":
                stack.append((skip, apart, uc))
                group_start, star, apart = True, False, False
            elif stack:
                out.markup("\n" if apart else "", start, end)
                skip, apart, uc = stack.pop()
                group_start = star = False
                fallback = 0
                continue
            fallback = 0
            out.markup("", start, end)
            continue
        opening, group_start = group_start, False
        if symbol == "*":
            star = opening
            group_start = opening
            out.markup("", start, end)
            continue
        if word is not None:
            if (opening or star) and not skip and (star or word in _HIDDEN_DESTINATIONS):
                if keep_hidden:
                    apart = True
                    out.markup("\n", start, start)
                else:
                    skip = True
            elif opening and not skip and word in _APART_DESTINATIONS:
                apart = True
                out.markup("\n", start, start)
            star = False
            if word in ("pict", "objdata") and not skip:
                skip = True  # pictures and objects are data, never text
            value = int(param) if param else None
            if word == "bin" and value:
                binary = value
                out.markup("", start, end)
                continue
            if skip:
                out.markup("", start, end)
                continue
            if word == "u" and value is not None:
                code = value + 65536 if value < 0 else value  # a signed 16-bit number
                if 0xDC00 <= code <= 0xDFFF and out.chars and "\ud800" <= out.chars[-1] <= "\udbff":
                    # The low half of a surrogate pair: one character from both escapes.
                    high = ord(out.chars[-1]) - 0xD800
                    out.chars[-1] = chr(0x10000 + (high << 10) + code - 0xDC00)
                    out.ends[-1] = end
                else:
                    out.text(chr(code) if code <= 0x10FFFF else "\ufffd", start, end)
                fallback = uc
                continue
            fallback = 0
            if word == "uc" and value is not None:
                uc = max(0, value)
            elif word == "ansicpg" and value:
                try:
                    decoder = codecs.getincrementaldecoder(f"cp{value}")(errors="replace")
                except LookupError:
                    pass
            if word in _RTF_BREAKS:
                out.markup(_RTF_BREAKS[word], start, end)
            elif word in _RTF_CHARS:
                if _RTF_CHARS[word]:
                    out.text(_RTF_CHARS[word], start, end)
            else:
                out.markup("", start, end)
            continue
        star = False
        if skip:
            out.markup("", start, end)
            continue
        if newline is not None:
            continue  # dropped, spans may run across it
        if fallback and (hexbyte is not None or run is not None or symbol is not None):
            # The characters standing in for a \uN before: part of it.
            if run is not None and len(run) > fallback:
                end = start + fallback
                _extend(out, end)
                fallback = 0
                out.run(text[end:m.end()], end)
                continue
            fallback -= 1 if run is None else len(run)
            _extend(out, end)
            continue
        if hexbyte is not None:
            if byte_start < 0:
                byte_start = start
            decoded = decoder.decode(bytes([int(hexbyte, 16)]))
            if decoded:
                out.text(decoded, byte_start, end)
                byte_start = -1
        elif symbol is not None:
            if symbol in "\\{}":
                out.text(symbol, start, end)
            elif symbol == "~":
                out.text("\u00a0", start, end)
            elif symbol == "_":
                out.text("-", start, end)
            elif symbol in ("\n", "\r", "\r\n"):
                out.markup("\n", start, end)  # a backslash before a line break: \par
            elif symbol == "-":
                pass  # an optional hyphen
            else:
                out.markup("", start, end)
        elif run is not None:
            out.run(run, start)
    return out.result()


def _extend(out: _Builder, end: int) -> None:
    if out.ends:
        out.ends[-1] = max(out.ends[-1], end)


def _fold(chars: list[str], starts: list[int], ends: list[int], flags: bytearray,
          join_lines: bool):
    """NFKC per character, invisible and control characters removed, quotes folded, and
    (``join_lines``) words broken by a hyphen at the end of a line joined again."""
    out_chars: list[str] = []
    out_starts: list[int] = []
    out_ends: list[int] = []
    out_flags = bytearray()
    owed = 0
    joined = "".join(chars)
    if joined.isascii() and not joined.encode("ascii").translate(None, _PLAIN_BYTES):
        # Nothing to fold (HTML or RTF of plain text): the characters as they are.
        out_chars, out_starts, out_ends, out_flags = chars, starts, ends, flags
        chars = ()
    for ch, start, end, flag in zip(chars, starts, ends, flags):
        if " " <= ch <= "~" or ch in _KEEP_CONTROLS:
            folded = ch
        elif _GENERIC_MARK.match(ch):
            if out_chars and out_chars[-1].isalnum() and out_ends[-1] == start:
                composed = unicodedata.normalize("NFC", out_chars[-1] + ch)
                if len(composed) == 1:
                    out_chars[-1] = composed
                out_ends[-1] = end  # the mark goes wherever its letter goes
            elif flag & (_BREAK | _SYNTHETIC):
                owed = _BREAK
            continue
        else:
            folded = ch.translate(_FOLD)
            if folded == ch:
                category = unicodedata.category(ch)
                if category in ("Cc", "Cf", "Cs") or ch == "\u00ad":
                    folded = ""
                else:
                    folded = unicodedata.normalize("NFKC", ch).translate(_FOLD)
        if not folded:
            if flag & (_BREAK | _SYNTHETIC):
                owed = _BREAK
            continue
        for piece in folded:
            out_chars.append(piece)
            out_starts.append(start)
            out_ends.append(end)
            out_flags.append(flag | owed)
            owed = 0
    if join_lines and "-" in out_chars and "\n" in out_chars:
        text = "".join(out_chars)
        drop: set[int] = set()
        for m in _LINE_HYPHEN.finditer(text):
            before, after = text[m.start() - 1], text[m.end()]
            if before.islower() and after.isupper():
                continue
            drop.update(range(m.start(), m.end()))
        if drop:
            kept = [i for i in range(len(out_chars)) if i not in drop]
            owed_at = bytearray(len(out_chars) + 1)
            carry = 0
            for i in range(len(out_chars)):
                if i in drop:
                    if out_flags[i] & (_SYNTHETIC | _BREAK):
                        carry = _BREAK
                else:
                    owed_at[i] = carry
                    carry = 0
            out_chars = [out_chars[i] for i in kept]
            out_starts = [out_starts[i] for i in kept]
            out_ends = [out_ends[i] for i in kept]
            out_flags = bytearray(out_flags[i] | owed_at[i] for i in kept)
    return out_chars, out_starts, out_ends, out_flags
