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
    return _least(lo, hi, below)


def _least(lo: int, hi: int, below) -> int:
    """The least n in (lo, hi] with ``below(n)``, for a ``below`` that holds from some n on
    and holds at ``hi``."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if below(mid):
            hi = mid
        else:
            lo = mid
    return hi


def upper_bound_finite(k: int, n: int, population: int, confidence: float = 0.95) -> float:
    """The exact one-sided upper bound of the rate of cases with residual PHI in a frame of
    ``population`` cases, when ``k`` of ``n`` cases drawn without replacement carry it: the
    largest D / population whose hypergeometric chance of ``k`` or fewer findings is still
    above 1 − ``confidence`` (0 ≤ bound ≤ 1; the rate itself when n is the whole frame)."""
    from scipy.stats import hypergeom

    k, n, confidence = _check(k, n, confidence)
    population = _population(population, n)
    alpha = 1.0 - confidence
    # D runs from k (the findings seen) to the most the unseen cases allow.
    def above(d: int) -> bool:  # the chance falls as D grows: bisect on D
        return float(hypergeom.cdf(k, population, d, n)) > alpha

    lo, hi = k, population - (n - k)  # the findings seen; the most the unseen cases allow
    if above(hi):
        return hi / population
    while hi - lo > 1:  # above(lo) holds (k findings among n: cdf is 1 at D = k)
        mid = (lo + hi) // 2
        if above(mid):
            lo = mid
        else:
            hi = mid
    return lo / population


def plan_sample_size_finite(max_rate: float, population: int, confidence: float = 0.95,
                            allowed_findings: int = 0) -> int:
    """The least ``n`` of a frame of ``population`` cases (drawn without replacement) whose
    exact finite-frame upper bound (:func:`upper_bound_finite`) with ``allowed_findings``
    findings is below ``max_rate``; the whole frame when no smaller sample is (9 for a
    9-case package at 1 %: every case)."""
    plan_sample_size(max_rate, confidence, allowed_findings)  # the same checks of the inputs
    population = _population(population, 1)
    k = int(allowed_findings)
    if k >= population:
        raise InputError(f"{k} finding(s) allowed in a frame of {population} case(s)")
    def below(n: int) -> bool:
        return upper_bound_finite(k, n, population, confidence) < max_rate

    lo, hi = max(k, 1), population  # the bound falls as n grows: bisect
    if not below(hi):
        return population
    if below(lo):
        return lo
    return _least(lo, hi, below)


def finite_plan(max_rate: float, population: int, confidence: float = 0.95,
                allowed_findings: int = 0) -> tuple[int, str]:
    """The sample size of :func:`plan_sample_size_finite` and what it buys, in words (as
    ``updp audit --plan`` and the napari widget say it)."""
    n = plan_sample_size_finite(max_rate, population, confidence, allowed_findings)
    bound = upper_bound_finite(allowed_findings, n, population, confidence)
    state = "below" if bound < max_rate else "not below: every case must be audited, and"
    return n, (f"{n} of {population} cases: with {allowed_findings} finding(s) among {n} "
               f"audited cases the one-sided {confidence:.0%} exact (hypergeometric) upper "
               f"bound of the residual-PHI rate of the frame is {bound:.4%}, {state} "
               f"{max_rate:.4%}")


def check_rate(value) -> float:
    """A target rate: a number strictly between 0 and 1."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError("the target rate must be a number (0.01 for 1%)") from None
    if not 0.0 < value < 1.0:
        raise InputError(f"the target rate must be between 0 and 1 (0.01 for 1%), not {value}")
    return value


def _population(population, n: int) -> int:
    if isinstance(population, bool) or int(population) != population or population < max(n, 1):
        raise InputError(f"the frame must hold at least the {n} audited case(s), not {population}")
    return int(population)


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
