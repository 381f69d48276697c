"""``updp train-filter``: train the generative filter's UNet on a cohort's radiographs.

The UNet learns to denoise radiographs (cosine schedule, a plain mean-squared error on its
prediction), seeing beside the noisy image a mask and the original under it. The masks it trains on
always hold the image's own findings, grown by a random band, so the model only ever draws
healthy anatomy; random blobs are added (so it can fill around any region a reviewer draws),
and a healthy chest is sometimes given no mask at all (to draw a whole one). Burned-in text
is painted out of the training images first, so the model never learns to write.

Nothing comes from a model hub: the network starts from random weights. The saved folder
holds an exponential moving average of the weights, in fp16, in the ``save_pretrained``
layout, with ``updp_filter.json`` saying how it was trained (cohort seed and size, never a
patient's data).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..core.errors import InputError, UpdpError
from . import masks as mk
from .filter import DEFAULT_DILATION, DEFAULT_STEPS, TEXT_MARGIN
from .model import CONDITIONINGS, MODEL_CARD, build_unet, noise_schedule, require_diffusers, save_model_folder

# Set by measurement on held-out patients (see README, "Generative filter"); written into
# every card so the filter and the review app start from it.
TRAINED_DEFAULT_STRENGTH = 1.0
# DDIM sampling with fresh noise at every step (eta 1), also set by measurement: a model this
# small makes errors (blots in the drawn lungs that read as nodules) that the deterministic
# sampler carries to the end and the noisy one washes out (see README, "Generative filter").
TRAINED_DEFAULT_ETA = 1.0
# v-prediction by default: with epsilon prediction a model trained for minutes on one core
# cannot start from pure noise. Its x0 estimate there is the noise estimate's error divided
# by sqrt(alpha_bar) (0.06 at t=960 with the cosine schedule): measured after 750 steps,
# x0 error 0.90 at t=950 against 0.20 for the mean image; v-prediction, same run: 0.14.
PREDICTIONS = ("v_prediction", "epsilon")
# Share of training masks of each kind: the cohort's findings, findings and random blobs,
# findings only (none at all on a healthy chest: the model draws a whole one).
MASK_MIX = (0.5, 0.3, 0.2)
# Where the loss is counted: on every pixel, or only on those the model has to draw (the known
# region is overwritten by the original at every sampling step, so its prediction is unused).
LOSS_REGIONS = ("all", "drawn")


def _blobs(rng: np.random.Generator, size: int) -> np.ndarray:
    """One to three random ellipses, 4 to 25 % of the side across: a reviewer's region."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    mask = np.zeros((size, size), bool)
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.uniform(0.1, 0.9, 2) * size
        ry, rx = rng.uniform(0.04, 0.25, 2) * size
        mask |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    return mask


def training_mask(rng: np.random.Generator, preserve: np.ndarray, text: np.ndarray) -> np.ndarray:
    """The known region of one training example (never on text).

    The image's own findings are always known: the model is only ever asked to draw what
    lies outside every finding, so it learns that what it draws is healthy anatomy. (Asked
    to fill a whole chest with a consolidation in it, it learnt to draw consolidations, and
    drew them into healthy counterparts too.)
    """
    size = preserve.shape[0]
    findings = mk.dilate(preserve, rng.uniform(0.0, 2.0 * DEFAULT_DILATION) * size)
    kind = rng.choice(3, p=MASK_MIX)
    if kind == 1 or (kind == 0 and not preserve.any()):
        findings = findings | _blobs(rng, size)
    return findings & ~text


def denoising_loss(predicted, target, known, loss_on: str = "all"):
    """Mean squared error of the prediction, over every pixel (``"all"``) or over the pixels
    outside ``known`` (``"drawn"``; 0 when a batch has none)."""
    error = (predicted - target) ** 2
    if loss_on == "all":
        return error.mean()
    drawn = (1.0 - known).expand_as(error)
    return (error * drawn).sum() / drawn.sum().clamp(min=1.0)


def _base_model(path: Path):
    """The filter to train further: one written by :func:`train_filter` (mask and kept
    pixels as conditioning), so its card says how it was built."""
    from .model import load_model_folder

    if not path.is_dir():
        raise InputError(f"{path}: no such model folder to train further")
    base = load_model_folder(path)
    info = base.card.get("model", {})
    if base.conditioning != "mask+known" or not {"channels", "layers_per_block"} <= info.keys():
        raise InputError(f"{path}: not a filter made by updp train-filter (mask and kept pixels as "
                         "conditioning, with its architecture in updp_filter.json); only such a "
                         "model can be trained further")
    return base


