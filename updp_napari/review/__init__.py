"""Review: the workspace store of cases, spans, decisions and the action log (no Qt here)."""

from .store import ActionEntry, CaseRecord, DecisionRecord, ReviewStore, SpanRecord

__all__ = ["ActionEntry", "CaseRecord", "DecisionRecord", "ReviewStore", "SpanRecord"]
