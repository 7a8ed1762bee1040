"""Non-parametric event-study tests and the distribution functions, pinned by hand-computed small examples; the
Student t p-values against mpmath's regularised incomplete beta function at 30 digits (a test dependency)."""

from __future__ import annotations

import math
from statistics import NormalDist

import mpmath
import numpy as np
import pytest

from engine.analysis import distributions as dist
from engine.analysis import event_tests as et

# ---------------------------------------------------------------- distributions


@pytest.mark.parametrize("df", [1, 2, 3, 5, 10, 29, 100, 1000])
@pytest.mark.parametrize("t", [0.05, 0.5, 1.0, 1.96, 2.5, 4.0, 9.0])
def test_t_pvalue_against_mpmath(df: int, t: float) -> None:
    mpmath.mp.dps = 30
    x = mpmath.mpf(df) / (df + mpmath.mpf(t) ** 2)
    reference = float(mpmath.betainc(mpmath.mpf(df) / 2, mpmath.mpf(1) / 2, 0, x, regularized=True))
    assert dist.t_pvalue(t, df) == pytest.approx(reference, rel=1e-11, abs=1e-300)


def test_t_critical_against_mpmath_and_closed_forms() -> None:
    # df = 1: Cauchy, t = tan(pi (1 - alpha/2) - pi/2); df = 2: t = (2p - 1) / sqrt(2 p (1 - p))
    assert dist.t_critical(1) == pytest.approx(math.tan(math.pi * 0.475), rel=1e-10)
    assert dist.t_critical(2) == pytest.approx(0.95 / math.sqrt(2 * 0.975 * 0.025), rel=1e-10)
    mpmath.mp.dps = 30
    for df in (5, 10, 60):
        crit = dist.t_critical(df)
        x = mpmath.mpf(df) / (df + mpmath.mpf(crit) ** 2)
        assert float(mpmath.betainc(df / 2, 0.5, 0, x, regularized=True)) == pytest.approx(0.05, rel=1e-9)


def test_normal_from_the_standard_library() -> None:
    assert dist.normal_pvalue(NormalDist().inv_cdf(0.975)) == pytest.approx(0.05, rel=1e-12)
    assert dist.normal_pvalue(0.0) == 1.0
    assert dist.normal_pvalue(-1.5) == dist.normal_pvalue(1.5)
    assert dist.normal_pvalue(None) is None and dist.normal_pvalue(float("inf")) is None


def test_signed_rank_exact_distribution() -> None:
    # subsets of {1, 2, 3} by sum: 0 {}, 1 {1}, 2 {2}, 3 {3} {1,2}, 4 {1,3}, 5 {2,3}, 6 {1,2,3}
    assert dist.signed_rank_counts(3) == [1, 1, 1, 2, 1, 1, 1]
    assert sum(dist.signed_rank_counts(12)) == 2**12
    assert dist.signed_rank_exact_pvalue(15, 5) == pytest.approx(2 / 32)  # all five positive
    assert dist.signed_rank_exact_pvalue(0, 5) == pytest.approx(2 / 32)
    # n = 4: counts by sum 0..10 are 1 1 1 2 2 2 2 2 1 1 1
    assert dist.signed_rank_exact_pvalue(5, 4) == 1.0  # the centre of the symmetric distribution
    assert dist.signed_rank_exact_pvalue(7, 4) == pytest.approx(2 * 5 / 16)  # P(W+ >= 7) = (2 + 1 + 1 + 1) / 16


# ---------------------------------------------------------------- Corrado rank test

# Two samples, T = 2 estimation days and L = 2 event days (M = 4); U = rank / 5 - 1/2.
# A: est [0.01, -0.02] win [0.05, 0.00] -> ranks [3, 1 | 4, 2] -> U [0.1, -0.3 | 0.3, -0.1]
# B: est [0.02, 0.03] win [0.04, -0.01] -> ranks [2, 3 | 4, 1] -> U [-0.1, 0.1 | 0.3, -0.3]
# Ubar = [0.0, -0.1 | 0.3, -0.2]; S = sqrt((0 + 0.01 + 0.09 + 0.04) / 4) = sqrt(0.035)
EST = np.array([[0.01, -0.02], [0.02, 0.03]])
WIN = np.array([[0.05, 0.00], [0.04, -0.01]])


