"""Patient re-identification: does this radiograph show the same patient as that one?

A Siamese verifier in the manner of Packhäuser et al. (Sci Rep 2022, "Deep learning-based
patient re-identification is able to exploit the biometric nature of medical chest X-ray
data"): one shared encoder maps every radiograph to an L2-normalised embedding, and two
radiographs are compared by the cosine of their embeddings. It is trained on batches of
several patients with all their studies, under the augmentations real acquisitions vary
by, so it learns the anatomy that stays with a patient — rib cage, heart and mediastinum
outline, clavicles, spine — and not one acquisition's texture.

The privacy score of a synthetic image is its similarity to the original (or its rank
among a gallery): high means the patient can still be found.
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
from ..core.metrics import pair_targets, roc_auc
from .augment import Augmentation, augment
from .checkpoint import load_state, read_scorer, save_scorer
from .networks import Encoder, as_batch, parameter_count

KIND = "reid"


class ReidNet(nn.Module):
    """Encoder, then the feature map flattened (where things are is identity) into a unit
    embedding."""

    def __init__(self, input_size: int = 64, widths: Sequence[int] = (16, 32, 64, 128),
                 embedding: int = 128, pool: str = "flatten", dropout: float = 0.1):
        super().__init__()
        self.encoder = Encoder(tuple(widths))
        cells = (input_size // self.encoder.reduction) ** 2
        self.pool = pool
        if pool == "flatten":
            self.reduce = nn.Conv2d(self.encoder.out_channels, 32, 1)
            features = 32 * cells
        elif pool == "average":
            self.reduce = nn.Identity()
            features = self.encoder.out_channels
        else:
            raise InputError(f"unknown pooling {pool!r} (flatten or average)")
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(features, embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.encoder(x)
        f = self.reduce(f).flatten(1) if self.pool == "flatten" else f.mean(dim=(2, 3))
        return F.normalize(self.head(self.dropout(f)), dim=1)


class ReidScorer:
    """A trained verifier. Images are numpy arrays [N, H, W] (or one [H, W]) of any size and
    scale; they are resized to ``input_size`` and standardised inside."""

    kind = KIND

    def __init__(self, model: ReidNet, config: dict, card: dict | None = None):
        self.model = model.eval()
        self.config = config
        self.card = card or {}
        self.input_size = int(config["input_size"])

    # --- scores ----------------------------------------------------------------------------

    def embed(self, images, batch_size: int = 64) -> np.ndarray:
        """float32 [N, D] unit embeddings."""
        x = as_batch(images, self.input_size)
        out = []
        with torch.inference_mode():
            for i in range(0, len(x), batch_size):
                out.append(self.model(x[i:i + batch_size]))
        return torch.cat(out).numpy()

    def similarity(self, a, b) -> np.ndarray:
        """Cosine similarity of each pair ``(a[k], b[k])``, in -1…1 (1: the same embedding).

        With the shipped verifier, pairs of one held-out patient's studies averaged 0.96 and
        pairs of different patients 0.00; the card's ``heldout`` figures say how well the
        two are told apart.
        """
        ea, eb = self.embed(a), self.embed(b)
        if len(ea) != len(eb):
            raise InputError(f"similarity compares pairs: got {len(ea)} and {len(eb)} images")
        return np.sum(ea * eb, axis=1)

    def similarity_matrix(self, a, b=None) -> np.ndarray:
        """Cosine similarity of every image of ``a`` with every image of ``b`` (or of ``a``)."""
        ea = self.embed(a)
        eb = ea if b is None else self.embed(b)
        return ea @ eb.T

    def verification_auc(self, images, patients: Sequence) -> float:
        """ROC AUC of telling same-patient pairs from different-patient pairs, over all pairs."""
        patients = _patients(patients, _count(images))
        sim = self.similarity_matrix(images)
        i, j, same = pair_targets(patients)
        return roc_auc(sim[i, j], same)

    def patient_best(self, queries, gallery, gallery_patients: Sequence) -> tuple[list, np.ndarray]:
        """The gallery's patients (sorted) and, for each query, its best similarity to each
        patient's gallery images [queries, patients]: the attack the scores are defined by."""
        gallery_patients = _patients(gallery_patients, _count(gallery))
        names = sorted(set(gallery_patients.tolist()))
        sim = self.similarity_matrix(queries, gallery)
        column = {name: k for k, name in enumerate(names)}
        best = np.full((sim.shape[0], len(names)), -np.inf, dtype=np.float32)
        for g, name in enumerate(gallery_patients.tolist()):
            best[:, column[name]] = np.maximum(best[:, column[name]], sim[:, g])
        return names, best

    @staticmethod
    def own_columns(names: Sequence, query_patients: Sequence) -> np.ndarray:
        """Each query patient's column in :meth:`patient_best`'s table."""
        query_patients = _patients(query_patients, len(query_patients))
        column = {name: k for k, name in enumerate(names)}
        absent = sorted(set(query_patients.tolist()) - set(column))
        if absent:
            raise InputError(f"closed_set_rank: {len(absent)} query patient(s) have no image in "
                             "the gallery")
        return np.array([column[p] for p in query_patients.tolist()], dtype=int)

    def closed_set_rank(self, queries, gallery, gallery_patients: Sequence,
                        query_patients: Sequence) -> np.ndarray:
        """Rank (1 = re-identified) of each query's own patient among the gallery's patients,
        by the query's best similarity to each patient's gallery images; ties count against."""
        query_patients = _patients(query_patients, _count(queries))
        names = sorted(set(_patients(gallery_patients, _count(gallery)).tolist()))
        own_columns = self.own_columns(names, query_patients)  # refused before any work
        _, best = self.patient_best(queries, gallery, gallery_patients)
        return rank_of_own(best, own_columns)

    @property
    def digest(self) -> str:
        """A short fingerprint of the weights: what a calibration was measured with."""
        import hashlib

        h = hashlib.sha256()
        for name, tensor in sorted(self.model.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().to(torch.float32).cpu().numpy().tobytes())
        return h.hexdigest()[:16]

    # --- files -----------------------------------------------------------------------------

    def save(self, out: str | os.PathLike, half: bool = True) -> Path:
        return save_scorer(out, self.model, self.config, {**self.card, "kind": KIND}, half=half)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ReidScorer:
        config, state, card = read_scorer(path, KIND)
        try:
            model = ReidNet(config["input_size"], config["widths"], config["embedding"],
                            config.get("pool", "flatten"))
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path}: config.json does not describe a re-identification "
                             "network") from None
        load_state(Path(path), model, state)
        return cls(model, config, card)


