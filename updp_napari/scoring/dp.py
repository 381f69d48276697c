"""Differentially private training of the pathology classifier (DP-SGD with Opacus).

``updp train-dp`` trains one classifier per privacy budget ε: every study's gradient is
clipped to ``max_grad_norm``, Gaussian noise calibrated to (ε, δ) is added to their sum, and
the batches are Poisson samples of the training set (each study joins each step with
probability ``batch / N``), which is what the accountant's guarantee assumes. The logical
batch is cut into physical batches of at most ``physical_batch`` studies (Opacus'
``BatchMemoryManager``), so memory does not grow with the batch that privacy wants large.

The network is the pathology classifier with group normalisation instead of batch
normalisation (a batch statistic mixes the studies of a batch, so no study's gradient would
be its own) and without in-place activations; Opacus' module validator must pass on it.

ε = ∞ runs the same loop, same sampling, same network, without noise and without clipping:
that is the non-private reference each private model is compared with. ``private=False``
trains the same network with plain PyTorch over the same batches; a test holds the two equal.

The unit of privacy is one study. A patient with k studies in the training set is protected
at the group level only (about k·ε); a cohort of one study per patient makes them the same.
"""

from __future__ import annotations

import math
import os
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError, UpdpError
from .scorers import DEFAULT_SCORERS, PATHOLOGY_DIR, REID_DIR

ACCOUNTANTS = ("rdp", "prv")
#: How far the ε a run spends may be from its target (the noise is searched to 0.01).
EPSILON_TOLERANCE = 0.05
#: Clipping bound standing for "no clipping" at ε = ∞ (finite: Opacus multiplies it by the
#: noise multiplier 0, and 0 × ∞ is not a number).
NO_CLIPPING = 1e30
#: Beside each ε folder's pathology/ and reid/: what the run was.
RUN_CARD = "updp_dp.json"
#: The private network: a tenth of the scorer's parameters. The noise is added to every
#: parameter's gradient, so its share of the update grows with the parameter count.
DP_WIDTHS = (8, 16, 32, 32)
DP_DECODER = 16
#: Defaults of ``updp train-dp`` (the library's too): input side, logical batch, epochs, peak
#: learning rate.
DP_SIZE, DP_BATCH, DP_EPOCHS, DP_LEARNING_RATE = 64, 64, 30, 1e-2
#: What a run from a base trains: every parameter, or all but the encoder.
TUNE = ("all", "decoder")


def require_opacus():
    """The opacus module, or an UpdpError saying how to install it."""
    try:
        import opacus
    except ImportError:
        raise UpdpError("differentially private training needs opacus: pip install "
                        "'updp-napari[dp]' (opacus==1.6.0)") from None
    return opacus


def parse_epsilons(text: str) -> list[float]:
    """``"1,3,8,inf"`` → ``[1.0, 3.0, 8.0, inf]``; each positive, no repeats."""
    values = []
    for part in str(text).split(","):
        part = part.strip().lower()
        if not part:
            continue
        try:
            value = math.inf if part in ("inf", "∞", "infinity") else float(part)
        except ValueError:
            raise InputError(f"epsilon: not a comma list of numbers or inf: {text!r}") from None
        if not value > 0 or math.isnan(value):
            raise InputError(f"epsilon: every budget must be positive, got {part}")
        if value in values:
            raise InputError(f"epsilon: {part} is given twice")
        values.append(value)
    if not values:
        raise InputError("epsilon: give at least one budget (e.g. 1,3,8,inf)")
    return values


def epsilon_folder(epsilon: float) -> str:
    """The folder of one budget: ``eps-1``, ``eps-0.5``, ``eps-inf``."""
    return "eps-inf" if math.isinf(epsilon) else f"eps-{epsilon:g}"