def test_corrado_by_hand() -> None:
    days, cumulated = et.corrado(EST, WIN)
    s = math.sqrt(0.035)
    assert [d.stat for d in days] == pytest.approx([0.3 / s, -0.2 / s], rel=1e-12)
    assert cumulated[0].stat == pytest.approx(0.3 / s, rel=1e-12)
    assert cumulated[1].stat == pytest.approx((0.3 - 0.2) / (math.sqrt(2) * s), rel=1e-12)
    assert days[0].p == pytest.approx(2 * NormalDist().cdf(-0.3 / s), rel=1e-12)
    assert days[0].method == "normal"


def test_corrado_ties_and_no_dispersion() -> None:
    assert et.average_ranks(np.array([0.2, 0.1, 0.2, 0.0])) == pytest.approx([3.5, 2.0, 3.5, 1.0])
    # U: A [0, 0.25 | -0.25], B [0, -0.25 | 0.25]: Ubar is zero every day, S = 0: undefined, not a division by 0
    days, cumulated = et.corrado(np.array([[0.01, 0.02], [0.02, 0.01]]), np.array([[0.0], [0.03]]))
    assert days[0].stat is None and cumulated[0].stat is None and days[0].p is None


# ---------------------------------------------------------------- generalised sign test


def test_generalised_sign_by_hand() -> None:
    est = np.array([[0.01, -0.02, 0.03, 0.01], [0.02, -0.01, -0.03, -0.01]])  # 3/4 and 1/4 positive
    p_hat = et.positive_fraction(est)
    assert p_hat == pytest.approx(0.5)
    res = et.generalized_sign(np.array([0.1, 0.2, -0.1]), p_hat)  # w = 2 of N = 3
    z = (2 - 1.5) / math.sqrt(3 * 0.25)
    assert res.stat == pytest.approx(z, rel=1e-12)
    assert res.p == pytest.approx(2 * (1 - NormalDist().cdf(z)), rel=1e-12)
    # a skewed estimation window moves the null: 2 of 3 positive when 3/4 are expected is below expectation
    assert et.generalized_sign(np.array([0.1, 0.2, -0.1]), 0.75).stat == pytest.approx(
        (2 - 2.25) / math.sqrt(3 * 0.75 * 0.25), rel=1e-12)
    assert et.generalized_sign(np.array([]), 0.5).stat is None


# ---------------------------------------------------------------- Wilcoxon signed-rank


def test_wilcoxon_exact_by_hand() -> None:
    # |CAR| ranks: 0.01 -> 1, 0.02 -> 2, 0.03 -> 3, 0.04 -> 4, 0.05 -> 5; W+ = 5 + 2 + 4 + 3 = 14
    res = et.wilcoxon_signed_rank(np.array([0.05, 0.02, -0.01, 0.04, 0.03]))
    assert res.stat == 14 and res.method == "exact"
    assert res.p == pytest.approx(2 * 2 / 32)  # W+ >= 14: {2,3,4,5} and {1,...,5}
    # zeros are dropped
    assert et.wilcoxon_signed_rank(np.array([0.0, 0.01])).p == 1.0
    assert et.wilcoxon_signed_rank(np.array([0.0])).stat is None


def test_wilcoxon_normal_with_ties_by_hand() -> None:
    # |v| = 0.01, 0.01 (rank 1.5 each), 0.02 (3), 0.03 (4); W+ = 1.5 + 1.5 + 4 = 7, n = 4
    res = et.wilcoxon_signed_rank(np.array([0.01, 0.01, -0.02, 0.03]))
    var = 4 * 5 * 9 / 24 - (2**3 - 2) / 48
    assert res.stat == 7 and res.method == "normal"
    assert res.p == pytest.approx(2 * (1 - NormalDist().cdf((7 - 5) / math.sqrt(var))), rel=1e-12)


def test_exact_and_normal_wilcoxon_agree_for_larger_samples() -> None:
    values = np.random.default_rng(5).normal(0.002, 0.01, 40)
    exact = et.wilcoxon_signed_rank(values)
    ranks = et.average_ranks(np.abs(values))
    w = ranks[values > 0].sum()
    z = (w - 40 * 41 / 4) / math.sqrt(40 * 41 * 81 / 24)
    assert exact.method == "exact" and exact.stat == pytest.approx(w)
    assert exact.p == pytest.approx(2 * NormalDist().cdf(-abs(z)), abs=0.01)