def rank_of_own(best: np.ndarray, own_columns: np.ndarray) -> np.ndarray:
    """Rank (1 = first) of each row's own column in a table of scores; ties count against."""
    own = best[np.arange(len(best)), own_columns]
    return np.sum(best >= own[:, None], axis=1)


def _count(images) -> int:
    """How many images a 2-D image, a stack [N, H, W] or a list of 2-D images holds."""
    if isinstance(images, (list, tuple)):
        return len(images)
    return 1 if np.ndim(images) == 2 else len(images)


def _patients(patients: Sequence, n: int) -> np.ndarray:
    array = np.asarray(list(patients))
    if array.ndim != 1 or len(array) != n:
        raise InputError(f"expected one patient id per image: {n} images, {array.size} ids")
    return array


# --- training ------------------------------------------------------------------------------

def train_reid(images: np.ndarray, patients: Sequence, *, input_size: int = 64,
               widths: Sequence[int] = (16, 32, 64, 128), embedding: int = 128,
               pool: str = "flatten", steps: int = 1500, patients_per_batch: int = 16,
               images_per_patient: int = 4, learning_rate: float = 2e-3,
               weight_decay: float = 5e-4, temperature: float = 0.1,
               augmentation: Augmentation | None = None, seed: int = 0,
               progress: Callable[[int, int], None] | None = None) -> ReidScorer:
    """Train a verifier on ``images`` [N, H, W] of ``patients`` (one id per image).

    Each step draws ``patients_per_batch`` patients with ``images_per_patient`` of their
    studies each (drawn again, augmented differently, where a patient has fewer) and
    applies a supervised contrastive loss on the cosine similarities: every other image of
    the same patient is a positive, every image of another patient a negative. Patients
    with a single image are used as negatives only.
    """
    patients = _patients(patients, len(images))
    names, index = np.unique(patients, return_inverse=True)
    if len(names) < 2:
        raise InputError("re-identification training needs at least two patients")
    by_patient = [np.flatnonzero(index == k) for k in range(len(names))]
    if not any(len(b) >= 2 for b in by_patient):
        raise InputError("re-identification training needs a patient with two or more images")
    augmentation = augmentation if augmentation is not None else Augmentation()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    x_all = as_batch(images, input_size)
    model = ReidNet(input_size, widths, embedding, pool)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    schedule = _warmup_cosine(optimizer, steps)
    per_batch = min(patients_per_batch, len(names))
    order: list[int] = []
    started = time.perf_counter()
    losses = []
    model.train()
    for step in range(steps):
        if len(order) < per_batch:
            order += rng.permutation(len(names)).tolist()
        chosen, order = order[:per_batch], order[per_batch:]
        rows, owner = [], []
        for k in chosen:
            pool_k = by_patient[k]
            pick = rng.choice(pool_k, size=images_per_patient, replace=len(pool_k) < images_per_patient)
            rows += pick.tolist()
            owner += [k] * images_per_patient
        x = augment(x_all[rows], augmentation, generator)
        z = model(x)
        loss = supervised_contrastive(z, torch.tensor(owner), temperature)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if progress:
            progress(step + 1, steps)
    model.eval()
    config = {"architecture": "updp-reid-cnn", "input_size": input_size, "widths": list(widths),
              "embedding": embedding, "pool": pool}
    card = {
        "kind": KIND,
        "similarity": "cosine of unit embeddings, -1…1",
        "input_size": input_size,
        "parameters": parameter_count(model),
        "training": {
            "images": len(patients), "patients": len(names), "steps": steps,
            "patients_per_batch": per_batch, "images_per_patient": images_per_patient,
            "learning_rate": learning_rate, "weight_decay": weight_decay,
            "temperature": temperature, "augmentation": augmentation.__dict__, "seed": seed,
            "final_loss": round(float(np.mean(losses[-20:])), 4),
            "seconds": round(time.perf_counter() - started, 1),
        },
    }
    return ReidScorer(model, config, card)


def supervised_contrastive(z: torch.Tensor, owner: torch.Tensor, temperature: float) -> torch.Tensor:
    """Khosla et al.'s supervised contrastive loss on unit embeddings ``z`` [B, D]."""
    logits = z @ z.T / temperature
    self_mask = torch.eye(len(z), dtype=torch.bool)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (owner[:, None] == owner[None]) & ~self_mask
    has_positive = positive.any(1)
    mean_log_prob = (log_prob.masked_fill(~positive, 0).sum(1) / positive.sum(1).clamp_min(1))
    return -mean_log_prob[has_positive].mean()


def _warmup_cosine(optimizer, steps: int):
    warmup = max(1, steps // 20)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + np.cos(np.pi * min(1.0, (step - warmup) / max(1, steps - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


__all__ = ["KIND", "ReidNet", "ReidScorer", "supervised_contrastive", "train_reid"]
