"""What ``updp cases`` and ``updp status`` show of a workspace: each case's flags, and the
summary of the whole review (counts, scores, reviewers, the agreement of blind readers), as a
dictionary and as a self-contained HTML page."""

from __future__ import annotations

import base64
import html
import io
import statistics
from collections import Counter

from ..core.metrics import cohens_kappa
from .artifacts import CaseArtifacts
from .scores import PRIVACY_ALERT
from .store import DECISIONS


def case_flags(store, case_id: str) -> tuple[list[str], dict]:
    """What a reviewer must know of a case beyond its status, as short words (``out of
    domain``, ``image withheld``, ``image not shareable``, ``finding lost``, ``new
    positive``), and the score details they come from."""
    artifacts = CaseArtifacts(store, case_id)
    details = artifacts.json("scores") or {}
    details = details if isinstance(details, dict) else {}
    flags = []
    if artifacts.out_of_domain() is not None:
        flags.append("out of domain")
    shared = store.shared_image(case_id)
    if shared is not None and shared.startswith("withheld"):
        flags.append("image withheld")
    elif artifacts.image_risk() is not None:
        flags.append("image not shareable")
    privacy = details.get("privacy")
    if isinstance(privacy, (int, float)) and privacy < PRIVACY_ALERT:
        flags.append("re-identification alert")
    if details.get("lost"):
        flags.append("finding lost")
    if details.get("added"):
        flags.append("new positive")
    return flags, details


def case_rows(store, status: str | None = None) -> list[dict]:
    """Every case (of ``status``), in review order, as ``updp cases --json`` lists it: status,
    site, scores, failure, flags, verdict, findings and every decision, oldest first; the
    command's table and the notebook's are read from these."""
    decided: dict[str, list] = {}
    for d in store.decisions():
        decided.setdefault(d.case_id, []).append(d)
    rows = []
    for c in store.cases(status=status):
        flags, details = case_flags(store, c.case_id)
        rows.append({"case_id": c.case_id, "status": c.status, "site": c.site,
                     "privacy_score": c.privacy_score, "utility_score": c.utility_score,
                     "failure_reason": c.failure_reason, "flags": flags,
                     "verdict": details.get("verdict"), "findings": details.get("findings"),
                     "decisions": [{"decision": d.decision, "reviewer": d.reviewer,
                                    "decided_at": d.decided_at, "seconds": d.seconds,
                                    "comment": d.comment}
                                   for d in decided.get(c.case_id, [])]})
    return rows


def _spread(values) -> dict | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    q = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 \
        else [values[0]] * 3
    return {"cases": len(values), "min": round(values[0], 4), "q1": round(q[0], 4),
            "median": round(q[1], 4), "q3": round(q[2], 4), "max": round(values[-1], 4)}


def reader_agreement(store) -> dict:
    """Second-reader mode and how far the blind readers agree: completed pairs, agreements,
    Cohen's kappa over accept / reject / flag (None when it is undefined: fewer than two
    pairs, or both readers always giving one same answer), cases waiting for a second
    reader, and disagreements still to adjudicate."""
    pairs = store.reader_pairs()
    waiting = disagreements = 0
    for c in store.cases():
        if c.status == "pending":
            waiting += bool(store.round_readings(c.case_id))
        elif c.status == "flagged":
            decided = [e for e in store.action_log(c.case_id) if e.action == "decide"]
            disagreements += bool(decided and decided[-1].detail.get("readers"))
    return {"on": store.second_reader, "pairs": len(pairs),
            "agreed": sum(a == b for a, b in pairs),
            "kappa": cohens_kappa(pairs, tuple(DECISIONS)) if len(pairs) >= 2 else None,
            "waiting_for_second_reader": waiting,
            "disagreements_to_adjudicate": disagreements}


def workspace_summary(store) -> dict:
    """The summary ``updp status`` prints (see its help)."""
    cases = store.cases()
    flags = Counter()
    for c in cases:
        flags.update(case_flags(store, c.case_id)[0])
    reviewers: dict[str, dict] = {}
    for d in store.decisions():
        r = reviewers.setdefault(d.reviewer, {"decisions": 0, "seconds": []})
        r["decisions"] += 1
        if d.seconds is not None:
            r["seconds"].append(d.seconds)
    return {
        "cases": len(cases),
        "by_status": dict(Counter(c.status for c in cases)),
        "by_site": dict(Counter(c.site or "unknown" for c in cases)),
        "flags": dict(flags),
        "privacy": _spread(c.privacy_score for c in cases),
        "utility": _spread(c.utility_score for c in cases),
        "reviewers": {name: {"decisions": r["decisions"],
                             "median_seconds": round(statistics.median(r["seconds"]), 1)
                             if r["seconds"] else None}
                      for name, r in sorted(reviewers.items())},
        "second_reader": reader_agreement(store),
        "_scores": {"privacy": [c.privacy_score for c in cases if c.privacy_score is not None],
                    "utility": [c.utility_score for c in cases if c.utility_score is not None]},
    }


