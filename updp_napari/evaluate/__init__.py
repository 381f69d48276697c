"""Evaluation against ground truth: report de-identification (``evaluate.report``)."""
