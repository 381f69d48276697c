"""The generative filter: synthesis, masks, jobs, model folders, training, the shipped model."""

import json
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from updp_napari.cli import main  # noqa: E402
from updp_napari.core.errors import UpdpError  # noqa: E402
from updp_napari.synth.filter import SHIPPED_MODEL, GenerativeFilter, SynthesisCancelled  # noqa: E402
from updp_napari.synth.job import SynthesisJob, SynthesisResult, run_job  # noqa: E402
from updp_napari.synth.masks import blur, dilate, resize  # noqa: E402
from updp_napari.synth.model import MODEL_CARD, build_unet, noise_schedule, save_model_folder  # noqa: E402

SIZE = 32


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A randomly initialised filter of the package's own layout, 32 px, saved in fp32."""
    torch.manual_seed(0)
    unet = build_unet(SIZE, patch=2, conditioning="mask+known", channels=(16, 32), attention=False)
    out = tmp_path_factory.mktemp("filter") / "tiny"
    card = {"model": {"size": SIZE, "patch": 2, "conditioning": "mask+known"},
            "defaults": {"strength": 1.0, "steps": 6, "dilation": 0.03}, "model_id": "tiny"}
    save_model_folder(out, unet, noise_schedule(), card, fp16=False)
    return out


@pytest.fixture(scope="module")
def tiny(tiny_folder):
    return GenerativeFilter.load(tiny_folder, device="cpu")


def _chest(shape=(48, 40), seed=1):
    """A bright blob on a dark field with some texture: enough for masks to mean something."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    body = ((yy / shape[0] - 0.5) / 0.4) ** 2 + ((xx / shape[1] - 0.5) / 0.35) ** 2 < 1
    return np.clip(0.15 + 0.6 * body + 0.1 * rng.random(shape), 0, 1).astype(np.float32)


def _box(shape, rows, cols):
    mask = np.zeros(shape, bool)
    mask[rows[0]:rows[1], cols[0]:cols[1]] = True
    return mask


def _coarse(image, side=SIZE):
    """What a model of ``side`` pixels sees of ``image``, back at full size."""
    return resize(resize(image, (side, side)), image.shape)


def _low_difference(a, b, where):
    """Mean difference of two images at low frequency (a 1.5-pixel blur) on ``where`` less a
    3-pixel rim (where the blur reaches across its edge)."""
    inner = where & ~dilate(~where, 3)
    assert inner.any()
    return float(np.abs(blur(a, 1.5) - blur(b, 1.5))[inner].mean())


def test_output_has_the_input_shape_and_range(tiny):
    image = _chest((48, 40))
    out = tiny.synthesize(image, _box(image.shape, (10, 20), (10, 20)), seed=0)
    assert out.shape == image.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_a_seed_gives_one_image_and_another_seed_another(tiny):
    image = _chest()
    keep = _box(image.shape, (10, 20), (10, 20))
    a = tiny.synthesize(image, keep, seed=3)
    b = tiny.synthesize(image, keep, seed=3)
    c = tiny.synthesize(image, keep, seed=4)
    assert np.array_equal(a, b)
    assert np.abs(a - c)[~keep].mean() > 0.01


def test_preserve_region_stays_and_the_rest_is_regenerated(tiny):
    """The kept region is the original as far as the model sees it (low frequencies); the
    rest is drawn afresh."""
    image = _chest((64, 64))
    keep = _box(image.shape, (20, 40), (16, 36))
    out = tiny.synthesize(image, keep, seed=0)
    assert _low_difference(out, image, keep) < 0.01
    assert np.abs(out - image)[~keep].mean() > 0.05


def _noisy_chest(side=256, noise=0.05, seed=1):
    """A smooth chest-like field under strong white detector noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    body = 0.2 + 0.5 * np.exp(-((yy - 0.5) ** 2 + (xx - 0.5) ** 2) / 0.08)
    return np.clip(body + noise * rng.standard_normal((side, side)), 0, 1).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_kept_region_cannot_be_found_by_its_fine_noise(tiny, seed):
    """The fine noise of a counterpart is fresh, matched to the original's level and the same
    inside the kept region and out: the region tell is near chance (pasting the original at
    full resolution makes it about 1)."""
    from updp_napari.synth.measure import region_noise_auc

    image = _noisy_chest()
    keep = _box(image.shape, (64, 192), (64, 132))
    out = tiny.synthesize(image, keep, seed=seed)
    assert abs(region_noise_auc(out, keep) - 0.5) < 0.15
    inner = ~dilate(~keep, 3)

    def fine(x):
        return (x - blur(x, 1.0))[inner].std()

    assert 0.8 < fine(out) / fine(image) < 1.25   # the original's noise level, not less


