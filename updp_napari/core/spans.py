"""Spans of text: what a detector found, and how overlapping findings become one redaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


# Not frozen: a frozen dataclass costs three times as much to make, and a note makes dozens.
# Spans are never changed once made (a new one is made instead); they hash by value.
@dataclass(slots=True, unsafe_hash=True)
class Span:
    """``text[start:end]`` is ``category`` PHI, found by ``source`` with ``confidence``."""

    start: int
    end: int
    category: str
    source: str
    confidence: float = 1.0

    def __len__(self) -> int:
        return self.end - self.start

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end


def resolve(spans: Iterable[Span]) -> list[Span]:
    """Non-overlapping spans covering every character any span covered.

    Where spans overlap they become one; it keeps the category and source of the longest
    (ties: the most confident), so a URL holding an accession number stays one URL.
    """
    ordered = sorted(spans, key=lambda s: (s.start, -(s.end - s.start), -s.confidence))
    out: list[Span] = []
    for span in ordered:
        if span.end <= span.start:
            continue
        if out and span.start < out[-1].end:
            last = out[-1]
            if span.end > last.end:
                longer = span if len(span) > len(last) else last
                out[-1] = Span(last.start, span.end, longer.category, longer.source,
                               max(last.confidence, span.confidence))
            continue
        out.append(span)
    return out


def join_adjacent(spans: list[Span], text: str, category: str, gap: str = " ,.") -> list[Span]:
    """Merge spans of ``category`` separated only by characters of ``gap`` (``SMITH, JOHN``)."""
    out: list[Span] = []
    for span in spans:
        if out and out[-1].category == category == span.category:
            between = text[out[-1].end:span.start]
            if len(between) <= 2 and all(c in gap for c in between):
                last = out[-1]
                out[-1] = Span(last.start, span.end, category, last.source,
                               max(last.confidence, span.confidence))
                continue
        out.append(span)
    return out
