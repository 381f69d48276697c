"""The pathology classifier: which of the cohort's findings does a radiograph show?

A multi-label CNN that draws one map per finding; a finding's probability is the sigmoid of
its map's peak. While it trains the maps are also fitted to the cohort's pathology masks:
with a few hundred training images that teaches it to look at the lesion rather than at
whatever else correlates with the label. Only the probabilities are used afterwards.

The utility score of a synthetic image is how well the classifier's findings on it agree
with its findings on the original.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..core.errors import InputError
from ..core.metrics import roc_auc
from .augment import Augmentation, augment
from .checkpoint import load_state, read_scorer, save_scorer
from .networks import Encoder, as_batch, norm_layer, parameter_count

KIND = "pathology"
BATCH_SIZE = 16


class PathologyNet(nn.Module):
    """Encoder with a small feature-pyramid decoder that draws one map per finding at
    ``1 / map_stride`` of the input resolution; a finding's logit is the peak of its map.

    The maps are fitted to the pathology masks while training (a 1 cm nodule is a few
    pixels, and a map is where the network learns to see it), and their peaks to the labels.
    A head on globally pooled features was measured worse on held-out patients: with a few
    hundred studies it memorises the training images instead of finding the lesion.
    """

    def __init__(self, labels: int = 7, widths: Sequence[int] = (16, 32, 64, 128),
                 decoder: int = 48, map_stride: int = 4, norm: str = "batch"):
        super().__init__()
        widths = tuple(widths)
        self.encoder = Encoder(widths, norm)
        # Stage k of Encoder.stages (0 = stem) has stride 2 ** (k + 1); the last two stages
        # share the coarsest resolution, so only the last of them joins the pyramid.
        first = int(np.log2(map_stride)) - 1
        if 2 ** (first + 1) != map_stride or not 1 <= first < len(widths):
            raise InputError(f"map stride {map_stride} does not fit an encoder of {len(widths)} stages")
        self.first = first
        self.lateral = nn.ModuleList(nn.Conv2d(w, decoder, 1) for w in widths[first:])
        self.smooth = nn.ModuleList(
            nn.Sequential(nn.Conv2d(decoder, decoder, 3, 1, 1, bias=False), norm_layer(norm, decoder),
                          nn.ReLU(inplace=norm == "batch")) for _ in widths[first:-1])
        self.locate = nn.Conv2d(decoder, labels, 1)
        # Training only: a head on pooled features makes the encoder learn the whole chest too.
        self.pooled_head = nn.Linear(2 * self.encoder.out_channels, labels)

    def forward(self, x: torch.Tensor, with_maps: bool = False):
        stages = self.encoder.stages(x)
        pyramid = stages[self.first:len(stages) - 2]
        top = self.lateral[-1](stages[-1])
        for k in range(len(pyramid) - 1, -1, -1):
            top = F.interpolate(top, size=pyramid[k].shape[-2:], mode="nearest") + self.lateral[k](pyramid[k])
            top = self.smooth[k](top)
        maps = self.locate(top)
        logits = maps.amax(dim=(2, 3))
        if not with_maps:
            return logits
        last = stages[-1]
        pooled = self.pooled_head(torch.cat([last.mean(dim=(2, 3)), last.amax(dim=(2, 3))], 1))
        return logits, maps, pooled


class PathologyScorer:
    """A trained classifier. Images are numpy arrays [N, H, W] (or one [H, W]) of any size and
    scale; they are resized to ``input_size`` and standardised inside."""

    kind = KIND

    def __init__(self, model: PathologyNet, config: dict, card: dict | None = None):
        self.model = model.eval()
        self.config = config
        self.card = card or {}
        self.input_size = int(config["input_size"])
        self.label_names: tuple[str, ...] = tuple(config["label_names"])
        # Decision thresholds per label, chosen on the training data (0.5 where absent).
        self.thresholds = np.asarray(config.get("thresholds") or [0.5] * len(self.label_names),
                                     dtype=np.float32)

    def predict(self, images, batch_size: int = 32) -> np.ndarray:
        """float32 [N, labels] probabilities, columns in ``label_names`` order."""
        x = as_batch(images, self.input_size)
        out = []
        with torch.inference_mode():
            for i in range(0, len(x), batch_size):
                out.append(torch.sigmoid(self.model(x[i:i + batch_size])))
        return torch.cat(out).numpy()

    def finding_maps(self, images, batch_size: int = 32) -> np.ndarray:
        """float32 [N, labels, h, w] probability maps (``input_size / map_stride`` a side):
        where the classifier sees each finding. A label's probability is its map's peak."""
        x = as_batch(images, self.input_size)
        out = []
        with torch.inference_mode():
            for i in range(0, len(x), batch_size):
                out.append(torch.sigmoid(self.model(x[i:i + batch_size], with_maps=True)[1]))
        return torch.cat(out).numpy()

    def auc_per_label(self, images, labels: np.ndarray, probabilities: np.ndarray | None = None
                      ) -> dict[str, float | None]:
        """ROC AUC per label; ``None`` for a label the images show only one class of (no AUC
        exists; ``skipped_labels`` names them). Pass ``probabilities`` to reuse a prediction."""
        labels = np.asarray(labels)
        probs = self.predict(images) if probabilities is None else np.asarray(probabilities)
        if labels.shape != probs.shape:
            raise InputError(f"expected labels of shape {probs.shape}, got {labels.shape}")
        result: dict[str, float | None] = {}
        for j, name in enumerate(self.label_names):
            column = labels[:, j]
            result[name] = None if column.min() == column.max() else round(roc_auc(probs[:, j], column), 4)
        return result

    @staticmethod
    def macro_auc(per_label: dict[str, float | None]) -> float | None:
        """Mean over the labels that have an AUC."""
        values = [v for v in per_label.values() if v is not None]
        return round(float(np.mean(values)), 4) if values else None

    @staticmethod
    def skipped_labels(per_label: dict[str, float | None]) -> list[str]:
        return [name for name, v in per_label.items() if v is None]

    def agreement(self, original, synthetic) -> dict[str, np.ndarray]:
        """Per case: how far the findings on ``synthetic[k]`` match those on ``original[k]``.

        ``label_agreement``: share of labels whose thresholded prediction is the same (1 =
        all agree); ``mean_abs_difference``: mean absolute probability difference over the
        labels (0 = identical); ``original`` and ``synthetic``: the probabilities themselves.
        """
        p_orig, p_syn = self.predict(original), self.predict(synthetic)
        if p_orig.shape != p_syn.shape:
            raise InputError(f"agreement compares pairs: got {len(p_orig)} originals and "
                             f"{len(p_syn)} synthetic images")
        same = (p_orig >= self.thresholds) == (p_syn >= self.thresholds)
        return {"label_agreement": same.mean(axis=1),
                "mean_abs_difference": np.abs(p_orig - p_syn).mean(axis=1),
                "original": p_orig, "synthetic": p_syn}

    # --- files -----------------------------------------------------------------------------

    def save(self, out: str | os.PathLike, half: bool = True) -> Path:
        return save_scorer(out, self.model, self.config, {**self.card, "kind": KIND}, half=half)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PathologyScorer:
        config, state, card = read_scorer(path, KIND)
        try:
            # "norm" is absent from the cards of batch-norm networks made before it existed.
            model = PathologyNet(len(config["label_names"]), config["widths"], config["decoder"],
                                 config["map_stride"], config.get("norm", "batch"))
            int(config["input_size"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path}: config.json does not describe a pathology network") from None
        load_state(Path(path), model, state)
        return cls(model, config, card)


# --- training ------------------------------------------------------------------------------

def train_pathology(images: np.ndarray, labels: np.ndarray, label_names: Sequence[str],
                    masks: np.ndarray | None = None, *, input_size: int = 128,
                    widths: Sequence[int] = (16, 32, 64, 128), decoder: int = 48,
                    map_stride: int = 4, epochs: int = 20, batch_size: int = BATCH_SIZE,
                    learning_rate: float = 3e-3, weight_decay: float = 5e-4,
                    mask_weight: float = 1.0, map_positive_weight: float = 5.0,
                    map_positive_weight_max: float = 30.0, peak_positive_weight: float = 1.0,
                    augmentation: Augmentation | None = None, seed: int = 0,
                    progress: Callable[[int, int], None] | None = None) -> PathologyScorer:
    """Train on ``images`` [N, H, W] with ``labels`` [N, L] (0/1) named ``label_names``.

    ``masks`` [N, H, W] (bit ``j`` set where label ``j`` lies, as ``CohortImages.masks``)
    are what the maps are fitted to; without them the maps learn from the labels alone.
    """
    labels = np.asarray(labels, dtype=np.float32)
    if labels.ndim != 2 or labels.shape != (len(images), len(label_names)):
        raise InputError(f"expected labels [N={len(images)}, {len(label_names)}], got {labels.shape}")
    # Half the verifier's ranges: a faint 1 cm nodule must survive its blur and noise.
    augmentation = augmentation if augmentation is not None else Augmentation().scaled(0.5)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    x_all = as_batch(images, input_size)
    y_all = torch.from_numpy(labels)
    model = PathologyNet(len(label_names), widths, decoder, map_stride)
    m_all = None
    if masks is not None and mask_weight > 0:
        bits = torch.from_numpy(np.asarray(masks).astype(np.int64))
        planes = torch.stack([((bits >> j) & 1).float() for j in range(len(label_names))], 1)
        m_all = F.interpolate(planes, size=(input_size, input_size), mode="area")
    # Rare findings weigh more, so every label is learnt, not only the common ones.
    positives = labels.sum(0)
    pos_weight = torch.from_numpy(np.clip((len(labels) - positives) / np.maximum(positives, 1), 1, 10))
    # The peak is pushed up by one cell only: weighting its positives too made a map fire
    # everywhere and lose its lesion (measured on nodules), so that weight stays mild.
    peak_pos_weight = pos_weight.clamp(max=float(peak_positive_weight))
    # Lesion cells are a small share of a map (a nodule's one cell in a thousand): weigh them
    # up so the maps do not stay empty, the rarer the more, within limits.
    map_pos_weight = torch.full((len(label_names), 1, 1), float(map_positive_weight))
    if m_all is not None and map_positive_weight_max > map_positive_weight:
        grid = input_size // map_stride
        cells = F.adaptive_max_pool2d(m_all, grid).gt(0.5).float().mean(dim=(0, 2, 3))
        ratio = torch.sqrt((1 - cells) / cells.clamp_min(1e-6))
        map_pos_weight = ratio.clamp(map_positive_weight, map_positive_weight_max)[:, None, None]
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    per_epoch = int(np.ceil(len(images) / batch_size))
    steps = epochs * per_epoch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=steps,
                                                   pct_start=0.1)
    started = time.perf_counter()
    losses = []
    step = 0
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(images))
        for b in range(per_epoch):
            rows = order[b * batch_size:(b + 1) * batch_size]
            if m_all is None:
                x, m = augment(x_all[rows], augmentation, generator), None
            else:
                x, m = augment(x_all[rows], augmentation, generator, masks=m_all[rows])
            logits, maps, pooled = model(x, with_maps=True)
            y = y_all[rows]
            loss = F.binary_cross_entropy_with_logits(logits, y, pos_weight=peak_pos_weight) + \
                F.binary_cross_entropy_with_logits(pooled, y, pos_weight=pos_weight)
            if m is not None:
                # A cell is positive where any of it is lesion: a small nodule still marks one.
                target = F.adaptive_max_pool2d(m, maps.shape[-2:]).clamp(0, 1)
                loss = loss + mask_weight * F.binary_cross_entropy_with_logits(
                    maps, target, pos_weight=map_pos_weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            step += 1
            if progress:
                progress(step, steps)
    model.eval()
    config = {"architecture": "updp-pathology-cnn", "input_size": input_size, "widths": list(widths),
              "decoder": decoder, "map_stride": map_stride, "label_names": list(label_names)}
    scorer = PathologyScorer(model, config)
    config["thresholds"] = _balanced_thresholds(scorer.predict(images), labels)
    scorer.thresholds = np.asarray(config["thresholds"], dtype=np.float32)
    scorer.card = {
        "kind": KIND,
        "label_names": list(label_names),
        "input_size": input_size,
        "parameters": parameter_count(model),
        "training": {
            "images": len(images), "epochs": epochs, "steps": steps, "batch_size": batch_size,
            "learning_rate": learning_rate, "weight_decay": weight_decay,
            "mask_weight": mask_weight if m_all is not None else 0.0,
            "positives": {n: int(p) for n, p in zip(label_names, positives)},
            "augmentation": augmentation.__dict__, "seed": seed,
            "final_loss": round(float(np.mean(losses[-20:])), 4),
            "seconds": round(time.perf_counter() - started, 1),
        },
    }
    return scorer


def train_pathology_from_regions(images: np.ndarray, labels: np.ndarray, label_names: Sequence[str],
                                 regions: np.ndarray, *, rounds: int = 1, fraction: float = 0.5,
                                 progress: Callable[[int, int], None] | None = None,
                                 **options) -> PathologyScorer:
    """Train where only the *regions* a finding may lie in are known (zones read from the
    report, a fifth of the image where a lesion is a hundredth), not its outline: a
    classifier fitted to the regions draws maps, each positive finding's map is cut inside its
    region at ``fraction`` of the way from the map's median to its peak, and the classifier is
    trained again on those outlines — ``rounds`` times (self-training on its own maps).
    ``regions`` as :func:`train_pathology`'s masks; ``options`` go to it. The card records the
    rounds and the outlines' mean area."""
    if rounds < 0 or not 0 < fraction < 1:
        raise InputError(f"rounds must be at least 0 and fraction between 0 and 1 "
                         f"(got {rounds}, {fraction})")
    labels = np.asarray(labels, dtype=np.float32)
    per_round = options.get("epochs", 20) * int(np.ceil(len(images) / options.get("batch_size", BATCH_SIZE)))

    def report(k):
        if progress is None:
            return None
        return lambda done, _: progress(k * per_round + done, (rounds + 1) * per_round)

    regions = np.asarray(regions)
    outlines = regions
    areas = []
    started = time.perf_counter()
    for k in range(rounds + 1):
        scorer = train_pathology(images, labels, label_names, outlines, progress=report(k), **options)
        if k < rounds:
            outlines = _outlines_from_maps(scorer.finding_maps(images), labels, regions, fraction)
            positive = labels > 0.5
            bits = np.arange(labels.shape[1])
            areas.append(float(np.mean(((outlines[:, None] >> bits[None, :, None, None]) & 1)
                                       .mean(axis=(2, 3))[positive])) if positive.any() else 0.0)
    scorer.card["training"]["regions"] = {"rounds": rounds, "fraction": fraction,
                                          "outline_area": [round(a, 4) for a in areas]}
    scorer.card["training"]["seconds"] = round(time.perf_counter() - started, 1)  # every round
    return scorer


