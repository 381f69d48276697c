"""updp run: a folder of studies into a review workspace, resumable, failures recorded."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from updp_napari.cli import main
from updp_napari.core.errors import InputError
from updp_napari.core.vocabulary import FINDINGS
from updp_napari.pipeline import run_pipeline
from updp_napari.review.session import ReviewSession
from updp_napari.review.store import ReviewStore

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
STUDIES = ["p0000_s01", "p0000_s02", "p0001_s01", "p0002_s02"]


def _input(tmp_path, studies=STUDIES) -> Path:
    root = tmp_path / "in"
    for study in studies:
        shutil.copytree(SAMPLE / study, root / study)
    return root


def test_run_fills_the_workspace_and_a_second_run_resumes(tmp_path, tiny_models):
    model, scorers = tiny_models
    root, ws = _input(tmp_path), tmp_path / "ws"
    summary = run_pipeline(root, ws, model=model, scorers=scorers, pixels="ocr")
    assert (summary.cases, summary.done, summary.failed, summary.scored) == (4, 4, [], 4)
    with ReviewSession.open(ws, reviewer="t") as session:
        for record in session.cases():
            case = session.case(record.case_id)
            assert case.original.shape == case.synthetic.shape == (256, 256)
            assert 0.0 <= case.synthetic.min() and case.synthetic.max() <= 1.0
            assert not np.array_equal(case.synthetic, case.original)
            assert case.report and case.spans and case.redacted != case.report
            assert 0.0 <= record.privacy_score <= 1.0 and 0.0 <= record.utility_score <= 1.0
            details = case.scores["details"]
            assert details["gallery_patients"] == 3
            # finding by finding, and the utility is what those calls say
            assert set(details["findings"]) == set(FINDINGS) and details["verdict"]
            called = len(details["kept"]) + len(details["lost"]) + len(details["added"])
            assert record.utility_score == pytest.approx(
                1.0 if not called else len(details["kept"]) / called, abs=1e-4)
        # The burned-in name of p0002_s02 was found and its box kept for the filter.
        assert any(session.case(r.case_id).text_boxes for r in session.cases())
        # every case draws its own noise: no shared counterpart across cases
        seeds = [session.case(r.case_id).signature("synthetic")["seed"] for r in session.cases()]
        assert len(set(seeds)) == 4
    again = run_pipeline(root, ws, model=model, scorers=scorers, pixels="ocr")
    assert (again.done, again.already_done, again.scored) == (0, 4, 4)
    # the same run seed gives the same images; another one redraws every case
    other = run_pipeline(root, ws, model=model, scorers=scorers, pixels="ocr", seed=1)
    assert (other.done, other.already_done) == (4, 0)


def test_the_redacted_report_is_what_deid_report_writes(tmp_path, tiny_models, capsys):
    model, scorers = tiny_models
    root, ws = _input(tmp_path, STUDIES[:2]), tmp_path / "ws"
    assert main(["run", str(root), str(ws), "--filter-model", str(model), "--scorers",
                 str(scorers), "--pixels", "off", "-q"]) == 0
    assert "2 case(s)" in capsys.readouterr().out
    out = tmp_path / "reports"
    assert main(["deid-report", "--in", str(root), "--out", str(out), "--header-beside",
                 "--mode", "surrogate", "--key-file", str(ws / "secret.key"), "-q"]) == 0
    expected = sorted(p.read_text(encoding="utf-8") for p in out.rglob("report.txt"))
    with ReviewSession.open(ws, reviewer="t") as session:
        got = sorted(session.case(r.case_id).redacted for r in session.cases())
    assert got == expected


def test_a_bad_study_is_recorded_and_the_rest_go_on(tmp_path, tiny_models, capsys):
    model, scorers = tiny_models
    root, ws = _input(tmp_path, STUDIES[:3]), tmp_path / "ws"
    (root / STUDIES[1] / "report.txt").write_bytes(b"\x00\x01binary")
    dicom = root / STUDIES[2] / "image.dcm"
    dicom.write_bytes(dicom.read_bytes()[:2000])  # truncated: header readable, pixels not
    assert main(["run", str(root), str(ws), "--filter-model", str(model), "--scorers",
                 str(scorers), "--pixels", "off", "-q"]) == 0
    out = capsys.readouterr().out
    assert "1 done now" in out and "2 failed" in out
    assert f"{STUDIES[1]}/report.txt: report is binary" in out
    assert f"{STUDIES[2]}/image.dcm" in out
    with ReviewStore.open(ws) as store:
        failed = store.cases(status="failed")
        assert len(failed) == 2 and all(c.failure_reason for c in failed)
        assert len(store.cases(status="pending")) == 1
    # Fixed and run again, the failed cases go through; the finished one is not redone.
    shutil.copy(SAMPLE / STUDIES[1] / "report.txt", root / STUDIES[1] / "report.txt")
    shutil.copy(SAMPLE / STUDIES[2] / "image.dcm", dicom)
    again = run_pipeline(root, ws, model=model, scorers=scorers, pixels="off")
    assert (again.done, again.already_done, again.failed) == (2, 1, [])


def test_bad_inputs_are_one_line(tmp_path, tiny_models, capsys):
    model, scorers = tiny_models
    (tmp_path / "empty").mkdir()
    assert main(["run", str(tmp_path / "empty"), str(tmp_path / "ws")]) == 2
    assert "no studies found" in capsys.readouterr().err
    root = _input(tmp_path, STUDIES[:1])
    assert main(["run", str(root), str(tmp_path / "ws"), "--filter-model",
                 str(tmp_path / "nope"), "--scorers", str(scorers)]) == 2
    assert "nope" in capsys.readouterr().err
    with pytest.raises(InputError, match="no such folder"):
        run_pipeline(tmp_path / "missing", tmp_path / "ws")


def test_review_sample_builds_the_sample_workspace_once(tmp_path, tiny_models, monkeypatch, capsys):
    import updp_napari.pipeline as pipeline
    from updp_napari.review import sample

    model, scorers = tiny_models
    real, runs = pipeline.run_pipeline, []

    def tiny_run(*args, **kwargs):  # the shipped models are slow for a test; same plumbing
        runs.append(args)
        return real(*args, model=model, scorers=scorers, pixels="off",
                    **{k: v for k, v in kwargs.items() if k not in ("model", "scorers", "pixels")})

    monkeypatch.setattr(pipeline, "run_pipeline", tiny_run)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ws = sample.sample_workspace()
    assert ws == tmp_path / "cache" / "updp-napari" / "sample-workspace"
    assert "building the sample workspace" in capsys.readouterr().err
    with ReviewStore.open(ws) as store:
        cases = store.cases()
    assert len(cases) == len(list(SAMPLE.glob("p*_s*"))) and all("synthetic" in c.artifacts for c in cases)
    assert sample.sample_workspace() == ws and len(runs) == 1  # built once, then reused
    # other shipped models (or another version): brought up to date, once
    monkeypatch.setattr(sample, "shipped_models_stamp", lambda: "9.9 other-models")
    assert sample.sample_workspace() == ws and len(runs) == 2
    assert "updating the sample workspace" in capsys.readouterr().err
    assert sample.sample_workspace() == ws and len(runs) == 2
    assert main(["review", str(ws), "--sample"]) == 2
    assert "not both" in capsys.readouterr().err


def test_the_review_masks_exactly_the_text_the_pipeline_filled(tmp_path, tiny_models, monkeypatch):
    """One box convention (core.boxes): the text mask the pipeline hands the filter, the
    pixels it filled in the de-identified file, the mask the review reads back and the one
    a regeneration uses are the same pixels."""
    import io

    import pydicom
    from review_fixtures import FakeFilter

    import updp_napari.synth.job as job
    from updp_napari.deid.pixels import tesseract_available

    if not tesseract_available():
        pytest.skip("tesseract is not installed (Debian package tesseract-ocr)")
    model, scorers = tiny_models
    handed, real = [], job.run_job

    def spy(images, preserve, text, *args, **kwargs):
        handed.extend(np.array(t) for t in text)
        return real(images, preserve, text, *args, **kwargs)

    monkeypatch.setattr(job, "run_job", spy)
    root, ws = _input(tmp_path, ["p0002_s02"]), tmp_path / "ws"  # a burned-in name
    run_pipeline(root, ws, model=model, scorers=scorers, pixels="ocr")
    pipeline_mask = handed[0]  # the one case (a short batch is filled up with its repeats)
    assert all(np.array_equal(m, pipeline_mask) for m in handed)
    assert pipeline_mask.any()
    with ReviewSession.open(ws, reviewer="t") as session:
        case = session.current
        assert case.text_boxes
        assert np.array_equal(case.text_mask, pipeline_mask)
        assert np.all(case.cleaned[pipeline_mask] == 0.0)
        artifacts = case.record.artifacts

        def pixels(name):
            data = session.store.get_artifact(artifacts[name]["path"])
            return pydicom.dcmread(io.BytesIO(data)).pixel_array

        source, filled = pixels("source"), pixels("dicom")
        assert source.shape == pipeline_mask.shape
        changed = source != filled
        assert changed.any() and not (changed & ~pipeline_mask).any()  # nothing beyond the mask
        assert len(np.unique(filled[pipeline_mask])) == 1  # and all of it filled
        fake = FakeFilter(steps=1)
        session.regenerate(seed=1, filter=fake).run()
        assert np.array_equal(fake.calls[-1]["text"], pipeline_mask)
