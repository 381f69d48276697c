"""How report spans are marked for a reader: the colour of each kind of span, its tooltip
(never report text), and which span is drawn where spans overlap. The review dock's report
view and the notebook views share these."""

from __future__ import annotations

#: (background, foreground) per kind of span, and the words the legend shows.
STYLES = {
    "redact": ("#a3312f", "#ffffff", "PHI, redacted"),
    "added": ("#c26a00", "#ffffff", "redacted by a reviewer"),
    "kept_phi": ("#55585e", "#f0f0f0", "PHI, kept by a reviewer"),
    "pathology": ("#1f7a45", "#ffffff", "protected pathology term"),
    "replacement": ("#3b4f7a", "#ffffff", "replacement"),
}
PATHOLOGY = "PATHOLOGY"


def span_kind(span) -> str:
    """Which style a span is drawn in."""
    if span.action == "redact":
        return "added" if span.origin == "reviewer" else "redact"
    return "pathology" if span.category == PATHOLOGY else "kept_phi"


def span_tooltip(span) -> str:
    """Category, the rule or model that found it, and what a click does. No report text."""
    found = "added by a reviewer" if span.origin == "reviewer" else f"found by {span.source}"
    state = "redacted" if span.action == "redact" else "kept"
    changed = ""
    if span.changed and span.origin != "reviewer":
        changed = f" (proposed: {span.proposed_action}; changed by {span.changed_by})"
    click = "keep it" if span.action == "redact" else "redact it"
    return f"{span.category} · {found} · {state}{changed}\nclick to {click}"


def covering(spans) -> list[tuple[int, int, object]]:
    """Non-overlapping runs, each with the span drawn there: a reviewer's span over the
    rules', a redaction over a kept term, the shorter over the longer."""
    cuts = sorted({p for s in spans for p in (s.start, s.end)})
    runs = []
    for a, b in zip(cuts, cuts[1:]):
        over = [s for s in spans if s.start <= a and b <= s.end]
        if not over:
            continue
        best = min(over, key=lambda s: (s.origin != "reviewer", s.action != "redact",
                                        s.end - s.start, s.span_id))
        if runs and runs[-1][2] is best and runs[-1][1] == a:
            runs[-1] = (runs[-1][0], b, best)
        else:
            runs.append((a, b, best))
    return runs
