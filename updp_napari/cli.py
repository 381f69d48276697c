"""``updp``: the command line. Each subcommand is a thin layer over a Python function."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from .core.errors import UpdpError


def _cmd_make_cohort(args: argparse.Namespace) -> int:
    from .cohort.generate import make_cohort, read_ground_truth, summarize
    from .core.progress import Progress

    info = make_cohort(args.out, patients=args.patients, studies=args.studies, seed=args.seed,
                       size=args.size, sites=args.sites, overwrite=args.overwrite,
                       progress=Progress("make-cohort", enabled=not args.quiet))
    sites = ", ".join(f"{s['code']} ({s['modality']})" for s in info["sites"])
    print(f"wrote {info['studies']} studies of {info['patients']} patients at {info['size']}px "
          f"to {args.out} (seed {info['seed']}; sites: {sites})")
    for line in summarize(read_ground_truth(args.out)):
        print(f"  {line}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_benchmark

    result = run_benchmark(args.what, args)
    text = json.dumps(result, indent=2, sort_keys=True)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    print(text)
    return 0


def _deidentifier(args: argparse.Namespace):
    from .deid.report import ReportDeidentifier, SiteConfig

    config = SiteConfig.load(args.config) if args.config else None
    extra = []
    if getattr(args, "ner_model", None):
        from .deid.report.ner import NerDetector

        extra.append(NerDetector(args.ner_model))
    return ReportDeidentifier(config=config, extra_detectors=extra)


def _key(args: argparse.Namespace) -> bytes | None:
    if args.mode != "surrogate":
        return None
    if not args.key_file:
        raise UpdpError("--mode surrogate needs --key-file K (a secret key kept with the "
                        "workspace; created, owner-only, if it does not exist)")
    return _open_key(Path(args.key_file))


def _open_key(path: Path) -> bytes:
    """Load the workspace key, or create it (owner-only) and say so."""
    from .core.keys import load_or_create_key

    existed = path.exists()
    key = load_or_create_key(path)
    if not existed:
        print(f"created key file {path} (owner-only); keep it secret", file=sys.stderr)
    return key


def _cmd_deid_report(args: argparse.Namespace) -> int:
    from .ingest import decode_report, read_report

    deid = _deidentifier(args)
    key = _key(args)
    header = None
    if args.header:
        from .deid.report.header import read_header

        header = read_header(args.header)
    if args.header_beside and not args.in_dir:
        raise UpdpError("--header-beside is for batch mode (--in DIR --out DIR)")
    if args.header_beside and args.header:
        raise UpdpError("give --header DICOM or --header-beside, not both")
    if args.in_dir or args.out_dir:
        if not (args.in_dir and args.out_dir) or args.file:
            raise UpdpError("batch mode takes --in DIR and --out DIR (and no FILE)")
        return _deid_report_batch(deid, args, key, header)
    if not args.file:
        raise UpdpError("give a report FILE, - for standard input, or --in DIR --out DIR")
    if args.file == "-":
        text = decode_report(sys.stdin.buffer.read(), "standard input")
    else:
        text = read_report(args.file)
    result = deid.deidentify(text, header, mode=args.mode, key=key)
    if args.json:
        print(json.dumps(result.as_json(text), ensure_ascii=False, indent=2))
    else:
        sys.stdout.write(result.text)
    return 0


def _header_beside(report: Path):
    """The identifiers of the one DICOM file in a report's folder (its study's image)."""
    from .deid.report.header import read_header

    images = sorted(report.parent.glob("*.dcm"))
    if len(images) != 1:
        raise UpdpError(f"{report.parent}: --header-beside needs exactly one *.dcm beside the "
                        f"report, found {len(images)}")
    return read_header(images[0])


def _deid_report_batch(deid, args, key, header) -> int:
    from .core.files import write_text_atomic
    from .core.progress import Progress
    from .ingest import read_report

    src, dst = Path(args.in_dir), Path(args.out_dir)
    if not src.is_dir():
        raise UpdpError(f"{src}: not a folder")
    files = sorted(p for p in src.rglob("*.txt") if p.is_file())
    if not files:
        raise UpdpError(f"{src}: no *.txt reports in this folder")
    dst.mkdir(parents=True, exist_ok=True)
    progress = Progress("deid-report", enabled=not args.quiet)
    failed = []
    for n, path in enumerate(files, 1):
        rel = path.relative_to(src)
        try:
            text = read_report(path)
            this_header = _header_beside(path) if args.header_beside else header
            result = deid.deidentify(text, this_header, mode=args.mode, key=key)
            out = dst / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(out, result.text, private=True)
            if args.json:
                write_text_atomic(out.with_suffix(".json"), json.dumps(
                    result.as_json(text), ensure_ascii=False, indent=2) + "\n", private=True)
        except UpdpError as exc:
            failed.append((rel, str(exc)))
        progress(n, len(files))
    print(f"de-identified {len(files) - len(failed)} of {len(files)} reports into {dst}")
    for rel, reason in failed:
        print(f"  skipped {rel}: {reason}", file=sys.stderr)
    return 1 if failed else 0


def _cmd_eval_report(args: argparse.Namespace) -> int:
    from .core.progress import Progress
    from .evaluate.report import evaluate_corpus, evaluate_reports, format_corpus_result

    if str(args.cohort).lower().endswith(".jsonl"):  # an annotated corpus, not a cohort
        excluded = [c.strip() for c in args.exclude_categories.split(",") if c.strip()]
        result = evaluate_corpus(args.cohort, _deidentifier(args), exclude_categories=excluded,
                                 bootstrap=args.bootstrap, bootstrap_by=args.bootstrap_by,
                                 seed=args.seed,
                                 progress=Progress("eval-report", enabled=not args.quiet))
        print(json.dumps(result, indent=2) if args.json else "\n".join(format_corpus_result(result)))
        return 0
    result = evaluate_reports(args.cohort, _deidentifier(args), use_header=not args.no_header,
                              progress=Progress("eval-report", enabled=not args.quiet))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['reports']} reports, {result['gold_spans']} PHI spans "
          f"({'with' if result['header_used'] else 'without'} header identifiers)")
    for name, m in (("span (any overlap)", result), ("span (exact)", result["span_exact"]),
                    ("character", result["character"])):
        print(f"  {name:20s} precision {m['precision']:.4f}  recall {m['recall']:.4f}  "
              f"f1 {m['f1']:.4f}")
    print(f"  whitelist retention  {result['whitelist_retention']:.4f} "
          f"({result['protected_terms']} protected terms)")
    for cat, m in result["per_category"].items():
        print(f"    {cat:12s} recall {m['recall']:.4f}  (n={m['gold']})")
    return 0


def _cmd_train_ner(args: argparse.Namespace) -> int:
    from .core.files import write_text_atomic
    from .core.progress import Progress
    from .deid.report.ner import cross_validate_ner, format_cv_result, train_ner

    negatives = None if args.negatives == 0 else args.negatives
    if args.cv is not None:
        if args.out is None and not args.cv_only:
            raise UpdpError("--out DIR is needed for the final model (or give --cv-only)")
        bars: dict[str, Progress] = {}

        def progress(stage: str, done: int, total: int) -> None:
            bars.setdefault(stage, Progress(f"train-ner {stage}", enabled=not args.quiet))(done, total)

        result = cross_validate_ner(args.cohort, args.cv, None if args.cv_only else args.out,
                                    seed=args.seed, epochs=args.epochs, max_steps=args.max_steps,
                                    negatives=negatives, train_years=args.train_years,
                                    progress=progress)
        if args.json_out:
            write_text_atomic(Path(args.json_out), json.dumps(result, indent=2) + "\n", private=True)
        print("\n".join(format_cv_result(result)))
        if args.json_out:
            print(f"wrote {args.json_out}")
        return 0
    if args.cv_only:
        raise UpdpError("--cv-only needs --cv K")
    if args.out is None:
        raise UpdpError("--out DIR is needed: the folder to write the model to")
    card = train_ner(args.cohort, args.out, epochs=args.epochs, seed=args.seed,
                     max_steps=args.max_steps, negatives=negatives, train_years=args.train_years,
                     progress=Progress("train-ner", enabled=not args.quiet))
    if args.json_out:
        write_text_atomic(Path(args.json_out), json.dumps(card, indent=2) + "\n", private=True)
    t = card["training"]
    print(f"trained on {t['train_reports']} reports of {t['train_patients']} patients in "
          f"{t['seconds']:.1f}s ({t['epochs']} epochs, {t['parameters']:,} parameters, "
          f"{t['vocabulary']} word pieces); saved to {args.out}")
    v = card["validation"]
    if v is None:
        print("no validation: the cohort has a single patient, none could be held out")
        return 0
    print(f"validation on {t['validation_reports']} reports of {t['validation_patients']} "
          f"held-out patients ({v['gold_spans']} PHI spans), the model alone:")
    for name, m in (("token", v["token"]), ("span (any overlap)", v["span"])):
        print(f"  {name:20s} precision {m['precision']:.4f}  recall {m['recall']:.4f}  "
              f"f1 {m['f1']:.4f}")
    print(f"  {'span (exact)':20s} recall {v['span_exact_recall']:.4f}")
    for cat, m in v["per_category_recall"].items():
        print(f"    {cat:12s} recall {m['recall']:.4f}  (n={m['gold']})")
    return 0


def _cmd_train_filter(args: argparse.Namespace) -> int:
    from .core.progress import Progress
    from .synth.train import train_filter

    card = train_filter(args.cohort, args.out, size=args.size, epochs=args.epochs,
                        seed=args.seed, threads=args.threads, learning_rate=args.learning_rate,
                        ema_decay=args.ema_decay, init=args.init, loss_on=args.loss_on,
                        progress=Progress("train-filter", enabled=not args.quiet))
    m, t = card["model"], card["training"]
    print(f"trained a {m['size']}px filter ({m['parameters']:,} parameters, conditioning "
          f"{m['conditioning']}) on {t['cohort']['images']} images in {t['seconds']:.1f}s "
          f"({t['epochs']} epochs, {t['steps']} steps, final loss {t['final_loss']}); saved to {args.out}")
    return 0


def _print_scorer_figures(figures: dict) -> None:
    r, p = figures["reid"], figures["pathology"]
    print(f"  re-identification: verification AUC {r.get('verification_auc', float('nan')):.4f} over "
          f"{r['pairs']} pairs ({r['same_patient_pairs']} same-patient), same site only "
          f"{r.get('verification_auc_same_site', float('nan')):.4f}, EER "
          f"{r.get('equal_error_rate', float('nan')):.4f}")
    if "closed_set_top1" in r:
        print(f"  closed-set: top-1 {r['closed_set_top1']:.4f}, top-5 {r['closed_set_top5']:.4f} "
              f"({r['closed_set_queries']} queries, gallery of {r['closed_set_gallery_patients']} "
              "patients)")
    macro = "n/a" if p["macro_auc"] is None else f"{p['macro_auc']:.4f}"
    print(f"  pathology: macro AUC {macro}")
    for name, auc in p["auc"].items():
        print(f"    {name:14s} AUC {'skipped (one class only)' if auc is None else f'{auc:.4f}'}")


def _cmd_train_scorers(args: argparse.Namespace) -> int:
    from .core.progress import Progress
    from .scoring.train import train_scorers

    summary = train_scorers(args.cohort, args.out, size=args.size, reid_steps=args.reid_steps,
                            pathology_epochs=args.epochs, seed=args.seed, threads=args.threads,
                            progress=Progress("train-scorers", enabled=not args.quiet))
    s, t = summary["split"], summary["seconds"]
    print(f"trained on {s['train_studies']} studies of {s['train_patients']} patients in "
          f"{t['total']:.1f}s (re-identification {t['reid']:.1f}s, pathology {t['pathology']:.1f}s); "
          f"saved to {args.out}")
    print(f"held out: {s['heldout_studies']} studies of {s['heldout_patients']} patients never seen "
          "in training")
    _print_scorer_figures(summary["heldout"])
    return 0


def _cmd_eval_scorers(args: argparse.Namespace) -> int:
    import torch

    from .core.progress import Progress
    from .scoring import evaluate_scorers, load_scorers

    torch.set_num_threads(max(1, args.threads))
    scorers = load_scorers(args.scorers)
    figures = evaluate_scorers(args.cohort, scorers, size=args.size,
                               progress=Progress("eval-scorers", enabled=not args.quiet))
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{figures['studies']} studies of {figures['patients']} patients, scorers from {scorers.path}")
    _print_scorer_figures(figures)
    return 0


def _cmd_evaluate_filter(args: argparse.Namespace) -> int:
    import torch

    from .core.progress import Progress
    from .synth.evaluate import evaluate_filter, plot_curve, summary_lines

    try:
        strengths = [float(v) for v in args.strengths.split(",") if v.strip()]
    except ValueError:
        raise UpdpError(f"--strengths: not a comma list of numbers: {args.strengths!r}") from None
    if not strengths:
        raise UpdpError("--strengths: give at least one strength")
    torch.set_num_threads(max(1, args.threads))
    bars: dict[str, Progress] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bars.setdefault(stage, Progress(f"evaluate-filter {stage}", enabled=not args.quiet))(done, total)

    result = evaluate_filter(args.cohort, args.model, args.scorers, strengths, steps=args.steps,
                             dilation=args.dilation, eta=args.eta, seed=args.seed, limit=args.limit,
                             size=args.size, batch_size=args.batch_size, progress=progress)
    if args.plot:
        plot_curve(result, args.plot)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print("\n".join(summary_lines(result)))
        if args.plot:
            print(f"privacy–utility curve: {args.plot}")
    return 0


def _workspace_key(args: argparse.Namespace) -> bytes:
    """The workspace's secret key: DIR/secret.key (made, owner-only), or --key-file K."""
    import os

    if bool(args.workspace) == bool(args.key_file):
        raise UpdpError("give one of --workspace DIR or --key-file K (the secret that keys the "
                        "UID remap, pseudonyms and date shift; keep it with the workspace)")
    if args.workspace:
        Path(args.workspace).mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(args.workspace, 0o700)
        path = Path(args.workspace) / "secret.key"
    else:
        path = Path(args.key_file)
    return _open_key(path)


