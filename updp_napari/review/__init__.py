"""Review: the workspace store of cases, spans, decisions and the audit log (no Qt here)."""

from .store import AuditEntry, CaseRecord, DecisionRecord, ReviewStore, SpanRecord

__all__ = ["AuditEntry", "CaseRecord", "DecisionRecord", "ReviewStore", "SpanRecord"]
