"""Scoring the product against annotations it did not make: report de-identification on a
synthetic cohort's ground truth or on any annotated corpus (``evaluate.report``). The image
side scores itself beside its models (``synth.evaluate``, ``scoring.evaluate``)."""
