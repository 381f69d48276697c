"""The optional model detector: a small BERT token classifier trained on a cohort's reports.

Nothing comes from a model hub. ``train_ner`` builds a WordPiece vocabulary from the cohort's
own report text, initialises a small ``BertForTokenClassification`` at random and trains it on
the cohort's ground-truth PHI spans (BIO labels). ``NerDetector`` loads such a folder and
works as a detector of ``ReportDeidentifier``: Spans in character offsets, source
``model:ner`` (so its hits yield to the pathology whitelist like the lexicon guesses do).

torch, tokenizers and transformers are imported inside the functions that need them, so the
rule path never loads them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ...core.errors import InputError, UpdpError
from ...core.spans import Span

MODEL_CARD = "updp_ner.json"
SOURCE = "model:ner"
OUTSIDE = "O"
# Tokens per window, [CLS] and [SEP] included: about 40 characters. Short windows are what a
# small model trained from scratch learns best from (measured: 16 beat 32, 64, 128 and 256 on
# held-out patients); the PHI cues in a report ("pt:", "Dr.", "signed:") are close by.
WINDOW = 16
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# Every printable ASCII character and the Latin-1 letters are pieces of the vocabulary, so an
# unseen word (a new name, a new ID) is spelt in pieces instead of becoming one [UNK].
_ALPHABET = [chr(c) for c in range(33, 127)] + [chr(c) for c in range(0xC0, 0x180) if chr(c).isalpha()]
_NEEDED_FILES = (MODEL_CARD, "config.json", "tokenizer.json")


def _require():
    """torch and transformers, or a message saying how to install them."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise UpdpError(f"the model detector needs torch and transformers ({exc.name} is missing): "
                        "pip install 'updp-napari[ner]'") from None
    # Our own progress goes to the caller's callback; no library bars or notices on stderr.
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return torch, transformers


# --- tokenizer -----------------------------------------------------------------------------

def _build_tokenizer(texts: Iterable[str], vocab_size: int, window: int):
    """A case-keeping WordPiece tokenizer trained on ``texts``; digits split from letters."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    def with_rules(model) -> Tokenizer:
        tok = Tokenizer(model)
        tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                    strip_accents=False, lowercase=False)
        # "H95582703" -> "H", "95582703"; "92F" -> "92", "F": PHI often starts at such a seam.
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.BertPreTokenizer(),
                                                     pre_tokenizers.Digits(individual_digits=False)])
        tok.decoder = decoders.WordPiece()
        return tok

    learnt = with_rules(models.WordPiece(unk_token="[UNK]"))
    learnt.train_from_iterator(texts, trainer=trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=_ALPHABET, show_progress=False))
    # Every character also as a word-inner piece, so "BECKER" is spelt, not one [UNK]; and
    # every pair of digits, so a number (blanked from the training text) is spelt in pairs.
    vocab = learnt.get_vocab()
    pairs = [f"{n:02d}" for n in range(100)]
    for piece in (p for c in _ALPHABET + pairs for p in (c, "##" + c)):
        vocab.setdefault(piece, len(vocab))
    tok = with_rules(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   model_max_length=window)


def _without_phi(text: str, spans: Sequence[dict]) -> str:
    """The report with its PHI blanked, so no name or number becomes a vocabulary entry."""
    chars = list(text)
    for s in spans:
        chars[s["start"]:s["end"]] = " " * (s["end"] - s["start"])
    return "".join(chars)


class _Encoded:
    """One text as tokens (no special tokens) with character offsets and word numbers."""

    def __init__(self, tokenizer, text: str):
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        self.text = text
        self.ids: list[int] = enc["input_ids"]
        self.offsets: list[tuple[int, int]] = [tuple(o) for o in enc["offset_mapping"]]
        self.words: list[int | None] = enc.word_ids()

    def windows(self, window: int) -> list[tuple[int, int]]:
        """``[start, end)`` token ranges of at most ``window - 2`` tokens (room for [CLS] and
        [SEP]); neighbours share half a window, so no word is read without context."""
        size = window - 2
        n = len(self.ids)
        if n <= size:
            return [(0, n)]
        step = max(1, size - window // 2)
        return [(s, s + size) for s in [*range(0, n - size, step), n - size]]

    def chunks(self, window: int, shift: int = 0) -> list[tuple[int, int]]:
        """Training pieces that do not overlap; ``shift`` moves their seams, so each epoch cuts
        a report elsewhere and a word is seen at many positions and with varied context."""
        size, n = window - 2, len(self.ids)
        starts = [0, *range(shift % size or size, n, size)]
        return list(zip(starts, [*starts[1:], n]))


IGNORED = -100  # the label the loss skips: special tokens, padding, inner pieces of a word


def _token_labels(enc: _Encoded, spans: Sequence[dict], label_ids: dict[str, int]) -> list[int]:
    """BIO label on each word's first token (B: first word of a gold span, I: the next ones,
    O: outside); the word's other pieces are IGNORED, as decoding reads first pieces only."""
    owner: dict[int, int] = {}
    for k, s in enumerate(spans):
        for i in range(s["start"], s["end"]):
            owner[i] = k
    words: dict[int, list[int]] = {}  # word -> its tokens
    for t, w in enumerate(enc.words):
        words.setdefault(t if w is None else w, []).append(t)
    labels = [IGNORED] * len(enc.ids)
    previous = None
    for tokens in words.values():
        start, end = enc.offsets[tokens[0]][0], enc.offsets[tokens[-1]][1]
        k = next((owner[i] for i in range(start, end) if i in owner), None)
        if k is None:
            labels[tokens[0]] = label_ids[OUTSIDE]
        else:
            tag = "I" if k == previous else "B"
            labels[tokens[0]] = label_ids[f"{tag}-{spans[k]['category']}"]
        previous = k
    return labels


