"""A learned report labeller: a small BERT pre-trained on public text, LoRA-tuned with DP-SGD.

Three steps, each a command and a function here:

1. ``updp pretrain-report-encoder`` (:func:`pretrain_encoder`): a WordPiece tokenizer
   (``tokenizers``) and a small BERT (``transformers.BertConfig``, random weights: nothing is
   downloaded) trained with the masked-language-model objective on *public* text only: the
   reports of a synthetic cohort and the Indiana University chest X-ray reports (OpenI; by
   default their development half, odd report numbers, so the test half stays unseen).
2. ``updp train-report-classifier`` (:func:`train_report_classifiers`): on a cohort's
   reports (the "hospital" data; labels: the cohort's ground-truth findings), LoRA adapters
   (``peft``) on the encoder's attention query and value projections and a head that
   scores every token from the last hidden states of it and the few tokens before it
   (standardised by statistics of the public text; "no" before a finding counts), pooled
   per finding by a soft maximum over the tokens, multi-label over
   :data:`~updp_napari.core.vocabulary.FINDINGS`, trained with DP-SGD by
   :func:`updp_napari.scoring.dp.dp_sgd` (the loop of ``updp train-dp``: Poisson sampling,
   physical batches, the noise searched for the budget, ε = ∞ the same loop without noise
   or clipping). Only the adapters and the head are
   trained, so only they get per-report gradients.
3. ``updp evaluate-report-classifier`` (:func:`evaluate_report_classifiers`): weighted and
   per-finding F1 per ε on a held-out cohort's reports and on the Indiana University
   reports (MeSH major terms mapped as ``updp label-reports --iu`` maps them), beside the rule
   labeller's F1 on the same reports.

Pitfalls the code and its tests guard against:

- The encoder goes to its device *before* ``peft`` wraps it: adapters made on one device and
  trained after a move are other tensors than the optimiser holds, and never change. The
  run checks that the adapters moved and fails if not.
- The loss is one value per report (binary cross-entropy averaged over the findings, not
  over the batch): DP-SGD clips each report's gradient.
- Position and token-type ids are passed explicitly, one row per report: BERT's buffered
  ids have a batch dimension of one, which per-example gradient hooks would read as a batch.
- The decision threshold stays 0.5 at every ε: a threshold read from the training reports
  would be a statistic of private data no budget covers.

The unit of privacy is one report (one study); a patient with k studies is protected at
about k·ε. The tokenizer and the encoder see public text only, so they spend no budget.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import InputError, UpdpError
from ..core.vocabulary import FINDINGS
from ..labels.report import precision_recall_f1
from .dp import (
    ACCOUNTANTS,
    EPSILON_TOLERANCE,
    check_delta,
    default_delta,
    dp_sgd,
    epsilon_folder,
    largest_delta,
    require_opacus,
    run_folders,
)

ENCODER_KIND = "updp-report-encoder"
CLASSIFIER_KIND = "updp-report-classifier"
ENCODER_CARD = "updp_report_encoder.json"
CLASSIFIER_CARD = "updp_report_classifier.json"
HEAD_FILE = "head.safetensors"
POOLED_FILE = "pooled_statistics.safetensors"
#: How many public texts the pooled states' mean and spread are measured on.
POOLED_TEXTS = 1000
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
#: The encoder ``updp pretrain-report-encoder`` builds by default: 2 layers of width 128.
VOCAB_SIZE, HIDDEN, LAYERS, HEADS, INTERMEDIATE, MAX_LENGTH = 3000, 128, 2, 2, 256, 320
PRETRAIN_EPOCHS, PRETRAIN_BATCH, PRETRAIN_LEARNING_RATE, MASK_PROBABILITY = 8, 32, 1e-3, 0.15
#: Defaults of ``updp train-report-classifier`` (the library's too).
LORA_R, CLASSIFIER_BATCH, CLASSIFIER_EPOCHS, CLASSIFIER_LEARNING_RATE = 8, 64, 30, 1e-2
#: Each report's gradient is clipped to this norm: at the same budget, 0.1 gave a better F1
#: than 1 (docs/MEASUREMENTS.md, "A report classifier with privacy").
CLASSIFIER_MAX_GRAD_NORM = 0.1
LORA_TARGETS = ("query", "value")
#: How many tokens the head reads for each token's score: the token and the ones before it.
HEAD_WINDOW = 6
THRESHOLD = 0.5
#: Which half of the Indiana University reports pre-training reads by default.
IU_HALVES = ("development", "test", "all")


@contextmanager
def _quiet_transformers():
    """transformers' and peft's progress bars and notices off (they would fill a command's
    output), put back as they were."""
    import warnings

    from transformers.utils import logging

    bars = logging.is_progress_bar_enabled()
    verbosity = logging.get_verbosity()
    logging.disable_progress_bar()
    logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
            yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def require_peft():
    """The peft module, or an UpdpError saying how to install it."""
    try:
        import peft
    except ImportError:
        raise UpdpError("the report classifier needs peft and transformers: pip install "
                        "'updp-napari[dp,ner]' (peft==0.21.2)") from None
    return peft


# --- reading text --------------------------------------------------------------------------

def is_cohort(path: Path) -> bool:
    from ..cohort.generate import GROUND_TRUTH

    return (Path(path) / GROUND_TRUTH).is_file()


def is_openi(path: Path) -> bool:
    path = Path(path)
    if path.is_file():
        return path.name.endswith((".tgz", ".tar.gz"))
    return path.is_dir() and (path / "ecgen-radiology").is_dir()


def cohort_reports(cohort: str | os.PathLike) -> tuple[list[str], list[str], np.ndarray]:
    """A cohort's reports: study ids, texts and the ground-truth labels [N, len(FINDINGS)]."""
    from ..cohort.generate import read_ground_truth
    from ..ingest import read_report

    cohort = Path(cohort)
    if not is_cohort(cohort):
        raise InputError(f"{cohort}: not a cohort folder (no ground truth; made by updp "
                         "make-cohort?)")
    records = read_ground_truth(cohort)
    if not records:
        raise InputError(f"{cohort}: the cohort holds no studies")
    texts = [read_report(cohort / r["report"]) for r in records]
    labels = np.array([[int(r["labels"].get(f, 0)) for f in FINDINGS] for r in records],
                      dtype=np.float32)
    return [r["study_id"] for r in records], texts, labels