def _cmd_deid_dicom(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from .core.progress import Progress
    from .deid.dicom import DicomDeidentifier, deidentify_tree
    from .deid.header import parse_options, parse_safe_private

    key = _workspace_key(args)
    extra = frozenset()
    if args.safe_private:
        try:
            text = Path(args.safe_private).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UpdpError(f"{args.safe_private}: cannot read ({type(exc).__name__})") from None
        extra = parse_safe_private(text, args.safe_private)
    deid = DicomDeidentifier(key, parse_options(args.options), pixels=args.pixels,
                             trust_burned_in_no=args.trust_burned_in_no, extra_safe_private=extra)
    if args.record:
        record_path = Path(args.record)
    else:  # in the workspace (or beside the key): it names the original files
        home = Path(args.workspace) if args.workspace else Path(args.key_file).parent
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        record_path = home / "records" / f"deid-dicom-{stamp}.jsonl"
    records = deidentify_tree(args.input, args.output, deid,
                              progress=Progress("deid-dicom", enabled=not args.quiet),
                              record_path=record_path)
    done = [r for r in records if r.status == "ok"]
    skipped = [r for r in records if r.status != "ok"]
    # Files that are plainly not DICOM (reports, masks) are counted; the rest are named.
    not_dicom = [r for r in skipped if r.reason.startswith("not ")]
    for r in [r for r in skipped if r not in not_dicom][:20]:
        print(f"skipped {r.file}: {r.reason}", file=sys.stderr)
    if len(skipped) - len(not_dicom) > 20:
        print(f"… and {len(skipped) - len(not_dicom) - 20} more skipped (see the record)",
              file=sys.stderr)
    if not_dicom:
        print(f"{len(not_dicom)} file(s) are not DICOM and were left out (listed in the record)",
              file=sys.stderr)
    boxes = sum(len(r.pixels.get("boxes", [])) for r in done)
    print(f"de-identified {len(done)} file(s) into {args.output} ({boxes} burned-in text "
          f"box(es) filled); skipped {len(skipped)}; record: {record_path}")
    return 1 if skipped and not done else 0


def _cmd_scan_leaks(args: argparse.Namespace) -> int:
    from .core.files import write_text_atomic
    from .core.progress import Progress
    from .deid.leaks import scan_leaks

    report = scan_leaks(args.originals, args.deidentified, ocr=not args.no_ocr,
                        progress=Progress("scan-leaks", enabled=not args.quiet),
                        record=args.record)
    # Places and categories only: the values themselves never reach the output.
    for leak in report.leaks:
        print(leak.line())
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if args.json:
        write_text_atomic(args.json, json.dumps(report.as_json(), indent=2) + "\n")
    print(report.summary())
    if not report.files:
        raise UpdpError(f"{args.originals}: no DICOM file could be read, nothing was scanned")
    return 0 if report.clean else 1


def _cmd_plugins(args: argparse.Namespace) -> int:
    from .core.registry import GROUPS, discover

    for group, purpose in GROUPS.items():
        found = discover(group)
        print(f"{group}  ({purpose})")
        for name, info in found.items():
            dist = f"  [{info.distribution}]" if info.distribution else ""
            print(f"  {name} = {info.value}{dist}")
        if not found:
            print("  (none installed)")
    return 0


def _cmd_cases(args: argparse.Namespace) -> int:
    from .review.store import ReviewStore

    with ReviewStore.open(args.workspace) as store:
        for case in store.cases(status=args.status):
            print(case.case_id)
    return 0


def _cmd_decide(args: argparse.Namespace) -> int:
    import getpass

    from .review.store import ReviewStore

    reviewer = args.reviewer
    if reviewer is None:
        try:
            reviewer = getpass.getuser()
        except (OSError, KeyError):
            raise UpdpError("cannot tell the user name of this session; give --reviewer NAME") \
                from None
    with ReviewStore.open(args.workspace) as store:
        done = store.decide(args.case_id, args.decision, reviewer=reviewer,
                            comment=args.comment)
        status = store.case(done.case_id).status
    print(f"case {done.case_id}: {status} by {done.reviewer} at {done.decided_at}")
    return 0


def _virtual_display():
    """Start an Xvfb display when there is none (a headless machine); its process, or None
    when a display is already there. The caller terminates it."""
    import os
    import select
    import shutil
    import subprocess

    if _has_display():
        return None
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise UpdpError("no display (DISPLAY is not set) and no Xvfb to make one: install xvfb "
                        "(apt-get install xvfb) or run under xvfb-run")
    read, write = os.pipe()
    # -displayfd: Xvfb picks a free display number and writes it to us when it is ready.
    process = subprocess.Popen([xvfb, "-displayfd", str(write), "-screen", "0", "1920x1200x24",
                                "-nolisten", "tcp"], pass_fds=(write,),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    number = b""
    try:
        while not number.endswith(b"\n"):
            ready, _, _ = select.select([read], [], [], 10.0)
            chunk = os.read(read, 16) if ready else b""
            if not chunk:
                break
            number += chunk
    finally:
        os.close(read)
    if not number.strip().isdigit():
        process.kill()
        raise UpdpError("could not start a virtual display (Xvfb did not come up within 10 s)")
    os.environ["DISPLAY"] = f":{number.strip().decode()}"
    return process


def _sample_workspace() -> Path:
    """The sample cohort's workspace, run through the pipeline on first use."""
    import os

    from ._sample_data import sample_cohort_path
    from .core.progress import Progress
    from .pipeline import run_pipeline

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    workspace = cache / "updp-napari" / "sample-workspace"
    stamp_file, stamp = workspace / "sample-stamp", _shipped_models_stamp()
    if not (workspace / "workspace.sqlite").is_file() or not _all_cases_run(workspace):
        print(f"building the sample workspace in {workspace} (once)", file=sys.stderr)
    elif not stamp_file.is_file() or stamp_file.read_text(encoding="ascii", errors="replace") != stamp:
        # Made by another version or other shipped models: the run redoes the cases whose
        # synthetic image those models would no longer make (decided cases stay as decided).
        print(f"updating the sample workspace in {workspace} to this version's models", file=sys.stderr)
    else:
        return workspace
    run_pipeline(sample_cohort_path(), workspace, progress=Progress("sample"))
    stamp_file.write_text(stamp, encoding="ascii")
    return workspace


def _shipped_models_stamp() -> str:
    """The package version and a digest of the shipped models' files (cheap: no torch)."""
    import hashlib

    from . import __version__

    models = Path(__file__).resolve().parent / "models"
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(models.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(models).as_posix().encode() + b"\0" + path.read_bytes())
    return f"{__version__} {digest.hexdigest()}"


def _all_cases_run(workspace: Path) -> bool:
    from .review.store import ReviewStore

    with ReviewStore.open(workspace) as store:
        cases = store.cases()
        return bool(cases) and all("synthetic" in c.artifacts or c.status == "failed"
                                   for c in cases)


def _cmd_review(args: argparse.Namespace) -> int:
    from .review.session import ReviewSession

    if args.sample:
        if args.workspace is not None:
            raise UpdpError("give a WORKSPACE or --sample, not both")
        args.workspace = _sample_workspace()
    elif args.workspace is None:
        raise UpdpError("give the WORKSPACE to review (or --sample for the sample cohort)")
    # The workspace is checked before any window opens: a wrong folder is one line, exit 2.
    session = ReviewSession.open(args.workspace, reviewer=args.reviewer)
    try:
        return _in_napari("UPDP Review", "Review", session, args.screenshot,
                          "on a headless machine use --screenshot OUT.png")
    finally:
        session.close()


def _has_display() -> bool:
    import os

    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) \
        or sys.platform != "linux"


def _in_napari(title: str, dock: str, session, screenshot, headless_hint: str) -> int:
    """Open napari with one of our docks on ``session`` (through napari's plugin registry,
    as the Plugins menu does) and run it; with ``screenshot``, render the window on a
    virtual display when there is none, save it, print the path and return."""
    display = None
    try:
        if screenshot:
            display = _virtual_display()
        elif not _has_display():
            raise UpdpError(f"no display to open the window on (DISPLAY is not set); {headless_hint}")
        try:
            import napari
        except ImportError:
            raise UpdpError("this needs napari and a Qt binding: pip install "
                            "'updp-napari[gui]'") from None
        viewer = napari.Viewer(title=title, show=True)
        try:
            _, widget = viewer.window.add_plugin_dock_widget("updp-napari", dock)
        except (KeyError, ValueError, LookupError) as exc:
            viewer.close()
            raise UpdpError(f"napari does not list the updp-napari {dock} dock ({exc}); "
                            "reinstall updp-napari") from None
        if screenshot:
            viewer.window.resize(1600, 1000)
        widget.open_session(session)
        if screenshot:
            widget.screenshot(screenshot)
            viewer.close()
            print(screenshot)
            return 0
        napari.run()
        return 0
    finally:
        if display is not None:
            display.terminate()
            display.wait(timeout=10)


def _cmd_run(args: argparse.Namespace) -> int:
    from .core.progress import Progress
    from .pipeline import run_pipeline

    if args.threads is not None:
        import torch

        torch.set_num_threads(max(1, args.threads))
    summary = run_pipeline(args.input, args.workspace, manifest=args.manifest,
                           model=args.filter_model, scorers=args.scorers, strength=args.strength,
                           seed=args.seed, steps=args.steps, pixels=args.pixels,
                           progress=Progress("run", enabled=not args.quiet),
                           score_progress=Progress("scores", enabled=not args.quiet))
    print(f"{summary.cases} case(s) in {args.workspace}: {summary.done} done now, "
          f"{summary.already_done} already done, {len(summary.failed)} failed; "
          f"{summary.scored} scored")
    if summary.not_studies:
        print(f"{len(summary.not_studies)} file(s) were not studies and were left out:")
        for name, reason in summary.not_studies:
            print(f"  {name}: {reason}")
    if summary.failed:
        print("failed (listed by updp cases WORKSPACE --status failed; run again to retry):")
        for case_id, name, reason in summary.failed:
            print(f"  {case_id}  {name}: {reason}")
    return 0 if summary.done + summary.already_done > 0 else 1


def _cmd_export(args: argparse.Namespace) -> int:
    from .core.progress import Progress
    from .export import LeakFound, export_package

    try:
        summary = export_package(args.workspace, args.out, ocr=not args.no_ocr,
                                 progress=Progress("export", enabled=not args.quiet))
    except LeakFound as exc:
        print(f"updp export: {exc}", file=sys.stderr)
        return 1
    print(f"exported {len(summary.cases)} accepted case(s) to {summary.out} "
          f"({summary.pending} not accepted, left out); leak scan: {summary.scan}")
    return 0


def _parse_span(text: str | None):
    if text is None:
        return None
    start, sep, end = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(start), int(end)
    except ValueError:
        raise UpdpError("--span takes START:END, two character offsets such as 120:131") from None


def _parse_box(text: str | None):
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise UpdpError("--box takes x0,y0,x1,y1, four pixel coordinates such as 10,20,80,40")
    return values


def _audit_lines(audit) -> list[str]:
    sample = audit.sample
    strata = ",".join(sample.strata) or "none"
    lines = [f"audit sample of {audit.target.kind} {audit.target.path}: {len(sample.cases)} of "
             f"{sample.frame_size} case(s) in frame {sample.frame!r} (asked {sample.size_requested}, "
             f"strata {strata}, seed {sample.seed}, drawn by {sample.drawn_by} at {sample.drawn_at})"]
    if audit.frame_changed():
        lines.append("note: the frame holds other cases now than when the sample was drawn; the "
                     "bound speaks for the frame as it was")
    if audit.target.kind == "package":
        lines.append("note: a package does not record where its stand-ins are, so suspects "
                     "include them (places to look, not leaks)")
    lines.append("  #  case id           site      category            suspects  verdict")
    for case in sample.cases:
        view = audit.view(case.case_id)
        verdict = ",".join(sorted(view.verdicts)) or "-"
        lines.append(f"{case.position + 1:>3}  {case.case_id}  {case.site:<8}  {case.category:<18}  "
                     f"{len(view.suspects):>8}  {verdict}")
    return lines


def _cmd_audit(args: argparse.Namespace) -> int:
    from .audit.stats import plan_sample_size, upper_bound

    if args.plan:
        if args.target is not None or args.sample is not None:
            raise UpdpError("--plan takes no TARGET and no --sample (it only computes a size)")
        if args.max_rate is None:
            raise UpdpError("--plan needs --max-rate R (0.01 for 1%)")
        n = plan_sample_size(args.max_rate, args.confidence, args.findings)
        bound = upper_bound(args.findings, n, args.confidence)
        print(f"{n} cases: with {args.findings} finding(s) among {n} audited cases the one-sided "
              f"{args.confidence:.0%} Clopper-Pearson upper bound of the residual-PHI rate is "
              f"{bound:.4%}, below {args.max_rate:.4%}")
        return 0
    if args.target is None:
        raise UpdpError("give the TARGET (a review workspace or a share package), or --plan")
    from .audit.session import AuditSession

    with AuditSession.open(args.target, auditor=args.auditor) as audit:
        if args.sample is not None:
            _, drawn = audit.draw(args.sample, args.stratify, args.seed, args.frame)
            if drawn:
                print(f"drew a sample of {len(audit.sample.cases)} case(s) into "
                      f"{audit.audit_folder}", file=sys.stderr)
        elif audit.sample is None:
            raise UpdpError(f"{args.target}: no audit sample yet; draw one with --sample N")
        elif args.stratify or args.seed is not None or args.frame:
            raise UpdpError("--stratify, --seed and --frame go with --sample N")
        if args.list or not (args.screenshot or _has_display()):
            print("\n".join(_audit_lines(audit)))
            if not args.list:
                print("no display: the sample is printed above; mark cases with updp audit-mark, "
                      "or render the audit dock with --screenshot OUT.png", file=sys.stderr)
            return 0
        return _in_napari("UPDP Audit", "Audit", audit, args.screenshot,
                          "use --list or --screenshot OUT.png")


def _cmd_audit_mark(args: argparse.Namespace) -> int:
    from .audit.session import AuditSession

    with AuditSession.open(args.target, auditor=args.auditor) as audit:
        if audit.sample is None:
            raise UpdpError(f"{args.target}: no audit sample yet; draw one with updp audit "
                            "TARGET --sample N")
        finding = audit.mark(args.verdict, case_id=args.case_id, category=args.category,
                             span=_parse_span(args.span), box=_parse_box(args.box),
                             comment=args.comment)
    where = (f" at report {finding.span[0]}:{finding.span[1]}" if finding.span else
             f" at image box {','.join(map(str, finding.box))}" if finding.box else "")
    category = f" ({finding.phi_category})" if finding.phi_category else ""
    print(f"case {finding.case_id}: {finding.verdict.replace('_', '-')}{category}{where} by "
          f"{finding.auditor} at {finding.at} (finding {finding.finding_id})")
    return 0


def _cmd_audit_withdraw(args: argparse.Namespace) -> int:
    from .audit.session import AuditSession

    with AuditSession.open(args.target, auditor=args.auditor) as audit:
        if audit.sample is None:
            raise UpdpError(f"{args.target}: no audit sample yet, so no findings to withdraw")
        audit.withdraw(args.finding_id, args.reason)
    print(f"finding {args.finding_id} withdrawn")
    return 0

def _stats_lines(stats: dict) -> list[str]:
    def rate(r: dict) -> str:
        if r["rate"] is None:
            return "not audited yet"
        low, high = r["interval"]
        return (f"{r['events']}/{r['cases']} = {r['rate']:.2%}; upper bound {r['upper']:.2%} "
                f"(one-sided {r['confidence']:.0%}); two-sided [{low:.2%}, {high:.2%}]")

    lines = [f"sampled {stats['sampled']}, audited {stats['audited']}, not yet "
             f"{stats['not_audited']}, clean {stats['clean']}",
             f"residual PHI:   {rate(stats['residual_phi'])}",
             f"over-redaction: {rate(stats['over_redaction'])}"]
    for category, r in stats["by_phi_category"].items():
        lines.append(f"  residual PHI, {category}: {rate(r)}")
    for title, key in (("site", "by_site"), ("category", "by_category")):
        for value, group in stats[key].items():
            lines.append(f"  {title} {value} ({group['sampled']} sampled): residual PHI "
                         f"{rate(group['residual_phi'])}; over-redaction "
                         f"{rate(group['over_redaction'])}")
    return lines


def _cmd_audit_stats(args: argparse.Namespace) -> int:
    from .audit.session import AuditSession

    with AuditSession.open(args.target, auditor="stats") as audit:
        if audit.sample is None:
            raise UpdpError(f"{args.target}: no audit sample yet; draw one with updp audit "
                            "TARGET --sample N")
        stats = audit.statistics(args.confidence)
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        print("\n".join(_stats_lines(stats)))
    return 0


def _cmd_audit_report(args: argparse.Namespace) -> int:
    from .audit.report import write_audit_report

    out = write_audit_report(args.target, args.out, evaluation=args.evaluation,
                             confidence=args.confidence)
    print(f"audit report: {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="updp",
        description="UPDP Review: utility-preserving de-identification of chest X-ray studies.",
        epilog="Run `updp COMMAND --help` for the options of one command.")
    parser.add_argument("--version", action="version", version=f"updp-napari {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "make-cohort", help="write a synthetic chest X-ray cohort with ground truth",
        description="Write OUT/<study_id>/image.dcm, report.txt and mask_<finding>.png for "
                    "N patients with K studies each, plus OUT/ground_truth.jsonl (one JSON "
                    "object per study) and OUT/cohort.json. All people, numbers and places "
                    "are synthetic. The same arguments always give the same cohort.")
    p.add_argument("out", type=Path, help="folder to write (must be empty or absent)")
    p.add_argument("--patients", type=int, default=8, help="number of patients (default 8)")
    p.add_argument("--studies", type=int, default=3, help="studies per patient (default 3)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--size", type=int, default=256, help="image width and height in pixels "
                   "(multiple of 16, default 256)")
    p.add_argument("--sites", type=int, default=3, help="number of hospitals, 1-5 (default 3)")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_make_cohort)

    p = sub.add_parser(
        "bench", help="run a benchmark and print (or save) its JSON result",
        description="Benchmarks time real work on this machine and report medians over "
                    "repeats. `cohort`: studies per second of `make-cohort`; `report`: reports "
                    "per second of the rule de-identifier on one core; `dicom`: files per second of "
                    "deid-dicom, header only beside dicognito (if installed), and with OCR; "
                    "`synth`: seconds per 256-pixel image of the generative filter on the CPU "
                    "(--threads 1,2 for more thread counts), and images per second at 256 and "
                    "512 pixels when CUDA is present.")
    p.add_argument("what", choices=["cohort", "report", "dicom", "synth", "review"],
                   help="what to measure (review: the longest stall of the review dock's event "
                        "loop while it regenerates a case; needs napari)")
    p.add_argument("--studies", type=int, default=200, help="studies per run (default 200)")
    p.add_argument("--size", type=int, default=256, help="image size (default 256)")
    p.add_argument("--repeat", type=int, default=3, help="runs to take the median of (default 3)")
    p.add_argument("--ner-model", metavar="DIR", help="report: also time the de-identifier with "
                   "this model detector (a folder made by updp train-ner)")
    p.add_argument("--corpus", metavar="NOTES.jsonl", help="report: also time the notes of "
                   "this annotated corpus (the JSONL format of eval-report)")
    p.add_argument("--filter-model", metavar="DIR", help="synth: time this filter folder "
                   "instead of the shipped one")
    p.add_argument("--threads", default="1", metavar="LIST", help="synth: torch CPU thread counts "
                   "to time, comma-separated (default 1; more threads than idle cores is much "
                   "slower, not faster)")
    p.add_argument("--json", metavar="OUT.json", help="also write the result to this file")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser(
        "deid-report", help="remove PHI from free-text reports (one file, stdin, or a folder)",
        description="Find names, dates, identifiers, contact details, places and ages over 89 "
                    "in a report and replace them; pathology vocabulary stays byte-identical. "
                    "Batch: --in DIR --out DIR over every *.txt (unreadable files are listed "
                    "and skipped; exit status 1 if any was).")
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
    p.add_argument("--json", action="store_true", help="print (or write beside) the redacted "
                   "text with the spans found, offsets into the input")
    p.add_argument("--config", metavar="site.toml", help="site configuration: staff names, "
                   "identifier formats, protected terms")
    p.add_argument("--ner-model", metavar="DIR", help="also run the model detector in DIR (made "
                   "by updp train-ner) beside the rules")
    p.add_argument("--in", dest="in_dir", metavar="DIR", help="batch: folder of *.txt reports")
    p.add_argument("--out", dest="out_dir", metavar="DIR", help="batch: where to write them")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_deid_report)

    p = sub.add_parser(
        "eval-report", help="score report de-identification against a cohort's ground truth "
                            "or an annotated JSONL corpus",
        description="Precision, recall and F1 (span any-overlap, span exact, character level), "
                    "recall per category, and whitelist retention (share of protected "
                    "pathology terms left intact). Given a .jsonl file (one note a line: id, "
                    "text, spans of start, end, category), it scores the rules on that corpus "
                    "instead: span recall (any overlap, exact), character recall, precision, "
                    "over-redaction, recall per category, with 95 % bootstrap intervals.")
    p.add_argument("cohort", type=Path, metavar="COHORT|CORPUS.jsonl",
                   help="a cohort folder made by updp make-cohort, or an annotated JSONL corpus")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--config", metavar="site.toml", help="site configuration")
    p.add_argument("--no-header", action="store_true", help="do not use the DICOM headers")
    p.add_argument("--ner-model", metavar="DIR", help="also run the model detector in DIR (made "
                   "by updp train-ner) beside the rules")
    p.add_argument("--exclude-categories", metavar="LIST", default="DateYear",
                   help="corpus: comma list of categories left out of the headline recall and "
                        "reported apart (default DateYear; '' for none)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="corpus: bootstrap resamples for the 95 %% intervals (default 1000; "
                        "0: none)")
    p.add_argument("--bootstrap-by", choices=["patient", "note"], default="patient",
                   help="corpus: resample patients (ids <any>_<patient>_<note>; notes when ids "
                        "have another form) or notes (default patient)")
    p.add_argument("--seed", type=int, default=0, help="corpus: bootstrap seed (default 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_eval_report)

    p = sub.add_parser(
        "deid-dicom", help="de-identify DICOM files: PS3.15 profile, keyed UIDs, burned-in text",
        description="Apply the DICOM PS3.15 Annex E Basic Application Level Confidentiality "
                    "Profile with options, at any sequence depth; remove private elements not "
                    "on the allow-list; remap UIDs with a keyed hash (the same input UID gives "
                    "the same output UID across files and runs of a workspace); shift dates by "
                    "the patient's offset (the one deid-report uses); clean descriptors with the "
                    "report de-identifier; find burned-in text by OCR and fill it. OUT mirrors "
                    "IN's relative paths; files that are not DICOM or cannot be decoded are "
                    "listed and skipped; a record in the workspace says what was done to "
                    "each file (element paths and actions, never values).")
    p.add_argument("input", type=Path, help="a DICOM file, or a folder (searched recursively)")
    p.add_argument("output", type=Path, help="folder to write the de-identified files to")
    p.add_argument("--pixels", choices=["ocr", "off"], default="ocr",
                   help="ocr: find and fill burned-in text (needs tesseract); off: header only "
                        "(default ocr)")
    p.add_argument("--options", metavar="LIST",
                   help="comma list of profile options: retain-modified-dates, "
                        "clean-descriptors, retain-patient-characteristics, "
                        "retain-device-identity, retain-uids, retain-safe-private, "
                        "clean-pixel-data; 'default' for the defaults (all but retain-uids), "
                        "'none' for the basic profile alone, no-NAME to drop one "
                        "(e.g. default,no-retain-device-identity)")
    p.add_argument("--workspace", metavar="DIR", help="workspace folder holding the secret key "
                   "(DIR/secret.key, created owner-only)")
    p.add_argument("--key-file", metavar="K", help="the secret key file itself")
    p.add_argument("--record", metavar="FILE", help="where to write the per-file record "
                   "(default: WORKSPACE/records/deid-dicom-TIME.jsonl, or beside the key file); "
                   "it names the original files, so it never goes into OUT")
    p.add_argument("--safe-private", metavar="FILE", help="more private elements to keep "
                   "(creator, group, element; tab-separated)")
    p.add_argument("--trust-burned-in-no", action="store_true", help="skip the pixel scan "
                   "where BurnedInAnnotation says NO (by default every image is scanned: the "
                   "flag is often wrong)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_deid_dicom)

    p = sub.add_parser(
        "scan-leaks", help="prove de-identified DICOM holds none of its original's identifiers",
        description="Pair every original DICOM file under ORIGINALS with the file of the same "
                    "relative path under DEIDENTIFIED, and search the original's identifiers "
                    "(names in any order or case, IDs, dates in common forms, UIDs, addresses, "
                    "phone numbers, institutions, devices, private text, nested sequences) in "
                    "every element of the counterpart, in the reports (*.txt, *.json) beside it, "
                    "in its path and, by OCR, in its pixels. Prints `file  place  category` per "
                    "leak, never the value. Exit status 0 when clean, 1 when anything leaks or "
                    "a counterpart is missing or unreadable, 2 on input errors.")
    p.add_argument("originals", type=Path, help="original DICOM file, or a folder of them")
    p.add_argument("deidentified", type=Path, help="the de-identified file, or the folder that "
                   "mirrors the originals' relative paths")
    p.add_argument("--record", metavar="FILE", help="the deid-dicom record, to find files "
                   "written under another path (identifiers taken out of folder names)")
    p.add_argument("--no-ocr", action="store_true", help="leave the pixels out: headers, "
                   "reports and paths only")
    p.add_argument("--json", metavar="FILE", help="also write the findings to FILE as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_scan_leaks)

    p = sub.add_parser(
        "train-ner", help="train the optional model detector for reports on a cohort or corpus",
        description="Train a small BERT token classifier (built here, no download) on the "
                    "reports and PHI ground truth of a cohort made by updp make-cohort, or on "
                    "annotated JSONL corpora (one note a line: id, text, spans with start, end, "
                    "category; the corpus categories are mapped to the product's), or several "
                    "of them. A fifth of the patients is held out and scored. DIR gets the "
                    "model in the save_pretrained layout and updp_ner.json (labels, training, "
                    "validation); use it with --ner-model. The folder is owner-only: a model "
                    "fitted to reports is treated like them. With --cv K the patients are split "
                    "into K folds and the rules, the model and both are scored on each held-out "
                    "fold (corpus convention of eval-report), then the model is trained on all.")
    p.add_argument("cohort", type=Path, nargs="+", metavar="INPUT",
                   help="a cohort folder made by updp make-cohort, or an annotated .jsonl corpus")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="folder to write the model to (empty, absent, or an older model)")
    p.add_argument("--epochs", type=int, default=20, help="passes over the training reports "
                   "(default 20)")
    p.add_argument("--max-steps", type=int, metavar="N", help="at most N optimisation steps "
                   "(the epochs are cut short; default: no cap)")
    p.add_argument("--negatives", type=float, default=4.0, metavar="R", help="PHI-free "
                   "training pieces per piece with PHI, drawn afresh each epoch (default 4; "
                   "0: all of them)")
    p.add_argument("--train-years", action="store_true", help="train a corpus's DateYear "
                   "spans as DATE (by default a year alone is trained as not PHI)")
    p.add_argument("--cv", type=int, metavar="K", help="cross-validate by patient with K "
                   "folds and print per-fold and pooled figures before training the model")
    p.add_argument("--cv-only", action="store_true", help="with --cv: no final model")
    p.add_argument("--json-out", metavar="FILE", help="also write the figures (the --cv "
                   "result, or updp_ner.json) to FILE as JSON")
    p.add_argument("--seed", type=int, default=0, help="random seed: initial weights, order, "
                   "held-out patients, folds (default 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_train_ner)

    p = sub.add_parser(
        "train-filter", help="train the generative filter (a small diffusion UNet) on a cohort",
        description="Train the generative filter's diffusers UNet2DModel (v-prediction, cosine "
                    "schedule, DDIM sampling) on the radiographs of a cohort made by updp "
                    "make-cohort, from "
                    "random weights (no download). Beside the noisy image it sees the preserve "
                    "mask and the original under it, so it learns to draw anatomy around kept "
                    "findings. DIR gets unet/ and scheduler/ in the save_pretrained layout and "
                    "updp_filter.json (size, conditioning, cohort seed and counts, parameters, "
                    "training time, default strength and steps). Load it with "
                    "GenerativeFilter.load(DIR). With --init it trains a filter made before "
                    "further (same size and architecture), recording both runs in the card.")
    p.add_argument("cohort", type=Path, help="a cohort folder made by updp make-cohort")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder to write the model to (empty, absent, or an older filter)")
    p.add_argument("--size", type=int, default=None, help="side of the images the model works on, "
                   "a multiple of 16 (default 128); inputs of any size are scaled to it and back")
    p.add_argument("--epochs", type=int, default=20, help="passes over the cohort (default 20)")
    p.add_argument("--init", type=Path, metavar="DIR", help="a filter folder made by updp "
                   "train-filter to train further instead of starting from random weights")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="peak learning rate; it "
                   "warms up, then falls along a cosine to a tenth (default 0.001)")
    p.add_argument("--ema-decay", type=float, default=0.995, help="decay of the weight average "
                   "that is saved (default 0.995; closer to 1 averages over more steps)")
    p.add_argument("--seed", type=int, default=0, help="random seed: weights, order, noise, "
                   "masks (default 0); the same seed and cohort give the same model")
    p.add_argument("--loss-on", choices=("all", "drawn"), default="all", help="pixels the loss "
                   "counts: all, or only those the model draws (outside the kept region, which "
                   "sampling overwrites with the original); default all")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_train_filter)

    p = sub.add_parser(
        "evaluate-filter", help="privacy–utility evaluation of the generative filter on a cohort",
        description="Run the generative filter over every study of a cohort made by updp "
                    "make-cohort at each strength, and score originals and counterparts with the "
                    "scorers: re-identification verification AUC on pairs of originals and on "
                    "synthetic-vs-original pairs, closed-set re-identification top-1, pathology "
                    "macro AUC on originals and on synthetic images, and SSIM inside and outside "
                    "the preserve mask. The filter's default strength is always included; the "
                    "top-level figures are at that strength. Prints a table (or JSON with "
                    "--json) with the targets beside the figures.")
    p.add_argument("cohort", type=Path, help="a cohort folder made by updp make-cohort (use a "
                   "seed the models were not trained on)")
    p.add_argument("--strengths", default="0.2,0.4,0.6,0.8", help="comma list of strengths in "
                   "(0, 1] (default 0.2,0.4,0.6,0.8, plus the filter's default)")
    p.add_argument("--model", metavar="DIR", help="filter folder (default: the shipped one)")
    p.add_argument("--scorers", metavar="DIR", help="scorers folder made by updp train-scorers "
                   "(default: the shipped ones)")
    p.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    p.add_argument("--dilation", type=float, help="preserve-mask growth, share of the image side "
                   "(default: the model's)")
    p.add_argument("--eta", type=float, help="DDIM eta in [0, 1]: fresh noise at each step, 0 "
                   "deterministic, 1 ancestral (default: the model's)")
    p.add_argument("--seed", type=int, default=0, help="noise seed of the first study, +1 per "
                   "study (default 0)")
    p.add_argument("--size", type=int, default=256, help="side the images are read at (default 256)")
    p.add_argument("--limit", type=int, help="only the first N studies")
    p.add_argument("--batch-size", type=int, default=8, help="images per model call (default 8)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--plot", metavar="OUT.png", help="also save the privacy–utility curve")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_evaluate_filter)

    p = sub.add_parser(
        "cases", help="list the case ids of a review workspace, in review order",
        description="Print the case id of every case in WORKSPACE (or of those with --status), "
                    "one per line, in the order they were added. Case ids are keyed hashes of "
                    "the study identity: safe to print and log.")
    p.add_argument("workspace", type=Path, help="the review workspace folder")
    p.add_argument("--status", metavar="S", help="only cases with this status: pending, "
                   "accepted, rejected, flagged or failed")
    p.set_defaults(func=_cmd_cases)

    p = sub.add_parser(
        "decide", help="record a reviewer's decision on a case (accept, reject, flag)",
        description="Record a decision on one case of WORKSPACE exactly as the review dock "
                    "does: the case's status changes, the decision and an audit entry are "
                    "written, and both are on disk when the command returns.")
    p.add_argument("workspace", type=Path, help="the review workspace folder")
    p.add_argument("case_id", help="the case id (see updp cases)")
    p.add_argument("decision", help="accept, reject or flag")
    p.add_argument("--reviewer", metavar="NAME", help="who decides (default: the user name "
                   "of this session)")
    p.add_argument("--comment", metavar="TEXT", default="", help="a note kept with the "
                   "decision")
    p.set_defaults(func=_cmd_decide)

    p = sub.add_parser(
        "review", help="open a workspace in napari with the review dock",
        description="Open napari with the review dock on WORKSPACE at its first undecided case: "
                    "the case queue, original and synthetic side by side, the report with its "
                    "redactions, and Accept (A), Reject (R), Flag (F), Next (N), Previous (P), "
                    "Regenerate (G), Redact selection (X). Every decision is on disk when the "
                    "key is pressed. --screenshot renders the window (on a virtual display "
                    "when there is none), saves it and exits.")
    p.add_argument("workspace", type=Path, nargs="?", help="the review workspace folder")
    p.add_argument("--sample", action="store_true", help="review the sample cohort shipped "
                   "with the package (its workspace is built on first use, with the shipped "
                   "models, in ~/.cache/updp-napari/sample-workspace, and brought up to date "
                   "when another version or other shipped models open it)")
    p.add_argument("--reviewer", metavar="NAME", help="who reviews (default: the user name of "
                   "this session)")
    p.add_argument("--screenshot", metavar="OUT.png", type=Path, help="save a screenshot of the "
                   "whole window with the first case, print its path and exit")
    p.set_defaults(func=_cmd_review)

    p = sub.add_parser(
        "train-scorers", help="train the re-identification and pathology scorers on a cohort",
        description="Train the two scorers from random weights (no download) on a cohort made by "
                    "updp make-cohort: a Siamese re-identification verifier (privacy: is this the "
                    "same patient?) and a multi-label pathology classifier (utility: which "
                    "findings?). A fifth of the patients, with all their studies, is held out and "
                    "never seen in training; the command prints, on them, the verification AUC "
                    "(same vs different patient over all pairs, and over pairs of one site), "
                    "closed-set top-1 (each patient's first study is the gallery), the pathology "
                    "AUC per finding, and the time taken. DIR gets reid/ and pathology/, each "
                    "with config.json, model.safetensors and updp_scorer.json (kind, labels, "
                    "input size, cohort seed and counts, held-out figures); load them with "
                    "load_scorers(DIR). The same cohort, seed and threads give the same models.")
    p.add_argument("cohort", type=Path, help="a cohort folder made by updp make-cohort")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder to write the scorers to (empty, absent, or older scorers)")
    p.add_argument("--size", type=int, default=128, help="side the cohort's images are read at "
                   "(default 128); each model scales them to its own input")
    p.add_argument("--epochs", type=int, default=25, help="pathology: passes over the training "
                   "studies (default 25)")
    p.add_argument("--reid-steps", type=int, default=600, help="re-identification: batches of 16 "
                   "patients x 4 studies (default 600)")
    p.add_argument("--seed", type=int, default=0, help="random seed: held-out patients, weights, "
                   "batches, augmentation (default 0)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_train_scorers)

    p = sub.add_parser(
        "eval-scorers", help="score the scorers on a cohort (re-identification, pathology AUC)",
        description="Load the scorers (the ones shipped in the package, or --scorers DIR) and "
                    "print their figures on every study of COHORT: verification AUC over all "
                    "pairs and over pairs of one site, equal error rate, closed-set top-1 and "
                    "top-5, pathology AUC per finding and macro AUC. Use a cohort of a seed the "
                    "scorers were not trained on.")
    p.add_argument("cohort", type=Path, help="a cohort folder made by updp make-cohort")
    p.add_argument("--scorers", type=Path, metavar="DIR", help="a folder made by updp "
                   "train-scorers (default: the scorers shipped in the package)")
    p.add_argument("--size", type=int, default=128, help="side the images are read at (default 128)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_eval_scorers)

    p = sub.add_parser(
        "run", help="the whole pipeline over a folder of studies, into a review workspace",
        description="De-identify every study of INPUT (a cohort folder, or any folder of DICOM "
                    "files; reports matched by study folder, AccessionNumber or "
                    "StudyInstanceUID file name, or a --manifest CSV) into WORKSPACE: header "
                    "profile and burned-in text, report spans, the synthetic counterpart from "
                    "the generative filter, and privacy and utility scores for each case. "
                    "Resumable: cases already finished with the same settings, or already "
                    "decided by a reviewer, are skipped. A case that fails is recorded with "
                    "its reason and the others go on. Review the result with updp review.")
    p.add_argument("input", type=Path, help="folder of studies (searched recursively)")
    p.add_argument("workspace", type=Path, help="review workspace folder (made when missing; "
                   "owner-only; holds PHI and the key)")
    p.add_argument("--manifest", type=Path, metavar="CSV", help="CSV with columns image,report "
                   "(paths relative to the CSV) naming the studies to run")
    p.add_argument("--filter-model", type=Path, metavar="DIR", help="a generative filter folder "
                   "(updp train-filter, or a diffusers save_pretrained folder; default: the "
                   "model shipped in the package)")
    p.add_argument("--scorers", type=Path, metavar="DIR", help="a scorers folder (updp "
                   "train-scorers; default: the scorers shipped in the package)")
    p.add_argument("--strength", type=float, help="how much of the image is regenerated, 0-1 "
                   "(default: the model's)")
    p.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    p.add_argument("--seed", type=int, default=0, help="synthesis seed, added to a number read "
                   "off each case id so every case draws its own image (default 0)")
    p.add_argument("--pixels", choices=("ocr", "off"), default="ocr", help="find and fill "
                   "burned-in text with OCR (default), or off: header and report only (the "
                   "export's leak scan still reads the pixels)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "export", help="write the share package of a workspace's accepted cases",
        description="Write OUT (a new folder) with the accepted cases of WORKSPACE only: "
                    "de-identified DICOM carrying the synthetic pixels, the redacted reports, "
                    "a manifest (JSON and CSV: case id, content hashes, scores, decision, "
                    "reviewer, model signatures) and a README for the receiving hospital. The "
                    "package is built beside OUT and scanned for every identifier of the "
                    "originals (headers, reports, OCR of the pixels); only a clean package is "
                    "moved into place. Exit 1 when the scan finds anything (nothing is "
                    "written). The workspace key never leaves.")
    p.add_argument("workspace", type=Path, help="the review workspace folder")
    p.add_argument("out", type=Path, help="the package folder to create (must not exist)")
    p.add_argument("--no-ocr", action="store_true", help="scan headers and reports only, not "
                   "the pixels (faster; only where the filter regenerates every text box)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser(
        "audit", help="draw (or reopen) a privacy-audit sample; or plan its size",
        description="Draw a reproducible random sample of TARGET's cases (a review workspace: "
                    "its accepted cases by default, see --frame; or an exported share package: "
                    "its cases), stratified by site and/or category when asked, and list it "
                    "with the number of PHI-looking spans (suspects) in each outgoing report. "
                    "Running it again reopens the same sample. The audit lives in "
                    "WORKSPACE/audit/ or beside a package in PACKAGE.audit/. --plan computes "
                    "how many cases to audit: the least n whose exact (Clopper-Pearson) upper "
                    "bound with --findings K findings is below --max-rate.")
    p.add_argument("target", type=Path, nargs="?", help="a review workspace or a share package")
    p.add_argument("--sample", type=int, metavar="N", help="draw N cases (the whole frame when "
                   "it holds fewer)")
    p.add_argument("--stratify", metavar="S", help="site, category or site,category: "
                   "proportional allocation, at least one case per stratum when N allows")
    p.add_argument("--seed", type=int, metavar="S", help="random seed (default: chosen at random "
                   "and recorded)")
    p.add_argument("--frame", choices=("accepted", "decided", "all"), help="workspace cases to "
                   "draw from: accepted (default; what an export shares), decided, or all but "
                   "failed")
    p.add_argument("--auditor", metavar="NAME", help="who audits (default: the user name of "
                   "this session)")
    p.add_argument("--list", action="store_true", help="print the sample (case ids with their "
                   "suspect counts) instead of opening the audit dock; without a display it is "
                   "printed anyway")
    p.add_argument("--screenshot", metavar="OUT.png", help="render the audit dock on the first "
                   "case not audited (under Xvfb when there is no display), save the window, "
                   "print the path and exit")
    p.add_argument("--plan", action="store_true", help="print the sample size needed and exit")
    p.add_argument("--max-rate", type=float, metavar="R", help="with --plan: the rate to bound "
                   "(0.01 for 1%%)")
    p.add_argument("--confidence", type=float, default=0.95, metavar="C", help="with --plan: "
                   "the confidence (default 0.95)")
    p.add_argument("--findings", type=int, default=0, metavar="K", help="with --plan: findings "
                   "allowed in the sample (default 0)")
    p.set_defaults(func=_cmd_audit)

    p = sub.add_parser(
        "audit-mark", help="record an auditor's finding on a sampled case",
        description="Record a finding on one case of TARGET's audit sample: clean, "
                    "residual-phi (with where: --span START:END in the outgoing report, or "
                    "--box x0,y0,x1,y1 on the outgoing image) or over-redaction (pathology "
                    "text or image content lost). On disk when the command returns. Offsets "
                    "only: the leaked text is never stored.")
    p.add_argument("target", type=Path, help="a review workspace or a share package")
    p.add_argument("case_id", help="a case id of the sample (see updp audit TARGET)")
    p.add_argument("verdict", choices=("clean", "residual-phi", "over-redaction"))
    p.add_argument("--category", metavar="C", help="the PHI category (NAME, DATE, MRN, …; "
                   "default OTHER for residual PHI)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--span", metavar="START:END", help="character offsets in the outgoing "
                       "report")
    where.add_argument("--box", metavar="x0,y0,x1,y1", help="a box on the outgoing image, pixels")
    p.add_argument("--auditor", metavar="NAME", help="who audits (default: the user name of "
                   "this session)")
    p.add_argument("--comment", metavar="TEXT", default="", help="a note kept with the finding "
                   "(never put the leaked text in it)")
    p.set_defaults(func=_cmd_audit_mark)

    p = sub.add_parser(
        "audit-withdraw", help="withdraw an auditor's finding recorded by mistake",
        description="Withdraw finding FINDING_ID (printed by updp audit-mark) of TARGET's audit. "
                    "Nothing is deleted: the withdrawal is recorded beside the finding, with who "
                    "and why, and the statistics leave the finding out.")
    p.add_argument("target", type=Path, help="a review workspace or a share package")
    p.add_argument("finding_id", type=int, help="the finding's number")
    p.add_argument("--reason", metavar="TEXT", default="", help="why (never put PHI in it)")
    p.add_argument("--auditor", metavar="NAME", help="who withdraws it (default: the user name "
                   "of this session)")
    p.set_defaults(func=_cmd_audit_withdraw)

    p = sub.add_parser(
        "audit-stats", help="residual-PHI and over-redaction rates with exact upper bounds",
        description="Print the residual-PHI rate of TARGET's audit (cases with a residual-PHI "
                    "finding over cases audited) with its one-sided Clopper-Pearson upper "
                    "bound and two-sided interval, overall, per PHI category, per site and per "
                    "case category; the over-redaction rate likewise.")
    p.add_argument("target", type=Path, help="a review workspace or a share package")
    p.add_argument("--confidence", type=float, default=0.95, metavar="C",
                   help="confidence of the bounds (default 0.95)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_audit_stats)

    p = sub.add_parser(
        "audit-report", help="write the audit as one self-contained HTML file",
        description="Write OUT.html: the sample and how it was drawn, the findings (offsets "
                    "and boxes, never text), the rates and bounds, the privacy and utility "
                    "score distributions, the re-identification results and privacy-utility "
                    "curve (from --evaluation), the leak-scan result, configuration, model "
                    "signatures and software versions. Plots are embedded; it prints to PDF.")
    p.add_argument("target", type=Path, help="a review workspace or a share package")
    p.add_argument("out", type=Path, help="the HTML file to write")
    p.add_argument("--evaluation", type=Path, metavar="EVAL.json", help="the output of updp "
                   "evaluate-filter --json")
    p.add_argument("--confidence", type=float, default=0.95, metavar="C",
                   help="confidence of the bounds (default 0.95)")
    p.set_defaults(func=_cmd_audit_report)

    p = sub.add_parser("plugins", help="list installed plugins (detectors, filters, executors)",
                       description="List the optional backends installed through entry "
                                   "points, by group, without importing them.")
    p.set_defaults(func=_cmd_plugins)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UpdpError as exc:
        print(f"updp {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"updp {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
