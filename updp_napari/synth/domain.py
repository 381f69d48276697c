"""The filter's domain: is an input image like the images the filter learned from?

A generative filter draws what it learned. Given a radiograph unlike its training images (a
real one when it learned from phantoms, another body part, another modality), it draws one of
its own and drops what it has never seen — a counterpart that looks plausible and keeps
nothing of the study. So every input is measured against a compact description of the
filter's training images, kept beside the model (``domain.npz``, summarised in the card),
and an image too far from them gets no counterpart.

The description, numpy only:

* each image as the filter sees it (burned-in text painted out, scaled to ``SIDE`` pixels)
  gives a feature vector: the scores of the training images' first ``COMPONENTS`` principal
  components of a ``THUMB`` × ``THUMB`` thumbnail, how much of the thumbnail those components
  leave unexplained, and texture statistics (intensity quantiles, fine-noise level and
  spread, edge strength, the radial power spectrum in octaves);
* the training vectors' mean and (shrunk) covariance, for two parts apart: the anatomy's
  shape (the thumbnail's components and residual) and the texture; an image's distance in
  each part is the Mahalanobis distance of its features divided by that part's threshold,
  and its distance is the larger of the two, so that above 1 is out of domain (one part
  far off is not diluted by the other's ordinary spread: an image upside down has the
  texture of a radiograph, and noise has no anatomy at all). An image that cannot be
  measured (flat, degenerate) is out;
* each threshold is calibrated on held-out in-domain images (patients the fit never saw):
  their ``QUANTILE`` quantile times ``MARGIN``. ``calibration`` in the card records the
  false-alarm rate on them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import InputError

DOMAIN_FILE = "domain.npz"
FORMAT = "updp-domain/2"
SIDE = 128          # the scale every image is measured at (the filter's own working scale)
THUMB = 32
COMPONENTS = 16
SHRINK = 0.05       # covariance shrinkage toward its diagonal (a few hundred images, ~35 features)
QUANTILE = 0.995
MARGIN = 1.25
_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def _texture(x: np.ndarray) -> list[float]:
    """Intensity quantiles, fine-noise level and spread, edge strength, radial spectrum."""
    from scipy import ndimage
    from scipy.stats import kurtosis

    residual = x - ndimage.gaussian_filter(x, 1.0)
    gy, gx = np.gradient(ndimage.gaussian_filter(x, 1.0))
    edges = np.hypot(gx, gy)
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(x - x.mean()))) ** 2
    yy, xx = np.indices(x.shape)
    radius = np.hypot(yy - x.shape[0] / 2, xx - x.shape[1] / 2)
    bands = [np.log(spectrum[(radius >= lo) & (radius < 2 * lo)].mean() + 1e-12)
             for lo in (1, 2, 4, 8, 16, 32)]
    return [*np.quantile(x, _QUANTILES), float(np.log(residual.std() + 1e-6)),
            float(np.clip(kurtosis(residual.ravel()), -10, 50)),
            *np.log(np.quantile(edges, (0.5, 0.9, 0.99)) + 1e-6), *bands]


def _prepared(image, text_mask=None) -> np.ndarray:
    from . import masks as mk

    x = mk.as_image(image)
    text = mk.as_mask(text_mask, x.shape, "text_mask")
    if text.any():
        x = mk.fill_regions(x, text)
    return np.clip(mk.resize(x, (SIDE, SIDE)), 0.0, 1.0)


def _thumb(x: np.ndarray) -> np.ndarray:
    from . import masks as mk

    return mk.resize(x, (THUMB, THUMB)).ravel().astype(np.float64)


@dataclass
class DomainCheck:
    """One image against the domain: ``distance`` (1 is the threshold) and the verdict."""

    distance: float
    in_domain: bool
    threshold: float = 1.0

    def as_json(self, model_id: str | None = None) -> dict:
        finite = bool(np.isfinite(self.distance))
        return {"in_domain": self.in_domain,
                "distance": round(self.distance, 3) if finite else None,
                "threshold": self.threshold, "model": model_id}


@dataclass
class Domain:
    """A fitted description of a filter's training images (see the module's docstring)."""

    thumb_mean: np.ndarray      # [THUMB²]
    components: np.ndarray      # [COMPONENTS, THUMB²]
    feature_mean: np.ndarray    # [F]
    feature_scale: np.ndarray   # [F]
    precision: np.ndarray       # [F, F] block-diagonal: the inverse shrunk covariance of each part
    thresholds: np.ndarray      # [2] raw Mahalanobis distance of each part at which it is out
    summary: dict = field(default_factory=dict)

    # -- features ---------------------------------------------------------------------------

    def _vector(self, x: np.ndarray) -> np.ndarray:
        t = _thumb(x) - self.thumb_mean
        scores = self.components @ t
        rest = t - self.components.T @ scores
        return np.array([*scores, np.log(np.linalg.norm(rest) + 1e-6), *_texture(x)])

    def raw_distances(self, x: np.ndarray) -> np.ndarray:
        """The Mahalanobis distance of each part (shape, texture); inf when not finite."""
        z = (self._vector(x) - self.feature_mean) / self.feature_scale
        out = []
        for part in _parts(len(z)):
            d2 = z[part] @ self.precision[part, part] @ z[part]
            out.append(float(np.sqrt(d2)) if np.isfinite(d2) and d2 >= 0 else float("inf"))
        return np.array(out)

    def check(self, image, text_mask=None) -> DomainCheck:
        """How far ``image`` (2-D, 0…1, any size) lies from the training images, as a
        multiple of the threshold (inf: it could not be measured). With a ``text_mask`` the
        nearer of two views counts: the text regions painted out, and the image as it is
        (a large text box painted over changes the anatomy's outline more than the text did)."""
        distance = self._distance(np.stack([self.raw_distances(v)
                                            for v in _views(image, text_mask)]))
        return DomainCheck(distance, bool(distance <= 1.0))

    def _distance(self, raw: np.ndarray) -> float:
        """One image's distance from its views' part distances ``raw`` [views, parts]: the
        farther part of the nearer view, as a multiple of the thresholds."""
        return float((raw / self.thresholds).max(axis=1).min())

    # -- fitting ----------------------------------------------------------------------------

    @classmethod
    def fit(cls, images: Sequence, text_masks: Sequence | None = None,
            progress: Callable[[int, int], None] | None = None) -> Domain:
        """Fit the description to the training ``images`` (threshold not yet calibrated)."""
        xs = _all_prepared(images, text_masks, progress)
        if len(xs) < 2 * COMPONENTS:
            raise InputError(f"a domain needs at least {2 * COMPONENTS} training images, "
                             f"got {len(xs)}")
        thumbs = np.stack([_thumb(x) for x in xs])
        mean = thumbs.mean(axis=0)
        _, _, vt = np.linalg.svd(thumbs - mean, full_matrices=False)
        domain = cls(mean, vt[:COMPONENTS], np.zeros(1), np.ones(1), np.eye(1), np.ones(2))
        vectors = np.stack([domain._vector(x) for x in xs])
        if not np.isfinite(vectors).all():
            raise InputError("some training images could not be measured (flat or degenerate)")
        domain.feature_mean = vectors.mean(axis=0)
        domain.feature_scale = np.maximum(vectors.std(axis=0), 1e-6)
        z = (vectors - domain.feature_mean) / domain.feature_scale
        precision = np.zeros((z.shape[1], z.shape[1]))
        for part in _parts(z.shape[1]):
            cov = np.cov(z[:, part], rowvar=False)
            cov = (1 - SHRINK) * cov + SHRINK * np.diag(np.diag(cov))
            precision[part, part] = np.linalg.pinv(cov)
        domain.precision = precision
        domain.summary = {"images": len(images), "views": len(xs)}
        return domain

    def calibrate(self, images: Sequence, text_masks: Sequence | None = None,
                  progress: Callable[[int, int], None] | None = None) -> dict:
        """Set the thresholds from held-out in-domain ``images`` (every view of them, as
        :meth:`fit` takes them); returns the calibration, with the false alarms counted per
        image as :meth:`check` would decide it."""
        if len(images) < 20:
            raise InputError(f"calibrating a domain needs at least 20 held-out images, got {len(images)}")
        per_image = []
        for i, image in enumerate(images):
            mask = None if text_masks is None else text_masks[i]
            per_image.append(np.stack([self.raw_distances(v) for v in _views(image, mask)]))
            if progress:
                progress(i + 1, len(images))
        raw = np.concatenate(per_image)
        finite = np.isfinite(raw).all(axis=1)
        if finite.sum() < 20:
            raise InputError("too few held-out images could be measured to calibrate")
        self.thresholds = np.quantile(raw[finite], QUANTILE, axis=0) * MARGIN
        distance = np.array([self._distance(r) for r in per_image])
        calibration = {"held_out_images": len(images), "views": len(raw), "quantile": QUANTILE,
                       "margin": MARGIN,
                       "thresholds": {"shape": round(float(self.thresholds[0]), 3),
                                      "texture": round(float(self.thresholds[1]), 3)},
                       "false_alarms": int((distance > 1.0).sum()),
                       "false_alarm_rate": round(float(np.mean(distance > 1.0)), 4),
                       "median_distance": round(float(np.median(distance)), 3)}
        self.summary["calibration"] = calibration
        return calibration

    # -- storage ----------------------------------------------------------------------------

    def save(self, folder: str | os.PathLike) -> Path:
        import io

        from ..core.files import write_bytes_atomic

        buffer = io.BytesIO()
        np.savez(buffer, thumb_mean=self.thumb_mean, components=self.components,
                 feature_mean=self.feature_mean, feature_scale=self.feature_scale,
                 precision=self.precision, thresholds=self.thresholds,
                 summary=np.array(json.dumps({"format": FORMAT, **self.summary})))
        path = Path(folder) / DOMAIN_FILE
        write_bytes_atomic(path, buffer.getvalue())
        return path

    @classmethod
    def load(cls, folder: str | os.PathLike) -> Domain | None:
        """The description in ``folder`` (None when it has none); a damaged file is an
        InputError naming it."""
        path = Path(folder) / DOMAIN_FILE
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                summary = json.loads(str(data["summary"]))
                domain = cls(data["thumb_mean"], data["components"], data["feature_mean"],
                             data["feature_scale"], data["precision"],
                             np.asarray(data["thresholds"], np.float64), summary)
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"{path}: not a readable domain description ({type(exc).__name__})") \
                from None
        if summary.get("format") != FORMAT:
            raise InputError(f"{path}: domain format {summary.get('format')!r}, expected {FORMAT}")
        n = domain.feature_mean.shape[0]
        if domain.precision.shape != (n, n) or domain.components.shape != (COMPONENTS, THUMB * THUMB) \
                or domain.thresholds.shape != (2,) or not np.isfinite(domain.thresholds).all() \
                or (domain.thresholds <= 0).any():
            raise InputError(f"{path}: the domain description's arrays do not fit together")
        return domain


