"""The napari review dock over a workspace made from sample_data (Xvfb via pytest-xvfb)."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from review_fixtures import FakeFilter, build_workspace

pytest.importorskip("napari")
pytestmark = [pytest.mark.gui, pytest.mark.slow]  # a napari window each: ~5 s to set up

from qtpy.QtCore import Qt  # noqa: E402
from qtpy.QtGui import QTextCursor  # noqa: E402

from updp_napari.review.session import ReviewSession  # noqa: E402

WINDOW = (1600, 1000)


@pytest.fixture
def ws(tmp_path):
    return build_workspace(tmp_path / "ws")


@pytest.fixture
def dock(make_napari_viewer, ws, qtbot):
    """A shown viewer with the review dock, added the way the Plugins menu adds it."""
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(*WINDOW)
    _, widget = viewer.window.add_plugin_dock_widget("updp-napari", "Review")
    widget.open_session(ReviewSession.open(ws["workspace"], reviewer="ann"))
    qtbot.wait(300)  # the first frames are drawn (shaders built) before anything is timed
    yield viewer, widget, ws
    if widget.runner.running:
        widget.runner.cancel()
        qtbot.waitUntil(lambda: not widget.runner.running, timeout=10000)
    widget.session.close()


def _center_box(region, fraction=0.3):
    x, y, w, h = region
    return (slice(int(y + h * (0.5 - fraction / 2)), int(y + h * (0.5 + fraction / 2))),
            slice(int(x + w * (0.5 - fraction / 2)), int(x + w * (0.5 + fraction / 2))))


def _content_checks(png: Path, regions: dict) -> dict:
    """Pixel spread (std of grey levels) where each part of the window should be."""
    from PIL import Image

    with Image.open(png) as im:
        pixels = np.asarray(im.convert("L"), np.float32)
    x, y, w, h = regions["canvas"]
    left, right = [x, y, w // 2, h], [x + w // 2, y, w // 2, h]
    return {name: float(pixels[_center_box(box)].std())
            for name, box in (("original", left), ("synthetic", right),
                              ("report", regions["report"]), ("redacted", regions["redacted"]))}


def _click_offset(qtbot, view, offset):
    cursor = QTextCursor(view.document())
    cursor.setPosition(view.document_position(offset) + 1)
    view.setTextCursor(cursor)  # scrolls it into view, no selection
    point = view.cursorRect(cursor).center()
    point.setX(point.x() - 3)  # on the character before the cursor, inside the span
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point)


def test_dock_shows_both_images_linked_the_queue_and_the_marked_report(dock, tmp_path):
    viewer, widget, ws = dock
    case = widget.session.current
    layers = widget.layers
    grid = viewer.canvas.grid
    assert grid.enabled and grid.stride == 3
    index = list(viewer.layers).index
    # original with its overlays in one grid cell, synthetic with its own in the next
    assert grid.position(index(layers["original"]), viewer.layers) == (0, 0)
    assert grid.position(index(layers["mask"]), viewer.layers) == (0, 0)
    assert grid.position(index(layers["synthetic"]), viewer.layers) == (0, 1)
    # each image is named on the canvas, in its own cell
    assert layers["original"].name_overlay.visible and layers["synthetic"].name_overlay.visible
    assert layers["original"].name == "original" and "counterpart" in layers["synthetic"].name
    assert np.array_equal(layers["original"].data, case.original)
    assert np.array_equal(layers["synthetic"].data, case.synthetic)
    assert np.array_equal(layers["mask"].data, case.mask)
    assert widget.queue.shown_cases() == ws["cases"]
    assert widget.queue.row_of(ws["cases"][0]) == {"case": ws["cases"][0], "status": "pending",
                                                  "privacy": "0.55", "utility": "0.90"}

    view = widget.report_view
    name = next(s for s in case.spans if s.category == "NAME" and s.action == "redact")
    term = next(s for s in case.spans if s.category == "PATHOLOGY")
    assert view.background_at(name.start) == "#a3312f"
    assert view.background_at(term.start) == "#1f7a45"
    plain = next(i for i in range(len(case.report))
                 if not any(s.start <= i < s.end for s in case.spans) and case.report[i].isalpha())
    assert view.background_at(plain) == ""
    assert "NAME" in view.tooltip_at(name.start) and name.source in view.tooltip_at(name.start)
    assert widget.redacted_view.toPlainText() == ws["redacted"][case.case_id]
    assert "0.550" in widget.scores.text() and "0.900" in widget.scores.text()

    regions = widget.screenshot(tmp_path / "window.png")
    assert regions["size"] == list(WINDOW)
    spread = _content_checks(tmp_path / "window.png", regions)
    assert min(spread.values()) > 8, spread  # none of the four is blank background


def test_clicking_a_span_toggles_it_and_a_selection_plus_x_redacts(dock, qtbot):
    _, widget, _ = dock
    session, view = widget.session, widget.report_view
    case = session.current
    name = next(s for s in case.spans if s.category == "NAME" and s.action == "redact")
    words = case.report[name.start:name.end]
    assert words not in widget.redacted_view.toPlainText()
    _click_offset(qtbot, view, name.start + 1)

    def toggled():
        return next(s for s in session.store.spans(case.case_id) if s.span_id == name.span_id)
    qtbot.waitUntil(lambda: toggled().action == "keep", timeout=3000)
    assert toggled().changed_by == "ann"
    assert words in widget.redacted_view.toPlainText()
    assert view.background_at(name.start) == "#55585e"

    start = case.report.index("nodule")
    view.select_range(start, start + len("nodule"))
    view.setFocus()
    qtbot.keyClick(view, "x")
    added = [s for s in session.store.spans(case.case_id) if s.origin == "reviewer"]
    assert [(s.start, s.end, s.action) for s in added] == [(start, start + 6, "redact")]
    assert widget.redacted_view.toPlainText() == case.redacted
    assert view.background_at(start) == "#c26a00"


def test_keys_decide_move_on_and_leave_typing_alone(dock, qtbot):
    viewer, widget, ws = dock
    session = widget.session
    first = session.current_id
    widget.comment.setFocus()
    qtbot.keyClicks(widget.comment, "a fine case")  # letters typed are text, not keys
    assert widget.comment.text() == "a fine case" and session.current.status == "pending"
    widget.report_view.setFocus()
    qtbot.keyClick(widget.report_view, "a")
    assert session.store.case(first).status == "accepted"
    decision = session.store.decisions(first)[-1]
    assert decision.comment == "a fine case" and decision.seconds is not None
    assert session.current_id == ws["cases"][1]
    assert widget.queue.row_of(first)["status"] == "accepted"
    # the burned-in text's outlines enclose exactly the text mask the filter regenerates
    boxed = session.current
    assert boxed.text_mask.any()
    for name in ("boxes", "boxes_synthetic"):
        drawn = widget.layers[name].to_masks(boxed.shape).any(axis=0)
        assert np.array_equal(drawn, boxed.text_mask), name
    # the same keys on the canvas (the original layer is active)
    canvas = viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    qtbot.keyClick(canvas, "r")
    assert session.store.case(ws["cases"][1]).status == "rejected"
    assert session.current_id == ws["cases"][2]
    qtbot.keyClick(canvas, "p")
    assert session.current_id == ws["cases"][1]
    assert widget.accept_button.text() == "Accept (A)" and widget.next_button.text() == "Next (N)"
    # filtered to pending, Next skips decided cases
    widget.queue.status_filter.setCurrentText("pending")
    assert widget.queue.shown_cases() == ws["cases"][2:]
    widget.next_button.click()
    assert session.current_id == ws["cases"][2]


def test_a_painted_mask_is_saved_as_the_reviewer_mask_when_leaving(dock, qtbot):
    viewer, widget, ws = dock
    session = widget.session
    first = session.current
    labels = widget.layers["mask"]
    viewer.layers.selection.active = labels
    labels.brush_size = 5
    labels.paint((30, 30), 3)  # napari's own paint tool
    painted = np.array(labels.data)
    assert first.reviewer_mask is None and painted[30, 30] == 3
    widget.next_button.click()
    saved = first.reviewer_mask
    assert saved is not None and np.array_equal(saved, painted)
    assert session.store.action_log(first.case_id)[-1].action == "edit_mask"
    assert first.preserve_mask[30, 30] == 0  # the pipeline's mask stays
    # back on the case, the edit is what shows; Save mask with no change writes nothing
    widget.previous_button.click()
    assert labels.data[30, 30] == 3
    entries = len(session.store.action_log(first.case_id))
    widget.save_mask_button.click()
    assert len(session.store.action_log(first.case_id)) == entries
    assert "unchanged" in widget.message.text()


def test_background_regeneration_stores_the_result_and_keeps_the_ui_responsive(dock, qtbot):
    _, widget, _ = dock
    fake = FakeFilter(steps=10, step_seconds=0.05)
    widget.filter, widget.runner.background = fake, True
    case = widget.session.current
    before = case.record.artifacts["synthetic"]["path"]
    widget.seed.setValue(5)
    widget.regenerate_button.click()
    assert widget.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: widget.last_regeneration is not None, timeout=20000)
    result = widget.last_regeneration
    assert result["outcome"] == "stored", result
    assert fake.calls[-1]["thread"] != threading.get_ident()
    assert case.record.artifacts["synthetic"]["path"] != before
    assert case.signature("synthetic")["seed"] == 5
    assert np.array_equal(widget.layers["synthetic"].data, case.synthetic)
    assert result["ticks"] >= 20  # the event loop kept ticking during the half second
    # The filter's work never holds the event loop up; showing the result draws one frame of
    # the canvas, which a software renderer on a busy machine may take longer than that for.
    assert result["max_stall_while_running_ms"] < 100, result
    assert result["max_stall_showing_result_ms"] < 500, result
    assert not widget.cancel_button.isEnabled() and widget.regenerate_button.isEnabled()
    # Cancel stops the next one mid-way: nothing stored, the dock ready again
    stored = case.record.artifacts["synthetic"]["path"]
    gate = threading.Event()
    widget.filter = FakeFilter(steps=3, gate=gate)
    widget.regenerate_button.click()
    assert widget.filter.started.wait(10)
    widget.cancel_button.click()
    gate.set()
    qtbot.waitUntil(lambda: widget.last_regeneration is not None, timeout=10000)
    assert widget.last_regeneration["outcome"] == "cancelled"
    assert case.record.artifacts["synthetic"]["path"] == stored
    assert widget.regenerate_button.isEnabled() and not widget.cancel_button.isEnabled()


def test_g_regenerates_with_a_tiny_real_model_and_rescores(dock, qtbot, tiny_models):
    from updp_napari.synth.filter import GenerativeFilter

    _, widget, _ = dock
    widget.filter, widget.runner.background = GenerativeFilter.load(tiny_models[0]), True
    case = widget.session.current
    before = case.synthetic.copy()
    qtbot.keyClick(widget, Qt.Key.Key_G)
    qtbot.waitUntil(lambda: widget.last_regeneration is not None, timeout=60000)
    assert widget.last_regeneration["outcome"] == "stored", widget.last_regeneration
    assert case.signature("synthetic")["model"] == "tiny untrained"
    assert not np.array_equal(case.synthetic, before)
    assert np.array_equal(widget.layers["synthetic"].data, case.synthetic)
    assert widget.session.store.action_log(case.case_id)[-1].action == "regenerate"
    # the case was scored again: the dock shows the new figures
    details = case.scores["details"]
    assert "reid_rank" in details and f"{case.scores['privacy']:.2f}" in widget.scores.text()


def test_moving_on_mid_regeneration_shows_the_new_case_and_stores_nothing(dock, qtbot):
    _, widget, ws = dock
    gate = threading.Event()
    fake = FakeFilter(steps=3, gate=gate)
    widget.filter, widget.runner.background = fake, True
    first = widget.session.current
    before = first.record.artifacts["synthetic"]["path"]
    widget.regenerate_button.click()
    assert fake.started.wait(10)
    widget.next_button.click()
    gate.set()
    qtbot.waitUntil(lambda: widget.last_regeneration is not None, timeout=10000)
    assert widget.last_regeneration["outcome"] in ("cancelled", "dropped")
    assert first.record.artifacts["synthetic"]["path"] == before
    second = widget.session.current
    assert second.case_id == ws["cases"][1]
    assert np.array_equal(widget.layers["synthetic"].data, second.synthetic)


def test_the_plugin_menu_dock_offers_to_open_a_workspace(make_napari_viewer, ws, tmp_path,
                                                         monkeypatch):
    from qtpy.QtWidgets import QFileDialog

    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("updp-napari", "Review")
    assert widget.session is None and widget.pages.currentIndex() == 0
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path))
    assert not widget.choose_workspace()
    assert "not a review workspace" in widget.open_message.text()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        lambda *a, **k: str(ws["workspace"]))
    widget.reviewer_edit.setText("cy")
    assert widget.choose_workspace()
    assert widget.pages.currentIndex() == 1 and widget.session.reviewer == "cy"
    assert widget.session.current_id == ws["cases"][0]
    assert widget.layers["original"] in viewer.layers
    widget.session.close()


@pytest.mark.slow
def test_the_screenshot_command_renders_images_and_report(dock, tmp_path):
    _, widget, ws = dock
    regions = widget.screenshot(tmp_path / "in_process.png")  # where the parts lie
    out = tmp_path / "shot.png"
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}  # it starts its own Xvfb
    done = subprocess.run([sys.executable, "-m", "updp_napari", "review", str(ws["workspace"]),
                           "--reviewer", "ann", "--case", ws["cases"][-1], "--screenshot", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(out)
    from PIL import Image

    with Image.open(out) as im:
        assert im.size == WINDOW
    spread = _content_checks(out, regions)
    assert min(spread.values()) > 8, spread
    # the command opened the workspace and changed nothing in it
    with ReviewSession.open(ws["workspace"], reviewer="ann") as session:
        assert [c.status for c in session.cases()] == ["pending"] * 4


def test_deciding_over_another_reviewer_is_refused_once_then_recorded(dock, qtbot):
    viewer, widget, ws = dock
    first = widget.session.current_id
    widget.session.store.decide(first, "reject", "bob")  # another reviewer, elsewhere
    widget.accept_button.click()
    assert widget.session.store.case(first).status == "rejected"
    assert "decided (reject) by bob" in widget.message.text()
    assert "Press accept again" in widget.message.text()
    assert widget.session.current_id == first
    widget.accept_button.click()  # the same decision again: over it, on purpose
    assert widget.session.store.case(first).status == "accepted"
    entry = [e for e in widget.session.store.action_log(first) if e.action == "decide"][-1]
    assert entry.detail["overrides"] == {"decision": "reject", "reviewer": "bob"}


def test_a_case_out_of_domain_shows_its_original_and_is_accepted_only_as_such(dock, qtbot):
    from updp_napari._qt.review_dock import LAYER_NAMES, OUT_OF_DOMAIN_LAYER
    from updp_napari.review.artifacts import put_json

    viewer, widget, ws = dock
    first, second = ws["cases"][:2]
    store = widget.session.store
    put_json(store, first, "domain", {"in_domain": False, "distance": 4.64, "threshold": 1.0,
                                      "model": "m", "reason": "unlike"})
    widget.go(second)
    widget.go(first)
    case = widget.session.case(first)
    header = widget.header.text()
    assert "OUT OF DOMAIN" in header and "distance 4.64" in header
    assert "not carried into the counterpart" not in header  # there is no counterpart
    assert "original with only the burned-in text removed" in header
    layer = widget.layers["synthetic"]
    assert layer.name == OUT_OF_DOMAIN_LAYER
    assert np.array_equal(layer.data, case.cleaned)
    assert widget.share_original.isVisible() and not widget.share_original.isChecked()
    widget.accept_button.click()  # not ticked: refused, with the way out
    assert store.case(first).status == "pending"
    assert "share the original image" in widget.message.text()
    widget.regenerate()
    assert "out of the filter's domain" in widget.message.text()
    widget.share_original.setChecked(True)
    widget.accept_button.click()
    assert store.case(first).status == "accepted" and store.accepted_original_image(first)
    widget.go(second)  # a case in domain: its synthetic image, and no such choice
    assert "side markers (L/R) and other burned-in marks are not carried" in widget.header.text()
    assert widget.layers["synthetic"].name == LAYER_NAMES["synthetic"]
    assert not widget.share_original.isVisible()
    assert "OUT OF DOMAIN" not in widget.header.text()


def test_a_case_whose_image_may_not_leave_is_accepted_for_its_report_only(dock, qtbot):
    from updp_napari.review.artifacts import put_json

    viewer, widget, ws = dock
    first, second = ws["cases"][:2]  # the first keeps findings
    store = widget.session.store
    table = {"measured_on": {"seed": 8008}, "per_finding": {}}  # nothing measured safe
    put_json(store, first, "image_risk", {"table": table})
    widget.go(second)
    widget.go(first)
    header = widget.header.text()
    assert "IMAGE NOT SHAREABLE" in header and "not measured" in header
    assert widget.report_only.isVisible() and not widget.share_original.isVisible()
    widget.accept_button.click()
    assert store.case(first).status == "pending"
    assert "share the report only" in widget.message.text()
    widget.report_only.setChecked(True)
    widget.accept_button.click()
    assert store.case(first).status == "accepted"
    assert store.shared_image(first).startswith("withheld")
    widget.go(second)
    assert not widget.report_only.isVisible() and "NOT SHAREABLE" not in widget.header.text()


def test_the_dock_shows_each_finding_and_what_was_lost_or_added(dock, qtbot):
    from updp_napari.review.artifacts import put_json
    from updp_napari.review.scores import compare_findings

    viewer, widget, ws = dock
    first, second = ws["cases"][:2]
    compared = compare_findings(("nodule", "effusion"), [0.8, 0.1], [0.2, 0.7], [0.5, 0.5])
    put_json(widget.session.store, first, "scores", {"privacy": 0.4, **compared})
    widget.go(second)
    widget.go(first)
    text = widget.scores.text()
    assert "nodule lost; effusion added (new positive)" in text
    assert "nodule 0.80→0.20 (lost)" in text and "effusion 0.10→0.70 (added)" in text
    assert "#ff6060" in text and "#ffa040" in text  # lost in red, added in orange


def test_the_privacy_score_reads_as_a_rank_and_an_alert(dock, qtbot):
    from qtpy.QtGui import QColor

    from updp_napari._qt.case_queue import ALERT
    from updp_napari.review.artifacts import put_json

    viewer, widget, ws = dock
    first, second = ws["cases"][:2]
    store = widget.session.store
    store.set_scores(first, privacy=0.0, utility=1.0)
    put_json(store, first, "scores", {"privacy": 0.0, "reid_rank": 1, "gallery_patients": 4})
    widget.refresh_queue()
    widget.go(second)
    widget.go(first)
    text = widget.scores.text()
    assert "ranks 1 of 4" in text and "re-identification alert" in text
    assert "about 2.5 = chance" in text and "0 = ranked first" in widget.scores.toolTip()
    row = [r for r in range(widget.queue.table.rowCount())
           if widget.queue.table.item(r, 0).data(Qt.ItemDataRole.UserRole) == first][0]
    cell = widget.queue.table.item(row, 2)
    assert cell.foreground().color() == QColor(ALERT) and "re-identified" in cell.toolTip()


def test_every_case_opens_with_both_images_whole(dock, qtbot):
    viewer, widget, ws = dock
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    qtbot.wait(50)
    fitted = camera.zoom
    camera.zoom = fitted * 3  # the reviewer zooms into one case
    widget.next()
    qtbot.wait(50)
    assert camera.zoom == pytest.approx(fitted, rel=0.05)


def test_undo_takes_a_decision_back_and_the_keys_are_listed(dock, qtbot):
    viewer, widget, ws = dock
    first = widget.session.current_id
    widget.accept_button.click()
    store = widget.session.store
    assert store.case(first).status == "accepted"
    widget.go(first)
    widget.undo_button.click()
    assert store.case(first).status == "pending" and "pending again" in widget.message.text()
    assert [e.action for e in store.action_log(first)][-2:] == ["decide", "undo"]
    widget.undo_button.click()  # nothing stands now
    assert "no decision to undo" in widget.message.text()
    assert not widget.keys_help.isVisible()
    widget.shortcuts_button.click()
    assert widget.keys_help.isVisible() and "take the decision back" in widget.keys_help.text()


def test_the_history_shows_what_was_done_to_the_case(dock, qtbot):
    viewer, widget, ws = dock
    first = widget.session.current_id
    widget.history_button.click()
    assert widget.history.isVisible() and "nothing done to this case yet" in widget.history.text()
    widget.flag_button.click()
    widget.go(first)
    assert "flag (was pending)" in widget.history.text()
    widget.undo_button.click()
    assert "took back the flag" in widget.history.text()


def test_in_second_reader_mode_a_decision_is_a_blind_reading(dock, qtbot):
    viewer, widget, ws = dock
    first = widget.session.current_id
    store = widget.session.store
    store.set_second_reader(True, "admin")
    store.read_blind(first, "flag", reviewer="bob")  # the other reader, elsewhere
    widget.history_button.click()
    assert "read blind" not in widget.history.text()  # bob's reading stays hidden
    widget.reject_button.click()
    assert "readers disagree" in widget.message.text()
    assert store.case(first).status == "flagged"
    widget.go(first)
    assert "read blind: flag" in widget.history.text()  # decided: both readings shown
