"""The optional model detector: a small BERT token classifier trained on annotated text.

Nothing comes from a model hub. ``train_ner`` builds a WordPiece vocabulary from the training
text (a cohort's reports, or the notes of annotated JSONL corpora, their categories mapped to
the product's), initialises a small ``BertForTokenClassification`` at random and trains it on
the ground-truth PHI spans (BIO labels). ``cross_validate_ner`` measures it by patient folds:
the rules alone, the model alone, and both, with the corpus convention of ``evaluate_corpus``.
``NerDetector`` loads a model folder and works as a detector of ``ReportDeidentifier``: Spans
in character offsets, source
``model:ner`` (so its hits yield to the pathology whitelist like the lexicon guesses do).

torch, tokenizers and transformers are imported inside the functions that need them, so the
rule path never loads them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
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


# --- training data -------------------------------------------------------------------------

#: How the categories of an annotated corpus (the PhysioNet deid convention) become the
#: categories the rule detectors emit, which the replacer and the review tools know. A
#: corpus already labelled with these categories passes through as it is.
CORPUS_CATEGORIES: dict[str, str] = {
    "PTName": "NAME", "PTNameInitial": "NAME", "HCPName": "NAME", "RelativeProxyName": "NAME",
    "Date": "DATE", "DateYear": "DATE",
    # Mostly hospitals, wards and care homes, a few towns: the rules call those INSTITUTION.
    "Location": "INSTITUTION",
    "Phone": "PHONE", "Age": "AGE",
    "Other": "ID",  # the corpus's leftover identifiers (numbers, codes)
}
#: Corpus categories trained as "not PHI" unless asked (``train_years``): a year alone may
#: stay under HIPAA Safe Harbor, and the corpus convention scores it apart.
YEAR_CATEGORIES = ("DateYear",)


def map_category(category: str, train_years: bool = False) -> str | None:
    """The product category a corpus span is trained as; None: trained as outside (a year
    alone, unless ``train_years``). KeyError for a category with no mapping."""
    from ...core.vocabulary import PHI_CATEGORIES

    if category in YEAR_CATEGORIES and not train_years:
        return None
    if category in CORPUS_CATEGORIES:
        return CORPUS_CATEGORIES[category]
    if category in PHI_CATEGORIES:
        return category
    raise KeyError(category)


def read_training_notes(inputs, train_years: bool = False) -> list[dict]:
    """The notes of cohort folders and annotated JSONL corpora, for training and scoring.

    Each note: ``id``; ``patient`` (a key unique over all inputs: the cohort's patient, or the
    corpus note id's patient part, see ``patient_of``; a note whose id has none is its own
    patient); ``text``; ``spans`` (product categories, what the model learns); ``gold`` (the
    spans as annotated, what the corpus convention scores); ``input``.
    """
    from ...evaluate.report import patient_of, read_corpus

    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    notes: list[dict] = []
    for k, path in enumerate(Path(p) for p in inputs):
        if path.is_dir():
            notes += _cohort_notes(path, k)
            continue
        if not path.exists() and path.suffix.lower() != ".jsonl":
            raise InputError(f"{path}: no such file or folder (expected a cohort folder or an "
                             "annotated .jsonl corpus)")
        for note in read_corpus(path):
            spans = []
            for s in note["spans"]:
                try:
                    category = map_category(s["category"], train_years)
                except KeyError:
                    known = ", ".join(sorted(CORPUS_CATEGORIES))
                    raise InputError(f"{path}:{note['line']}: category {s['category']!r} has no "
                                     f"product category (known: {known}, or the product's own "
                                     "NAME, DATE, ID, ...)") from None
                if category is not None:
                    spans.append(dict(s, category=category))
            patient = patient_of(note["id"])
            notes.append({"id": note["id"], "text": note["text"], "spans": spans,
                          "gold": note["spans"], "input": str(path),
                          "patient": f"{k}:{patient}" if patient is not None else f"{k}:{note['id']}:"})
    return notes


def _cohort_notes(cohort: Path, k: int) -> list[dict]:
    from ...cohort.generate import read_ground_truth
    from ...ingest import read_report

    records = read_ground_truth(cohort)
    if not records:
        raise InputError(f"{cohort}: ground truth lists no studies")
    notes = []
    for r in records:
        spans = [{"start": s["start"], "end": s["end"], "category": s["category"]}
                 for s in r["phi_spans"]]
        notes.append({"id": r["study_id"], "patient": f"{k}:{r['patient']}",
                      "text": read_report(cohort / r["report"]), "spans": spans, "gold": spans,
                      "input": str(cohort)})
    return notes


# --- training ------------------------------------------------------------------------------

def _split_patients(records: list[dict], share: float, seed: int) -> tuple[list[dict], list[dict]]:
    import random

    patients = sorted({r["patient"] for r in records})
    random.Random(seed).shuffle(patients)
    n_val = min(len(patients) - 1, max(1, round(share * len(patients)))) if share > 0 else 0
    held = set(patients[:n_val])
    return ([r for r in records if r["patient"] not in held], [r for r in records if r["patient"] in held])


def patient_folds(notes: Sequence[dict], k: int, seed: int = 0) -> list[list[int]]:
    """Cross-validation folds: the patients shuffled (seeded) and dealt out into ``k`` folds;
    each fold lists the indices of its patients' notes. No patient is in two folds."""
    import random

    if k < 2:
        raise UpdpError(f"--cv must be at least 2 folds (got {k})")
    patients = sorted({n["patient"] for n in notes})
    if k > len(patients):
        raise UpdpError(f"--cv {k}: the input has {len(patients)} patients; a fold needs at "
                        "least one")
    random.Random(seed).shuffle(patients)
    fold_of = {p: i % k for i, p in enumerate(patients)}
    folds: list[list[int]] = [[] for _ in range(k)]
    for i, n in enumerate(notes):
        folds[fold_of[n["patient"]]].append(i)
    return folds


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


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MODEL_CARD).exists())):
        raise InputError(f"{out}: exists and is not empty; choose an empty folder (or a model "
                         "folder to replace)")


