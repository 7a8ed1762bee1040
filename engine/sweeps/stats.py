"""Statistics of a sweep: ranking by a metric and the deflated Sharpe ratio of the best point
(Bailey & López de Prado, 2014), with the normal CDF and its inverse written out (no scipy)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.analysis.metrics import Metrics

METRICS = tuple(f.name for f in dataclasses.fields(Metrics))
LOWER_IS_BETTER = frozenset({"annual_volatility", "max_drawdown_duration", "beta"})
EULER_GAMMA = 0.5772156649015329


def norm_cdf(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def norm_ppf(p: float) -> float:
    """Inverse standard normal CDF (Acklam's rational approximation refined by two Halley steps)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02,
         -3.066479806614716e01, 2.506628277459239e00)
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01,
         -1.328068155288572e01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00,
         4.374664141464968e00, 2.938163982698783e00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
    low = 0.02425
    if p < low:
        q = math.sqrt(-2 * math.log(p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    elif p <= 1 - low:
        q = p - 0.5
        r = q * q
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / \
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    else:
        q = math.sqrt(-2 * math.log(1 - p))
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    for _ in range(2):  # Halley refinement to full double precision
        e = norm_cdf(x) - p
        u = e * math.sqrt(2 * math.pi) * math.exp(x * x / 2)
        x = x - u / (1 + x * u / 2)
    return x


@dataclass(frozen=True)
class DeflatedSharpe:
    """Bailey & López de Prado (2014): probability that the best point's true Sharpe is above the
    Sharpe a best-of-N selection would show by luck alone."""

    trials: int
    sharpe: float  # daily (not annualised) Sharpe of the best point
    expected_max_sharpe: float  # SR0: expected maximum daily Sharpe of N trials with zero true Sharpe
    dsr: float
    n_returns: int
    skew: float
    kurtosis: float


def deflated_sharpe(sharpe: float, trial_sharpes: Sequence[float], n_returns: int, skew: float,
                    kurtosis: float) -> DeflatedSharpe | None:
    """DSR = Phi(((SR - SR0) sqrt(T - 1)) / sqrt(1 - skew SR + (kurt - 1) / 4 SR^2)), with
    SR0 = sqrt(Var[SR_n]) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e))). N = the number of
    distinct points tried (an upper bound on independent trials: conservative)."""
    finite = [s for s in trial_sharpes if s is not None and math.isfinite(s)]
    n = len(finite)
    if n_returns < 3 or not math.isfinite(sharpe):
        return None
    if n >= 2:
        var = float(np.var(finite, ddof=1))
        sr0 = math.sqrt(var) * ((1 - EULER_GAMMA) * norm_ppf(1 - 1 / n) + EULER_GAMMA * norm_ppf(1 - 1 / (n * math.e)))
    else:
        sr0 = 0.0
    denom = 1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe**2
    if not denom > 0:
        return None
    z = (sharpe - sr0) * math.sqrt(n_returns - 1) / math.sqrt(denom)
    return DeflatedSharpe(max(n, 1), sharpe, sr0, norm_cdf(z), n_returns, skew, kurtosis)


def better(metric: str) -> bool:
    """True when larger is better."""
    return metric not in LOWER_IS_BETTER


def rank_points(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows sorted best first by ``metric`` (undefined values last, ties by point number)."""
    col = frame[metric].astype("float64")
    key = -col if better(metric) else col
    return frame.assign(_k=key.fillna(np.inf)).sort_values(["_k", "point"], kind="stable").drop(columns="_k")