def public_summary(summary: dict) -> dict:
    """The summary without the per-case score lists the page plots from."""
    return {k: v for k, v in summary.items() if not k.startswith("_")}


def _figure_png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def summary_html(summary: dict, title: str) -> str:
    """The summary as one self-contained page (plots embedded): counts by status and site,
    the two score distributions with the privacy alert line, reviewers, blind readers."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    plots = []
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    for ax, key, what in ((axes[0], "by_status", "cases by status"),
                          (axes[1], "by_site", "cases by site")):
        items = sorted(summary[key].items())
        ax.bar([k for k, _ in items], [v for _, v in items], color="#4a6fa5")
        ax.set_title(what)
        ax.tick_params(axis="x", labelrotation=30)
    plots.append(("counts", _figure_png(fig)))
    plt.close(fig)
    scores = summary.get("_scores", {})
    if scores.get("privacy") or scores.get("utility"):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3))
        for ax, key in zip(axes, ("privacy", "utility")):
            ax.hist(scores.get(key) or [], bins=20, range=(0, 1), color="#6a8f4e")
            ax.set_title(f"{key} score ({len(scores.get(key) or [])} cases)")
            ax.set_xlabel("score (1 = best)")
            if key == "privacy":
                ax.axvline(PRIVACY_ALERT, color="#a3312f", linestyle="--",
                           label=f"alert below {PRIVACY_ALERT}")
                ax.legend()
        plots.append(("scores", _figure_png(fig)))
        plt.close(fig)

    def table(rows, head) -> str:
        cells = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row)
                       + "</tr>" for row in rows)
        return f"<table><tr>{cells}</tr>{body}</table>"

    def spread(s) -> str:
        return "no scores" if s is None else (
            f"median {s['median']:.2f}, quartiles {s['q1']:.2f}–{s['q3']:.2f}, "
            f"range {s['min']:.2f}–{s['max']:.2f} ({s['cases']} cases)")

    readers = summary["second_reader"]
    kappa = "undefined (fewer than two pairs, or no spread)" if readers["kappa"] is None \
        else f"{readers['kappa']:.2f}"
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{summary['cases']} case(s).</p>",
        "<h2>Cases</h2>",
        table(sorted(summary["by_status"].items()), ("status", "cases")),
        table(sorted(summary["by_site"].items()), ("site", "cases")),
        "<h2>To look at closely</h2>",
        table(sorted(summary["flags"].items()), ("flag", "cases")) if summary["flags"]
        else "<p>none</p>",
        "<h2>Scores</h2>",
        f"<p>privacy: {html.escape(spread(summary['privacy']))}<br>"
        f"utility: {html.escape(spread(summary['utility']))}</p>",
        "<h2>Reviewers</h2>",
        table([(n, r["decisions"], "-" if r["median_seconds"] is None else r["median_seconds"])
               for n, r in summary["reviewers"].items()],
              ("reviewer", "decisions", "median seconds per decision"))
        if summary["reviewers"] else "<p>no decisions yet</p>",
        "<h2>Second reader</h2>",
        f"<p>mode {'on' if readers['on'] else 'off'}; {readers['pairs']} case(s) read by two "
        f"reviewers, {readers['agreed']} in agreement; Cohen's kappa {kappa}; "
        f"{readers['waiting_for_second_reader']} waiting for a second reader; "
        f"{readers['disagreements_to_adjudicate']} disagreement(s) to adjudicate.</p>",
    ]
    for name, png in plots:
        parts.append(f'<p><img alt="{name}" src="data:image/png;base64,{png}"></p>')
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}"
             "table{border-collapse:collapse;margin:.5em 0}"
             "td,th{border:1px solid #bbb;padding:.2em .6em;text-align:left}")
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>"
            f"{html.escape(title)}</title><style>{style}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")