def _parts(n: int) -> tuple[slice, slice]:
    """The feature vector's two parts: shape (components and residual), texture (the rest)."""
    return slice(0, COMPONENTS + 1), slice(COMPONENTS + 1, n)


def _views(image, text_mask=None) -> list[np.ndarray]:
    """An image as the filter sees it: with known burned-in text, both with the text painted
    out and as it is, as the pipeline may meet it either way (text its OCR missed, or a
    large box it filled)."""
    views = [_prepared(image, text_mask)]
    if text_mask is not None and np.asarray(text_mask).any():
        views.append(_prepared(image))
    return views


def _all_prepared(images, text_masks, progress) -> list[np.ndarray]:
    out = []
    for i, image in enumerate(images):
        out += _views(image, None if text_masks is None else text_masks[i])
        if progress:
            progress(i + 1, len(images))
    return out


NO_DOMAIN = ("the filter's model folder holds no description of its training images "
             f"({DOMAIN_FILE}), so no image can be shown to be like them; add one with "
             "updp fit-domain")


def domain_record(domain: Domain | None, image, text_mask=None, model_id: str | None = None) -> dict:
    """What the pipeline stores about one image (the ``domain`` artifact): in or out of the
    filter's domain, the distance (1 is the threshold) and, when out, why in words. Without
    a description (``domain`` None) nothing can be shown to be in domain: out."""
    if domain is None:
        return {"in_domain": False, "distance": None, "threshold": None, "model": model_id,
                "reason": NO_DOMAIN}
    check = domain.check(image, text_mask)
    record = check.as_json(model_id)
    if check.in_domain:
        record["reason"] = ""
    elif not np.isfinite(check.distance):
        record["reason"] = "the image could not be measured against the filter's training images"
    else:
        record["reason"] = (f"unlike the images the filter learned from: distance "
                            f"{check.distance:.2f}, threshold {check.threshold:g}")
    return record


