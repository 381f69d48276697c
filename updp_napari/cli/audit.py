"""The privacy audit of a workspace or share package: ``audit`` (draw, list, open the dock,
or plan a size), ``audit-mark``, ``audit-withdraw``, ``audit-stats``, ``audit-report``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.errors import UpdpError
from ._common import add_json, command, print_json, seed

TARGET_HELP = "a review workspace or a share package"
CONFIDENCE_HELP = "confidence of the bounds (default 0.95)"
NO_SAMPLE = "no audit sample yet; draw one with updp audit TARGET --sample N"


def register(subparsers) -> None:
    _register_audit(subparsers)
    _register_mark(subparsers)
    _register_withdraw(subparsers)
    _register_stats(subparsers)
    _register_report(subparsers)


def _add_target(parser: argparse.ArgumentParser, **options) -> None:
    parser.add_argument("target", type=Path, help=TARGET_HELP, **options)


def _add_auditor(parser: argparse.ArgumentParser, who: str = "who audits") -> None:
    parser.add_argument("--auditor", metavar="NAME", help=f"{who} (default: the user name of "
                        "this session)")


def _add_confidence(parser: argparse.ArgumentParser, help: str = CONFIDENCE_HELP) -> None:
    parser.add_argument("--confidence", type=float, default=0.95, metavar="C", help=help)


# -- audit -----------------------------------------------------------------------------------

def _register_audit(subparsers) -> None:
    p = command(
        subparsers, "audit", _cmd_audit,
        "draw (or reopen) a privacy-audit sample; or plan its size",
        "Draw a reproducible random sample of TARGET's cases (a review workspace: its accepted "
        "cases by default, see --frame; or an exported share package: its cases), stratified "
        "by site and/or category when asked, and list it with the number of PHI-looking spans "
        "(suspects) in each outgoing report. Running it again reopens the same sample. The "
        "audit lives in WORKSPACE/audit/ or beside a package in PACKAGE.audit/. --plan "
        "computes how many cases to audit: the least n whose exact (Clopper-Pearson) upper "
        "bound with --findings K findings is below --max-rate.")
    _add_target(p, nargs="?")
    p.add_argument("--sample", type=int, metavar="N", help="draw N cases (the whole frame when "
                   "it holds fewer)")
    p.add_argument("--stratify", metavar="S", help="site, category or site,category: "
                   "proportional allocation, at least one case per stratum when N allows")
    p.add_argument("--seed", type=seed, metavar="S", help="random seed (default: chosen at random "
                   "and recorded)")
    p.add_argument("--frame", choices=("accepted", "decided", "all"), help="workspace cases to "
                   "draw from: accepted (default; what an export shares), decided, or all but "
                   "failed")
    _add_auditor(p)
    p.add_argument("--list", action="store_true", help="print the sample (case ids with their "
                   "suspect counts) instead of opening the audit dock; without a display it is "
                   "printed anyway")
    p.add_argument("--screenshot", metavar="OUT.png", help="render the audit dock on the first "
                   "case not audited (under Xvfb when there is no display), save the window, "
                   "print the path and exit")
    p.add_argument("--plan", action="store_true", help="print the sample size needed and exit")
    p.add_argument("--max-rate", type=float, metavar="R", help="the rate to bound (0.01 for "
                   "1%%): with --plan, the size to sample for it; with --sample, the audit's "
                   "target, stated before any case is looked at (the report gives PASS or FAIL "
                   "against it)")
    _add_confidence(p, "with --plan or --max-rate: the confidence (default 0.95)")
    p.add_argument("--findings", type=int, default=0, metavar="K", help="with --plan: findings "
                   "allowed in the sample (default 0)")
    p.add_argument("--population", type=int, metavar="N", help="with --plan: the frame holds N "
                   "cases: the exact bound for drawing without replacement from it "
                   "(hypergeometric) is used; with --plan TARGET the frame's size is counted")


def _cmd_audit(args: argparse.Namespace) -> int:
    if args.plan:
        return _plan(args)
    if args.target is None:
        raise UpdpError("give the TARGET (a review workspace or a share package), or --plan")
    from .._qt.launch import has_display, open_dock
    from ..audit.session import AuditSession

    with AuditSession.open(args.target, auditor=args.auditor) as audit:
        _draw_or_reopen(args, audit)
        if args.max_rate is not None:
            if args.sample is None:
                raise UpdpError("--max-rate goes with --plan, or with --sample N (the target is "
                                "stated when the sample is drawn)")
            target = audit.state_target(args.max_rate, args.confidence)
            print(f"target stated: a residual-PHI rate below {target['max_rate']:.2%} at "
                  f"{target['confidence']:.0%} confidence", file=sys.stderr)
        if args.list or not (args.screenshot or has_display()):
            print("\n".join(_sample_lines(audit)))
            if not args.list:
                print("no display: the sample is printed above; mark cases with updp audit-mark, "
                      "or render the audit dock with --screenshot OUT.png", file=sys.stderr)
            return 0
        return open_dock("UPDP Audit", "Audit", audit, args.screenshot,
                         "use --list or --screenshot OUT.png")


def _plan(args: argparse.Namespace) -> int:
    from ..audit.stats import finite_plan, plan_sample_size, upper_bound

    if args.sample is not None:
        raise UpdpError("--plan takes no --sample (it only computes a size)")
    if args.max_rate is None:
        raise UpdpError("--plan needs --max-rate R (0.01 for 1%)")
    population = args.population
    if args.target is not None:
        if population is not None:
            raise UpdpError("give --plan TARGET (its frame is counted) or --population N, not both")
        population = _frame_size(args)
    if population is None:
        n = plan_sample_size(args.max_rate, args.confidence, args.findings)
        bound = upper_bound(args.findings, n, args.confidence)
        print(f"{n} cases: with {args.findings} finding(s) among {n} audited cases the one-sided "
              f"{args.confidence:.0%} Clopper-Pearson upper bound of the residual-PHI rate is "
              f"{bound:.4%}, below {args.max_rate:.4%} (a frame far larger than the sample; "
              "give --population N or a TARGET for the exact bound of a finite frame)")
        return 0
    print(finite_plan(args.max_rate, population, args.confidence, args.findings)[1])
    return 0


def _frame_size(args: argparse.Namespace) -> int:
    """The number of cases in TARGET's audit frame (``--frame``, as a sample would draw)."""
    from ..audit.target import frame_size

    size = frame_size(args.target, args.frame)
    if not size:
        raise UpdpError(f"{args.target}: the frame holds no cases")
    return size


