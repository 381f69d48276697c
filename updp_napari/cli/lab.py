"""The evaluation lab: ``updp evaluate-utility``, what the shared counterparts are worth to a
classifier, per site and per subgroup; ``updp search-trainset``, a training set searched for
an under-represented group; ``updp attack-share``, an adversary trained on the counterparts."""

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
    seed,
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
    _add_classifier_training(p, "each condition's", "patients")
    p.add_argument("--html", type=Path, metavar="OUT",
                   help="write a self-contained HTML report to OUT, the PNG plots beside it in "
                        "OUT_figures/")
    add_json(p, "print every figure as JSON instead of the summary")
    add_json_out(p, "also write every figure as JSON to this file")
    add_threads(p)
    add_quiet(p)
    _register_search(subparsers)


def _add_classifier_training(p, prediction: str, patients: str) -> None:
    """How the lab's small classifier is trained and tested: seeds, epochs, input size, the
    held-out share and the bootstrap rounds of the intervals."""
    p.add_argument("--seeds", default="0", metavar="LIST",
                   help=f"training seeds, comma-separated; {prediction} prediction is the "
                        "mean of its seeds' networks (default 0)")
    p.add_argument("--epochs", type=int, default=12, help="training epochs (default 12)")
    p.add_argument("--size", type=int, default=64, help="classifier input size in pixels (default 64)")
    p.add_argument("--test-share", type=float, default=0.4,
                   help=f"share of each site's {patients} held out for testing (default 0.4)")
    p.add_argument("--bootstrap", type=int, default=1000,
                   help="patient-bootstrap rounds for the intervals (default 1000; 0: none)")


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


def _register_search(subparsers) -> None:
    p = command(
        subparsers, "search-trainset", _cmd_search_trainset,
        "search a pool, without its labels, for a training set like an under-represented "
        "group's images; compare it with random subsets and the whole pool",
        "An unsupervised search for BUDGET studies of the pool that resemble the target "
        "group's images: each image becomes a feature vector from an encoder the project "
        "ships (--features), the pool is cut into K equal-size clusters (balanced k-means), "
        "each cluster's Fréchet distance to the target group's images is measured, and "
        "clusters are added greedily while the union's distance falls, then cut to the "
        "budget. The search reads neither labels nor groups of the pool, and the target "
        "group's images unlabelled. Then the project's small pathology classifier (the one "
        "evaluate-utility trains) is trained on the searched set, on random subsets of the "
        "same size and on the whole pool, and tested on the originals of the target's "
        "held-out patients: the target group's macro AUROC, the majority group's and the "
        "gap, with 95 %% patient-bootstrap intervals. The target's patients are split per "
        "site: --test-share held out for testing, the others' images of GROUP searched for; "
        "when the target cohort is also a pool, --reference-share of its other patients "
        "give those images and the rest stay in the pool. A folder is a cohort (updp "
        "make-cohort: its originals) or COHORT=WORKSPACE (that workspace's counterparts of "
        "the cohort's studies; labels and groups from the cohort).")
    p.add_argument("--target", required=True, metavar="COHORT_OR_WS",
                   help="the cohort whose group is under-represented (or COHORT=WORKSPACE)")
    p.add_argument("--group", required=True,
                   help="the target group, as the cohort's ground truth names it (g1, g2)")
    p.add_argument("--pool", required=True, nargs="+", metavar="DIR",
                   help="the labelled studies to choose from: cohort folders or "
                        "COHORT=WORKSPACE; may include the target cohort")
    p.add_argument("--budget", type=int, required=True, metavar="N",
                   help="how many studies to choose")
    p.add_argument("--clusters", type=int, default=8, metavar="K",
                   help="equal-size clusters of the pool (default 8)")
    p.add_argument("--features", choices=("reid", "pathology", "anatomy"), default="reid",
                   help="reid: the re-identification scorer's embedding (default); pathology: "
                        "the pathology scorer's pooled encoder; anatomy: a thumbnail on the "
                        "shipped filter's domain components")
    p.add_argument("--dims", type=int, default=4,
                   help="principal components of the features the distances use (default 4)")
    p.add_argument("--scorers", type=Path, metavar="DIR",
                   help="scorers folder for the features (default: the shipped ones)")
    p.add_argument("--search-only", action="store_true",
                   help="only the search: no classifier trained")
    p.add_argument("--random-draws", type=int, default=5,
                   help="random subsets of the budget's size to compare with (default 5)")
    _add_classifier_training(p, "a subset's", "target patients")
    p.add_argument("--reference-share", type=float, default=0.3,
                   help="when the target is also a pool: share of its other patients whose "
                        "group images are searched for, left out of the pool (default 0.3)")
    p.add_argument("--seed", type=seed, default=0,
                   help="the split, the clusters and the random subsets (default 0)")
    add_json(p, "print every figure as JSON instead of the summary")
    add_json_out(p, "also write every figure as JSON to this file")
    add_threads(p)
    add_quiet(p)


def _cmd_search_trainset(args: argparse.Namespace) -> int:
    from ..evaluate.trainset import search_trainset, summary_lines

    set_torch_threads(args.threads)
    result = search_trainset(
        args.target, args.group, args.pool, args.budget, clusters=args.clusters,
        features=args.features, dims=args.dims, scorers=args.scorers,
        compare=not args.search_only, random_draws=args.random_draws,
        seeds=parse_seeds(args.seeds), epochs=args.epochs, size=args.size,
        test_share=args.test_share, reference_share=args.reference_share,
        bootstrap=args.bootstrap, seed=args.seed,
        progress=stage_progress(args, "search-trainset"))
    if args.json_out:
        write_json_out(args.json_out, result)
    if args.json:
        print_json(result)
    else:
        print("\n".join(summary_lines(result)))
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
    p.add_argument("--with-originals", action="store_true", help="a stronger adversary: it "
                   "holds its training patients' radiographs and ran the public pipeline on "
                   "them, so it trains on their originals and counterparts as one identity")
    p.add_argument("--cohort", type=Path, metavar="COHORT", help="the cohort the workspace was "
                   "made from: the figures per finding too, and for studies with findings and "
                   "normal ones (its ground truth is read for that split only)")
    p.add_argument("--seed", type=seed, default=0, help="which patients train, and the "
                   "network's seed (default 0)")
    add_threads(p)
    add_json(p, "print the figures as JSON")
    add_quiet(p)


def _cmd_attack_share(args: argparse.Namespace) -> int:
    from ..evaluate.attack import share_attack

    set_torch_threads(args.threads)
    r = share_attack(args.workspace, accepted_only=args.accepted_only,
                     train_share=args.train_share, steps=args.steps, seed=args.seed,
                     with_originals=args.with_originals, cohort=args.cohort,
                     progress=progress(args, "attack-share"))
    if args.json:
        print_json(r)
        return 0
    originals = f" and {r['trained_on']['originals']} originals" if r["trained_on"]["originals"] else ""
    print(f"attacker trained on {r['trained_on']['counterparts']} counterparts{originals} of "
          f"{r['trained_on']['patients']} patients; attacked {r['attacked']['originals']} "
          f"originals of {r['attacked']['patients']} patients")
    print(f"closed-set top-1 {r['top1']:.3f} (chance {r['chance']:.3f}; "
          f"{r['top1_over_chance']:.1f}x chance); verification AUC {r['verification_auc']:.3f}")
    for name, f in (r.get("per_finding") or {}).items():
        auc = "-" if f["verification_auc"] is None else f"{f['verification_auc']:.3f}"
        print(f"  {name:<14} {f['originals']:4d} originals  top-1 {f['top1']:.3f}  AUC {auc}")
    return 0
