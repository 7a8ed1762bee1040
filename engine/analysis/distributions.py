"""Distribution functions the event-study tests need (no scipy).

* Normal: ``statistics.NormalDist`` from the standard library.
* Student t: two-sided p-values through the regularised incomplete beta function,
  P(|T| > t) = I_{df / (df + t^2)}(df / 2, 1 / 2), evaluated with Lentz's continued fraction; tested against mpmath
  (``tests/test_event_tests.py``) and printed t tables.
* Wilcoxon signed-rank statistic: exact null distribution (every sign pattern of the ranks 1..n equally likely)
  by dynamic programming over the rank sums.
"""

from __future__ import annotations

import math
from statistics import NormalDist

CONFIDENCE = 0.95
_NORMAL = NormalDist()


def normal_cdf(x: float) -> float:
    return _NORMAL.cdf(x)


def normal_pvalue(z: float | None) -> float | None:
    """Two-sided p-value of a standard normal statistic."""
    if z is None or not math.isfinite(z):
        return None
    return 2.0 * _NORMAL.cdf(-abs(z))


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz evaluation)."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 1000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < eps:
            break
    return result


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must be in [0, 1], got {x}")
    if x in (0.0, 1.0):
        return x
    log_front = a * math.log(x) + b * math.log1p(-x) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_pvalue(t: float | None, df: float) -> float | None:
    """Two-sided p-value of a Student t statistic with ``df`` degrees of freedom."""
    if t is None or not math.isfinite(t) or df <= 0:
        return None
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def t_critical(df: float, confidence: float = CONFIDENCE) -> float:
    """Two-sided critical value: |t| above it has probability 1 - confidence (bisection on ``t_pvalue``)."""
    if df <= 0:
        raise ValueError("df must be positive")
    alpha = 1.0 - confidence
    lo, hi = 0.0, 1.0
    while (t_pvalue(hi, df) or 0.0) > alpha:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if (t_pvalue(mid, df) or 0.0) > alpha:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2.0


def signed_rank_counts(n: int) -> list[int]:
    """counts[w] = number of the 2^n sign patterns of ranks 1..n whose positive ranks sum to w."""
    if n < 0:
        raise ValueError("n must be >= 0")
    counts = [1]
    for rank in range(1, n + 1):
        grown = [*counts, *([0] * rank)]
        for w, c in enumerate(counts):
            grown[w + rank] += c
        counts = grown
    return counts


def signed_rank_exact_pvalue(w_plus: int, n: int) -> float:
    """Two-sided exact p-value of the Wilcoxon signed-rank statistic W+ (no ties, no zeros)."""
    counts = signed_rank_counts(n)
    total = float(2**n)
    lower = sum(counts[: w_plus + 1]) / total
    upper = sum(counts[w_plus:]) / total
    return min(1.0, 2.0 * min(lower, upper))