def _draw_or_reopen(args: argparse.Namespace, audit) -> None:
    """Draw the sample with --sample N (or reopen the same one); without, the one drawn."""
    if args.sample is not None:
        _, drawn = audit.draw(args.sample, args.stratify, args.seed, args.frame)
        if drawn:
            print(f"drew a sample of {len(audit.sample.cases)} case(s) into "
                  f"{audit.audit_folder}", file=sys.stderr)
    elif audit.sample is None:
        raise UpdpError(f"{args.target}: no audit sample yet; draw one with --sample N")
    elif args.stratify or args.seed is not None or args.frame:
        raise UpdpError("--stratify, --seed and --frame go with --sample N")


def _sample_lines(audit) -> list[str]:
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


# -- audit-mark, audit-withdraw --------------------------------------------------------------

def _register_mark(subparsers) -> None:
    p = command(
        subparsers, "audit-mark", _cmd_audit_mark,
        "record an auditor's finding on a sampled case",
        "Record a finding on one case of TARGET's audit sample: clean, residual-phi (with "
        "where: --span START:END in the outgoing report, or --box x0,y0,x1,y1 on the outgoing "
        "image) or over-redaction (pathology text or image content lost). On disk when the "
        "command returns. Offsets only: the leaked text is never stored.")
    _add_target(p)
    p.add_argument("case_id", help="a case id of the sample (see updp audit TARGET)")
    p.add_argument("verdict", choices=("clean", "residual-phi", "over-redaction"))
    p.add_argument("--category", metavar="C", help="the PHI category (NAME, DATE, MRN, …; "
                   "default OTHER for residual PHI)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--span", metavar="START:END", help="character offsets in the outgoing "
                       "report")
    where.add_argument("--box", metavar="x0,y0,x1,y1", help="a box on the outgoing image, pixels")
    where.add_argument("--text", metavar="TEXT", help="the leaked text itself, found in the "
                       "outgoing report (its first occurrence; the offsets are stored, never "
                       "the text, and the text is not printed)")
    _add_auditor(p)
    p.add_argument("--comment", metavar="TEXT", default="", help="a note kept with the finding "
                   "(never put the leaked text in it)")


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


