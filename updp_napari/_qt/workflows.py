"""The command-line workflows as napari widgets (Plugins › UPDP Review): run the pipeline on
a folder, export the accepted cases, plan and draw an audit sample, evaluate the filter.

Each is a magicgui container with file pickers and the command line's defaults. Long work
runs off the UI thread through napari's worker threads (``_qt.background.JobRunner``: the
work as a ``core.jobs.CallbackJob``) with a progress bar and Cancel; the result opens in the
review or the audit dock. The work itself is the library's (``pipeline.run_pipeline``,
``export.export_package``, ``audit``, ``synth.evaluate``): these widgets only gather the
arguments and show the outcome, in the command line's words.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    LineEdit,
    ProgressBar,
    PushButton,
    SpinBox,
)

from ..core.errors import InputError, UpdpError
from ..core.jobs import CallbackJob, is_progress
from .background import JobRunner

if TYPE_CHECKING:
    import napari


def _folder(edit: FileEdit, what: str, required: bool = True) -> Path | None:
    """The folder typed or picked in ``edit``; None when left empty and not required."""
    text = str(edit.line_edit.value or "").strip()
    if not text:
        if required:
            raise InputError(f"choose the {what}")
        return None
    return Path(os.path.expanduser(text))


def _dock(viewer, widget, name: str) -> None:
    viewer.window.add_dock_widget(widget, name=name, area="right")


class _Workflow(Container):
    """Fields, a Run button, Cancel, a progress bar and a message line; ``work()`` returns
    the function to run with a progress callback, ``finished(result)`` shows the result."""

    RUN = "Run"
    ABOUT = ""

    def __init__(self, napari_viewer: napari.viewer.Viewer, background: bool | None = None):
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.result = None
        about = Label(value=self.ABOUT)
        about.native.setWordWrap(True)
        self.append(about)
        self.extend(self.fields())
        self.run_button = PushButton(text=self.RUN)
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(value=0, min=0, max=1, label="progress")
        self.message = Label(value="")
        self.message.native.setWordWrap(True)
        self.extend([self.run_button, self.cancel_button, self.progress, self.message])
        self.run_button.changed.connect(self.start)
        self.cancel_button.changed.connect(self.cancel)
        self.runner = JobRunner(self._on_item, self._on_done, background, parent=self.native)

    def fields(self) -> list:
        return []

    def work(self):
        raise NotImplementedError

    def finished(self, result) -> str:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self.runner.running

    def say(self, text: str) -> None:
        self.message.value = text

    def start(self, *_args) -> None:
        if self.runner.running:
            return
        try:
            work = self.work()
        except UpdpError as exc:
            self.say(str(exc))
            return
        self.result = None
        self.progress.value, self.progress.max = 0, 1
        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.say("running…")
        self.runner.start(CallbackJob(work))

    def cancel(self, *_args) -> None:
        if self.runner.running:
            self.say("cancelling at the next step…")
            self.runner.cancel()

    def _on_item(self, item) -> None:
        if is_progress(item):
            done, total = item
            self.progress.max = max(1, total)
            self.progress.value = min(done, max(1, total))
        else:
            self.result = item

    def _on_done(self, error) -> None:
        self.run_button.enabled, self.cancel_button.enabled = True, False
        if isinstance(error, UpdpError):
            self.say(str(error))
        elif error is not None:  # a bug, not an input: its kind, never its text (PHI)
            self.say(f"stopped: {type(error).__name__} (see the terminal)")
        elif self.result is None:
            self.say("cancelled; nothing after the last finished step was written")
        else:
            self.say(self.finished(self.result))


class RunPipelineWidget(_Workflow):
    """``updp run`` in napari: a folder of studies into a review workspace, then the review
    dock on it."""

    RUN = "Run pipeline"
    ABOUT = ("De-identify every study of a folder into a review workspace (header, burned-in "
             "text, report, synthetic counterpart, scores), as updp run does. A workspace "
             "run again skips the cases already done.")

    def fields(self) -> list:
        self.input = FileEdit(mode="d", value="", label="studies folder")
        self.workspace = FileEdit(mode="d", value="", label="workspace folder")
        self.pixels = ComboBox(choices=["ocr", "off"], value="ocr", label="burned-in text",
                               tooltip="ocr: find and fill burned-in text; off: header and "
                                       "report only")
        self.site = LineEdit(value="", label="site (optional)",
                             tooltip="the site of every case the folder's manifest names none")
        self.seed = SpinBox(value=0, min=0, max=2**31 - 1, label="synthesis seed")
        self.model = FileEdit(mode="d", value="", label="filter folder (optional)",
                              tooltip="a filter made by updp train-filter; empty: the shipped one")
        self.open_review = CheckBox(value=True, text="open the review dock when done")
        return [self.input, self.workspace, self.pixels, self.site, self.seed, self.model,
                self.open_review]

    def work(self):
        from ..pipeline import run_pipeline

        source = _folder(self.input, "folder of studies")
        workspace = _folder(self.workspace, "workspace folder")
        if not source.is_dir():
            raise InputError(f"{source}: no such folder of studies")
        model = _folder(self.model, "filter folder", required=False)
        site = self.site.value.strip() or None
        pixels, seed = self.pixels.value, int(self.seed.value)
        self.target = workspace
        return lambda progress: run_pipeline(source, workspace, model=model, seed=seed,
                                             pixels=pixels, site=site, progress=progress,
                                             score_progress=progress)

    def finished(self, summary) -> str:
        text = (f"{summary.cases} case(s) in {self.target}: {summary.done} done now, "
                f"{summary.already_done} already done, {len(summary.failed)} failed, "
                f"{len(summary.out_of_domain)} out of the filter's domain; {summary.scored} "
                "scored" + (" (updp cases --status failed lists the failures)"
                            if summary.failed else ""))
        if self.open_review.value and summary.cases:
            from ..review.session import ReviewSession
            from .review_dock import ReviewWidget

            _dock(self.viewer, ReviewWidget(self.viewer, ReviewSession.open(self.target)),
                  "Review")
        return text


class ExportWidget(_Workflow):
    """``updp export`` in napari: the accepted cases of a workspace into a new share
    package, written only when the leak scan finds nothing."""

    RUN = "Export"
    ABOUT = ("Write the accepted cases of a workspace to a new folder (de-identified DICOM "
             "with the synthetic pixels, redacted reports, manifest), as updp export does. "
             "Nothing is written when the leak scan finds an original identifier.")

    def fields(self) -> list:
        self.workspace = FileEdit(mode="d", value="", label="workspace folder")
        self.out = FileEdit(mode="d", value="", label="package folder (new)")
        self.ocr = CheckBox(value=True, text="scan the pixels with OCR too (the default)")
        return [self.workspace, self.out, self.ocr]

    def work(self):
        from ..export import export_package

        workspace = _folder(self.workspace, "workspace folder")
        out = _folder(self.out, "folder to write the package to")
        ocr = bool(self.ocr.value)
        return lambda progress: export_package(workspace, out, ocr=ocr, progress=progress)

    def finished(self, summary) -> str:
        return (f"exported {len(summary.cases)} accepted case(s) to {summary.out} "
                f"({summary.pending} not accepted, left out); leak scan: {summary.scan}. "
                "Audit it with Plan and draw an audit sample.")


class AuditSampleWidget(Container):
    """``updp audit --plan`` and ``--sample`` in napari: the sample size for a target rate
    (exact for the frame's size), then the sample drawn, the target stated, and the audit
    dock opened on it."""

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self.viewer = napari_viewer
        about = Label(value="Plan the audit of a workspace or a share package for residual PHI: "
                            "the sample size that bounds the rate below the target, then draw "
                            "the sample and open it in the audit dock (as updp audit --plan and "
                            "--sample --max-rate).")
        about.native.setWordWrap(True)
        self.target = FileEdit(mode="d", value="", label="workspace or package")
        self.max_rate = FloatSpinBox(value=0.01, min=0.0001, max=0.5, step=0.005,
                                     label="target rate", tooltip="the residual-PHI rate the "
                                     "audit must bound (0.01: 1 %)")
        self.confidence = FloatSpinBox(value=0.95, min=0.5, max=0.999, step=0.01,
                                       label="confidence")
        self.findings = SpinBox(value=0, min=0, max=1000, label="findings allowed")
        self.frame = ComboBox(choices=["accepted", "decided", "all"], value="accepted",
                              label="frame (workspace)", tooltip="the workspace cases to draw "
                              "from; a package's frame is its cases")
        self.size = SpinBox(value=0, min=0, max=1_000_000, label="sample size",
                            tooltip="0: the planned size")
        self.strata = LineEdit(value="", label="strata (optional)",
                               tooltip="site, category or site,category")
        self.seed = LineEdit(value="", label="seed (optional)",
                             tooltip="empty: chosen at random and recorded")
        self.auditor = LineEdit(value="", label="auditor (optional)",
                                tooltip="empty: the user name of this session")
        self.plan_button = PushButton(text="Plan")
        self.draw_button = PushButton(text="Draw and open the audit")
        self.message = Label(value="")
        self.message.native.setWordWrap(True)
        self.extend([about, self.target, self.max_rate, self.confidence, self.findings,
                     self.frame, self.size, self.strata, self.seed, self.auditor,
                     self.plan_button, self.draw_button, self.message])
        self.plan_button.changed.connect(lambda *_: self._guarded(self.plan))
        self.draw_button.changed.connect(lambda *_: self._guarded(self.draw))
        self.audit = None

    def _guarded(self, action) -> None:
        try:
            action()
        except UpdpError as exc:
            self.message.value = str(exc)

    def _kind_frame(self, folder: Path) -> str | None:
        from ..audit.target import AuditTarget

        with AuditTarget.open(folder) as target:
            return None if target.kind == "package" else self.frame.value

    def plan(self) -> int:
        """The planned size, put into the size box and said in words."""
        from ..audit.stats import finite_plan
        from ..audit.target import frame_size

        folder = _folder(self.target, "workspace or package to audit")
        population = frame_size(folder, self._kind_frame(folder))
        if not population:
            raise InputError(f"{folder}: the frame holds no cases")
        n, self.message.value = finite_plan(float(self.max_rate.value), population,
                                            float(self.confidence.value), int(self.findings.value))
        self.size.value = n
        return n

    def draw(self) -> None:
        """Draw the sample (the planned size when none is set), state the target, open the
        audit dock."""
        from ..audit.session import AuditSession
        from .audit_dock import AuditWidget

        folder = _folder(self.target, "workspace or package to audit")
        n = int(self.size.value) or self.plan()
        seed_text = self.seed.value.strip()
        try:
            seed = int(seed_text) if seed_text else None
        except ValueError:
            raise InputError("the seed must be a whole number, or empty") from None
        audit = AuditSession.open(folder, auditor=self.auditor.value.strip() or None)
        try:
            sample, drawn = audit.draw(n, self.strata.value.strip() or (), seed,
                                       self._kind_frame(folder))
            audit.state_target(float(self.max_rate.value), float(self.confidence.value))
        except BaseException:
            audit.close()
            raise
        self.audit = audit
        _dock(self.viewer, AuditWidget(self.viewer, audit), "Audit")
        self.message.value = (f"{'drew' if drawn else 'reopened'} a sample of "
                              f"{len(sample.cases)} case(s); target stated; the audit dock is "
                              "open")


class EvaluateFilterWidget(_Workflow):
    """``updp evaluate-filter`` in napari: the filter's privacy and utility on a cohort."""

    RUN = "Evaluate"
    ABOUT = ("Measure the generative filter on a cohort made by updp make-cohort: "
             "re-identification against the originals, pathology kept, realism, at each "
             "strength (as updp evaluate-filter). Minutes on a CPU for a few hundred studies.")

    def fields(self) -> list:
        self.cohort = FileEdit(mode="d", value="", label="cohort folder")
        self.strengths = LineEdit(value="0.2,0.4,0.6,0.8", label="strengths")
        self.limit = SpinBox(value=0, min=0, max=1_000_000, label="studies (0: all)")
        self.model = FileEdit(mode="d", value="", label="filter folder (optional)")
        self.scorers = FileEdit(mode="d", value="", label="scorers folder (optional)")
        return [self.cohort, self.strengths, self.limit, self.model, self.scorers]

    def work(self):
        from ..synth.evaluate import evaluate_filter, parse_strengths

        cohort = _folder(self.cohort, "cohort folder")
        strengths = parse_strengths(self.strengths.value)
        model = _folder(self.model, "filter folder", required=False)
        scorers = _folder(self.scorers, "scorers folder", required=False)
        limit = int(self.limit.value) or None
        return lambda progress: evaluate_filter(cohort, model, scorers, strengths, limit=limit,
                                                progress=progress)

    def finished(self, result) -> str:
        from ..synth.evaluate import summary_lines

        self.message.native.setStyleSheet("font-family: monospace")
        return "\n".join(summary_lines(result))
