"""A review workspace in a notebook: the cases as a table, one case's original | counterpart |
difference inline with its report marked as in the review dock, and the dock itself.

::

    from updp_napari.notebook import case_view, cases_table, open_review
    from updp_napari.review.session import ReviewSession

    session = ReviewSession.open("ws", reviewer="ann")
    cases_table(session)                     # status, site, scores, flags, last decision
    case_view(session.current)               # images side by side, report marked, findings
    session.decide("accept")                 # the same decisions as the dock
    viewer = open_review(session)            # the napari review dock (needs a display)

The views are plain objects that notebooks show through ``_repr_html_``; their ``html``
attribute is the page fragment, for a script. They read the workspace as it is when they
are made (no report text leaves the workspace except into the notebook's own output, which
is the reviewer's, like the dock's window).
"""

from __future__ import annotations

import base64
import html
import io
import os

import numpy as np

from .review.marking import STYLES, covering, span_kind


class HtmlView:
    """An HTML fragment a notebook shows inline (``_repr_html_``)."""

    def __init__(self, fragment: str, text: str = ""):
        self.html = fragment
        self.text = text

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text or f"<{type(self).__name__}>"


def _session(target, reviewer: str | None = None):
    from .review.session import ReviewSession

    if isinstance(target, (str, os.PathLike)):
        return ReviewSession.open(target, reviewer=reviewer)
    return target


def cases_table(target, status: str | None = None) -> HtmlView:
    """Every case of a workspace (a folder or a ``ReviewSession``), in review order: status,
    site, privacy and utility scores, flags, the last decision, as ``updp cases`` lists them."""
    from .review.store import ReviewStore
    from .review.summary import case_rows

    if isinstance(target, (str, os.PathLike)):
        with ReviewStore.open(target) as store:  # a folder: read, then closed
            found = case_rows(store, status=status)
    else:
        found = case_rows(target.store, status=status)
    head = ("case", "status", "site", "privacy", "utility", "flags", "reviewer", "decided at")
    rows, lines = [], []
    for r in found:
        last = (r["decisions"] or [None])[-1]
        cells = (r["case_id"], r["status"], r["site"] or "-", _score(r["privacy_score"]),
                 _score(r["utility_score"]), ", ".join(r["flags"]) or "-",
                 last["reviewer"] if last else "-",
                 last["decided_at"][:19].replace("T", " ") if last else "-")
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in cells) + "</tr>")
        lines.append("  ".join(str(v) for v in cells))
    table = ("<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
             + "".join(rows) + "</table>")
    return HtmlView(table, "\n".join(lines))


def _score(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _png(image: np.ndarray, colormap: str | None = None) -> str:
    from PIL import Image

    values = np.clip(np.nan_to_num(np.asarray(image, np.float32)), 0.0, 1.0)
    if colormap == "inferno":  # the difference, as the dock shows it
        from matplotlib import colormaps

        rgb = (colormaps["inferno"](values / 0.5 if values.size else values)[..., :3] * 255)
        picture = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    else:
        picture = Image.fromarray(np.round(values * 255).astype(np.uint8), "L")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def marked_report(text: str, spans) -> str:
    """The report as HTML with its spans in the review dock's colours (the legend's words in
    each mark's title: category and state, never the text)."""
    parts, pos = [], 0
    for start, end, span in covering([s for s in spans if s.end <= len(text)]):
        parts.append(html.escape(text[pos:start]))
        background, foreground, words = STYLES[span_kind(span)]
        parts.append(f'<span style="background:{background};color:{foreground}" '
                     f'title="{html.escape(span.category)}: {words}">'
                     f"{html.escape(text[start:end])}</span>")
        pos = end
    parts.append(html.escape(text[pos:]))
    return "".join(parts)


def case_view(case, width: int = 256) -> HtmlView:
    """One case (a ``ReviewCase``: ``session.current``, ``session.case(id)``) inline: the
    original, the counterpart (or, out of domain, the original with its text removed) and
    their difference side by side; the report with its spans marked beside the redacted
    report as it would be shared; the scores and the finding-by-finding verdict."""
    outside = case.out_of_domain
    right = case.cleaned if outside is not None else case.synthetic
    right_name = ("original, text removed (NOT de-identified)" if outside is not None
                  else "counterpart (synthetic)")
    original = case.original
    difference = None
    if original is not None and right is not None and original.shape == right.shape:
        difference = np.abs(np.asarray(right, np.float32) - np.asarray(original, np.float32))
    figures = []
    for name, image, colormap in (("original", original, None), (right_name, right, None),
                                  ("difference", difference, "inferno")):
        if image is None:
            figures.append(f"<figure><figcaption>{name}: none</figcaption></figure>")
            continue
        figures.append(f'<figure style="display:inline-block;margin:4px">'
                       f'<img width="{width}" src="data:image/png;base64,{_png(image, colormap)}">'
                       f"<figcaption>{html.escape(name)}</figcaption></figure>")
    scores = case.scores
    details = scores["details"]
    words = [f"status {case.status}",
             f"privacy {_score(scores['privacy'])}", f"utility {_score(scores['utility'])}"]
    if details.get("verdict"):
        words.append(str(details["verdict"]))
    if outside is not None:
        words.append(f"OUT OF DOMAIN ({outside.get('reason') or 'no reason recorded'})")
    report = marked_report(case.report, case.spans)
    fragment = (
        f"<div><b>case {html.escape(case.case_id)}</b> · {html.escape(' · '.join(words))}</div>"
        f"<div>{''.join(figures)}</div>"
        '<div style="display:flex;gap:12px">'
        f'<pre style="white-space:pre-wrap;flex:1">{report}</pre>'
        f'<pre style="white-space:pre-wrap;flex:1">{html.escape(case.redacted)}</pre></div>')
    return HtmlView(fragment, f"case {case.case_id}: " + "; ".join(words))


def open_review(target, reviewer: str | None = None):
    """Open napari with the review dock on a workspace (a folder or a ``ReviewSession``) at
    its current case; returns the viewer (``viewer.close()`` ends it). Needs a display."""
    from ._qt.launch import has_display

    if not has_display():
        from .core.errors import UpdpError

        raise UpdpError("no display to open napari on; show cases inline with case_view, or "
                        "run updp review WORKSPACE --screenshot OUT.png")
    import napari

    from ._qt.review_dock import ReviewWidget

    session = _session(target, reviewer)
    viewer = napari.Viewer(title="UPDP Review")
    viewer.window.add_dock_widget(ReviewWidget(viewer, session), name="Review", area="right")
    return viewer
