"""The audit mode of the review app: walk only the audit sample, mark each case.

Shows the outgoing image (what is shared) and the outgoing report with the suspects marked
(PHI-looking text outside the known stand-ins; see ``audit.target``), and records Clean,
Residual PHI (from the text selected in the report, or the last box drawn on the
``audit boxes`` Shapes layer) and Over-redaction through
:class:`~updp_napari.audit.session.AuditSession`: on disk when the button is pressed, with
the seconds spent on the case. No report text goes to the status line or a log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..audit.session import AuditSession
from ..core.errors import UpdpError
from ..core.vocabulary import AUDIT_CATEGORIES
from .report_view import _char_format, _MappedText

if TYPE_CHECKING:  # napari passes the viewer to parameters annotated with its class
    import napari

IMAGE_LAYER = "outgoing image"
BOXES_LAYER = "audit boxes"
PHI_CATEGORIES = AUDIT_CATEGORIES


class OutgoingReportView(_MappedText):
    """The report as shared. Suspects (PHI-looking text) in the PHI colour, known stand-ins
    in the replacement colour; a selection maps back to report offsets exactly."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setPlaceholderText("no report")

    def set_report(self, text: str, suspects, stand_ins=None) -> None:
        runs = [(a, b, _char_format("replacement", tooltip="stand-in"))
                for a, b in (stand_ins or [])]
        covered = [(a, b) for a, b, _ in runs]
        for s in suspects:
            if not any(s.start < b and a < s.end for a, b in covered):
                runs.append((s.start, s.end, _char_format(
                    "redact", tooltip=f"{s.category} · looks like PHI ({s.source})")))
        runs.sort(key=lambda r: r[0])
        self._write(text, runs)


