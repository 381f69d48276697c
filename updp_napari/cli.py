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
    return ReportDeidentifier(config=config)


def _key(args: argparse.Namespace) -> bytes | None:
    from .core.keys import load_or_create_key

    if args.mode != "surrogate":
        return None
    if not args.key_file:
        raise UpdpError("--mode surrogate needs --key-file K (a secret key kept with the "
                        "workspace; created, owner-only, if it does not exist)")
    existed = Path(args.key_file).exists()
    key = load_or_create_key(args.key_file)
    if not existed:
        print(f"created key file {args.key_file} (owner-only); keep it secret", file=sys.stderr)
    return key


def _cmd_deid_report(args: argparse.Namespace) -> int:
    from .ingest import decode_report, read_report

    deid = _deidentifier(args)
    key = _key(args)
    header = None
    if args.header:
        from .deid.report.header import read_header

        header = read_header(args.header)
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
            result = deid.deidentify(text, header, mode=args.mode, key=key)
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
    from .evaluate.report import evaluate_reports

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
                    "per second of the rule de-identifier on one core.")
    p.add_argument("what", choices=["cohort", "report"], help="what to measure")
    p.add_argument("--studies", type=int, default=200, help="studies per run (default 200)")
    p.add_argument("--size", type=int, default=256, help="image size (default 256)")
    p.add_argument("--repeat", type=int, default=3, help="runs to take the median of (default 3)")
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
    p.add_argument("--mode", choices=["surrogate", "tag", "mask"], default="tag",
                   help="surrogate: consistent fakes and shifted dates (needs --key-file); "
                        "tag: [NAME], [DATE], …; mask: ****  (default tag)")
    p.add_argument("--key-file", metavar="K", help="secret key for surrogates and date shift")
    p.add_argument("--json", action="store_true", help="print (or write beside) the redacted "
                   "text with the spans found, offsets into the input")
    p.add_argument("--config", metavar="site.toml", help="site configuration: staff names, "
                   "identifier formats, protected terms")
    p.add_argument("--in", dest="in_dir", metavar="DIR", help="batch: folder of *.txt reports")
    p.add_argument("--out", dest="out_dir", metavar="DIR", help="batch: where to write them")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_deid_report)

    p = sub.add_parser(
        "eval-report", help="score report de-identification against a cohort's ground truth",
        description="Precision, recall and F1 (span any-overlap, span exact, character level), "
                    "recall per category, and whitelist retention (share of protected "
                    "pathology terms left intact).")
    p.add_argument("cohort", type=Path, help="a cohort folder made by updp make-cohort")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--config", metavar="site.toml", help="site configuration")
    p.add_argument("--no-header", action="store_true", help="do not use the DICOM headers")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_eval_report)

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
