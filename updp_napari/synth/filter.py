"""The generative filter: a counterpart radiograph that keeps the findings, not the patient.

For each image the filter

1. paints burned-in text out (``text_mask``) so that no pixel of it enters the model;
2. resizes the image to the model's side and noises it to strength ``s`` (SDEdit: at
   ``s = 1`` it starts from pure noise and nothing of the original outside the kept region
   reaches the result);
3. denoises with DDIM (``eta`` = 1 adds fresh noise at every step, as ancestral sampling
   does, which lets the model correct its own errors; 0 is the deterministic sampler); after
   every step the dilated preserve mask is reset to the original
   noised to that step (RePaint known-region blending), so the anatomy around the findings
   is drawn afresh and fits them; the filter's own models also see the mask and the kept
   pixels as input channels;
4. scales the result back to the input's size and lays the original over it inside the
   preserve mask, band-limited to what the model saw (the text-painted original resized to
   the model's side and back), with a feathered edge across the dilation band (where the
   model was held to the original, so both sides agree). Text regions always come from
   the model, even inside the preserve mask;
5. adds fresh noise over the whole image, in the band above the model's side only: white
   noise drawn from the case's seed under the Gaussian blur and at the spread that explain
   the original's own finest residual (the image less its 1-pixel blur; its robust, MAD,
   spread and its neighbour correlation, burned-in text and saturated pixels left out), less
   its copy resized to the model's side and back. No pixel of the original's fine noise or
   texture reaches the counterpart, and the fine noise is the same inside the kept region and
   outside it, so the region is not found by its noise (``measure.region_noise_auc``). An
   image no larger than the model's side gets none (it lost no band).

Identity in a chest radiograph lives in its global anatomy (ribs, heart and mediastinum,
clavicles, spine, devices); partial noising keeps that, so the default strength is set by
measurement on held-out patients (``python -m updp_napari.synth.measure``) and written into
the model card.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import InputError, UpdpError
from . import masks as mk

SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "models" / "filter"
# Used when a model folder's card names none (a model brought from elsewhere).
DEFAULT_STRENGTH = 1.0
DEFAULT_STEPS = 25
DEFAULT_DILATION = 0.02   # of the image side: about 5 pixels at 256
DEFAULT_ETA = 0.0         # DDIM's stochasticity for a model whose card names none (0: deterministic)
TEXT_MARGIN = 0.01        # text boxes are grown by this share of the side before regenerating
# Blurs (pixels) the fresh noise may take: the one whose fine residual's neighbour correlation
# is nearest the original's is used (0: white).
NOISE_BLURS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.2, 1.5)
NOISE_LEVEL = 1.0         # the fresh noise's spread, as a multiple of the original's detector noise's
_NOISE_STREAM = 0x6E6F6973  # keeps the fresh noise's draws apart from the denoiser's for one seed


class SynthesisCancelled(UpdpError):
    """The caller's cancel token was set; no result was made."""


@dataclass
class _Prepared:
    """One image, ready for the model and for the composite back at full size."""

    original: np.ndarray     # float32 [H, W] 0…1, as given
    start: np.ndarray        # float32 [size, size] -1…1, text painted out
    known: np.ndarray        # bool [size, size]: held to the original during denoising
    weight: np.ndarray       # float32 [H, W]: share of the original in the final composite
    low: np.ndarray          # float32 [H, W]: ``start`` back at full size (what the model saw)
    noise_sigma: float       # spread of the original's detector noise (0: add none)
    noise_blur: float        # that noise's blur, in pixels (white noise under a Gaussian)


