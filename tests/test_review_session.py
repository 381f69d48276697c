"""The review session from Python (no Qt): navigation, spans, decisions, masks, regeneration."""

import threading

import numpy as np
import pytest
from review_fixtures import FakeFilter, build_workspace

from updp_napari.core.errors import InputError, UpdpError
from updp_napari.review.session import ReviewSession
from updp_napari.review.store import ReviewStore


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_workspace(tmp_path_factory.mktemp("review") / "ws")


@pytest.fixture
def ws(tmp_path):
    return build_workspace(tmp_path / "ws")


def test_open_lists_cases_and_starts_at_the_first(built):
    with ReviewSession.open(built["workspace"], reviewer="ann") as session:
        assert [c.case_id for c in session.cases()] == built["cases"]
        assert session.current_id == built["cases"][0]
        assert session.position() == (1, 4)
        case = session.current
        assert case.original.shape == case.synthetic.shape == case.mask.shape == (256, 256)
        assert case.mask.max() > 0 and case.status == "pending"
        assert case.scores["privacy"] == pytest.approx(0.55)
        assert case.scores["details"]["findings_agree"] is True
        # the second case has a burned-in name: its boxes make the text mask
        boxed = session.go(built["cases"][1])
        assert len(boxed.text_boxes) == 3 and boxed.text_mask.sum() > 0
        assert session.next().case_id == built["cases"][2]
        assert session.previous().case_id == built["cases"][1]


def test_redacted_text_is_the_pipelines_and_pathology_terms_are_kept(built):
    with ReviewSession.open(built["workspace"], reviewer="ann") as session:
        for case_id in built["cases"]:
            case = session.go(case_id)
            assert case.redacted == built["redacted"][case_id]
            kept = [s for s in case.spans if s.category == "PATHOLOGY"]
            assert kept and all(s.action == "keep" for s in kept)
            for span in kept:  # a protected term is in the redacted text untouched
                assert case.report[span.start:span.end] in case.redacted


def test_toggling_a_span_changes_the_redacted_text_and_the_store(ws):
    with ReviewSession.open(ws["workspace"], reviewer="ann") as session:
        case = session.current
        before = case.redacted
        name = next(s for s in case.spans if s.category == "NAME" and s.action == "redact")
        original_words = case.report[name.start:name.end]
        assert original_words not in before
        toggled = session.toggle_span(name.span_id)
        assert toggled.action == "keep" and toggled.changed_by == "ann"
        assert original_words in case.redacted and case.redacted != before
        entry = session.store.action_log(case.case_id)[-1]
        assert entry.action == "toggle_span" and entry.detail["span_id"] == name.span_id
        session.toggle_span(name.span_id)
        assert case.redacted == before


def test_adding_a_redaction_hides_the_text(ws):
    with ReviewSession.open(ws["workspace"], reviewer="ann") as session:
        case = session.current
        report = case.report
        start = report.index("nodule")
        span = session.add_redaction(start, start + len("nodule"), "other")
        assert (span.origin, span.category, span.action) == ("reviewer", "OTHER", "redact")
        assert case.redacted.count("nodule") == report.count("nodule") - 1
        assert session.store.action_log(case.case_id)[-1].action == "add_span"
        # overlapping a span already redacted gives one replacement, not garbled text
        name = next(s for s in case.spans if s.category == "NAME" and s.action == "redact")
        session.add_redaction(name.start, name.end + 1)
        assert report[name.start:name.end] not in case.redacted
        with pytest.raises(InputError, match="inside the report"):
            session.add_redaction(len(report) - 2, len(report) + 5)
        with pytest.raises(InputError, match="inside the report"):
            session.add_redaction(5, 5)


def test_accept_records_status_time_and_audit(ws):
    clock = Clock()
    with ReviewSession.open(ws["workspace"], reviewer="ann", clock=clock) as session:
        case_id = session.current_id
        clock.now += 12.5
        decision = session.decide("accept", comment="findings intact")
        assert decision.seconds == pytest.approx(12.5) and decision.reviewer == "ann"
        assert session.current.status == "accepted"
        entry = session.store.action_log(case_id)[-1]
        assert entry.action == "decide" and entry.detail["decision"] == "accept"
        assert entry.detail["seconds"] == pytest.approx(12.5)
        # the clock restarts when the next case is shown
        session.next()
        clock.now += 3.0
        assert session.decide("flag").seconds == pytest.approx(3.0)
        with pytest.raises(InputError, match="decision must be"):
            session.decide("approve")
    with ReviewStore.open(ws["workspace"]) as store:  # durable: another connection sees it
        assert store.case(case_id).status == "accepted"
        assert [c.case_id for c in store.cases(status="flagged")] == [ws["cases"][1]]


