"""Finding labels read from report text: which of the findings the product knows
(``core.vocabulary.FINDINGS``) a report states, denies or hedges.

Rules only, in the manner of NegBio and the CheXpert labeller (mention lexicons, negation
and uncertainty cues with a scope, normal statements), standard library only:
``labels.report``. ``label_report(text)`` labels one report, ``label_reports`` many;
``evaluate_against_mesh`` measures the rules against the MeSH terms of the Indiana
University chest X-ray reports (``read_openi``).
"""

from .report import (
    LABELS,
    LEXICON,
    MESH_FINDINGS,
    NEGATIVE,
    POSITIVE,
    UNCERTAIN,
    Mention,
    OpenIReport,
    ReportLabels,
    apply_uncertain,
    evaluate_against_mesh,
    evaluate_openi_halves,
    label_report,
    label_reports,
    mesh_findings,
    read_openi,
    read_report_inputs,
)

__all__ = [
    "LABELS", "LEXICON", "MESH_FINDINGS", "NEGATIVE", "POSITIVE", "UNCERTAIN", "Mention",
    "OpenIReport", "ReportLabels", "apply_uncertain", "evaluate_against_mesh",
    "evaluate_openi_halves", "label_report", "label_reports", "mesh_findings", "read_openi",
    "read_report_inputs",
]