def _cohort_signature(cohort: Path, count: int) -> dict:
    """How the training cohort was made (seed, size, counts): never anything of a patient."""
    from ..cohort.generate import read_cohort_info

    info = read_cohort_info(cohort)
    keys = ("generator", "seed", "size", "patients", "studies_per_patient", "version")
    return {"images": count, **{k: info.get(k) for k in keys if k in info},
            "sites": len(info["sites"]) if isinstance(info.get("sites"), list) else None}


def train_filter(cohort_dir: str | os.PathLike, out_dir: str | os.PathLike, *, size: int | None = None,
                 patch: int = 2, epochs: int = 20, seed: int = 0, threads: int = 1,
                 batch_size: int = 8, learning_rate: float = 1e-3,
                 channels: tuple[int, ...] = (16, 32, 64, 128), layers_per_block: int = 1,
                 ema_decay: float = 0.995, prediction: str = "v_prediction", fp16: bool = True,
                 init: str | os.PathLike | None = None, loss_on: str = "all",
                 progress: Callable[[int, int], None] | None = None) -> dict:
    """Train a filter on ``cohort_dir`` (made by ``updp make-cohort``); save it to ``out_dir``.

    ``size``: the side the model works on (None: 128). ``init``: a filter folder written by
    this function to train further instead of starting from random weights; its size,
    architecture and prediction are kept (``size`` must then be None; ``patch``,
    ``channels``, ``layers_per_block`` and ``prediction`` are ignored) and its card's
    training record is carried into the new card. ``loss_on``: ``"all"`` pixels or only those
    the model has to ``"drawn"`` (outside the known region).

    Returns what ``out_dir/updp_filter.json`` holds.
    """
    from .. import __version__
    from ..cohort.dataset import load_cohort_images

    if epochs < 1:
        raise UpdpError(f"epochs must be at least 1 (got {epochs})")
    if not learning_rate > 0 or not 0 <= ema_decay < 1:
        raise UpdpError("learning_rate must be above 0 and ema_decay in [0, 1)")
    if loss_on not in LOSS_REGIONS:
        raise UpdpError(f"loss_on must be one of {', '.join(LOSS_REGIONS)} (got {loss_on!r})")
    if init is not None and size is not None:
        raise UpdpError("size comes from the init model; leave it out when training further")
    cohort, out = Path(cohort_dir), Path(out_dir)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MODEL_CARD).exists())):
        raise InputError(f"{out}: exists and is not empty; choose an empty folder (or a filter "
                         "folder to replace)")
    torch, _ = require_diffusers()
    base = _base_model(Path(init)) if init is not None else None
    if base is None:
        size = 128 if size is None else size
    else:
        info = base.card["model"]
        size, patch = base.size, base.patch
        channels, layers_per_block = tuple(info["channels"]), int(info["layers_per_block"])
        prediction = base.scheduler.config.prediction_type
    threads_before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    started = time.perf_counter()
    try:
        data = load_cohort_images(cohort, size)
        n = len(data)
        margin = TEXT_MARGIN * size
        text = np.stack([mk.dilate(t, margin) for t in data.text_boxes])
        images = np.stack([mk.fill_regions(im, t) for im, t in zip(data.images, text)])
        images = torch.from_numpy(images * 2.0 - 1.0)[:, None]
        preserve, text_np = data.preserve, text

        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        if base is None:
            unet = build_unet(size, patch, "mask+known", channels, layers_per_block)
        else:
            unet = base.unet.float()
            unet.requires_grad_(True)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        unet.to(device).train()
        ema = [p.detach().clone() for p in unet.parameters()]
        if prediction not in PREDICTIONS:
            raise UpdpError(f"prediction must be one of {', '.join(PREDICTIONS)} (got {prediction!r})")
        schedule = noise_schedule(prediction)
        alphas = schedule.alphas_cumprod.to(device)

        steps_per_epoch = math.ceil(n / batch_size)
        steps = epochs * steps_per_epoch
        optimizer = torch.optim.AdamW(unet.parameters(), lr=learning_rate, weight_decay=1e-4)
        warmup = max(1, min(100, steps // 10))
        lr_schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(
            (s + 1) / warmup, 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))))
        order = torch.Generator().manual_seed(seed)
        losses: list[float] = []
        step = 0
        for _ in range(epochs):
            for index in torch.randperm(n, generator=order).split(batch_size):
                x0 = images[index].to(device)
                known = torch.from_numpy(np.stack([
                    training_mask(rng, preserve[i], text_np[i]) for i in index.tolist()
                ])[:, None].astype(np.float32)).to(device)
                noise = torch.randn(x0.shape, generator=order).to(device)
                t = torch.randint(0, schedule.config.num_train_timesteps, (len(index),),
                                  generator=order).to(device)
                a = alphas[t].view(-1, 1, 1, 1)
                noisy = a.sqrt() * x0 + (1.0 - a).sqrt() * noise
                inputs = torch.cat([noisy, known, x0 * known], dim=1)
                if patch > 1:
                    inputs = torch.nn.functional.pixel_unshuffle(inputs, patch)
                predicted = unet(inputs, t).sample
                if patch > 1:
                    predicted = torch.nn.functional.pixel_shuffle(predicted, patch)
                target = noise if prediction == "epsilon" else a.sqrt() * noise - (1.0 - a).sqrt() * x0
                loss = denoising_loss(predicted, target, known, loss_on)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
                optimizer.step()
                lr_schedule.step()
                optimizer.zero_grad(set_to_none=True)
                # The average's decay warms up, so early steps do not freeze random weights in.
                decay = min(ema_decay, (1 + step) / (10 + step))
                with torch.no_grad():
                    for kept, p in zip(ema, unet.parameters()):
                        kept.mul_(decay).add_(p.detach(), alpha=1.0 - decay)
                losses.append(float(loss.item()))
                step += 1
                if progress:
                    progress(step, steps)
        with torch.no_grad():
            for kept, p in zip(ema, unet.parameters()):
                p.copy_(kept)
        unet.eval()
        seconds = time.perf_counter() - started
        parameters = sum(p.numel() for p in unet.parameters())
        card = {
            "model": {"size": size, "patch": patch, "conditioning": "mask+known",
                      "conditioning_channels": ["preserve mask", "original inside the mask"],
                      "extra_input_channels": CONDITIONINGS["mask+known"],
                      "channels": list(channels), "layers_per_block": layers_per_block,
                      "parameters": parameters, "prediction": prediction,
                      "weights": "fp16" if fp16 else "fp32"},
            "defaults": {"strength": TRAINED_DEFAULT_STRENGTH, "steps": DEFAULT_STEPS,
                         "dilation": DEFAULT_DILATION, "eta": TRAINED_DEFAULT_ETA},
            "training": {"cohort": _cohort_signature(cohort, n), "seed": seed, "epochs": epochs,
                         "steps": steps, "batch_size": batch_size, "learning_rate": learning_rate,
                         "ema_decay": ema_decay, "loss_on": loss_on,
                         "mask_mix": dict(zip(("findings (blobs if none)", "findings and blobs",
                                               "findings only"), MASK_MIX)),
                         "findings_always_known": True,
                         "final_loss": round(float(np.mean(losses[-20:])), 4),
                         "seconds": round(seconds, 1), "device": device.type,
                         "threads": int(threads), "updp_version": __version__},
        }
        card["model_id"] = f"updp-filter-{size}px-seed{seed}-cohort{card['training']['cohort'].get('seed')}"
        if base is not None:
            card["training"]["initialised_from"] = {"model_id": base.card.get("model_id"),
                                                    "training": base.card.get("training")}
            card["model_id"] = f"{base.card.get('model_id')}+{card['model_id'][len('updp-filter-'):]}"
        save_model_folder(out, unet, schedule, card, fp16=fp16)
    finally:
        torch.set_num_threads(threads_before)
    # What the filter learned from, for the pipeline's out-of-domain guard: fitted on four
    # fifths of the cohort's patients, calibrated on the rest. Too small a cohort leaves
    # none, and the pipeline then puts every case out of domain (said in the card).
    from .domain import fit_domain_folder
    from .model import set_card_section

    try:
        card["domain"] = {k: v for k, v in fit_domain_folder(out, cohort).items() if k != "skipped"}
    except InputError as exc:
        card["domain"] = {"missing": f"no domain description: {exc}; add one with updp fit-domain"}
        set_card_section(out, "domain", card["domain"])
    return card