# --- inference -----------------------------------------------------------------------------

def _token_probabilities(model, tokenizer, enc: _Encoded, device):
    """Label probabilities per token, averaged where windows overlap (a tensor, tokens x labels)."""
    import torch

    windows = enc.windows(model.config.max_position_embeddings)
    size = windows[0][1] - windows[0][0]  # all windows are this long: no padding needed
    index = torch.tensor([s for s, _ in windows])[:, None] + torch.arange(size)
    edge = torch.ones((len(windows), 1), dtype=torch.long)
    ids = torch.cat([edge * tokenizer.cls_token_id, torch.tensor(enc.ids)[index],
                     edge * tokenizer.sep_token_id], 1)
    with torch.inference_mode():
        logits = model(input_ids=ids.to(device)).logits[:, 1:-1]
    probs = logits.float().softmax(-1).cpu().reshape(-1, logits.shape[-1])
    total = torch.zeros((len(enc.ids), probs.shape[-1])).index_add_(0, index.flatten(), probs)
    seen = torch.bincount(index.flatten(), minlength=len(enc.ids))
    return total / seen[:, None]


_JOINING = " ,.-/"  # what may stand between two words of one span ("Evans, Camila", "65-127")


def _spans(enc: _Encoded, probs, labels: Sequence[str]) -> list[Span]:
    """Whole-word spans. A word takes its first piece's label. A word joins the open span when
    nothing stands between them ("MV" "0073410"), or when the category is the same and only
    a short run of _JOINING characters does ("Evans" "," "Camila"); B and I are hints only, as
    a small model often starts each word of a name or each part of an ID afresh. A span takes
    the category with the most probability over its words."""
    best_p, best = probs.max(-1)
    best_p, best = best_p.tolist(), best.tolist()
    words: list[list] = []  # [start, end, label, probability]
    for t, (start, end) in enumerate(enc.offsets):
        if words and enc.words[t] is not None and enc.words[t] == enc.words[t - 1]:
            words[-1][1] = end  # a later piece of the same word
        else:
            words.append([start, end, labels[best[t]], best_p[t]])
    spans: list[Span] = []
    current: list | None = None  # [start, end, {category: probability}, [probabilities]]

    def close():
        if current is not None:
            start, end, weights, ps = current
            category = max(weights, key=weights.get)
            start, end = _trim(enc.text, start, end, category)
            if end > start:
                spans.append(Span(start, end, category, SOURCE, sum(ps) / len(ps)))

    for start, end, label, p in words:
        if label == OUTSIDE:
            if current is not None and all(c in _JOINING for c in enc.text[start:end]):
                continue  # a comma or hyphen may still stand inside a span
            close()
            current = None
            continue
        category = label.split("-", 1)[1]
        if current is not None:
            gap = enc.text[current[1]:start]
            same = max(current[2], key=current[2].get) == category
            if gap == "" or (same and len(gap) <= 2 and all(c in _JOINING for c in gap)):
                current[1] = end
                current[2][category] = current[2].get(category, 0.0) + p
                current[3].append(p)
                continue
            close()
        current = [start, end, {category: p}, [p]]
    close()
    return spans


