"""The workflows as napari widgets (Plugins › UPDP Review): run the pipeline, export, plan
and draw an audit sample, evaluate the filter — each ending in the dock that shows its result."""

import shutil
from pathlib import Path

import pytest

pytest.importorskip("napari")
pytestmark = [pytest.mark.gui, pytest.mark.slow]

from updp_napari.review.store import ReviewStore  # noqa: E402

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
STUDIES = ["p0000_s01", "p0001_s01", "p0002_s02"]


def _docked(viewer) -> set:
    return set(viewer.window.dock_widgets)


def test_run_export_and_audit_from_napari(make_napari_viewer, tiny_models, tmp_path):
    model, _ = tiny_models
    for study in STUDIES:
        shutil.copytree(SAMPLE / study, tmp_path / "in" / study)
    viewer = make_napari_viewer()
    _, run = viewer.window.add_plugin_dock_widget("updp-napari", "Run pipeline on a folder")
    run.start()
    assert "choose the folder of studies" in run.message.value  # nothing given: one line
    run.input.value = str(tmp_path / "in")
    run.workspace.value = str(tmp_path / "ws")
    run.model.value = str(model)
    run.pixels.value = "off"
    run.run_button.clicked()  # UPDP_SYNC=1: the job runs inline
    assert "3 case(s)" in run.message.value and "3 done now" in run.message.value, \
        run.message.value
    assert run.progress.value == run.progress.max
    assert "Review" in _docked(viewer)  # the result opens in the review dock
    with ReviewStore.open(tmp_path / "ws") as store:
        first = store.cases()[0].case_id
        store.decide(first, "accept", reviewer="ann")

    _, export = viewer.window.add_plugin_dock_widget("updp-napari", "Export accepted cases")
    export.workspace.value = str(tmp_path / "ws")
    export.out.value = str(tmp_path / "package")
    export.ocr.value = False
    export.run_button.clicked()
    assert "exported 1 accepted case(s)" in export.message.value, export.message.value
    assert (tmp_path / "package" / "manifest.json").is_file()
    export.run_button.clicked()  # again: the package exists, one line, nothing overwritten
    assert "already exists" in export.message.value

    _, audit = viewer.window.add_plugin_dock_widget("updp-napari", "Plan and draw an audit sample")
    audit.target.value = str(tmp_path / "package")
    audit.plan_button.clicked()
    assert audit.size.value == 1 and "1 of 1 cases" in audit.message.value  # every case
    audit.seed.value = "x"
    audit.draw_button.clicked()
    assert "seed must be a whole number" in audit.message.value
    audit.seed.value = "7"
    audit.draw_button.clicked()
    assert "drew a sample of 1 case(s)" in audit.message.value, audit.message.value
    assert "Audit" in _docked(viewer) and audit.audit.sample.seed == 7
    audit.audit.close()


def test_cancel_stops_a_run_and_the_workspace_resumes(make_napari_viewer, tiny_models, tmp_path):
    model, _ = tiny_models
    for study in STUDIES:
        shutil.copytree(SAMPLE / study, tmp_path / "in" / study)
    viewer = make_napari_viewer()
    _, run = viewer.window.add_plugin_dock_widget("updp-napari", "Run pipeline on a folder")
    run.input.value, run.workspace.value = str(tmp_path / "in"), str(tmp_path / "ws")
    run.model.value, run.pixels.value = str(model), "off"
    seen = []

    def cancel_after_first(item):  # Cancel pressed as the first study is reported done
        seen.append(item)
        run.cancel()

    run.runner.on_item = lambda item: (run._on_item(item), cancel_after_first(item))
    run.run_button.clicked()
    assert "cancelled" in run.message.value and "Review" not in _docked(viewer)
    with ReviewStore.open(tmp_path / "ws") as store:
        assert 1 <= len(store.cases()) < 3
    run.runner.on_item = run._on_item
    run.run_button.clicked()
    assert "3 case(s)" in run.message.value and "already done" in run.message.value


def test_evaluate_the_filter_from_napari(make_napari_viewer, tiny_models):
    model, scorers = tiny_models
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("updp-napari", "Evaluate the filter")
    widget.cohort.value = str(SAMPLE)
    widget.strengths.value = "0.5,x"
    widget.run_button.clicked()
    assert "not a comma list of numbers" in widget.message.value
    widget.strengths.value = "1"
    widget.limit.value = 6
    widget.model.value, widget.scorers.value = str(model), str(scorers)
    widget.run_button.clicked()
    text = widget.message.value
    assert text.startswith("6 studies of 2 patients") and "re-id AUC" in text, text
    assert "realism test" in text and widget.progress.value == widget.progress.max