def test_the_kept_region_holds_none_of_the_originals_fine_noise(tiny):
    """Inside the kept region the counterpart's fine residual (above what the model sees) is
    fresh noise: it does not correlate with the original's (a pasted original gives 1), and
    another seed draws other noise."""
    image = _noisy_chest()
    keep = _box(image.shape, (64, 192), (64, 132))
    inner = ~dilate(~keep, 3)
    a, b = (tiny.synthesize(image, keep, seed=s) for s in (0, 1))
    original = (image - _coarse(image))[inner]
    fine_a, fine_b = (a - _coarse(a))[inner], (b - _coarse(b))[inner]
    assert abs(np.corrcoef(original, fine_a)[0, 1]) < 0.1
    assert abs(np.corrcoef(fine_a, fine_b)[0, 1]) < 0.1
    assert _low_difference(a, image, inner) < 0.01 and _low_difference(b, image, inner) < 0.01


@pytest.mark.parametrize("strength", [1.0, 0.6])
def test_text_is_regenerated_even_inside_the_preserve_mask(tiny, strength):
    """Two images that differ only under the text mask give the same result: no pixel of
    the text reaches the output, though it lies inside the region to keep (from noise, and
    from a partly noised original too)."""
    image = _chest((64, 64))
    keep = _box(image.shape, (10, 50), (10, 50))
    text = _box(image.shape, (20, 26), (14, 40))
    written = image.copy()
    written[20:26, 14:40] = np.tile([1.0, 0.0], 13)  # glyph-like stripes
    blank = tiny.synthesize(image, keep, text, seed=2, strength=strength)
    with_text = tiny.synthesize(written, keep, text, seed=2, strength=strength)
    assert np.array_equal(blank, with_text)
    # ...and it is drawn afresh, not left as it was: the stripes are gone.
    assert np.abs(with_text - written)[text].mean() > 0.2
    # the rest of the kept region, beyond the blend band around the text, is the original
    # at the model's resolution (its fine noise is fresh)
    rest = keep & ~dilate(text, 0.03 * 64 + 3)
    assert _low_difference(with_text, image, rest) < 0.01


@pytest.mark.parametrize("side", [256, 1024])
def test_the_detector_noise_is_measured_past_the_edges_of_the_anatomy(side):
    """The fresh noise copies the original's noise level and blur, measured robustly: strong
    edges (bars here) hardly move either; a large image is measured on pairs of rows."""
    from updp_napari.synth.filter import NOISE_BLURS
    from updp_napari.synth.masks import detector_noise, fine_noise

    rng = np.random.default_rng(0)
    for sigma in (0.0, 0.6, 1.0):
        noise = blur(rng.standard_normal((side, side)).astype(np.float32), sigma)
        bars = np.where(np.arange(side) % 64 < 32, 0.3, 0.6)[None, :] + 0.02 * noise / noise.std()
        found, spread = detector_noise(*fine_noise(bars.astype(np.float32)), NOISE_BLURS)
        assert abs(found - sigma) <= 0.4 and spread == pytest.approx(0.02, rel=0.2)


def test_progress_counts_every_denoising_step(tiny):
    seen = []
    tiny.synthesize(_chest(), None, strength=0.5, steps=8, progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)
    assert [d for d, _ in seen] == list(range(5))


def test_cancel_stops_within_one_step(tiny):
    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        if done == 2:
            cancel.set()

    with pytest.raises(SynthesisCancelled):
        tiny.synthesize(_chest(), None, steps=20, progress=progress, cancel=cancel)
    assert seen[-1] == 2


