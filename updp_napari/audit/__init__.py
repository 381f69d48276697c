"""Privacy audit: a reproducible random sample of what is (or would be) shared, an auditor's
findings on each sampled case, and exact bounds on the residual-PHI rate.

* :mod:`.stats` — Clopper–Pearson bounds and the sample-size plan;
* :mod:`.target` — what is audited: a review workspace or an exported share package;
* :mod:`.sample` — the sampling frame, case categories and the (stratified) draw;
* :mod:`.store` — the audit's own durable, append-only SQLite file;
* :mod:`.session` — one auditor walking the sample (the CLI and the dock use it);
* :mod:`.report` — the self-contained HTML audit report.

Nothing here stores or prints report text: findings hold offsets and boxes only.
"""
