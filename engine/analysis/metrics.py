"""Performance metrics as pure functions of an equity curve, trades, exposure and a benchmark.

numpy/pandas only (no empyrical/scipy). Conventions (see docs/report-schema.md, "Metrics"):

- All rates are fractions (0.05 = 5 %), never percent.
- Daily returns ``r`` are simple returns of the equity curve, bar to bar. When ``initial_value`` is given
  (the starting cash), it is the value before the first bar: the first return is equity[0] / initial - 1,
  it is the first peak of the drawdown and the base of ``pnl``/``total_return``. Otherwise equity[0] is.
- ``annual_volatility`` = std(r, ddof=1) * sqrt(252); ``sharpe`` = mean(r) / std(r, ddof=1) * sqrt(252),
  risk-free rate 0 (as empyrical).
- ``sortino`` = mean(r) * 252 / (sqrt(mean(min(r, 0) ** 2)) * sqrt(252)): downside deviation over *all*
  observations with target 0 (as empyrical).
- ``cagr`` uses calendar time: years = (last date - start date) / 365.25 days. The equity index is the union
  of the universe's sessions (XHKG and XNYS together have well over 252 bars a year), so counting bars
  would misstate the period. Where ``initial_value`` is given, the start date is still the first bar's date.
- ``max_drawdown`` = min(equity / running peak - 1) (<= 0); ``max_drawdown_duration`` = the longest time
  under water, in bars, from a peak to the first bar back at or above it (or to the last bar if never).
- ``alpha``/``beta``: CAPM on the daily returns paired with the benchmark's daily returns (pairs where both
  exist): beta = cov(r, rb) / var(rb) (ddof=1), alpha = mean(r - beta * rb) * 252 (arithmetic, annualised).
- Trade statistics use closed trades only (``exit_date`` set); a win is ``pnl > 0``, a loss ``pnl < 0``.
  ``avg_win``/``avg_loss`` are means of the trade return ``ret``; ``profit_factor`` = gross profit / gross
  loss in money, ``None`` when there is no losing trade.
- Anything undefined (no data, one bar, zero variance, no trades, no benchmark) is ``None``: the output
  never holds NaN or infinity and the functions never raise on degenerate input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.execution.records import TradeRecord

PERIODS_PER_YEAR = 252
DAYS_PER_YEAR = 365.25
_EPS = 1e-15


@dataclass(frozen=True)
class Metrics:
    """Summary statistics of one run. Fractions, not percent; ``None`` = undefined."""

    final_value: float | None
    pnl: float | None
    total_return: float | None
    cagr: float | None
    annual_volatility: float | None
    sharpe: float | None
    sortino: float | None
    max_drawdown: float | None
    max_drawdown_duration: int | None
    calmar: float | None
    trade_count: int
    open_trade_count: int
    win_rate: float | None
    avg_win: float | None
    avg_loss: float | None
    profit_factor: float | None
    exposure: float | None
    benchmark_return: float | None
    excess_return: float | None
    alpha: float | None
    beta: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict in field order."""
        return asdict(self)


def _finite(value: float | None) -> float | None:
    """``value`` as a Python float, or ``None`` when it is missing, NaN or infinite."""
    if value is None:
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def _clean_series(series: pd.Series | None) -> pd.Series:
    """Float series sorted by date, NaN/inf dropped, duplicate dates keep the last value."""
    if series is None or len(series) == 0:
        return pd.Series(dtype="float64")
    out = pd.Series(pd.to_numeric(series, errors="coerce"), dtype="float64")
    out = out[np.isfinite(out.to_numpy())]
    out = out[~out.index.duplicated(keep="last")]
    return out.sort_index()


def value_path(equity: pd.Series, initial_value: float | None = None) -> np.ndarray:
    """Portfolio values used for returns and drawdowns: ``[initial_value?, *equity]``."""
    values = _clean_series(equity).to_numpy(dtype="float64")
    if len(values) and initial_value is not None and math.isfinite(initial_value):
        values = np.concatenate([[float(initial_value)], values])
    return values


def daily_returns(values: np.ndarray) -> np.ndarray:
    """Simple returns between consecutive values; steps from a value <= 0 are dropped."""
    if len(values) < 2:
        return np.empty(0)
    prev, cur = values[:-1], values[1:]
    ok = prev > 0
    return cur[ok] / prev[ok] - 1.0


def annual_volatility(returns: np.ndarray) -> float | None:
    """Sample standard deviation of daily returns times sqrt(252); ``None`` with fewer than 2 returns."""
    if len(returns) < 2:
        return None
    return _finite(np.std(returns, ddof=1) * math.sqrt(PERIODS_PER_YEAR))


