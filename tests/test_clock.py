"""The market clock (issue: one market clock): fills in true UTC order across venues, cash and sizing that only
see earlier instants, ``hold`` in exchange sessions, ``--overlap extend`` without fills. Each measurement of the
issue has a small synthetic case computed by hand (always runs) and, where the issue measured it on the real data
in ../shared, the same case there (skipped when absent). Both engines are checked on every case."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine import backtest
from engine.execution.clock import iso_utc, session_instants
from engine.market.costs import CostModel
from engine.plan.config import RunConfig
from engine.prices.store import PriceStore
from tests.engine_helpers import event, fast_replay, frame_on_sessions

FREE = CostModel(commission_pct=0.0, min_commission=0.0, slippage_bps=0.0, stamp_duty_rate=0.0, venue_fees=False)


def flat(exchange: str, price: float, start: str = "2022-01-03", end: str = "2023-03-31") -> pd.DataFrame:
    n = len(frame_on_sessions(exchange, start, end))
    return frame_on_sessions(exchange, start, end, opens=[price] * n, closes=[price] * n)


def store_of(root: Path, frames: dict[str, pd.DataFrame]) -> PriceStore:
    store = PriceStore(root, offline=True)
    for symbol, frame in frames.items():
        store.write(symbol, frame, source="csv")
    return store


def cfg(symbols: tuple[str, ...], **kw) -> RunConfig:
    base = dict(strategy="event_hold", params={"hold": 1}, symbols=symbols, start=dt.date(2022, 3, 1),
                end=dt.date(2023, 2, 28), cash=1_000_000.0, benchmark=None, costs=FREE)
    base.update(kw)
    return RunConfig(**base)


def both(config: RunConfig, store: PriceStore, events: list) -> tuple[backtest.Outcome, list, list]:
    """backtrader run, and the fast path's trades/orders checked equal to it."""
    out = backtest.run(config, store, events=events)
    fast = fast_replay(config, store, events)
    slow_trades = [dataclasses.asdict(t) for t in out.result.trades]
    fast_trades = [dataclasses.asdict(t) for t in fast.trades]
    for a, b in zip(slow_trades, fast_trades, strict=True):
        for key in ("symbol", "entry_date", "exit_date", "size", "entry_price", "exit_price", "exit_reason"):
            assert a[key] == b[key], (key, a, b)
    def decided(orders: list) -> list:
        return sorted(dataclasses.astuple(o) for o in orders if o.status != "skipped" or o.size)

    assert decided(fast.orders) == decided(out.result.orders)
    np.testing.assert_allclose(fast.equity, out.result.equity.to_numpy(), rtol=1e-9)
    return out, out.report["trades"], out.report["orders"]


# ---------------------------------------------------------------------------------------------- the clock


def test_fill_instants_in_utc_order_on_a_day_both_trade() -> None:
    day = pd.DatetimeIndex(["2022-05-18"])
    hk_open, hk_close, _ = session_instants("XHKG", day)
    us_open, us_close, _ = session_instants("XNYS", day)
    assert [iso_utc(x[0]) for x in (hk_open, hk_close, us_open, us_close)] == [
        "2022-05-18T01:30:00Z", "2022-05-18T08:00:00Z", "2022-05-18T13:30:00Z", "2022-05-18T20:00:00Z"]
    winter = pd.DatetimeIndex(["2022-01-18"])
    assert iso_utc(session_instants("XNYS", winter)[0][0]) == "2022-01-18T14:30:00Z"  # no DST in January


# ---------------------------------------------------------------------------------------------- measurement 1

US_EXIT = event("us", "2022-05-10", time="08:00", tz="America/New_York", scope="single", symbols=["BABA"])
HK_ENTRY = event("hk", "2022-05-10", time="20:00", tz="Asia/Hong_Kong", scope="single", symbols=["0700.HK"])


def test_cash_from_a_later_us_exit_cannot_pay_an_earlier_hk_entry(tmp_path: Path) -> None:
    """BABA bought at the 2022-05-10 US open with 90% of 1,000,000 (9,000 x 100), sold at the 2022-05-11 US open
    (13:30 UTC). 0700.HK at the 2022-05-11 HK open (01:30 UTC) wants 90% of the equity known then
    (100,000 cash + 9,000 x 100) = 900,000 = 23,400 shares at 300 / 7.80 USD: only 100,000 is there: refused."""
    store = store_of(tmp_path, {"BABA": flat("XNYS", 100.0), "0700.HK": flat("XHKG", 300.0)})
    out, trades, orders = both(cfg(("BABA", "0700.HK"), size=0.9), store, [US_EXIT, HK_ENTRY])
    assert [(t["symbol"], t["entry_date"], t["exit_date"], t["size"]) for t in trades] == [
        ("BABA", "2022-05-10", "2022-05-11", 9000)]
    refused = [o for o in orders if o["symbol"] == "0700.HK"]
    assert len(refused) == 1 and refused[0]["status"] == "refused" and refused[0]["date"] == "2022-05-11"
    assert refused[0]["reason"] == "insufficient cash (100000.00 available, 900000.00 needed)"
    assert out.result.cash.min() >= 0


