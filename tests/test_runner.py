"""The backtrader facade: fill timing, exits, costs, lots, cash, overlap, guards, multi-exchange, identities."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine import backtest
from engine.market.costs import CostModel
from engine.plan.config import RunConfig
from engine.prices.store import PriceStore
from engine.reporting.report import dumps_report
from tests.engine_helpers import event, frame_on_sessions, recompute_trade

START, END = dt.date(2022, 3, 1), dt.date(2022, 6, 30)


@pytest.fixture
def store(tmp_path: Path) -> PriceStore:
    s = PriceStore(tmp_path / "cache", offline=True)
    s.write("BABA", frame_on_sessions("XNYS", "2021-10-01", "2022-06-30", seed=1), source="csv")
    s.write("JD", frame_on_sessions("XNYS", "2021-10-01", "2022-06-30", seed=2, base=60), source="csv")
    s.write("0700.HK", frame_on_sessions("XHKG", "2021-10-01", "2022-06-30", seed=3, base=300), source="csv")
    s.write("9988.HK", frame_on_sessions("XHKG", "2021-10-01", "2022-06-30", seed=4, base=90), source="csv")
    s.write("KWEB", frame_on_sessions("XNYS", "2021-10-01", "2022-06-30", seed=5, base=30), source="csv")
    return s


def config(**kw) -> RunConfig:
    base = dict(strategy="event_hold", params={"hold": 5}, symbols=("BABA", "0700.HK"), start=START, end=END,
                cash=100_000.0,
                costs=CostModel(commission_pct=0.001, min_commission=1.0, slippage_bps=5, stamp_duty_rate=0.0013))
    base.update(kw)
    return RunConfig(**base)


FSDC = event("fsdc", "2022-03-16", time="14:00", tz="Asia/Hong_Kong")  # HK afternoon session
CPPCC = event("cppcc", "2022-05-17", time="19:00")  # Beijing evening


def trades_by(outcome, symbol):
    return [t for t in outcome.report["trades"] if t["symbol"] == symbol]


def test_open_fill_timing_each_exchange(store):
    out = backtest.run(config(), store, events=[FSDC, CPPCC])
    us, hk = trades_by(out, "BABA"), trades_by(out, "0700.HK")
    # HK afternoon news: US same-day open, HK next open. Beijing evening readout: US same day, HK next day.
    assert [t["entry_date"] for t in us] == ["2022-03-16", "2022-05-17"]
    assert [t["entry_date"] for t in hk] == ["2022-03-17", "2022-05-18"]
    baba = store.load("BABA")
    for t in us:
        assert t["entry_price"] == baba.loc[t["entry_date"], "open"]
        # exit exactly 5 of the symbol's own sessions later, at the open
        pos = baba.index.get_loc(pd.Timestamp(t["entry_date"]))
        assert t["exit_date"] == str(baba.index[pos + 5].date())
        assert t["exit_price"] == baba.iloc[pos + 5]["open"]
        assert t["holding_sessions"] == 5


def test_close_fill_timing(store):
    out = backtest.run(config(fill="close"), store, events=[FSDC])
    hk = trades_by(out, "0700.HK")[0]
    us = trades_by(out, "BABA")[0]
    assert hk["entry_date"] == "2022-03-16"  # market-on-close order placed after the afternoon news
    assert us["entry_date"] == "2022-03-16"
    tencent = store.load("0700.HK")
    assert hk["entry_price"] == tencent.loc["2022-03-16", "close"]
    pos = tencent.index.get_loc(pd.Timestamp("2022-03-16"))
    assert hk["exit_price"] == tencent.iloc[pos + 5]["close"]


def test_hk_holiday_skipped_and_session_count_on_own_calendar(store):
    # Buddha's Birthday 2022-05-09 closes HK; US trades. Hold counts each exchange's own sessions.
    ev = event("weekend", "2022-05-07", time="10:00")  # Saturday
    out = backtest.run(config(), store, events=[ev])
    hk = trades_by(out, "0700.HK")[0]
    us = trades_by(out, "BABA")[0]
    assert us["entry_date"] == "2022-05-09"
    assert hk["entry_date"] == "2022-05-10"
    assert hk["exit_date"] == "2022-05-17"  # 5 HK sessions: 11, 12, 13, 16, 17


def test_every_trade_recomputes_from_raw_prices_fees_and_fill_rule(store):
    cfg = config(symbols=("BABA", "JD", "0700.HK", "9988.HK"))
    out = backtest.run(cfg, store, events=[FSDC, CPPCC])
    assert out.report["fx_source"] == "7.80 peg"
    assert len(out.report["trades"]) == 8
    for t in out.report["trades"]:
        hk = t["symbol"].endswith(".HK")
        want = recompute_trade(t, store.load(t["symbol"]), 7.8 if hk else 1.0, pct=0.001, minimum=1.0, bps=5,
                               stamp=0.0013, hk=hk)
        assert t["entry_price"] == want["entry_price"]
        assert t["exit_price"] == want["exit_price"]
        assert t["fees"] == pytest.approx(want["fees"], rel=1e-9)
        assert t["pnl"] == pytest.approx(want["pnl"], rel=1e-9)


def test_board_lots_and_stamp_duty(store):
    out = backtest.run(config(symbols=("0700.HK",), size=0.1), store, events=[FSDC])
    t = out.report["trades"][0]
    assert t["size"] % 100 == 0 and t["size"] > 0
    value_hkd = t["size"] * t["entry_price"]
    # 10% of 100k USD at 7.8 -> at most 78,000 HKD of stock, whole lots
    assert value_hkd <= 78_000 < value_hkd + 100 * t["entry_price"]
    stamp_hkd = math.ceil(0.0013 * value_hkd - 1e-9)
    # 2022: HKEX trading fee 0.005%, SFC levy 0.0027%, AFRC levy 0.00015%, each to the nearest cent in HKD
    levies_hkd = sum(round(rate * value_hkd + 1e-9, 2) for rate in (0.00005, 0.000027, 0.0000015))
    commission = 0.001 * value_hkd / 7.8
    slippage = 5e-4 * value_hkd / 7.8
    assert t["entry_fees"] == pytest.approx((stamp_hkd + levies_hkd) / 7.8 + commission + slippage, rel=1e-12)


def test_minimum_commission_applies(store):
    cfg = config(symbols=("BABA",), costs=CostModel(commission_pct=0.0001, min_commission=25.0, slippage_bps=0))
    t = backtest.run(cfg, store, events=[FSDC]).report["trades"][0]
    assert t["entry_fees"] == 25.0
    # the sell also pays the SEC fee ($5.10 per million sold in March 2022), rounded up to the cent
    sec_fee = math.ceil(5.10e-6 * t["size"] * t["exit_price"] * 100) / 100
    assert sec_fee > 0 and t["exit_fees"] == pytest.approx(25.0 + sec_fee, rel=1e-12)


def test_insufficient_cash_is_refused_and_reported(store):
    cfg = config(symbols=("BABA", "JD"), sizing="percent", size=0.8)
    out = backtest.run(cfg, store, events=[FSDC])
    refused = [o for o in out.report["orders"] if o["status"] == "refused"]
    assert len(out.report["trades"]) == 1
    assert refused and "insufficient cash" in refused[0]["reason"]
    assert out.result.cash.min() >= 0


def test_shorts_need_permission(store):
    cfg = config(params={"hold": 5, "side": "short"}, symbols=("BABA",))
    out = backtest.run(cfg, store, events=[FSDC])
    assert out.report["trades"] == []
    assert any("shorts not allowed" in o["reason"] for o in out.report["orders"])
    out = backtest.run(config(params={"hold": 5, "side": "short"}, symbols=("BABA",), allow_short=True),
                       store, events=[FSDC])
    t = out.report["trades"][0]
    assert t["side"] == "short"
    assert t["pnl"] == pytest.approx(t["size"] * (t["entry_price"] - t["exit_price"]) - t["fees"], rel=1e-9)


# Event a (2022-04-01 10:00 ET, during the session) enters at the 04-04 open; event b (04-05 10:00 ET) comes while
# BABA is held and would enter at the 04-06 open. XNYS sessions: 04-04, 05, 06, 07, 08, 11, 12, 13.
@pytest.mark.parametrize(("overlap", "want_trades", "order_b"), [
    ("extend", [("a", "2022-04-04", "2022-04-13")], ("skipped", "hold clock restarted")),  # 5 sessions after 04-06
    ("ignore", [("a", "2022-04-04", "2022-04-11")], ("skipped", "overlap=ignore")),  # 5 after 04-04, b dropped
    ("add", [("a", "2022-04-04", "2022-04-11"), ("b", "2022-04-06", "2022-04-13")], ("filled", "entry")),  # 2 clocks
])
def test_overlap_policies(store, overlap, want_trades, order_b):
    first = event("a", "2022-04-01", time="10:00", tz="America/New_York", scope="single", symbols=["BABA"])
    second = event("b", "2022-04-05", time="10:00", tz="America/New_York", scope="single", symbols=["BABA"])
    out = backtest.run(config(symbols=("BABA",), overlap=overlap), store, events=[first, second])
    assert [(t["event_id"], t["entry_date"], t["exit_date"]) for t in out.report["trades"]] == want_trades
    assert all(t["exit_reason"] == "hold" for t in out.report["trades"])
    orders_b = [o for o in out.report["orders"] if o["event_id"] == "b"]
    assert orders_b and orders_b[0]["status"] == order_b[0] and order_b[1] in orders_b[0]["reason"]


def test_stop_loss_exits_at_next_fill_point(tmp_path):
    store = PriceStore(tmp_path / "c", offline=True)
    closes = [100.0] * 20 + [100, 90, 80, 80, 80, 80, 80, 80, 80, 80] + [80.0] * 60
    opens = [c + 0.5 for c in closes]
    store.write("BABA", frame_on_sessions("XNYS", "2022-02-01", "2022-05-31", opens=opens, closes=closes),
                source="csv")
    bars = store.load("BABA")
    ev = event("e", str(bars.index[19].date()), time="20:00", tz="America/New_York", scope="single",
               symbols=["BABA"])  # after the close of bar 19 -> entry at open of bar 20
    cfg = config(symbols=("BABA",), start=dt.date(2022, 2, 1), end=dt.date(2022, 5, 31), benchmark=None,
                 params={"hold": 10, "stop_loss": 0.05})
    t = backtest.run(cfg, store, events=[ev]).report["trades"][0]
    assert t["entry_date"] == str(bars.index[20].date())
    assert t["exit_reason"] == "stop_loss"
    assert t["exit_date"] == str(bars.index[22].date())  # close of bar 21 (90) is -10.4%: exit at open of 22
    assert t["exit_price"] == 80.5


def test_no_lookahead_prices_after_fill_cannot_change_it(store, tmp_path):
    out = backtest.run(config(symbols=("BABA",)), store, events=[FSDC])
    t = out.report["trades"][0]
    frame = store.load("BABA")
    entry = pd.Timestamp(t["entry_date"])
    changed = frame.copy()
    after = changed.index > entry
    changed.loc[after, ["open", "high", "low", "close", "adj_close"]] *= 3.0
    changed.loc[entry, ["close", "high"]] *= 2.0  # the fill bar's later prices too (fill is at its open)
    other = PriceStore(tmp_path / "changed", offline=True)
    other.write("BABA", changed, source="csv")
    other.write("KWEB", store.load("KWEB"), source="csv")
    t2 = backtest.run(config(symbols=("BABA",)), other, events=[FSDC]).report["trades"][0]
    assert (t2["entry_date"], t2["entry_price"], t2["size"], t2["entry_fees"]) == (
        t["entry_date"], t["entry_price"], t["size"], t["entry_fees"])


def test_multi_exchange_no_bar_dropped_or_duplicated(store):
    out = backtest.run(config(symbols=("BABA", "0700.HK")), store, events=[FSDC])
    union = store.load("BABA").loc["2022-03-01":"2022-06-30"].index.union(
        store.load("0700.HK").loc["2022-03-01":"2022-06-30"].index)
    assert list(out.result.equity.index) == list(union)


def test_accounting_identities(store):
    cfg = config(symbols=("BABA", "JD", "0700.HK", "9988.HK"), overlap="add")
    events = [FSDC, CPPCC, event("x", "2022-03-18", time="12:00")]
    out = backtest.run(cfg, store, events=events)
    trades = out.report["trades"]
    final = out.result.equity.iloc[-1]
    # all positions closed: equity change equals the sum of trade PnL (net of all fees)
    assert all(t["exit_date"] for t in trades)
    assert final - cfg.cash == pytest.approx(sum(t["pnl"] for t in trades), rel=1e-9, abs=1e-6)
    assert np.allclose(out.result.cash.iloc[-1], final)


def test_determinism_byte_identical_report(store):
    a = backtest.run(config(symbols=("BABA", "0700.HK")), store, events=[FSDC, CPPCC])
    b = backtest.run(config(symbols=("BABA", "0700.HK")), store, events=[FSDC, CPPCC])
    assert dumps_report(a.report) == dumps_report(b.report)


def test_equal_sizing_splits_event_allotment(store):
    out = backtest.run(config(symbols=("BABA", "JD"), sizing="equal", size=0.2), store, events=[FSDC])
    for t in out.report["trades"]:
        assert t["entry_value"] <= 10_000 + 1e-6
        assert t["entry_value"] > 10_000 - t["entry_price"]


def test_cash_sizing(store):
    out = backtest.run(config(symbols=("BABA",), sizing="cash", size=5000), store, events=[FSDC])
    t = out.report["trades"][0]
    assert t["size"] == math.floor(5000 / t["entry_price"])


def test_fx_uses_the_last_quote_strictly_before_the_bar():
    from engine.execution.books import fx_for

    bars = pd.DataFrame(index=pd.DatetimeIndex(["2022-03-01", "2022-03-02", "2022-03-04"]))
    fx = pd.Series([7.81, 7.82, 7.83], index=pd.DatetimeIndex(["2022-03-01", "2022-03-02", "2022-03-03"]))
    # a quote dated D is known from 00:00 UTC of D+1, before the HK open of D+1; the first bar has no earlier
    # quote, so it takes the peg (the series' first quote would come from its future)
    assert list(fx_for(bars, fx, "0700.HK")) == [7.80, 7.81, 7.83]
    assert list(fx_for(bars, None, "0700.HK")) == [7.80] * 3  # the HKD peg
    assert list(fx_for(bars, fx, "BABA")) == [1.0] * 3


def test_hkd_series_used_and_reported(store):
    fx_dates = pd.bdate_range("2021-10-01", "2022-06-30")
    fx_frame = pd.DataFrame({"open": 7.8, "high": 7.9, "low": 7.7, "close": np.linspace(7.75, 7.85, len(fx_dates)),
                             "adj_close": 7.8, "volume": 0.0, "stale": False}, index=fx_dates.rename("date"))
    fx_frame["adj_close"] = fx_frame["close"]
    fx_frame["volume"] = 1.0
    store.write("HKD=X", fx_frame, source="csv")
    out = backtest.run(config(symbols=("0700.HK",)), store, events=[FSDC])
    assert out.report["fx_source"] == "HKD=X series"
    t = out.report["trades"][0]
    prior = fx_frame["close"].loc[: pd.Timestamp(t["entry_date"]) - pd.Timedelta(days=1)].iloc[-1]
    assert t["fx_entry"] == prior
    want = recompute_trade(t, store.load("0700.HK"), fx_frame["close"].shift(1).dropna(), pct=0.001, minimum=1.0,
                           bps=5, stamp=0.0013, hk=True)
    assert t["pnl"] == pytest.approx(want["pnl"], rel=1e-9)


def test_trade_list_itemises_each_fill_by_hand(store):
    """Each fill's fees item by item, recomputed from the bar, the FX peg and the published rates (no engine code):
    0700.HK bought at the 2022-03-17 HK open: commission 0.1%, slippage 5 bps, stamp duty 0.13% rounded up to a
    whole HKD, HKEX trading fee 0.005%, SFC levy 0.0027% and AFRC levy 0.00015% to the nearest HKD cent; BABA
    sold: SEC fee on the sell only."""
    import math

    out = backtest.run(config(costs=CostModel(commission_pct=0.001, slippage_bps=5)), store, events=[FSDC])
    hk = trades_by(out, "0700.HK")[0]
    value_usd = hk["size"] * hk["entry_price"] / 7.80
    items = dict(pair.split("=") for pair in hk["entry_fee_items"].split(";"))
    assert list(items)[:3] == ["commission", "slippage", "stamp_duty"]
    hkd = value_usd * 7.80
    expected = {"commission": 0.001 * value_usd, "slippage": 0.0005 * value_usd,
                "stamp_duty": math.ceil(0.0013 * hkd) / 7.80,  # whole HKD, rounded up
                "trading_fee": round(0.00005 * hkd, 2) / 7.80,  # HKD cents, nearest
                "sfc_levy": round(0.000027 * hkd, 2) / 7.80, "afrc_levy": round(0.0000015 * hkd, 2) / 7.80}
    for item, amount in expected.items():
        assert float(items[item]) == pytest.approx(amount, abs=6e-5), item
    assert sum(float(v) for v in items.values()) == pytest.approx(hk["entry_fees"], abs=5e-4)
    baba = trades_by(out, "BABA")[0]
    assert "sec_fee=" in baba["exit_fee_items"] and "sec_fee=" not in baba["entry_fee_items"]