def iu_reports(path: str | os.PathLike, half: str = "all"):
    """The Indiana University reports that were indexed (MeSH terms other than "No Indexing")
    and hold text, of ``half`` (development: odd numbers, test: even, or all)."""
    from ..labels.report import MESH_NOT_INDEXED, read_openi

    if half not in IU_HALVES:
        raise InputError(f"iu_half: one of {', '.join(IU_HALVES)}, not {half!r}")
    reports = [r for r in read_openi(path) if r.text.strip() and MESH_NOT_INDEXED not in r.mesh]
    return [r for r in reports if half == "all" or r.half == half]


def public_texts(sources: Sequence[str | os.PathLike], iu_half: str = "development"
                 ) -> tuple[list[str], list[dict]]:
    """The texts of ``sources`` for pre-training, and what each source gave (kind, path,
    count). A source is a cohort folder (its reports), the Indiana University reports
    (``NLMCXR_reports.tgz`` or its folder; ``iu_half`` of them) or a folder of ``*.txt``
    reports / a ``.jsonl`` corpus."""
    from ..labels.report import read_report_inputs

    texts: list[str] = []
    described = []
    for source in map(Path, sources):
        if not source.exists():
            raise InputError(f"{source}: no such file or folder")
        if is_cohort(source):
            part, kind = cohort_reports(source)[1], "cohort"
        elif is_openi(source):
            part, kind = [r.text for r in iu_reports(source, iu_half)], f"openi ({iu_half})"
        else:
            items, _skipped = read_report_inputs(source)
            part, kind = [t for _, t in items], "reports"
        part = [t for t in part if t.strip()]
        if not part:
            raise InputError(f"{source}: no report text found")
        texts.extend(part)
        described.append({"source": str(source), "kind": kind, "reports": len(part)})
    if not texts:
        raise InputError("give at least one source of public report text")
    return texts, described


# --- tokenizer and encoder -----------------------------------------------------------------

