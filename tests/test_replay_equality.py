"""The replay with records equals the replay before its speed-ups (tests/replay_reference.py: the policy at
commit 62fdc34 with the fee, date, instant and market-array code of then), record for record and float for
float: generated markets (US and HK books on their own sessions, some starting late or ending early, stale
bars, a bar on a day that is not a session, a NaN close) and generated plans (entries long and short, exits,
event exits, holds, weights, stop-loss / take-profit / trailing stops) under generated configurations (fill,
sizing, overlap, shorts, margin, portfolio limits, costs), and the real seed data through ``evbt run`` and a
sweep's kept report.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.execution.books import IsoDates, build_market
from engine.execution.clock import iso_utc, iso_utc_many, session_instants, session_instants_many
from engine.execution.fast_driver import simulate
from engine.execution.records import OrderRecord, TradeRecord, records_of
from engine.market.costs import CostModel, order_fees
from engine.market.symbols import listing
from engine.plan.config import RunConfig
from engine.plan.planner import NO_EXITS, Plan, PlannedAction
from strategies.base import Exits
from tests.engine_helpers import frame_on_sessions
from tests.replay_reference import (
    iso_utc as reference_iso_utc,
)
from tests.replay_reference import (
    reference_market,
    reference_order_fees,
    reference_replay,
    reference_session_instants,
)

SYMBOLS = {"BABA": "XNYS", "0700.HK": "XHKG", "JD": "XNYS", "9988.HK": "XHKG"}
START, END = "2022-01-03", "2022-05-31"
_FRAMES: dict[tuple[str, int], pd.DataFrame] = {}


def _base_frame(symbol: str, seed: int) -> pd.DataFrame:
    key = (symbol, seed)
    if key not in _FRAMES:
        _FRAMES[key] = frame_on_sessions(SYMBOLS[symbol], START, END, seed=seed,
                                         base=300.0 if symbol.endswith(".HK") else 80.0)
    return _FRAMES[key].copy()


@st.composite
def markets(draw: st.DrawFn) -> dict[str, pd.DataFrame]:
    names = draw(st.lists(st.sampled_from(sorted(SYMBOLS)), min_size=1, max_size=4, unique=True))
    frames = {}
    for symbol in names:
        frame = _base_frame(symbol, draw(st.integers(0, 3)))
        lo = draw(st.integers(0, 30))
        hi = len(frame) - draw(st.integers(0, 30))
        frame = frame.iloc[lo:hi].copy()
        for _ in range(draw(st.integers(0, 4))):  # placeholder bars never fill
            frame.iloc[draw(st.integers(0, len(frame) - 1)), frame.columns.get_loc("stale")] = True
        if draw(st.booleans()) and draw(st.booleans()):  # a bar dated a Saturday (not a session)
            at = draw(st.integers(1, len(frame) - 2))
            day = frame.index[at]
            saturday = day + pd.Timedelta(days=(5 - day.weekday()) % 7 or 7)
            if saturday < frame.index[at + 1]:
                row = frame.iloc[[at]].copy()
                row.index = pd.DatetimeIndex([saturday], name="date")
                frame = pd.concat([frame, row]).sort_index()
        if draw(st.integers(0, 9)) == 0:
            frame.iloc[draw(st.integers(0, len(frame) - 1)), frame.columns.get_loc("close")] = np.nan
        frames[symbol] = frame
    return frames


@st.composite
def plans(draw: st.DrawFn, frames: dict[str, pd.DataFrame]) -> Plan:
    actions: dict[str, list[PlannedAction]] = {}
    seq = 0
    for symbol, frame in frames.items():
        rows = []
        for _ in range(draw(st.integers(0, 12))):
            bar = draw(st.integers(0, len(frame) - 1))
            kind = draw(st.sampled_from(["enter", "enter", "enter", "exit", "event_exit"]))
            side = draw(st.sampled_from(["long", "long", "short"]))
            exits = NO_EXITS
            if kind == "enter" and draw(st.booleans()):
                exits = Exits(stop_loss=draw(st.none() | st.sampled_from([0.03, 0.08])),
                              take_profit=draw(st.none() | st.sampled_from([0.05, 0.2])),
                              trailing_stop=draw(st.none() | st.sampled_from([0.04, 0.1])),
                              on_events=draw(st.sampled_from([(), ("analyst_downgrade",)])))
            rows.append(PlannedAction(
                symbol, bar, frame.index[bar], kind, side,
                draw(st.none() | st.integers(1, 15)) if kind == "enter" else None, f"e{seq}",
                "analyst_downgrade" if kind == "event_exit" else "analyst_upgrade", None,
                draw(st.integers(1, 3)), draw(st.none() | st.sampled_from([0.02, 0.3])), seq, exits))
            seq += 1
        if rows:
            actions[symbol] = sorted(rows, key=lambda a: (a.bar, a.seq))
    return Plan(actions, [], [])


@st.composite
def configs(draw: st.DrawFn, symbols: tuple[str, ...]) -> RunConfig:
    sizing = draw(st.sampled_from(["percent", "cash", "equal"]))
    margin = draw(st.booleans())
    size = (draw(st.sampled_from([20_000.0, 150_000.0, 600_000.0])) if sizing == "cash"
            else draw(st.sampled_from([0.05, 0.2, 0.6] + ([1.5] if margin else []))))
    costs = CostModel(commission_pct=draw(st.sampled_from([0.0, 0.001, 0.0025])),
                      min_commission=draw(st.sampled_from([0.0, 5.0])), slippage_bps=draw(st.sampled_from([0.0, 5.0])),
                      stamp_duty_rate=draw(st.sampled_from([None, None, 0.001])), venue_fees=draw(st.booleans()))
    return RunConfig(
        strategy="event_hold", params={}, symbols=symbols, start=dt.date(2022, 1, 3), end=dt.date(2022, 5, 31),
        cash=draw(st.sampled_from([100_000.0, 1_000_000.0])), costs=costs,
        fill=draw(st.sampled_from(["open", "close"])),
        benchmark=None, sizing=sizing, size=size, overlap=draw(st.sampled_from(["extend", "ignore", "add"])),
        allow_short=draw(st.booleans()), allow_margin=margin,
        max_positions=draw(st.none() | st.integers(1, 4)), max_gross=draw(st.none() | st.sampled_from([0.3, 1.0])),
        max_weight=draw(st.none() | st.sampled_from([0.1, 0.5])),
    )


def assert_same_replay(got: Any, want: tuple[Any, ...]) -> None:
    trades, orders, equity, cash, exposure = want
    # record by record, field by field: repr shows every float exactly and a NaN as nan (NaN != NaN)
    assert [type(t) for t in got.trades] == [TradeRecord] * len(trades)
    assert [type(o) for o in got.orders] == [OrderRecord] * len(orders)
    assert list(map(repr, got.trades)) == list(map(repr, trades))
    assert list(map(repr, got.orders)) == list(map(repr, orders))
    for name, a, b in (("equity", got.equity, equity), ("cash", got.cash, cash), ("exposure", got.exposure, exposure)):
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), name


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_replay_equals_the_reference_on_generated_markets_and_plans(data: st.DataObject) -> None:
    frames = data.draw(markets())
    symbols = tuple(frames)
    plan = data.draw(plans(frames))
    config = data.draw(configs(symbols))
    stop = data.draw(st.none() | st.sampled_from([0.05, 0.1]))
    take = data.draw(st.none() | st.sampled_from([0.1]))
    for records in (True, False):
        try:
            want = reference_replay(reference_market(frames, list(symbols)), config, plan, stop, take,
                                    records=records)
        except ValueError as exc:  # a fill at a NaN close: the same error, nothing else
            with pytest.raises(type(exc), match=str(exc)):
                simulate(build_market(frames, list(symbols), None, None), config, plan, stop, take, records=records)
            continue
        got = simulate(build_market(frames, list(symbols), None, None), config, plan, stop, take, records=records)
        assert_same_replay(got, want)


def test_a_sweep_market_replayed_twice_gives_the_reference_both_times() -> None:
    """The arrays a market keeps between points (clock, marks, shared instants) do not leak one run into the next."""
    frames = {s: _base_frame(s, 1) for s in SYMBOLS}
    plan = Plan({s: [PlannedAction(s, b, f.index[b], "enter", "long", 5, f"{s}{b}", "t", None, 1, None, b)
                     for b in range(2, len(f) - 5, 7)] for s, f in frames.items()}, [], [])
    config = RunConfig(strategy="event_hold", params={}, symbols=tuple(frames), start=dt.date(2022, 1, 3),
                       end=dt.date(2022, 5, 31), benchmark=None, size=0.3)
    market = build_market(frames, list(frames), None, None)
    want = reference_replay(reference_market(frames, list(frames)), config, plan)
    for _ in range(2):
        assert_same_replay(simulate(market, config, plan), want)
    assert len(want[0]) > 20 and any(o.status == "refused" for o in want[1])  # the case has refusals to write


# ---------------------------------------------------------------- the pieces, against their old code


@settings(max_examples=40, deadline=None)
@given(frames=markets())
def test_instants_per_exchange_equal_the_per_book_instants(frames: dict[str, pd.DataFrame]) -> None:
    for exchange in ("XNYS", "XHKG"):
        indexes = [f.index for s, f in frames.items() if SYMBOLS[s] == exchange]
        indexes += indexes[:1]  # the same dates twice: one shared result
        for got, index in zip(session_instants_many(exchange, indexes), indexes, strict=True):
            want = reference_session_instants(exchange, index)
            assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(got, want, strict=True))
            assert not any(a.flags.writeable for a in got)  # shared between books: never written
        if len(indexes) > 1:
            assert session_instants_many(exchange, indexes)[0][0] is not None
    one = next(iter(frames.values())).index
    exchange = SYMBOLS[next(iter(frames))]
    for a, b in zip(session_instants(exchange, one), reference_session_instants(exchange, one), strict=True):
        assert np.array_equal(a, b)


def test_books_on_the_same_days_share_their_instant_arrays() -> None:
    frames = {"BABA": _base_frame("BABA", 0), "JD": _base_frame("JD", 1), "0700.HK": _base_frame("0700.HK", 0)}
    market = build_market(frames, list(frames), None, None)
    clock = market.clock("open")
    baba, jd, hk = market.books
    assert baba.close_at is jd.close_at and baba.close_at is not hk.close_at
    assert clock.tick_of[0] is clock.tick_of[1]


@given(days=st.lists(st.integers(-800_000, 2_900_000), min_size=1, max_size=30),
       unit=st.sampled_from(["s", "ms", "us", "ns", "D"]), seconds=st.integers(0, 86_399))
def test_iso_dates_equal_the_datetime64_cast(days: list[int], unit: str, seconds: int) -> None:
    stamps = (np.array(days, dtype="datetime64[D]").astype("datetime64[s]") + np.timedelta64(seconds, "s"))
    index = pd.DatetimeIndex(stamps.astype(f"datetime64[{unit}]")) if unit != "D" else \
        pd.DatetimeIndex(stamps.astype("datetime64[D]").astype("datetime64[s]"))
    dates = IsoDates(index)
    raw = index.to_numpy()
    for i in range(len(days)):
        assert dates[i] == str(raw[i].astype("datetime64[D]"))
    assert dates[-1] == str(raw[-1].astype("datetime64[D]"))


@given(ns=st.lists(st.integers(0, 4_102_444_800 * 10**9), max_size=30))
def test_utc_instants_in_one_pass_equal_strftime(ns: list[int]) -> None:
    assert iso_utc_many(np.array(ns, dtype=np.int64)) == [reference_iso_utc(v) for v in ns] == [iso_utc(v)
                                                                                                  for v in ns]


@given(size=st.integers(-5_000, 5_000), price=st.floats(0.01, 5_000.0), fx=st.sampled_from([1.0, 7.8, 7.8123]),
       side=st.sampled_from([None, "buy", "sell"]), day=st.dates(dt.date(2012, 1, 1), dt.date(2025, 12, 31)),
       symbol=st.sampled_from(["BABA", "0700.HK", "^GSPC", "VOD.L"]), stamp=st.sampled_from([None, 0.001, 0]),
       venue_fees=st.booleans(), minimum=st.sampled_from([0.0, 15.0]))
def test_fees_equal_the_rules_looked_up_per_fill(size: int, price: float, fx: float, side: str | None,
                                                  day: dt.date, symbol: str, stamp: float | None,
                                                  venue_fees: bool, minimum: float) -> None:
    model = CostModel(min_commission=minimum, stamp_duty_rate=stamp, venue_fees=venue_fees)
    info = listing(symbol)
    for when in (day.isoformat(), None):
        got = order_fees(model, size, price, hk=info.is_hk, fx=fx, side=side, day=when, listing=info)
        want = reference_order_fees(model, size, price, hk=info.is_hk, fx=fx, side=side, day=when, listing=info)
        assert list(got.items()) == list(want.items()) and got.total == want.total


def test_records_from_rows_equal_the_dataclass_init() -> None:
    order = ("2022-01-03", "BABA", "buy", 10, "filled", "entry", "e1", 80.5, 1.25)
    trade = tuple(range(len(dataclasses.fields(TradeRecord))))
    assert records_of(OrderRecord, [order]) == [OrderRecord(*order)]
    assert records_of(TradeRecord, [trade]) == [TradeRecord(*trade)]
    made = records_of(OrderRecord, [order])[0]
    assert vars(made) == vars(OrderRecord(*order)) and hash(made) == hash(OrderRecord(*order))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.size = 3  # type: ignore[misc]


# ---------------------------------------------------------------- real seed data


SEED = ["BABA", "JD", "NTES", "BIDU", "TCEHY", "PDD", "BILI",
        "0700.HK", "9988.HK", "3690.HK", "9618.HK", "9999.HK", "9888.HK", "1024.HK"]


@pytest.mark.parametrize("options", [{}, {"fill": "close", "sizing": "cash", "size": "150000", "overlap": "add",
                                          "max_positions": "6"}])
def test_seed_data_replay_equals_the_reference(real_import: Any, cache_dir: Path, options: dict[str, str]) -> None:
    """The seed run's window as a sweep point replays it (real prices, HK and US books, the HKD peg)."""
    from engine.plan.config import make_run_config
    from engine.prices.store import PriceStore
    from engine.sweeps.data import load_sweep_data
    from engine.sweeps.evaluate import SweepCaches, plan_for
    from engine.sweeps.windows import make_windows
    from strategies.registry import get_strategy

    real_import([*SEED, "KWEB"])
    store = PriceStore(cache_dir, offline=True)
    cls = get_strategy("reassurance")
    config = make_run_config("reassurance", (), options, None, cls.default_symbols, cls.Params)
    windows = make_windows(config.start, config.end, None, None)
    data = load_sweep_data(store, config, windows)
    caches = SweepCaches()
    wctx = caches.context(data, windows[0])
    plan = plan_for(data, wctx, config, caches.typed_params(config.strategy, config.params))
    frames, fx = wctx.frames, wctx.fx_series
    bench = wctx.bench_frame["close"] if wctx.bench_frame is not None else None
    for records in (True, False):
        got = simulate(build_market(frames, wctx.symbols, fx, bench), config, plan, records=records)
        want = reference_replay(reference_market(frames, wctx.symbols, fx, bench), config, plan, records=records)
        assert_same_replay(got, want)
    assert len(want[0]) >= 5 and {t.symbol[-3:] == ".HK" for t in want[0]} == {True, False}
    assert not math.isnan(float(want[2][-1]))
