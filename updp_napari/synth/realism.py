"""Two-sample realism test: can a classifier tell the filter's counterparts from originals?

All originals (label 0) and all counterparts (label 1) form one data set; the classifiers are
cross-validated with folds grouped by patient (a patient's originals and counterparts are all
in one fold, so nothing of a patient is seen in training and then tested on) and scored by the
out-of-fold AUC: 0.5 when the counterparts cannot be told apart, 1.0 when every one can.

Two attackers, the strongest of which is reported:

* ``logistic``: an L2 logistic regression on standardised handcrafted features that catch the
  usual generator tells (:func:`realism_features`): the radially averaged log power spectrum
  at the image's resolution, intensity quantiles, the spread and tails of the high-pass
  residual at two scales, how uneven the fine noise is across the image, and quantiles of
  the gradient magnitude. The penalty is chosen inside each training fold by a grouped
  inner cross-validation.
* ``cnn``: a small convolutional network on two channels at ``CNN_SIZE`` pixels: the image
  itself (area-downsized) and the log energy of its full-resolution high-pass residual,
  pooled to the same grid (so texture finer than the downsized grid still shows).

numpy and scipy only at import; torch is imported by the CNN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..core.errors import UpdpError
from ..core.metrics import roc_auc

#: Radial bins of the power spectrum.
SPECTRUM_BINS = 20
#: Quantiles of the intensities and of the gradient magnitude.
INTENSITY_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
GRADIENT_QUANTILES = (0.1, 0.5, 0.9, 0.99)
#: Side the CNN sees, its epochs, and the L2 penalties the logistic regression chooses from.
CNN_SIZE = 64
CNN_EPOCHS = 12
PENALTIES = (0.01, 0.1, 1.0, 10.0, 100.0)


# --- features ------------------------------------------------------------------------------

def _radial_bins(shape: tuple[int, int], bins: int) -> np.ndarray:
    """[H*W, bins] averaging matrix of the radial frequency bins (cycles per pixel, DC left
    out, up to Nyquist)."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    radius = np.sqrt(fy * fy + fx * fx).ravel()
    edges = np.linspace(0.0, 0.5, bins + 1)
    index = np.digitize(radius, edges[1:-1])
    inside = (radius > 0) & (radius <= 0.5)
    m = np.zeros((radius.size, bins), np.float32)
    m[np.flatnonzero(inside), index[inside]] = 1.0
    count = m.sum(axis=0)
    if (count == 0).any():  # too small an image for this many bins
        raise UpdpError(f"realism features: images of {shape[0]}x{shape[1]} pixels are too small")
    return m / count