def _trim(text: str, start: int, end: int, category: str) -> tuple[int, int]:
    """Without punctuation the model let in at the edges: "-918-199" and "Martinez." lose it,
    a name's initial ("M.") and a URL's closing slash keep theirs."""
    while start < end and text[start] in _JOINING + ";:":
        start += 1
    while end > start and (text[end - 1] in " ,;:-" or (
            text[end - 1] == "." and category == "NAME" and text[end - 3:end - 1].isalpha())):
        end -= 1
    return start, end


class NerDetector:
    """A trained model folder as a report detector: ``detector(text, ctx) -> [Span]``.

    Loading sets torch's CPU threads for the process to ``threads`` (``None``: leave them).
    One is the default: for a model this small a second thread was measured several times
    slower on a busy two-core machine and no faster on an idle one; switching per call costs
    more than the call.
    """

    def __init__(self, model_dir: str | os.PathLike, threads: int | None = 1):
        self.model_dir = Path(model_dir)
        self.card = _read_card(self.model_dir)
        torch, transformers = _require()
        try:
            self.tokenizer = transformers.PreTrainedTokenizerFast.from_pretrained(
                str(self.model_dir), local_files_only=True)
            self.model = transformers.BertForTokenClassification.from_pretrained(
                str(self.model_dir), local_files_only=True)
        except Exception as exc:  # transformers raises many kinds; all mean "not loadable"
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise InputError(f"{self.model_dir}: cannot load the model ({reason})") from None
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        if self.labels != self.card["labels"]:
            raise InputError(f"{self.model_dir}: the labels of config.json and {MODEL_CARD} differ")
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()
        if threads is not None:
            torch.set_num_threads(max(1, threads))

    def __call__(self, text: str, ctx=None) -> list[Span]:
        if not text.strip():
            return []
        enc = _Encoded(self.tokenizer, text)
        if not enc.ids:
            return []
        probs = _token_probabilities(self.model, self.tokenizer, enc, self.device)
        return _spans(enc, probs, self.labels)

    detect = __call__