def sharpe_ratio(returns: np.ndarray) -> float | None:
    """mean / std(ddof=1) * sqrt(252), risk-free 0; ``None`` when the std is zero or undefined."""
    if len(returns) < 2:
        return None
    std = float(np.std(returns, ddof=1))
    if not std > _EPS:
        return None
    return _finite(float(np.mean(returns)) / std * math.sqrt(PERIODS_PER_YEAR))


def sortino_ratio(returns: np.ndarray) -> float | None:
    """Annualised mean over annualised downside deviation (all observations, target 0)."""
    if len(returns) < 1:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if not downside > _EPS:
        return None
    return _finite(float(np.mean(returns)) / downside * math.sqrt(PERIODS_PER_YEAR))


def max_drawdown(values: np.ndarray) -> float | None:
    """Most negative ``value / running peak - 1`` (0.0 if never below a peak); ``None`` if empty."""
    if len(values) == 0 or not np.all(values > 0):
        return None
    peaks = np.maximum.accumulate(values)
    return _finite(float(np.min(values / peaks - 1.0)))


def max_drawdown_duration(values: np.ndarray) -> int | None:
    """Longest run under water in bars: peak bar to recovery bar (or to the last bar); 0 if never."""
    if len(values) == 0:
        return None
    prior_peak = np.maximum.accumulate(values)
    is_peak = np.empty(len(values), dtype=bool)
    is_peak[0] = True
    is_peak[1:] = values[1:] >= prior_peak[:-1]
    peaks = np.flatnonzero(is_peak)
    gaps = np.diff(peaks)
    longest = int(gaps[gaps > 1].max()) if np.any(gaps > 1) else 0
    return int(max(longest, len(values) - 1 - int(peaks[-1])))


def cagr(start_value: float, end_value: float, start: pd.Timestamp, end: pd.Timestamp) -> float | None:
    """Compound annual growth rate over calendar time (days / 365.25)."""
    return cagr_years(start_value, end_value, (pd.Timestamp(end) - pd.Timestamp(start)).days / DAYS_PER_YEAR)


def cagr_years(start_value: float, end_value: float, years: float) -> float | None:
    """Compound annual growth rate over ``years`` calendar years."""
    if years <= 0 or start_value <= 0 or end_value < 0:
        return None
    return _finite((end_value / start_value) ** (1.0 / years) - 1.0)


def align_benchmark(benchmark: pd.Series | None, index: pd.Index) -> pd.Series | None:
    """Benchmark closes on ``index``: last known close on or before each date (forward fill, no back-fill)."""
    bench = _clean_series(benchmark)
    if bench.empty or len(index) == 0:
        return None
    union = bench.index.union(index)
    return bench.reindex(union).ffill().reindex(index)


def benchmark_return(aligned: np.ndarray | pd.Series | None) -> float | None:
    """Benchmark return from the first to the last equity date; ``None`` if it lacks the first date."""
    if aligned is None or len(aligned) == 0:
        return None
    values = np.asarray(aligned, dtype="float64")
    first, last = values[0], values[-1]
    if np.isnan(first) or np.isnan(last) or first <= 0:
        return None
    return _finite(last / first - 1.0)


def alpha_beta(equity: np.ndarray, bench: np.ndarray | None) -> tuple[float | None, float | None]:
    """CAPM alpha (annualised, arithmetic) and beta of daily equity returns against the benchmark closes
    aligned to the equity points (steps from or to a value <= 0 or NaN are dropped)."""
    if bench is None:
        return None, None
    e = np.where(equity > 0, equity, np.nan)
    b = np.where(bench > 0, bench, np.nan)
    r = e[1:] / e[:-1] - 1.0
    rb = b[1:] / b[:-1] - 1.0
    ok = ~(np.isnan(r) | np.isnan(rb))
    return capm(r[ok], rb[ok])


def capm(r: np.ndarray, rb: np.ndarray) -> tuple[float | None, float | None]:
    """Alpha (annualised, arithmetic) and beta from paired daily returns ``r`` (strategy) and ``rb`` (benchmark)."""
    if len(r) < 2:
        return None, None
    var_b = float(np.var(rb, ddof=1))
    if not var_b > _EPS:
        return None, None
    beta = float(np.cov(r, rb, ddof=1)[0, 1]) / var_b
    alpha = float(np.mean(r - beta * rb)) * PERIODS_PER_YEAR
    return _finite(alpha), _finite(beta)


@dataclass(frozen=True)
class TradeStats:
    """Statistics of closed trades."""

    trade_count: int
    open_trade_count: int
    win_rate: float | None
    avg_win: float | None
    avg_loss: float | None
    profit_factor: float | None