def domain_digest(folder: str | os.PathLike | None) -> str | None:
    """A short hash of the folder's domain description (None when it has none): what a
    stored domain check records it was made against."""
    import hashlib

    if folder is None or not (Path(folder) / DOMAIN_FILE).is_file():
        return None
    return hashlib.sha256((Path(folder) / DOMAIN_FILE).read_bytes()).hexdigest()[:16]


def folder_images(folder: str | os.PathLike, follow_symlinks: bool = False,
                  progress: Callable[[int, int], None] | None = None, text_boxes: bool = True
                  ) -> tuple[list[np.ndarray], list[np.ndarray | None], list[str], list[tuple[str, str]]]:
    """The frontal images of a folder of studies (a cohort or an archive) as the pipeline
    reads them: ``(images, text masks, patients, skipped)``. A cohort's known burned-in
    text boxes are painted out (unless ``text_boxes`` is False); files that cannot be read
    are listed in ``skipped`` with the reason. Patients come from the header (PatientID),
    which no message ever shows."""
    import pydicom

    from ..cohort.generate import GROUND_TRUTH, read_ground_truth
    from ..deid.report.header_values import patient_key
    from ..ingest import display_image, quiet_pydicom
    from ..studies import find_studies

    quiet_pydicom()
    root = Path(folder)
    found = find_studies(root, follow_symlinks=follow_symlinks)
    boxes: dict[Path, list] = {}
    if text_boxes and (root / GROUND_TRUTH).is_file():
        for rec in read_ground_truth(root):
            boxes[(root / rec["image"]).resolve()] = [b["box"] for b in rec.get("burned_in", [])]
    images, masks, patients, skipped = [], [], [], list(found.skipped)
    for n, study in enumerate(found.studies):
        try:
            image = display_image(study.image)
            patient = patient_key(pydicom.dcmread(study.image, stop_before_pixels=True))
        except InputError as exc:
            skipped.append((study.name, str(exc).replace(str(study.image), study.name)))
            continue
        except Exception as exc:  # damage in one file: that file only
            skipped.append((study.name, f"could not be read ({type(exc).__name__})"))
            continue
        mask = None
        if boxes.get(study.image.resolve()):
            mask = np.zeros(image.shape, bool)
            for x0, y0, x1, y1 in boxes[study.image.resolve()]:
                mask[max(int(y0), 0):int(y1) + 1, max(int(x0), 0):int(x1) + 1] = True
        images.append(image)
        masks.append(mask)
        patients.append(patient or study.name)
        if progress:
            progress(n + 1, len(found.studies))
    return images, masks, patients, skipped