def test_job_yields_progress_then_the_result_and_honours_cancel(tiny_folder):
    image = _chest()
    job = SynthesisJob([image, image], [None, None], model=tiny_folder, seeds=[0, 1], steps=4,
                       batch_size=1)
    items = list(job)
    assert all(isinstance(i, tuple) for i in items[:-1]) and items[-2] == (8, 8)
    result = items[-1]
    assert isinstance(result, SynthesisResult) and job.result is result
    assert len(result.images) == 2 and result.seeds == [0, 1]
    assert result.signature["steps"] == 4

    cancel = threading.Event()
    job = SynthesisJob([image], [None], model=tiny_folder, steps=30, cancel=cancel)
    steps = 0
    for _ in job:
        steps += 1
        if steps == 3:
            cancel.set()
    assert job.cancelled and job.result is None and steps == 3


def test_run_job_inline_matches_the_filter(tiny, tiny_folder):
    image = _chest()
    seen = []
    result = run_job([image], [None], model=tiny_folder, seeds=[5], steps=4,
                     progress=lambda d, t: seen.append(d))
    assert seen[-1] == 4
    assert np.array_equal(result.images[0], tiny.synthesize(image, None, seed=5, steps=4))
    cancel = threading.Event()
    cancel.set()
    assert run_job([image], [None], model=tiny_folder, cancel=cancel) is None


@pytest.mark.slow
def test_run_job_in_a_worker_process(tiny, tiny_folder):
    image = _chest()
    seen = []
    result = run_job([image], [None], model=tiny_folder, seeds=[5], steps=4, isolate=True,
                     threads=1, progress=lambda d, t: seen.append(d))
    assert seen[-1] == 4
    np.testing.assert_allclose(result.images[0], tiny.synthesize(image, None, seed=5, steps=4), atol=1e-5)
    with pytest.raises(UpdpError, match="strength"):
        run_job([image], [None], model=tiny_folder, strength=2.0, isolate=True)
    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        if done == 1:
            cancel.set()

    assert run_job([image], [None], model=tiny_folder, steps=200, isolate=True, threads=1,
                   progress=progress, cancel=cancel) is None
    assert 1 <= seen[-1] < 200


def test_batch_gives_what_single_calls_give(tiny):
    images = [_chest((48, 40), 1), _chest((32, 32), 2), _chest((40, 56), 3)]
    keeps = [_box(im.shape, (5, 15), (5, 15)) for im in images]
    batch = tiny.synthesize_batch(images, keeps, seeds=[7, 8, 9], batch_size=2)
    for image, keep, seed, out in zip(images, keeps, [7, 8, 9], batch):
        np.testing.assert_allclose(out, tiny.synthesize(image, keep, seed=seed), atol=1e-4)


def test_eta_adds_noise_per_step_and_a_seed_still_gives_one_image(tiny):
    image = _chest()
    keep = _box(image.shape, (10, 20), (10, 20))
    assert tiny.default_eta == 0.0            # the card names none: deterministic DDIM
    plain = tiny.synthesize(image, keep, seed=3)
    noisy = tiny.synthesize(image, keep, seed=3, eta=1.0)
    assert np.array_equal(noisy, tiny.synthesize(image, keep, seed=3, eta=1.0))
    assert np.abs(noisy - plain)[~keep].mean() > 0.01
    assert _low_difference(noisy, image, keep) < 0.01
    # the kept region does not depend on what the model draws: the same with either sampler
    assert np.abs(noisy - plain)[keep].max() < 1e-6
    # per image, whatever the batch
    images = [_chest((48, 40), 1), _chest((32, 32), 2), _chest((40, 56), 3)]
    keeps = [_box(im.shape, (5, 15), (5, 15)) for im in images]
    batch = tiny.synthesize_batch(images, keeps, seeds=[7, 8, 9], batch_size=2, eta=0.5)
    for im, kp, seed, out in zip(images, keeps, [7, 8, 9], batch):
        np.testing.assert_allclose(out, tiny.synthesize(im, kp, seed=seed, eta=0.5), atol=1e-4)
    assert tiny.signature(1.0, 6, 0.03, 0)["eta"] == 0.0
    assert tiny.signature(1.0, 6, 0.03, 0, eta=1.0)["eta"] == 1.0
    with pytest.raises(UpdpError, match="eta"):
        tiny.synthesize(image, keep, eta=1.5)


