"""The review dock: a case queue, original and synthetic side by side, the report with its
spans, decisions and regeneration, all over a :class:`ReviewSession`.

The viewer shows the original (left) and the synthetic image (right) in napari's grid mode,
three layers per grid cell, with one camera for both, so zooming one zooms the other. The
preserved region is a Labels layer the reviewer edits with napari's own paint tools; the
edit is saved when leaving the case, deciding, regenerating or pressing Save mask.
"""

from __future__ import annotations

import html
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QKeySequence, QShortcut
from qtpy.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ..core.boxes import Box
from ..core.errors import UpdpError
from ..core.jobs import is_progress
from ..core.users import current_user_or_none
from ..core.vocabulary import REVIEWER_CATEGORIES
from ..export import MARKS_NOT_CARRIED
from ..review.session import Regenerated, ReviewSession
from .background import JobRunner, StallMeter
from .case_queue import CaseQueue
from .report_view import STYLES, RedactedView, ReportView

if TYPE_CHECKING:  # napari passes the viewer to parameters annotated with its class
    import napari

#: Reviewer keys: shown on the buttons, bound in the dock and on the viewer canvas.
KEYS = {"accept": "A", "reject": "R", "flag": "F", "next": "N", "previous": "P",
        "regenerate": "G", "redact": "X", "undo": "U", "shortcuts": "?"}
#: What each key does, for the key help (``?``).
KEY_HELP = {"accept": "accept the case (its image, or what the box below the scores says)",
            "reject": "reject the case", "flag": "flag it for another look",
            "next": "next case (following the status filter)", "previous": "previous case",
            "regenerate": "regenerate the synthetic image with the settings shown",
            "redact": "redact the selected report text", "undo": "take the decision back "
            "(pending again; kept in the history)", "shortcuts": "show or hide this help"}
#: The six layers the dock owns, in grid order: three in the left cell, three in the right.
LAYER_NAMES = {"original": "original", "mask": "preserved region", "boxes": "burned-in text",
               "synthetic": "counterpart (synthetic)", "difference": "difference",
               "boxes_synthetic": "burned-in text (synthetic)"}
#: What a blind reading (second-reader mode) led to, in the dock's message.
READING_OUTCOME = {"waiting": "read ({decision}, blind; waiting for a second reader)",
                   "agreed": "read ({decision}); both readers agree:",
                   "disagreed": "read ({decision}); the readers disagree, flagged for "
                                "adjudication:"}
#: The right-hand image's name on a case out of the filter's domain.
OUT_OF_DOMAIN_LAYER = "original, text removed (NOT de-identified)"
LAYERS_PER_CELL = 3
PROGRESS_INTERVAL_MS = 200
REDACTION_CATEGORIES = REVIEWER_CATEGORIES


def _label(text: str, key: str) -> str:
    return f"{text} ({key})"


