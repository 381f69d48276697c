"""``updp make-cohort``: the synthetic cohort with its ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_quiet, command, progress, seed


def register(subparsers) -> None:
    p = command(
        subparsers, "make-cohort", _cmd_make_cohort,
        "write a synthetic chest X-ray cohort with ground truth",
        "Write OUT/<study_id>/image.dcm, report.txt and mask_<finding>.png for N patients "
        "with K studies each, plus OUT/ground_truth.jsonl (one JSON object per study) and "
        "OUT/cohort.json. All people, numbers and places are synthetic. The same arguments "
        "always give the same cohort.")
    p.add_argument("out", type=Path, help="folder to write (must be empty or absent)")
    p.add_argument("--patients", type=int, default=8, help="number of patients (default 8)")
    p.add_argument("--studies", type=int, default=3, help="studies per patient (default 3)")
    p.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    p.add_argument("--size", type=int, default=256, help="image width and height in pixels "
                   "(multiple of 16, default 256)")
    p.add_argument("--sites", type=int, default=3, help="number of hospitals, 1-5 (default 3)")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")
    add_quiet(p)


def _cmd_make_cohort(args: argparse.Namespace) -> int:
    from ..cohort.generate import make_cohort, read_ground_truth, summarize

    info = make_cohort(args.out, patients=args.patients, studies=args.studies, seed=args.seed,
                       size=args.size, sites=args.sites, overwrite=args.overwrite,
                       progress=progress(args, "make-cohort"))
    sites = ", ".join(f"{s['code']} ({s['modality']})" for s in info["sites"])
    print(f"wrote {info['studies']} studies of {info['patients']} patients at {info['size']}px "
          f"to {args.out} (seed {info['seed']}; sites: {sites})")
    for line in summarize(read_ground_truth(args.out)):
        print(f"  {line}")
    return 0