def test_candidates_are_ranked_by_the_callers_score(tiny):
    image = _chest()
    ranked = tiny.synthesize_candidates(image, None, candidates=3, seed=10,
                                        score=lambda o, s: float(s.mean()))
    assert [r[0] for r in sorted(ranked)] == [10, 11, 12]
    assert ranked[0][2] >= ranked[1][2] >= ranked[2][2]
    best = tiny.synthesize(image, None, candidates=3, seed=10, score=lambda o, s: float(s.mean()))
    assert np.array_equal(best, ranked[0][1])
    np.testing.assert_allclose(ranked[0][1], tiny.synthesize(image, None, seed=ranked[0][0]), atol=1e-4)


def test_bad_inputs_are_named(tiny):
    with pytest.raises(UpdpError, match="2-D image"):
        tiny.synthesize(np.zeros((3, 16, 16)), None)
    with pytest.raises(UpdpError, match="preserve_mask has shape"):
        tiny.synthesize(_chest(), np.zeros((5, 5), bool))
    with pytest.raises(UpdpError, match="strength"):
        tiny.synthesize(_chest(), None, strength=0)


def test_save_and_load_round_trip(tiny, tiny_folder, tmp_path):
    assert (tiny_folder / "unet" / "config.json").is_file()
    assert (tiny_folder / "scheduler" / "scheduler_config.json").is_file()
    card = json.loads((tiny_folder / MODEL_CARD).read_text())
    assert card["format"] == "updp-filter/1"
    again = GenerativeFilter.load(tiny_folder, device="cpu")
    assert again.default_steps == 6 and again.default_dilation == 0.03
    image = _chest()
    assert np.array_equal(again.synthesize(image, None, seed=1), tiny.synthesize(image, None, seed=1))
    # fp16 storage: the same model within half-precision rounding
    save_model_folder(tmp_path / "half", tiny.model.unet, tiny.model.scheduler, card, fp16=True)
    half = GenerativeFilter.load(tmp_path / "half", device="cpu")
    assert np.abs(half.synthesize(image, None, seed=1) - tiny.synthesize(image, None, seed=1)).mean() < 0.02


def test_a_plain_diffusers_unet_folder_loads_and_runs(tmp_path):
    from diffusers import DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=16, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                       down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"), layers_per_block=1, norm_num_groups=4)
    unet.save_pretrained(tmp_path / "bare")
    bare = GenerativeFilter.load(tmp_path / "bare", device="cpu")
    assert bare.model.conditioning == "none" and bare.size == 16
    image = _chest((40, 40))
    keep = _box(image.shape, (10, 25), (10, 25))
    out = bare.synthesize(image, keep, steps=3)
    assert out.shape == image.shape
    assert _low_difference(out, image, keep) < 0.01 and np.abs(out - image)[~keep].mean() > 0.02
    # the same UNet in a pipeline folder, with its own scheduler
    unet.save_pretrained(tmp_path / "pipe" / "unet")
    DDPMScheduler(beta_schedule="squaredcos_cap_v2").save_pretrained(tmp_path / "pipe" / "scheduler")
    piped = GenerativeFilter.load(tmp_path / "pipe", device="cpu")
    assert piped.model.scheduler.config.beta_schedule == "squaredcos_cap_v2"
    assert piped.synthesize(image, keep, steps=3).shape == image.shape