class AuditWidget(QWidget):
    """The audit dock over an :class:`AuditSession` with a drawn sample."""

    def __init__(self, viewer: napari.viewer.Viewer, audit: AuditSession | None = None, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self.audit: AuditSession | None = None
        layout = QVBoxLayout(self)
        self.heading = QLabel("No audit is open. Choose a review workspace or a share package "
                              "whose sample was drawn with updp audit TARGET --sample N.")
        self.heading.setWordWrap(True)
        layout.addWidget(self.heading)
        self.open_button = QPushButton("Open audit…", self)
        self.open_button.clicked.connect(lambda _checked=False: self.choose_target())
        layout.addWidget(self.open_button)
        self.report = OutgoingReportView(self)
        layout.addWidget(self.report, 1)
        row = QHBoxLayout()
        self.category = QComboBox(self)
        self.category.addItems(PHI_CATEGORIES)
        self.category.setToolTip("PHI category of a residual-PHI finding")
        self.comment = QLineEdit(self)
        self.comment.setPlaceholderText("comment (never the leaked text)")
        row.addWidget(self.category)
        row.addWidget(self.comment, 1)
        layout.addLayout(row)
        buttons = QHBoxLayout()
        self.clean_button = self._button("Clean", self.mark_clean, buttons,
                                         "nothing found: mark the case clean and go on")
        self.residual_button = self._button("Residual PHI", self.mark_residual, buttons,
                                            "the selected report text, or the last box drawn "
                                            f"on '{BOXES_LAYER}'")
        self.over_button = self._button("Over-redaction", self.mark_over_redaction, buttons,
                                        "pathology text or image content lost")
        layout.addLayout(buttons)
        moves = QHBoxLayout()
        self.previous_button = self._button("Previous", self.previous, moves)
        self.next_button = self._button("Next", self.next, moves)
        layout.addLayout(moves)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        if audit is not None:
            self.open_session(audit)

    def _button(self, text: str, slot, row: QHBoxLayout, tip: str = "") -> QPushButton:
        button = QPushButton(text, self)
        button.clicked.connect(lambda _checked=False: slot())
        if tip:
            button.setToolTip(tip)
        row.addWidget(button)
        return button

    # -- showing ---------------------------------------------------------------------------

    def open_session(self, audit: AuditSession) -> None:
        if audit.sample is None:
            raise UpdpError(f"{audit.target.path}: no audit sample yet (updp audit TARGET "
                            "--sample N)")
        self.audit = audit
        self.open_button.hide()
        self.show_case()

    def choose_target(self, folder: str | None = None) -> bool:
        """Open the audit of a workspace or package folder (asked for when not given)."""
        if folder is None:
            from qtpy.QtWidgets import QFileDialog

            folder = QFileDialog.getExistingDirectory(self, "Review workspace or share package")
            if not folder:
                return False
        try:
            audit = AuditSession.open(folder)
        except UpdpError as exc:
            self.say(str(exc))
            return False
        try:
            self.open_session(audit)
        except UpdpError as exc:
            audit.close()
            self.say(str(exc))
            return False
        return True

    def screenshot(self, path) -> None:
        """Save the whole napari window as a PNG."""
        from pathlib import Path

        from qtpy.QtWidgets import QApplication

        window = self.window()
        for _ in range(3):
            QApplication.processEvents()
        if not window.grab().save(str(Path(path)), "PNG"):
            raise UpdpError(f"{path}: cannot write the screenshot (folder missing or not writable?)")

    def _layers(self):
        names = [layer.name for layer in self.viewer.layers]
        if BOXES_LAYER not in names:
            self.viewer.add_shapes(name=BOXES_LAYER, edge_color="#ff3b30", face_color="#00000000",
                                   edge_width=2)
        return self.viewer.layers[BOXES_LAYER]

    def show_case(self) -> None:
        audit = self.audit
        if audit is None or audit.current_id is None:
            return
        view = audit.view(audit.current_id)
        image = audit.image(view.case_id)
        if image is not None:
            if IMAGE_LAYER in [layer.name for layer in self.viewer.layers]:
                self.viewer.layers[IMAGE_LAYER].data = image
            else:
                self.viewer.add_image(image, name=IMAGE_LAYER, colormap="gray",
                                      contrast_limits=(0.0, 1.0))
                self.viewer.layers.move(self.viewer.layers.index(IMAGE_LAYER), 0)
        boxes = self._layers()
        boxes.data = []
        boxes.mode = "add_rectangle"
        self.report.set_report(view.report, view.suspects, view.stand_ins)
        place, total = audit.position()
        verdicts = ", ".join(sorted(v.replace("_", " ") for v in view.verdicts)) or "not audited"
        self.heading.setText(f"Audit case {place} of {total}: {view.case_id} · {view.site} · "
                             f"{view.category} · {len(view.suspects)} suspect(s) · {verdicts}")

    def say(self, text: str) -> None:
        self.status.setText(text)

    # -- actions ---------------------------------------------------------------------------

    def _drawn_box(self) -> tuple[float, float, float, float] | None:
        layer = self.viewer.layers[BOXES_LAYER] if BOXES_LAYER in [
            layer.name for layer in self.viewer.layers] else None
        if layer is None or not len(layer.data):
            return None
        corners = np.asarray(layer.data[-1])[:, -2:]  # (row, column) vertices
        (y0, x0), (y1, x1) = corners.min(axis=0), corners.max(axis=0)
        image = self.viewer.layers[IMAGE_LAYER].data if IMAGE_LAYER in [
            layer.name for layer in self.viewer.layers] else None
        if image is not None:
            height, width = image.shape[:2]
            x0, x1 = max(0.0, x0), min(float(width), x1)
            y0, y1 = max(0.0, y0), min(float(height), y1)
        return float(x0), float(y0), float(x1), float(y1)

    def _mark(self, verdict: str, **where) -> bool:
        try:
            finding = self.audit.mark(verdict, comment=self.comment.text(), **where)
        except UpdpError as exc:
            self.say(str(exc))
            return False
        self.comment.clear()
        self.say(f"recorded {finding.verdict.replace('_', ' ')} (finding {finding.finding_id})")
        self.show_case()
        return True

    def mark_clean(self) -> bool:
        done = self._mark("clean")
        if done:
            self.next()
        return done

    def mark_residual(self) -> bool:
        span = self.report.selection()
        category = self.category.currentText()
        if span is not None:
            return self._mark("residual_phi", span=span, category=category)
        box = self._drawn_box()
        if box is not None:
            return self._mark("residual_phi", box=box, category=category)
        self.say(f"select the leaked text in the report, or draw a box on '{BOXES_LAYER}'")
        return False

    def mark_over_redaction(self) -> bool:
        span = self.report.selection()
        box = None if span is not None else self._drawn_box()
        return self._mark("over_redaction", span=span, box=box)

    def next(self) -> None:
        if self.audit is not None and self.audit.next() is not None:
            self.show_case()
        else:
            self.say("the last case of the sample")

    def previous(self) -> None:
        if self.audit is not None and self.audit.previous() is not None:
            self.show_case()
        else:
            self.say("the first case of the sample")