def _cmd_audit_mark(args: argparse.Namespace) -> int:
    from ..audit.session import AuditSession

    with AuditSession.open(args.target, auditor=args.auditor) as audit:
        if audit.sample is None:
            raise UpdpError(f"{args.target}: {NO_SAMPLE}")
        span, note = _parse_span(args.span), ""
        if args.text is not None:
            span, note = _find_text(audit, args.case_id, args.text)
        finding = audit.mark(args.verdict, case_id=args.case_id, category=args.category,
                             span=span, box=_parse_box(args.box), comment=args.comment)
        if finding.span:
            note += _span_echo(audit, finding)
    where = (f" at report {finding.span[0]}:{finding.span[1]}" if finding.span else
             f" at image box {','.join(map(str, finding.box))}" if finding.box else "")
    category = f" ({finding.phi_category})" if finding.phi_category else ""
    print(f"case {finding.case_id}: {finding.verdict.replace('_', '-')}{category}{where} by "
          f"{finding.auditor} at {finding.at} (finding {finding.finding_id}){note}")
    return 0


def _find_text(audit, case_id: str, text: str) -> tuple[tuple[int, int], str]:
    """The offsets of ``text`` in the case's outgoing report (never echoed)."""
    from ..audit.store import not_in_sample

    if not text.strip():
        raise UpdpError("--text is empty")
    if case_id not in (audit.sample.case_ids if audit.sample else ()):
        raise UpdpError(not_in_sample(case_id))
    report = audit.target.outgoing_report(case_id)[0]
    start = report.find(text)
    if start < 0:
        raise UpdpError(f"case {case_id}: the given text is not in its outgoing report (it "
                        "must match exactly, case and spaces included)")
    count = report.count(text)
    more = f"; found {count} times, the first marked (use --span for another)" if count > 1 else ""
    return (start, start + len(text)), more


def _span_echo(audit, finding) -> str:
    """What was marked, without the text: its length and the suspects it overlaps."""
    start, end = finding.span
    view = audit.view(finding.case_id)
    over = sorted({s.category for s in view.suspects if s.start < end and start < s.end})
    where = (f"over a suspect of category {', '.join(over)}" if over
             else "over no span the scan had marked as suspect")
    return f"; marked {end - start} character(s), {where}"


def _register_withdraw(subparsers) -> None:
    p = command(
        subparsers, "audit-withdraw", _cmd_audit_withdraw,
        "withdraw an auditor's finding recorded by mistake",
        "Withdraw finding FINDING_ID (printed by updp audit-mark) of TARGET's audit. Nothing "
        "is deleted: the withdrawal is recorded beside the finding, with who and why, and the "
        "statistics leave the finding out.")
    _add_target(p)
    p.add_argument("finding_id", type=int, help="the finding's number")
    p.add_argument("--reason", metavar="TEXT", default="", help="why (never put PHI in it)")
    _add_auditor(p, "who withdraws it")