def test_reopening_resumes_at_the_first_undecided_case(ws):
    with ReviewSession.open(ws["workspace"], reviewer="ann") as session:
        session.decide("accept")
        session.next()
        session.decide("reject")
        assert session.next(status="pending").case_id == ws["cases"][2]
    with ReviewSession.open(ws["workspace"], reviewer="bob") as session:
        assert session.current_id == ws["cases"][2]
        assert [c.case_id for c in session.cases(status="pending")] == ws["cases"][2:]
        assert session.previous(status="pending") is None  # no pending case before it
        session.go(ws["cases"][3])
        assert session.next() is None and session.current_id == ws["cases"][3]
        for case_id in ws["cases"][2:]:
            session.go(case_id)
            session.decide("flag")
    with ReviewSession.open(ws["workspace"], reviewer="ann") as session:
        assert session.current_id == ws["cases"][0]  # all decided: back at the start
        assert session.first_undecided() is None


def test_saving_a_mask_stores_the_reviewer_mask_beside_the_pipelines(ws):
    with ReviewSession.open(ws["workspace"], reviewer="ann") as session:
        case = session.current
        pipeline = case.preserve_mask.copy()
        assert not session.save_mask(pipeline)  # unchanged: nothing written
        assert case.reviewer_mask is None
        edited = pipeline.copy()
        edited[:40, :40] = 1
        assert session.save_mask(edited)
        assert np.array_equal(case.reviewer_mask, edited)
        assert np.array_equal(case.mask, edited)
        assert np.array_equal(case.preserve_mask, pipeline)  # the model's own stays
        entry = session.store.action_log(case.case_id)[-1]
        assert entry.action == "edit_mask" and entry.reviewer == "ann"
        with pytest.raises(InputError, match="shape"):
            session.save_mask(np.zeros((10, 10), np.uint8))
        with pytest.raises(InputError, match="labels must be 0 to 7"):
            session.save_mask(np.full(pipeline.shape, 9, np.uint8))
        with pytest.raises(InputError, match="integer labels"):
            session.save_mask(pipeline.astype(np.float32))


def test_regenerate_stores_the_new_synthetic_with_its_signature(ws):
    fake = FakeFilter(steps=5)
    with ReviewSession.open(ws["workspace"], reviewer="ann") as session:
        session.go(ws["cases"][1])  # the case with burned-in text
        case = session.current
        before = case.synthetic.copy()
        edited = case.preserve_mask.copy()
        edited[100:120, 100:120] = 2
        session.save_mask(edited)
        job = session.regenerate(strength=0.6, seed=7, filter=fake)
        items = list(job)
        assert items[:-1] == [(i, 5) for i in range(1, 6)]
        result = items[-1]
        assert result.stored and not job.dropped and result.case_id == case.case_id
        assert not np.array_equal(case.synthetic, before)
        assert np.array_equal(case.synthetic, result.image)
        signature = case.signature("synthetic")
        assert signature["seed"] == 7 and signature["strength"] == 0.6
        assert signature["input"]["image"] == "cleaned"
        assert signature["input"]["mask"] == "reviewer_mask"
        assert signature["regenerated_by"] == "ann"
        entry = session.store.action_log(case.case_id)[-1]
        assert entry.action == "regenerate" and entry.reviewer == "ann"
        assert entry.detail["synthetic"] == result.artifact and entry.detail["seed"] == 7
        assert entry.detail["previous"] != result.artifact
        # The scores are those of the new image, computed against every original.
        details = case.scores["details"]
        assert details["gallery_patients"] == len({s.split("_")[0] for s in ws["studies"].values()})
        with ReviewSession.open(ws["workspace"], reviewer="ann") as other:
            own = other.rescore(case.case_id)["details"]["reid_similarity"]
        assert details["reid_similarity"] == own
        call = fake.calls[-1]
        assert np.array_equal(call["preserve"], edited > 0)  # the reviewer's mask was kept
        assert call["text"].sum() == case.text_mask.sum() > 0
        # the same seed gives the same image
        again = session.regenerate(strength=0.6, seed=7, filter=fake).run()
        assert np.array_equal(again.image, result.image)


def test_a_cancelled_regeneration_stores_nothing(ws):
    with ReviewSession.open(ws["workspace"], reviewer="ann") as session:
        before = session.current.record.artifacts["synthetic"]
        job = session.regenerate(seed=1, filter=FakeFilter())
        job.cancel()
        assert list(job) == [] and job.cancelled and job.result is None
        assert session.current.record.artifacts["synthetic"] == before