def train_tokenizer(texts: Sequence[str], vocab_size: int = VOCAB_SIZE):
    """A BERT WordPiece tokenizer (lower case) learned from ``texts``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertTokenizer

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(list(texts), trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False))
    vocab = dict(sorted(tok.get_vocab().items(), key=lambda kv: kv[1]))
    # transformers 5: vocab=, not vocab_file= (which silently gives an empty vocabulary).
    return BertTokenizer(vocab=vocab, do_lower_case=True)


def _encode(tokenizer, texts: Sequence[str], max_length: int):
    """Token ids [N, max_length] and attention masks, padded to the longest text."""
    batch = tokenizer(list(texts), truncation=True, max_length=max_length, padding="longest",
                      return_tensors="pt")
    return batch["input_ids"], batch["attention_mask"]


def _ids(attention_mask):
    """Explicit position and token-type ids, one row per text."""
    import torch

    n, length = attention_mask.shape
    positions = torch.arange(length).unsqueeze(0).repeat(n, 1)
    return positions, torch.zeros_like(attention_mask)


def pooled_statistics(encoder, tokenizer, texts: Sequence[str], max_length: int,
                      batch_size: int = 32):
    """Mean and standard deviation [hidden] of the encoder's mean-pooled last states over
    ``texts``. Measured on public text when the encoder is made, they standardise the
    features the classifier's head reads: the pooled states share a large common part, and
    a head on raw states learns little in the few steps a private run affords."""
    import torch

    pooled = []
    encoder.eval()
    with torch.no_grad():
        for k in range(0, len(texts), batch_size):
            ids, attention = _encode(tokenizer, texts[k:k + batch_size], max_length)
            positions, types = _ids(attention)
            states = encoder(input_ids=ids, attention_mask=attention, position_ids=positions,
                             token_type_ids=types)[0]
            pooled.append(_mean_pool(states, attention))
    pooled = torch.cat(pooled)
    return pooled.mean(0), pooled.std(0).clamp(min=1e-4)


def _mean_pool(states, attention_mask):
    import torch

    weight = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * weight).sum(1) / torch.clamp(weight.sum(1), min=1.0)


def pretrain_encoder(sources: Sequence[str | os.PathLike], out: str | os.PathLike, *,
                     iu_half: str = "development", vocab_size: int = VOCAB_SIZE,
                     hidden: int = HIDDEN, layers: int = LAYERS, heads: int = HEADS,
                     intermediate: int = INTERMEDIATE, max_length: int = MAX_LENGTH,
                     epochs: int = PRETRAIN_EPOCHS, batch_size: int = PRETRAIN_BATCH,
                     learning_rate: float = PRETRAIN_LEARNING_RATE, seed: int = 0,
                     threads: int = 1, progress: Callable[[int, int], None] | None = None
                     ) -> dict:
    """Tokenizer and BERT encoder learned from the public text of ``sources`` (see
    :func:`public_texts`) with the masked-language-model objective; written to ``out`` in the
    ``save_pretrained`` layout with ``updp_report_encoder.json``. Returns the card. One text
    in twenty (at least one) is held out to measure the masked-token loss and accuracy."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from .. import __version__
    from ..core.files import private_folder, write_text_atomic

    if min(vocab_size, hidden, layers, heads, intermediate, epochs, batch_size) < 1:
        raise InputError("vocab_size, hidden, layers, heads, intermediate, epochs and "
                         "batch_size must be at least 1")
    if hidden % heads:
        raise InputError(f"hidden: {hidden} is not a multiple of heads ({heads})")
    if max_length < 8:
        raise InputError(f"max_length: at least 8 tokens, got {max_length}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    texts, described = public_texts(sources, iu_half)
    started = time.perf_counter()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        torch.manual_seed(seed)
        tokenizer = train_tokenizer(texts, vocab_size)
        config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden,
                            num_hidden_layers=layers, num_attention_heads=heads,
                            intermediate_size=intermediate, max_position_embeddings=max_length,
                            pad_token_id=tokenizer.pad_token_id)
        model = BertForMaskedLM(config)
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(texts))
        held = order[:max(1, len(texts) // 20)] if len(texts) > 1 else order[:0]
        train = order[len(held):]
        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
        steps_per_epoch = math.ceil(len(train) / batch_size)
        total = epochs * steps_per_epoch
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate,
                                                       total_steps=total, pct_start=0.1)
        special = torch.tensor([tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS])
        mask_id = tokenizer.convert_tokens_to_ids("[MASK]")

        def masked_loss(rows, train_mode=True):
            ids, attention = _encode(tokenizer, [texts[i] for i in rows], max_length)
            positions, types = _ids(attention)
            choose = (torch.rand(ids.shape, generator=generator) < MASK_PROBABILITY) \
                & ~torch.isin(ids, special)
            if not choose.any():
                return None, 0, 0
            inputs = ids.clone()
            draw = torch.rand(ids.shape, generator=generator)
            inputs[choose & (draw < 0.8)] = mask_id
            swap = choose & (draw >= 0.8) & (draw < 0.9)
            inputs[swap] = torch.randint(len(SPECIAL_TOKENS), len(tokenizer), (int(swap.sum()),),
                                         generator=generator)
            hidden_states = model.bert(input_ids=inputs, attention_mask=attention,
                                       token_type_ids=types, position_ids=positions)[0]
            logits = model.cls(hidden_states[choose])  # only where a token was chosen
            target = ids[choose]
            loss = torch.nn.functional.cross_entropy(logits, target)
            return loss, int((logits.argmax(-1) == target).sum()), int(choose.sum())

        losses = []
        step = 0
        model.train()
        for _ in range(epochs):
            shuffled = train[rng.permutation(len(train))]
            for k in range(steps_per_epoch):
                loss, _, _ = masked_loss(shuffled[k * batch_size:(k + 1) * batch_size])
                if loss is not None:
                    optimizer.zero_grad()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    optimizer.step()
                    losses.append(float(loss.detach()))
                schedule.step()
                step += 1
                if progress:
                    progress(step, total)
        model.eval()
        held_loss = held_accuracy = None
        if len(held):
            generator.manual_seed(seed + 1)
            total_loss = correct = count = 0
            with torch.no_grad():
                for k in range(0, len(held), batch_size):
                    loss, right, n = masked_loss(held[k:k + batch_size])
                    if loss is not None:
                        total_loss += float(loss) * n
                        correct += right
                        count += n
            if count:
                held_loss, held_accuracy = total_loss / count, correct / count
        sample = order[:POOLED_TEXTS]
        mean, std = pooled_statistics(model.bert, tokenizer, [texts[i] for i in sample],
                                      max_length)
        private_folder(out)
        with _quiet_transformers():
            model.bert.save_pretrained(out)
            tokenizer.save_pretrained(out)
        from safetensors.torch import save_file

        save_file({"mean": mean.contiguous(), "std": std.contiguous()}, str(out / POOLED_FILE))
    finally:
        torch.set_num_threads(threads_before)
    card = {
        "kind": ENCODER_KIND, "updp_version": __version__,
        "architecture": {"vocab_size": len(tokenizer), "hidden": hidden, "layers": layers,
                         "heads": heads, "intermediate": intermediate, "max_length": max_length,
                         "parameters": int(sum(p.numel() for p in model.bert.parameters()))},
        "public_text": described, "texts": len(texts), "held_out": int(len(held)),
        "pooled_statistics": {"texts": int(min(len(texts), POOLED_TEXTS)),
                              "file": POOLED_FILE},
        "training": {"objective": f"masked language model ({MASK_PROBABILITY:g} of tokens)",
                     "epochs": epochs, "steps": step, "batch_size": batch_size,
                     "learning_rate": learning_rate, "seed": seed,
                     "final_loss": round(float(np.mean(losses[-20:])), 4) if losses else None,
                     "held_out_loss": None if held_loss is None else round(held_loss, 4),
                     "held_out_accuracy": None if held_accuracy is None else
                     round(held_accuracy, 4),
                     "seconds": round(time.perf_counter() - started, 1), "threads": threads},
    }
    write_text_atomic(out / ENCODER_CARD, json.dumps(card, indent=2) + "\n")
    return card


def read_encoder_card(folder: str | os.PathLike) -> dict:
    folder = Path(folder)
    try:
        card = json.loads((folder / ENCODER_CARD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise InputError(f"{folder}: not a report encoder (no readable {ENCODER_CARD}; make "
                         "one with updp pretrain-report-encoder)") from None
    if card.get("kind") != ENCODER_KIND:
        raise InputError(f"{folder}: {ENCODER_CARD} is not a report encoder's card")
    return card


def _load_encoder(folder: Path):
    from transformers import BertModel, BertTokenizer

    card = read_encoder_card(folder)
    # No dropout while fine-tuning: the ε = ∞ run and plain training then see the same
    # numbers, and the noise of DP-SGD is regularisation enough.
    with _quiet_transformers():
        encoder = BertModel.from_pretrained(folder, hidden_dropout_prob=0.0,
                                            attention_probs_dropout_prob=0.0,
                                            add_pooling_layer=False, local_files_only=True)
        tokenizer = BertTokenizer.from_pretrained(folder, local_files_only=True)
    from safetensors.torch import load_file

    try:
        stats = load_file(str(folder / POOLED_FILE))
    except (OSError, ValueError):
        raise InputError(f"{folder}: {POOLED_FILE} missing or unreadable; pre-train the "
                         "encoder again with updp pretrain-report-encoder") from None
    return encoder, tokenizer, card, stats


# --- the classifier ------------------------------------------------------------------------

def _network(encoder, labels: int, stats: dict, window: int = HEAD_WINDOW):
    """The encoder's last states standardised by the public text's statistics (``stats``:
    ``mean``, ``std``; fixed), a head scoring every token for every finding from the states
    of that token and the ``window`` - 1 before it (a convolution along the report: "no",
    "without" or "resolved" beside a finding's name change its score, which a token's own
    state from a small encoder barely tells), and a report's score per finding the
    log-mean-exp of its tokens' scores: a soft maximum, so a finding stated in one sentence
    of a long report is not averaged away, as it is when the states are mean-pooled first
    (docs/MEASUREMENTS.md). ``window`` = 1 is a linear head on each token alone."""
    import math

    import torch
    from torch import nn

    class ReportNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder
            self.register_buffer("pooled_mean", stats["mean"].clone())
            self.register_buffer("pooled_std", stats["std"].clone())
            self.head = nn.Conv1d(encoder.config.hidden_size, labels, window,
                                  padding=window - 1)

        def forward(self, input_ids, attention_mask, position_ids, token_type_ids):
            states = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  position_ids=position_ids, token_type_ids=token_type_ids)[0]
            keep = attention_mask.unsqueeze(-1)
            states = (states - self.pooled_mean) / self.pooled_std * keep.to(states.dtype)
            # Padded both sides, the first len(report) outputs each read a token and the
            # ones before it: padding after a report never reaches its scores.
            scores = self.head(states.transpose(1, 2))[:, :, :states.shape[1]].transpose(1, 2)
            scores = scores.masked_fill(keep == 0, -math.inf)
            tokens = attention_mask.sum(1, keepdim=True).clamp(min=1).to(scores.dtype)
            return torch.logsumexp(scores, dim=1) - torch.log(tokens)

    return ReportNet()


@dataclass
class ReportClassifier:
    """A trained report classifier: ``predict(texts)`` gives finding probabilities [N, F]."""

    network: object
    tokenizer: object
    card: dict
    lora: dict | None = None  # the trained adapter tensors (after training only)

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(self.card["label_names"])

    @property
    def threshold(self) -> float:
        """The probability at which a finding is called positive (the card's)."""
        return float(self.card.get("threshold", THRESHOLD))

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        import torch

        max_length = self.card["max_length"]
        out = []
        self.network.eval()
        with torch.no_grad():
            for k in range(0, len(texts), batch_size):
                ids, attention = _encode(self.tokenizer, texts[k:k + batch_size], max_length)
                positions, types = _ids(attention)
                out.append(torch.sigmoid(self.network(ids, attention, positions, types)).numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.label_names)), np.float32)

    def save(self, folder: str | os.PathLike) -> Path:
        """The encoder with the adapters merged in (``save_pretrained``), the tokenizer, the
        head (safetensors) and the card: loadable without peft."""
        from safetensors.torch import save_file

        from ..core.files import private_folder, write_text_atomic

        folder = Path(folder)
        private_folder(folder)
        with _quiet_transformers():
            self.network.encoder.save_pretrained(folder)
            self.tokenizer.save_pretrained(folder)
        head = {f"head.{k}": v for k, v in self.network.head.state_dict().items()}
        head.update({"pooled_mean": self.network.pooled_mean,
                     "pooled_std": self.network.pooled_std})
        save_file({k: v.detach().cpu().contiguous() for k, v in head.items()},
                  str(folder / HEAD_FILE))
        write_text_atomic(folder / CLASSIFIER_CARD, json.dumps(self.card, indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> ReportClassifier:
        from safetensors.torch import load_file
        from transformers import BertModel, BertTokenizer

        folder = Path(folder)
        try:
            card = json.loads((folder / CLASSIFIER_CARD).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise InputError(f"{folder}: not a report classifier (no readable "
                             f"{CLASSIFIER_CARD})") from None
        if card.get("kind") != CLASSIFIER_KIND:
            raise InputError(f"{folder}: {CLASSIFIER_CARD} is not a report classifier's card")
        try:
            with _quiet_transformers():
                encoder = BertModel.from_pretrained(folder, add_pooling_layer=False,
                                                    local_files_only=True)
                tokenizer = BertTokenizer.from_pretrained(folder, local_files_only=True)
            head = load_file(str(folder / HEAD_FILE))
            weights = {k[len("head."):]: v for k, v in head.items() if k.startswith("head.")}
            if weights.get("weight") is not None and weights["weight"].dim() == 2:
                weights["weight"] = weights["weight"].unsqueeze(-1)  # a linear head: window 1
            network = _network(encoder, len(card["label_names"]),
                               {"mean": head["pooled_mean"], "std": head["pooled_std"]},
                               window=int(weights["weight"].shape[-1]))
            network.head.load_state_dict(weights)
        except (OSError, ValueError, RuntimeError, KeyError) as err:
            raise InputError(f"{folder}: the report classifier cannot be loaded "
                             f"({type(err).__name__})") from None
        network.eval()
        return cls(network, tokenizer, card)


def lora_network(base: str | os.PathLike, lora_r: int = LORA_R, device: str = "cpu",
                 head_window: int = HEAD_WINDOW):
    """The network to tune: the encoder of ``base`` frozen, LoRA adapters of rank ``lora_r``
    on its query and value projections, a head over windows of ``head_window`` tokens' last
    states (see :func:`_network`);
    returns ``(network, tokenizer, encoder card)``. The network's forward takes
    ``(input_ids, attention_mask, position_ids, token_type_ids)`` and gives logits [N, F]."""
    peft = require_peft()
    encoder, tokenizer, encoder_card, stats = _load_encoder(Path(base))
    # The device first, then peft: adapters made before a move are not the tensors trained.
    encoder.to(device)
    for p in encoder.parameters():
        p.requires_grad_(False)
    lora = peft.LoraConfig(r=lora_r, lora_alpha=2 * lora_r, lora_dropout=0.0, bias="none",
                           target_modules=list(LORA_TARGETS))
    with _quiet_transformers():
        encoder = peft.get_peft_model(encoder, lora)
    network = _network(encoder, len(FINDINGS), stats, head_window)
    # The head starts at zero: every finding at probability 0.5 and no large first losses,
    # whose clipped gradients a private run would spend its first steps undoing.
    from torch.nn import init

    init.zeros_(network.head.weight)
    init.zeros_(network.head.bias)
    return network.to(device), tokenizer, encoder_card


def _lora_tensors(model) -> dict:
    return {name: p.detach().clone() for name, p in model.named_parameters() if "lora_" in name}


def train_report_classifier(texts: Sequence[str], labels: np.ndarray, base: str | os.PathLike,
                            *, epsilon: float, delta: float | None = None,
                            lora_r: int = LORA_R,
                            max_grad_norm: float = CLASSIFIER_MAX_GRAD_NORM,
                            batch_size: int = CLASSIFIER_BATCH, physical_batch: int = 32,
                            epochs: int = CLASSIFIER_EPOCHS, accountant: str = "rdp",
                            learning_rate: float = CLASSIFIER_LEARNING_RATE, seed: int = 0,
                            private: bool = True, device: str | None = None,
                            head_window: int = HEAD_WINDOW,
                            progress: Callable[[int, int], None] | None = None
                            ) -> ReportClassifier:
    """A :class:`ReportClassifier` tuned on ``texts`` (the private reports) with ``labels``
    [N, len(FINDINGS)] from the encoder folder ``base``, by DP-SGD to (``epsilon``,
    ``delta``). ``epsilon`` = inf: no noise, no clipping; ``private=False`` (ε = inf only):
    plain PyTorch over the same batches. The card's ``privacy`` section records σ, the
    sampling rate, the steps, the accountant, the ε spent and δ."""
    import torch

    peft = require_peft()
    opacus = require_opacus()
    n = len(texts)
    labels = np.asarray(labels, dtype=np.float32)
    if n < 2:
        raise InputError(f"the report classifier needs at least 2 training reports, got {n}")
    if labels.shape != (n, len(FINDINGS)):
        raise InputError(f"expected labels [N={n}, {len(FINDINGS)}], got {labels.shape}")
    if accountant not in ACCOUNTANTS:
        raise InputError(f"accountant: unknown {accountant!r} (expected one of "
                         f"{', '.join(ACCOUNTANTS)})")
    if not epsilon > 0:
        raise InputError(f"epsilon: must be positive (or inf), got {epsilon}")
    if not private and not math.isinf(epsilon):
        raise InputError("private=False trains without noise: it needs epsilon = inf")
    if not 1 <= batch_size <= n:
        raise InputError(f"batch: must be between 1 and the {n} training reports, got "
                         f"{batch_size}")
    if physical_batch < 1 or epochs < 1:
        raise InputError("physical_batch and epochs must be at least 1")
    if lora_r < 1:
        raise InputError(f"lora_r: the adapters' rank must be at least 1, got {lora_r}")
    if head_window < 1:
        raise InputError(f"head_window: the head reads at least 1 token, got {head_window}")
    if not max_grad_norm > 0:
        raise InputError(f"max_grad_norm: must be positive, got {max_grad_norm}")
    delta = default_delta(n) if delta is None else float(delta)
    check_delta(delta, n)
    noisy = not math.isinf(epsilon)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")

    torch.manual_seed(seed)
    model, tokenizer, encoder_card = lora_network(base, lora_r, device, head_window)
    max_length = encoder_card["architecture"]["max_length"]
    before = _lora_tensors(model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    ids_all, attention_all = _encode(tokenizer, texts, max_length)
    y_all = torch.from_numpy(labels)

    def loss_of(net, rows):
        attention = attention_all[rows]
        keep = int(attention.sum(1).max())  # pad to the longest report of the batch only
        attention = attention[:, :keep].to(device)
        ids = ids_all[rows][:, :keep].to(device)
        positions, types = _ids(attention)
        logits = net(ids, attention, positions.to(device), types.to(device))
        # One loss per report (its findings averaged): what DP-SGD clips.
        return torch.nn.functional.binary_cross_entropy_with_logits(
            logits, y_all[rows].to(device), reduction="none").mean(1)

    run = dp_sgd(model, n, loss_of, epsilon=epsilon, delta=delta, max_grad_norm=max_grad_norm,
                 batch_size=batch_size, physical_batch=physical_batch, epochs=epochs,
                 accountant=accountant, learning_rate=learning_rate, seed=seed,
                 private=private, progress=progress)
    model = run.module
    after = _lora_tensors(model)
    change = max(float((after[k] - before[k]).abs().max()) for k in before)
    if run.steps and change == 0:
        raise UpdpError("the LoRA adapters did not change in training (were they made "
                        "before the encoder moved to its device?)")
    model.encoder = model.encoder.merge_and_unload()
    model.to("cpu").eval()
    finite = [v for v in run.losses if not math.isnan(v)]
    card = {
        "kind": CLASSIFIER_KIND, "label_names": list(FINDINGS), "max_length": max_length,
        "threshold": THRESHOLD,
        "encoder": {"architecture": encoder_card["architecture"],
                    "public_text": encoder_card["public_text"]},
        "head": {"kind": "convolution over the tokens, soft maximum over the report",
                 "window": head_window,
                 "parameters": int(sum(p.numel() for p in model.head.parameters()))},
        "lora": {"r": lora_r, "alpha": 2 * lora_r, "targets": list(LORA_TARGETS),
                 "trainable_parameters": int(trainable), "largest_change": round(change, 6),
                 "peft_version": peft.__version__, "merged": True},
        "privacy": {
            "mechanism": "DP-SGD (Opacus)" if private else "none (plain PyTorch reference)",
            "opacus_version": opacus.__version__, "unit": "report (one study)",
            "target_epsilon": None if not noisy else epsilon,
            "epsilon_spent": None if math.isinf(run.epsilon_spent) else
            round(float(run.epsilon_spent), 4),
            "epsilon_tolerance": EPSILON_TOLERANCE,
            "delta": delta, "delta_bound": largest_delta(n),
            "noise_multiplier": round(run.noise_multiplier, 6),
            "max_grad_norm": max_grad_norm if noisy else None,
            "clipping": "per report" if noisy else "none", "sampling": "Poisson",
            "sampling_rate": round(run.sample_rate, 6), "expected_batch": run.expected_batch,
            "physical_batch": physical_batch, "steps": run.steps,
            "accountant": accountant if noisy else None,
        },
        "training": {"reports": n, "epochs": epochs, "steps": run.steps,
                     "batch_size": batch_size, "learning_rate": learning_rate,
                     "optimizer": "AdamW (no weight decay), one cycle", "seed": seed,
                     "device": device,
                     "final_loss": round(float(np.mean(finite[-20:])), 4) if finite else None,
                     "seconds": round(run.seconds, 1)},
    }
    return ReportClassifier(model, tokenizer, card, after)


def train_report_classifiers(cohort: str | os.PathLike, out: str | os.PathLike, *,
                             base: str | os.PathLike, epsilons: Sequence[float],
                             delta: float | None = None, lora_r: int = LORA_R,
                             max_grad_norm: float = CLASSIFIER_MAX_GRAD_NORM,
                             batch_size: int = CLASSIFIER_BATCH,
                             physical_batch: int = 32, epochs: int = CLASSIFIER_EPOCHS,
                             accountant: str = "rdp",
                             learning_rate: float = CLASSIFIER_LEARNING_RATE, seed: int = 0,
                             threads: int = 1, head_window: int = HEAD_WINDOW,
                             progress: Callable[[str, int, int], None] | None = None) -> dict:
    """One report classifier per ε on the reports of ``cohort`` (labels: its ground truth),
    each in ``out/eps-E/``; returns the summary per ε."""
    import torch

    from .. import __version__

    epsilons = list(epsilons)
    if not epsilons:
        raise InputError("epsilon: give at least one budget (e.g. 1,8,inf)")
    out, base = Path(out), Path(base)
    read_encoder_card(base)  # a wrong base fails before any reading
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    _ids_, texts, labels = cohort_reports(cohort)
    n = len(texts)
    delta = default_delta(n) if delta is None else float(delta)
    check_delta(delta, n)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    summary = {"cohort": str(cohort), "reports": n, "delta": delta, "base": str(base),
               "runs": {}}
    try:
        for epsilon in epsilons:
            name = epsilon_folder(epsilon)

            def report(done, total, name=name):
                if progress:
                    progress(name, done, total)

            classifier = train_report_classifier(
                texts, labels, base, epsilon=epsilon, delta=delta, lora_r=lora_r,
                max_grad_norm=max_grad_norm, batch_size=batch_size,
                physical_batch=physical_batch, epochs=epochs, accountant=accountant,
                learning_rate=learning_rate, seed=seed, head_window=head_window,
                progress=report)
            classifier.card.update({"cohort": str(cohort), "updp_version": __version__,
                                    "threads": threads})
            folder = out / name
            if folder.exists():
                shutil.rmtree(folder)
            classifier.save(folder)
            summary["runs"][name] = {"epsilon": classifier.card["privacy"]["target_epsilon"],
                                     "folder": name, "privacy": classifier.card["privacy"],
                                     "seconds": classifier.card["training"]["seconds"]}
    finally:
        torch.set_num_threads(threads_before)
    return summary


# --- evaluation ----------------------------------------------------------------------------

def f1_table(predicted: np.ndarray, gold: np.ndarray,
             names: Sequence[str] = FINDINGS) -> dict:
    """Per-finding precision, recall, F1 and support of 0/1 arrays [N, F]; ``weighted``: the
    F1s averaged with the support (gold positives) as weights; ``micro`` over all cells."""
    predicted, gold = np.asarray(predicted, bool), np.asarray(gold, bool)
    findings = {}
    for j, name in enumerate(names):
        tp = int((predicted[:, j] & gold[:, j]).sum())
        fp = int((predicted[:, j] & ~gold[:, j]).sum())
        fn = int((~predicted[:, j] & gold[:, j]).sum())
        findings[name] = _prf(tp, fp, fn)
    support = np.array([m["gold"] for m in findings.values()], float)
    f1s = np.array([m["f1"] for m in findings.values()])
    weighted = float((f1s * support).sum() / support.sum()) if support.sum() else None
    tp = int((predicted & gold).sum())
    micro = _prf(tp, int((predicted & ~gold).sum()), int((~predicted & gold).sum()))
    return {"reports": int(len(gold)), "weighted_f1": _round(weighted), "micro_f1": micro["f1"],
            "findings": findings}


def _prf(tp: int, fp: int, fn: int) -> dict:
    m = precision_recall_f1(tp, fp, fn)
    return {"gold": m["gold"], "predicted": m["predicted"],
            **{k: round(m[k], 4) for k in ("precision", "recall", "f1")}}


def _round(value, digits: int = 4):
    return None if value is None else round(float(value), digits)


def classifier_folders(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Each path is a classifier folder or a train-report-classifier output (its eps-*/)."""
    return run_folders(paths, lambda p: (p / CLASSIFIER_CARD).is_file(),
                       "neither a report classifier nor a folder of them (eps-*/) made by "
                       "updp train-report-classifier")


def load_labeller(folder: str | os.PathLike) -> tuple[ReportClassifier, dict]:
    """The report classifier in ``folder`` as a labeller, and what its card says of its
    privacy (ε target and spent, δ, σ, the unit) and its threshold."""
    classifier = ReportClassifier.load(folder)
    if classifier.label_names != FINDINGS:
        raise InputError(f"{folder}: the classifier's findings differ from the product's")
    p = classifier.card.get("privacy") or {}
    privacy = {k: p.get(k) for k in ("target_epsilon", "epsilon_spent", "delta",
                                     "noise_multiplier", "unit", "mechanism")}
    privacy["threshold"] = classifier.threshold
    return classifier, privacy


def classifier_labels(classifier: ReportClassifier, texts: Sequence[str], *,
                      threads: int = 1, batch_size: int = 64):
    """``(labels, probabilities)``: one :class:`~updp_napari.labels.report.ReportLabels` per
    text, each finding positive at a probability of at least the classifier's threshold and
    negative below (it has no "uncertain" and no "not mentioned"), and the probabilities
    [N, F]."""
    import torch

    from ..labels.report import NEGATIVE, POSITIVE, ReportLabels

    threads_before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        probabilities = classifier.predict(list(texts), batch_size=batch_size)
    finally:
        torch.set_num_threads(threads_before)
    threshold = classifier.threshold
    labels = [ReportLabels({f: POSITIVE if p >= threshold else NEGATIVE
                            for f, p in zip(FINDINGS, row)}) for row in probabilities]
    return labels, probabilities


def label_with_classifier(folder: str | os.PathLike, texts: Sequence[str], *,
                          threads: int = 1, batch_size: int = 64):
    """The learned labeller on ``texts``: ``(labels, probabilities, privacy)`` (see
    :func:`load_labeller` and :func:`classifier_labels`)."""
    classifier, privacy = load_labeller(folder)
    labels, probabilities = classifier_labels(classifier, texts, threads=threads,
                                              batch_size=batch_size)
    return labels, probabilities, privacy


def rule_predictions(texts: Sequence[str]) -> np.ndarray:
    """The rule labeller's positives (uncertain counted negative) as 0/1 [N, F]."""
    from ..labels.report import label_report

    return np.array([[f in label_report(t).positives("negative") for f in FINDINGS]
                     for t in texts], dtype=bool).reshape(len(texts), len(FINDINGS))


def evaluate_report_classifiers(models: Sequence[str | os.PathLike], *,
                                test: str | os.PathLike | None = None,
                                iu: str | os.PathLike | None = None,
                                iu_half: str = "test", threads: int = 1,
                                progress: Callable[[int, int], None] | None = None) -> dict:
    """Weighted and per-finding F1 of each classifier (threshold 0.5) on the reports of the
    cohort ``test`` (gold: its ground truth) and on the Indiana University reports ``iu``
    (``iu_half`` of them; gold: their MeSH major terms mapped as ``label-reports --iu``
    maps them), beside the rule labeller's F1 on the same reports."""
    import torch

    from ..labels.report import mesh_findings

    if test is None and iu is None:
        raise InputError("give a test cohort, the Indiana University reports, or both")
    folders = classifier_folders(models)
    sets = {}
    if test is not None:
        _ids_, texts, labels = cohort_reports(test)
        sets["cohort"] = (texts, labels.astype(bool), {"cohort": str(test)})
    if iu is not None:
        reports = iu_reports(iu, iu_half)
        gold = np.array([[f in mesh_findings(r.mesh) for f in FINDINGS] for r in reports],
                        dtype=bool)
        sets["iu"] = ([r.text for r in reports], gold, {"source": str(iu), "half": iu_half})
    result = {"sets": {name: {**info, "reports": len(texts),
                              "rules": f1_table(rule_predictions(texts), gold)}
                       for name, (texts, gold, info) in sets.items()},
              "models": []}
    threads_before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        for k, folder in enumerate(folders):
            classifier, privacy = load_labeller(folder)
            entry = {"folder": str(folder), "epsilon": privacy["target_epsilon"],
                     "epsilon_spent": privacy["epsilon_spent"], "delta": privacy["delta"],
                     "noise_multiplier": privacy["noise_multiplier"]}
            for name, (texts, gold, _info) in sets.items():
                entry[name] = f1_table(classifier.predict(texts) >= THRESHOLD, gold)
            result["models"].append(entry)
            if progress:
                progress(k + 1, len(folders))
    finally:
        torch.set_num_threads(threads_before)
    result["models"].sort(key=lambda e: math.inf if e["epsilon"] is None else e["epsilon"])
    reference = next((m for m in result["models"] if m["epsilon"] is None), None)
    for entry in result["models"]:
        for name in sets:
            ref = reference[name]["weighted_f1"] if reference else None
            mine = entry[name]["weighted_f1"]
            entry[name]["gap_to_non_private"] = (None if ref is None or mine is None
                                                 else _round(ref - mine))
    return result