def _cmd_audit_withdraw(args: argparse.Namespace) -> int:
    from ..audit.session import AuditSession

    with AuditSession.open(args.target, auditor=args.auditor) as audit:
        if audit.sample is None:
            raise UpdpError(f"{args.target}: no audit sample yet, so no findings to withdraw")
        audit.withdraw(args.finding_id, args.reason)
    print(f"finding {args.finding_id} withdrawn")
    return 0


# -- audit-stats, audit-report ---------------------------------------------------------------

def _register_stats(subparsers) -> None:
    p = command(
        subparsers, "audit-stats", _cmd_audit_stats,
        "residual-PHI and over-redaction rates with exact upper bounds",
        "Print the residual-PHI rate of TARGET's audit (cases with a residual-PHI finding over "
        "cases audited) with its one-sided Clopper-Pearson upper bound and two-sided interval, "
        "overall, per PHI category, per site and per case category; the over-redaction rate "
        "likewise.")
    _add_target(p)
    _add_confidence(p)
    add_json(p, "print JSON")


def _cmd_audit_stats(args: argparse.Namespace) -> int:
    from ..audit.session import AuditSession

    with AuditSession.open(args.target, auditor="stats") as audit:
        if audit.sample is None:
            raise UpdpError(f"{args.target}: {NO_SAMPLE}")
        stats = audit.statistics(args.confidence)
    if args.json:
        print_json(stats)
    else:
        print("\n".join(_stats_lines(stats)))
    return 0


def _rate(r: dict) -> str:
    if r["rate"] is None:
        return "not audited yet"
    low, high = r["interval"]
    return (f"{r['events']}/{r['cases']} = {r['rate']:.2%}; upper bound {r['upper']:.2%} "
            f"(one-sided {r['confidence']:.0%}); two-sided [{low:.2%}, {high:.2%}]")


def _stats_lines(stats: dict) -> list[str]:
    lines = [f"sampled {stats['sampled']}, audited {stats['audited']}, not yet "
             f"{stats['not_audited']}, clean {stats['clean']}",
             f"residual PHI:   {_rate(stats['residual_phi'])}",
             f"over-redaction: {_rate(stats['over_redaction'])}"]
    for category, r in stats["by_phi_category"].items():
        lines.append(f"  residual PHI, {category}: {_rate(r)}")
    for title, key in (("site", "by_site"), ("category", "by_category")):
        for value, group in stats[key].items():
            lines.append(f"  {title} {value} ({group['sampled']} sampled): residual PHI "
                         f"{_rate(group['residual_phi'])}; over-redaction "
                         f"{_rate(group['over_redaction'])}")
    return lines


def _register_report(subparsers) -> None:
    p = command(
        subparsers, "audit-report", _cmd_audit_report,
        "write the audit as one self-contained HTML file",
        "Write OUT.html: the sample and how it was drawn, the findings (offsets and boxes, "
        "never text), the rates and bounds, the privacy and utility score distributions, the "
        "re-identification results and privacy-utility curve (from --evaluation), the "
        "leak-scan result, configuration, model signatures and software versions. Plots are "
        "embedded; it prints to PDF.")
    _add_target(p)
    p.add_argument("out", type=Path, help="the HTML file to write")
    p.add_argument("--evaluation", type=Path, metavar="EVAL.json", help="the output of updp "
                   "evaluate-filter --json")
    _add_confidence(p)
    p.add_argument("--max-rate", type=float, metavar="R", help="the target to judge the bound "
                   "against (PASS / FAIL), when none was stated with updp audit --sample N "
                   "--max-rate R (a stated one is used otherwise)")


def _cmd_audit_report(args: argparse.Namespace) -> int:
    from ..audit.report import write_audit_report

    out = write_audit_report(args.target, args.out, evaluation=args.evaluation,
                             confidence=args.confidence, max_rate=args.max_rate)
    print(f"audit report: {out}")
    return 0
