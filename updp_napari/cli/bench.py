"""``updp bench``: timings of real work on this machine, as JSON."""

from __future__ import annotations

import argparse
import json

from ._common import add_filter_model, add_json_out, add_quiet, command, seed


def register(subparsers) -> None:
    from ..bench import BENCHMARKS

    p = command(
        subparsers, "bench", _cmd_bench,
        "run a benchmark and print (or save) its JSON result",
        "Benchmarks time real work on this machine and report medians over repeats. "
        "`cohort`: studies per second of `make-cohort`; `report`: reports per second of the "
        "rule de-identifier on one core; `dicom`: files per second of deid-dicom, header only "
        "beside dicognito (if installed), and with OCR; `synth`: seconds per 256-pixel image "
        "of the generative filter on the CPU (--threads 1,2 for more thread counts), and "
        "images per second at 256 and 512 pixels when CUDA is present; `dp`: the whole "
        "private-training evaluation once (two fresh cohorts of --studies studies over five "
        "sites and a public one of 1,200; updp train-dp at ε 1, 3, 8 and inf on four sites, "
        "from random weights and from a base trained on the public cohort; updp "
        "evaluate-dp), its seconds, AUROC figures and targets (needs opacus; about 10 "
        "minutes); "
        "`ocr`: seconds per "
        "image of the burned-in text search reading proposed regions against reading whole "
        "images, on a fresh cohort (3 studies per patient, --seed), their speed ratio, and "
        "for both the PHI lines covered (90 % filled) and filled whole, side markers touched "
        "and the lines the region search loses (--studies 90 --repeat 1: 3 to 5 minutes on "
        "2 cores); "
        "`evaluate`: seconds of "
        "evaluate-utility --sites --seeds 0,1,2 on a fresh five-site cohort of --studies "
        "studies (use --studies 300 --repeat 1), after a pipeline run timed apart; "
        "`run`: updp run end to end "
        "on a cohort of --studies studies for each --workers count (studies per second, per "
        "stage, the scaling, whether the outputs are identical) and a projection onto "
        "--archive studies at the measured rates.")
    p.add_argument("what", choices=list(BENCHMARKS),
                   help="what to measure (review: the longest stall of the review dock's event "
                        "loop while it regenerates a case; needs napari)")
    p.add_argument("--studies", type=int, default=200, help="studies per run (default 200)")
    p.add_argument("--size", type=int, default=256, help="image size (default 256)")
    p.add_argument("--repeat", type=int, default=3, help="runs to take the median of (default 3)")
    p.add_argument("--ner-model", metavar="DIR", help="report: also time the de-identifier with "
                   "this model detector (a folder made by updp train-ner)")
    p.add_argument("--corpus", metavar="NOTES.jsonl", help="report: also time the notes of "
                   "this annotated corpus (the JSONL format of eval-report)")
    add_filter_model(p, "synth, review: time this filter folder instead of the shipped one")
    p.add_argument("--threads", default="1", metavar="LIST", help="synth: torch CPU thread counts "
                   "to time, comma-separated (default 1; more threads than idle cores is much "
                   "slower, not faster); run: the first is the torch threads of the run's own "
                   "process (synthesis, scoring)")
    p.add_argument("--executor", default="local", metavar="NAME", help="run: the executor "
                   "(default local)")
    p.add_argument("--workers", default="1,2", metavar="LIST", help="run: worker counts to "
                   "time, comma-separated (default 1,2)")
    p.add_argument("--archive", type=int, default=590_000, metavar="N", help="run: the archive "
                   "size to project the measured rates onto (default 590000 studies)")
    p.add_argument("--pixels", choices=("ocr", "off"), default="ocr", help="run: OCR of "
                   "burned-in text (default) or off")
    p.add_argument("--seed", type=seed, default=None,
                   help="ocr, dp: the seed of the cohorts it makes (default 31337 for ocr; "
                        "4242, 4243 and 4244 for dp)")
    add_json_out(p, "also write the result to this file", old_json=True)
    add_quiet(p)


def _cmd_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..bench import parse_threads, run_benchmark

    result = run_benchmark(args.what, studies=args.studies, size=args.size, repeat=args.repeat,
                           ner_model=args.ner_model, corpus=args.corpus,
                           filter_model=args.filter_model, threads=parse_threads(args.threads),
                           seed=args.seed, **_run_options(args))
    text = json.dumps(result, indent=2, sort_keys=True)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.json_out}")
    print(text)
    return 0


def _run_options(args: argparse.Namespace) -> dict:
    """The options of `bench run`, the progress display of `bench dp` (none for the other
    benchmarks)."""
    if args.what == "dp":
        from ._common import stage_progress

        return {"progress": stage_progress(args, "bench dp")}
    if args.what != "run":
        return {}
    from ..bench import parse_threads
    from ..core.errors import InputError
    from ._common import progress

    threads = parse_threads(args.threads)
    try:
        workers = tuple(int(n) for n in args.workers.split(",") if n.strip())
    except ValueError:
        raise InputError(f"--workers: not a comma list of whole numbers: {args.workers!r}") from None
    return {"workers": workers, "executor": args.executor,
            "archive": args.archive, "pixels": args.pixels, "torch_threads": threads[0] if threads else 1,
            "progress": progress(args, "bench run")}