def _outlines_from_maps(maps: np.ndarray, labels: np.ndarray, regions: np.ndarray,
                        fraction: float) -> np.ndarray:
    """Each positive finding's map, at the regions' size, cut inside its region (anywhere when
    it has none) at ``fraction`` from the map's median to its peak: bit masks as the regions."""
    size = regions.shape[-2:]
    maps = F.interpolate(torch.from_numpy(np.asarray(maps, np.float32)), size=size, mode="bilinear",
                         align_corners=False).numpy()
    out = np.zeros(regions.shape, regions.dtype)
    for i, j in zip(*np.nonzero(labels > 0.5)):
        region = (regions[i] >> j) & 1
        inside = np.where(region > 0, maps[i, j], -np.inf) if region.any() else maps[i, j]
        low = float(np.median(maps[i, j]))
        cut = low + fraction * (float(inside.max()) - low)
        out[i] |= (inside >= cut).astype(out.dtype) << out.dtype.type(j)
    return out


def _balanced_thresholds(probs: np.ndarray, labels: np.ndarray) -> list[float]:
    """Per label, the threshold of best balanced accuracy on the training data (0.5 when a
    label has one class): the score's natural cut for 'finding present'."""
    thresholds = []
    for j in range(labels.shape[1]):
        y = labels[:, j] > 0.5
        if y.all() or not y.any():
            thresholds.append(0.5)
            continue
        candidates = np.unique(probs[:, j])
        tpr = np.array([(probs[y, j] >= t).mean() for t in candidates])
        tnr = np.array([(probs[~y, j] < t).mean() for t in candidates])
        best = candidates[int(np.argmax(tpr + tnr))]
        thresholds.append(round(float(best), 4))
    return thresholds