def _choose_device(device: str | None) -> str:
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class GenerativeFilter:
    """Synthesise counterparts with one loaded model. Not thread-safe: one call at a time."""

    def __init__(self, model, device: str = "cpu"):
        self.model = model
        self.device = device
        defaults = (model.card or {}).get("defaults", {})
        self.default_strength = float(defaults.get("strength", DEFAULT_STRENGTH))
        self.default_steps = int(defaults.get("steps", DEFAULT_STEPS))
        self.default_dilation = float(defaults.get("dilation", DEFAULT_DILATION))
        self.default_eta = float(defaults.get("eta", DEFAULT_ETA))

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, device: str | None = None,
             threads: int | None = None) -> GenerativeFilter:
        """The model in ``path`` (None: the one shipped in the package).

        ``path`` is a folder made by ``updp train-filter``, a diffusers pipeline folder
        (``unet/``, ``scheduler/``) or a ``UNet2DModel`` folder. ``threads`` sets torch's CPU
        threads (None leaves them as they are).
        """
        from .model import load_model_folder, require_diffusers

        torch, _ = require_diffusers()
        if threads is not None:
            torch.set_num_threads(max(1, int(threads)))
        device = _choose_device(device)
        return cls(load_model_folder(SHIPPED_MODEL if path is None else path, device), device)

    @property
    def size(self) -> int:
        return self.model.size

    @property
    def model_id(self) -> str | None:
        """The model's id from its card, else its folder (None for neither)."""
        card = self.model.card or {}
        return card.get("model_id") or (str(self.model.path) if self.model.path else None)

    def signature(self, strength: float, steps: int, dilation: float, seed: int,
                  eta: float | None = None) -> dict:
        """What a saved synthetic image should record about how it was made (``eta`` None:
        the model's default)."""
        from .. import __version__

        return {"model": self.model_id,
                "strength": float(strength), "steps": int(steps), "dilation": float(dilation),
                "eta": self.resolve_eta(eta), "seed": int(seed), "updp_version": __version__}

    # --- preparation and composite (numpy) -------------------------------------------------

    def _prepare(self, image, preserve_mask, text_mask, dilation: float) -> _Prepared:
        original = mk.as_image(image)
        shape = original.shape
        preserve = mk.as_mask(preserve_mask, shape, "preserve_mask")
        text = mk.as_mask(text_mask, shape, "text_mask")
        if dilation < 0:
            raise InputError(f"dilation must be at least 0 (got {dilation})")
        text = mk.dilate(text, mk.pixels(TEXT_MARGIN, shape)) if text.any() else text
        band = mk.pixels(dilation, shape)
        kept = mk.dilate(preserve, band) & ~text
        size = self.model.size
        filled = mk.fill_regions(original, text)
        start = np.clip(mk.resize(filled, (size, size)), 0.0, 1.0)
        low = mk.resize(start, shape)
        # At the model's size a pixel is held to the original only if it is mostly inside the
        # kept region and touches no text at all: text never reaches the model's input.
        known = (mk.resize(kept.astype(np.float32), (size, size)) >= 0.5) \
            & ~(mk.resize(text.astype(np.float32), (size, size)) > 0.01)
        # 1 on the findings, falling to 0 across the dilation band (where the model was held to
        # the original, so both agree); 0 on text, rising over the same band around it.
        weight = mk.feather(preserve & ~text, band)
        if text.any():
            weight = weight * (1.0 - mk.feather(text, band))
        # The original's own detector noise, measured off the text (its painted fill holds
        # none) and off saturated pixels (none either). An image no larger than the model's
        # side lost no band, so it gets no fresh noise.
        blur, sigma = 0.0, 0.0
        if shape[0] > size or shape[1] > size:
            spread, correlation = mk.fine_noise(filled, ~text & (original > 0.0) & (original < 1.0))
            blur, sigma = mk.detector_noise(spread, correlation, NOISE_BLURS)
        return _Prepared(original, start * 2.0 - 1.0, known, weight.astype(np.float32), low,
                         sigma * NOISE_LEVEL, blur)

    @staticmethod
    def _composite(prep: _Prepared, generated: np.ndarray, seed: int) -> np.ndarray:
        shape = prep.original.shape
        synthetic = np.clip(mk.resize((generated + 1.0) / 2.0, shape), 0.0, 1.0)
        out = prep.weight * prep.low + (1.0 - prep.weight) * synthetic
        if prep.noise_sigma > 0:
            rng = np.random.default_rng([_NOISE_STREAM, int(seed) % 2**64])
            out = out + prep.noise_sigma * mk.fine_noise_field(rng, shape, generated.shape, prep.noise_blur)
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    # --- denoising (torch) -----------------------------------------------------------------

    def _denoise(self, preps: Sequence[_Prepared], seeds: Sequence[int], strength: float,
                 steps: int, eta: float = 0.0) -> Iterator[tuple[int, int]]:
        """Denoise a batch; yields ``(done, total)`` per step and returns [B, size, size] -1…1."""
        import torch
        from diffusers import DDIMScheduler

        model, device = self.model, self.device
        scheduler = DDIMScheduler.from_config(model.scheduler.config)
        scheduler.set_timesteps(steps)
        run = max(1, int(round(steps * strength)))
        timesteps = scheduler.timesteps[len(scheduler.timesteps) - run:]
        size = model.size
        generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]

        def noise() -> torch.Tensor:  # per image, so a seed gives one result in any batch
            return torch.stack([torch.randn((1, size, size), generator=g) for g in generators]).to(device)

        x0 = torch.from_numpy(np.stack([p.start for p in preps])[:, None]).to(device)
        known = torch.from_numpy(np.stack([p.known for p in preps])[:, None]).to(device, x0.dtype)
        first = noise()
        if strength >= 1.0:
            x = first  # from pure noise: nothing of the original outside the kept region
        else:
            x = scheduler.add_noise(x0, first, timesteps[:1].repeat(len(preps)))
        condition = torch.cat([known, x0 * known], dim=1) if model.conditioned else None
        total = len(timesteps)
        yield 0, total
        for i, t in enumerate(timesteps):
            with torch.inference_mode(), _autocast(torch, device):
                eps = self._model_output(x, t, condition)
            x = scheduler.step(eps.float(), t, x, eta=eta,
                               variance_noise=noise() if eta > 0 else None).prev_sample
            if i + 1 < total:
                x_known = scheduler.add_noise(x0, noise(), timesteps[i + 1:i + 2].repeat(len(preps)))
            else:
                x_known = x0
            x = known * x_known + (1.0 - known) * x
            yield i + 1, total
        return x[:, 0].clamp(-1.0, 1.0).float().cpu().numpy()

    def _model_output(self, x, t, condition):
        import torch
        import torch.nn.functional as F

        model = self.model
        inputs = x if condition is None else torch.cat([x, condition], dim=1)
        if model.image_channels == 3:
            inputs = inputs.repeat(1, 3, 1, 1)
        if model.patch > 1:
            inputs = F.pixel_unshuffle(inputs, model.patch)
        out = model.unet(inputs, t).sample
        if model.patch > 1:
            out = F.pixel_shuffle(out, model.patch)
        if model.image_channels == 3:
            out = out.mean(dim=1, keepdim=True)
        return out

    # --- public calls ----------------------------------------------------------------------

    def resolve_settings(self, strength, steps, dilation) -> tuple[float, int, float]:
        """The given settings, the model's defaults for those left None, checked."""
        strength = self.default_strength if strength is None else float(strength)
        steps = self.default_steps if steps is None else int(steps)
        dilation = self.default_dilation if dilation is None else float(dilation)
        if not 0.0 < strength <= 1.0:
            raise InputError(f"strength must be in (0, 1] (got {strength})")
        if steps < 1:
            raise InputError(f"steps must be at least 1 (got {steps})")
        return strength, steps, dilation

    def resolve_eta(self, eta: float | None) -> float:
        """DDIM's ``eta`` as given, or the model's default; checked to lie in [0, 1]."""
        eta = self.default_eta if eta is None else float(eta)
        if not 0.0 <= eta <= 1.0:
            raise InputError(f"eta must be in [0, 1] (got {eta})")
        return eta

    def iterate_batch(self, images: Sequence, preserve_masks: Sequence, text_masks: Sequence | None = None,
                      *, seeds: Sequence[int] | None = None, strength: float | None = None,
                      steps: int | None = None, dilation: float | None = None,
                      batch_size: int = 8, eta: float | None = None) -> Iterator[tuple[int, int]]:
        """The work of :meth:`synthesize_batch` as a generator: yields ``(done, total)``
        denoising steps over all batches and returns the list of synthetic images."""
        strength, steps, dilation = self.resolve_settings(strength, steps, dilation)
        eta = self.resolve_eta(eta)
        n = len(images)
        if len(preserve_masks) != n or (text_masks is not None and len(text_masks) != n):
            raise InputError(f"{n} images but {len(preserve_masks)} preserve masks"
                             + (f" and {len(text_masks)} text masks" if text_masks is not None else ""))
        seeds = list(range(n)) if seeds is None else [int(s) for s in seeds]
        if len(seeds) != n:
            raise InputError(f"{n} images but {len(seeds)} seeds")
        batch_size = max(1, int(batch_size))
        per_batch = max(1, int(round(steps * strength)))
        batches = [range(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
        total = per_batch * len(batches)
        results: list[np.ndarray] = []
        yield 0, total
        for b, index in enumerate(batches):
            preps = [self._prepare(images[i], preserve_masks[i],
                                   None if text_masks is None else text_masks[i], dilation) for i in index]
            work = self._denoise(preps, [seeds[i] for i in index], strength, steps, eta)
            while True:
                try:
                    done, _ = next(work)
                except StopIteration as finished:
                    generated = finished.value
                    break
                if done:
                    yield b * per_batch + done, total
            results += [self._composite(p, g, seeds[i]) for p, g, i in zip(preps, generated, index)]
        return results

    def synthesize_batch(self, images: Sequence, preserve_masks: Sequence,
                         text_masks: Sequence | None = None, *, seeds: Sequence[int] | None = None,
                         strength: float | None = None, steps: int | None = None,
                         dilation: float | None = None, batch_size: int = 8,
                         progress: Callable[[int, int], None] | None = None,
                         cancel=None, eta: float | None = None) -> list[np.ndarray]:
        """Counterparts of several images, ``batch_size`` at a time through the model (the
        GPU path). Image ``i`` uses ``seeds[i]`` (default ``i``); images may differ in size."""
        return drive(self.iterate_batch(images, preserve_masks, text_masks, seeds=seeds,
                                        strength=strength, steps=steps, dilation=dilation,
                                        batch_size=batch_size, eta=eta), progress, cancel)

    def synthesize(self, image, preserve_mask, text_mask=None, *, strength: float | None = None,
                   seed: int = 0, steps: int | None = None, dilation: float | None = None,
                   progress: Callable[[int, int], None] | None = None, cancel=None,
                   candidates: int = 1,
                   score: Callable[[np.ndarray, np.ndarray], float] | None = None,
                   eta: float | None = None) -> np.ndarray:
        """The synthetic counterpart of ``image`` (2-D, any size; float 0…1, same shape).

        ``preserve_mask``: where the findings lie (kept, grown by ``dilation`` × the side);
        ``text_mask``: burned-in text, always regenerated. The same ``seed`` gives the same
        image. ``strength`` in (0, 1]: how far the image is noised before denoising (1 = from
        pure noise); ``eta`` in [0, 1]: fresh noise added at each DDIM step (0 = none); None
        takes the model's defaults. ``cancel``: anything with ``is_set()``;
        when set, the call stops within one denoising step with :class:`SynthesisCancelled`.

        ``candidates`` > 1 draws that many seeds (``seed``, ``seed + 1``, …) and returns the
        one ``score(original, synthetic)`` rates highest, for example the pathology scorer's
        agreement minus the re-identification scorer's match; without ``score``, the one
        least correlated with the original outside the preserve mask.
        """
        if candidates < 1:
            raise InputError(f"candidates must be at least 1 (got {candidates})")
        if candidates == 1:
            return self.synthesize_batch([image], [preserve_mask], None if text_mask is None else [text_mask],
                                         seeds=[seed], strength=strength, steps=steps, dilation=dilation,
                                         progress=progress, cancel=cancel, eta=eta)[0]
        return self.synthesize_candidates(image, preserve_mask, text_mask, candidates=candidates,
                                          seed=seed, strength=strength, steps=steps, dilation=dilation,
                                          progress=progress, cancel=cancel, score=score, eta=eta)[0][1]

    def synthesize_candidates(self, image, preserve_mask, text_mask=None, *, candidates: int = 4,
                              seed: int = 0, strength: float | None = None, steps: int | None = None,
                              dilation: float | None = None,
                              progress: Callable[[int, int], None] | None = None, cancel=None,
                              score: Callable[[np.ndarray, np.ndarray], float] | None = None,
                              eta: float | None = None) -> list[tuple[int, np.ndarray, float]]:
        """``candidates`` counterparts as ``(seed, image, score)``, best (highest) first."""
        original = mk.as_image(image)
        seeds = [seed + k for k in range(candidates)]
        outputs = self.synthesize_batch([original] * candidates, [preserve_mask] * candidates,
                                        None if text_mask is None else [text_mask] * candidates,
                                        seeds=seeds, strength=strength, steps=steps, dilation=dilation,
                                        batch_size=candidates, progress=progress, cancel=cancel, eta=eta)
        if score is None:
            outside = ~mk.as_mask(preserve_mask, original.shape, "preserve_mask")

            def score(o, s):
                return -pearson(o[outside], s[outside])

        ranked = [(s, out, float(score(original, out))) for s, out in zip(seeds, outputs)]
        return sorted(ranked, key=lambda item: -item[2])


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays' values (0 when either is flat)."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else 0.0


def drive(work: Iterator, progress=None, cancel=None):
    """Run a work generator to its end: report its ``(done, total)`` to ``progress``, stop
    with :class:`SynthesisCancelled` when ``cancel.is_set()``, return its value."""
    while True:
        if cancel is not None and cancel.is_set():
            work.close()
            raise SynthesisCancelled("synthesis cancelled")
        try:
            done, total = next(work)
        except StopIteration as finished:
            return finished.value
        if progress is not None:
            progress(done, total)


def _autocast(torch, device: str):
    """Half precision on a GPU (bf16 where supported); full precision on the CPU."""
    import contextlib

    if not str(device).startswith("cuda"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)
