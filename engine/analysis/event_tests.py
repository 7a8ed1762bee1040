"""Tests across events: parametric (cross-sectional t, BMP, Kolari-Pynnonen) and non-parametric (Corrado rank,
generalised sign, Wilcoxon signed-rank), per relative day and cumulated from the window start.

Parametric:

* Cross-sectional test (N samples): mean / (sample sd / sqrt(N)), Student t with N - 1 df.
* BMP (Boehmer, Musumeci, Poulsen 1991): the same test on standardised abnormal returns (AR_t / sd(AR_t)) and
  standardised CARs (CAR / sd(CAR)).
* Kolari-Pynnonen (2010): when event windows overlap in calendar time (clustering), both statistics are multiplied
  by sqrt((1 - r) / (1 + (N - 1) r)), r = the average over all N(N-1)/2 pairs of the correlation of the pair's
  estimation-window abnormal returns on common dates; pairs whose event windows do not overlap count as 0.

Non-parametric (standard normal p-values from ``statistics.NormalDist``):

* Corrado (1989) rank test, with ranks scaled to (0, 1): each sample's abnormal returns over the estimation and
  event windows together (M = T + L days) are ranked (average ranks for ties), U_it = rank / (M + 1) - 1/2;
  S = sqrt(mean over all M days of Ubar_t^2), Ubar_t = mean of U_it over samples. Day t: Ubar_t / S. Cumulated over
  days d0..t (Cowan 1992): sum of Ubar / (sqrt(t - d0 + 1) S).
* Generalised sign test (Cowan 1992): p = mean over samples of the fraction of positive estimation-window abnormal
  returns; w = samples with a positive AR (day) or CAR (cumulated); Z = (w - N p) / sqrt(N p (1 - p)), no
  continuity correction.
* Wilcoxon signed-rank test on the CARs: zeros dropped, W+ = sum of the ranks of |CAR| of positive CARs; exact
  null distribution when there are no ties and n <= 60, else the normal approximation with the tie correction
  Var = n(n+1)(2n+1)/24 - sum(t^3 - t)/48. The statistic reported is W+.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.analysis.abnormal_returns import Sample
from engine.analysis.distributions import (
    CONFIDENCE,
    normal_pvalue,
    signed_rank_exact_pvalue,
    t_critical,
    t_pvalue,
)

MIN_COMMON = 20  # common estimation dates needed to estimate a pair's correlation
WILCOXON_EXACT_MAX = 60


@dataclass(frozen=True)
class TestResult:
    """A test statistic with its two-sided p-value and degrees of freedom (None when undefined)."""

    stat: float | None
    p: float | None
    df: int | None
    method: str = ""  # "t", "normal", "exact"


def _undefined() -> TestResult:
    return TestResult(None, None, None)


# ---------------------------------------------------------------- parametric


def cross_sectional_t(values: np.ndarray, factor: float = 1.0) -> TestResult:
    """mean / (sd / sqrt(N)) x factor with N - 1 df; undefined for N < 2 or zero dispersion."""
    v = np.asarray(values, dtype=float)
    n = len(v)
    if n < 2:
        return _undefined()
    sd = float(np.std(v, ddof=1))
    if not sd > 0:
        return _undefined()
    stat = float(np.mean(v)) / (sd / math.sqrt(n)) * factor
    return TestResult(stat, t_pvalue(stat, n - 1), n - 1, "t")


def kp_factor(mean_corr: float, n: int) -> float:
    """Kolari-Pynnonen multiplier sqrt((1 - r) / (1 + (n - 1) r)) for the average cross-correlation r."""
    denom = 1.0 + (n - 1) * mean_corr
    if n < 2 or denom <= 0 or mean_corr >= 1:
        return float("nan")
    return math.sqrt((1.0 - mean_corr) / denom)


def mean_cross_correlation(
    residuals: Sequence[pd.Series], clustered_pairs: Iterable[tuple[int, int]], min_common: int = MIN_COMMON
) -> tuple[float, int]:
    """(average correlation over all N(N-1)/2 pairs, pairs lacking common dates).

    Only ``clustered_pairs`` (index pairs whose event windows overlap) contribute; every other pair counts 0.
    """
    n = len(residuals)
    if n < 2:
        return 0.0, 0
    # The common dates of a pair are the intersection of two sorted, unique date keys (an estimation window's bar
    # dates): numpy's intersect1d gives them in the order pandas' inner align would, without an index per pair.
    keys: list[np.ndarray] = []
    values: list[np.ndarray] = []
    for series in residuals:
        index = series.index
        if not (isinstance(index, pd.DatetimeIndex) and index.is_unique and index.is_monotonic_increasing):
            keys = []
            break
        keys.append(index.as_unit("ns").asi8)  # one unit for every series: [us] and [ns] dates compare equal
        values.append(series.to_numpy(dtype=float))
    total, short = 0.0, 0
    for i, j in clustered_pairs:
        if keys:
            _, at_i, at_j = np.intersect1d(keys[i], keys[j], assume_unique=True, return_indices=True)
            a, b = values[i][at_i], values[j][at_j]
        else:
            left, right = residuals[i].align(residuals[j], join="inner")
            a, b = left.to_numpy(dtype=float), right.to_numpy(dtype=float)
        if len(a) < min_common:
            short += 1
            continue
        sa, sb = float(np.std(a)), float(np.std(b))
        if sa > 0 and sb > 0:
            total += float(np.corrcoef(a, b)[0, 1])
    return total / (n * (n - 1) / 2.0), short


@dataclass(frozen=True)
class Clustering:
    """Whether event windows overlap in calendar time and the resulting Kolari-Pynnonen adjustment."""

    clustered: bool
    shared_day0: tuple[tuple[str, int], ...]  # (date, samples) for day-0 dates shared by 2+ samples
    overlapping_pairs: int
    pairs: int
    pairs_without_common_dates: int
    mean_correlation: float
    kp_factor: float | None


def overlapping_pairs(samples: Sequence[Sample]) -> list[tuple[int, int]]:
    """Index pairs (i < j, in row order) whose event windows share calendar time (closed intervals)."""
    if len(samples) < 2:
        return []
    # one unit for both ends (an index of [us] dates has [us] integers), UTC for zone-aware dates
    start = pd.DatetimeIndex([s.window_dates[0] for s in samples]).as_unit("ns").asi8
    end = pd.DatetimeIndex([s.window_dates[-1] for s in samples]).as_unit("ns").asi8
    overlap = (start[:, None] <= end[None, :]) & (start[None, :] <= end[:, None])
    rows, cols = np.nonzero(np.triu(overlap, k=1))
    return list(zip(rows.tolist(), cols.tolist(), strict=True))


def clustering_of(samples: Sequence[Sample]) -> Clustering:
    """Which samples' event windows overlap in calendar time, and the Kolari-Pynnonen factor."""
    n = len(samples)
    pairs = overlapping_pairs(samples)
    counts = pd.Series([s.day0.date().isoformat() for s in samples], dtype=object).value_counts()
    shared = tuple(sorted((str(d), int(c)) for d, c in counts.items() if c > 1))
    rbar, short = mean_cross_correlation([s.residuals for s in samples], pairs)
    factor = kp_factor(rbar, n) if pairs else None
    if factor is not None and not math.isfinite(factor):
        factor = None
    return Clustering(bool(pairs), shared, len(pairs), n * (n - 1) // 2, short, rbar, factor)


def _scaled(test: TestResult, factor: float | None) -> TestResult | None:
    if factor is None:
        return None
    if test.stat is None or test.df is None:
        return test
    stat = test.stat * factor
    return TestResult(stat, t_pvalue(stat, test.df), test.df, test.method)


# ---------------------------------------------------------------- non-parametric


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n along the last axis, ties sharing their average rank."""
    a = np.asarray(values, dtype=float)
    if a.ndim == 2:
        return np.vstack([average_ranks(row) for row in a]) if len(a) else a.copy()
    order = np.argsort(a, kind="mergesort")
    sorted_a = a[order]
    ranks = np.empty(len(a), dtype=float)
    start = 0
    for end in range(1, len(a) + 1):
        if end == len(a) or sorted_a[end] != sorted_a[start]:
            ranks[order[start:end]] = (start + 1 + end) / 2.0
            start = end
    return ranks


def corrado(est_ar: np.ndarray, win_ar: np.ndarray) -> tuple[list[TestResult], list[TestResult]]:
    """Corrado rank statistics per event-window day and cumulated from the window start.

    ``est_ar``: (N, T) estimation-window abnormal returns; ``win_ar``: (N, L) event-window abnormal returns.
    """
    n, length = win_ar.shape
    if n == 0:
        return [], []
    combined = np.hstack([est_ar, win_ar])
    u = average_ranks(combined) / (combined.shape[1] + 1) - 0.5
    ubar = u.mean(axis=0)
    s = math.sqrt(float(np.mean(ubar * ubar)))
    if not s > 0:
        undefined = [_undefined()] * length
        return undefined, list(undefined)
    win = ubar[est_ar.shape[1]:]
    days = [TestResult(float(z), normal_pvalue(float(z)), None, "normal") for z in win / s]
    cum = np.cumsum(win) / (np.sqrt(np.arange(1, length + 1)) * s)
    return days, [TestResult(float(z), normal_pvalue(float(z)), None, "normal") for z in cum]


def positive_fraction(est_ar: np.ndarray) -> float:
    """Cowan's p: mean over samples of the fraction of positive estimation-window abnormal returns."""
    return float(np.mean(np.mean(np.asarray(est_ar) > 0, axis=1))) if len(est_ar) else float("nan")


def generalized_sign(values: np.ndarray, p_hat: float) -> TestResult:
    """Cowan (1992): Z = (w - N p) / sqrt(N p (1 - p)), w = number of positive values."""
    v = np.asarray(values, dtype=float)
    n = len(v)
    if n == 0 or not 0.0 < p_hat < 1.0:
        return _undefined()
    w = int(np.sum(v > 0))
    z = (w - n * p_hat) / math.sqrt(n * p_hat * (1.0 - p_hat))
    return TestResult(z, normal_pvalue(z), None, "normal")


def wilcoxon_signed_rank(values: np.ndarray) -> TestResult:
    """Wilcoxon signed-rank test of a zero median; the statistic is W+ (sum of ranks of positive values)."""
    v = np.asarray(values, dtype=float)
    v = v[v != 0.0]
    n = len(v)
    if n == 0:
        return _undefined()
    ranks = average_ranks(np.abs(v))
    w_plus = float(ranks[v > 0].sum())
    _, tie_counts = np.unique(np.abs(v), return_counts=True)
    ties = bool(np.any(tie_counts > 1))
    if not ties and n <= WILCOXON_EXACT_MAX:
        return TestResult(w_plus, signed_rank_exact_pvalue(round(w_plus), n), None, "exact")
    mean = n * (n + 1) / 4.0
    var = n * (n + 1) * (2 * n + 1) / 24.0 - float(np.sum(tie_counts**3 - tie_counts)) / 48.0
    if not var > 0:
        return _undefined()
    z = (w_plus - mean) / math.sqrt(var)
    return TestResult(w_plus, normal_pvalue(z), None, "normal")


# ---------------------------------------------------------------- per relative day


@dataclass(frozen=True)
class DayStat:
    """Cross-sectional statistics of one relative day of the event window (CAAR cumulated from its start)."""

    day: int
    n: int
    aar: float
    aar_t: TestResult
    aar_bmp: TestResult
    caar: float
    caar_t: TestResult
    caar_bmp: TestResult
    caar_t_kp: TestResult | None  # Kolari-Pynnonen adjusted (None when not clustered)
    caar_bmp_kp: TestResult | None
    band_low: float | None  # CAAR confidence band (KP-widened when clustered)
    band_high: float | None
    aar_rank: TestResult | None = None  # Corrado, this day
    caar_rank: TestResult | None = None  # Corrado, cumulated
    aar_sign: TestResult | None = None  # generalised sign, this day
    caar_sign: TestResult | None = None  # generalised sign on CARs
    caar_wilcoxon: TestResult | None = None  # Wilcoxon signed-rank on CARs
    positive: int = 0  # samples with a positive CAR (cumulated to this day)


def aggregate(samples: Sequence[Sample], window: tuple[int, int], confidence: float = CONFIDENCE
              ) -> tuple[tuple[DayStat, ...], Clustering]:
    """AAR/CAAR per relative day with every parametric and non-parametric test."""
    clustering = clustering_of(samples)
    n = len(samples)
    if n == 0:
        return (), clustering
    ar = np.vstack([s.abnormal.ar for s in samples])
    sar = ar / np.sqrt(np.vstack([s.abnormal.ar_var for s in samples]))
    car = np.vstack([s.abnormal.car for s in samples])
    scar = car / np.sqrt(np.vstack([s.abnormal.car_var for s in samples]))
    est = np.vstack([s.residuals.to_numpy(dtype=float) for s in samples])
    rank_day, rank_cum = corrado(est, ar)
    p_hat = positive_fraction(est)
    factor = clustering.kp_factor if clustering.clustered else None
    crit = t_critical(n - 1, confidence) if n >= 2 else None
    days = []
    for col, day in enumerate(range(window[0], window[1] + 1)):
        caar_t = cross_sectional_t(car[:, col])
        caar_bmp = cross_sectional_t(scar[:, col])
        caar = float(np.mean(car[:, col]))
        low = high = None
        sd = float(np.std(car[:, col], ddof=1)) if n >= 2 else 0.0
        if crit is not None and sd > 0:  # no dispersion: undefined, like the t test (not a zero-width band)
            se = sd / math.sqrt(n)
            se = se / factor if factor else se
            low, high = caar - crit * se, caar + crit * se
        days.append(DayStat(
            day=day, n=n, aar=float(np.mean(ar[:, col])),
            aar_t=cross_sectional_t(ar[:, col]), aar_bmp=cross_sectional_t(sar[:, col]),
            caar=caar, caar_t=caar_t, caar_bmp=caar_bmp,
            caar_t_kp=_scaled(caar_t, factor), caar_bmp_kp=_scaled(caar_bmp, factor),
            band_low=low, band_high=high,
            aar_rank=rank_day[col], caar_rank=rank_cum[col],
            aar_sign=generalized_sign(ar[:, col], p_hat), caar_sign=generalized_sign(car[:, col], p_hat),
            caar_wilcoxon=wilcoxon_signed_rank(car[:, col]), positive=int(np.sum(car[:, col] > 0)),
        ))
    return tuple(days), clustering