def _make_out(out: Path) -> None:
    """Make the model's folder (owner-only) once the inputs are known good and before any
    training: a folder that cannot be made is found out now, not after it."""
    from ...core.files import private_folder

    private_folder(out)


def _check_options(epochs: int, max_steps: int | None, negatives: float | None) -> None:
    if epochs < 1:
        raise UpdpError(f"--epochs must be at least 1 (got {epochs})")
    if max_steps is not None and max_steps < 1:
        raise UpdpError(f"--max-steps must be at least 1 (got {max_steps})")
    if negatives is not None and negatives < 0:
        raise UpdpError(f"--negatives cannot be negative (got {negatives})")


#: PHI-free training pieces drawn per piece with PHI, afresh each epoch. In a cohort's reports
#: most pieces hold PHI and the cap does not bind; in clinical notes (a few PHI spans in a page
#: of text) it keeps the model from learning that everything is outside, and makes an epoch a
#: tenth as long.
NEGATIVES = 4.0


def train_ner(inputs, out_dir: str | os.PathLike, *, epochs: int = 20,
              seed: int = 0, validation_share: float = 0.2, vocab_size: int = 4000,
              hidden_size: int = 64, layers: int = 2, heads: int = 2, batch_size: int = 32,
              learning_rate: float = 4e-3, dropout: float = 0.1, window: int = WINDOW,
              threads: int = 1, max_steps: int | None = None, negatives: float | None = NEGATIVES,
              train_years: bool = False,
              progress: Callable[[int, int], None] | None = None) -> dict:
    """Train the model detector on ``inputs``, a cohort folder or annotated JSONL corpus or a
    list of them (see ``read_training_notes``); save it to ``out_dir``.

    A share of the patients (all their notes) is held out and scored; the returned dict is
    what ``out_dir/updp_ner.json`` holds: labels, how it was trained, the validation figures.
    ``max_steps`` caps the optimisation steps (the epochs are cut short); ``negatives`` caps
    the PHI-free pieces per piece with PHI each epoch (None: all); ``train_years``: a corpus's
    DateYear spans are trained as DATE (by default as outside).
    """
    _check_options(epochs, max_steps, negatives)
    out = Path(out_dir)
    _check_out(out)
    notes = read_training_notes(inputs, train_years)
    if not any(note["text"].strip() for note in notes):
        raise InputError("the training reports hold no text")
    train_notes, val_notes = _split_patients(notes, validation_share, seed)
    _make_out(out)
    return _fit(train_notes, val_notes, out, epochs=epochs, seed=seed, vocab_size=vocab_size,
                hidden_size=hidden_size, layers=layers, heads=heads, batch_size=batch_size,
                learning_rate=learning_rate, dropout=dropout, window=window, threads=threads,
                max_steps=max_steps, negatives=negatives, train_years=train_years,
                progress=progress)