def run_folders(paths: Sequence[str | os.PathLike], holds: Callable[[Path], bool],
                missing: str) -> list[Path]:
    """Each path is one run's folder (``holds(path)``) or an output holding ``eps-*`` run
    folders; the run folders, in the order found. ``missing`` ends the error for a path that
    is neither ("neither a … nor a folder of them (eps-*/) made by …")."""
    found = []
    for path in map(Path, paths):
        if holds(path):
            found.append(path)
            continue
        inner = sorted(p for p in path.glob("eps-*") if holds(p)) if path.is_dir() else []
        if not inner:
            raise InputError(f"{path}: {missing}")
        found.extend(inner)
    return found


def largest_delta(n: int) -> float:
    """The largest δ allowed for ``n`` training studies: 1 / (10 n)."""
    return 1.0 / (10 * n)


def default_delta(n: int) -> float:
    """1 / (10 n) rounded down to one significant digit (1e-4 for 1000 studies, 3e-4 for 300)."""
    bound = largest_delta(n)
    exponent = math.floor(math.log10(bound))
    return float(f"{math.floor(bound / 10 ** exponent)}e{exponent}")


def check_delta(delta: float, n: int) -> None:
    bound = largest_delta(n)
    if not 0 < delta <= bound * (1 + 1e-9):
        raise InputError(f"delta: {delta:g} is above 1/(10·N) = {bound:.3g} for N = {n} "
                         "training studies (or not positive); a larger δ lets the mechanism "
                         "leak a whole study with that probability")


def dp_network(labels: int, widths: Sequence[int] = DP_WIDTHS, decoder: int = DP_DECODER,
               map_stride: int = 4):
    """The pathology classifier with group normalisation and no in-place activation."""
    from .pathology import PathologyNet

    return PathologyNet(labels, widths, decoder, map_stride, norm="group")


def validation_errors(model) -> list[str]:
    """What Opacus' module validator finds wrong with ``model`` for DP-SGD (empty: fit)."""
    require_opacus()
    from opacus.validators import ModuleValidator

    return [f"{type(e).__name__}: {e}" for e in ModuleValidator.validate(model, strict=False)]


def _per_study_loss(model, x, y, m, peak_pos_weight, pos_weight, map_pos_weight, mask_weight,
                    pooled_term: bool = True):
    """Loss of each study [n] (the non-private trainer's loss terms, averaged per study);
    without ``pooled_term`` the pooled head's term is left out (it trains only the encoder)."""
    from torch.nn import functional as F

    logits, maps, pooled = model(x, with_maps=True)
    loss = F.binary_cross_entropy_with_logits(logits, y, pos_weight=peak_pos_weight,
                                              reduction="none").mean(1)
    if pooled_term:
        loss = loss + F.binary_cross_entropy_with_logits(pooled, y, pos_weight=pos_weight,
                                                         reduction="none").mean(1)
    if m is not None:
        target = F.adaptive_max_pool2d(m, maps.shape[-2:]).clamp(0, 1)
        loss = loss + mask_weight * F.binary_cross_entropy_with_logits(
            maps, target, pos_weight=map_pos_weight, reduction="none").mean(dim=(1, 2, 3))
    return loss


@dataclass
class DPSGDRun:
    """What one run of :func:`dp_sgd` did: the trained module (per-example gradient hooks
    removed) and the figures a model card records."""

    module: Any
    noise_multiplier: float
    sample_rate: float
    expected_batch: int
    steps: int
    epsilon_spent: float  # inf without noise
    losses: list[float]
    seconds: float


