"""The image models: ``train`` (all of them from an archive), ``train-filter``,
``fit-domain``, ``evaluate-filter``, ``train-scorers``, ``eval-scorers``, ``train-dp``,
``evaluate-dp``; the learned report labeller: ``pretrain-report-encoder``,
``train-report-classifier``, ``evaluate-report-classifier``."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from ..core.errors import UpdpError
from ._common import (
    add_cohort,
    add_filter_model,
    add_json,
    add_quiet,
    add_threads,
    command,
    print_json,
    progress,
    seed,
    set_torch_threads,
    stage_progress,
)


def register(subparsers) -> None:
    _register_train(subparsers)
    _register_train_filter(subparsers)
    _register_fit_domain(subparsers)
    _register_evaluate_filter(subparsers)
    _register_train_scorers(subparsers)
    _register_eval_scorers(subparsers)
    _register_train_dp(subparsers)
    _register_evaluate_dp(subparsers)
    _register_pretrain_report_encoder(subparsers)
    _register_train_report_classifier(subparsers)
    _register_evaluate_report_classifier(subparsers)


# -- train-filter ----------------------------------------------------------------------------

def _register_train_filter(subparsers) -> None:
    p = command(
        subparsers, "train-filter", _cmd_train_filter,
        "train the generative filter (a small diffusion UNet) on a cohort",
        "Train the generative filter's diffusers UNet2DModel (v-prediction, cosine schedule, "
        "DDIM sampling) on the radiographs of a cohort made by updp make-cohort, from random "
        "weights (no download). Beside the noisy image it sees the preserve mask and the "
        "original under it, so it learns to draw anatomy around kept findings. DIR gets unet/ "
        "and scheduler/ in the save_pretrained layout and updp_filter.json (size, "
        "conditioning, cohort seed and counts, parameters, training time, default strength "
        "and steps). Load it with GenerativeFilter.load(DIR). With --init it trains a filter "
        "made before further (same size and architecture), recording both runs in the card.")
    add_cohort(p)
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
    p.add_argument("--seed", type=seed, default=0, help="random seed: weights, order, noise, "
                   "masks (default 0); the same seed and cohort give the same model")
    p.add_argument("--loss-on", choices=("all", "drawn"), default="all", help="pixels the loss "
                   "counts: all, or only those the model draws (outside the kept region, which "
                   "sampling overwrites with the original); default all")
    add_threads(p)
    add_quiet(p)


def _cmd_train_filter(args: argparse.Namespace) -> int:
    from ..synth.train import train_filter

    card = train_filter(args.cohort, args.out, size=args.size, epochs=args.epochs,
                        seed=args.seed, threads=args.threads, learning_rate=args.learning_rate,
                        ema_decay=args.ema_decay, init=args.init, loss_on=args.loss_on,
                        progress=progress(args, "train-filter"))
    m, t = card["model"], card["training"]
    print(f"trained a {m['size']}px filter ({m['parameters']:,} parameters, conditioning "
          f"{m['conditioning']}) on {t['cohort']['images']} images in {t['seconds']:.1f}s "
          f"({t['epochs']} epochs, {t['steps']} steps, final loss {t['final_loss']}); saved to {args.out}")
    return 0


# -- train (an archive) -----------------------------------------------------------------------

def _add_labeller(p) -> None:
    p.add_argument("--labeller", type=Path, metavar="CLASSIFIER",
                   help="take an archive's finding labels from this report classifier (an "
                        "eps-E/ folder of updp train-report-classifier; its ε is recorded) "
                        "instead of the rule labeller")


def _register_train(subparsers) -> None:
    p = command(
        subparsers, "train", _cmd_train,
        "learn every model the pipeline needs from an archive's DICOM files and reports",
        "From ARCHIVE (a folder of studies: DICOM images and their reports, matched as updp "
        "run matches them) learn the scorers and the generative filter without any ground "
        "truth: finding labels from the report labeller, the regions to keep from the "
        "report's words, patients from the header (PatientID, hashed with a key kept in "
        "MODELS/work), then updp train-scorers and updp train-filter on that, and the "
        "filter's domain from the archive's images. Resumable: stages done before are "
        "skipped. Then: updp run INPUT WS --filter-model MODELS/filter --scorers "
        "MODELS/scorers.")
    p.add_argument("archive", type=Path, help="folder of studies (DICOM and reports)")
    p.add_argument("--out", type=Path, required=True, metavar="MODELS", help="folder for the "
                   "models (made when missing; owner-only: its work/ names the archive's files)")
    p.add_argument("--manifest", type=Path, metavar="CSV", help="CSV with columns image,report "
                   "(and site), as for updp run")
    p.add_argument("--site", metavar="NAME", help="the site of every study (default: unknown)")
    _add_labeller(p)
    p.add_argument("--scorer-size", type=int, default=128, help="side the scorers read (default 128)")
    p.add_argument("--reid-steps", type=int, default=600, help="verifier steps (default 600)")
    p.add_argument("--pathology-epochs", type=int, default=25, help="classifier epochs (default 25)")
    p.add_argument("--region-rounds", type=int, default=2, metavar="N", help="times the classifier, "
                   "fitted to the report's regions, is trained again on the outlines its own maps "
                   "draw inside them (default 2; 0: the regions only)")
    p.add_argument("--filter-size", type=int, default=128, help="the filter's side (default 128)")
    p.add_argument("--filter-epochs", type=int, default=40, help="filter epochs (default 40)")
    p.add_argument("--seed", type=seed, default=0, help="training seed (default 0)")
    add_threads(p)
    add_json(p, "print each stage's summary as JSON")
    add_quiet(p)


def _cmd_train(args: argparse.Namespace) -> int:
    from ..train_archive import train_from_archive

    set_torch_threads(args.threads)
    result = train_from_archive(args.archive, args.out, manifest=args.manifest, site=args.site,
                                scorer_size=args.scorer_size, reid_steps=args.reid_steps,
                                pathology_epochs=args.pathology_epochs,
                                region_rounds=args.region_rounds,
                                filter_size=args.filter_size, filter_epochs=args.filter_epochs,
                                seed=args.seed, threads=args.threads, labeller=args.labeller,
                                progress=stage_progress(args, "train"))
    if args.json:
        print_json(result)
        return 0
    prep = result["prepare"]
    if isinstance(prep, dict):
        found = ", ".join(f"{k} {v}" for k, v in prep["positives"].items() if v) or "none"
        print(f"prepared {prep['studies']} studies of {prep['patients']} patients from "
              f"{args.archive} (positives read from the reports: {found}; "
              f"{prep['skipped']} left out)")
        for line in prep["left_out"][:20]:
            print(f"  left out {line}")
    for stage in ("scorers", "filter"):
        done = result[stage]
        print(f"{stage}: " + (done if isinstance(done, str) else f"saved to {args.out / stage}"))
    print(f"use them: updp run INPUT WS --filter-model {args.out / 'filter'} --scorers "
          f"{args.out / 'scorers'}")
    return 0


# -- fit-domain ------------------------------------------------------------------------------

def _register_fit_domain(subparsers) -> None:
    p = command(
        subparsers, "fit-domain", _cmd_fit_domain,
        "describe a filter's training images, so inputs unlike them get no counterpart",
        "Measure the images of TRAIN (a folder of studies like those the filter learned from: "
        "the cohort it was trained on, or a sample of the archive) into a compact description "
        "kept in the filter folder (domain.npz, summarised in its card), and calibrate the "
        "out-of-domain threshold on held-out patients (--calibrate, or a fifth of TRAIN's "
        "patients held out of the fit): the threshold is their 99.5th percentile distance "
        "times 1.25. updp run checks every input against it; a case out of domain gets no "
        "synthetic counterpart. A filter folder without a description marks every case out "
        "of domain.")
    p.add_argument("model", type=Path, help="the filter folder to describe (written into)")
    p.add_argument("train", type=Path, help="folder of studies like the filter's training images")
    p.add_argument("--calibrate", type=Path, metavar="FOLDER", help="folder of studies of "
                   "other patients, to set the threshold on (default: a fifth of TRAIN's "
                   "patients, held out of the fit)")
    add_json(p, "print the card's domain section as JSON")
    add_quiet(p)


def _cmd_fit_domain(args: argparse.Namespace) -> int:
    from ..synth.domain import fit_domain_folder

    section = fit_domain_folder(args.model, args.train, args.calibrate,
                                progress=stage_progress(args, "fit-domain"))
    if args.json:
        print_json(section)
        return 0
    c = section["calibration"]
    print(f"domain of {args.model}: {section['images']} training images; threshold calibrated "
          f"on {c['held_out_images']} held-out images ({c['false_alarms']} above it, median "
          f"distance {c['median_distance']:.2f} of the threshold); written to "
          f"{args.model / section['file']}")
    for name, reason in section["skipped"]:
        print(f"  left out {name}: {reason}")
    return 0


# -- evaluate-filter -------------------------------------------------------------------------

def _register_evaluate_filter(subparsers) -> None:
    p = command(
        subparsers, "evaluate-filter", _cmd_evaluate_filter,
        "privacy–utility evaluation of the generative filter on a cohort",
        "Run the generative filter over every study of a cohort made by updp make-cohort at "
        "each strength, and score originals and counterparts with the scorers: "
        "re-identification verification AUC on pairs of originals and on synthetic-vs-original "
        "pairs, closed-set re-identification top-1, pathology macro AUC on originals and on "
        "synthetic images, and SSIM inside and outside the preserve mask. At the default strength "
        "also: a two-sample realism test (a logistic regression on handcrafted features and a "
        "small CNN trained to tell counterparts from originals, out-of-fold AUC over 5 folds "
        "grouped by patient), the pathology AUC and score shift per finding, and the share of "
        "normal studies whose counterpart is called positive for a finding the original is "
        "not. The filter's default strength is always included; the top-level figures are at "
        "that strength. Prints a table (or JSON with --json) with the targets beside the "
        "figures.")
    add_cohort(p, "a cohort folder made by updp make-cohort (use a seed the models were not "
                  "trained on)")
    p.add_argument("--strengths", default="0.2,0.4,0.6,0.8", help="comma list of strengths in "
                   "(0, 1] (default 0.2,0.4,0.6,0.8, plus the filter's default)")
    add_filter_model(p, "filter folder (default: the shipped one)", old_model=True)
    p.add_argument("--scorers", metavar="DIR", help="scorers folder made by updp train-scorers "
                   "(default: the shipped ones)")
    p.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    p.add_argument("--dilation", type=float, help="preserve-mask growth, share of the image side "
                   "(default: the model's)")
    p.add_argument("--eta", type=float, help="DDIM eta in [0, 1]: fresh noise at each step, 0 "
                   "deterministic, 1 ancestral (default: the model's)")
    p.add_argument("--seed", type=seed, default=0, help="noise seed of the first study, +1 per "
                   "study (default 0)")
    p.add_argument("--size", type=int, default=256, help="side the images are read at (default 256)")
    p.add_argument("--limit", type=int, help="only the first N studies")
    p.add_argument("--batch-size", type=int, default=8, help="images per model call (default 8)")
    add_threads(p)
    add_json(p, "print the figures as JSON")
    p.add_argument("--plot", metavar="OUT.png", help="also save the privacy–utility curve")
    p.add_argument("--record-risk", action="store_true", help="write the region attack's "
                   "per-finding result into the filter's card (image_risk): updp run then "
                   "marks a case whose kept findings re-identify beyond 2 x chance as not "
                   "shareable as an image (use a cohort of a seed the models never saw)")
    add_quiet(p)


def _cmd_evaluate_filter(args: argparse.Namespace) -> int:
    from ..synth.evaluate import evaluate_filter, parse_strengths, plot_curve, summary_lines

    strengths = parse_strengths(args.strengths, "--strengths")
    set_torch_threads(args.threads)
    result = evaluate_filter(args.cohort, args.filter_model, args.scorers, strengths,
                             steps=args.steps, dilation=args.dilation, eta=args.eta,
                             seed=args.seed, limit=args.limit, size=args.size,
                             batch_size=args.batch_size,
                             progress=stage_progress(args, "evaluate-filter"))
    if args.plot:
        plot_curve(result, args.plot)
    if args.record_risk:
        from ..synth.evaluate import record_risk

        table = record_risk(args.filter_model, result)
        if not args.json:
            unsafe = [k for k, v in table["per_finding"].items() if not v["shareable"]]
            print(f"risk recorded in the filter's card: not shareable as an image: "
                  f"{', '.join(unsafe) or 'none'}")
    if args.json:
        print_json(result)
        return 0
    print("\n".join(summary_lines(result)))
    if args.plot:
        print(f"privacy–utility curve: {args.plot}")
    return 0


# -- train-scorers, eval-scorers -------------------------------------------------------------

def _register_train_scorers(subparsers) -> None:
    p = command(
        subparsers, "train-scorers", _cmd_train_scorers,
        "train the re-identification and pathology scorers on a cohort",
        "Train the two scorers from random weights (no download) on a cohort made by updp "
        "make-cohort: a Siamese re-identification verifier (privacy: is this the same "
        "patient?) and a multi-label pathology classifier (utility: which findings?). A fifth "
        "of the patients, with all their studies, is held out and never seen in training; the "
        "command prints, on them, the verification AUC (same vs different patient over all "
        "pairs, and over pairs of one site), closed-set top-1 (each patient's first study is "
        "the gallery), the pathology AUC per finding, and the time taken. DIR gets reid/ and "
        "pathology/, each with config.json, model.safetensors and updp_scorer.json (kind, "
        "labels, input size, cohort seed and counts, held-out figures); load them with "
        "load_scorers(DIR). The same cohort, seed and threads give the same models. A training "
        "set prepared by updp train has regions read from reports instead of outlines: the "
        "classifier is then fitted to them and trained again --region-rounds times on the "
        "outlines its own maps draw inside them.")
    add_cohort(p)
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder to write the scorers to (empty, absent, or older scorers)")
    p.add_argument("--size", type=int, default=128, help="side the cohort's images are read at "
                   "(default 128); each model scales them to its own input")
    p.add_argument("--epochs", type=int, default=25, help="pathology: passes over the training "
                   "studies (default 25)")
    p.add_argument("--reid-steps", type=int, default=600, help="re-identification: batches of 16 "
                   "patients x 4 studies (default 600)")
    p.add_argument("--region-rounds", type=int, default=2, metavar="N", help="where the masks are "
                   "regions read from reports (a set prepared by updp train): rounds of training "
                   "again on the classifier's own outlines (default 2)")
    p.add_argument("--seed", type=seed, default=0, help="random seed: held-out patients, weights, "
                   "batches, augmentation (default 0)")
    add_threads(p)
    add_quiet(p)


def _cmd_train_scorers(args: argparse.Namespace) -> int:
    from ..scoring.train import train_scorers

    summary = train_scorers(args.cohort, args.out, size=args.size, reid_steps=args.reid_steps,
                            pathology_epochs=args.epochs, seed=args.seed, threads=args.threads,
                            region_rounds=args.region_rounds, progress=progress(args, "train-scorers"))
    s, t = summary["split"], summary["seconds"]
    print(f"trained on {s['train_studies']} studies of {s['train_patients']} patients in "
          f"{t['total']:.1f}s (re-identification {t['reid']:.1f}s, pathology {t['pathology']:.1f}s); "
          f"saved to {args.out}")
    print(f"held out: {s['heldout_studies']} studies of {s['heldout_patients']} patients never seen "
          "in training")
    print("\n".join(_scorer_figure_lines(summary["heldout"])))
    return 0


def _register_eval_scorers(subparsers) -> None:
    p = command(
        subparsers, "eval-scorers", _cmd_eval_scorers,
        "score the scorers on a cohort (re-identification, pathology AUC)",
        "Load the scorers (the ones shipped in the package, or --scorers DIR) and print their "
        "figures on every study of COHORT: verification AUC over all pairs and over pairs of "
        "one site, equal error rate, closed-set top-1 and top-5, pathology AUC per finding and "
        "macro AUC. Use a cohort of a seed the scorers were not trained on.")
    add_cohort(p)
    p.add_argument("--scorers", type=Path, metavar="DIR", help="a folder made by updp "
                   "train-scorers (default: the scorers shipped in the package)")
    p.add_argument("--size", type=int, default=128, help="side the images are read at (default 128)")
    add_threads(p)
    add_json(p, "print the figures as JSON")
    add_quiet(p)


def _cmd_eval_scorers(args: argparse.Namespace) -> int:
    from ..scoring import evaluate_scorers, load_scorers

    set_torch_threads(args.threads)
    scorers = load_scorers(args.scorers)
    figures = evaluate_scorers(args.cohort, scorers, size=args.size,
                               progress=progress(args, "eval-scorers"))
    if args.json:
        print_json(figures)
        return 0
    print(f"{figures['studies']} studies of {figures['patients']} patients, scorers from {scorers.path}")
    print("\n".join(_scorer_figure_lines(figures)))
    return 0


def _scorer_figure_lines(figures: dict) -> list[str]:
    r, p = figures["reid"], figures["pathology"]
    nan = float("nan")
    lines = [f"  re-identification: verification AUC {r.get('verification_auc', nan):.4f} over "
             f"{r['pairs']} pairs ({r['same_patient_pairs']} same-patient), same site only "
             f"{r.get('verification_auc_same_site', nan):.4f}, EER "
             f"{r.get('equal_error_rate', nan):.4f}"]
    if "closed_set_top1" in r:
        lines.append(f"  closed-set: top-1 {r['closed_set_top1']:.4f}, top-5 "
                     f"{r['closed_set_top5']:.4f} ({r['closed_set_queries']} queries, gallery of "
                     f"{r['closed_set_gallery_patients']} patients)")
    macro = "n/a" if p["macro_auc"] is None else f"{p['macro_auc']:.4f}"
    lines.append(f"  pathology: macro AUC {macro}")
    for name, auc in p["auc"].items():
        lines.append(f"    {name:14s} AUC {'skipped (one class only)' if auc is None else f'{auc:.4f}'}")
    return lines


# -- train-dp, evaluate-dp -------------------------------------------------------------------

def _add_dp_sgd_arguments(p, unit: str, units: str, *, batch: int, epochs: int,
                          learning_rate: float, schedule: str = "",
                          max_grad_norm: float = 1.0) -> None:
    """The DP-SGD settings every private training takes: δ, clipping, logical and physical
    batch, epochs, learning rate, accountant; ``unit`` is what one gradient is of ("study",
    plural ``units``)."""
    p.add_argument("--delta", type=float, metavar="D", help="δ of every budget, at most "
                   f"1/(10·N) for N training {units} (default: that bound rounded down to one "
                   "significant digit)")
    p.add_argument("--max-grad-norm", type=float, default=max_grad_norm, metavar="C",
                   help=f"clipping bound of each {unit}'s gradient (default {max_grad_norm:g})")
    p.add_argument("--batch", type=int, default=batch, metavar="B", help="expected logical "
                   f"batch: the sampling rate is B/N (default {batch}); the noise on the "
                   "averaged gradient shrinks as 1/B")
    p.add_argument("--physical-batch", type=int, default=32, metavar="P", help=f"most {units} per "
                   "forward pass; only memory depends on it (default 32)")
    p.add_argument("--epochs", type=int, default=epochs, metavar="E", help="passes over the "
                   f"training {units} (default {epochs})")
    p.add_argument("--learning-rate", type=float, default=learning_rate, help="peak learning "
                   f"rate{schedule} (default {learning_rate:g})")
    p.add_argument("--accountant", default="rdp", metavar="rdp|prv", help="privacy accountant: "
                   "rdp (Rényi) or prv (privacy random variables, tighter); default rdp")


def _print_private_runs(runs: dict) -> None:
    """One line per budget of a private training: ε spent, σ, sampling rate, steps, time."""
    for name, run in runs.items():
        p = run["privacy"]
        spent = "∞ (no noise, no clipping)" if p["epsilon_spent"] is None else f"{p['epsilon_spent']:.3f}"
        print(f"  {name}: ε spent {spent}, σ {p['noise_multiplier']:.3f}, sampling rate "
              f"{p['sampling_rate']:.4f}, {p['steps']} steps, {run['seconds']:.0f}s")


def _register_train_dp(subparsers) -> None:
    from ..scoring.dp import DP_BATCH, DP_EPOCHS, DP_LEARNING_RATE, DP_SIZE

    p = command(
        subparsers, "train-dp", _cmd_train_dp,
        "train the pathology classifier with differential privacy (DP-SGD), one model per ε",
        "Train the pathology classifier with DP-SGD (Opacus; install with pip install "
        "'updp-napari[dp]') on a cohort made by updp make-cohort, or on an archive of studies "
        "(labels and regions read from the reports, as updp train prepares them, into "
        "DIR/work). Each study's gradient is clipped to --max-grad-norm and Gaussian noise "
        "is added to their sum, with the noise searched so the run spends the budget "
        "(ε, δ); batches are Poisson samples (each study joins a step with probability "
        "batch/N), cut into physical batches of at most --physical-batch studies. The network "
        "uses group normalisation and no in-place activation (Opacus' module validator must "
        "pass). ε = inf trains through the same loop without noise or clipping: the non-private "
        "reference. DIR/eps-E/ (eps-1, eps-inf, ...) is a scorers folder for updp run "
        "--scorers: pathology/ (its card records σ, the sampling rate, the steps, the "
        "accountant and the ε spent) and a copy of the re-identification scorer (--reid, "
        "default the shipped one). The unit of privacy is one study: a patient with k studies "
        "is protected at about k·ε.")
    p.add_argument("source", type=Path, metavar="COHORT_OR_ARCHIVE",
                   help="a cohort folder (updp make-cohort) or a folder of studies")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder for the models, one eps-E/ per budget")
    p.add_argument("--task", choices=("pathology",), default="pathology",
                   help="what to train (only the pathology classifier)")
    p.add_argument("--site", metavar="S[,S...]", help="train on the studies of these sites "
                   "only (the others are off-site for updp evaluate-dp)")
    p.add_argument("--manifest", type=Path, metavar="CSV", help="archive: CSV with columns "
                   "image,report,site, as for updp run")
    _add_labeller(p)
    p.add_argument("--base", type=Path, metavar="DIR", help="start every run from this "
                   "classifier instead of random weights: the eps-inf/ folder of an updp "
                   "train-dp run on PUBLIC studies (at the same --size); its training is "
                   "outside this run's budget, so never give it the private studies")
    p.add_argument("--tune", choices=("all", "decoder"), default="all",
                   help="with --base: train every parameter (default), or keep the base's "
                        "encoder and train its decoder (fewer parameters share the noise; "
                        "the pooled head, which only teaches the encoder, is kept too)")
    p.add_argument("--epsilon", default="1,3,8,inf", metavar="LIST", help="privacy budgets, "
                   "comma-separated; inf = no noise (default 1,3,8,inf)")
    _add_dp_sgd_arguments(p, "study", "studies", batch=DP_BATCH, epochs=DP_EPOCHS,
                          learning_rate=DP_LEARNING_RATE, schedule=" of the one-cycle schedule")
    p.add_argument("--size", type=int, default=DP_SIZE, help="side the images are read and "
                   f"the network works at (default {DP_SIZE})")
    p.add_argument("--reid", type=Path, metavar="DIR", help="re-identification scorer folder "
                   "copied into each model folder (default: the shipped one)")
    p.add_argument("--seed", type=seed, default=0, help="weights, sampling, augmentation and "
                   "noise seed (default 0)")
    add_threads(p)
    add_json(p, "print the summary as JSON")
    add_quiet(p)


def _cmd_train_dp(args: argparse.Namespace) -> int:
    from ..scoring.dp import parse_epsilons, train_dp
    from ..train_archive import training_set

    epsilons = parse_epsilons(args.epsilon)
    sites = [s.strip() for s in args.site.split(",") if s.strip()] if args.site else None
    if args.base is None and not args.quiet and any(not math.isinf(e) for e in epsilons):
        print("train-dp: note: no --base, so the private models start from random weights; "
              "measured on a few hundred studies they stay at chance at every ε. A base "
              "trained without privacy on public studies (updp train-dp PUBLIC --out P "
              "--epsilon inf, then --base P/eps-inf --tune decoder) is what a small archive "
              "needs: README, Private training.", file=sys.stderr)
    report = stage_progress(args, "train-dp")
    cohort, prepared = training_set(args.source, args.out / "work", manifest=args.manifest,
                                    labeller=args.labeller,
                                    progress=lambda d, t: report("prepare", d, t))
    summary = train_dp(cohort, args.out, epsilons=epsilons, delta=args.delta,
                       max_grad_norm=args.max_grad_norm, batch_size=args.batch,
                       physical_batch=args.physical_batch, epochs=args.epochs,
                       accountant=args.accountant, learning_rate=args.learning_rate,
                       sites=sites, size=args.size, seed=args.seed,
                       threads=args.threads, reid=args.reid, base=args.base, tune=args.tune,
                       progress=report)
    if prepared is not None:
        summary["prepared"] = {k: v for k, v in prepared.items() if k != "left_out"}
    if args.json:
        print_json(summary)
        return 0
    print(f"trained on {summary['studies']} studies of sites {', '.join(summary['training_sites'])}"
          f" (δ = {summary['delta']:g}); models in {args.out}:")
    _print_private_runs(summary["runs"])
    return 0


def _register_evaluate_dp(subparsers) -> None:
    p = command(
        subparsers, "evaluate-dp", _cmd_evaluate_dp,
        "AUROC per ε, in-site and off-site, per subgroup, with fairness gaps",
        "Evaluate the models updp train-dp wrote on a test cohort (use a seed the models were "
        "not trained on): macro AUROC over the findings on all studies, on the sites the model "
        "was trained on and on the others, each with a 95 % patient-bootstrap interval; per "
        "subgroup (sex, age group, site, population group when the cohort records one) the "
        "AUROC, the statistical parity difference (the group's positive rate minus the "
        "size-weighted mean of the others) and per attribute the equalized-odds difference, "
        "for the 'abnormal' decision cut to flag as many studies as are abnormal; and the "
        "Pearson correlation between subgroup size and AUROC loss against the ε = inf model. "
        "--html writes a self-contained page with the tables and plots.")
    p.add_argument("models", type=Path, nargs="+", metavar="DIR",
                   help="a train-dp output folder (its eps-*/) or model folders")
    p.add_argument("--test", type=Path, required=True, metavar="COHORT",
                   help="test cohort made by updp make-cohort")
    p.add_argument("--size", type=int, default=64, help="side the test images are read at "
                   "(default 64; each model scales them to its own input)")
    p.add_argument("--repeats", type=int, default=200, help="bootstrap draws (default 200)")
    p.add_argument("--seed", type=seed, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--html", type=Path, metavar="OUT", help="also write the report page here")
    add_threads(p)
    add_json(p, "print the figures as JSON")
    add_quiet(p)


def _cmd_evaluate_dp(args: argparse.Namespace) -> int:
    from ..scoring.dp_evaluate import evaluate_dp, write_html

    if args.repeats < 1:
        raise UpdpError("--repeats: must be at least 1")
    result = evaluate_dp(args.models, args.test, size=args.size, repeats=args.repeats,
                         seed=args.seed, threads=args.threads,
                         progress=progress(args, "evaluate-dp"))
    if args.html:
        write_html(result, args.html)
    if args.json:
        print_json(result)
        return 0
    t = result["test"]
    print(f"{t['studies']} test studies of {t['patients']} patients; macro AUROC [95 % interval]:")
    for m in result["models"]:
        a = m["auroc"]
        label = "ε = inf" if m["epsilon"] is None else f"ε = {m['epsilon']:g}"
        print(f"  {label:9s} all {_interval(a['all'])}  in-site {_interval(a['in_site'])}  "
              f"off-site {_interval(a['off_site'])}  drop {_number(a['drop'])}")
        eo = ", ".join(f"{k} {_number(v)}" for k, v in m["equalized_odds"].items())
        print(f"            equalized-odds difference: {eo}; r(size, AUROC loss) "
              f"{_number(m['size_vs_auroc_loss']['pearson_r'])}")
    if args.html:
        print(f"report: {args.html}")
    return 0


def _interval(a) -> str:
    if not a or a["auroc"] is None:
        return "n/a"
    if a["low"] is None:
        return f"{a['auroc']:.3f}"
    return f"{a['auroc']:.3f} [{a['low']:.3f}, {a['high']:.3f}]"


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


# -- pretrain-report-encoder, train-report-classifier, evaluate-report-classifier ------------

def _register_pretrain_report_encoder(subparsers) -> None:
    from ..scoring import report_classifier as rc

    p = command(
        subparsers, "pretrain-report-encoder", _cmd_pretrain_report_encoder,
        "pre-train the small BERT of the report classifier on public report text",
        "Learn a WordPiece tokenizer and a small BERT encoder (random weights, nothing "
        "downloaded) with the masked-language-model objective on public text only: the "
        "reports of cohorts made by updp make-cohort, the Indiana University chest X-ray "
        "reports (NLMCXR_reports.tgz from the torchxrayvision wheel, or its folder; by default "
        "their development half, odd report numbers, so the test half that "
        "evaluate-report-classifier scores stays unseen), folders of *.txt reports or .jsonl "
        "corpora. Never give it the hospital's own reports: they would be learned without "
        "any privacy budget. DIR gets the encoder and tokenizer in the save_pretrained layout "
        "and updp_report_encoder.json (sources and counts, architecture, held-out masked-token "
        "loss and accuracy); updp train-report-classifier --base DIR tunes it.")
    p.add_argument("sources", type=Path, nargs="+", metavar="DATA",
                   help="cohort folders, NLMCXR_reports.tgz (or its folder), *.txt folders or "
                        ".jsonl corpora of public reports")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="encoder folder")
    p.add_argument("--iu-half", choices=rc.IU_HALVES, default="development",
                   help="which Indiana University reports to read (default development)")
    p.add_argument("--vocab", type=int, default=rc.VOCAB_SIZE,
                   help=f"WordPiece vocabulary size (default {rc.VOCAB_SIZE})")
    p.add_argument("--hidden", type=int, default=rc.HIDDEN,
                   help=f"hidden width (default {rc.HIDDEN})")
    p.add_argument("--layers", type=int, default=rc.LAYERS,
                   help=f"transformer layers (default {rc.LAYERS})")
    p.add_argument("--heads", type=int, default=rc.HEADS,
                   help=f"attention heads (default {rc.HEADS})")
    p.add_argument("--max-length", type=int, default=rc.MAX_LENGTH,
                   help=f"tokens read of each report (default {rc.MAX_LENGTH})")
    p.add_argument("--epochs", type=int, default=rc.PRETRAIN_EPOCHS,
                   help=f"passes over the text (default {rc.PRETRAIN_EPOCHS})")
    p.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    add_threads(p)
    add_json(p, "print the encoder's card as JSON")
    add_quiet(p)


def _cmd_pretrain_report_encoder(args: argparse.Namespace) -> int:
    from ..scoring.report_classifier import HIDDEN, INTERMEDIATE, pretrain_encoder

    card = pretrain_encoder(args.sources, args.out, iu_half=args.iu_half, vocab_size=args.vocab,
                            hidden=args.hidden, layers=args.layers, heads=args.heads,
                            intermediate=INTERMEDIATE * args.hidden // HIDDEN,
                            max_length=args.max_length, epochs=args.epochs, seed=args.seed,
                            threads=args.threads,
                            progress=progress(args, "pretrain-report-encoder"))
    if args.json:
        print_json(card)
        return 0
    a, t = card["architecture"], card["training"]
    accuracy = "n/a" if t["held_out_accuracy"] is None else f"{t['held_out_accuracy']:.3f}"
    print(f"pre-trained a {a['layers']}-layer BERT ({a['hidden']} wide, {a['parameters']:,} "
          f"parameters, {a['vocab_size']} tokens) on {card['texts']} public reports in "
          f"{t['seconds']:.0f}s; held-out masked-token accuracy {accuracy}; encoder in {args.out}")
    return 0


def _register_train_report_classifier(subparsers) -> None:
    from ..scoring import report_classifier as rc

    p = command(
        subparsers, "train-report-classifier", _cmd_train_report_classifier,
        "tune the report classifier (LoRA on the pre-trained BERT) with DP-SGD, one per ε",
        "Tune a classifier of the seven findings on the reports of a cohort made by updp "
        "make-cohort (labels: its ground truth): LoRA adapters (peft) on the attention query "
        "and value projections of the encoder --base and a head scoring each token from the "
        "last hidden states of it and the tokens before it (--head-window), pooled per "
        "finding by a soft maximum over the tokens, "
        "multi-label, trained with DP-SGD as updp train-dp trains (Opacus: each report's "
        "gradient clipped to --max-grad-norm, Gaussian noise searched so the "
        "run spends the budget (ε, δ), Poisson batches cut into physical ones); only the "
        "adapters and the head are trained. ε = inf: the same loop without noise or "
        "clipping. DIR/eps-E/ holds the encoder with the adapters merged in, the tokenizer, "
        "the head and updp_report_classifier.json (σ, sampling rate, steps, accountant, ε "
        "spent, δ). --base scratch pre-trains an encoder first, on --public text, into "
        "DIR/encoder/ (as updp pretrain-report-encoder). The unit of privacy is one report: a "
        "patient with k studies is protected at about k·ε. Needs pip install "
        "'updp-napari[dp,ner]'.")
    p.add_argument("cohort", type=Path, metavar="DATA", help="a cohort folder: the private "
                   "reports and their ground-truth findings")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder for the classifiers, one eps-E/ per budget")
    p.add_argument("--base", required=True, metavar="scratch|DIR",
                   help="an encoder folder made by updp pretrain-report-encoder, or scratch "
                        "to pre-train one on --public first")
    p.add_argument("--public", type=Path, nargs="+", metavar="DATA",
                   help="with --base scratch: the public text to pre-train on (as for "
                        "pretrain-report-encoder, its defaults)")
    p.add_argument("--lora-r", type=int, default=rc.LORA_R,
                   help=f"rank of the LoRA adapters (default {rc.LORA_R})")
    p.add_argument("--head-window", type=int, default=rc.HEAD_WINDOW, metavar="TOKENS",
                   help="how many tokens the head reads for each token's score, the token "
                        "and those before it, so that 'no' or 'without' before a finding "
                        f"counts; 1 = each token alone (default {rc.HEAD_WINDOW})")
    p.add_argument("--epsilon", default="1,8,inf", metavar="LIST", help="privacy budgets, "
                   "comma-separated; inf = no noise (default 1,8,inf)")
    _add_dp_sgd_arguments(p, "report", "reports", batch=rc.CLASSIFIER_BATCH,
                          epochs=rc.CLASSIFIER_EPOCHS, learning_rate=rc.CLASSIFIER_LEARNING_RATE,
                          max_grad_norm=rc.CLASSIFIER_MAX_GRAD_NORM)
    p.add_argument("--seed", type=seed, default=0, help="adapter, sampling and noise seed "
                   "(default 0)")
    add_threads(p)
    add_json(p, "print the summary as JSON")
    add_quiet(p)


def _cmd_train_report_classifier(args: argparse.Namespace) -> int:
    from ..scoring.dp import parse_epsilons
    from ..scoring.report_classifier import pretrain_encoder, train_report_classifiers

    epsilons = parse_epsilons(args.epsilon)
    report = stage_progress(args, "train-report-classifier")
    if args.base == "scratch":
        if not args.public:
            raise UpdpError("--base scratch: give the public text to pre-train on with --public")
        base = args.out / "encoder"
        pretrain_encoder(args.public, base, seed=args.seed, threads=args.threads,
                         progress=lambda d, t: report("pretrain", d, t))
    else:
        if args.public:
            raise UpdpError("--public is for --base scratch; the encoder DIR is pre-trained")
        base = Path(args.base)
    summary = train_report_classifiers(
        args.cohort, args.out, base=base, epsilons=epsilons, delta=args.delta,
        lora_r=args.lora_r, max_grad_norm=args.max_grad_norm, batch_size=args.batch,
        physical_batch=args.physical_batch, epochs=args.epochs, accountant=args.accountant,
        learning_rate=args.learning_rate, seed=args.seed, threads=args.threads,
        head_window=args.head_window, progress=report)
    if args.json:
        print_json(summary)
        return 0
    print(f"tuned on {summary['reports']} reports (δ = {summary['delta']:g}); classifiers in "
          f"{args.out}:")
    _print_private_runs(summary["runs"])
    return 0


def _register_evaluate_report_classifier(subparsers) -> None:
    from ..scoring import report_classifier as rc

    p = command(
        subparsers, "evaluate-report-classifier", _cmd_evaluate_report_classifier,
        "weighted and per-finding F1 of the report classifiers per ε, beside the rules",
        "Score the classifiers updp train-report-classifier wrote (threshold 0.5 at every ε) "
        "on the reports of a test cohort (use a seed they were not trained on; gold: its "
        "ground truth) and on the Indiana University reports (gold: their MeSH major terms, "
        "mapped as updp label-reports --iu maps them; by default the test half, even report "
        "numbers, which pretrain-report-encoder leaves out): precision, recall and F1 per "
        "finding, the F1s weighted by the number of gold positives, and the gap to the ε = "
        "inf model; the rule labeller (updp label-reports, uncertain counted negative) on "
        "the same reports for comparison.")
    p.add_argument("models", type=Path, nargs="+", metavar="DIR",
                   help="a train-report-classifier output (its eps-*/) or classifier folders")
    p.add_argument("--test", type=Path, metavar="COHORT", help="test cohort")
    p.add_argument("--iu", type=Path, metavar="NLMCXR_reports.tgz",
                   help="the Indiana University reports (the archive or its folder)")
    p.add_argument("--iu-half", choices=rc.IU_HALVES, default="test",
                   help="which Indiana University reports to score (default test)")
    add_threads(p)
    add_json(p, "print the figures as JSON")
    add_quiet(p)


def _cmd_evaluate_report_classifier(args: argparse.Namespace) -> int:
    from ..core.vocabulary import FINDINGS
    from ..scoring.report_classifier import evaluate_report_classifiers

    if args.test is None and args.iu is None:
        raise UpdpError("give --test COHORT, --iu NLMCXR_reports.tgz, or both")
    result = evaluate_report_classifiers(args.models, test=args.test, iu=args.iu,
                                         iu_half=args.iu_half, threads=args.threads,
                                         progress=progress(args, "evaluate-report-classifier"))
    if args.json:
        print_json(result)
        return 0
    for name, info in result["sets"].items():
        title = (f"test cohort {info['cohort']}" if name == "cohort"
                 else f"Indiana University reports ({info['half']} half)")
        print(f"{title}: {info['reports']} reports; F1 (weighted, then per finding)")
        print(f"  {'model':10s} {'weighted':>8s} " + " ".join(f"{f[:8]:>8s}" for f in FINDINGS))
        rows = [("rules", info["rules"])] + [
            ("ε = inf" if m["epsilon"] is None else f"ε = {m['epsilon']:g}", m[name])
            for m in result["models"]]
        for label, table in rows:
            print(f"  {label:10s} {_number(table['weighted_f1']):>8s} "
                  + " ".join(f"{table['findings'][f]['f1']:8.3f}" for f in FINDINGS))
    return 0