def _fit(train_notes: list[dict], val_notes: list[dict], out: Path, *, epochs: int, seed: int,
         vocab_size: int, hidden_size: int, layers: int, heads: int, batch_size: int,
         learning_rate: float, dropout: float, window: int, threads: int,
         max_steps: int | None, negatives: float | None, train_years: bool,
         progress: Callable[[int, int], None] | None, extra: dict | None = None) -> dict:
    """Train on ``train_notes``, score on ``val_notes`` (may be empty), save to ``out``."""
    from ... import __version__

    if not train_notes:
        raise InputError("no notes to train on")
    torch, transformers = _require()
    started = time.perf_counter()
    threads_before = torch.get_num_threads()
    # One thread is the default: the matrices are tiny, a second thread costs more than it
    # gives (measured twice as slow on two cores).
    torch.set_num_threads(max(1, min(2, threads)))
    torch.manual_seed(seed)
    try:
        categories = sorted({s["category"] for n in train_notes + val_notes for s in n["spans"]})
        labels = [OUTSIDE] + [f"{t}-{c}" for c in categories for t in "BI"]
        label_ids = {name: i for i, name in enumerate(labels)}
        tokenizer = _build_tokenizer(
            (_without_phi(n["text"], n["spans"]) for n in train_notes), vocab_size, window)

        def encode(ns):
            items = []
            for n in ns:
                enc = _Encoded(tokenizer, n["text"])
                items.append((enc, _token_labels(enc, n["spans"], label_ids), n["spans"]))
            return items

        train_items, val_items = encode(train_notes), encode(val_notes)
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
        plan = _plan(train_items, epochs, window, batch_size, negatives, max_steps, seed, label_ids)
        steps = len(plan)
        optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
        warmup = max(1, steps // 10)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / (steps - warmup + 1))))
        step, losses = 0, []
        model.train()
        for rows in plan:
            rows = [([tokenizer.cls_token_id, *train_items[i][0].ids[s:e], tokenizer.sep_token_id],
                     [IGNORED, *train_items[i][1][s:e], IGNORED]) for i, s, e in rows]
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
        inputs = sorted({n["input"] for n in train_notes + val_notes})
        card = {
            "format": "updp-ner/1",
            "labels": labels,
            "source": SOURCE,
            "window_tokens": window,
            "training": {
                "inputs": inputs,
                "cohort_seed": _cohort_seed(Path(inputs[0])) if len(inputs) == 1 else None,
                "seed": seed, "epochs": epochs,
                "batch_size": batch_size, "learning_rate": learning_rate, "steps": steps,
                "max_steps": max_steps, "negatives_per_phi_piece": negatives,
                "train_years": train_years,
                "train_reports": len(train_notes),
                "train_patients": len({n["patient"] for n in train_notes}),
                "validation_reports": len(val_notes),
                "validation_patients": len({n["patient"] for n in val_notes}),
                "vocabulary": len(tokenizer), "hidden_size": hidden_size, "layers": layers,
                "heads": heads, "parameters": sum(p.numel() for p in model.parameters()),
                "final_loss": round(sum(losses[-10:]) / len(losses[-10:]), 4),
                "seconds": round(train_seconds, 1), "device": device.type, "threads": threads,
                "updp_version": __version__,
            },
            "validation": validation,
            **(extra or {}),
        }
        if any(not Path(p).is_dir() for p in inputs):
            card["category_map"] = {**CORPUS_CATEGORIES,
                                    **{c: None for c in YEAR_CATEGORIES if not train_years}}
        _save(out, model, tokenizer, card)
    finally:
        torch.set_num_threads(threads_before)
    return card


def _plan(items, epochs: int, window: int, batch_size: int, negatives: float | None,
          max_steps: int | None, seed: int, label_ids: dict[str, int]) -> list[list[tuple]]:
    """The batches of all epochs, planned ahead so that the learning-rate schedule knows the
    number of steps: ``(item, start, end)`` token ranges. Every epoch cuts the training
    reports at other seams; where PHI-free pieces outnumber ``negatives`` per piece with PHI,
    that many of them are drawn afresh each epoch."""
    import torch

    outside = label_ids[OUTSIDE]
    order = torch.Generator().manual_seed(seed)
    plan: list[list[tuple]] = []
    for epoch in range(epochs):
        examples = [(i, s, e) for i, (enc, _, _) in enumerate(items)
                    for s, e in enc.chunks(window, int(torch.randint(window, (1,), generator=order))
                                           if epoch else 0)]
        if negatives is not None:
            phi = [x for x in examples if any(g not in (IGNORED, outside) for g in items[x[0]][1][x[1]:x[2]])]
            free = [x for x in examples if not any(g not in (IGNORED, outside)
                                                   for g in items[x[0]][1][x[1]:x[2]])]
            keep = int(negatives * len(phi))
            if phi and keep < len(free):
                chosen = sorted(torch.randperm(len(free), generator=order)[:keep].tolist())
                examples = phi + [free[j] for j in chosen]
        plan += [[examples[i] for i in batch] for batch in _batches(examples, batch_size, order)]
        if max_steps is not None and len(plan) >= max_steps:
            return plan[:max_steps]
    return plan


def _batches(examples: list, batch_size: int, generator) -> list[list[int]]:
    """Shuffled batches of examples of similar length (less padding), in shuffled order."""
    import torch

    shuffled = torch.randperm(len(examples), generator=generator).tolist()
    pool = batch_size * 8
    batches = []
    for i in range(0, len(shuffled), pool):
        ordered = sorted(shuffled[i:i + pool], key=lambda k: examples[k][2] - examples[k][1])
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


# --- cross-validation ----------------------------------------------------------------------

SYSTEMS = ("rules", "model", "rules+model")


class _Memo:
    """The model detector with its answers kept by text: "model" and "rules+model" score the
    same notes, the model reads each once."""

    def __init__(self, detector):
        self.detector = detector
        self.found: dict[str, list[Span]] = {}

    def __call__(self, text: str, ctx=None) -> list[Span]:
        if text not in self.found:
            self.found[text] = self.detector(text, ctx)
        return self.found[text]

    detect = __call__


class _Recorder:
    """A de-identifier whose answers are also kept, in order, for the pooled scoring."""

    def __init__(self, deid, kept: list):
        self.deid, self.kept = deid, kept

    def detect(self, text: str, header=None) -> list[Span]:
        spans = self.deid.detect(text)
        self.kept.append((text, spans))
        return spans


class _Replay:
    """The answers a _Recorder kept, given back in the same order."""

    def __init__(self, kept: list):
        self.kept, self.n = kept, 0

    def detect(self, text: str, header=None) -> list[Span]:
        seen, spans = self.kept[self.n]
        if seen != text:
            raise RuntimeError("pooled scoring: the notes came in another order")
        self.n += 1
        return spans


def _write_notes(path: Path, notes: Sequence[dict], patient_index: dict[str, int]) -> None:
    """The notes as a JSONL corpus for ``evaluate_corpus``, with their gold spans as annotated;
    ids ``cv_<patient>_<note>`` keep the patient grouping over several inputs (owner-only,
    in a private temporary folder)."""
    with path.open("w", encoding="utf-8") as fh:
        for j, n in enumerate(notes):
            fh.write(json.dumps({"id": f"cv_{patient_index[n['patient']]}_{j}", "text": n["text"],
                                 "spans": n["gold"]}, ensure_ascii=False) + "\n")
    os.chmod(path, 0o600)


def _gain(rules: dict, both: dict) -> dict:
    """What the model adds on top of the rules (differences of rules+model minus rules)."""

    def diff(a, b, digits=4):
        return None if a is None or b is None else round(b - a, digits)

    return {
        "span_recall": diff(rules["span_recall"], both["span_recall"]),
        "span_exact_recall": diff(rules["span_exact_recall"], both["span_exact_recall"]),
        "character_recall": diff(rules["character_recall"], both["character_recall"]),
        "over_redaction": diff(rules["over_redaction"], both["over_redaction"], 6),
        "precision": diff(rules["precision"], both["precision"]),
        "gold_spans_found": round(((both["span_recall"] or 0) - (rules["span_recall"] or 0))
                                  * both["headline_spans"]),
        "per_category_recall": {c: diff(rules["per_category"][c]["recall"], m["recall"])
                                for c, m in both["per_category"].items()},
    }


def cross_validate_ner(inputs, k: int, out_dir: str | os.PathLike | None = None, *,
                       seed: int = 0, epochs: int = 20, max_steps: int | None = None,
                       negatives: float | None = NEGATIVES, train_years: bool = False,
                       bootstrap: int = 1000, threads: int = 1,
                       progress: Callable[[str, int, int], None] | None = None,
                       **options) -> dict:
    """K-fold cross-validation by patient on annotated notes (cohort folders or JSONL
    corpora; see ``read_training_notes``), then, where ``out_dir`` is given, the model
    trained on all of them.

    The patients are dealt into ``k`` folds (seeded; a patient's notes all in one fold). For
    each fold a model is trained on the other folds and three systems are scored on the fold
    with the corpus convention of ``evaluate_corpus`` (span recall any overlap with the years
    apart, over-redaction, per category): the rules alone, the model alone, and the rules with
    the model. The pooled figures score every note with the model that did not see its
    patient. ``progress(stage, done, total)``.
    """
    from ...evaluate.report import evaluate_corpus
    from . import ReportDeidentifier

    _check_options(epochs, max_steps, negatives)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        _check_out(out)
    notes = read_training_notes(inputs, train_years)
    if not any(note["text"].strip() for note in notes):
        raise InputError("the training reports hold no text")
    folds = patient_folds(notes, k, seed)
    if out is not None:
        _make_out(out)
    patient_index = {p: i for i, p in enumerate(sorted({n["patient"] for n in notes}))}
    fit_options = dict(epochs=epochs, seed=seed, max_steps=max_steps, negatives=negatives,
                       train_years=train_years, threads=threads, **_FIT_DEFAULTS)
    unknown = set(options) - set(_FIT_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown options: {', '.join(sorted(unknown))}")
    fit_options.update(options)

    def stage(name: str):
        return (lambda done, total: progress(name, done, total)) if progress else None

    torch, _ = _require()
    threads_before = torch.get_num_threads()
    rules = ReportDeidentifier(use_plugins=False)
    kept: dict[str, list] = {name: [] for name in SYSTEMS}
    fold_results = []
    started = time.perf_counter()
    import tempfile

    with tempfile.TemporaryDirectory(prefix="updp-ner-cv-") as tmp, _restore_threads(torch, threads_before):
        tmp = Path(tmp)
        for i, fold in enumerate(folds):
            held = set(fold)
            test = [notes[j] for j in fold]
            train = [n for j, n in enumerate(notes) if j not in held]
            label = f"fold {i + 1}/{k}"
            card = _fit(train, [], tmp / f"model{i}", progress=stage(f"{label} training"),
                        **fit_options)
            model = _Memo(NerDetector(tmp / f"model{i}", threads=None))
            torch.set_num_threads(max(1, min(2, threads)))
            corpus = tmp / f"fold{i}.jsonl"
            _write_notes(corpus, test, patient_index)
            systems = {"rules": rules, "model": model,
                       "rules+model": ReportDeidentifier(use_plugins=False, extra_detectors=[model])}
            scores = {}
            for name, deid in systems.items():
                scores[name] = evaluate_corpus(
                    corpus, _Recorder(deid, kept[name]), bootstrap=bootstrap, seed=seed,
                    progress=stage(f"{label} scoring {name}"))
                scores[name]["corpus"] = label
            fold_results.append({
                "fold": i + 1, "test_notes": len(test),
                "test_patients": len({n["patient"] for n in test}),
                "train_notes": len(train), "train_patients": len({n["patient"] for n in train}),
                "train_seconds": card["training"]["seconds"], "steps": card["training"]["steps"],
                **scores, "gain": _gain(scores["rules"], scores["rules+model"])})
            shutil.rmtree(tmp / f"model{i}", ignore_errors=True)
        # Pooled: every note once, scored with what the model of its fold found.
        pooled_corpus = tmp / "pooled.jsonl"
        _write_notes(pooled_corpus, [notes[j] for fold in folds for j in fold], patient_index)
        pooled = {}
        for name in SYSTEMS:
            pooled[name] = evaluate_corpus(pooled_corpus, _Replay(kept[name]), bootstrap=bootstrap,
                                           seed=seed)
            pooled[name]["corpus"] = "pooled"
            pooled[name]["detect_seconds"] = round(sum(f[name]["detect_seconds"]
                                                       for f in fold_results), 4)
            pooled[name]["notes_per_second"] = (
                round(len(notes) / pooled[name]["detect_seconds"], 1)
                if pooled[name]["detect_seconds"] else None)
    result = {
        "format": "updp-ner-cv/1",
        "inputs": sorted({n["input"] for n in notes}),
        "folds_k": k, "seed": seed, "notes": len(notes), "patients": len(patient_index),
        "train_years": train_years,
        "training": {"epochs": epochs, "max_steps": max_steps, "negatives_per_phi_piece": negatives,
                     **{key: fit_options[key] for key in _FIT_DEFAULTS}},
        "folds": fold_results,
        "pooled": {**pooled, "gain": _gain(pooled["rules"], pooled["rules+model"])},
        "cv_seconds": round(time.perf_counter() - started, 1),
        "model": None,
    }
    if out is not None:
        summary = {"folds": k, "seed": seed, "notes": len(notes), "patients": len(patient_index),
                   **{name: {key: pooled[name][key] for key in
                             ("span_recall", "span_exact_recall", "over_redaction", "precision")}
                      for name in SYSTEMS}}
        card = _fit(notes, [], out, progress=stage("final model training"),
                    extra={"cross_validation": summary}, **fit_options)
        result["model"] = {"out": str(out), "steps": card["training"]["steps"],
                           "seconds": card["training"]["seconds"],
                           "parameters": card["training"]["parameters"]}
    return result


@contextlib.contextmanager
def _restore_threads(torch, threads: int):
    try:
        yield
    finally:
        torch.set_num_threads(threads)


_FIT_DEFAULTS = dict(vocab_size=4000, hidden_size=64, layers=2, heads=2, batch_size=32,
                     learning_rate=4e-3, dropout=0.1, window=WINDOW)


def _pct(v, digits=2) -> str:
    return "n/a" if v is None else f"{100 * v:.{digits}f} %"


def _points(v, digits=2) -> str:
    return "n/a" if v is None else f"{100 * v:+.{digits}f}"


def _table(scores: dict) -> list[str]:
    rows = [("recall (any overlap)", "span_recall", 2), ("recall (exact span)", "span_exact_recall", 2),
            ("character recall", "character_recall", 2), ("precision", "precision", 2),
            ("over-redaction", "over_redaction", 3)]
    lines = [f"  {'':24s}" + "".join(f"{name:>13s}" for name in SYSTEMS)]
    for title, key, digits in rows:
        lines.append(f"  {title:24s}" + "".join(f"{_pct(scores[n][key], digits):>13s}" for n in SYSTEMS))
    lines.append("  per category (recall, any overlap):")
    for cat, m in scores["rules"]["per_category"].items():
        note = "  (excluded)" if m["excluded"] else ""
        title = f"{cat} n={m['gold']}"
        lines.append(f"    {title:22s}" + "".join(
            f"{_pct(scores[n]['per_category'][cat]['recall']):>13s}" for n in SYSTEMS) + note)
    return lines


def _gain_line(scores: dict) -> str:
    r, b, g = scores["rules"], scores["rules+model"], scores["gain"]
    return (f"  the model on top of the rules: recall {_points(g['span_recall'])} points "
            f"({_pct(r['span_recall'])} -> {_pct(b['span_recall'])}, {g['gold_spans_found']:+d} "
            f"gold spans found), over-redaction {_points(g['over_redaction'], 3)} points "
            f"({_pct(r['over_redaction'], 3)} -> {_pct(b['over_redaction'], 3)})")


def format_cv_result(result: dict) -> list[str]:
    """The cross-validation figures as readable tables (lines): each fold, then pooled."""
    t = result["training"]
    cap = "" if t["max_steps"] is None else f", at most {t['max_steps']} steps"
    lines = [f"cross-validation by patient: {result['folds_k']} folds of {result['patients']} "
             f"patients ({result['notes']} notes), seed {result['seed']}; each fold scored with "
             f"a model trained on the others ({t['epochs']} epochs"
             f"{cap}) "
             f"in {result['cv_seconds']:.0f}s"]
    for f in result["folds"]:
        lines.append(f"fold {f['fold']}/{result['folds_k']}: {f['test_notes']} notes of "
                     f"{f['test_patients']} patients ({f['rules']['headline_spans']} gold spans "
                     f"in the headline); trained on {f['train_notes']} notes of "
                     f"{f['train_patients']} patients ({f['steps']} steps, {f['train_seconds']:.1f}s)")
        lines += _table(f) + [_gain_line(f)]
    p = result["pooled"]
    excluded = ", ".join(p["rules"]["excluded_categories"]) or "none"
    lines.append(f"pooled over the {result['folds_k']} folds: {p['rules']['notes']} notes, "
                 f"{p['rules']['gold_spans']} gold spans ({p['rules']['headline_spans']} in the "
                 f"headline; excluded: {excluded})")
    lines += _table(p)
    for name in SYSTEMS:
        ci, over = p[name]["span_recall_ci95"], p[name]["over_redaction_ci95"]
        if ci and over:
            lines.append(f"    95 % CI {name:12s} recall {100 * ci[0]:.2f}–{100 * ci[1]:.2f} %, "
                         f"over-redaction {100 * over[0]:.3f}–{100 * over[1]:.3f} % "
                         f"(bootstrap over patients)")
    lines.append(_gain_line(p))
    if result["model"]:
        m = result["model"]
        lines.append(f"final model trained on all {result['notes']} notes ({m['steps']} steps, "
                     f"{m['seconds']:.1f}s); saved to {m['out']}")
    return lines
