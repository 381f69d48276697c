"""Exact binomial bounds for an audit: how many cases may carry residual PHI at most.

An auditor draws ``n`` cases at random, finds ``k`` with residual PHI, and signs off on
"with confidence ``c`` the rate is below ``upper``". The bounds here are Clopper–Pearson's,
read from the beta distribution, so they hold at the stated confidence for every ``n``
(they are conservative: the true coverage is at least the stated one). They treat the sample
as draws with replacement; a sample drawn without replacement from a finite set of cases
only makes them more conservative.

scipy is imported inside the functions: ``import updp_napari`` stays cheap.
"""

from __future__ import annotations

import math

from ..core.errors import InputError


def _check(k: int, n: int, confidence: float) -> tuple[int, int, float]:
    if isinstance(k, bool) or isinstance(n, bool):
        raise InputError("counts must be whole numbers")
    try:
        k, n, confidence = int(k), int(n), float(confidence)
    except (TypeError, ValueError):
        raise InputError("counts must be whole numbers and the confidence a number") from None
    if n < 1:
        raise InputError(f"a bound needs at least one audited case, not {n}")
    if not 0 <= k <= n:
        raise InputError(f"findings must be between 0 and the cases audited ({n}), not {k}")
    if not 0.0 < confidence < 1.0 or not math.isfinite(confidence):
        raise InputError(f"confidence must be between 0 and 1 (0.95 for 95%), not {confidence}")
    return k, n, confidence


def upper_bound(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper–Pearson upper bound of the rate after ``k`` events in ``n`` cases:
    the rate ``p`` at which seeing ``k`` or fewer events has probability ``1 - confidence``.
    ``k == n`` gives 1.0. For ``k == 0`` it equals ``1 - (1 - confidence) ** (1 / n)``."""
    from scipy.stats import beta

    k, n, confidence = _check(k, n, confidence)
    if k == n:
        return 1.0
    return float(beta.ppf(confidence, k + 1, n - k))


def lower_bound(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper–Pearson lower bound (0.0 when ``k == 0``)."""
    from scipy.stats import beta

    k, n, confidence = _check(k, n, confidence)
    if k == 0:
        return 0.0
    return float(beta.ppf(1.0 - confidence, k, n - k + 1))


def interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Clopper–Pearson interval: each tail holds ``(1 - confidence) / 2``."""
    k, n, confidence = _check(k, n, confidence)
    tail = (1.0 - confidence) / 2.0
    return lower_bound(k, n, 1.0 - tail), upper_bound(k, n, 1.0 - tail)


def plan_sample_size(max_rate: float, confidence: float = 0.95, allowed_findings: int = 0,
                     limit: int = 10_000_000) -> int:
    """The least number of audited cases ``n`` such that, with ``allowed_findings`` of them
    carrying residual PHI, the one-sided upper bound is below ``max_rate``
    (299 for a 1% rate at 95% with no findings)."""
    try:
        max_rate, confidence = float(max_rate), float(confidence)
    except (TypeError, ValueError):
        raise InputError("the rate and the confidence must be numbers") from None
    if not 0.0 < max_rate < 1.0 or not math.isfinite(max_rate):
        raise InputError(f"max_rate must be between 0 and 1 (0.01 for 1%), not {max_rate}")
    if not 0.0 < confidence < 1.0 or not math.isfinite(confidence):
        raise InputError(f"confidence must be between 0 and 1 (0.95 for 95%), not {confidence}")
    if isinstance(allowed_findings, bool) or int(allowed_findings) != allowed_findings \
            or allowed_findings < 0:
        raise InputError(f"allowed_findings must be a whole number 0 or more, not {allowed_findings}")
    k = int(allowed_findings)

    def below(n: int) -> bool:
        return upper_bound(k, n, confidence) < max_rate

    # The bound falls as n grows (k fixed): double until below, then bisect.
    lo, hi = k, max(k + 1, 1)
    while not below(hi):
        lo, hi = hi, hi * 2
        if hi > limit:
            raise InputError(f"no sample below {limit} cases reaches a bound under {max_rate} "
                             f"with {k} finding(s)")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if below(mid):
            hi = mid
        else:
            lo = mid
    return hi


def rate_summary(k: int, n: int, confidence: float = 0.95) -> dict:
    """``{"cases", "events", "rate", "upper", "interval", "confidence"}``; rate and bounds are
    None when nothing was audited."""
    if n == 0:
        return {"cases": 0, "events": 0, "rate": None, "upper": None, "interval": None,
                "confidence": confidence}
    low, high = interval(k, n, confidence)
    return {"cases": int(n), "events": int(k), "rate": k / n,
            "upper": upper_bound(k, n, confidence), "interval": [low, high],
            "confidence": confidence}


def audit_statistics(sample, findings, confidence: float = 0.95) -> dict:
    """Rates and bounds over an audit's live findings.

    ``sample``: a :class:`~updp_napari.audit.store.SampleRecord` (its cases carry site and
    category); ``findings``: its live findings. A case counts as audited once it has a
    finding. Residual-PHI rate: audited cases with at least one residual-PHI finding over
    audited cases — overall, per PHI category (the cases with a finding of that category),
    per site and per case category; over-redaction likewise. Ids and counts only.
    """
    cases = {c.case_id: c for c in sample.cases}
    verdicts: dict[str, set[str]] = {}
    phi: dict[str, set[str]] = {}
    seconds: dict[str, float] = {}
    for f in findings:
        if f.case_id not in cases:
            continue
        verdicts.setdefault(f.case_id, set()).add(f.verdict)
        if f.verdict == "residual_phi":
            phi.setdefault(f.phi_category or "OTHER", set()).add(f.case_id)
        if f.seconds is not None:
            seconds[f.case_id] = seconds.get(f.case_id, 0.0) + f.seconds
    audited = [cid for cid in cases if cid in verdicts]
    residual = {cid for cid in audited if "residual_phi" in verdicts[cid]}
    over = {cid for cid in audited if "over_redaction" in verdicts[cid]}

    def group(attribute: str) -> dict:
        out = {}
        for value in sorted({getattr(c, attribute) for c in cases.values()}):
            members = [cid for cid in audited if getattr(cases[cid], attribute) == value]
            out[value] = {
                "sampled": sum(1 for c in cases.values() if getattr(c, attribute) == value),
                "residual_phi": rate_summary(len(residual.intersection(members)), len(members),
                                             confidence),
                "over_redaction": rate_summary(len(over.intersection(members)), len(members),
                                               confidence)}
        return out

    import statistics

    times = list(seconds.values())
    return {
        "confidence": confidence,
        "sampled": len(cases),
        "audited": len(audited),
        "not_audited": len(cases) - len(audited),
        "clean": sum(1 for cid in audited if verdicts[cid] == {"clean"}),
        "residual_phi": rate_summary(len(residual), len(audited), confidence),
        "over_redaction": rate_summary(len(over), len(audited), confidence),
        "by_phi_category": {category: rate_summary(len(ids), len(audited), confidence)
                            for category, ids in sorted(phi.items())},
        "by_site": group("site"),
        "by_category": group("category"),
        "residual_phi_cases": sorted(residual),
        "over_redaction_cases": sorted(over),
        "median_seconds_per_case": statistics.median(times) if times else None,
    }