def dp_sgd(model, n: int, loss_of: Callable, *, epsilon: float, delta: float,
           max_grad_norm: float, batch_size: int, physical_batch: int, epochs: int,
           accountant: str, learning_rate: float, seed: int, private: bool = True,
           progress: Callable[[int, int], None] | None = None) -> DPSGDRun:
    """The DP-SGD loop every private model here trains with, over ``n`` training examples.

    ``loss_of(model, rows)`` is the loss of each example [len(rows)] of the index tensor
    ``rows`` (one value per example: the unit of privacy), computed with ``model`` as given
    (Opacus' wrapper once the run is private). Only ``model``'s parameters that require a
    gradient are trained (AdamW without weight decay, one-cycle schedule). Poisson batches
    of expected size ``batch_size``, cut into physical batches of at most ``physical_batch``;
    the noise is searched so the run spends (``epsilon``, ``delta``); ``epsilon`` = inf: the
    same loop without noise and clipping; ``private=False``: plain PyTorch over the same
    batches. Raises UpdpError when the ε spent is not within EPSILON_TOLERANCE of the target.
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    require_opacus()
    from opacus import PrivacyEngine
    from opacus.data_loader import DPDataLoader
    from opacus.utils.batch_memory_manager import BatchMemoryManager

    noisy = not math.isinf(epsilon)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=learning_rate, weight_decay=0.0)
    loader = DataLoader(TensorDataset(torch.arange(n)), batch_size=batch_size,
                        generator=torch.Generator().manual_seed(seed + 1))
    steps_per_epoch = len(loader)
    sample_rate = 1 / steps_per_epoch
    expected_batch = int(n * sample_rate)
    total = epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate,
                                                   total_steps=total, pct_start=0.1)
    engine = None
    noise_multiplier = 0.0
    if private:
        noise_generator = torch.Generator().manual_seed(seed + 2)
        with warnings.catch_warnings():
            # Opacus warns that secure_mode is off: the noise is seeded, so a run can be
            # repeated and checked (the card records the seed).
            warnings.filterwarnings("ignore", message="Secure RNG turned off")
            engine = PrivacyEngine(accountant=accountant)
            if noisy:
                model, optimizer, loader = engine.make_private_with_epsilon(
                    module=model, optimizer=optimizer, data_loader=loader, target_epsilon=epsilon,
                    target_delta=delta, epochs=epochs, max_grad_norm=max_grad_norm,
                    poisson_sampling=True, noise_generator=noise_generator)
                noise_multiplier = float(optimizer.noise_multiplier)
            else:
                model, optimizer, loader = engine.make_private(
                    module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=0.0,
                    max_grad_norm=NO_CLIPPING, poisson_sampling=True,
                    noise_generator=noise_generator)
    else:
        loader = DPDataLoader.from_data_loader(loader)

    started = time.perf_counter()
    losses: list[float] = []
    step = 0
    model.train()
    with warnings.catch_warnings():
        # The hooks that capture each study's gradient fire on the first layer too, whose
        # input needs no gradient; torch says so, which is expected here.
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        for _ in range(epochs):
            if private:
                with BatchMemoryManager(data_loader=loader, max_physical_batch_size=physical_batch,
                                        optimizer=optimizer) as physical:
                    for (rows,) in physical:
                        if len(rows) == 0:
                            # An empty Poisson batch still steps (noise alone): no study
                            # gradient to clip.
                            for p in trainable:
                                p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype)
                        else:
                            per_study = loss_of(model, rows)
                            # Opacus scales each study's gradient back up by the physical
                            # batch and divides their sum by the expected logical batch.
                            per_study.mean().backward()
                            losses.append(float(per_study.detach().mean()))
                        optimizer.step()
                        optimizer.zero_grad()
                        if not getattr(optimizer, "_is_last_step_skipped", False):
                            schedule.step()
                            step += 1
                            if progress:
                                progress(step, total)
            else:
                for (rows,) in loader:
                    if len(rows) == 0:  # an empty Poisson batch: a zero gradient, as Opacus steps
                        for p in trainable:
                            p.grad = torch.zeros_like(p)
                    # Cut as BatchMemoryManager cuts, so augmentation draws the same numbers.
                    pieces = math.ceil(len(rows) / physical_batch)
                    for chunk in (np.array_split(rows.numpy(), pieces) if pieces else []):
                        per_study = loss_of(model, torch.from_numpy(chunk))
                        (per_study.sum() / expected_batch).backward()
                        losses.append(float(per_study.detach().mean()))
                    optimizer.step()
                    optimizer.zero_grad()
                    schedule.step()
                    step += 1
                    if progress:
                        progress(step, total)
    seconds = time.perf_counter() - started
    spent = engine.get_epsilon(delta) if (engine is not None and noisy) else math.inf
    if noisy and abs(spent - epsilon) > EPSILON_TOLERANCE:
        raise UpdpError(f"the run spent ε = {spent:.3f}, not within {EPSILON_TOLERANCE} of the "
                        f"target {epsilon:g}")
    if engine is not None and hasattr(model, "remove_hooks"):
        model.remove_hooks()  # the per-example gradient hooks go; the weights stay
    net = model._module if hasattr(model, "_module") else model
    return DPSGDRun(net, noise_multiplier, sample_rate, expected_batch, step, spent, losses,
                    seconds)


def train_pathology_dp(images: np.ndarray, labels: np.ndarray, label_names: Sequence[str],
                       masks: np.ndarray | None = None, *, epsilon: float, delta: float | None = None,
                       max_grad_norm: float = 1.0, batch_size: int = DP_BATCH,
                       physical_batch: int = 32, epochs: int = DP_EPOCHS, accountant: str = "rdp",
                       input_size: int = DP_SIZE, widths: Sequence[int] = DP_WIDTHS,
                       decoder: int = DP_DECODER, map_stride: int = 4,
                       learning_rate: float = DP_LEARNING_RATE,
                       mask_weight: float = 1.0, map_positive_weight: float = 5.0,
                       seed: int = 0, private: bool = True, base_state: dict | None = None,
                       tune: str = "all",
                       progress: Callable[[int, int], None] | None = None):
    """A PathologyScorer trained with DP-SGD to the budget (``epsilon``, ``delta``).

    ``base_state``: the network's weights to start from (a classifier trained on public
    studies, see :func:`load_base`) instead of random ones; ``tune`` = "decoder" then keeps
    its encoder as it is and trains the decoder (fewer parameters share the noise; the
    pooled head, which only teaches the encoder, is kept too and its loss term left out).

    ``epsilon`` = inf: no noise, no clipping, same loop. ``private=False`` (only with
    ``epsilon`` = inf): the same network, batches and optimiser in plain PyTorch, without
    Opacus — the reference the ε = ∞ run must equal. The card's ``privacy`` section records
    σ (noise multiplier), the sampling rate, the steps, the accountant and the ε spent.
    """
    import torch

    from .augment import Augmentation, augment
    from .networks import as_batch, parameter_count
    from .pathology import KIND, PathologyScorer, _balanced_thresholds

    opacus = require_opacus()

    n = len(images)
    labels = np.asarray(labels, dtype=np.float32)
    if n < 2:
        raise InputError(f"differentially private training needs at least 2 studies, got {n}")
    if labels.ndim != 2 or labels.shape != (n, len(label_names)):
        raise InputError(f"expected labels [N={n}, {len(label_names)}], got {labels.shape}")
    if accountant not in ACCOUNTANTS:
        raise InputError(f"accountant: unknown {accountant!r} (expected one of "
                         f"{', '.join(ACCOUNTANTS)})")
    if not (epsilon > 0):
        raise InputError(f"epsilon: must be positive (or inf), got {epsilon}")
    if not private and not math.isinf(epsilon):
        raise InputError("private=False trains without noise: it needs epsilon = inf")
    if not 1 <= batch_size <= n:
        raise InputError(f"batch: must be between 1 and the {n} training studies, got {batch_size}")
    if physical_batch < 1 or epochs < 1:
        raise InputError("physical_batch and epochs must be at least 1")
    if not max_grad_norm > 0:
        raise InputError(f"max_grad_norm: must be positive, got {max_grad_norm}")
    delta = default_delta(n) if delta is None else float(delta)
    check_delta(delta, n)
    noisy = not math.isinf(epsilon)

    torch.manual_seed(seed)
    x_all = as_batch(images, input_size)
    y_all = torch.from_numpy(labels)
    model = dp_network(len(label_names), widths, decoder, map_stride)
    check_tune(tune, base_state is not None)
    if base_state is not None:
        model.load_state_dict({k: v.float() for k, v in base_state.items()})
    if tune == "decoder":
        # The pooled head is there to make the encoder learn the whole chest (it takes no
        # part in a prediction): with the encoder kept, its gradient would only take a share
        # of each study's clipped norm and add its own noise.
        for p in (*model.encoder.parameters(), *model.pooled_head.parameters()):
            p.requires_grad_(False)
    errors = validation_errors(model)
    if errors:  # the network is ours: a failure here is a bug, not bad input
        raise UpdpError("the network does not fit DP-SGD: " + "; ".join(errors))
    m_all = None
    if masks is not None and mask_weight > 0:
        from torch.nn import functional as F

        bits = torch.from_numpy(np.asarray(masks).astype(np.int64))
        planes = torch.stack([((bits >> j) & 1).float() for j in range(len(label_names))], 1)
        m_all = F.interpolate(planes, size=(input_size, input_size), mode="area")
    # Class weights from the counts alone would be a statistic of the private data; fixed
    # weights spend no budget.
    pos_weight = torch.full((len(label_names),), 3.0)
    peak_pos_weight = torch.ones(len(label_names))
    map_pos_weight = torch.full((len(label_names), 1, 1), float(map_positive_weight))
    augmentation = Augmentation().scaled(0.5)
    generator = torch.Generator().manual_seed(seed)

    def batch(rows):
        x = x_all[rows]
        if m_all is None:
            return augment(x, augmentation, generator), y_all[rows], None
        x, m = augment(x, augmentation, generator, masks=m_all[rows])
        return x, y_all[rows], m

    def loss_of(model, rows):
        x, y, m = batch(rows)
        return _per_study_loss(model, x, y, m, peak_pos_weight, pos_weight, map_pos_weight,
                               mask_weight, pooled_term=tune != "decoder")

    run = dp_sgd(model, n, loss_of, epsilon=epsilon, delta=delta, max_grad_norm=max_grad_norm,
                 batch_size=batch_size, physical_batch=physical_batch, epochs=epochs,
                 accountant=accountant, learning_rate=learning_rate, seed=seed,
                 private=private, progress=progress)
    net, step, losses, seconds = run.module, run.steps, run.losses, run.seconds
    noise_multiplier, sample_rate, expected_batch = (run.noise_multiplier, run.sample_rate,
                                                     run.expected_batch)
    spent = run.epsilon_spent
    net.eval()
    config = {"architecture": "updp-pathology-cnn", "input_size": input_size, "widths": list(widths),
              "decoder": decoder, "map_stride": map_stride, "label_names": list(label_names),
              "norm": "group"}
    scorer = PathologyScorer(net, config)
    # The thresholds are read from the training studies: a statistic of private data that
    # no budget covers, so a private model keeps 0.5 (not learned from the data).
    if not noisy:
        config["thresholds"] = _balanced_thresholds(scorer.predict(images), labels)
        scorer.thresholds = np.asarray(config["thresholds"], dtype=np.float32)
    finite = [v for v in losses if not math.isnan(v)]
    scorer.card = {
        "kind": KIND,
        "label_names": list(label_names),
        "input_size": input_size,
        "parameters": parameter_count(net),
        "trained_parameters": int(sum(p.numel() for p in net.parameters() if p.requires_grad)),
        "tune": tune,
        "privacy": {
            "mechanism": "DP-SGD (Opacus)" if private else "none (plain PyTorch reference)",
            "opacus_version": opacus.__version__,
            "unit": "study",
            "target_epsilon": None if math.isinf(epsilon) else epsilon,
            "epsilon_spent": None if math.isinf(spent) else round(float(spent), 4),
            "delta": delta,
            "delta_bound": largest_delta(n),
            "noise_multiplier": round(noise_multiplier, 6),
            "max_grad_norm": max_grad_norm if noisy else None,
            "clipping": "per study" if noisy else "none",
            "sampling": "Poisson",
            "sampling_rate": round(sample_rate, 6),
            "expected_batch": expected_batch,
            "physical_batch": physical_batch,
            "steps": step,
            "accountant": accountant if noisy else None,
            "validator": "passed",
        },
        "training": {
            "images": n, "epochs": epochs, "steps": step, "batch_size": batch_size,
            "learning_rate": learning_rate, "optimizer": "AdamW (no weight decay), one cycle",
            "mask_weight": mask_weight if m_all is not None else 0.0,
            "augmentation": augmentation.__dict__, "seed": seed,
            "final_loss": round(float(np.mean(finite[-20:])), 4) if finite else None,
            "seconds": round(seconds, 1),
        },
    }
    return scorer


def check_tune(tune: str, has_base: bool) -> None:
    """``tune`` is one of :data:`TUNE`, and only a run from a base keeps its encoder."""
    if tune not in TUNE:
        raise InputError(f"tune: one of {', '.join(TUNE)}, not {tune!r}")
    if tune != "all" and not has_base:
        raise InputError(f"tune: {tune!r} needs a base (pre-trained on public studies): "
                         "only a base can keep its encoder; without one, the whole network "
                         "trains")


def load_base(folder: str | os.PathLike, size: int) -> tuple[dict, dict]:
    """The weights and a description of the pathology classifier to start private training
    from: ``folder`` is what ``updp train-dp`` wrote for one ε (``eps-inf/``), or its
    ``pathology/``. It must be the private network (group normalisation, the widths of
    :data:`DP_WIDTHS`) read at ``size``. Train it on *public* studies: its training is
    outside the budget of the runs that start from it."""
    from .pathology import PathologyScorer

    folder = Path(folder)
    path = folder / PATHOLOGY_DIR if (folder / PATHOLOGY_DIR).is_dir() else folder
    try:
        scorer = PathologyScorer.load(path)
    except InputError as exc:
        raise InputError(f"{folder}: not a base for private training ({exc}); make one with "
                         "updp train-dp PUBLIC --epsilon inf") from None
    config = scorer.config
    wanted = {"norm": "group", "widths": list(DP_WIDTHS), "decoder": DP_DECODER,
              "input_size": size}
    wrong = [f"{k} {config.get(k)!r} (needs {v!r})" for k, v in wanted.items()
             if (list(config.get(k)) if k == "widths" else config.get(k)) != v]
    if wrong:
        raise InputError(f"{folder}: not a base for private training: " + ", ".join(wrong)
                         + "; make one with updp train-dp PUBLIC --epsilon inf")
    from ..core.vocabulary import FINDINGS

    if list(config["label_names"]) != list(FINDINGS):
        raise InputError(f"{folder}: the base's findings differ from the product's")
    card = scorer.card or {}
    described = {"folder": str(folder), "cohort": card.get("cohort"),
                 "training_sites": card.get("training_sites"),
                 "target_epsilon": (card.get("privacy") or {}).get("target_epsilon")}
    return scorer.model.state_dict(), described


def train_dp(cohort: str | os.PathLike, out: str | os.PathLike, *, epsilons: Sequence[float],
             delta: float | None = None, max_grad_norm: float = 1.0, batch_size: int = DP_BATCH,
             physical_batch: int = 32, epochs: int = DP_EPOCHS, accountant: str = "rdp",
             learning_rate: float = DP_LEARNING_RATE, sites: Sequence[str] | None = None,
             size: int = DP_SIZE, seed: int = 0,
             threads: int = 1, reid: str | os.PathLike | None = None,
             base: str | os.PathLike | None = None, tune: str = "all",
             progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Train one private pathology classifier per ε on ``cohort`` (a folder in the layout of
    ``updp make-cohort``, which ``updp train``'s preparation of an archive writes too), on the
    studies of ``sites`` only when given. Each goes to ``out/eps-E/`` as a scorers folder
    (``pathology/`` and a copy of the re-identification scorer ``reid``, default the shipped
    one, so ``load_scorers`` and ``updp run --scorers`` read it) with ``updp_dp.json``.
    ``base``: start every run from the classifier in that folder (see :func:`load_base`).
    Returns the summary per ε."""
    import torch

    from .. import __version__
    from ..cohort.dataset import load_cohort_images
    from ..core.files import private_folder, write_text_atomic
    from .reid import ReidScorer
    from .train import cohort_signature

    require_opacus()
    if accountant not in ACCOUNTANTS:
        raise InputError(f"accountant: unknown {accountant!r} (expected one of "
                         f"{', '.join(ACCOUNTANTS)})")
    epsilons = list(epsilons)
    if not epsilons:
        raise InputError("epsilon: give at least one budget (e.g. 1,3,8,inf)")
    cohort, out = Path(cohort), Path(out)
    reid_dir = Path(reid) if reid is not None else DEFAULT_SCORERS / REID_DIR
    ReidScorer.load(reid_dir)  # a broken re-identification scorer fails before any training
    check_tune(tune, base is not None)
    base_state, base_card = load_base(base, size) if base is not None else (None, None)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    data = load_cohort_images(cohort, size)
    all_sites = sorted(set(data.sites))
    if sites:
        unknown = sorted(set(sites) - set(all_sites))
        if unknown:
            raise InputError(f"site: {', '.join(unknown)} not in {cohort} (its sites: "
                             f"{', '.join(all_sites)})")
        data = data.subset(np.flatnonzero([s in set(sites) for s in data.sites]))
    n = len(data)
    delta = default_delta(n) if delta is None else float(delta)
    check_delta(delta, n)
    signature = cohort_signature(cohort, data)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    summary = {"cohort": signature, "training_sites": sorted(set(data.sites)),
               "studies": n, "delta": delta, "base": base_card, "runs": {}}
    private_folder(out)
    try:
        for epsilon in epsilons:
            name = epsilon_folder(epsilon)

            def report(done, total, name=name):
                if progress:
                    progress(name, done, total)

            scorer = train_pathology_dp(
                data.images, data.labels, data.label_names, data.masks, epsilon=epsilon,
                delta=delta, max_grad_norm=max_grad_norm, batch_size=batch_size,
                physical_batch=physical_batch, epochs=epochs, accountant=accountant,
                learning_rate=learning_rate, input_size=size, seed=seed,
                base_state=base_state, tune=tune, progress=report)
            scorer.card.update({"cohort": signature, "cohort_read_size": size, "base": base_card,
                                "training_sites": summary["training_sites"],
                                "updp_version": __version__, "device": "cpu", "threads": threads})
            folder = out / name
            if (folder / REID_DIR).exists():
                shutil.rmtree(folder / REID_DIR)
            scorer.save(folder / PATHOLOGY_DIR)
            shutil.copytree(reid_dir, folder / REID_DIR)
            run = {"epsilon": None if math.isinf(epsilon) else epsilon,
                   "folder": name, "privacy": scorer.card["privacy"],
                   "training_sites": summary["training_sites"],
                   "reid_source": "shipped" if reid is None else "given",
                   "base": base_card,
                   "seconds": scorer.card["training"]["seconds"]}
            import json

            write_text_atomic(folder / RUN_CARD, json.dumps(run, indent=2) + "\n", private=True)
            summary["runs"][name] = run
    finally:
        torch.set_num_threads(threads_before)
    return summary
