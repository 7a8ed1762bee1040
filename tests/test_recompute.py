"""Every trade recomputed from the raw bars and the exchange calendars alone (no engine code): entry at the first
fill point after the news, exit ``hold`` sessions later, raw prices, fees, and cash spent only after it exists.
One test breaks the rule on purpose (a fill one session early) and checks it is caught."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from engine import backtest
from engine.market.costs import CostModel
from engine.plan.config import RunConfig
from engine.prices.store import PriceStore
from tests.engine_helpers import (
    cash_timeline_problems,
    event,
    frame_on_sessions,
    recompute_trade,
    size_problems,
    trade_problems,
)

EXCHANGE = {"BABA": "XNYS", "JD": "XNYS", "0700.HK": "XHKG", "9988.HK": "XHKG"}
EVENTS = [
    event("fsdc", "2022-03-16", time="14:00", tz="Asia/Hong_Kong"),
    event("cppcc", "2022-05-17", time="19:00"),
    event("sat", "2022-05-07", time="10:00"),
    event("ny", "2022-04-12", time="11:00", tz="America/New_York", scope="single", symbols=["JD", "0700.HK"]),
]


def known(ev) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.combine(ev.date, ev.time, ZoneInfo(ev.tz))).tz_convert("UTC")


@pytest.fixture
def store(tmp_path: Path) -> PriceStore:
    s = PriceStore(tmp_path / "cache", offline=True)
    for k, (sym, exchange) in enumerate(EXCHANGE.items()):
        frame = frame_on_sessions(exchange, "2021-10-01", "2022-06-30", seed=10 + k, base=[90, 60, 300, 90][k])
        if sym == "9988.HK":
            frame = frame.drop(pd.DatetimeIndex(["2022-03-21", "2022-05-20"]))  # data gaps
        s.write(sym, frame, source="csv")
    return s


def run(store: PriceStore, fill: str, size: float = 0.2) -> dict:
    config = RunConfig(strategy="event_hold", params={"hold": 3}, symbols=tuple(EXCHANGE), start=dt.date(2022, 3, 1),
                       end=dt.date(2022, 6, 30), cash=1_000_000.0, benchmark=None, fill=fill, size=size,
                       costs=CostModel(commission_pct=0.001, min_commission=1.0, slippage_bps=5,
                                       stamp_duty_rate=0.0013))
    return backtest.run(config, store, events=EVENTS).report


@pytest.mark.parametrize("fill", ["open", "close"])
def test_every_trade_recomputed_without_engine_code(store: PriceStore, fill: str) -> None:
    report = run(store, fill)
    by_id = {e.id: e for e in EVENTS}
    assert len(report["trades"]) >= 12
    for t in report["trades"]:
        frame = store.load(t["symbol"])
        assert trade_problems(t, frame, EXCHANGE[t["symbol"]], known(by_id[t["event_id"]]), 3) == []
        hk = t["symbol"].endswith(".HK")
        want = recompute_trade(t, frame, 7.8 if hk else 1.0, pct=0.001, minimum=1.0, bps=5, stamp=0.0013, hk=hk)
        assert t["fees"] == pytest.approx(want["fees"], rel=1e-9)
        assert t["pnl"] == pytest.approx(want["pnl"], rel=1e-9)


@pytest.mark.parametrize("size", [0.2, 0.45, 0.9])
def test_no_entry_spends_cash_from_a_later_instant(store: PriceStore, size: float) -> None:
    report = run(store, "open", size)
    assert cash_timeline_problems(report["trades"], 1_000_000.0, EXCHANGE.__getitem__) == []


def test_a_fill_one_session_early_is_caught(store: PriceStore) -> None:
    """Break the rule on purpose: move one correct trade's entry (then its exit) one session earlier."""
    report = run(store, "open")
    t = next(u for u in report["trades"] if u["symbol"] == "0700.HK" and u["event_id"] == "cppcc")
    frame = store.load("0700.HK")
    ev = next(e for e in EVENTS if e.id == "cppcc")
    assert trade_problems(t, frame, "XHKG", known(ev), 3) == []
    pos = frame.index.get_loc(pd.Timestamp(t["entry_date"]))
    early = dict(t, entry_date=str(frame.index[pos - 1].date()), entry_price=float(frame["open"].iloc[pos - 1]))
    assert any("first fill point after the news is 2022-05-18" in p
               for p in trade_problems(early, frame, "XHKG", known(ev), 3))
    pos = frame.index.get_loc(pd.Timestamp(t["exit_date"]))
    early_exit = dict(t, exit_date=str(frame.index[pos - 1].date()), exit_price=float(frame["open"].iloc[pos - 1]))
    assert any("3 sessions later" in p for p in trade_problems(early_exit, frame, "XHKG", known(ev), 3))
    # and a cash timeline that pays an HK entry with a later US sale is caught too
    sale = dataclasses.asdict(backtest.run(
        RunConfig(strategy="event_hold", params={"hold": 1}, symbols=("BABA",), start=dt.date(2022, 3, 1),
                  end=dt.date(2022, 6, 30), cash=1_000_000.0, benchmark=None, size=0.9), store,
        events=[event("b", "2022-05-10", time="08:00", tz="America/New_York", scope="single", symbols=["BABA"])],
    ).result.trades[0])
    hk_buy = dict(t, entry_date="2022-05-11", exit_date=None, size=int(0.9e6 * 7.8 / t["entry_price"]) // 100 * 100,
                  fx_entry=7.8, entry_fees=0.0)
    assert cash_timeline_problems([sale, hk_buy], 1_000_000.0, EXCHANGE.__getitem__)


SEED_LOTS = {"0700.HK": 100, "9988.HK": 100, "3690.HK": 100, "9618.HK": 50, "9999.HK": 100, "9888.HK": 50,
             "1024.HK": 100}


def seed_exchange(symbol: str) -> str:
    return "XHKG" if symbol.endswith(".HK") else "XNYS"


@pytest.mark.parametrize("fill", ["open", "close"])
def test_seed_run_sizes_recomputed_from_the_raw_bars(run_cli, real_import, cache_dir: Path, fill: str) -> None:
    """Every entry size of the real seed run (5% of equity) from the trade list and the raw closes known strictly
    before its instant (before the clock 15 of 58 entries failed it with fill open, 13 of 52 with fill close)."""
    import json

    symbols = ["BABA", "JD", "NTES", "BIDU", "TCEHY", "PDD", "BILI", *SEED_LOTS]
    real_import([*symbols, "KWEB"])  # `evbt data import`, run once per session (tests/conftest.py)
    code, out, err = run_cli("--offline", "run", "reassurance", "--fill", fill, "--json", "--no-save")
    assert code == 0, err
    trades = json.loads(out)["trades"]
    store = PriceStore(cache_dir, offline=True)
    frames = {s: store.load(s) for s in symbols}
    assert size_problems(trades, frames, 1_000_000.0, 0.05, SEED_LOTS, seed_exchange) == []
