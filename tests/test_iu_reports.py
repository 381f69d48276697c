"""Real radiology reports stay readable: the Indiana University chest X-ray reports (OpenI).

3,927 public reports whose PHI the publishers already replaced by ``XXXX``. What is left outside
the ``XXXX`` runs is clinical text, so whatever the de-identifier redacts there is over-redaction,
and the pathology / anatomy terms it protects must come out byte-identical. The reports are fetched
once from the torchxrayvision wheel (see ``public_data``); without network the tests skip.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from public_data import iu_reports, iu_reports_dir, read_iu_report

from updp_napari.deid.report import ReportDeidentifier

# Redacted non-whitespace characters outside XXXX, as a share of all of them.
MAX_OVER_REDACTION = 0.05 / 100
XXXX = re.compile(r"X{4,}")


@pytest.fixture(scope="module")
def reports() -> dict[str, str]:
    folder, reason = iu_reports_dir()
    if folder is None:
        pytest.skip(f"Indiana University reports unavailable: {reason}")
    found = iu_reports(folder)
    assert len(found) > 3800, f"only {len(found)} reports with text in {folder}"
    return found


@pytest.fixture(scope="module")
def detected(reports):
    deid = ReportDeidentifier(use_plugins=False)
    return deid, {name: deid.detect(text) for name, text in reports.items()}


def _outside_xxxx(text: str) -> list[bool]:
    """Per character: non-whitespace and not part of an XXXX token."""
    keep = [not c.isspace() for c in text]
    for m in XXXX.finditer(text):
        keep[m.start():m.end()] = [False] * (m.end() - m.start())
    return keep


def _top(counter: Counter, n: int = 30) -> str:
    return "\n".join(f"  {count:4d}  {what!r}" for what, count in counter.most_common(n))


@pytest.mark.slow
def test_over_redaction_below_limit(reports, detected):
    _, spans_of = detected
    total = redacted = 0
    seen: Counter = Counter()
    for name, text in reports.items():
        keep = _outside_xxxx(text)
        total += sum(keep)
        marked = [False] * len(text)
        for span in spans_of[name]:
            hit = sum(keep[span.start:span.end]) - sum(marked[span.start:span.end])
            marked[span.start:span.end] = keep[span.start:span.end]
            if hit > 0:
                redacted += hit
                seen[(text[span.start:span.end], span.source)] += 1
    share = redacted / total
    assert share <= MAX_OVER_REDACTION, (
        f"{redacted} of {total} characters outside XXXX redacted in {len(reports)} reports "
        f"({100 * share:.4f} % > {100 * MAX_OVER_REDACTION:.2f} %); most common (text, source):\n"
        + _top(seen))


@pytest.mark.slow
def test_protected_terms_never_redacted(reports, detected):
    deid, spans_of = detected
    hits: Counter = Counter()
    for name, text in reports.items():
        spans = spans_of[name]
        for start, end in deid.protected(text):
            for span in spans:
                if span.start < end and start < span.end:
                    hits[(text[start:end], text[span.start:span.end], span.source)] += 1
    assert not hits, ("protected terms overlapped by a span, (term, span, source):\n" + _top(hits))


def _runs(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping protected terms ("pleural", "pleural effusion") joined into one run."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


@pytest.mark.slow
def test_protected_terms_survive_tagging(reports):
    """With the default de-identifier (plugins included) the tagged text keeps every term, in order."""
    deid = ReportDeidentifier()
    lost: Counter = Counter()
    for text in reports.values():
        out = deid.deidentify(text, mode="tag").text
        pos = 0
        for start, end in _runs(deid.protected(text)):
            at = out.find(text[start:end], pos)
            if at < 0:
                lost[text[start:end]] += 1
            else:
                pos = at + end - start
    assert not lost, "protected terms missing from the tagged reports:\n" + _top(lost)


def test_read_iu_report(tmp_path):
    """The OpenI layout: AbstractText by Label, empty sections left out, whitespace folded."""
    xml = tmp_path / "1.xml"
    xml.write_text(
        '<?xml version="1.0" encoding="utf-8"?><eCitation><MedlineCitation><Article><Abstract>'
        '<AbstractText Label="COMPARISON">None.</AbstractText>'
        '<AbstractText Label="INDICATION"/>'
        '<AbstractText Label="FINDINGS">Clear lungs.\n   No  effusion.</AbstractText>'
        '<AbstractText Label="IMPRESSION">Normal chest x-XXXX.</AbstractText>'
        "</Abstract></Article></MedlineCitation></eCitation>", encoding="utf-8")
    assert read_iu_report(xml) == (
        "COMPARISON: None.\nFINDINGS: Clear lungs. No effusion.\nIMPRESSION: Normal chest x-XXXX.")
