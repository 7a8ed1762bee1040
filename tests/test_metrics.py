"""Metrics against hand computations on tiny series (expected numbers worked out by hand)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from engine.analysis.metrics import Metrics, compute_metrics, max_drawdown_duration
from engine.execution.records import TradeRecord

DATES = pd.to_datetime(["2022-01-03", "2022-01-04", "2022-01-05", "2022-01-06", "2022-01-07"])
# returns: +10 %, -10 %, 0 %, +10 %
EQUITY = pd.Series([100.0, 110.0, 99.0, 99.0, 108.9], index=DATES)
SQRT252 = math.sqrt(252)


def trade(pnl: float, ret: float, exit_date: str | None = "2022-01-06", tid: int = 1) -> TradeRecord:
    return TradeRecord(
        trade_id=tid, symbol="BABA", side="long", event_id="e1", event_type="policy_support",
        entry_date="2022-01-04", entry_fill="open", entry_price=100.0, exit_date=exit_date,
        exit_fill="close" if exit_date else None, exit_price=110.0 if exit_date else None, size=1,
        fx_entry=1.0, fx_exit=1.0 if exit_date else None, entry_fees=0.5, exit_fees=0.5, fees=1.0,
        entry_value=100.0, pnl=pnl, ret=ret, exit_reason="hold" if exit_date else "open", holding_sessions=2,
    )


def assert_json_clean(m: Metrics) -> None:
    json.dumps(m.to_dict(), allow_nan=False)  # raises on NaN/inf


def test_return_and_risk_metrics_by_hand() -> None:
    m = compute_metrics(EQUITY)
    assert m.final_value == pytest.approx(108.9)
    assert m.pnl == pytest.approx(8.9)
    assert m.total_return == pytest.approx(0.089)
    # mean 0.025; deviations .075 -.125 -.025 .075 -> sum of squares 0.0275, sample var 0.0275/3
    assert m.annual_volatility == pytest.approx(0.0957427108 * SQRT252, rel=1e-8)
    assert m.sharpe == pytest.approx(0.025 / 0.0957427108 * SQRT252, rel=1e-8)
    # downside: only -0.10 -> mean of squares 0.01/4 = 0.0025 -> deviation 0.05
    assert m.sortino == pytest.approx(0.5 * SQRT252)
    # peak 110 then 99 -> -10 %; never back to 110: under water from bar 1 to the last bar (4) = 3 bars
    assert m.max_drawdown == pytest.approx(-0.1)
    assert m.max_drawdown_duration == 3
    assert_json_clean(m)


def test_cagr_calendar_days_and_calmar() -> None:
    # 2021-01-01 -> 2023-01-01 is 730 calendar days = 730/365.25 years; 100 -> 121
    idx = pd.to_datetime(["2021-01-01", "2022-01-01", "2023-01-01"])
    m = compute_metrics(pd.Series([100.0, 80.0, 121.0], index=idx))
    expected = 1.21 ** (365.25 / 730) - 1
    assert m.cagr == pytest.approx(expected)
    assert m.cagr == pytest.approx(0.1, abs=1e-4)
    assert m.max_drawdown == pytest.approx(-0.2)
    assert m.calmar == pytest.approx(expected / 0.2)


def test_initial_value_is_first_peak_and_base() -> None:
    idx = pd.to_datetime(["2022-01-03", "2022-01-04"])
    m = compute_metrics(pd.Series([99.0, 110.0], index=idx), initial_value=100.0)
    assert m.pnl == pytest.approx(10.0)
    assert m.total_return == pytest.approx(0.1)
    assert m.max_drawdown == pytest.approx(-0.01)
    assert m.max_drawdown_duration == 2  # initial cash (peak) -> recovery on the second bar


def test_drawdown_duration_longest_episode() -> None:
    values = np.array([100, 90, 100, 105, 104, 103, 102, 106], dtype=float)
    assert max_drawdown_duration(values) == 4  # 105 at bar 3 until 106 at bar 7
    assert max_drawdown_duration(np.array([100.0, 100.0, 100.0])) == 0
    assert max_drawdown_duration(np.array([100.0, 101.0, 102.0])) == 0


def test_benchmark_ffill_alpha_beta_by_hand() -> None:
    # benchmark has no bar on 2022-01-05: forward filled with 55 -> returns .1, 0, -.1, 0
    bench = pd.Series([50.0, 55.0, 49.5, 49.5], index=DATES.delete(2))
    m = compute_metrics(EQUITY, benchmark=bench)
    assert m.benchmark_return == pytest.approx(-0.01)
    assert m.excess_return == pytest.approx(0.099)
    # rb mean 0, var 0.02/3; cov(r, rb) = (.075*.1 + (-.025)*(-.1))/3 = 0.01/3 -> beta 0.5
    assert m.beta == pytest.approx(0.5)
    # alpha = mean(r - 0.5 rb) * 252 = 0.025 * 252
    assert m.alpha == pytest.approx(6.3)


def test_benchmark_starting_late_is_not_back_filled() -> None:
    bench = pd.Series([55.0, 55.0, 49.5, 49.5], index=DATES[1:])
    m = compute_metrics(EQUITY, benchmark=bench)
    assert m.benchmark_return is None  # the benchmark does not cover the first date
    assert m.excess_return is None
    assert m.beta is not None  # still defined on the overlapping daily returns


def test_benchmark_none_or_constant() -> None:
    m = compute_metrics(EQUITY, benchmark=None)
    assert (m.benchmark_return, m.alpha, m.beta, m.excess_return) == (None, None, None, None)
    flat = compute_metrics(EQUITY, benchmark=pd.Series(10.0, index=DATES))
    assert flat.benchmark_return == 0.0
    assert flat.beta is None and flat.alpha is None  # zero benchmark variance
    assert_json_clean(flat)


def test_trade_statistics_by_hand() -> None:
    trades = [trade(10.0, 0.10), trade(-5.0, -0.05), trade(20.0, 0.20), trade(0.0, 0.0)]
    trades.append(trade(3.0, 0.03, None))  # still open: not counted
    m = compute_metrics(EQUITY, trades)
    assert m.trade_count == 4 and m.open_trade_count == 1
    assert m.win_rate == pytest.approx(0.5)  # 2 winners of 4 closed; the flat trade is neither
    assert m.avg_win == pytest.approx(0.15)
    assert m.avg_loss == pytest.approx(-0.05)
    assert m.profit_factor == pytest.approx(6.0)  # 30 / 5


def test_profit_factor_edges() -> None:
    assert compute_metrics(EQUITY, [trade(10.0, 0.1)]).profit_factor is None  # no losses
    only_losses = compute_metrics(EQUITY, [trade(-10.0, -0.1)])
    assert only_losses.profit_factor == 0.0 and only_losses.win_rate == 0.0 and only_losses.avg_win is None
    none = compute_metrics(EQUITY, [])
    assert none.trade_count == 0 and none.win_rate is None and none.avg_loss is None


def test_exposure_mean_ignores_nan() -> None:
    exp = pd.Series([0.0, 0.5, 1.0, 0.5, np.nan], index=DATES)
    assert compute_metrics(EQUITY, exposure=exp).exposure == pytest.approx(0.5)
    assert compute_metrics(EQUITY, exposure=None).exposure is None


def test_constant_equity() -> None:
    m = compute_metrics(pd.Series(100.0, index=DATES))
    assert m.total_return == 0.0 and m.pnl == 0.0
    assert m.annual_volatility == 0.0
    assert m.sharpe is None and m.sortino is None and m.calmar is None
    assert m.max_drawdown == 0.0 and m.max_drawdown_duration == 0
    assert_json_clean(m)


@pytest.mark.parametrize(
    "equity",
    [
        pd.Series([100.0], index=DATES[:1]),
        pd.Series(dtype="float64"),
        pd.Series([np.nan, np.nan], index=DATES[:2]),
        pd.Series([100.0, 0.0, 0.0], index=DATES[:3]),
        pd.Series([100.0, np.inf, 105.0], index=DATES[:3]),
    ],
)
def test_degenerate_inputs_never_raise_or_emit_nan(equity: pd.Series) -> None:
    m = compute_metrics(equity, [], pd.Series(dtype="float64"), pd.Series(dtype="float64"))
    assert_json_clean(m)
    assert m.sharpe is None or math.isfinite(m.sharpe)


def test_one_bar() -> None:
    m = compute_metrics(pd.Series([100.0], index=DATES[:1]))
    assert m.final_value == 100.0 and m.total_return == 0.0
    assert m.cagr is None and m.annual_volatility is None and m.sharpe is None


def test_benchmark_on_another_calendar_and_unit() -> None:
    # benchmark dated on other days (and in ns while equity is in us): last close on or before each date
    idx = pd.to_datetime(["2022-01-03", "2022-01-04", "2022-01-05"]).as_unit("us")
    bench_idx = pd.to_datetime(["2021-12-31", "2022-01-04", "2022-01-06"]).as_unit("ns")
    m = compute_metrics(pd.Series([100.0, 101.0, 103.0], index=idx), benchmark=pd.Series([10.0, 11.0, 12.0], bench_idx))
    assert m.benchmark_return == pytest.approx(0.1)  # 10 (Dec 31) -> 11 (Jan 4, carried to Jan 5)