def test_cash_crossing_on_real_data(imported: PriceStore) -> None:
    config = cfg(("BABA", "0700.HK"), size=0.9, costs=CostModel())
    _, trades, orders = both(config, imported, [US_EXIT, HK_ENTRY])
    assert [(t["symbol"], t["entry_date"], t["exit_date"]) for t in trades] == [("BABA", "2022-05-10", "2022-05-11")]
    hk = [o for o in orders if o["symbol"] == "0700.HK"]
    assert [(o["date"], o["status"]) for o in hk] == [("2022-05-11", "refused")]
    assert "insufficient cash" in hk[0]["reason"]


# ---------------------------------------------------------------------------------------------- measurement 2

US_CLOSE = event("us", "2022-05-17", time="10:00", tz="America/New_York", scope="single", symbols=["BABA"])
HK_CLOSE = event("hk", "2022-05-18", time="10:00", tz="Asia/Hong_Kong", scope="single", symbols=["0700.HK"])


@pytest.mark.parametrize("baba_close_0518", [100.0, 50.0])
def test_fill_close_sizing_does_not_see_same_date_us_closes(tmp_path: Path, baba_close_0518: float) -> None:
    """BABA bought at the 2022-05-17 US close with 40% (4,000 x 100). The 0700.HK market-on-close order of
    2022-05-18 (08:00 UTC) is sized from the equity known before it: 600,000 + 4,000 x BABA's 05-17 close (100)
    = 1,000,000 -> 400,000 = 10,400 shares at 300 / 7.80. BABA's 05-18 close (20:00 UTC) cannot change it."""
    baba = flat("XNYS", 100.0)
    baba.loc["2022-05-18", ["close", "adj_close", "low"]] = baba_close_0518
    store = store_of(tmp_path, {"BABA": baba, "0700.HK": flat("XHKG", 300.0)})
    config = cfg(("BABA", "0700.HK"), size=0.4, fill="close", params={"hold": 5})
    _, trades, _ = both(config, store, [US_CLOSE, HK_CLOSE])
    hk = [t for t in trades if t["symbol"] == "0700.HK"]
    assert [(t["entry_date"], t["size"]) for t in hk] == [("2022-05-18", 10_400)]


def test_fill_close_sizing_on_real_data(imported: PriceStore, tmp_path: Path) -> None:
    """The seed run with --fill close; halving only BABA's 2022-05-18 close (20:00 UTC) leaves the HK entries of
    the 2022-05-18 HK close (08:00 UTC) alone (before the clock, 4 of the 6 changed size)."""
    config = seed_config(fill="close")
    before = backtest.run(config, imported).report["trades"]
    baba = imported.load("BABA")
    baba.loc["2022-05-18", ["close", "adj_close"]] /= 2
    baba.loc["2022-05-18", "low"] = baba.loc["2022-05-18", "close"]
    changed = copy_store(imported, tmp_path / "changed", {"BABA": baba})
    after = backtest.run(config, changed).report["trades"]
    def hk_entries(trades: list[dict]) -> list[tuple]:
        return [(t["symbol"], t["size"], t["entry_price"]) for t in trades
                if t["symbol"].endswith(".HK") and t["entry_date"] == "2022-05-18"]

    assert len(hk_entries(before)) == 6  # 0700, 9988, 3690, 9618, 9999, 9888 (the CPPCC symposium)
    assert hk_entries(after) == hk_entries(before)


# ---------------------------------------------------------------------------------------------- measurement 3

HOLD3 = event("h3", "2022-03-09", time="20:00", tz="Asia/Hong_Kong")


def test_hold_counts_exchange_sessions_not_bars(tmp_path: Path) -> None:
    """hold 3 from the 2022-03-10 HK open: sessions 03-11, 03-14, 03-15. 9888.HK has no 03-14 bar and still
    exits on 03-15 (it would be 03-16 counting its bars)."""
    gappy = flat("XHKG", 120.0).drop(pd.Timestamp("2022-03-14"))
    store = store_of(tmp_path, {"0700.HK": flat("XHKG", 300.0), "9888.HK": gappy})
    _, trades, _ = both(cfg(("0700.HK", "9888.HK"), params={"hold": 3}, size=0.1), store, [HOLD3])
    assert [(t["symbol"], t["entry_date"], t["exit_date"], t["holding_sessions"]) for t in trades] == [
        ("0700.HK", "2022-03-10", "2022-03-15", 3), ("9888.HK", "2022-03-10", "2022-03-15", 3)]


