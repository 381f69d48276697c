"""The out-of-domain guard: an input unlike the filter's training images gets no counterpart."""

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from scipy import ndimage

from updp_napari.cli import main
from updp_napari.core.errors import InputError, UpdpError
from updp_napari.synth.domain import DOMAIN_FILE, NO_DOMAIN, Domain, domain_record, folder_images

SHIPPED = Path(__file__).resolve().parent.parent / "updp_napari" / "models" / "filter"
SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


@pytest.fixture(scope="module")
def shipped():
    return Domain.load(SHIPPED)


@pytest.fixture(scope="module")
def sample_images():
    images, masks, patients, skipped = folder_images(SAMPLE)
    assert not skipped and len(images) == 24
    return images, masks, patients


def test_the_shipped_domain_takes_the_cohort_and_refuses_what_is_unlike_it(shipped, cohort,
                                                                          sample_images):
    images, masks, _ = sample_images
    fresh, fresh_masks, _, _ = folder_images(cohort)  # a seed the description never saw
    inside = [shipped.check(i, m).distance for i, m in zip(images + fresh, masks + fresh_masks)]
    assert max(inside) < 1.0, inside
    x = images[0]
    unlike = {"upside down": x[::-1], "inverted": 1.0 - x, "transposed": x.T.copy(),
              "under-exposed": x * 0.5, "noise": np.random.default_rng(0).random(x.shape)}
    for name, image in unlike.items():
        check = shipped.check(image)
        assert not check.in_domain and check.distance > 1.2, (name, check)
    flat = shipped.check(np.full(x.shape, 0.5))  # cannot be measured: out, not a guess
    assert not flat.in_domain and flat.distance == float("inf")
    record = domain_record(shipped, np.full(x.shape, 0.5), model_id="m")
    assert record["distance"] is None and "could not be measured" in record["reason"]
    json.dumps(record, allow_nan=False)
    assert domain_record(None, x)["in_domain"] is False
    assert domain_record(None, x)["reason"] == NO_DOMAIN
    assert shipped.summary["calibration"]["false_alarms"] == 0


def test_fit_calibrate_save_and_load(wide_cohort, tmp_path):
    folder, _ = wide_cohort  # 40 patients x 3 studies at 128 px
    images, masks, patients, _ = folder_images(folder)
    held = np.isin(patients, sorted(set(patients))[:12])
    fit = [i for i in range(len(images)) if not held[i]]
    domain = Domain.fit([images[i] for i in fit], [masks[i] for i in fit])
    calibration = domain.calibrate([images[i] for i in range(len(images)) if held[i]],
                                   [masks[i] for i in range(len(images)) if held[i]])
    assert calibration["held_out_images"] == int(held.sum())
    assert calibration["false_alarm_rate"] <= 0.05
    domain.save(tmp_path)
    loaded = Domain.load(tmp_path)
    for image in (images[0], images[-1], ndimage.gaussian_filter(images[1], 6)):
        assert loaded.check(image).distance == pytest.approx(domain.check(image).distance)
    assert not loaded.check(1.0 - images[0]).in_domain
    assert Domain.load(tmp_path / "nowhere") is None
    (tmp_path / DOMAIN_FILE).write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable domain description"):
        Domain.load(tmp_path)
    with pytest.raises(InputError, match="at least"):
        Domain.fit(images[:10])


def test_fit_domain_command_writes_the_description_into_the_filter_folder(wide_cohort, cohort,
                                                                         tiny_models, tmp_path,
                                                                         capsys):
    folder, _ = wide_cohort
    model = tmp_path / "filter"
    shutil.copytree(tiny_models[0], model)
    (model / DOMAIN_FILE).unlink()
    assert main(["fit-domain", str(model), str(folder), "-q"]) == 0
    out = capsys.readouterr().out
    assert "training images" in out and "held-out images" in out
    card = json.loads((model / "updp_filter.json").read_text())
    section = card["domain"]
    assert section["file"] == DOMAIN_FILE and section["train"]["seed"] == 5
    assert section["calibration"]["held_out_images"] + section["images"] == 120
    assert "a fifth" in section["calibrate"]
    assert Domain.load(model) is not None
    # Calibrating on the training patients is refused; a folder that is no filter too.
    assert main(["fit-domain", str(model), str(folder), "--calibrate", str(folder), "-q"]) == 2
    assert "shares patients" in capsys.readouterr().err
    assert main(["fit-domain", str(tmp_path), str(folder), "-q"]) == 2
    assert "not a filter folder" in capsys.readouterr().err


def _study_with_pixels(source: Path, out: Path, pixels: np.ndarray) -> None:
    """A copy of a cohort study folder whose DICOM holds ``pixels`` (and a new study UID)."""
    from updp_napari.export import with_synthetic_pixels

    shutil.copytree(source, out)
    dicom = next(out.glob("*.dcm"))
    data = with_synthetic_pixels(dicom.read_bytes(), pixels, b"k" * 32, "test image")
    dicom.write_bytes(data)
    ds = pydicom.dcmread(dicom)
    ds.StudyInstanceUID = ds.StudyInstanceUID + ".9"
    ds.save_as(dicom)
    for mask in out.glob("mask_*.png"):
        mask.unlink()


