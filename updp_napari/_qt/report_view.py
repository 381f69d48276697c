"""The report with its spans marked: PHI to hide, pathology to keep, reviewer changes.

Every character of the report is one character of the document (line breaks become block
breaks), so a selection in the view maps back to report offsets exactly; ``\\r`` is not
shown and maps to nothing.
"""

from __future__ import annotations

from qtpy.QtCore import QEvent, Qt, QUrl, Signal
from qtpy.QtGui import QColor, QFont, QTextCharFormat, QTextCursor
from qtpy.QtWidgets import QTextBrowser, QToolTip

from ..review.marking import STYLES, covering, span_kind, span_tooltip

SPAN_SCHEME = "span"


def _char_format(kind: str, anchor: str | None = None, tooltip: str = "") -> QTextCharFormat:
    fmt = QTextCharFormat()
    background, foreground, _ = STYLES[kind]
    fmt.setBackground(QColor(background))
    fmt.setForeground(QColor(foreground))
    if kind == "kept_phi":
        fmt.setFontStrikeOut(False)
        fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.DashUnderline)
    if anchor:
        fmt.setAnchor(True)
        fmt.setAnchorHref(anchor)
    if tooltip:
        fmt.setToolTip(tooltip)
    return fmt


class _MappedText(QTextBrowser):
    """A read-only text view that knows which report offset each character shows."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setLineWrapMode(QTextBrowser.LineWrapMode.WidgetWidth)
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.TypeWriter)
        self.document().setDefaultFont(font)
        self._offsets: list[int] = [0]  # document position -> text offset

    def _write(self, text: str, runs: list[tuple[int, int, QTextCharFormat | None]]) -> None:
        """Show ``text`` with ``runs`` of (start, end, format) over it."""
        self.clear()
        cursor = QTextCursor(self.document())
        plain = QTextCharFormat()
        offsets: list[int] = []
        pieces, pos = [], 0
        for start, end, fmt in runs:
            if start > pos:
                pieces.append((pos, start, None))
            pieces.append((start, end, fmt))
            pos = end
        if pos < len(text):
            pieces.append((pos, len(text), None))
        for start, end, fmt in pieces:
            fmt = fmt or plain
            run_start = start
            for i in range(start, end):
                ch = text[i]
                if ch in "\r\n":
                    if i > run_start:
                        cursor.insertText(text[run_start:i], fmt)
                        offsets.extend(range(run_start, i))
                    if ch == "\n":
                        cursor.insertBlock()
                        cursor.setCharFormat(plain)
                        offsets.append(i)
                    run_start = i + 1
            if end > run_start:
                cursor.insertText(text[run_start:end], fmt)
                offsets.extend(range(run_start, end))
        offsets.append(len(text))
        self._offsets = offsets
        self.moveCursor(QTextCursor.MoveOperation.Start)

    def text_offset(self, position: int) -> int:
        """The report offset shown at document ``position``."""
        position = max(0, min(position, len(self._offsets) - 1))
        return self._offsets[position]

    def document_position(self, offset: int) -> int:
        """The document position of report ``offset`` (the first one at or after it)."""
        for position, shown in enumerate(self._offsets):
            if shown >= offset:
                return position
        return len(self._offsets) - 1

    def viewportEvent(self, event):
        # Qt's text views do not show character-format tooltips by themselves.
        if event.type() == QEvent.Type.ToolTip:
            tip = self.cursorForPosition(event.pos()).charFormat().toolTip()
            if tip:
                QToolTip.showText(event.globalPos(), tip, self.viewport())
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().viewportEvent(event)

    def background_at(self, offset: int) -> str:
        """The background colour drawn at report ``offset`` (``#rrggbb``), for checks."""
        cursor = QTextCursor(self.document())
        cursor.setPosition(self.document_position(offset) + 1)
        brush = cursor.charFormat().background()
        return brush.color().name() if brush.style() != Qt.BrushStyle.NoBrush else ""

    def selection(self) -> tuple[int, int] | None:
        """The selected report range as (start, end) offsets, or None."""
        cursor = self.textCursor()
        if not cursor.hasSelection():
            return None
        start = self.text_offset(cursor.selectionStart())
        end = self.text_offset(cursor.selectionEnd())
        return (start, end) if end > start else None

    def select_range(self, start: int, end: int) -> None:
        cursor = QTextCursor(self.document())
        cursor.setPosition(self.document_position(start))
        cursor.setPosition(self.document_position(end), QTextCursor.MoveMode.KeepAnchor)
        self.setTextCursor(cursor)


class ReportView(_MappedText):
    """The original report; spans are links: a click toggles one, a selection plus the
    redact key adds a redaction."""

    span_clicked = Signal(int)
    redact_requested = Signal(int, int)

    def __init__(self, parent=None, redact_key: str = "X"):
        super().__init__(parent)
        self.redact_key = redact_key
        self.spans: dict[int, object] = {}
        self.anchorClicked.connect(self._on_anchor)
        self.setPlaceholderText("no report")

    def set_report(self, text: str, spans) -> None:
        self.spans = {s.span_id: s for s in spans}
        runs = [(a, b, _char_format(span_kind(s), f"{SPAN_SCHEME}:{s.span_id}", span_tooltip(s)))
                for a, b, s in covering([s for s in spans if s.end <= len(text)])]
        self._write(text, runs)

    def tooltip_at(self, offset: int) -> str:
        cursor = QTextCursor(self.document())
        cursor.setPosition(self.document_position(offset) + 1)
        return cursor.charFormat().toolTip()

    def request_redaction(self) -> bool:
        selected = self.selection()
        if selected is None:
            return False
        self.redact_requested.emit(*selected)
        return True

    def keyPressEvent(self, event):
        if event.text().upper() == self.redact_key and not event.modifiers() & ~(
                Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.KeypadModifier):
            if self.request_redaction():
                event.accept()
                return
        super().keyPressEvent(event)

    def _on_anchor(self, url: QUrl) -> None:
        # A drag that selected text also ends on a link: only a plain click toggles.
        if self.textCursor().hasSelection():
            return
        text = url.toString()
        if text.startswith(f"{SPAN_SCHEME}:"):
            try:
                span_id = int(text.split(":", 1)[1])
            except ValueError:
                return
            if span_id in self.spans:
                self.span_clicked.emit(span_id)


class RedactedView(_MappedText):
    """The redacted report as it would be shared, replacements marked."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setPlaceholderText("no report")

    def set_pieces(self, pieces) -> None:
        text, runs, pos = [], [], 0
        for piece in pieces:
            if piece.span is not None:
                runs.append((pos, pos + len(piece.text),
                             _char_format("replacement", tooltip=f"{piece.span.category} replaced")))
            text.append(piece.text)
            pos += len(piece.text)
        self._write("".join(text), runs)