def held_out_patients(patients: Sequence[str], share: float = 0.2) -> np.ndarray:
    """A fixed ``share`` of the patients, picked by a hash of each: True for their images."""
    import hashlib

    def pick(p: str) -> bool:
        return int(hashlib.sha256(p.encode("utf-8")).hexdigest()[:8], 16) / 2**32 < share

    return np.array([pick(p) for p in patients], bool)


def fit_domain_folder(model: str | os.PathLike, train: str | os.PathLike,
                      calibrate: str | os.PathLike | None = None,
                      progress: Callable[[str, int, int], None] | None = None,
                      text_boxes: bool = True) -> dict:
    """Describe the filter ``model``'s domain with the images of ``train`` (a folder of
    studies like those the filter learned from) and calibrate its threshold on ``calibrate``
    (other patients' studies; None: a fifth of ``train``'s patients, held out of the fit).
    Writes ``domain.npz`` into ``model`` and a ``domain`` section into its card; returns it."""
    from .model import filter_card, set_card_section

    model = Path(model)
    filter_card(model)  # a folder that is no filter is refused before any work

    def stage(name):
        return (lambda d, t: progress(name, d, t)) if progress else None

    images, masks, patients, skipped = folder_images(train, progress=stage("read training images"),
                                                     text_boxes=text_boxes)
    if calibrate is None:
        held = held_out_patients(patients)
        if held.all() or not held.any():
            raise InputError(f"{train}: too few patients to hold a fifth out for calibration; "
                             "give --calibrate")
        fit_i = [i for i in range(len(images)) if not held[i]]
        cal_images = [images[i] for i in range(len(images)) if held[i]]
        cal_masks = [masks[i] for i in range(len(images)) if held[i]]
        images, masks = [images[i] for i in fit_i], [masks[i] for i in fit_i]
        cal_skipped: list = []
    else:
        cal_images, cal_masks, cal_patients, cal_skipped = folder_images(
            calibrate, progress=stage("read calibration images"), text_boxes=text_boxes)
        if set(cal_patients) & set(patients):
            raise InputError(f"{calibrate}: shares patients with {train}; calibrate on patients "
                             "the fit never saw")
    domain = Domain.fit(images, masks, progress=stage("fit"))
    calibration = domain.calibrate(cal_images, cal_masks, progress=stage("calibrate"))
    sources = {"train": _folder_signature(train),
               "calibrate": _folder_signature(calibrate) if calibrate else
               "a fifth of the training patients, held out of the fit"}
    domain.summary.update(sources, skipped=len(skipped) + len(cal_skipped))
    domain.save(model)
    section = {"file": DOMAIN_FILE, "format": FORMAT, "images": len(images), **sources,
               "features": f"{COMPONENTS} principal components of {THUMB}x{THUMB} thumbnails, "
                           "their residual, intensity quantiles, noise, edges, radial spectrum "
                           f"(at {SIDE} px)",
               "calibration": calibration, "digest": domain_digest(model)}
    set_card_section(model, "domain", section)
    return {**section, "skipped": skipped + cal_skipped}


def _folder_signature(folder: str | os.PathLike) -> dict:
    """What a folder of studies was: a cohort's generator settings, else its name only (a
    path can name a person or a hospital)."""
    path = Path(folder) / "cohort.json"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {"folder": Path(folder).name}
    if not isinstance(info, dict):
        return {"folder": Path(folder).name}
    return {k: info[k] for k in ("generator", "seed", "patients", "studies_per_patient", "size",
                                 "version") if k in info}