def test_exit_session_without_a_bar_moves_to_the_next_bar(tmp_path: Path) -> None:
    gappy = flat("XHKG", 120.0).drop(pd.DatetimeIndex(["2022-03-15"]))
    store = store_of(tmp_path, {"9888.HK": gappy})
    _, trades, _ = both(cfg(("9888.HK",), params={"hold": 3}, size=0.1), store, [HOLD3])
    assert [(t["exit_date"], t["holding_sessions"]) for t in trades] == [("2022-03-16", 4)]


def test_hold_in_sessions_on_real_data(imported: PriceStore) -> None:
    assert pd.Timestamp("2022-03-14") not in imported.load("9888.HK").index  # the data gap
    config = cfg(("0700.HK", "9888.HK"), params={"hold": 3}, costs=CostModel(), size=0.05)
    _, trades, _ = both(config, imported, [HOLD3])
    assert [(t["symbol"], t["entry_date"], t["exit_date"]) for t in trades] == [
        ("0700.HK", "2022-03-10", "2022-03-15"), ("9888.HK", "2022-03-10", "2022-03-15")]


# ---------------------------------------------------------------------------------------------- measurement 4

FIRST = event("first", "2023-01-06", time="20:00", tz="Asia/Hong_Kong")  # HK 01-09 open, US 01-09 open
SECOND = event("second", "2023-01-13", time="20:00", tz="Asia/Hong_Kong")  # HK 01-16 open (exit due), US 01-13


@pytest.mark.parametrize("fill", ["open", "close"])
def test_overlap_extend_restarts_the_clock_without_fills_on_every_venue(tmp_path: Path, fill: str) -> None:
    """hold 5 from 2023-01-09: the HK exit is due on 2023-01-16, the day the second signal enters; extend keeps
    the position (no sale and buy-back) and counts 5 HK sessions from 01-16: 17, 18, 19, 20, 26 (Lunar New Year)."""
    store = store_of(tmp_path, {"BABA": flat("XNYS", 100.0), "0700.HK": flat("XHKG", 300.0)})
    config = cfg(("BABA", "0700.HK"), params={"hold": 5}, size=0.1, overlap="extend", fill=fill)
    _, trades, orders = both(config, store, [FIRST, SECOND])
    hk = [t for t in trades if t["symbol"] == "0700.HK"]
    assert [(t["entry_date"], t["exit_date"], t["holding_sessions"]) for t in hk] == [
        ("2023-01-09", "2023-01-26", 10)]
    assert not [o for o in orders if o["date"] == "2023-01-16" and o["status"] == "filled"]
    restarted = [o["symbol"] for o in orders if o["reason"].startswith("already held: hold clock restarted")]
    assert sorted(restarted) == ["0700.HK", "BABA"]


def test_overlap_extend_on_the_seed_run(imported: PriceStore) -> None:
    report = backtest.run(seed_config(), imported).report
    on_0116 = [o for o in report["orders"] if o["date"] == "2023-01-16"]
    assert not [o for o in on_0116 if o["status"] == "filled"]
    assert len([o for o in on_0116 if o["reason"].startswith("already held: hold clock restarted")]) == 6


# ---------------------------------------------------------------------------------------------- real data

SEED = ["BABA", "JD", "NTES", "BIDU", "TCEHY", "PDD", "BILI",
        "0700.HK", "9988.HK", "3690.HK", "9618.HK", "9999.HK", "9888.HK", "1024.HK"]


@pytest.fixture
def imported(real_import, cache_dir: Path) -> PriceStore:
    real_import([*SEED, "KWEB"])  # `evbt data import` of these CSVs, run once per session (tests/conftest.py)
    return PriceStore(cache_dir, offline=True)


def seed_config(**kw) -> RunConfig:
    from engine.plan.config import make_run_config
    from strategies.registry import get_strategy

    cls = get_strategy("reassurance")
    options = {k: str(v) for k, v in kw.items()}
    return make_run_config("reassurance", (), options, None, cls.default_symbols, cls.Params)


def copy_store(store: PriceStore, root: Path, replace: dict[str, pd.DataFrame]) -> PriceStore:
    out = PriceStore(root, offline=True)
    for symbol in [*SEED, "KWEB"]:
        out.write(symbol, replace.get(symbol, store.load(symbol)), source="csv")
    return out
