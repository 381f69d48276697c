"""Free-text reports: ``deid-report``, ``eval-report``, ``train-ner``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..core.errors import UpdpError
from ._common import (
    add_json,
    add_json_out,
    add_quiet,
    check_output_file,
    command,
    non_negative,
    open_key,
    print_json,
    progress,
    seed,
    stage_progress,
    warn,
    write_json_out,
)

NER_MODEL_HELP = "also run the model detector in DIR (made by updp train-ner) beside the rules"


def register(subparsers) -> None:
    _register_deid_report(subparsers)
    _register_eval_report(subparsers)
    _register_train_ner(subparsers)
    _register_label_reports(subparsers)


def _add_ner_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ner-model", metavar="DIR", help=NER_MODEL_HELP)


def _deidentifier(args: argparse.Namespace):
    from ..deid.report import ReportDeidentifier, SiteConfig

    config = SiteConfig.load(args.config) if args.config else None
    extra = []
    if args.ner_model:
        from ..deid.report.ner import NerDetector

        extra.append(NerDetector(args.ner_model))
    return ReportDeidentifier(config=config, extra_detectors=extra)


# -- deid-report -----------------------------------------------------------------------------

def _register_deid_report(subparsers) -> None:
    p = command(
        subparsers, "deid-report", _cmd_deid_report,
        "remove PHI from free-text reports (one file, stdin, or a folder)",
        "Find names, dates, identifiers, contact details, places and ages over 89 in a report "
        "and replace them; pathology vocabulary stays byte-identical. Batch: --in DIR --out "
        "DIR over every *.txt (unreadable files are listed and skipped; exit status 1 if any "
        "was).")
    p.add_argument("file", nargs="?", help="report file, or - for standard input")
    p.add_argument("--header", metavar="DICOM", help="the study's DICOM file: its identifiers "
                   "(names, IDs, dates, institution) are searched in the report too")
    p.add_argument("--header-beside", action="store_true", help="batch: use the DICOM file "
                   "in each report's folder as that report's --header (its identifiers, and "
                   "the patient's date shift shared with deid-dicom)")
    p.add_argument("--mode", choices=["surrogate", "tag", "mask"], default="tag",
                   help="surrogate: consistent fakes and shifted dates (needs --key-file); "
                        "tag: [NAME], [DATE], …; mask: ****  (default tag)")
    p.add_argument("--key-file", metavar="K", help="secret key for surrogates and date shift")
    add_json(p, "print (or write beside) the redacted text with the spans found, offsets "
                "into the input")
    p.add_argument("--config", metavar="site.toml", help="site configuration: staff names, "
                   "identifier formats, protected terms")
    _add_ner_model(p)
    p.add_argument("--in", dest="in_dir", metavar="DIR", help="batch: folder of *.txt reports")
    p.add_argument("--out", dest="out_dir", metavar="DIR", help="batch: where to write them "
                   "(identifiers in folder and file names replaced: PEARSON.txt, 2262592/)")
    p.add_argument("--record", metavar="FILE", help="batch: where to write which report became "
                   "which output and which were skipped (default: records/ beside the key file; "
                   "it names the originals, so never inside OUT)")
    p.add_argument("--follow-symlinks", action="store_true", help="batch: read reports through "
                   "symbolic links (refused by default: their targets may lie anywhere)")
    add_quiet(p)


def _key(args: argparse.Namespace) -> bytes | None:
    if args.mode != "surrogate":
        return None
    if not args.key_file:
        raise UpdpError("--mode surrogate needs --key-file K (a secret key kept with the "
                        "workspace; created, owner-only, if it does not exist)")
    return open_key(key_file=args.key_file)


def _check_deid_report(args: argparse.Namespace) -> None:
    """Refuse option mixes that do not go together (before any work)."""
    if args.header_beside and not args.in_dir:
        raise UpdpError("--header-beside is for batch mode (--in DIR --out DIR)")
    if args.header_beside and args.header:
        raise UpdpError("give --header DICOM or --header-beside, not both")
    if (args.in_dir or args.out_dir) and (not (args.in_dir and args.out_dir) or args.file):
        raise UpdpError("batch mode takes --in DIR and --out DIR (and no FILE)")
    if not (args.in_dir or args.out_dir or args.file):
        raise UpdpError("give a report FILE, - for standard input, or --in DIR --out DIR")


def _cmd_deid_report(args: argparse.Namespace) -> int:
    from ..ingest import decode_report, read_report

    deid = _deidentifier(args)
    key = _key(args)
    header = None
    if args.header:
        from ..deid.report.header_values import read_header

        header = read_header(args.header)
    _check_deid_report(args)
    if args.in_dir:
        return _deid_report_folder(args, deid, key, header)
    if args.file == "-":
        if sys.stdin is None:
            raise UpdpError("standard input is closed: give a report file or pipe one in")
        text = decode_report(sys.stdin.buffer.read(), "standard input")
    else:
        text = read_report(args.file)
    result = deid.deidentify(text, header, mode=args.mode, key=key)
    if args.json:
        print_json(result.as_json(text), ensure_ascii=False)
    else:
        sys.stdout.write(result.text)
    return 0


def _deid_report_folder(args: argparse.Namespace, deid, key, header) -> int:
    from ..deid.report.batch import deidentify_folder

    record = _report_record_path(args)
    if record is not None:
        _check_record(record, Path(args.out_dir))
    result = deidentify_folder(args.in_dir, args.out_dir, deid, mode=args.mode, key=key,
                               header=header, use_header_beside=args.header_beside,
                               write_json=args.json, follow_symlinks=args.follow_symlinks,
                               progress=progress(args, "deid-report"))
    summary = result.summary()
    if record is not None:
        result.write_record(record)
        summary += f"; record: {record}"
    elif result.renamed:
        summary += "; give --record FILE (or --key-file) to keep which report became which"
    print(summary)
    for rel, reason in result.skipped:
        warn(f"  skipped {rel}: {reason}")
    return 1 if result.skipped else 0


def _check_record(record: Path, out: Path) -> None:
    """Refuse a record that could not be written, before any report is: written last, its
    failure would leave the outputs without what maps them to the originals."""
    if record.resolve().is_relative_to(out.resolve()):
        raise UpdpError(f"{record}: the record names the original files; keep it out of OUT")
    check_output_file(record, "the record")


def _report_record_path(args: argparse.Namespace) -> Path | None:
    """--record, else a new record in records/ beside the key file, else none."""
    from datetime import datetime, timezone

    if args.record:
        return Path(args.record)
    if not args.key_file:
        return None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path(args.key_file).parent / "records" / f"deid-report-{stamp}.jsonl"


# -- eval-report -----------------------------------------------------------------------------

def _register_eval_report(subparsers) -> None:
    p = command(
        subparsers, "eval-report", _cmd_eval_report,
        "score report de-identification against a cohort's ground truth or an annotated "
        "JSONL corpus",
        "Precision, recall and F1 (span any-overlap, span exact, character level), recall per "
        "category, and whitelist retention (share of protected pathology terms left intact). "
        "Given a .jsonl file (one note a line: id, text, spans of start, end, category), it "
        "scores the rules on that corpus instead: span recall (any overlap, exact), character "
        "recall, precision, over-redaction, recall per category, with 95 % bootstrap "
        "intervals.")
    p.add_argument("cohort", type=Path, metavar="COHORT|CORPUS.jsonl",
                   help="a cohort folder made by updp make-cohort, or an annotated JSONL corpus")
    add_json(p, "print the full result as JSON")
    p.add_argument("--config", metavar="site.toml", help="site configuration")
    p.add_argument("--no-header", action="store_true", help="do not use the DICOM headers")
    _add_ner_model(p)
    p.add_argument("--exclude-categories", metavar="LIST", default="DateYear",
                   help="corpus: comma list of categories left out of the headline recall and "
                        "reported apart (default DateYear; '' for none)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="corpus: bootstrap resamples for the 95 %% intervals (default 1000; "
                        "0: none)")
    p.add_argument("--bootstrap-by", choices=["patient", "note"], default="patient",
                   help="corpus: resample patients (ids <any>_<patient>_<note>; notes when ids "
                        "have another form) or notes (default patient)")
    p.add_argument("--seed", type=seed, default=0, help="corpus: bootstrap seed (default 0)")
    add_quiet(p)


def _cmd_eval_report(args: argparse.Namespace) -> int:
    from ..evaluate.report import evaluate_corpus, evaluate_reports, format_corpus_result

    if str(args.cohort).lower().endswith(".jsonl"):  # an annotated corpus, not a cohort
        excluded = [c.strip() for c in args.exclude_categories.split(",") if c.strip()]
        result = evaluate_corpus(args.cohort, _deidentifier(args), exclude_categories=excluded,
                                 bootstrap=args.bootstrap, bootstrap_by=args.bootstrap_by,
                                 seed=args.seed, progress=progress(args, "eval-report"))
        print(json.dumps(result, indent=2) if args.json else "\n".join(format_corpus_result(result)))
        return 0
    result = evaluate_reports(args.cohort, _deidentifier(args), use_header=not args.no_header,
                              progress=progress(args, "eval-report"))
    if args.json:
        print_json(result)
    else:
        print("\n".join(_cohort_result_lines(result)))
    return 0


def _cohort_result_lines(result: dict) -> list[str]:
    lines = [f"{result['reports']} reports, {result['gold_spans']} PHI spans "
             f"({'with' if result['header_used'] else 'without'} header identifiers)"]
    for name, m in (("span (any overlap)", result), ("span (exact)", result["span_exact"]),
                    ("character", result["character"])):
        lines.append(f"  {name:20s} precision {m['precision']:.4f}  recall {m['recall']:.4f}  "
                     f"f1 {m['f1']:.4f}")
    lines.append(f"  whitelist retention  {result['whitelist_retention']:.4f} "
                 f"({result['protected_terms']} protected terms)")
    lines += _category_recall_lines(result["per_category"])
    return lines


def _category_recall_lines(per_category: dict) -> list[str]:
    return [f"    {cat:12s} recall {m['recall']:.4f}  (n={m['gold']})"
            for cat, m in per_category.items()]


# -- train-ner -------------------------------------------------------------------------------

def _register_train_ner(subparsers) -> None:
    p = command(
        subparsers, "train-ner", _cmd_train_ner,
        "train the optional model detector for reports on a cohort or corpus",
        "Train a small BERT token classifier (built here, no download) on the reports and PHI "
        "ground truth of a cohort made by updp make-cohort, or on annotated JSONL corpora "
        "(one note a line: id, text, spans with start, end, category; the corpus categories "
        "are mapped to the product's), or several of them. A fifth of the patients is held "
        "out and scored. DIR gets the model in the save_pretrained layout and updp_ner.json "
        "(labels, training, validation); use it with --ner-model. The folder is owner-only: a "
        "model fitted to reports is treated like them. With --cv K the patients are split "
        "into K folds and the rules, the model and both are scored on each held-out fold "
        "(corpus convention of eval-report), then the model is trained on all.")
    p.add_argument("cohort", type=Path, nargs="+", metavar="INPUT",
                   help="a cohort folder made by updp make-cohort, or an annotated .jsonl corpus")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="folder to write the model to (empty, absent, or an older model)")
    p.add_argument("--epochs", type=int, default=20, help="passes over the training reports "
                   "(default 20)")
    p.add_argument("--max-steps", type=int, metavar="N", help="at most N optimisation steps "
                   "(the epochs are cut short; default: no cap)")
    p.add_argument("--negatives", type=non_negative, default=4.0, metavar="R", help="PHI-free "
                   "training pieces per piece with PHI, drawn afresh each epoch (default 4; "
                   "0: all of them)")
    p.add_argument("--train-years", action="store_true", help="train a corpus's DateYear "
                   "spans as DATE (by default a year alone is trained as not PHI)")
    p.add_argument("--cv", type=int, metavar="K", help="cross-validate by patient with K "
                   "folds and print per-fold and pooled figures before training the model")
    p.add_argument("--cv-only", action="store_true", help="with --cv: no final model")
    add_json_out(p, "also write the figures (the --cv result, or updp_ner.json) to FILE as "
                    "JSON")
    p.add_argument("--seed", type=seed, default=0, help="random seed: initial weights, order, "
                   "held-out patients, folds (default 0)")
    add_quiet(p)


def _training_options(args: argparse.Namespace) -> dict:
    return {"seed": args.seed, "epochs": args.epochs, "max_steps": args.max_steps,
            "negatives": None if args.negatives == 0 else args.negatives,
            "train_years": args.train_years}


def _cmd_train_ner(args: argparse.Namespace) -> int:
    if args.cv is not None:
        return _cross_validate_ner(args)
    if args.cv_only:
        raise UpdpError("--cv-only needs --cv K")
    if args.out is None:
        raise UpdpError("--out DIR is needed: the folder to write the model to")
    check_output_file(args.json_out)
    from ..deid.report.ner import train_ner

    card = train_ner(args.cohort, args.out, progress=progress(args, "train-ner"),
                     **_training_options(args))
    if args.json_out:
        write_json_out(args.json_out, card, private=True)
    print("\n".join(_ner_card_lines(card, args.out)))
    return 0


def _cross_validate_ner(args: argparse.Namespace) -> int:
    from ..deid.report.ner import cross_validate_ner, format_cv_result

    if args.out is None and not args.cv_only:
        raise UpdpError("--out DIR is needed for the final model (or give --cv-only)")
    check_output_file(args.json_out)
    result = cross_validate_ner(args.cohort, args.cv, None if args.cv_only else args.out,
                                progress=stage_progress(args, "train-ner"),
                                **_training_options(args))
    if args.json_out:
        write_json_out(args.json_out, result, private=True)
    print("\n".join(format_cv_result(result)))
    if args.json_out:
        print(f"wrote {args.json_out}")
    return 0


def _ner_card_lines(card: dict, out: Path) -> list[str]:
    t, v = card["training"], card["validation"]
    lines = [f"trained on {t['train_reports']} reports of {t['train_patients']} patients in "
             f"{t['seconds']:.1f}s ({t['epochs']} epochs, {t['parameters']:,} parameters, "
             f"{t['vocabulary']} word pieces); saved to {out}"]
    if v is None:
        return lines + ["no validation: the cohort has a single patient, none could be held out"]
    lines.append(f"validation on {t['validation_reports']} reports of "
                 f"{t['validation_patients']} held-out patients ({v['gold_spans']} PHI spans), "
                 "the model alone:")
    for name, m in (("token", v["token"]), ("span (any overlap)", v["span"])):
        lines.append(f"  {name:20s} precision {m['precision']:.4f}  recall {m['recall']:.4f}  "
                     f"f1 {m['f1']:.4f}")
    lines.append(f"  {'span (exact)':20s} recall {v['span_exact_recall']:.4f}")
    return lines + _category_recall_lines(v["per_category_recall"])


# -- label-reports ---------------------------------------------------------------------------

def _register_label_reports(subparsers) -> None:
    p = command(
        subparsers, "label-reports", _cmd_label_reports,
        "label the findings each report states, denies or hedges (positive, negative, "
        "uncertain)",
        "Read every *.txt report below DIR (or each {\"id\", \"text\"} line of a .jsonl "
        "corpus) and label the seven findings (cardiomegaly, effusion, nodule, mass, "
        "consolidation, pneumothorax, atelectasis) positive, negative, uncertain or not "
        "mentioned, by rules: mention lexicons, negation and uncertainty cues with a scope, "
        "normal statements; indication, history and comparison sections are not labelled. "
        "Reports that cannot be read are listed and skipped (exit status 1 if any was). "
        "With --iu, score the rules instead against the MeSH terms of the Indiana University "
        "chest X-ray reports (NLMCXR_reports.tgz or its folder): precision, recall and F1 per "
        "finding on the development half (odd report numbers), the test half (even) and all. "
        "With --model, label with a report classifier made by updp train-report-classifier "
        "instead of the rules: each finding positive or negative at the model's threshold, "
        "with its probability, and the privacy its card records (ε spent, δ).")
    p.add_argument("input", nargs="?", type=Path, metavar="DIR|CORPUS.jsonl",
                   help="a folder of *.txt reports (searched recursively) or a .jsonl corpus")
    add_json(p, "print the labels with each mention's offsets, words and cue as JSON")
    p.add_argument("--uncertain", choices=["positive", "negative", "ignore"],
                   help="count uncertain labels as positive or negative, or as not mentioned "
                        "(ignore); default: show them as uncertain (with --iu: score both "
                        "positive and negative)")
    p.add_argument("--iu", type=Path, metavar="NLMCXR_reports.tgz",
                   help="score against the Indiana University reports' MeSH terms instead "
                        "(the archive in the torchxrayvision wheel, or the folder it unpacks "
                        "to)")
    p.add_argument("--model", type=Path, metavar="CLASSIFIER",
                   help="label with this report classifier (a folder eps-E/ written by updp "
                        "train-report-classifier) instead of the rules (needs pip install "
                        "'updp-napari[dp,ner]')")
    p.add_argument("--follow-symlinks", action="store_true", help="read reports through "
                   "symbolic links (skipped by default)")
    add_quiet(p)


def _cmd_label_reports(args: argparse.Namespace) -> int:
    from ..labels.report import (
        evaluate_openi_halves,
        format_label_table,
        format_mesh_result,
        label_reports,
        read_openi,
        read_report_inputs,
    )

    if args.iu is not None:
        if args.input is not None:
            raise UpdpError("give DIR|CORPUS.jsonl to label, or --iu to score, not both")
        if args.model is not None:
            raise UpdpError("--iu scores the rules; score a classifier with updp "
                            "evaluate-report-classifier CLASSIFIER --iu NLMCXR_reports.tgz")
        if args.uncertain == "ignore":
            raise UpdpError("--iu scores uncertain as positive or negative; not ignore")
        policies = [args.uncertain] if args.uncertain else ["negative", "positive"]
        result = evaluate_openi_halves(read_openi(args.iu), policies,
                                       progress=progress(args, "label-reports"))
        if args.json:
            print_json(result)
        else:
            print("\n".join(format_mesh_result(result)))
        return 0
    if args.input is None:
        raise UpdpError("give a folder of *.txt reports or a .jsonl corpus (or --iu "
                        "NLMCXR_reports.tgz to score)")
    items, skipped = read_report_inputs(args.input, follow_symlinks=args.follow_symlinks)
    if not items and not skipped:
        raise UpdpError(f"{args.input}: no reports here (a folder of *.txt or a .jsonl corpus)")
    if args.model is not None:
        return _label_with_model(args, items, skipped)
    labels = label_reports(items, progress=progress(args, "label-reports"))
    if args.json:
        print_json({"reports": [{"id": report_id, **labels[report_id].as_json(text,
                                                                           args.uncertain)}
                                for report_id, text in items],
                    "skipped": [{"id": rel, "reason": reason} for rel, reason in skipped]},
                   ensure_ascii=False)
    else:
        print("\n".join(format_label_table(labels, args.uncertain)))
    return _skipped_status(skipped)


def _skipped_status(skipped) -> int:
    for rel, reason in skipped:
        warn(f"  skipped {rel}: {reason}")
    return 1 if skipped else 0


def _label_with_model(args: argparse.Namespace, items, skipped) -> int:
    """label-reports --model: the learned labeller, one row per report as the rules print."""
    from ..labels.report import format_label_table
    from ..scoring.report_classifier import label_with_classifier

    if args.uncertain is not None:
        raise UpdpError("--uncertain is for the rules: the classifier says positive or "
                        "negative, never uncertain")
    labels, probabilities, privacy = label_with_classifier(args.model, [t for _, t in items])
    if args.json:
        print_json({"model": {"folder": str(args.model), **privacy},
                    "reports": [{"id": report_id, "labels": dict(lab),
                                 "probabilities": {f: round(float(p), 4)
                                                   for f, p in zip(lab, row)}}
                                for (report_id, _), lab, row in zip(items, labels,
                                                                    probabilities)],
                    "skipped": [{"id": rel, "reason": reason} for rel, reason in skipped]},
                   ensure_ascii=False)
        return _skipped_status(skipped)
    spent = privacy["epsilon_spent"]
    budget = (f"ε spent {spent:.3f}, δ {privacy['delta']:g}" if spent is not None
              else "no privacy (ε = inf)")
    print(f"labelled by the report classifier {args.model} ({budget}; positive at "
          f"probability ≥ {privacy['threshold']:g})")
    print("\n".join(format_label_table(dict(zip((i for i, _ in items), labels)))))
    return _skipped_status(skipped)
