"""The notebook half: updp_napari.notebook views, and examples/review.ipynb executed
headlessly (a kernel, napari on the virtual display)."""

import os
from pathlib import Path

import pytest
from review_fixtures import build_workspace

from updp_napari.notebook import case_view, cases_table, marked_report
from updp_napari.review.session import ReviewSession

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "review.ipynb"


@pytest.fixture
def ws(tmp_path):
    return build_workspace(tmp_path / "ws")


def test_the_table_and_the_case_view_show_what_the_dock_shows(ws):
    with ReviewSession.open(ws["workspace"], reviewer="ann") as session:
        table = cases_table(session)._repr_html_()
        assert table.count("<tr>") == len(ws["cases"]) + 1
        assert all(case_id in table for case_id in ws["cases"])
        case = session.current
        view = case_view(case)
        fragment = view._repr_html_()
        assert fragment.count("data:image/png;base64,") == 3  # original, counterpart, difference
        assert "counterpart (synthetic)" in fragment and case.case_id in fragment
        name = next(s for s in case.spans if s.category == "NAME" and s.action == "redact")
        term = next(s for s in case.spans if s.category == "PATHOLOGY")
        marked = marked_report(case.report, case.spans)
        assert "background:#a3312f" in marked and "background:#1f7a45" in marked
        assert f'title="NAME: PHI, redacted">{case.report[name.start:name.end]}</span>' in marked
        assert f"{case.report[term.start:term.end]}</span>" in marked
        assert "privacy" in repr(view) and "<" not in repr(view)[:5]
        assert session.store.case(case.case_id).status == "pending"  # the views only read


def test_marked_report_escapes_markup_and_keeps_every_character():
    class S:  # a span as the store gives it
        def __init__(self, start, end, category, action, origin="auto"):
            self.start, self.end, self.category, self.action = start, end, category, action
            self.origin, self.span_id = origin, start

    text = "Pt <b>Ann</b> & effusion"
    marked = marked_report(text, [S(7, 10, "NAME", "redact"), S(16, 24, "PATHOLOGY", "keep")])
    assert "<b>" not in marked and "&lt;b&gt;" in marked and "&amp;" in marked
    import html
    import re

    assert html.unescape(re.sub(r"<[^>]+>", "", marked)) == text


@pytest.mark.slow
@pytest.mark.gui
def test_the_example_notebook_runs_headlessly(ws):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    env = {"UPDP_WORKSPACE": str(ws["workspace"]), "UPDP_REVIEWER": "nb",
           "UPDP_NOTEBOOK_CLOSE": "1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits them
    try:
        client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                         resources={"metadata": {"path": str(NOTEBOOK.parent)}})
        client.execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html_out = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("data:image/png;base64," in h for h in html_out)  # the case, inline
    assert any("<table>" in h for h in html_out)  # the cases
    texts = "".join(o.get("text", "") for o in outputs) + "".join(
        o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "'flagged'" in texts
    assert "napari open with 6 layers" in texts
    with ReviewSession.open(ws["workspace"], reviewer="ann") as session:
        assert session.store.decisions()[-1].reviewer == "nb"