def test_an_image_out_of_domain_gets_no_counterpart_and_leaves_only_as_accepted(tiny_models,
                                                                                tmp_path, capsys):
    from updp_napari.ingest import display_image
    from updp_napari.review.session import ReviewSession
    from updp_napari.review.store import ORIGINAL_IMAGE, ReviewStore

    filt, scorers = tiny_models
    studies = tmp_path / "in"
    studies.mkdir()
    for name in ("p0000_s01", "p0001_s01"):
        shutil.copytree(SAMPLE / name, studies / name)
    image = display_image(next((SAMPLE / "p0002_s01").glob("*.dcm")))
    _study_with_pixels(SAMPLE / "p0002_s01", studies / "upside", image[::-1].copy())
    ws = tmp_path / "ws"
    args = ["run", str(studies), str(ws), "--filter-model", str(filt), "--scorers", str(scorers),
            "-q"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "1 case(s) out of the filter's domain" in out and "upside/" in out
    with ReviewStore.open(ws) as store:
        cases = {c.case_id: c for c in store.cases()}
    outside = [c for c in cases.values() if "synthetic" not in c.artifacts]
    assert len(outside) == 1 and len(cases) == 3
    case_id = outside[0].case_id
    with ReviewSession.open(ws, reviewer="ann") as session:
        case = session.case(case_id)
        assert case.out_of_domain["distance"] > 1.0 and case.synthetic is None
        assert case.scores["privacy"] is None
        others = [c for c in cases if c != case_id]
        assert all(session.case(c).out_of_domain is None for c in others)
        with pytest.raises(UpdpError, match="out of the filter's domain"):
            session.regenerate(case_id=case_id)
    # A second run finds it finished: nothing is synthesised for it.
    assert main(args) == 0
    assert "0 done now, 3 already done" in capsys.readouterr().out

    # Accepting it needs the explicit choice; the choice is refused on a case in domain.
    assert main(["decide", str(ws), case_id, "accept", "--reviewer", "ann"]) == 2
    assert "--original-image" in capsys.readouterr().err
    assert main(["decide", str(ws), others[0], "accept", "--reviewer", "ann",
                 "--original-image"]) == 2
    assert "in the filter's domain" in capsys.readouterr().err
    assert main(["decide", str(ws), case_id, "reject", "--reviewer", "ann",
                 "--original-image"]) == 2
    assert main(["decide", str(ws), case_id, "accept", "--reviewer", "ann",
                 "--original-image"]) == 0
    assert main(["decide", str(ws), others[0], "accept", "--reviewer", "ann"]) == 0
    with ReviewStore.open(ws) as store:
        assert store.accepted_original_image(case_id)
        assert not store.accepted_original_image(others[0])
    package = tmp_path / "package"
    assert main(["export", str(ws), str(package), "--no-ocr", "-q"]) == 0
    capsys.readouterr()
    manifest = json.loads((package / "manifest.json").read_text())
    kinds = {row["case_id"]: row["image"] for row in manifest["cases"]}
    assert kinds == {case_id: ORIGINAL_IMAGE, others[0]: "synthetic"}
    shared = pydicom.dcmread(package / "cases" / case_id / "image.dcm")
    assert "original pixels" in shared.DerivationDescription
    assert "CAUTION: 1 case(s)" in (package / "README.txt").read_text()


def test_an_accept_from_before_the_domain_check_does_not_leave(tiny_models, tmp_path, capsys):
    """A case accepted, then found out of domain (another filter, a new description), is
    refused by the export until a reviewer accepts its original image; a filter folder with
    no description puts every case out, with the reason."""
    from updp_napari.review.artifacts import put_json
    from updp_napari.review.store import ReviewStore

    filt, scorers = tiny_models
    studies = tmp_path / "in"
    studies.mkdir()
    shutil.copytree(SAMPLE / "p0000_s01", studies / "p0000_s01")
    ws = tmp_path / "ws"
    assert main(["run", str(studies), str(ws), "--filter-model", str(filt), "--scorers",
                 str(scorers), "-q"]) == 0
    with ReviewStore.open(ws) as store:
        (case,) = store.cases()
        store.decide(case.case_id, "accept", reviewer="ann")
        put_json(store, case.case_id, "domain", domain_record(None, np.zeros((8, 8))))
    capsys.readouterr()
    assert main(["export", str(ws), str(tmp_path / "package"), "--no-ocr", "-q"]) == 2
    assert "out of the filter's domain" in capsys.readouterr().err
    assert not (tmp_path / "package").exists()

    bare = tmp_path / "bare"
    shutil.copytree(filt, bare)
    (bare / DOMAIN_FILE).unlink()
    assert main(["run", str(studies), str(tmp_path / "ws2"), "--filter-model", str(bare),
                 "--scorers", str(scorers), "-q"]) == 0
    assert "no description of its training images" in capsys.readouterr().out
