"""The audit dock over the 4-case workspace with a planted kept name (Xvfb via pytest-xvfb)."""

import pytest
from review_fixtures import build_workspace

pytest.importorskip("napari")
pytestmark = [pytest.mark.gui, pytest.mark.slow]

from updp_napari.audit.session import AuditSession  # noqa: E402
from updp_napari.review.session import ReviewSession  # noqa: E402


@pytest.fixture
def dock(make_napari_viewer, tmp_path, qtbot):
    from updp_napari._qt.audit_dock import AuditWidget

    facts = build_workspace(tmp_path / "ws")
    leaked = facts["cases"][1]
    with ReviewSession.open(facts["workspace"], reviewer="rita") as session:
        session.go(leaked)
        name = next(s for s in session.current.spans
                    if s.category == "NAME" and s.source.startswith("context"))
        session.toggle_span(name.span_id)
        for case in facts["cases"]:
            session.go(case)
            session.decide("accept")
    audit = AuditSession.open(facts["workspace"], auditor="ann")
    audit.draw(4, seed=3)
    viewer = make_napari_viewer(show=True)
    widget = AuditWidget(viewer, audit)
    viewer.window.add_dock_widget(widget, name="Audit")
    qtbot.wait(100)
    yield viewer, widget, audit, leaked
    audit.close()


def walk_to(widget, sample, index):
    """Next / Previous until the dock shows sample[index]; each press moves exactly one case."""
    here = sample.index(widget.audit.current_id)
    for _ in range(abs(index - here)):
        widget.next() if index > here else widget.previous()
    assert widget.audit.current_id == sample[index]
    assert f"Audit case {index + 1} of {len(sample)}" in widget.heading.text()


def test_the_dock_walks_only_the_sample_and_records_findings(dock):
    viewer, widget, audit, leaked = dock
    sample = audit.sample.case_ids
    assert widget.audit.current_id == sample[0]
    assert "Audit case 1 of 4" in widget.heading.text()
    assert viewer.layers["outgoing image"].data.shape == audit.image(sample[0]).shape
    # Clean moves on to the next sampled case (the sample's order follows the keyed case
    # ids, so the planted case may come anywhere in it).
    clean = sample.index(next(c for c in sample if c != leaked))
    walk_to(widget, sample, clean)
    assert widget.mark_clean()
    assert widget.audit.current_id == sample[clean + 1]
    # Walk to the planted case: its suspect is drawn in the PHI colour.
    walk_to(widget, sample, sample.index(leaked))
    view = audit.view(leaked)
    suspect = view.suspects[0]
    assert widget.report.background_at(suspect.start) == "#a3312f"
    assert "1 suspect(s)" in widget.heading.text()
    # Nothing selected, no box: nothing is recorded.
    assert not widget.mark_residual()
    assert "select the leaked text" in widget.status.text()
    widget.report.select_range(suspect.start, suspect.end)
    widget.category.setCurrentText("NAME")
    assert widget.mark_residual()
    found = audit.store.findings(leaked)
    assert [(f.verdict, f.span, f.phi_category) for f in found] == [
        ("residual_phi", (suspect.start, suspect.end), "NAME")]
    assert found[0].seconds is not None
    # A box drawn on the Shapes layer (napari vertices are row, column).
    boxes = viewer.layers["audit boxes"]
    boxes.add_rectangles([[10, 20], [30, 60]])
    assert widget.mark_over_redaction()
    over = audit.store.findings(leaked)[-1]
    assert over.verdict == "over_redaction" and over.box == (20, 10, 60, 30)
    assert widget.status.text().startswith("recorded over redaction")
    leaked_text = view.report[suspect.start:suspect.end]
    assert leaked_text not in widget.status.text() and leaked_text not in widget.heading.text()
    stats = audit.statistics()
    assert stats["residual_phi"]["events"] == 1 and stats["over_redaction"]["events"] == 1


@pytest.fixture
def audited(tmp_path):
    """A workspace whose four cases are accepted and sampled."""
    facts = build_workspace(tmp_path / "ws")
    with ReviewSession.open(facts["workspace"], reviewer="rita") as session:
        for case in facts["cases"]:
            session.go(case)
            session.decide("accept")
    with AuditSession.open(facts["workspace"], auditor="ann") as audit:
        audit.draw(4, seed=3)
    return facts["workspace"]


def test_the_plugin_menu_audit_dock_opens_a_target(make_napari_viewer, audited, tmp_path):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("updp-napari", "Audit")
    assert widget.audit is None and widget.open_button.isVisibleTo(widget)
    assert not widget.choose_target(str(tmp_path))  # neither workspace nor package
    assert str(tmp_path) in widget.status.text()
    assert widget.choose_target(str(audited))
    assert widget.audit.current_id == widget.audit.sample.case_ids[0]
    assert not widget.open_button.isVisibleTo(widget)
    assert "Audit case 1 of 4" in widget.heading.text()
    widget.audit.close()


def test_updp_audit_renders_the_dock_or_prints_the_sample_without_a_display(audited, tmp_path,
                                                                           monkeypatch, capsys):
    import os
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    from updp_napari.cli import main

    out = tmp_path / "audit.png"
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}  # it starts its own Xvfb
    done = subprocess.run([sys.executable, "-m", "updp_napari", "audit", str(audited), "--auditor",
                           "ann", "--screenshot", str(out)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(out)
    with Image.open(out) as im:
        pixels = np.asarray(im.convert("L"), np.float32)
    assert pixels.shape == (1000, 1600) and pixels.std() > 20
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["audit", str(audited)]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.strip().splitlines()) >= 4 and "no display" in captured.err
