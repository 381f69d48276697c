"""The audit report: one self-contained HTML file an auditor can sign and print to PDF.

It holds the sample and how it was drawn, the findings (offsets and boxes, never text),
the residual-PHI and over-redaction rates with exact bounds, the privacy and utility score
distributions of the frame, the re-identification results and privacy–utility curve of the
generative filter (from ``updp evaluate-filter --json``, when given; otherwise it says none
was given), the leak-scan result, the configuration, the model signatures and the software
versions. Plots are PNGs embedded as base64; the CSS is inline, with print rules.

No report text, no header value and no auditor comment is written into it: comments stay in
the audit database (an auditor may have typed what they saw).
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__
from ..core.errors import InputError, UpdpError
from ..core.files import write_bytes_atomic

#: Distributions whose versions the report lists (read from their metadata, never imported).
SOFTWARE = ("updp-napari", "numpy", "scipy", "matplotlib", "pydicom", "pillow", "torch",
            "diffusers", "safetensors", "napari")

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1b1b;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #bbb; padding-bottom: 0.2em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 0.9em; }
.statement { border: 2px solid #2d6a4f; background: #eef7f1; padding: 0.8em 1em; font-size: 1.1em; }
.statement.warn { border-color: #b5651d; background: #fdf3e7; }
.statement.fail { border-color: #a4161a; background: #fbeaea; }
.verdict { font-weight: bold; font-size: 1.2em; }
.note { color: #555; }
.residual_phi { color: #a4161a; font-weight: 600; }
.over_redaction { color: #b5651d; font-weight: 600; }
img { max-width: 100%; }
pre.sig { white-space: pre-wrap; word-break: break-all; margin: 0; font-size: 0.8em; }
.sign { margin-top: 2.5em; }
.sign div { display: inline-block; width: 45%; border-top: 1px solid #333; margin-right: 4%;
            padding-top: 0.3em; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  h2 { page-break-after: avoid; }
  section, table, figure { page-break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _pct(value) -> str:
    return "–" if value is None else f"{value:.2%}"


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="plot" src="data:image/png;base64,{data}">'


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def software_versions() -> dict[str, str]:
    """Python and the distributions the product runs on, from their installed metadata."""
    from importlib import metadata

    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in SOFTWARE:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def load_evaluation(path: str | os.PathLike | None) -> dict | None:
    """The output of ``updp evaluate-filter --json``, checked for the fields the report uses."""
    if path is None:
        return None
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (the output of updp evaluate-filter --json)") \
            from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{path}: not a JSON file (the output of updp evaluate-filter --json)") \
            from None
    if not isinstance(data, dict) or not isinstance(data.get("curve"), list) \
            or "reid_auc_original" not in data:
        raise InputError(f"{path}: not the output of updp evaluate-filter --json (no curve, no "
                         "reid_auc_original)")
    return data


# -- sections -----------------------------------------------------------------------------

def _statement(stats: dict, sample, target: dict | None = None) -> str:
    """The bound in words and, against ``target`` (``{"max_rate", "confidence"}``), the
    verdict: PASS only when every sampled case is audited and the bound is below the target;
    without a target, no verdict (and the box is not green)."""
    from .stats import upper_bound_finite

    r = stats["residual_phi"]
    confidence = stats["confidence"]
    if r["rate"] is None:
        return ('<p class="statement warn">No sampled case has been audited yet: there is no '
                'bound to state.</p>')
    upper, how = r["upper"], "one-sided exact Clopper–Pearson bound"
    if sample.frame_size and r["cases"] <= sample.frame_size:
        upper = upper_bound_finite(r["events"], r["cases"], sample.frame_size, confidence)
        how = (f"one-sided exact bound for {r['cases']} cases drawn without replacement from a "
               f"frame of {sample.frame_size} (hypergeometric)")
    text = (f"With {confidence:.0%} confidence, fewer than <b>{_pct(upper)}</b> of the "
            f"cases in the frame ({_e(sample.frame)}, {sample.frame_size} cases) carry residual "
            f"PHI: {r['events']} of {r['cases']} audited cases had residual PHI ({how}).")
    if target is None:
        verdict, kind = ("No target was stated (updp audit TARGET --sample N --max-rate R, or "
                         "audit-report --max-rate R): no pass or fail."), "warn"
    elif stats["not_audited"]:
        verdict, kind = "INCOMPLETE: no verdict until every sampled case is audited.", "warn"
    elif upper < target["max_rate"]:
        verdict, kind = (f"PASS: the bound is below the target of {_pct(target['max_rate'])}"
                         f"{_target_source(target)}."), ""
    else:
        verdict, kind = (f"FAIL: the bound is not below the target of "
                         f"{_pct(target['max_rate'])}{_target_source(target)}"
                         + (f"; {r['events']} audited case(s) carry residual PHI" if r["events"]
                            else "") + "."), "fail"
    if stats["not_audited"]:
        text += (f' <br><b>Incomplete:</b> {stats["not_audited"]} sampled case(s) are not '
                 'audited yet; the bound is that of the audited cases, a random sample only if '
                 'no case was skipped for what it showed.')
    return f'<p class="statement {kind}">{text}<br><span class="verdict">{verdict}</span></p>'


def _target_source(target: dict) -> str:
    who = target.get("stated_by")
    return f", stated by {_e(who)} at {_e(target.get('stated_at', ''))}" if who else ""


def _rate_row(label: str, r: dict, sampled=None) -> str:
    interval = "–" if r["interval"] is None else \
        f"{_pct(r['interval'][0])} – {_pct(r['interval'][1])}"
    rate = "–" if r["rate"] is None else _pct(r["rate"])
    cells = [label] + ([] if sampled is None else [sampled])
    head = "".join(f"<td>{_e(c)}</td>" if i == 0 else f'<td class="num">{_e(c)}</td>'
                   for i, c in enumerate(cells))
    return (f"<tr>{head}<td class='num'>{r['events']}</td><td class='num'>{r['cases']}</td>"
            f"<td class='num'>{rate}</td><td class='num'>{_pct(r['upper'])}</td>"
            f"<td class='num'>{interval}</td></tr>")


def _bounds_section(stats: dict) -> str:
    confidence = stats["confidence"]
    two = f"{confidence:.0%} two-sided"
    head = (f"<tr><th>{{label}}</th>{{extra}}<th>with finding</th><th>audited</th><th>rate</th>"
            f"<th>upper bound ({confidence:.0%} one-sided)</th><th>interval ({two})</th></tr>")
    parts = ["<table>", head.format(label="", extra=""),
             _rate_row("residual PHI", stats["residual_phi"]),
             _rate_row("over-redaction", stats["over_redaction"]), "</table>"]
    if stats["by_phi_category"]:
        parts += ["<h3>Residual PHI by PHI category</h3>", "<table>",
                  head.format(label="PHI category", extra="")]
        parts += [_rate_row(c, r) for c, r in stats["by_phi_category"].items()]
        parts.append("</table>")
    for title, key in (("site", "by_site"), ("case category", "by_category")):
        for kind in ("residual_phi", "over_redaction"):
            parts += [f"<h3>{'Residual PHI' if kind == 'residual_phi' else 'Over-redaction'} "
                      f"by {title}</h3>", "<table>",
                      head.format(label=title, extra="<th>sampled</th>")]
            parts += [_rate_row(value, group[kind], group["sampled"])
                      for value, group in stats[key].items()]
            parts.append("</table>")
    return "\n".join(parts)


def _bounds_plot(stats: dict) -> str:
    groups = [("overall", stats["residual_phi"])]
    groups += [(s if s.startswith("site") else f"site {s}", g["residual_phi"])
               for s, g in stats["by_site"].items()]
    groups += [(c, g["residual_phi"]) for c, g in stats["by_category"].items()]
    groups = [(name, r) for name, r in groups if r["rate"] is not None]
    if not groups:
        return '<p class="note">No plot: nothing audited yet.</p>'
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * len(groups)))
    names = [g[0] for g in groups][::-1]
    rates = [g[1]["rate"] for g in groups][::-1]
    uppers = [g[1]["upper"] for g in groups][::-1]
    y = range(len(groups))
    ax.barh(y, uppers, color="#f4c7c3", label=f"upper bound ({stats['confidence']:.0%})")
    ax.plot(rates, y, "o", color="#a4161a", label="observed rate")
    ax.set_yticks(list(y), names)
    ax.set_xlim(0, max(max(uppers) * 1.1, 0.01))
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_xlabel("cases with residual PHI")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Residual-PHI rate and its exact upper bound")
    return _png(fig)


def _scores_plot(cases, sampled: set[str]) -> str:
    privacy = [c.privacy_score for c in cases if c.privacy_score is not None]
    utility = [c.utility_score for c in cases if c.utility_score is not None]
    if not privacy and not utility:
        return '<p class="note">No case of the frame has a privacy or utility score.</p>'
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, name, attr in ((axes[0], "privacy score (0 re-identified, ~0.5 chance)",
                            "privacy_score"),
                           (axes[1], "utility score (findings called on both / on either)", "utility_score")):
        every = [getattr(c, attr) for c in cases if getattr(c, attr) is not None]
        picked = [getattr(c, attr) for c in cases
                  if getattr(c, attr) is not None and c.case_id in sampled]
        if not every:
            ax.text(0.5, 0.5, "no scores", ha="center", va="center", transform=ax.transAxes)
            continue
        bins = [i / 20 for i in range(21)]
        ax.hist(every, bins=bins, color="#9ab", label=f"frame ({len(every)})")
        ax.hist(picked, bins=bins, color="#345", label=f"sample ({len(picked)})")
        ax.set_xlabel(name)
        ax.set_ylabel("cases")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _evaluation_section(evaluation: dict | None, source) -> str:
    if evaluation is None:
        return ('<p class="note">No evaluation was given: re-identification results and the '
                'privacy–utility curve come from <code>updp evaluate-filter --json</code>, passed '
                'with <code>--evaluation EVAL.json</code>. No figures are shown here.</p>')
    from ..synth.evaluate import interval_text

    def f(value):
        return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else _e(value)

    rows = [("source", _e(source)), ("cohort", _e(evaluation.get("cohort"))),
            ("studies / patients", f"{f(evaluation.get('studies'))} / "
                                   f"{f(evaluation.get('patients'))}"),
            ("default strength", f(evaluation.get("default_strength"))),
            ("re-identification AUC, originals", f(evaluation.get("reid_auc_original"))),
            ("re-identification AUC, synthetic", f(evaluation.get("reid_auc_synthetic"))),
            ("closed-set top-1, originals", f(evaluation.get("closed_set_top1_original"))),
            ("closed-set top-1, synthetic", f(evaluation.get("closed_set_top1_synthetic"))),
            ("pathology macro AUC, originals", f(evaluation.get("pathology_auc_original"))),
            ("pathology macro AUC, synthetic", f(evaluation.get("pathology_auc_synthetic")))]
    parts = ["<table>"] + [f"<tr><th>{k}</th><td class='num'>{v}</td></tr>" for k, v in rows]
    parts.append("</table>")
    targets = evaluation.get("targets")
    if isinstance(targets, dict) and targets:
        parts.append("<table><tr><th>target</th><th>measured</th><th>met</th></tr>")
        for name, t in targets.items():
            t = t if isinstance(t, dict) else {}
            met = {True: "yes", False: "NO", None: "not measurable"}.get(t.get("met"), "–")
            interval = _e(interval_text(t.get("ci95")))
            parts.append(f"<tr><td>{_e(name)}</td><td class='num'>{f(t.get('value'))}{interval}</td>"
                         f"<td>{met}</td></tr>")
        parts.append("</table>")
    curve = evaluation["curve"]
    if curve:
        parts.append("<table><tr><th>strength</th><th>re-id AUC</th><th>top-1</th>"
                     "<th>pathology AUC</th><th>label agreement</th><th>SSIM in / out</th></tr>")
        for c in curve:
            parts.append(f"<tr><td class='num'>{f(c.get('strength'))}</td>"
                         f"<td class='num'>{f(c.get('reid_auc_synthetic'))}</td>"
                         f"<td class='num'>{f(c.get('closed_set_top1_synthetic'))}</td>"
                         f"<td class='num'>{f(c.get('pathology_auc_synthetic'))}</td>"
                         f"<td class='num'>{f(c.get('pathology_label_agreement'))}</td>"
                         f"<td class='num'>{f(c.get('ssim_inside'))} / "
                         f"{f(c.get('ssim_outside'))}</td></tr>")
        parts.append("</table>")
        try:
            from ..synth.evaluate import plot_curve

            _pyplot()
            buffer = io.BytesIO()
            plot_curve(evaluation, buffer)
            import matplotlib.pyplot as plt

            plt.close("all")
            data = base64.b64encode(buffer.getvalue()).decode("ascii")
            parts.append(f'<figure><img alt="privacy-utility curve" '
                         f'src="data:image/png;base64,{data}"><figcaption class="note">'
                         f'The privacy–utility curve of the generative filter.</figcaption>'
                         f'</figure>')
        except (KeyError, TypeError, ValueError):
            parts.append('<p class="note">The curve in the evaluation file is incomplete; it is '
                         'not plotted.</p>')
    return "\n".join(parts)


def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def build_audit_report(audit, evaluation: dict | None = None, evaluation_source=None,
                       confidence: float = 0.95, stated: dict | None = None) -> str:
    """The HTML text of the report of ``audit`` (an :class:`~.session.AuditSession`)."""
    sample = audit.sample
    if sample is None:
        raise UpdpError(f"{audit.target.path}: no audit sample yet; draw one with updp audit "
                        "TARGET --sample N")
    target = audit.target
    stats = audit.statistics(confidence)
    findings = audit.store.findings(include_withdrawn=True)
    all_cases = target.cases()
    from .sample import frame_cases

    _, frame = frame_cases(all_cases, target.kind, None if sample.frame == "package" else sample.frame)
    sampled = set(sample.case_ids)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")

    case_rows = []
    for case in sample.cases:
        view = audit.view(case.case_id)
        verdict = ", ".join(sorted(v.replace("_", " ") for v in view.verdicts)) or "not audited"
        case_rows.append([case.position + 1, f"<span class='mono'>{case.case_id}</span>",
                          _e(case.site), _e(case.category), len(view.suspects), _e(verdict)])
    allocation_rows, chances = [], []
    for a in sample.allocation:
        stratum = ", ".join(f"{k} = {v}" for k, v in a["stratum"].items()) or "the whole frame"
        chance = a["sample"] / a["frame"] if a["frame"] else 0.0
        chances.append(chance)
        allocation_rows.append([_e(stratum), a["frame"], a["sample"], f"{chance:.1%}"])
    if chances and min(chances) > 0 and max(chances) / min(chances) > 1.25:
        weighting = (f"The chances differ ({min(chances):.1%} to {max(chances):.1%}): rounding and "
                     "the floor of one case per stratum over-sample small strata, and the plain "
                     "rate below weighs every audited case alike, so it leans toward them. Read "
                     "the per-stratum rates too, or draw a larger sample.")
    else:
        weighting = ("Every case had about the same chance of being drawn, so the plain rate "
                     "speaks for the frame.")
    finding_rows = []
    for f in findings:
        where = (f"report {f.span[0]}:{f.span[1]}" if f.span else
                 f"image box {', '.join(map(str, f.box))}" if f.box else "–")
        finding_rows.append([f.finding_id, f"<span class='mono'>{f.case_id}</span>",
                             f"<span class='{f.verdict}'>{_e(f.verdict.replace('_', ' '))}</span>",
                             _e(f.phi_category or "–"), _e(where), _e(f.auditor),
                             "–" if f.seconds is None else f"{f.seconds:.0f} s", _e(f.at),
                             "yes" if f.comment else "–",
                             "withdrawn" if f.withdrawn else "live"])
    leak = target.leak_scan()
    if leak is None:
        leak_html = ("<p>No leak scan: this is a workspace, and the leak scan runs when a share "
                     "package is exported (<code>updp export</code>, which refuses to write a "
                     "package in which it finds any original identifier). Audit the exported "
                     "package to report its scan.</p>")
    else:
        leak_html = f"<p>Leak scan of the package at export: <b>{_e(leak)}</b></p>"
    signature_rows = [[_e(s["what"]), s["cases"], "<pre class='sig'>" + _e(json.dumps(
        s["signature"], indent=1, sort_keys=True, default=str)) + "</pre>"]
        for s in target.signatures()]
    config_rows = [["target", _e(target.path)], ["kind", _e(target.kind)],
                   ["audit database", _e(audit.audit_folder / "audit.sqlite")],
                   ["frame", _e(sample.frame)], ["frame size", sample.frame_size],
                   ["frame changed since the draw", "yes" if audit.frame_changed() else "no"],
                   ["sample size asked / drawn", f"{sample.size_requested} / {len(sample.cases)}"],
                   ["strata", _e(", ".join(sample.strata) or "none (simple random sample)")],
                   ["seed", sample.seed], ["drawn by", _e(sample.drawn_by)],
                   ["drawn at", _e(sample.drawn_at)], ["confidence", f"{confidence:.0%}"]]
    if target.kind == "package":
        config_rows += [["package made by", _e(f"updp-napari {target.manifest.get('version')}")],
                        ["OCR in the leak scan", "on" if target.manifest.get("ocr") else "off"]]
    software_rows = [[_e(k), _e(v)] for k, v in software_versions().items()]

    body = [
        f"<h1>Privacy audit of {_e(target.path.name)}</h1>",
        f"<p class='note'>{_e(target.kind)} <code>{_e(target.path)}</code> — report made "
        f"{_e(now)} by updp-napari {_e(__version__)}</p>",
        _statement(stats, sample, stated if stated is not None else audit.stated_target()),
        "<section><h2>1. The sample and how it was drawn</h2>",
        f"<p>{len(sample.cases)} case(s) drawn from the {sample.frame_size} case(s) of the frame "
        f"<b>{_e(sample.frame)}</b> with seed {sample.seed}"
        f"{', stratified by ' + _e(' and '.join(sample.strata)) if sample.strata else ''}. Case ids "
        "were sorted and drawn without replacement with numpy's default generator; strata get "
        "cases in proportion to their size (at least one each when the sample allows). "
        f"{_e(weighting)} The chance per stratum:</p>",
        _table(["stratum", "cases in frame", "drawn", "chance of a case"], allocation_rows),
        "<p class='note'>Case category: whether the case's image carried burned-in text the "
        "pipeline found and filled (from the manifest for a share package; <i>unknown</i> "
        "when it does not say). Suspects: spans of the outgoing report that still look like PHI to the "
        "report de-identifier"
        + (", outside the known stand-ins." if target.kind == "workspace" else
           "; a package does not record where its stand-ins are, so they are counted too.")
        + "</p>",
        _table(["#", "case id", "site", "category", "suspects", "verdict"], case_rows),
        "</section>",
        "<section><h2>2. Findings</h2>",
        "<p class='note'>Where a finding lies is given as character offsets into the outgoing "
        "report or a box in image pixels; the text itself is never recorded. Comments are kept "
        "in the audit database and not printed here.</p>",
        _table(["#", "case id", "verdict", "PHI category", "where", "auditor", "time", "at",
                "comment", "state"], finding_rows) if finding_rows
        else "<p>No findings recorded yet.</p>",
        "</section>",
        "<section><h2>3. Rates and exact bounds</h2>",
        f"<p>Sampled {stats['sampled']}, audited {stats['audited']}, not yet audited "
        f"{stats['not_audited']}, clean {stats['clean']}. A case counts as having residual PHI "
        "when it has at least one live residual-PHI finding. Bounds are exact Clopper–Pearson "
        "(beta quantiles), conservative for a sample drawn without replacement from a finite "
        "frame.</p>",
        _bounds_section(stats), _bounds_plot(stats),
        "</section>",
        "<section><h2>4. Privacy and utility scores</h2>",
        "<p class='note'>Per case, from the pipeline's scorers: privacy is where the patient's own "
        "originals rank for the synthetic image (0: re-identified; about 0.5: chance); utility "
        "is the share of findings the pathology classifier calls the same.</p>",
        _scores_plot(frame, sampled),
        "</section>",
        "<section><h2>5. Re-identification and the privacy–utility curve</h2>",
        _evaluation_section(evaluation, evaluation_source),
        "</section>",
        "<section><h2>6. Leak scan</h2>", leak_html, "</section>",
        "<section><h2>7. Configuration</h2>",
        _table(["setting", "value"], config_rows), "</section>",
        "<section><h2>8. Model signatures</h2>",
        _table(["what", "cases", "signature"], signature_rows) if signature_rows
        else "<p>No signatures recorded.</p>",
        "</section>",
        "<section><h2>9. Software versions</h2>",
        _table(["software", "version"], software_rows), "</section>",
        "<div class='sign'><div>Auditor, date</div><div>Data protection officer, date</div></div>",
    ]
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>Privacy audit — {_e(target.path.name)}</title><style>{_CSS}</style></head>"
            "<body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_audit_report(target: str | os.PathLike, out: str | os.PathLike, *,
                       evaluation: str | os.PathLike | None = None,
                       confidence: float = 0.95, max_rate: float | None = None) -> Path:
    """Write the audit report of ``target`` to ``out`` (atomically); returns the path."""
    from .session import AuditSession
    from .stats import _check, check_rate

    _check(0, 1, confidence)
    out = Path(out)
    if out.is_dir():
        raise InputError(f"{out}: a folder; give the HTML file to write (e.g. {out}/audit.html)")
    if not out.parent.is_dir():
        raise InputError(f"{out.parent}: no such folder to write the report in")
    data = load_evaluation(evaluation)
    with AuditSession.open(target, auditor="report") as audit:
        if audit.target.kind == "package" and out.resolve().is_relative_to(audit.target.path):
            raise InputError(f"{out}: inside the share package; write the report elsewhere (the "
                             "package stays as exported)")
        stated = None if max_rate is None else {"max_rate": check_rate(max_rate),
                                                "confidence": confidence}
        text = build_audit_report(audit, data, evaluation, confidence, stated)
    write_bytes_atomic(out, text.encode("utf-8"))
    return out
