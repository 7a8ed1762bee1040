"""Stop-loss, take-profit and trailing stop fire on a close exactly at the threshold.

The rules are "return <= -stop", "return >= take" and "close <= best x (1 - trail)" (README, "Exit"). On decimal
prices such as an entry at 25.00 and a close at 22.50 (exactly -10%) the float quotient 22.5 / 25 - 1 is
-0.09999999999999998, so the stop used to miss that close and fire on a later one (or never). The expected exits
below are computed by hand from decimal prices.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine import backtest
from engine.market.costs import CostModel
from engine.plan.config import RunConfig
from engine.prices.store import PriceStore
from tests.engine_helpers import event, fast_replay, frame_on_sessions

NO_COSTS = CostModel(commission_pct=0.0, min_commission=0.0, slippage_bps=0, stamp_duty_rate=0.0)
Run = Callable[..., tuple[int, str, str]]


def _frame(entry_open: float, closes: list[float]) -> pd.DataFrame:
    """NYSE bars from 2022-03-01: the first bar opens at ``entry_open``; closes as given, then flat at the last;
    every later open is the previous close + 0.01 (so an exit's price names its bar)."""
    dates = frame_on_sessions("XNYS", "2022-03-01", "2022-04-29").index
    c = np.full(len(dates), closes[-1], dtype=float)
    c[: len(closes)] = closes
    o = np.r_[entry_open, c[:-1] + 0.01]
    return frame_on_sessions("XNYS", "2022-03-01", "2022-04-29", opens=o, closes=c)


def _run(tmp_path: Path, frame: pd.DataFrame, side: str, **guards: float):
    store = PriceStore(tmp_path / "cache", offline=True)
    store.write("BABA", frame, source="csv")
    params = {"hold": 20, "side": side, "types": ("official_reassurance",), **guards}
    config = RunConfig(strategy="event_hold", params=params, symbols=("BABA",), start=dt.date(2022, 3, 1),
                       end=dt.date(2022, 4, 29), benchmark=None, costs=NO_COSTS, allow_short=True)
    events = [event("a", "2022-03-01", symbols=("BABA",), scope="single", tz="America/New_York", time="08:00")]
    slow = backtest.run(config, store, events=events)
    fast = fast_replay(config, store, events)
    (trade,) = slow.result.trades
    (fast_trade,) = fast.trades
    assert (fast_trade.exit_date, fast_trade.exit_reason) == (trade.exit_date, trade.exit_reason)
    return trade


@pytest.mark.parametrize(("side", "entry", "closes", "guards", "reason"), [
    # long, entry 25.00, close 22.50 on bar 3 = -10.00%: stop_loss=0.1 fires there
    ("long", 25.0, [24.09, 24.59, 22.5, 23.0, 21.66], {"stop_loss": 0.1}, "stop_loss"),
    # long, entry 19.00, close 20.90 = +10.00%: take_profit=0.1 fires
    ("long", 19.0, [19.5, 19.8, 20.9, 20.0, 21.5], {"take_profit": 0.1}, "take_profit"),
    # long, entry 23.90 (the best so far), close 21.51 = 23.90 x 0.9: trailing_stop=0.1 fires
    ("long", 23.9, [23.5, 23.0, 21.51, 22.0, 21.0], {"trailing_stop": 0.1}, "trailing_stop"),
    # short, entry 12.80, close 14.72 = +15.00% against it: stop_loss=0.15 fires
    ("short", 12.8, [13.0, 13.5, 14.72, 14.0, 15.0], {"stop_loss": 0.15}, "stop_loss"),
    # short, entry 27.00, close 22.95 = -15.00%: take_profit=0.15 fires
    ("short", 27.0, [26.0, 25.0, 22.95, 23.5, 22.0], {"take_profit": 0.15}, "take_profit"),
])
def test_a_close_exactly_at_the_threshold_fires(tmp_path: Path, side, entry, closes, guards, reason) -> None:
    trade = _run(tmp_path, _frame(entry, closes), side, **guards)
    assert (trade.entry_date, trade.entry_price) == ("2022-03-01", entry)
    # the threshold close is bar 3 (2022-03-03); the exit is the next bar's open, 2022-03-04 at that close + 0.01
    assert (trade.exit_date, trade.exit_reason) == ("2022-03-04", reason)
    assert trade.exit_price == pytest.approx(closes[2] + 0.01, abs=1e-9)


def test_a_close_just_short_of_the_threshold_does_not_fire(tmp_path: Path) -> None:
    trade = _run(tmp_path, _frame(25.0, [24.09, 24.59, 22.51, 23.0, 21.66]), "long", stop_loss=0.1)
    assert (trade.exit_date, trade.exit_reason) == ("2022-03-08", "stop_loss")  # 21.66 on bar 5 (03-07) fires


def test_real_data_bili_stop_at_exactly_ten_percent(run_cli: Run, real_import: Callable[[list[str]], Path],
                                                    tmp_path: Path) -> None:
    real_import(["BILI", "KWEB"])
    events = tmp_path / "events.csv"
    events.write_text(
        "id,date,time,tz,session_hint,market,type,scope,symbols,firm,from_grade,to_grade,description,source,"
        "confidence\n"
        "probe,2022-12-12,17:00,America/New_York,,,official_reassurance,single,BILI,,,,after the US close,"
        "https://example.com/probe,high\n")
    code, out, err = run_cli("--offline", "run", "event_hold", "-p", "hold=20", "-p", "stop_loss=0.1",
                             "--events", str(events), "--replace-events", "--symbols", "BILI",
                             "--start", "2022-12-01", "--end", "2023-02-28", "--json", "--no-save")
    assert code == 0, err
    (t,) = json.loads(out)["trades"]
    # BILI.csv: 2022-12-13 Open 25.000000; closes 24.09, 24.59, then 2022-12-15 Close 22.500000 = 25 x 0.90;
    # the stop fires on that close and sells at the 2022-12-16 open, 23.270000
    assert (t["entry_date"], t["entry_price"]) == ("2022-12-13", 25.0)
    assert (t["exit_date"], t["exit_price"], t["exit_reason"]) == ("2022-12-16", 23.27, "stop_loss")
