"""The review workspace: ``run`` fills it, ``cases`` and ``decide`` read and decide, ``review``
opens it in napari, ``export`` writes the share package."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.errors import UpdpError
from ._common import (
    add_filter_model,
    add_json,
    add_quiet,
    command,
    one_line,
    print_json,
    progress,
    seed,
    set_torch_threads,
)

WORKSPACE_HELP = "the review workspace folder"


def register(subparsers) -> None:
    _register_run(subparsers)
    _register_cases(subparsers)
    _register_status(subparsers)
    _register_history(subparsers)
    _register_decide(subparsers)
    _register_review(subparsers)
    _register_export(subparsers)


# -- run -------------------------------------------------------------------------------------

def _register_run(subparsers) -> None:
    p = command(
        subparsers, "run", _cmd_run,
        "the whole pipeline over a folder of studies, into a review workspace",
        "De-identify every study of INPUT (a cohort folder, or any folder of DICOM files; "
        "reports matched by study folder, AccessionNumber or StudyInstanceUID file name, or a "
        "--manifest CSV) into WORKSPACE: header profile and burned-in text, report spans, the "
        "synthetic counterpart from the generative filter, and privacy and utility scores for "
        "each case. Resumable: cases already finished with the same settings, or already "
        "decided by a reviewer, are skipped. A case that fails is recorded with its reason and "
        "the others go on. Review the result with updp review.")
    p.add_argument("input", type=Path, help="folder of studies, searched recursively: DICOM "
                   "files named *.dcm or carrying the DICOM preamble whatever their name (PACS "
                   "exports, DICOMDIR media); frontal chest radiographs only, the others are "
                   "listed with the reason")
    p.add_argument("workspace", type=Path, help="review workspace folder (made when missing; "
                   "owner-only; holds PHI and the key)")
    p.add_argument("--manifest", type=Path, metavar="CSV", help="CSV with columns image,report "
                   "(paths relative to the CSV) and optionally site, naming the studies to run")
    p.add_argument("--site", metavar="NAME", help="the site of every case of INPUT (shown by "
                   "updp cases, a stratum of updp audit); a cohort's own sites and a manifest's "
                   "site column win")
    add_filter_model(p, "a generative filter folder (updp train-filter, or a diffusers "
                        "save_pretrained folder; default: the model shipped in the package)")
    p.add_argument("--scorers", type=Path, metavar="DIR", help="a scorers folder (updp "
                   "train-scorers; default: the scorers shipped in the package)")
    p.add_argument("--strength", type=float, help="how much of the image is regenerated, 0-1 "
                   "(default: the model's)")
    p.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    p.add_argument("--seed", type=seed, default=0, help="synthesis seed, added to a number read "
                   "off the content hash of each case's cleaned image, so every case draws its "
                   "own image and the same one whatever the workspace key (default 0)")
    p.add_argument("--pixels", choices=("ocr", "off"), default="ocr", help="find and fill "
                   "burned-in text with OCR (default), or off: header and report only (the "
                   "export's leak scan still reads the pixels)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--follow-symlinks", action="store_true", help="read images and reports "
                   "through symbolic links and enter linked folders (by default they are "
                   "listed and left out: their targets may lie anywhere)")
    p.add_argument("--executor", default="local", metavar="NAME", help="where the cases are "
                   "prepared (decode, header, OCR, report): local (default; processes on this "
                   "machine; this process synthesises) or an executor plugin (updp plugins "
                   "lists them; ray: Ray actors prepare and synthesise, settings in UPDP_RAY_* "
                   "variables, plugins/updp-ray); this process alone writes the workspace and "
                   "scores, and the workspace is the same whichever executor ran the stages")
    p.add_argument("--workers", type=int, metavar="N", help="cases prepared at once (default: "
                   "one per usable CPU core; 1: in this process, one case after another)")
    add_quiet(p)


def _cmd_run(args: argparse.Namespace) -> int:
    from ..pipeline import run_pipeline

    set_torch_threads(args.threads)
    summary = run_pipeline(args.input, args.workspace, manifest=args.manifest,
                           model=args.filter_model, scorers=args.scorers, strength=args.strength,
                           seed=args.seed, steps=args.steps, pixels=args.pixels,
                           progress=progress(args, "run"), score_progress=progress(args, "scores"),
                           follow_symlinks=args.follow_symlinks, site=args.site,
                           executor=args.executor, workers=args.workers)
    print(f"{summary.cases} case(s) in {args.workspace}: {summary.done} done now, "
          f"{summary.already_done} already done, {len(summary.failed)} failed; "
          f"{summary.scored} scored")
    if summary.changed_after_decision:
        print(f"{len(summary.changed_after_decision)} decided case(s) whose image or report in "
              "the input changed since; the decision stands on what was decided (take it back "
              "with updp decide WORKSPACE CASE pending and run again to review the new input):",
              file=sys.stderr)
        for case_id, name in summary.changed_after_decision:
            print(one_line(f"  {case_id}  {name}"), file=sys.stderr)
    if summary.out_of_domain:
        print(f"{len(summary.out_of_domain)} case(s) out of the filter's domain: no synthetic "
              "counterpart was made (the filter would draw an image of its own, not this "
              "study); such a case is shared only as its original image with the burned-in "
              "text removed, if a reviewer accepts exactly that (updp decide ... accept "
              "--original-image):")
        for case_id, name, reason in summary.out_of_domain:
            print(f"  {case_id}  {name}: {reason}")
    if summary.not_studies:
        print(f"{len(summary.not_studies)} file(s) were not studies and were left out:")
        for name, reason in summary.not_studies:
            print(f"  {name}: {reason}")
    if summary.failed:
        print("failed (listed by updp cases WORKSPACE --status failed; run again to retry):")
        for case_id, name, reason in summary.failed:
            print(f"  {case_id}  {name}: {reason}")
    return 0 if summary.done + summary.already_done + len(summary.out_of_domain) > 0 else 1


# -- cases, decide ---------------------------------------------------------------------------

def _register_cases(subparsers) -> None:
    p = command(
        subparsers, "cases", _cmd_cases,
        "list the cases of a review workspace, in review order",
        "Print a table of every case in WORKSPACE (or of those with --status), in the order "
        "they were added: case id, status, site, privacy and utility scores, the last "
        "decision's reviewer, time and comment (or why the case failed). --ids prints the ids "
        "alone, one per line, for scripts; --json everything, with every decision. Case ids "
        "are keyed hashes of the study identity: safe to print and log.")
    p.add_argument("workspace", type=Path, help=WORKSPACE_HELP)
    p.add_argument("--status", metavar="S", help="only cases with this status: pending, "
                   "accepted, rejected, flagged or failed")
    output = p.add_mutually_exclusive_group()
    output.add_argument("--ids", action="store_true", help="the case ids alone, one per line")
    add_json(output, "print the cases and their decisions as JSON")


def _cmd_cases(args: argparse.Namespace) -> int:
    from ..review.store import ReviewStore
    from ..review.summary import case_rows

    with ReviewStore.open(args.workspace) as store:
        rows = case_rows(store, status=args.status)
    if args.ids:
        for row in rows:
            print(row["case_id"])
        return 0
    if args.json:
        print_json(rows)
        return 0

    def score(value) -> str:
        return "-" if value is None else f"{value:.2f}"

    width = max([5] + [len(", ".join(r["flags"])) for r in rows])
    print(f"{'case':<16}  {'status':<8}  {'site':<10}  privacy  utility  {'flags':<{width}}  "
          f"{'reviewer':<12}  {'decided at':<19}  comment")
    for r in rows:
        last = (r["decisions"] or [None])[-1]
        note = r["failure_reason"] if r["status"] == "failed" else (last["comment"] if last else "")
        note = one_line(" ".join(str(note or "").split()))
        flags = ", ".join(r["flags"]) or "-"
        print(f"{r['case_id']:<16}  {r['status']:<8}  {(r['site'] or '-')[:10]:<10}  "
              f"{score(r['privacy_score']):>7}  {score(r['utility_score']):>7}  {flags:<{width}}  "
              f"{(last['reviewer'] if last else '-')[:12]:<12}  "
              f"{(last['decided_at'][:19].replace('T', ' ') if last else '-'):<19}  "
              f"{note[:60] + ('…' if len(note) > 60 else '')}".rstrip())
    print(f"{len(rows)} case(s)" + (f" with status {args.status}" if args.status else ""))
    return 0


def _register_status(subparsers) -> None:
    p = command(
        subparsers, "status", _cmd_status,
        "a summary of a review workspace: counts, flags, scores, reviewers",
        "Print how far the review of WORKSPACE is: cases by status and by site, the cases a "
        "reviewer must look at closely (out of the filter's domain, image not shareable, a "
        "finding lost, a new positive), the privacy and utility score distributions "
        "(quartiles), per reviewer the decisions made and the median time per case, and in "
        "second-reader mode the blind readers' agreement (Cohen's kappa over accept, reject "
        "and flag), the cases waiting for a second reader and the disagreements to "
        "adjudicate. --json prints the same as JSON; --html writes it as a page with plots. "
        "Nothing in the workspace is changed.")
    p.add_argument("workspace", type=Path, help=WORKSPACE_HELP)
    add_json(p, "print the summary as JSON")
    p.add_argument("--html", metavar="OUT.html", type=Path, help="also write the summary as a "
                   "self-contained page (counts, score distributions, reviewers)")


def _cmd_status(args: argparse.Namespace) -> int:
    from ..core.files import write_text_atomic
    from ..review.store import ReviewStore
    from ..review.summary import public_summary, summary_html, workspace_summary

    if args.html is not None and args.html.is_dir():
        raise UpdpError(f"{args.html} is a folder; give the file to write the page to")
    with ReviewStore.open(args.workspace) as store:
        full = workspace_summary(store)
    summary = public_summary(full)
    if args.html is not None:
        write_text_atomic(args.html, summary_html(full, f"Review of {args.workspace.name}"),
                          private=True)
    if args.json:
        print_json(summary)
        return 0

    def counts(mapping):
        return ", ".join(f"{k} {v}" for k, v in sorted(mapping.items(), key=lambda kv: -kv[1])) \
            or "none"

    def spread(name, s):
        if s is None:
            return f"{name}: no scores"
        return (f"{name}: median {s['median']:.2f} (quartiles {s['q1']:.2f}-{s['q3']:.2f}, "
                f"range {s['min']:.2f}-{s['max']:.2f}, {s['cases']} cases)")

    print(f"{args.workspace}: {summary['cases']} case(s)")
    print(f"  by status: {counts(summary['by_status'])}")
    print(f"  by site: {counts(summary['by_site'])}")
    print(f"  to look at closely: {counts(summary['flags'])}")
    print(f"  {spread('privacy score', summary['privacy'])}")
    print(f"  {spread('utility score', summary['utility'])}")
    if summary["reviewers"]:
        for name, r in summary["reviewers"].items():
            time = f", median {r['median_seconds']:.0f} s per decision" \
                if r["median_seconds"] is not None else ""
            print(f"  reviewer {name}: {r['decisions']} decision(s){time}")
    else:
        print("  no decisions yet")
    readers = summary["second_reader"]
    if readers["on"] or readers["pairs"]:
        kappa = "undefined" if readers["kappa"] is None else f"{readers['kappa']:.2f}"
        print(f"  second reader: {'on' if readers['on'] else 'off'}; {readers['pairs']} "
              f"case(s) read by two, {readers['agreed']} agreed, Cohen's kappa {kappa}; "
              f"{readers['waiting_for_second_reader']} waiting for a second reader, "
              f"{readers['disagreements_to_adjudicate']} to adjudicate")
    if args.html is not None:
        print(f"wrote {args.html}")
    return 0


def _register_history(subparsers) -> None:
    p = command(
        subparsers, "history", _cmd_history,
        "everything reviewers did to one case, oldest first",
        "Print the action log of one case of WORKSPACE: each decision (with the status it "
        "replaced, an override of another reviewer's, and what an accept shares), each report "
        "span switched or added (offsets and category, never the text), each preserved-region "
        "edit and each regenerated image (with its settings), with who did it and when. The "
        "log is append-only: nothing in it can be changed or deleted.")
    p.add_argument("workspace", type=Path, help=WORKSPACE_HELP)
    p.add_argument("case_id", help="the case id (see updp cases)")
    add_json(p, "print the entries as JSON")


def _cmd_history(args: argparse.Namespace) -> int:
    from ..review.history import history_line
    from ..review.store import ReviewStore

    with ReviewStore.open(args.workspace) as store:
        case = store.case(args.case_id)
        entries = store.action_log(case.case_id)
    if args.json:
        print_json([{"at": e.at, "reviewer": e.reviewer, "action": e.action, "detail": e.detail}
                    for e in entries])
        return 0
    print(f"case {case.case_id}: {case.status}; {len(entries)} action(s)")
    for entry in entries:
        print(f"  {one_line(history_line(entry))}")
    return 0


def _register_decide(subparsers) -> None:
    p = command(
        subparsers, "decide", _cmd_decide,
        "record a reviewer's decision on a case (accept, reject, flag)",
        "Record a decision on one case of WORKSPACE exactly as the review dock does: the "
        "case's status changes, the decision and an audit entry are written, and both are on "
        "disk when the command returns.")
    p.add_argument("workspace", type=Path, help=WORKSPACE_HELP)
    p.add_argument("case_id", help="the case id (see updp cases)")
    p.add_argument("decision", help="accept, reject or flag; or pending, to take back the "
                   "case's standing decision (kept in its history)")
    p.add_argument("--reviewer", metavar="NAME", help="who decides (default: the user name "
                   "of this session)")
    p.add_argument("--comment", metavar="TEXT", default="", help="a note kept with the "
                   "decision")
    p.add_argument("--override", action="store_true", help="decide over another reviewer's "
                   "decision (refused without it; recorded as an override)")
    p.add_argument("--original-image", action="store_true", help="with accept, on a case out "
                   "of the filter's domain (no synthetic counterpart): share its original "
                   "image with the burned-in text removed, which shows the patient's own "
                   "anatomy (recorded with the decision; refused on any other case)")
    p.add_argument("--report-only", action="store_true", help="with accept, on a case whose "
                   "synthetic image is not shareable (a kept finding re-identifies beyond the "
                   "filter's measured limit) or that is out of domain: share its report, "
                   "withhold its image (recorded with the decision)")
    p.epilog = ("In second-reader mode (updp review WS --second-reader) a decision on a pending "
                "case is a blind reading: the case is decided when a second reviewer reads it "
                "the same way, and flagged for adjudication when not; --override decides it "
                "outright (recorded).")


def _reviewer(given: str | None) -> str:
    """``--reviewer``, or the user name of this session."""
    if given is not None:
        return given
    from ..core.users import current_user

    return current_user("--reviewer")


def _cmd_decide(args: argparse.Namespace) -> int:
    from ..review.store import ReviewStore

    reviewer = _reviewer(args.reviewer)
    if args.decision == "pending":
        if args.original_image or args.report_only or args.comment:
            raise UpdpError("pending takes back a decision: no --original-image, --report-only "
                            "or --comment")
        with ReviewStore.open(args.workspace) as store:
            undone = store.undo(args.case_id, reviewer=reviewer, override=args.override)
        print(f"case {args.case_id}: pending again ({undone['decision']} taken back by "
              f"{reviewer})")
        return 0
    with ReviewStore.open(args.workspace) as store:
        if store.second_reader and store.case(args.case_id).status == "pending" \
                and not args.override:
            read = store.read_blind(args.case_id, args.decision, reviewer=reviewer,
                                    comment=args.comment, original_image=args.original_image,
                                    report_only=args.report_only)
            print(f"case {read.case_id}: {SECOND_READER_OUTCOME[read.outcome]}")
            return 0
        done = store.decide(args.case_id, args.decision, reviewer=reviewer,
                            comment=args.comment, override=args.override,
                            original_image=args.original_image, report_only=args.report_only)
        status = store.case(done.case_id).status
    print(f"case {done.case_id}: {status} by {done.reviewer} at {done.decided_at}")
    return 0


#: What a blind reading led to, in words (``ReviewStore.read_blind``).
SECOND_READER_OUTCOME = {
    "waiting": "read blind; it waits for a second reader (still pending)",
    "agreed": "read blind; both readers agree, and the case is decided",
    "disagreed": "read blind; the readers disagree: flagged for adjudication (any reviewer "
                 "decides it with updp decide)"}


# -- review ----------------------------------------------------------------------------------

def _register_review(subparsers) -> None:
    p = command(
        subparsers, "review", _cmd_review,
        "open a workspace in napari with the review dock",
        "Open napari with the review dock on WORKSPACE at its first undecided case: the case "
        "queue, original and synthetic side by side, the report with its redactions, and "
        "Accept (A), Reject (R), Flag (F), Next (N), Previous (P), Regenerate (G), Redact "
        "selection (X), Undo (U), the list of keys (?). Every decision is on disk when the "
        "key is pressed. --screenshot renders the window (on a virtual display when there is "
        "none), saves it and exits.")
    p.add_argument("workspace", type=Path, nargs="?", help=WORKSPACE_HELP)
    p.add_argument("--sample", action="store_true", help="review the sample cohort shipped "
                   "with the package (its workspace is built on first use, with the shipped "
                   "models, in ~/.cache/updp-napari/sample-workspace, and brought up to date "
                   "when another version or other shipped models open it)")
    p.add_argument("--reviewer", metavar="NAME", help="who reviews (default: the user name of "
                   "this session)")
    p.add_argument("--screenshot", metavar="OUT.png", type=Path, help="save a screenshot of the "
                   "whole window with the first undecided case (or --case), print its path "
                   "and exit")
    p.add_argument("--case", metavar="ID", help="open at this case (see updp cases) instead of "
                   "the first undecided one")
    p.add_argument("--second-reader", action=argparse.BooleanOptionalAction, default=None,
                   help="turn second-reader mode on for the workspace (--no-second-reader: off; "
                   "recorded in the action log): each case is decided blind by two reviewers, "
                   "the other reader's decision hidden until both have read it; agreement "
                   "decides the case, a disagreement flags it for adjudication; updp status "
                   "shows Cohen's kappa")


def _cmd_review(args: argparse.Namespace) -> int:
    from .._qt.launch import open_dock
    from ..review.session import ReviewSession

    if args.sample:
        if args.workspace is not None:
            raise UpdpError("give a WORKSPACE or --sample, not both")
        from ..review.sample import sample_workspace

        args.workspace = sample_workspace()
    elif args.workspace is None:
        raise UpdpError("give the WORKSPACE to review (or --sample for the sample cohort)")
    # The workspace is checked before any window opens: a wrong folder is one line, exit 2.
    session = ReviewSession.open(args.workspace, reviewer=args.reviewer)
    try:
        if args.second_reader is not None:
            session.store.set_second_reader(args.second_reader, session.reviewer)
        if args.case:
            session.go(args.case)
        return open_dock("UPDP Review", "Review", session, args.screenshot,
                         "on a headless machine use --screenshot OUT.png")
    finally:
        session.close()


# -- export ----------------------------------------------------------------------------------

def _register_export(subparsers) -> None:
    p = command(
        subparsers, "export", _cmd_export,
        "write the share package of a workspace's accepted cases",
        "Write OUT (a new folder) with the accepted cases of WORKSPACE only: de-identified "
        "DICOM carrying the synthetic pixels, the redacted reports, a manifest (JSON and CSV: "
        "case id, content hashes, scores, decision, reviewer, model signatures) and a README "
        "for the receiving hospital. The package is built beside OUT and scanned for every "
        "identifier of the originals (headers, reports, OCR of the pixels); only a clean "
        "package is moved into place. Exit 1 when the scan finds anything (nothing is "
        "written). The workspace key never leaves.")
    p.add_argument("workspace", type=Path, help=WORKSPACE_HELP)
    p.add_argument("out", type=Path, help="the package folder to create (must not exist)")
    p.add_argument("--no-ocr", action="store_true", help="scan headers and reports only, not "
                   "the pixels (faster; only where the filter regenerates every text box)")
    add_quiet(p)


def _cmd_export(args: argparse.Namespace) -> int:
    from ..export import LeakFound, export_package

    try:
        summary = export_package(args.workspace, args.out, ocr=not args.no_ocr,
                                 progress=progress(args, "export"))
    except LeakFound as exc:
        print(f"updp export: {exc}", file=sys.stderr)
        return 1
    print(f"exported {len(summary.cases)} accepted case(s) to {summary.out} "
          f"({summary.pending} not accepted, left out); leak scan: {summary.scan}")
    return 0