def test_moving_on_mid_regeneration_drops_the_result(ws):
    with ReviewSession.open(ws["workspace"], reviewer="ann") as session:
        first = session.current
        before = first.record.artifacts["synthetic"]
        job = session.regenerate(seed=3, filter=FakeFilter(steps=3))
        steps = iter(job)
        assert next(steps) == (1, 3)
        session.next()  # the reviewer moves on before the job ends
        rest = list(steps)
        assert rest[-1].stored is False and job.dropped
        assert first.record.artifacts["synthetic"] == before
        assert session.current.record.artifacts["synthetic"]["signature"]["model"] \
            == "review_fixtures.fake_synthetic"


def test_background_regeneration_runs_on_another_thread_and_drops_late_results(ws, monkeypatch):
    monkeypatch.setenv("UPDP_SYNC", "0")
    gate = threading.Event()
    fake = FakeFilter(steps=3, gate=gate)
    with ReviewSession.open(ws["workspace"], reviewer="ann") as session:
        first = session.current
        before = first.record.artifacts["synthetic"]
        job = session.regenerate(seed=3, filter=fake)
        outcome = {}
        runner = threading.Thread(target=lambda: outcome.update(result=job.run()))
        runner.start()
        assert fake.started.wait(10)
        session.next()
        gate.set()
        runner.join(10)
        assert outcome["result"] is not None and outcome["result"].stored is False
        assert fake.calls[-1]["thread"] not in (threading.get_ident(), runner.ident)
        assert first.record.artifacts["synthetic"] == before
        # and a cancel is answered even while the filter is stuck mid-step
        gate.clear()
        job = session.regenerate(seed=4, filter=FakeFilter(steps=3, gate=gate))
        steps = iter(job)
        assert next(steps) == (1, 3)
        job.cancel()
        assert list(steps) == [] and job.cancelled
        gate.set()


def test_regenerate_checks_its_settings(built):
    with ReviewSession.open(built["workspace"], reviewer="ann") as session:
        with pytest.raises(InputError, match="strength"):
            session.regenerate(strength=0, filter=FakeFilter())
        with pytest.raises(InputError, match="seed"):
            session.regenerate(seed=-1, filter=FakeFilter())
        with pytest.raises(InputError, match="shape"):
            session.regenerate(mask=np.zeros((3, 3), np.uint8), filter=FakeFilter())


@pytest.mark.slow
def test_regenerate_with_the_real_filter_and_a_tiny_untrained_unet(ws, tmp_path):
    pytest.importorskip("diffusers")
    import torch

    from updp_napari.synth.filter import GenerativeFilter
    from updp_napari.synth.model import build_unet, noise_schedule, save_model_folder

    torch.manual_seed(0)
    torch.set_num_threads(1)
    unet = build_unet(size=32, patch=2, channels=(16, 32), attention=False)
    card = {"model": {"size": 32, "patch": 2, "conditioning": "mask+known"},
            "model_id": "tiny-untrained", "defaults": {"strength": 1.0, "steps": 3, "dilation": 0.02}}
    save_model_folder(tmp_path / "tiny", unet, noise_schedule(), card, fp16=False)
    real = GenerativeFilter.load(tmp_path / "tiny", device="cpu", threads=1)
    with ReviewSession.open(ws["workspace"], reviewer="ann") as session:
        case = session.current
        job = session.regenerate(seed=2, filter=real)
        items = list(job)
        assert [i for i in items if isinstance(i, tuple)][-1] == (3, 3)
        assert items[-1].stored
        synthetic = case.synthetic
        assert synthetic.shape == case.original.shape and synthetic.dtype == np.float32
        inside = case.mask > 0
        # kept as far as the 32-px model sees it (its fine noise is drawn afresh): the same
        # at low frequency, away from the region's rim
        from updp_napari.synth.masks import blur, dilate

        inner = inside & ~dilate(~inside, 3)
        assert np.abs(blur(synthetic, 4.0) - blur(case.cleaned, 4.0))[inner].mean() < 0.05
        assert not np.allclose(synthetic[~inside], case.cleaned[~inside], atol=0.05)
        signature = case.signature("synthetic")
        assert signature["model"] == "tiny-untrained" and signature["steps"] == 3
        assert signature["seed"] == 2


def test_a_folder_that_is_not_a_workspace_is_a_clear_error(tmp_path, capsys):
    from updp_napari.cli import main

    with pytest.raises(UpdpError, match="not a review workspace"):
        ReviewSession.open(tmp_path)
    assert main(["review", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("updp review: error:") and "not a review workspace" in err
    assert err.count("\n") == 1
    assert main(["review", str(tmp_path / "missing"), "--screenshot", str(tmp_path / "x.png")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_an_empty_workspace_opens_with_no_current_case(tmp_path):
    ReviewStore.open(tmp_path / "ws", create=True).close()
    with ReviewSession.open(tmp_path / "ws", reviewer="ann") as session:
        assert session.current is None and session.cases() == []
        assert session.next() is None
        with pytest.raises(UpdpError, match="no case is open"):
            session.decide("accept")
