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
                    "repeats. `cohort`: studies per second of `make-cohort`.")
    p.add_argument("what", choices=["cohort"], help="what to measure")
    p.add_argument("--studies", type=int, default=200, help="studies per run (default 200)")
    p.add_argument("--size", type=int, default=256, help="image size (default 256)")
    p.add_argument("--repeat", type=int, default=3, help="runs to take the median of (default 3)")
    p.add_argument("--json", metavar="OUT.json", help="also write the result to this file")
    p.set_defaults(func=_cmd_bench)

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
    except KeyboardInterrupt:
        print(f"updp {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