def _read_card(model_dir: Path) -> dict:
    if not model_dir.is_dir():
        raise InputError(f"{model_dir}: no such folder (expected a model made by updp train-ner)")
    missing = [name for name in _NEEDED_FILES if not (model_dir / name).is_file()]
    if not any(model_dir.glob("*.safetensors")) and not (model_dir / "pytorch_model.bin").is_file():
        missing.append("model weights")
    if missing:
        raise InputError(f"{model_dir}: not a model made by updp train-ner (missing "
                         f"{', '.join(missing)})")
    try:
        card = json.loads((model_dir / MODEL_CARD).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{model_dir}: {MODEL_CARD} is not readable JSON") from None
    if not isinstance(card, dict) or not isinstance(card.get("labels"), list):
        raise InputError(f"{model_dir}: {MODEL_CARD} lists no labels")
    return card


# --- training ------------------------------------------------------------------------------

def _split_patients(records: list[dict], share: float, seed: int) -> tuple[list[dict], list[dict]]:
    import random

    patients = sorted({r["patient"] for r in records})
    random.Random(seed).shuffle(patients)
    n_val = min(len(patients) - 1, max(1, round(share * len(patients)))) if share > 0 else 0
    held = set(patients[:n_val])
    return ([r for r in records if r["patient"] not in held], [r for r in records if r["patient"] in held])


def _prf(hit_pred: int, n_pred: int, hit_gold: int, n_gold: int) -> dict:
    precision = hit_pred / n_pred if n_pred else 1.0
    recall = hit_gold / n_gold if n_gold else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def _validate(model, tokenizer, items, labels, device) -> dict:
    """Token and span precision / recall of the model alone on held-out reports."""
    tok = {"gold": 0, "pred": 0, "both": 0}
    span = {"gold": 0, "gold_hit": 0, "gold_exact": 0, "pred": 0, "pred_hit": 0}
    per_category: dict[str, list[int]] = {}
    outside = labels.index(OUTSIDE)
    for enc, gold_labels, gold in items:
        probs = _token_probabilities(model, tokenizer, enc, device)
        pred_labels = probs.argmax(-1).tolist()
        for g, p in zip(gold_labels, pred_labels):
            if g == IGNORED:
                continue
            tok["gold"] += g != outside
            tok["pred"] += p != outside
            tok["both"] += g != outside and p != outside and labels[g][2:] == labels[p][2:]
        pred = _spans(enc, probs, labels)
        exact = {(s.start, s.end) for s in pred}
        for g in gold:
            hit = any(s.start < g["end"] and g["start"] < s.end for s in pred)
            span["gold"] += 1
            span["gold_hit"] += hit
            span["gold_exact"] += (g["start"], g["end"]) in exact
            counts = per_category.setdefault(g["category"], [0, 0])
            counts[0] += 1
            counts[1] += hit
        for s in pred:
            span["pred"] += 1
            span["pred_hit"] += any(s.start < g["end"] and g["start"] < s.end for g in gold)
    return {
        "token": _prf(tok["both"], tok["pred"], tok["both"], tok["gold"]),
        "span": _prf(span["pred_hit"], span["pred"], span["gold_hit"], span["gold"]),
        "span_exact_recall": round(span["gold_exact"] / span["gold"], 4) if span["gold"] else 1.0,
        "gold_spans": span["gold"],
        "per_category_recall": {c: {"recall": round(h / n, 4), "gold": n}
                                for c, (n, h) in sorted(per_category.items())},
    }


def train_ner(cohort_dir: str | os.PathLike, out_dir: str | os.PathLike, *, epochs: int = 20,
              seed: int = 0, validation_share: float = 0.2, vocab_size: int = 4000,
              hidden_size: int = 64, layers: int = 2, heads: int = 2, batch_size: int = 32,
              learning_rate: float = 4e-3, dropout: float = 0.1, window: int = WINDOW,
              threads: int = 1,
              progress: Callable[[int, int], None] | None = None) -> dict:
    """Train the model detector on ``cohort_dir``'s reports; save it to ``out_dir``.

    A share of the patients (all their studies) is held out and scored; the returned dict is
    what ``out_dir/updp_ner.json`` holds: labels, how it was trained, the validation figures.
    """
    from ... import __version__
    from ...cohort.generate import read_ground_truth
    from ...ingest import read_report

    if epochs < 1:
        raise UpdpError(f"--epochs must be at least 1 (got {epochs})")
    cohort, out = Path(cohort_dir), Path(out_dir)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MODEL_CARD).exists())):
        raise InputError(f"{out}: exists and is not empty; choose an empty folder (or a model "
                         "folder to replace)")
    records = read_ground_truth(cohort)
    if not records:
        raise InputError(f"{cohort}: ground truth lists no studies")
    torch, transformers = _require()
    started = time.perf_counter()
    threads_before = torch.get_num_threads()
    # One thread is the default: the matrices are tiny, a second thread costs more than it
    # gives (measured twice as slow on two cores).
    torch.set_num_threads(max(1, min(2, threads)))
    torch.manual_seed(seed)
    try:
        train_records, val_records = _split_patients(records, validation_share, seed)
        texts = {r["study_id"]: read_report(cohort / r["report"]) for r in records}
        categories = sorted({s["category"] for r in records for s in r["phi_spans"]})
        labels = [OUTSIDE] + [f"{t}-{c}" for c in categories for t in "BI"]
        label_ids = {name: i for i, name in enumerate(labels)}
        tokenizer = _build_tokenizer(
            (_without_phi(texts[r["study_id"]], r["phi_spans"]) for r in train_records), vocab_size, window)

        def encode(rs):
            items = []
            for r in rs:
                enc = _Encoded(tokenizer, texts[r["study_id"]])
                items.append((enc, _token_labels(enc, r["phi_spans"], label_ids), r["phi_spans"]))
            return items

        train_items, val_items = encode(train_records), encode(val_records)
        config = transformers.BertConfig(
            vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=layers,
            num_attention_heads=heads, intermediate_size=4 * hidden_size,
            max_position_embeddings=window, num_labels=len(labels),
            id2label=dict(enumerate(labels)), label2id=label_ids,
            pad_token_id=tokenizer.pad_token_id, hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=dropout)
        model = transformers.BertForTokenClassification(config)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model.to(device)
        # Every epoch cuts the training reports at other seams; the batches are planned ahead
        # so that the learning-rate schedule knows the number of steps.
        order = torch.Generator().manual_seed(seed)
        plan = []
        for epoch in range(epochs):
            examples = [([tokenizer.cls_token_id, *enc.ids[s:e], tokenizer.sep_token_id],
                         [IGNORED, *gold[s:e], IGNORED])
                        for enc, gold, _ in train_items
                        for s, e in enc.chunks(window, int(torch.randint(window, (1,), generator=order))
                                               if epoch else 0)]
            plan += [[examples[i] for i in batch] for batch in _batches(examples, batch_size, order)]
        steps = len(plan)
        optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
        warmup = max(1, steps // 10)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / (steps - warmup + 1))))
        step, losses = 0, []
        model.train()
        for rows in plan:
            longest = max(len(ids) for ids, _ in rows)
            ids = torch.full((len(rows), longest), tokenizer.pad_token_id, dtype=torch.long)
            gold = torch.full((len(rows), longest), IGNORED, dtype=torch.long)
            mask = torch.zeros((len(rows), longest), dtype=torch.long)
            for k, (row_ids, row_gold) in enumerate(rows):
                ids[k, :len(row_ids)] = torch.tensor(row_ids)
                gold[k, :len(row_gold)] = torch.tensor(row_gold)
                mask[k, :len(row_ids)] = 1
            loss = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                         labels=gold.to(device)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            step += 1
            if progress:
                progress(step, steps)
        model.eval()
        train_seconds = time.perf_counter() - started
        validation = _validate(model, tokenizer, val_items, labels, device) if val_items else None
        card = {
            "format": "updp-ner/1",
            "labels": labels,
            "source": SOURCE,
            "window_tokens": window,
            "training": {
                "cohort_seed": _cohort_seed(cohort), "seed": seed, "epochs": epochs,
                "batch_size": batch_size, "learning_rate": learning_rate, "steps": steps,
                "train_reports": len(train_records),
                "train_patients": len({r["patient"] for r in train_records}),
                "validation_reports": len(val_records),
                "validation_patients": len({r["patient"] for r in val_records}),
                "vocabulary": len(tokenizer), "hidden_size": hidden_size, "layers": layers,
                "heads": heads, "parameters": sum(p.numel() for p in model.parameters()),
                "final_loss": round(sum(losses[-10:]) / len(losses[-10:]), 4),
                "seconds": round(train_seconds, 1), "device": device.type, "threads": threads,
                "updp_version": __version__,
            },
            "validation": validation,
        }
        _save(out, model, tokenizer, card)
    finally:
        torch.set_num_threads(threads_before)
    return card


def _batches(examples: list, batch_size: int, generator) -> list[list[int]]:
    """Shuffled batches of examples of similar length (less padding), in shuffled order."""
    import torch

    shuffled = torch.randperm(len(examples), generator=generator).tolist()
    pool = batch_size * 8
    batches = []
    for i in range(0, len(shuffled), pool):
        ordered = sorted(shuffled[i:i + pool], key=lambda k: len(examples[k][0]))
        batches += [ordered[j:j + batch_size] for j in range(0, len(ordered), batch_size)]
    return [batches[k] for k in torch.randperm(len(batches), generator=generator).tolist()]


def _cohort_seed(cohort: Path):
    try:
        return json.loads((cohort / "cohort.json").read_text(encoding="utf-8")).get("seed")
    except (OSError, ValueError, AttributeError):
        return None


def _save(out: Path, model, tokenizer, card: dict) -> None:
    """Owner-only: the weights were fitted to PHI-bearing reports and are treated like them."""
    from ...core.files import write_text_atomic

    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    write_text_atomic(out / MODEL_CARD, json.dumps(card, indent=2) + "\n", private=True)
    for path in out.iterdir():
        if path.is_file():
            os.chmod(path, 0o600)