def test_missing_or_invalid_folders_are_errors_naming_the_path(tmp_path, tiny_folder):
    with pytest.raises(UpdpError, match=r"nowhere: no such model folder"):
        GenerativeFilter.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UpdpError, match=r"empty: not a diffusers model folder \(missing unet/config.json"):
        GenerativeFilter.load(tmp_path / "empty")
    (tmp_path / "noweights" / "unet").mkdir(parents=True)
    (tmp_path / "noweights" / "unet" / "config.json").write_text('{"_class_name": "UNet2DModel"}')
    with pytest.raises(UpdpError, match=r"noweights/unet: has config.json but no weights"):
        GenerativeFilter.load(tmp_path / "noweights")
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "config.json").write_text('{"_class_name": "AutoencoderKL"}')
    (tmp_path / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    with pytest.raises(UpdpError, match=r"vae: holds a model of class AutoencoderKL"):
        GenerativeFilter.load(tmp_path / "vae")
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_folder, broken)
    (broken / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not weights")
    with pytest.raises(UpdpError, match=r"broken/unet: cannot load the UNet"):
        GenerativeFilter.load(broken)
    assert main(["bench", "synth", "--filter-model", str(tmp_path / "nowhere")]) == 2


def test_train_filter_help_explains():
    with pytest.raises(SystemExit) as exit_info:
        main(["train-filter", "--help"])
    assert exit_info.value.code == 0


def test_train_filter_help_text(capsys):
    with pytest.raises(SystemExit):
        main(["train-filter", "--help"])
    text = capsys.readouterr().out
    for words in ("--size", "--epochs", "--seed", "--threads", "--init", "--learning-rate",
                  "--ema-decay", "--loss-on", "save_pretrained", "updp_filter.json"):
        assert words in text


@pytest.mark.slow
def test_train_filter_cli_writes_a_loadable_model(cohort, tmp_path, capsys):
    out = tmp_path / "model"
    assert main(["train-filter", str(cohort), "--out", str(out), "--size", "32", "--epochs", "1",
                 "--quiet"]) == 0
    assert "trained a 32px filter" in capsys.readouterr().out
    card = json.loads((out / MODEL_CARD).read_text())
    assert card["training"]["cohort"]["seed"] == 11 and card["training"]["cohort"]["images"] == 24
    assert card["model"]["parameters"] > 0 and card["defaults"]["steps"] >= 1
    # 24 images are too few to describe a domain: none, said in the card (every case of a
    # run with it is out of domain)
    assert "updp fit-domain" in card["domain"]["missing"] and not (out / "domain.npz").exists()
    filt = GenerativeFilter.load(out, device="cpu")
    assert filt.size == 32
    assert filt.synthesize(_chest(), None, steps=2).shape == (48, 40)
    # a folder holding something else is not overwritten
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    assert main(["train-filter", str(cohort), "--out", str(other), "--size", "32", "-q"]) == 2
    # Trained further: same architecture, new weights, both runs in the card.
    more = tmp_path / "more"
    assert main(["train-filter", str(cohort), "--out", str(more), "--init", str(out), "--epochs", "1",
                 "--seed", "1", "--learning-rate", "3e-4", "--ema-decay", "0.9", "--loss-on", "drawn",
                 "-q"]) == 0
    further = json.loads((more / MODEL_CARD).read_text())
    assert further["model"] == card["model"]
    assert further["training"]["initialised_from"] == {"model_id": card["model_id"],
                                                       "training": card["training"]}
    assert further["training"]["learning_rate"] == 3e-4 and further["training"]["ema_decay"] == 0.9
    assert card["training"]["loss_on"] == "all" and further["training"]["loss_on"] == "drawn"
    assert further["model_id"].startswith(card["model_id"] + "+")
    assert "_name_or_path" not in json.loads((more / "unet" / "config.json").read_text())
    before = GenerativeFilter.load(out).model.unet.state_dict()
    after = GenerativeFilter.load(more).model.unet.state_dict()
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    # Only a filter of ours can be trained further, and its size is not changed.
    assert main(["train-filter", str(cohort), "--out", str(tmp_path / "x"), "--init", str(other),
                 "-q"]) == 2
    assert main(["train-filter", str(cohort), "--out", str(tmp_path / "x"), "--init", str(out),
                 "--size", "64", "-q"]) == 2
    assert main(["train-filter", str(cohort), "--out", str(tmp_path / "x"), "--ema-decay", "1",
                 "-q"]) == 2
    with pytest.raises(SystemExit) as refused:
        main(["train-filter", str(cohort), "--out", str(tmp_path / "x"), "--loss-on", "known", "-q"])
    assert refused.value.code == 2
    assert not (tmp_path / "x").exists()


def test_shipped_model_loads_and_synthesises_a_sample_image():
    from updp_napari.cohort.dataset import load_cohort_images
    from updp_napari.synth.measure import region_ssim

    assert (SHIPPED_MODEL / MODEL_CARD).is_file()
    filt = GenerativeFilter.load()
    data = load_cohort_images("sample_data", 256)
    i = int(np.argmax(data.preserve.reshape(len(data), -1).sum(axis=1)))  # the largest finding
    image, keep = data.images[i], data.preserve[i]
    out = filt.synthesize(image, keep, data.text_boxes[i], seed=0)
    assert out.shape == image.shape
    # compared as the model sees them: the counterpart's fine noise is fresh
    inside, outside = region_ssim(_coarse(image, filt.size), _coarse(out, filt.size),
                                  keep & ~data.text_boxes[i])
    assert inside > 0.9
    assert outside < 0.6
    # a lower strength keeps more of the original's look
    mild = filt.synthesize(image, keep, data.text_boxes[i], seed=0, strength=0.3)
    assert region_ssim(_coarse(image, filt.size), _coarse(mild, filt.size), keep)[1] > outside


def test_identity_proxy_tells_a_copy_from_a_stranger():
    from updp_napari.synth.measure import identity_levels, identity_of

    rng = np.random.default_rng(0)
    faces = rng.random((3, 32, 32))   # one "anatomy" per patient
    originals = np.stack([np.clip(faces[p] + 0.1 * rng.random((32, 32)), 0, 1)
                          for p in (0, 0, 1, 1, 2, 2)]).astype(np.float32)
    patients, sites = ["a", "a", "b", "b", "c", "c"], ["s"] * 6
    levels = identity_levels(originals, patients, sites)
    assert levels["top1"] == 1.0 and levels["same_patient"] > levels["different_patient"] + 0.5
    copies = identity_of(originals, originals, patients, sites)
    assert copies["self"] == 1.0 and copies["top1"] == 1.0 and copies["margin"] > 0.5
    strangers = identity_of(originals[[2, 3, 4, 5, 0, 1]], originals, patients, sites)
    assert strangers["top1"] == 0.0 and strangers["margin"] < 0


def test_training_never_asks_the_model_to_draw_a_finding():
    from updp_napari.synth.train import training_mask

    rng = np.random.default_rng(0)
    finding, text = _box((64, 64), (20, 30), (10, 25)), _box((64, 64), (50, 56), (40, 60))
    healthy = np.zeros((64, 64), bool)
    kinds = set()
    for _ in range(200):
        known = training_mask(rng, finding, text)
        assert known[finding].all() and not known[text].any()
        empty = training_mask(rng, healthy, text)
        kinds.add(("whole chest" if not empty.any() else "blobs") + (
            ", extra" if (known & ~dilate(finding, 0.08 * 64)).any() else ""))
    # a healthy chest is sometimes drawn whole, sometimes around blobs; around a finding,
    # sometimes more than the finding is kept
    assert {"whole chest", "blobs"} <= {k.split(",")[0] for k in kinds}
    assert any(k.endswith("extra") for k in kinds)


def test_the_loss_can_count_only_the_pixels_the_model_draws():
    from updp_napari.synth.train import denoising_loss

    target = torch.zeros(2, 1, 8, 8)
    known = torch.zeros(2, 1, 8, 8)
    known[:, :, :4] = 1.0                     # top half kept from the original
    predicted = torch.zeros(2, 1, 8, 8)
    predicted[:, :, :4] = 3.0                 # wrong only where sampling overwrites it anyway
    assert denoising_loss(predicted, target, known, "drawn").item() == 0.0
    assert denoising_loss(predicted, target, known, "all").item() == pytest.approx(4.5)
    predicted[:, :, 4:] = 1.0                 # now wrong where it draws, too
    assert denoising_loss(predicted, target, known, "drawn").item() == pytest.approx(1.0)
    # nothing to draw at all: no loss, no division by zero
    assert denoising_loss(predicted, target, torch.ones_like(known), "drawn").item() == 0.0


def test_train_filter_describes_the_domain_it_learned(wide_cohort, tmp_path, capsys):
    from updp_napari.synth.domain import Domain

    folder, _ = wide_cohort  # 40 patients x 3 studies
    out = tmp_path / "model"
    assert main(["train-filter", str(folder), "--out", str(out), "--size", "32", "--epochs", "1",
                 "-q"]) == 0
    card = json.loads((out / MODEL_CARD).read_text())
    assert card["domain"]["calibration"]["held_out_images"] > 0
    assert card["domain"]["images"] + card["domain"]["calibration"]["held_out_images"] == 120
    assert Domain.load(out) is not None
