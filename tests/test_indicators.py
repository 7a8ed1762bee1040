"""Indicators (strategies/indicators.py) pinned by hand on a six-bar frame, and their as-of reads via RunContext.

Frame: closes 10 11 12 11 13 14, highs = close + 1, lows = close - 1 (bar 4 gaps up: its low 12 is above the
previous close 11), volumes 100 200 300 400 500 1000.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics

import numpy as np
import pandas as pd
import pytest

from engine.plan.context import RunContext
from strategies import indicators as ind

CLOSES = [10.0, 11.0, 12.0, 11.0, 13.0, 14.0]
DATES = pd.DatetimeIndex(pd.to_datetime(["2022-03-01", "2022-03-02", "2022-03-03", "2022-03-04", "2022-03-07",
                                         "2022-03-08"]), name="date")


def _frame(closes: list[float] = CLOSES, stale_at: int | None = None) -> pd.DataFrame:
    c = np.asarray(closes)
    frame = pd.DataFrame({"open": c, "high": c + 1, "low": c - 1, "close": c, "adj_close": c,
                          "volume": [100.0, 200.0, 300.0, 400.0, 500.0, 1000.0][: len(c)],
                          "stale": np.zeros(len(c), dtype=bool)}, index=DATES[: len(c)])
    if stale_at is not None:
        frame.iloc[stale_at, frame.columns.get_loc("stale")] = True
    return frame


def _values(series: pd.Series) -> list[float | None]:
    return [None if math.isnan(v) else round(float(v), 10) for v in series]


def test_sma_over_the_last_n_closes() -> None:
    assert _values(ind.sma(_frame(), 3)) == [None, None, 11.0, round(34 / 3, 10), 12.0, round(38 / 3, 10)]


def test_rolling_return_is_close_over_close_n_bars_back() -> None:
    assert _values(ind.rolling_return(_frame(), 2)) == [None, None, 0.2, 0.0, round(13 / 12 - 1, 10),
                                                        round(14 / 11 - 1, 10)]


def test_rsi_uses_simple_means_of_gains_and_losses() -> None:
    # changes: -, +1, +1, -1, +2, +1. Window of 3 at bar 3: gains 1,1,0 (2/3), losses 0,0,1 (1/3) -> 66.67;
    # bar 4 (+1, -1, +2): gains 3/3, losses 1/3 -> 75; bar 5 (-1, +2, +1): 75.
    assert _values(ind.rsi(_frame(), 3)) == [None, None, None, round(200 / 3, 10), 75.0, 75.0]


def test_rsi_of_flat_closes_is_50() -> None:
    assert _values(ind.rsi(_frame([10.0] * 6), 3))[3:] == [50.0, 50.0, 50.0]


def test_atr_uses_the_previous_close_on_a_gap() -> None:
    # true ranges: -, 2, 2, 2, 3 (gap: high 14 - previous close 11), 2
    assert _values(ind.true_range(_frame())) == [None, 2.0, 2.0, 2.0, 3.0, 2.0]
    assert _values(ind.atr(_frame(), 2)) == [None, None, 2.0, 2.0, 2.5, 2.5]


def test_volatility_is_the_sample_std_of_daily_returns() -> None:
    returns = [CLOSES[i] / CLOSES[i - 1] - 1 for i in range(1, 6)]
    got = _values(ind.volatility(_frame(), 3))
    assert got[:3] == [None, None, None]
    assert got[3:] == [round(statistics.stdev(returns[i - 3:i]), 10) for i in (3, 4, 5)]
    annual = ind.volatility(_frame(), 3, annualize=True).iloc[5]
    assert annual == pytest.approx(statistics.stdev(returns[2:5]) * math.sqrt(252), rel=1e-12)


def test_volume_zscore_includes_the_bar_in_its_window() -> None:
    window = [400.0, 500.0, 1000.0]
    expected = (1000.0 - statistics.mean(window)) / statistics.stdev(window)
    assert ind.volume_zscore(_frame(), 3).iloc[5] == pytest.approx(expected, rel=1e-12)
    assert math.isnan(ind.volume_zscore(_frame(), 3).iloc[1])


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "5"])
def test_period_must_be_a_whole_number(bad: object) -> None:
    with pytest.raises(ValueError, match="whole number"):
        ind.sma(_frame(), bad)  # type: ignore[arg-type]


def _ctx(frame: pd.DataFrame) -> RunContext:
    return RunContext(("AAA",), [], {"AAA": frame}, "open", dt.date(2022, 3, 1), dt.date(2022, 3, 31))


def test_as_of_reads_use_the_last_bar_strictly_before_the_session() -> None:
    ctx = _ctx(_frame())
    assert ctx.sma("AAA", DATES[5], 3) == pytest.approx(12.0)  # bars 2..4, not bar 5 itself
    assert ctx.sma("AAA", pd.Timestamp("2022-03-09"), 3) == pytest.approx(38 / 3)  # after the last bar: bar 5
    assert ctx.sma("AAA", pd.Timestamp("2022-03-05"), 3) == pytest.approx(34 / 3)  # a weekend: bar 3 (Friday)
    assert ctx.sma("AAA", DATES[2], 3) is None  # only two bars before: window not full
    assert ctx.last_close("AAA", DATES[0]) is None
    assert ctx.last_close("AAA", DATES[4]) == 11.0
    assert ctx.rsi("AAA", DATES[4], 3) == pytest.approx(200 / 3)  # as of bar 3
    assert ctx.atr("AAA", DATES[5], 2) == pytest.approx(2.5)  # true ranges of bars 3 and 4
    assert ctx.rolling_return("AAA", DATES[5], 2) == pytest.approx(13 / 12 - 1)
    assert ctx.trailing_return("AAA", DATES[5], 2) == pytest.approx(13 / 12 - 1)
    assert ctx.sma("ZZZ", DATES[5], 3) is None  # unknown symbol
    assert ctx.sma("AAA", None, 3) is None and ctx.history("AAA", None) is None  # no entry session


def test_history_is_the_bars_before_the_session_and_a_copy() -> None:
    frame = _frame()
    ctx = _ctx(frame)
    hist = ctx.history("AAA", DATES[4], bars=2)
    assert list(hist.index) == [DATES[2], DATES[3]]
    assert list(hist.columns) == ["open", "high", "low", "close", "volume"]
    hist.iloc[0, 0] = -1.0
    assert frame["open"].iloc[2] == 12.0
    assert len(ctx.history("AAA", DATES[4])) == 4


def test_stale_placeholders_are_left_out_of_the_views() -> None:
    # bar 3 is a placeholder: the 3-bar average before bar 5 is over bars 1, 2, 4 -> (11 + 12 + 13) / 3
    ctx = _ctx(_frame(stale_at=3))
    assert ctx.sma("AAA", DATES[5], 3) == pytest.approx(12.0)
    assert ctx.last_close("AAA", DATES[4]) == 12.0


def test_a_user_indicator_is_computed_once_per_symbol_and_arguments() -> None:
    calls: list[int] = []

    def highest(frame: pd.DataFrame, n: int) -> pd.Series:
        calls.append(n)
        return frame["high"].rolling(n).max()

    ctx = _ctx(_frame())
    assert [ctx.indicator("AAA", d, highest, 2) for d in DATES[3:]] == [13.0, 13.0, 14.0]
    assert ctx.indicator("AAA", DATES[5], highest, 3) == 14.0
    assert calls == [2, 3]
