"""The evaluation lab: ``updp evaluate-utility``, what the shared counterparts are worth to a
classifier, per site and per subgroup; ``updp attack-share``, an adversary trained on them."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import (
    add_cohort,
    add_json,
    add_json_out,
    add_quiet,
    add_threads,
    command,
    print_json,
    progress,
    set_torch_threads,
    stage_progress,
    write_json_out,
)


def register(subparsers) -> None:
    _register_attack(subparsers)
    p = command(
        subparsers, "evaluate-utility", _cmd_evaluate_utility,
        "train one classifier on originals, counterparts and per-site mixes; AUROC, "
        "cross-site and fairness figures",
        "Train the project's small pathology classifier under each condition (the training "
        "patients' originals; their synthetic counterparts from WORKSPACE; with --sites also "
        "each site's own originals alone, with the other sites' counterparts, and with the "
        "other sites' originals as the upper bound) and test every one on the originals of "
        "held-out patients of every site. Reports macro and per-finding AUROC with 95 %% "
        "patient-bootstrap intervals, the counterparts-minus-originals difference, each "
        "site's gain from the shared counterparts, the cross-site matrix and its in-site to "
        "off-site drop, AUROC per subgroup (sex, age group, site, population group), "
        "statistical parity and equalized-odds differences, the correlation of a subgroup's "
        "training size with its AUROC loss, and the realism AUC (the same network telling "
        "counterparts from originals, patient-grouped cross-validation; 0.5 is "
        "indistinguishable). Labels and subgroups come from the cohort's ground truth. "
        "WORKSPACE must hold the cohort's counterparts (updp run COHORT WORKSPACE).")
    add_cohort(p, "the cohort folder (updp make-cohort) the workspace was run on")
    p.add_argument("--workspace", type=Path, required=True, metavar="WS",
                   help="the review workspace holding the cohort's synthetic counterparts")
    p.add_argument("--sites", action="store_true",
                   help="also the per-site conditions and the cross-site matrix (3 more "
                        "trainings per site and seed)")
    p.add_argument("--seeds", default="0", metavar="LIST",
                   help="training seeds, comma-separated; each condition's prediction is the "
                        "mean of its seeds' networks (default 0)")
    p.add_argument("--epochs", type=int, default=12, help="training epochs (default 12)")
    p.add_argument("--size", type=int, default=64, help="classifier input size in pixels (default 64)")
    p.add_argument("--test-share", type=float, default=0.4,
                   help="share of each site's patients held out for testing (default 0.4)")
    p.add_argument("--bootstrap", type=int, default=1000,
                   help="patient-bootstrap rounds for the intervals (default 1000; 0: none)")
    p.add_argument("--html", type=Path, metavar="OUT",
                   help="write a self-contained HTML report to OUT, the PNG plots beside it in "
                        "OUT_figures/")
    add_json(p, "print every figure as JSON instead of the summary")
    add_json_out(p, "also write every figure as JSON to this file")
    add_threads(p)
    add_quiet(p)


def parse_seeds(text: str) -> tuple[int, ...]:
    from ..core.errors import InputError

    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise InputError(f"seeds: not a comma list of whole numbers: {text!r}") from None
    if not seeds:
        raise InputError("seeds: give at least one seed")
    return seeds


def _cmd_evaluate_utility(args: argparse.Namespace) -> int:
    from ..evaluate.utility import evaluate_utility, summary_lines, write_html

    set_torch_threads(args.threads)
    result = evaluate_utility(args.cohort, args.workspace, sites=args.sites,
                              seeds=parse_seeds(args.seeds), epochs=args.epochs, size=args.size,
                              test_share=args.test_share, bootstrap=args.bootstrap,
                              progress=stage_progress(args, "evaluate-utility"))
    if args.json_out:
        write_json_out(args.json_out, result)
    if args.html:
        figures = write_html(result, args.html)
    if args.json:
        print_json(result)
    else:
        print("\n".join(summary_lines(result)))
    if args.html:
        print(f"wrote {args.html} and {len(figures)} PNG plots in {next(iter(figures.values())).parent}")
    return 0


def _register_attack(subparsers) -> None:
    p = command(
        subparsers, "attack-share", _cmd_attack_share,
        "train a re-identification attacker on the shared counterparts alone and use it on "
        "originals",
        "An adversary's view of a share: the project's re-identification network is trained "
        "only on the counterparts of half of WORKSPACE's patients, grouped by the keyed "
        "patient ID a share's headers carry (the adversary can run the public pipeline and "
        "read the package), then each original radiograph of the other patients is ranked "
        "against their counterparts. Prints the closed-set top-1 against chance (1 / the "
        "attacked patients) and the verification AUC of original-counterpart pairs (0.5: no "
        "better than chance).")
    p.add_argument("workspace", type=Path, help="the review workspace (its counterparts are "
                   "what a share carries; its originals measure the attack)")
    p.add_argument("--accepted-only", action="store_true",
                   help="only the accepted cases, as an export shares them")
    p.add_argument("--train-share", type=float, default=0.5,
                   help="share of the patients whose counterparts train the attacker (default 0.5)")
    p.add_argument("--steps", type=int, default=600, help="training steps (default 600)")
    p.add_argument("--seed", type=int, default=0, help="which patients train, and the "
                   "network's seed (default 0)")
    add_threads(p)
    add_json(p, "print the figures as JSON")
    add_quiet(p)


def _cmd_attack_share(args: argparse.Namespace) -> int:
    from ..evaluate.attack import share_attack

    set_torch_threads(args.threads)
    r = share_attack(args.workspace, accepted_only=args.accepted_only,
                     train_share=args.train_share, steps=args.steps, seed=args.seed,
                     progress=progress(args, "attack-share"))
    if args.json:
        print_json(r)
        return 0
    print(f"attacker trained on {r['trained_on']['counterparts']} counterparts of "
          f"{r['trained_on']['patients']} patients; attacked {r['attacked']['originals']} "
          f"originals of {r['attacked']['patients']} patients")
    print(f"closed-set top-1 {r['top1']:.3f} (chance {r['chance']:.3f}; "
          f"{r['top1_over_chance']:.1f}x chance); verification AUC {r['verification_auc']:.3f}")
    return 0