def _moments(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image of [N, H, W]: standard deviation and excess kurtosis."""
    flat = r.reshape(len(r), -1).astype(np.float64)
    centred = flat - flat.mean(axis=1, keepdims=True)
    var = (centred ** 2).mean(axis=1)
    kurt = (centred ** 4).mean(axis=1) / np.maximum(var, 1e-20) ** 2 - 3.0
    return np.sqrt(var), kurt


def feature_names(bins: int = SPECTRUM_BINS) -> list[str]:
    """The columns of :func:`realism_features`."""
    return ([f"log power, radial bin {k + 1}/{bins}" for k in range(bins)]
            + [f"intensity q{q:g}" for q in INTENSITY_QUANTILES] + ["intensity mean", "intensity std"]
            + ["residual(1) std", "residual(1) kurtosis", "residual(1) mean |r| / std",
               "band(1-2) std", "band(1-2) kurtosis", "noise unevenness", "noise unevenness, log"]
            + [f"gradient q{q:g}" for q in GRADIENT_QUANTILES] + ["gradient mean"])


def realism_features(images, bins: int = SPECTRUM_BINS, chunk: int = 64) -> np.ndarray:
    """float64 [N, F] handcrafted features of [N, H, W] images (columns: :func:`feature_names`).

    * the radially averaged log10 power spectrum of the (Hann-windowed, mean-removed) image at
      its own resolution, ``bins`` linear bins from DC to Nyquist: smoothing, upsampling and
      checkerboard artefacts change its fall-off and high-frequency tail;
    * intensity quantiles, mean and standard deviation;
    * the high-pass residual (image minus its Gaussian blur of 1 px): standard deviation,
      excess kurtosis, mean absolute value over standard deviation; the 1–2 px band
      (difference of blurs) likewise; how uneven the residual's local spread is (coefficient
      of variation of its standard deviation over 16-pixel blocks, raw and of the log);
    * quantiles and mean of the Sobel gradient magnitude.
    """
    from scipy import ndimage

    x_all = np.asarray(images, np.float32)
    if x_all.ndim != 3:
        raise UpdpError(f"realism features: expected images [N, H, W], got shape {x_all.shape}")
    n, h, w = x_all.shape
    radial = _radial_bins((h, w), bins)
    window = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    block = max(4, min(16, h // 4, w // 4))
    out = []
    for start in range(0, n, chunk):
        x = x_all[start:start + chunk]
        k = len(x)
        centred = (x - x.mean(axis=(1, 2), keepdims=True)) * window
        power = np.abs(np.fft.fft2(centred)) ** 2
        spectrum = np.log10(power.reshape(k, -1) + 1e-12) @ radial
        flat = x.reshape(k, -1)
        quant = np.quantile(flat, INTENSITY_QUANTILES, axis=1).T
        b1 = ndimage.gaussian_filter(x, (0, 1.0, 1.0), mode="reflect")
        b2 = ndimage.gaussian_filter(x, (0, 2.0, 2.0), mode="reflect")
        r1, band = x - b1, b1 - b2
        r1_std, r1_kurt = _moments(r1)
        r1_abs = np.abs(r1).reshape(k, -1).mean(axis=1) / np.maximum(r1_std, 1e-12)
        band_std, band_kurt = _moments(band)
        hb, wb = h // block, w // block
        blocks = r1[:, :hb * block, :wb * block].reshape(k, hb, block, wb, block)
        local = blocks.std(axis=(2, 4)).reshape(k, -1).astype(np.float64)
        uneven = local.std(axis=1) / np.maximum(local.mean(axis=1), 1e-12)
        log_local = np.log(local + 1e-6)
        uneven_log = log_local.std(axis=1)
        gy = ndimage.sobel(x, axis=1, mode="reflect")
        gx = ndimage.sobel(x, axis=2, mode="reflect")
        grad = np.sqrt(gx * gx + gy * gy).reshape(k, -1)
        gq = np.quantile(grad, GRADIENT_QUANTILES, axis=1).T
        out.append(np.column_stack([
            spectrum, quant, flat.mean(axis=1), flat.std(axis=1),
            r1_std, r1_kurt, r1_abs, band_std, band_kurt, uneven, uneven_log,
            gq, grad.mean(axis=1)]).astype(np.float64))
    return np.concatenate(out) if out else np.zeros((0, len(feature_names(bins))))


# --- grouped cross-validation ----------------------------------------------------------------

def grouped_folds(groups: Sequence, k: int = 5, seed: int = 0) -> np.ndarray:
    """Fold number (0 .. k-1) of each item; items of one group share a fold. Groups are
    shuffled with ``seed`` and dealt, largest first, to the fold holding fewest items. With
    fewer than ``k`` groups there are as many folds as groups."""
    groups = np.asarray(groups)
    names, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    if len(names) < 2:
        raise UpdpError("grouped cross-validation needs at least two groups")
    k = min(int(k), len(names))
    order = np.random.default_rng(seed).permutation(len(names))
    order = order[np.argsort(-sizes[order], kind="stable")]
    fold_of = np.empty(len(names), int)
    load = np.zeros(k, int)
    for g in order:
        f = int(np.argmin(load))
        fold_of[g] = f
        load[f] += sizes[g]
    return fold_of[inverse]


# --- logistic regression -------------------------------------------------------------------

class Logistic:
    """L2-penalised logistic regression on standardised features, fitted by Newton's method
    (the intercept is not penalised)."""

    def __init__(self, penalty: float = 1.0, iterations: int = 50):
        self.penalty = float(penalty)
        self.iterations = iterations

    def fit(self, x: np.ndarray, y: np.ndarray) -> Logistic:
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        self.mean = x.mean(axis=0)
        self.scale = x.std(axis=0)
        self.scale[self.scale < 1e-12] = 1.0
        z = np.column_stack([np.ones(len(x)), (x - self.mean) / self.scale])
        w = np.zeros(z.shape[1])
        ridge = np.full(z.shape[1], self.penalty)
        ridge[0] = 1e-8
        for _ in range(self.iterations):
            p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -30, 30)))
            grad = z.T @ (p - y) + ridge * w
            hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(ridge)
            step = np.linalg.solve(hess, grad)
            w -= step
            if np.abs(step).max() < 1e-8:
                break
        self.weights = w
        return self

    def decision(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, np.float64) - self.mean) / self.scale
        return self.weights[0] + z @ self.weights[1:]


def _auc_or_half(scores: np.ndarray, y: np.ndarray) -> float:
    try:
        return roc_auc(scores, y)
    except UpdpError:
        return 0.5


def logistic_out_of_fold(x: np.ndarray, y: np.ndarray, folds: np.ndarray, groups: Sequence,
                         penalties: Sequence[float] = PENALTIES,
                         seed: int = 0) -> tuple[np.ndarray, list[float]]:
    """Out-of-fold decision values of :class:`Logistic`, the penalty of each fold chosen by a
    3-fold cross-validation grouped the same way inside its training part. Returns the
    scores and the penalty chosen per fold."""
    groups = np.asarray(groups)
    scores = np.zeros(len(y))
    chosen = []
    for f in np.unique(folds):
        train, test = folds != f, folds == f
        penalty = _choose_penalty(x[train], y[train], groups[train], penalties, seed + 1 + int(f))
        chosen.append(penalty)
        scores[test] = Logistic(penalty).fit(x[train], y[train]).decision(x[test])
    return scores, chosen


def _choose_penalty(x, y, groups, penalties, seed) -> float:
    if len(penalties) == 1 or len(np.unique(groups)) < 3:
        return float(penalties[len(penalties) // 2])
    inner = grouped_folds(groups, 3, seed)
    best, best_auc = None, -1.0
    for penalty in penalties:
        s = np.zeros(len(y))
        for f in np.unique(inner):
            s[inner == f] = Logistic(penalty).fit(x[inner != f], y[inner != f]).decision(x[inner == f])
        auc = _auc_or_half(s, y)
        if auc > best_auc + 1e-9:
            best, best_auc = float(penalty), auc
    return best


# --- small CNN -----------------------------------------------------------------------------

def cnn_inputs(images, size: int = CNN_SIZE) -> np.ndarray:
    """float32 [N, 2, size, size]: the image area-downsized, and the log mean energy of its
    full-resolution high-pass residual (image minus a 1-pixel blur) over the same cells."""
    import torch
    import torch.nn.functional as F
    from scipy import ndimage

    x = np.asarray(images, np.float32)
    residual = x - ndimage.gaussian_filter(x, (0, 1.0, 1.0), mode="reflect")
    t = torch.from_numpy(np.stack([x, residual * residual], axis=1))
    pooled = F.adaptive_avg_pool2d(t, (size, size))
    pooled[:, 1] = torch.log(pooled[:, 1] + 1e-8)
    return pooled.numpy()


def _network(channels: int = 2, widths: Sequence[int] = (16, 32, 64, 64)):
    """Four 3x3 convolutions, each halving the grid (batch norm, ReLU), global average
    pooling and a linear read-out: a few tens of thousands of weights."""
    import torch.nn as nn

    layers, cin = [], channels
    for cout in widths:
        layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                   nn.ReLU()]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 1)]
    return nn.Sequential(*layers)


def cnn_out_of_fold(inputs: np.ndarray, y: np.ndarray, folds: np.ndarray, *, epochs: int = CNN_EPOCHS,
                    batch_size: int = 32, lr: float = 2e-3, seed: int = 0) -> np.ndarray:
    """Out-of-fold logits of a small CNN (:func:`_network`) trained afresh on each fold's
    training part (Adam, random horizontal flips, ``epochs`` passes, seeded; the channels
    standardised with the training part's mean and spread). The caller sets torch's threads."""
    import torch
    import torch.nn.functional as F

    scores = np.zeros(len(y))
    for f in np.unique(folds):
        train, test = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
        xt = torch.from_numpy(inputs[train])
        mean = xt.mean(dim=(0, 2, 3), keepdim=True)
        std = xt.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
        xt = (xt - mean) / std
        yt = torch.from_numpy(y[train].astype(np.float32))
        torch.manual_seed(seed * 1009 + int(f))
        gen = torch.Generator().manual_seed(seed * 1009 + int(f))
        net = _network(inputs.shape[1])
        opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
        steps_per_epoch = max(1, int(np.ceil(len(train) / batch_size)))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
        net.train()
        for _ in range(epochs):
            order = torch.randperm(len(train), generator=gen)
            for b in range(steps_per_epoch):
                idx = order[b * batch_size:(b + 1) * batch_size]
                if len(idx) < 2:  # batch norm needs two
                    continue
                xb = xt[idx]
                flip = torch.rand(len(idx), generator=gen) < 0.5
                xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
                loss = F.binary_cross_entropy_with_logits(net(xb).squeeze(1), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        net.eval()
        with torch.inference_mode():
            xs = (torch.from_numpy(inputs[test]) - mean) / std
            s = (net(xs) + net(xs.flip(-1))).squeeze(1) / 2
        scores[test] = s.numpy()
    return scores


# --- the test ------------------------------------------------------------------------------

def realism_test(originals, counterparts, patients: Sequence, *, folds: int = 5, seed: int = 0,
                 cnn: bool = True, cnn_size: int = CNN_SIZE, cnn_epochs: int = CNN_EPOCHS,
                 progress: Callable[[int, int], None] | None = None) -> dict:
    """How well classifiers tell ``counterparts`` [N, H, W] from ``originals`` [N, H, W]
    (aligned, study ``k`` of patient ``patients[k]``): the out-of-fold AUC of each classifier
    with ``folds`` folds grouped by patient (seeded), and the strongest.

    Returns ``auc`` (the highest), ``strongest``, ``by_classifier`` ({name: AUC}),
    ``fold_auc`` ({name: [AUC per fold]}), the penalties the logistic regression chose, and
    the counts. 0.5: no tell; 1.0: every counterpart is found.
    """
    originals = np.asarray(originals, np.float32)
    counterparts = np.asarray(counterparts, np.float32)
    if originals.shape != counterparts.shape or originals.ndim != 3:
        raise UpdpError(f"realism test: originals {originals.shape} and counterparts "
                        f"{counterparts.shape} must be aligned stacks [N, H, W]")
    patients = np.asarray(patients)
    if len(patients) != len(originals):
        raise UpdpError(f"realism test: {len(patients)} patients for {len(originals)} studies")
    images = np.concatenate([originals, counterparts])
    y = np.r_[np.zeros(len(originals)), np.ones(len(counterparts))]
    groups = np.concatenate([patients, patients])
    fold = grouped_folds(groups, folds, seed)
    steps = 1 + bool(cnn)
    scores: dict[str, np.ndarray] = {}
    x = realism_features(images)
    scores["logistic"], penalties = logistic_out_of_fold(x, y, fold, groups, seed=seed)
    if progress:
        progress(1, steps)
    if cnn:
        scores["cnn"] = cnn_out_of_fold(cnn_inputs(images, cnn_size), y, fold, epochs=cnn_epochs,
                                        seed=seed)
        if progress:
            progress(2, steps)
    by = {name: round(_auc_or_half(s, y), 4) for name, s in scores.items()}
    per_fold = {name: [round(_auc_or_half(s[fold == f], y[fold == f]), 4) for f in np.unique(fold)]
                for name, s in scores.items()}
    strongest = max(by, key=by.get)
    return {"auc": by[strongest], "strongest": strongest, "by_classifier": by, "fold_auc": per_fold,
            "folds": int(len(np.unique(fold))), "grouped_by": "patient", "seed": seed,
            "originals": len(originals), "counterparts": len(counterparts),
            "features": x.shape[1], "logistic_penalties": penalties,
            "cnn": {"size": cnn_size, "epochs": cnn_epochs} if cnn else None}