class ReviewWidget(QWidget):
    """The review dock for ``viewer`` over ``session`` (None: it offers to open a workspace).

    ``filter`` is the generative filter used by Regenerate (default: the shipped model);
    ``background`` runs regeneration on a worker thread (default: unless ``UPDP_SYNC=1``).
    """

    def __init__(self, viewer: napari.viewer.Viewer, session: ReviewSession | None = None,
                 filter=None, background: bool | None = None):
        super().__init__()
        # Regeneration and rescoring run torch on a worker thread. torch's first import holds
        # the interpreter lock for a third of a second, so it is paid here, while the window
        # is being built, and never in the middle of a reviewer's work.
        import torch  # noqa: F401

        self.viewer = viewer
        self.session: ReviewSession | None = None
        self.filter = filter
        self.layers: dict = {}
        self.last_regeneration: dict | None = None
        self._override_armed: tuple[str, str] | None = None  # (case, decision) refused once
        self._shown: str | None = None
        self._shape: tuple | None = None
        self._regeneration_started = 0.0
        self._regeneration: dict = {}
        self.runner = JobRunner(self._on_job_item, self._on_job_done, background, parent=self)
        self.stall_meter = StallMeter(parent=self)
        # Progress is shown a few times a second, not per step: QProgressBar repaints the
        # window at once on every change, which is costly on a software-rendered display.
        self._progress_latest: tuple[int, int] | None = None
        self._progress_timer = QTimer(self)
        self._progress_timer.setInterval(PROGRESS_INTERVAL_MS)
        self._progress_timer.timeout.connect(self._show_progress)
        self._difference_stale = False
        self._regenerating = False
        self.setMinimumWidth(480)

        self.pages = QStackedWidget()
        self.pages.addWidget(self._open_page())
        self.pages.addWidget(self._review_page())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.pages)
        self._bind_keys()
        if session is not None:
            self.open_session(session)

    # -- building --------------------------------------------------------------------------

    def _open_page(self) -> QWidget:
        page = QWidget()
        self.reviewer_edit = QLineEdit()
        self.reviewer_edit.setText(current_user_or_none() or "")
        self.open_button = QPushButton("Open workspace…")
        self.open_button.clicked.connect(self.choose_workspace)
        self.open_message = QLabel("No review workspace is open. Choose the folder that "
                                   "`updp run` filled (it holds workspace.sqlite).")
        self.open_message.setWordWrap(True)
        layout = QVBoxLayout(page)
        layout.addWidget(self.open_message)
        row = QHBoxLayout()
        row.addWidget(QLabel("reviewer:"))
        row.addWidget(self.reviewer_edit, 1)
        layout.addLayout(row)
        layout.addWidget(self.open_button)
        layout.addStretch(1)
        return page

    def _button(self, text: str, key: str | None, slot, tip: str = "") -> QPushButton:
        button = QPushButton(_label(text, key) if key else text)
        button.clicked.connect(slot)
        if tip:
            button.setToolTip(tip)
        return button

    def _review_page(self) -> QWidget:
        page = QWidget()
        self.header = QLabel()
        self.header.setWordWrap(True)
        self.queue = CaseQueue()
        self.queue.case_chosen.connect(self._on_case_chosen)

        self.report_view = ReportView(redact_key=KEYS["redact"])
        self.report_view.span_clicked.connect(self.toggle_span)
        self.report_view.redact_requested.connect(self.add_redaction)
        self.redacted_view = RedactedView()
        legend = QLabel(" ".join(
            f'<span style="background:{bg}; color:{fg}">&nbsp;{words}&nbsp;</span>'
            for bg, fg, words in STYLES.values()))
        legend.setWordWrap(True)
        legend.setToolTip("click a marked span to switch it between redacted and kept; select "
                          f"text and press {KEYS['redact']} to redact it")
        self.category = QComboBox()
        self.category.addItems(REDACTION_CATEGORIES)
        self.category.setToolTip("the category a new redaction is given")
        self.redact_button = self._button("Redact selection", KEYS["redact"],
                                          lambda: self.add_redaction_from_selection())
        texts = QSplitter(Qt.Orientation.Horizontal)
        original_box, redacted_box = QWidget(), QWidget()
        for box, title, view in ((original_box, "report", self.report_view),
                                 (redacted_box, "redacted (as shared)", self.redacted_view)):
            inner = QVBoxLayout(box)
            inner.setContentsMargins(0, 0, 0, 0)
            inner.addWidget(QLabel(title))
            inner.addWidget(view)
            texts.addWidget(box)
        report_panel = QWidget()
        report_layout = QVBoxLayout(report_panel)
        report_layout.setContentsMargins(0, 0, 0, 0)
        report_layout.addWidget(legend)
        report_layout.addWidget(texts, 1)
        row = QHBoxLayout()
        row.addWidget(self.redact_button)
        row.addWidget(self.category)
        row.addStretch(1)
        report_layout.addLayout(row)
        self.report_panel = report_panel

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.queue)
        split.addWidget(report_panel)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 3)

        self.scores = QLabel()
        self.scores.setWordWrap(True)
        from ..review.scores import PRIVACY_MEANING, UTILITY_MEANING

        self.scores.setToolTip(f"{PRIVACY_MEANING}.\n{UTILITY_MEANING}.")

        overlays = QHBoxLayout()
        self.show_mask = QCheckBox("preserved region")
        self.show_boxes = QCheckBox("burned-in text")
        self.show_difference = QCheckBox("difference")
        for box, checked in ((self.show_mask, True), (self.show_boxes, True),
                             (self.show_difference, False)):
            box.setChecked(checked)
            box.toggled.connect(self._apply_overlays)
            overlays.addWidget(box)
        self.save_mask_button = self._button("Save mask", None, self.save_mask,
                                             "store the edited preserved region now (it is also "
                                             "stored when you leave the case or decide)")
        overlays.addStretch(1)
        overlays.addWidget(self.save_mask_button)

        regen = QGroupBox("regenerate the synthetic image")
        self.strength = QDoubleSpinBox()
        self.strength.setRange(0.05, 1.0)
        self.strength.setSingleStep(0.05)
        self.strength.setValue(1.0)
        self.strength.setToolTip("how far the image is noised before denoising (1: from noise)")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.regenerate_button = self._button("Regenerate", KEYS["regenerate"], self.regenerate)
        self.cancel_button = self._button("Cancel", None, self.cancel_regeneration)
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        grid = QGridLayout(regen)
        grid.addWidget(QLabel("strength"), 0, 0)
        grid.addWidget(self.strength, 0, 1)
        grid.addWidget(QLabel("seed"), 0, 2)
        grid.addWidget(self.seed, 0, 3)
        grid.addWidget(self.regenerate_button, 1, 0, 1, 2)
        grid.addWidget(self.cancel_button, 1, 2)
        grid.addWidget(self.progress, 1, 3)

        self.comment = QLineEdit()
        self.comment.setPlaceholderText("comment kept with the decision")
        decide = QHBoxLayout()
        self.accept_button = self._button("Accept", KEYS["accept"], lambda: self.decide("accept"))
        self.reject_button = self._button("Reject", KEYS["reject"], lambda: self.decide("reject"))
        self.flag_button = self._button("Flag", KEYS["flag"], lambda: self.decide("flag"))
        self.undo_button = self._button("Undo", KEYS["undo"], self.undo,
                                        "take the case's decision back: pending again")
        for button in (self.accept_button, self.reject_button, self.flag_button,
                       self.undo_button):
            decide.addWidget(button)
        # Shown only on a case out of the filter's domain: what an accept would share.
        self.share_original = QCheckBox("share the original image (burned-in text removed; "
                                        "NOT de-identified: it shows the patient's anatomy)")
        self.share_original.setToolTip("this case has no synthetic counterpart; tick to accept "
                                       "sharing its original image with only the burned-in "
                                       "text removed (recorded with the decision)")
        self.share_original.setVisible(False)
        # Shown on a case whose image may not leave: an accept shares the report alone.
        self.report_only = QCheckBox("share the report only (the image is withheld)")
        self.report_only.setToolTip("accept this case for its redacted report; its image "
                                    "does not leave (recorded with the decision)")
        self.report_only.setVisible(False)
        nav = QHBoxLayout()
        self.previous_button = self._button("Previous", KEYS["previous"], self.previous)
        self.next_button = self._button("Next", KEYS["next"], self.next)
        nav.addWidget(self.previous_button)
        nav.addWidget(self.next_button)
        self.shortcuts_button = self._button("Keys", KEYS["shortcuts"], self.shortcuts)
        self.history_button = self._button("History", None, self.toggle_history,
                                           "what reviewers did to this case, oldest first")
        nav.addWidget(self.history_button)
        nav.addWidget(self.shortcuts_button)
        self.history = QLabel()
        self.history.setWordWrap(True)
        self.history.setVisible(False)
        self.keys_help = QLabel("<br>".join(
            f"<b>{html.escape(key)}</b> &nbsp;{html.escape(KEY_HELP[name])}"
            for name, key in KEYS.items()))
        self.keys_help.setVisible(False)

        self.message = QLabel()
        self.message.setWordWrap(True)

        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.header)
        layout.addWidget(split, 1)
        layout.addWidget(self.scores)
        layout.addLayout(overlays)
        layout.addWidget(regen)
        layout.addWidget(self.comment)
        layout.addWidget(self.share_original)
        layout.addWidget(self.report_only)
        layout.addLayout(decide)
        layout.addLayout(nav)
        layout.addWidget(self.history)
        layout.addWidget(self.keys_help)
        layout.addWidget(self.message)
        return page

    def run_action(self, name: str) -> None:
        """Run a reviewer action by its name in :data:`KEYS` (what the keys do)."""
        if self.session is None:
            return
        if name in ("accept", "reject", "flag"):
            self.decide(name)
        elif name == "redact":
            self.add_redaction_from_selection()
        else:
            getattr(self, name)()

    def _bind_keys(self) -> None:
        for name, key in KEYS.items():
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(lambda name=name: self.run_action(name))
        # The same keys on the canvas. A layer's own keys come first (with the preserved
        # region selected, P and F are napari's paint and fill).
        me = weakref.ref(self)
        viewer, bound = self.viewer, []
        for name, key in KEYS.items():
            if name == "redact":
                continue

            def press(_viewer, name=name):
                widget = me()
                if widget is not None:
                    widget.run_action(name)
            try:
                viewer.bind_key(key, press, overwrite=True)
                bound.append(key)
            except (AttributeError, TypeError, ValueError):
                pass

        def unbind(*_):
            for key in bound:
                try:
                    viewer.bind_key(key, None)
                except Exception:  # the viewer may be closed already
                    pass
        self.destroyed.connect(unbind)

    # -- opening ---------------------------------------------------------------------------

    def choose_workspace(self) -> bool:
        """Ask for a workspace folder and open it; False when none was chosen or it failed."""
        folder = QFileDialog.getExistingDirectory(self, "Open a review workspace")
        if not folder:
            return False
        return self.open_workspace(folder, self.reviewer_edit.text().strip() or None)

    def open_workspace(self, workspace, reviewer: str | None = None) -> bool:
        try:
            session = ReviewSession.open(workspace, reviewer=reviewer)
        except UpdpError as exc:
            self.open_message.setText(str(exc))
            self.pages.setCurrentIndex(0)
            return False
        self.open_session(session)
        return True

    def open_session(self, session: ReviewSession) -> None:
        if self.session is not None and self.session is not session:
            self._leave_case()
            self.session.close()
        self.session = session
        self.pages.setCurrentIndex(1)
        self._ensure_layers()
        self.refresh_queue()
        self.show_case()

    # -- layers ----------------------------------------------------------------------------

    def _ensure_layers(self) -> None:
        from napari.layers import Image, Labels, Shapes

        present = [name for name, layer in self.layers.items() if layer in self.viewer.layers]
        if len(present) == len(LAYER_NAMES):
            return
        for name in present:  # a partial set would break the grid's grouping: start afresh
            self.viewer.layers.remove(self.layers[name])
        blank = np.zeros((8, 8), np.float32)
        from ..core.vocabulary import FINDINGS

        boxes = {"edge_color": "yellow", "face_color": "transparent", "edge_width": 2, "ndim": 2}
        self.layers = {
            "original": Image(blank, name=LAYER_NAMES["original"], colormap="gray",
                              contrast_limits=(0.0, 1.0)),
            "mask": Labels(np.zeros((8, 8), np.uint8), name=LAYER_NAMES["mask"], opacity=0.45,
                           metadata={"labels": {i: n for i, n in enumerate(FINDINGS, start=1)}}),
            "boxes": Shapes(name=LAYER_NAMES["boxes"], **boxes),
            "synthetic": Image(blank, name=LAYER_NAMES["synthetic"], colormap="gray",
                               contrast_limits=(0.0, 1.0)),
            "difference": Image(blank, name=LAYER_NAMES["difference"], colormap="inferno",
                                blending="additive", opacity=0.8, contrast_limits=(0.0, 0.5)),
            "boxes_synthetic": Shapes(name=LAYER_NAMES["boxes_synthetic"], **boxes),
        }
        for index, layer in enumerate(self.layers.values()):
            self.viewer.layers.insert(index, layer)
        for name in ("original", "synthetic"):  # which image is which, on the canvas itself
            overlay = self.layers[name].name_overlay
            overlay.visible, overlay.box, overlay.font_size = True, True, 12
        grid = self.viewer.canvas.grid if hasattr(self.viewer, "canvas") else self.viewer.grid
        grid.stride = LAYERS_PER_CELL
        grid.shape = (1, -1)
        grid.spacing = 8  # screen pixels between the two images
        grid.enabled = True
        # The original is the active layer: its canvas keys are ours. With the preserved
        # region active, napari's paint keys (P, F, …) come first.
        self.viewer.layers.selection.active = self.layers["original"]
        self._shape = None
        self._apply_overlays()

    def _apply_overlays(self) -> None:
        if not self.layers:
            return
        self.layers["mask"].visible = self.show_mask.isChecked()
        self.layers["boxes"].visible = self.show_boxes.isChecked()
        self.layers["boxes_synthetic"].visible = self.show_boxes.isChecked()
        self.layers["difference"].visible = self.show_difference.isChecked()
        if self.show_difference.isChecked() and self._difference_stale:
            self._update_difference()

    def _update_difference(self) -> None:
        original = np.asarray(self.layers["original"].data, np.float32)
        synthetic = np.asarray(self.layers["synthetic"].data, np.float32)
        if original.shape == synthetic.shape:
            self.layers["difference"].data = np.abs(synthetic - original)
        self._difference_stale = False

    @staticmethod
    def _set_boxes(layer, boxes) -> None:
        layer.data = []
        if boxes:
            # Half-open boxes: each outline runs along the outer edges of exactly the pixels
            # the text mask covers (core.boxes.Box.corners).
            rectangles = [Box(*box).corners() for box in boxes]
            layer.add_rectangles(rectangles, edge_color="yellow", face_color="transparent",
                                 edge_width=2)

    # -- showing a case --------------------------------------------------------------------

    def refresh_queue(self) -> None:
        if self.session is not None:
            self.queue.set_cases(self.session.cases(), self.session.current_id)

    def show_case(self) -> None:
        """Put the session's current case on screen."""
        session = self.session
        case = session.current if session is not None else None
        another = case is not None and self._shown != case.case_id
        self._shown = None if case is None else case.case_id
        if case is None:
            self.header.setText("this workspace has no cases")
            self.report_view.set_report("", [])
            self.redacted_view.set_pieces([])
            self.scores.setText("")
            return
        self._ensure_layers()
        record = case.record
        original = case.original
        shape = original.shape if original is not None else case.shape or (8, 8)
        blank = np.zeros(shape, np.float32)
        synthetic = case.synthetic
        outside = case.out_of_domain
        self.layers["original"].data = original if original is not None else blank
        if outside is not None:  # what an accept would share: the original, text removed
            cleaned = case.cleaned
            self.layers["synthetic"].data = cleaned if cleaned is not None else blank
            self.layers["synthetic"].name = OUT_OF_DOMAIN_LAYER
        else:
            self.layers["synthetic"].data = synthetic if synthetic is not None else blank
            self.layers["synthetic"].name = LAYER_NAMES["synthetic"]
        risk = case.image_risk
        self.share_original.setChecked(False)
        self.share_original.setVisible(outside is not None)
        self.report_only.setChecked(False)
        self.report_only.setVisible(outside is not None or risk is not None)
        # The difference map is made when it is shown (a hidden layer costs nothing).
        self.layers["difference"].data = blank
        self._difference_stale = True
        self._apply_overlays()
        mask = case.mask
        self.layers["mask"].data = (np.array(mask, np.uint8) if mask is not None
                                    else np.zeros(shape, np.uint8))
        boxes = case.text_boxes
        self._set_boxes(self.layers["boxes"], boxes)
        self._set_boxes(self.layers["boxes_synthetic"], boxes)
        if self._shape != tuple(shape) or another:
            # Both images whole on every case: nothing of the chest wall or the text is off
            # screen until Home is pressed; once more when the window has laid itself out.
            first = self._shape is None
            self._shape = tuple(shape)
            self.viewer.reset_view()
            if first:
                QTimer.singleShot(0, self.viewer.reset_view)

        place, total = session.position()
        failed = f" · failed: {record.failure_reason}" if record.failure_reason else ""
        missing = "" if synthetic is not None or outside is not None else " · no synthetic image yet"
        self.header.setText(f"<b>case {place} of {total}</b> · {case.case_id} · "
                            f"<b>{record.status}</b> · site {record.site or '?'}{failed}{missing}"
                            + (out_of_domain_text(outside) if outside is not None else "")
                            + (image_risk_text(risk) if risk is not None else "")
                            + (f"<br><span style='color:#a0a0a0'>{MARKS_NOT_CARRIED}</span>"
                               if outside is None and synthetic is not None else ""))
        self.show_report()
        self.show_scores()
        self.show_history()
        self.queue.select(case.case_id)

    def show_report(self) -> None:
        case = self.session.current
        self.report_view.set_report(case.report, case.spans)
        self.redacted_view.set_pieces(case.redacted_pieces())

    def show_scores(self) -> None:
        self.scores.setText(scores_html(self.session.current.scores))

    def say(self, text: str) -> None:
        self.message.setText(text)

    # -- leaving a case --------------------------------------------------------------------

    def _mask_edit(self) -> np.ndarray | None:
        """The preserved region as painted, when it differs from the case's."""
        if self.session is None or self._shown is None or "mask" not in self.layers:
            return None
        case = self.session.case(self._shown)
        painted = np.asarray(self.layers["mask"].data)
        stored = case.mask
        if stored is None:
            return painted if painted.any() else None
        if painted.shape != stored.shape or not np.array_equal(painted, stored):
            return painted
        return None

    def _save_mask_edit(self) -> bool:
        edit = self._mask_edit()
        if edit is None or self.session.current_id != self._shown:
            return False
        saved = self.session.save_mask(edit)
        if saved:
            self.say(f"saved the edited preserved region of case {self._shown}")
        return saved

    def _leave_case(self) -> None:
        if self.runner.running:
            self.runner.cancel()
        self._save_mask_edit()

    def _guarded(self, action):
        try:
            return action()
        except UpdpError as exc:
            self.say(f"<span style='color:#ff8080'>{exc}</span>")
            return None

    # -- reviewer actions ------------------------------------------------------------------

    def _move(self, step) -> None:
        if self.session is None:
            return

        def move():
            self._leave_case()
            moved = step()
            if moved is None:
                self.say("no further case" + (f" with status {self.queue.status}"
                                              if self.queue.status else ""))
                return
            self.refresh_queue()
            self.show_case()
        self._guarded(move)

    def next(self) -> None:
        self._move(lambda: self.session.next(status=self.queue.status))

    def previous(self) -> None:
        self._move(lambda: self.session.previous(status=self.queue.status))

    def go(self, case_id: str) -> None:
        if self.session is not None and case_id != self.session.current_id:
            self._move(lambda: self.session.go(case_id))

    def _on_case_chosen(self, case_id: str) -> None:
        self.go(case_id)

    def decide(self, decision: str) -> None:
        if self.session is None or self.session.current is None:
            return

        from ..review.store import DecisionOverride

        def act():
            self._save_mask_edit()
            case_id = self.session.current.case_id
            # Over another reviewer's decision: refused once, with the reason; the same
            # decision pressed again on the same case decides over it (recorded as such).
            override = self._override_armed == (case_id, decision)
            self._override_armed = None
            original_image = decision == "accept" and self.share_original.isVisible() \
                and self.share_original.isChecked()
            report_only = decision == "accept" and self.report_only.isVisible() \
                and self.report_only.isChecked()
            try:
                done = self.session.decide(decision, comment=self.comment.text(),
                                           override=override, original_image=original_image,
                                           report_only=report_only)
            except DecisionOverride as exc:
                self._override_armed = (case_id, decision)
                raise DecisionOverride(f"{exc}. Press {decision} again to decide over it.") \
                    from None
            self.comment.clear()
            self.refresh_queue()
            word = {"accept": "accepted", "reject": "rejected", "flag": "flagged"}[decision]
            if getattr(done, "outcome", None) is not None:  # a blind reading
                word = READING_OUTCOME[done.outcome].format(decision=decision)
            seconds = f" after {done.seconds:.0f} s" if done.seconds is not None else ""
            if self.runner.running:
                self.runner.cancel()
            moved = self.session.next(status=self.queue.status)
            if moved is None:
                self.show_case()
                self.say(f"{word} case {done.case_id}{seconds}; that was the last case"
                         + (f" with status {self.queue.status}" if self.queue.status else ""))
                return
            self.refresh_queue()
            self.show_case()
            self.say(f"{word} case {done.case_id}{seconds}")
        self._guarded(act)

    def undo(self) -> None:
        """Take the current case's decision back (another reviewer's: press again)."""
        if self.session is None or self.session.current is None:
            return

        from ..review.store import DecisionOverride

        def act():
            case_id = self.session.current.case_id
            override = self._override_armed == (case_id, "undo")
            self._override_armed = None
            try:
                undone = self.session.store.undo(case_id, self.session.reviewer, override=override)
            except DecisionOverride as exc:
                self._override_armed = (case_id, "undo")
                raise DecisionOverride(f"{exc}. Press Undo again to take it back.") from None
            self.refresh_queue()
            self.show_case()
            self.say(f"case {case_id} is pending again ({undone['decision']} taken back)")
        self._guarded(act)

    def toggle_history(self) -> None:
        """Show or hide the case's history (kept up to date while shown)."""
        self.history.setVisible(not self.history.isVisible())
        self.show_history()

    def show_history(self) -> None:
        if not self.history.isVisible() or self.session is None or self.session.current is None:
            return
        from ..review.history import history_line

        entries = self.session.history(self.session.current.case_id)
        lines = [html.escape(history_line(e)) for e in entries]
        self.history.setText("<b>history</b><br>" + ("<br>".join(lines) if lines
                                                        else "nothing done to this case yet"))

    def shortcuts(self) -> None:
        """Show or hide the list of keys."""
        self.keys_help.setVisible(not self.keys_help.isVisible())

    def toggle_span(self, span_id: int) -> None:
        if self.session is None:
            return

        def act():
            span = self.session.toggle_span(span_id)
            self.show_report()
            self.say(f"{span.category} span now {'redacted' if span.action == 'redact' else 'kept'}")
        self._guarded(act)

    def add_redaction(self, start: int, end: int, category: str | None = None) -> None:
        if self.session is None:
            return

        def act():
            span = self.session.add_redaction(start, end, category or self.category.currentText())
            self.show_report()
            self.say(f"redacted {span.end - span.start} characters as {span.category}")
        self._guarded(act)

    def add_redaction_from_selection(self) -> None:
        if not self.report_view.request_redaction():
            self.say(f"select text in the report first, then press {KEYS['redact']}")

    def save_mask(self) -> None:
        if self.session is None:
            return

        def act():
            if not self._save_mask_edit():
                self.say("the preserved region is unchanged")
        self._guarded(act)

    # -- regeneration ----------------------------------------------------------------------

    def regenerate(self) -> None:
        if self.session is None or self.session.current is None:
            return
        if self._regenerating:
            self.say("a regeneration is already running (Cancel stops it)")
            return

        def start():
            self._save_mask_edit()
            job = self.session.regenerate(strength=self.strength.value(),
                                          seed=self.seed.value(), filter=self.filter)
            self.regenerate_button.setEnabled(False)
            self.cancel_button.setEnabled(True)
            self.say(f"regenerating case {job.case_id}…")
            self._regeneration_started = time.perf_counter()
            self._regeneration = {"case_id": job.case_id, "outcome": "running"}
            self._progress_latest = None
            self._regenerating = True
            self.last_regeneration = None
            self.stall_meter.start()
            self._progress_timer.start()
            self.runner.start(job)
        self._guarded(start)

    def cancel_regeneration(self) -> None:
        if self.runner.running:
            self.runner.cancel()
            self.say("cancelling the regeneration…")

    def _show_progress(self) -> None:
        latest = self._progress_latest
        if latest is None:
            return
        done, total = max(0, int(latest[0])), max(1, int(latest[1]))
        if self.progress.maximum() != total:
            self.progress.setRange(0, total)
        if self.progress.value() != done:
            self.progress.setValue(done)

    def _on_job_item(self, item) -> None:
        if is_progress(item):
            self._progress_latest = item
            return
        if not isinstance(item, Regenerated):
            return
        self.stall_meter.mark()
        on_screen = item.case_id == self._shown
        if item.stored and on_screen:
            self.layers["synthetic"].data = item.image
            self._difference_stale = True
            if self.show_difference.isChecked():  # in a later turn of the event loop
                QTimer.singleShot(0, self._update_difference)
            self._regeneration["outcome"] = "stored"
            text = (f"new synthetic image stored for case {item.case_id} "
                    f"(seed {item.signature.get('seed')}); scored again")
            QTimer.singleShot(0, self._show_new_scores)  # the job rescored it before yielding
        else:
            self._regeneration["outcome"] = "dropped"
            text = (f"dropped the regenerated image of case {item.case_id}: it is no longer "
                    "on screen")
        QTimer.singleShot(0, lambda: self.say(text))

    def _show_new_scores(self) -> None:
        if self.session is not None and self.session.current is not None:
            self.show_scores()
            self.refresh_queue()

    def _on_job_done(self, error) -> None:
        self._progress_timer.stop()
        record = dict(self._regeneration)
        if error is not None:
            record["outcome"] = "error"
            self.say(f"<span style='color:#ff8080'>regeneration failed: {error}</span>")
        elif record.get("outcome") == "running":
            record["outcome"] = "cancelled"
            self.say("regeneration cancelled; nothing was stored")
        self.cancel_button.setEnabled(False)
        # The bar is reset in a later turn of the event loop (it repaints at once), and the
        # stall meter stops after that: the whole regeneration is measured.
        QTimer.singleShot(0, lambda: self._finish_regeneration(record))

    def _finish_regeneration(self, record: dict) -> None:
        self.progress.setValue(0)
        self.regenerate_button.setEnabled(True)
        self._regenerating = False
        record["seconds"] = round(time.perf_counter() - self._regeneration_started, 3)
        record.update(self.stall_meter.stop())
        self.last_regeneration = record

    # -- measuring -------------------------------------------------------------------------

    def benchmark_regeneration(self, repeat: int = 3, settle_s: float = 1.0) -> dict:
        """Regenerate the current case ``repeat`` times (seeds 0, 1, …) on the worker thread
        with the event loop running, as a reviewer would; per run its seconds and longest
        stalls of the event loop, and beside them how long one plain redraw of the canvas
        takes here (showing any new image costs one)."""
        import napari.qt.threading  # noqa: F401  (imported before anything is timed)

        if self.session is None or self.session.current is None:
            raise UpdpError("the benchmark needs an open workspace with a case")
        background = self.runner.background
        self.runner.background = True
        try:
            _run_event_loop(settle_s)  # the first frames (shaders, glyphs) are drawn first
            camera, redraws = self.viewer.camera, []
            for i in range(5):
                start = time.perf_counter()
                camera.zoom = camera.zoom * (1.01 if i % 2 else 1 / 1.01)
                QApplication.processEvents()
                redraws.append(time.perf_counter() - start)
                _run_event_loop(0.05)
            runs = []
            for seed in range(repeat):
                self.seed.setValue(seed)
                self.regenerate()
                _run_event_loop(600.0, until=lambda: not self._regenerating)
                if self.last_regeneration is None:
                    raise UpdpError(f"regeneration did not run: {self.message.text()}")
                runs.append(self.last_regeneration)
                _run_event_loop(0.2)
        finally:
            self.runner.background = background
        redraws.sort()
        return {"runs": runs, "redraw_ms_median": round(redraws[len(redraws) // 2] * 1000, 1),
                "redraw_ms": [round(r * 1000, 1) for r in redraws]}

    # -- screenshots -----------------------------------------------------------------------

    def screenshot(self, path) -> dict:
        """Save the whole napari window as a PNG; returns where its parts lie in the image as
        ``[x, y, width, height]`` (``canvas``, ``report``, ``redacted``, ``dock``)."""
        window = self.window()
        for _ in range(3):
            QApplication.processEvents()
            time.sleep(0.05)
        pixmap = window.grab()
        ratio = pixmap.devicePixelRatio() or 1.0
        path = Path(path)
        if not pixmap.save(str(path), "PNG"):
            raise UpdpError(f"{path}: cannot write the screenshot (folder missing or not "
                            "writable?)")

        def place(widget) -> list[int] | None:
            if widget is None or not widget.isVisible():
                return None
            corner = widget.mapTo(window, widget.rect().topLeft())
            return [round(corner.x() * ratio), round(corner.y() * ratio),
                    round(widget.width() * ratio), round(widget.height() * ratio)]

        canvases = [w for w in window.findChildren(QWidget)
                    if "CanvasBackend" in type(w).__name__ and w.isVisible()]
        canvas = max(canvases, key=lambda w: w.width() * w.height(), default=None)
        return {"size": [pixmap.width(), pixmap.height()], "canvas": place(canvas),
                "report": place(self.report_view), "redacted": place(self.redacted_view),
                "dock": place(self)}


def out_of_domain_text(record: dict) -> str:
    """The header's words for a case out of the filter's domain, for a radiologist."""
    distance = record.get("distance")
    how = (f" (distance {distance:.2f}; the threshold is {record.get('threshold') or 1:g})"
           if isinstance(distance, (int, float)) else f" ({record.get('reason') or 'not checked'})")
    return ("<br><span style='color:#ff8080'><b>OUT OF DOMAIN — no synthetic counterpart.</b> "
            "This radiograph is unlike the images the generative filter learned from"
            f"{how}: a counterpart would be a drawing of the filter's own, not of this study, "
            "and could drop its findings. The right image is the <b>original with only the "
            "burned-in text removed</b>; it still shows the patient's anatomy. Accept shares it "
            "only with \"share the original image\" ticked; otherwise reject.</span>")


#: Colours of a finding's state in the comparison (lost and added are what a reviewer must see).
STATE_COLOURS = {"kept": "#80d080", "lost": "#ff6060", "added": "#ffa040", "absent": "#909090"}


def scores_html(scores: dict) -> str:
    """The case's scores for the dock: privacy, utility, the verdict, and the findings one by
    one (original and counterpart probability, the state in its colour)."""
    def shown(value):
        return "–" if value is None else f"{value:.3f}"

    from ..review.scores import PRIVACY_ALERT

    details = scores.get("details") or {}
    privacy = scores.get("privacy")
    rank, gallery = details.get("reid_rank"), details.get("gallery_patients")
    where = (f" (the patient ranks {rank} of {gallery} by likeness; 1 = re-identified, about "
             f"{(gallery + 1) / 2:g} = chance)" if isinstance(rank, int) and isinstance(gallery, int)
             else "")
    alert = privacy is not None and privacy < PRIVACY_ALERT
    head = (f"privacy score <b>{_red(shown(privacy), alert)}</b>{where}"
            + (" — <b><span style='color:#ff6060'>re-identification alert</span></b>" if alert else "")
            + reid_probability_html(details)
            + f" · utility score <b>{shown(scores.get('utility'))}</b> (findings called on "
            "either image that are called on both)")
    findings = details.get("findings")
    if not isinstance(findings, dict) or not findings:
        return head
    bad = bool(details.get("lost") or details.get("added"))
    verdict = (f"<br><b><span style='color:{'#ff6060' if bad else '#80d080'}'>"
               f"{html.escape(str(details.get('verdict', '')))}</span></b>")
    cells = []
    for name, f in findings.items():
        state = str(f.get("state", ""))
        colour = STATE_COLOURS.get(state.split(",")[0], "#d0d0d0")
        if "moved" in state and colour == STATE_COLOURS["kept"]:
            colour = "#e0e060"
        cells.append(f"<span style='color:{colour}'>{html.escape(name)} "
                     f"{f.get('original', 0):.2f}→{f.get('counterpart', 0):.2f} "
                     f"({html.escape(state)})</span>")
    return head + verdict + "<br>" + " · ".join(cells)


def _red(text: str, red: bool) -> str:
    """``text`` in the dock's alarm colour when ``red`` (Qt's rich text knows no "inherit":
    an uncoloured span would turn dark on the dark theme)."""
    return f"<span style='color:#ff6060'>{text}</span>" if red else text


def reid_probability_html(details: dict) -> str:
    """The calibrated re-identification probability beside the privacy score, against chance
    (red at twice chance or more); nothing for scores without one."""
    p, chance = details.get("reid_probability"), details.get("reid_chance")
    if not isinstance(p, (int, float)) or not isinstance(chance, (int, float)) or not chance:
        return ""
    high = p >= 2 * chance
    return (f"; re-identification probability <b>{_red(f'{p:.2f}', high)}</b> (chance {chance:.2f}; "
            f"{p / chance:.1f}× chance)")


def image_risk_text(risk: dict) -> str:
    """The header's words for a case whose synthetic image may not leave."""
    return ("<br><span style='color:#ffb060'><b>IMAGE NOT SHAREABLE</b> — it keeps "
            f"{', '.join(risk.get('findings', []))} from the patient, and {risk.get('reason', '')}. "
            "Accept shares the report only, with \"share the report only\" ticked; "
            "otherwise reject.</span>")


def _run_event_loop(seconds: float, until=None) -> None:
    """Run the Qt event loop for ``seconds``, or until ``until()`` is true."""
    from qtpy.QtCore import QEventLoop

    loop = QEventLoop()
    deadline = time.perf_counter() + seconds
    poll = QTimer()
    poll.setInterval(20)
    poll.timeout.connect(lambda: loop.quit() if (until is not None and until())
                         or time.perf_counter() >= deadline else None)
    poll.start()
    if not (until is not None and until()):
        loop.exec()
    poll.stop()