def trade_stats(trades: Sequence[TradeRecord]) -> TradeStats:
    """Win rate, average winning/losing trade return and profit factor over closed trades."""
    closed = [t for t in trades if t.exit_date is not None]
    wins = [t for t in closed if t.pnl > 0]
    losses = [t for t in closed if t.pnl < 0]
    gross_profit = sum(t.pnl for t in wins)
    gross_loss = -sum(t.pnl for t in losses)
    return TradeStats(
        trade_count=len(closed),
        open_trade_count=len(trades) - len(closed),
        win_rate=_finite(len(wins) / len(closed)) if closed else None,
        avg_win=_finite(float(np.mean([t.ret for t in wins]))) if wins else None,
        avg_loss=_finite(float(np.mean([t.ret for t in losses]))) if losses else None,
        profit_factor=_finite(gross_profit / gross_loss) if gross_loss > 0 else None,
    )


def _mean_exposure(exposure: pd.Series | None) -> float | None:
    clean = _clean_series(exposure)
    return _finite(float(clean.mean())) if len(clean) else None


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or abs(den) <= _EPS:
        return None
    return _finite(num / den)


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else _finite(a - b)


def compute_metrics(
    equity: pd.Series,
    trades: Sequence[TradeRecord] = (),
    exposure: pd.Series | None = None,
    benchmark: pd.Series | None = None,
    initial_value: float | None = None,
) -> Metrics:
    """All metrics of one run (see the module docstring for the conventions)."""
    eq = _clean_series(equity)
    years = (eq.index[-1] - eq.index[0]).days / DAYS_PER_YEAR if len(eq) else None
    aligned = align_benchmark(benchmark, eq.index)
    return metrics_from_arrays(eq.to_numpy(dtype="float64"), years, trades, _mean_exposure(exposure),
                               None if aligned is None else aligned.to_numpy(dtype="float64"), initial_value)


def metrics_from_arrays(
    equity: np.ndarray,
    years: float | None,
    trades: Sequence[TradeRecord],
    mean_exposure: float | None,
    bench: np.ndarray | None,
    initial_value: float | None = None,
) -> Metrics:
    """The one metrics implementation, on a clean equity array: ``years`` between its first and last date,
    ``bench`` the benchmark closes aligned to its points (NaN before the first quote). ``compute_metrics`` and
    the sweep fast path both call it."""
    values = equity
    if len(values) and initial_value is not None and math.isfinite(initial_value):
        values = np.concatenate([[float(initial_value)], values])
    rets = daily_returns(values)
    start_value = float(values[0]) if len(values) else None
    final_value = float(values[-1]) if len(values) else None
    total = None
    growth = None
    if start_value is not None and final_value is not None:
        total = _ratio(final_value - start_value, start_value)
        if len(equity) and years is not None:
            growth = cagr_years(start_value, final_value, years)
    mdd = max_drawdown(values)
    bench_ret = benchmark_return(bench)
    alpha, beta = alpha_beta(equity, bench)
    stats = trade_stats(trades)
    return Metrics(
        final_value=_finite(final_value),
        pnl=_diff(final_value, start_value),
        total_return=total,
        cagr=growth,
        annual_volatility=annual_volatility(rets),
        sharpe=sharpe_ratio(rets),
        sortino=sortino_ratio(rets),
        max_drawdown=mdd,
        max_drawdown_duration=max_drawdown_duration(values),
        calmar=_ratio(growth, abs(mdd) if mdd is not None else None),
        trade_count=stats.trade_count,
        open_trade_count=stats.open_trade_count,
        win_rate=stats.win_rate,
        avg_win=stats.avg_win,
        avg_loss=stats.avg_loss,
        profit_factor=stats.profit_factor,
        exposure=_finite(mean_exposure),
        benchmark_return=bench_ret,
        excess_return=_diff(total, bench_ret),
        alpha=alpha,
        beta=beta,
    )


@dataclass(frozen=True)
class ReturnStats:
    """Moments of the daily returns (for the deflated Sharpe ratio of sweeps)."""

    n: int
    sharpe_daily: float | None
    skew: float | None
    kurtosis: float | None  # not excess (normal = 3)


def return_stats(returns: np.ndarray) -> ReturnStats:
    n = len(returns)
    if n < 3:
        return ReturnStats(n, None, None, None)
    mean = float(np.mean(returns))
    std = float(np.std(returns, ddof=1))
    pop = float(np.std(returns))
    if not std > _EPS or not pop > _EPS:
        return ReturnStats(n, None, None, None)
    z = (returns - mean) / pop
    return ReturnStats(n, mean / std, float(np.mean(z**3)), float(np.mean(z**4)))
