"""Whole-board-lot sizing must not lose a lot to floating-point division.

A target that buys an exact number of lots (e.g. USD 30,000 of a HKD 130.00 listing with board lot 50 at the
7.80 peg: 30,000 x 7.8 / 130 = 1,800 shares = 36 lots) used to be floored from 35.999999999999993 to 35 lots.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from engine import backtest
from engine.execution.sizing import entry_size
from engine.market.costs import CostModel
from engine.plan.config import RunConfig
from engine.plan.planner import PlannedAction
from engine.prices.store import PriceStore
from tests.engine_helpers import event, frame_on_sessions

Run = Callable[..., tuple[int, str, str]]


def _action() -> PlannedAction:
    return PlannedAction(symbol="9988.HK", bar=0, date=pd.Timestamp("2022-03-17"), action="enter", side="long",
                         hold=5, event_id="e", event_type="official_reassurance", group=None, group_size=1,
                         weight=None, seq=0)


@pytest.mark.parametrize(("cash", "price_hkd", "lot", "want"), [
    (30_000.0, 130.0, 50, 1_800),   # 30,000 x 7.8 / 130 = 1,800 (36 lots of 50)
    (30_000.0, 260.0, 100, 900),    # 30,000 x 7.8 / 260 = 900 (9 lots of 100)
    (40_000.0, 80.0, 100, 3_900),   # 40,000 x 7.8 / 80 = 3,900 (39 lots of 100)
    (60_000.0, 65.0, 100, 7_200),   # 60,000 x 7.8 / 65 = 7,200 (72 lots of 100)
    (29_999.0, 130.0, 50, 1_750),   # a dollar short of 36 lots: still 35
])
def test_exact_lot_multiples_are_not_floored_away(cash, price_hkd, lot, want):
    cfg = RunConfig(strategy="event_hold", params={}, symbols=("9988.HK",), start=dt.date(2022, 3, 1),
                    end=dt.date(2022, 6, 30), sizing="cash", size=cash)
    _target, size = entry_size(cfg, _action(), 1_000_000.0, price_hkd / 7.8, lot)
    assert size == want


def test_cash_sizing_buys_the_exact_lots_in_a_run(tmp_path: Path):
    store = PriceStore(tmp_path / "cache", offline=True)
    opens = [260.0] * 400
    store.write("9988.HK", frame_on_sessions("XHKG", "2021-10-01", "2022-06-30", seed=4, opens=opens,
                                             closes=opens), source="csv")
    store.write("KWEB", frame_on_sessions("XNYS", "2021-10-01", "2022-06-30", seed=5, base=30), source="csv")
    cfg = RunConfig(strategy="event_hold", params={"hold": 5}, symbols=("9988.HK",), start=dt.date(2022, 3, 1),
                    end=dt.date(2022, 6, 30), cash=100_000.0, sizing="cash", size=30_000.0,
                    costs=CostModel(commission_pct=0.001, min_commission=0.0, slippage_bps=5))
    out = backtest.run(cfg, store, events=[event("fsdc", "2022-03-16", time="14:00", tz="Asia/Hong_Kong")])
    (t,) = out.report["trades"]
    assert t["entry_price"] == 260.0
    assert t["size"] == 900  # USD 30,000 = HKD 234,000 = 900 shares at HKD 260 (7.80 peg), 9 lots of 100


def test_real_data_cash_sizing_9888_hk(run_cli: Run, real_import: Callable[[list[str]], Path]) -> None:
    real_import(["9888.HK", "KWEB"])
    code, out, err = run_cli("--offline", "run", "reassurance", "--symbols", "9888.HK", "--sizing", "cash",
                             "--size", "30000", "--json", "--no-save")
    assert code == 0, err
    trades = {t["entry_date"]: t for t in json.loads(out)["trades"]}
    t = trades["2023-01-09"]  # 2023-01-07 interview -> 2023-01-09 HK open, 9888.HK.csv Open = 130.000000
    assert t["entry_price"] == 130.0
    assert t["size"] == 1_800  # 30,000 USD x 7.8 / HKD 130 = 1,800 shares = 36 board lots of 50
