"""The replay's shortcuts equal the long way they replace, value for value (the frozen references in
tests/test_replay_equality.py check whole runs; these pin each shortcut on the cases it has to get right):

- a refused order prices only its fees' total (``engine.market.costs.fee_totals``): the same float as the
  itemised ``order_fees(...).total``, on every venue, side, rate period, rounding and cost setting;
- a refusal's text in a replay is what the eagerly priced order gives (fees that differ by market: HK stamp duty
  and levies in HKD, the US SEC fee on sells, none on US buys);
- ``make_book`` reads the columns from the frame's blocks: the values ``frame[name].to_numpy(dtype)`` gives, read
  only as pandas gives them, whatever the frame's layout (other layouts take the public path).
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.execution.books import _BOOK_COLUMNS, _columns, build_market, make_book
from engine.execution.clock import bar_instants
from engine.execution.fast_driver import simulate
from engine.market.costs import CostModel, fee_totals, order_fees
from engine.market.symbols import listing
from engine.plan.config import RunConfig
from engine.plan.planner import Plan, PlannedAction
from engine.prices.validate import COLUMNS, build_frame
from tests.engine_helpers import frame_on_sessions

# listings whose venues charge differently (US: SEC fee on sells; HK: stamp duty, trading fee and levies on both
# sides, in HKD; SSE: stamp duty on sells; LSE: stamp duty on buys; TSE: no venue rows; an index: no venue fees)
LISTINGS = ["BABA", "0700.HK", "600519.SS", "VOD.L", "7203.T", "^HSI"]
# both sides of rate changes (HK stamp duty 2021-08-01 and 2023-11-17, AFRC levy 2022-01-01, HK trading fee
# 2023-01-01, US SEC fee 2022-05-14 and 2023-02-27, SSE stamp duty 2023-08-28)
DAYS = ["2021-07-30", "2021-08-02", "2021-12-31", "2022-01-03", "2022-05-13", "2022-05-16", "2022-12-30",
        "2023-01-03", "2023-02-24", "2023-02-27", "2023-08-25", "2023-08-28", "2023-11-16", "2023-11-17"]
MODELS = [CostModel(), CostModel(0.0, 0.0, 0.0), CostModel(0.0025, 5.0, 5.0), CostModel(stamp_duty_rate=0.002),
          CostModel(0.001, 0.0, 5.0, venue_fees=False)]


@settings(max_examples=400, deadline=None)
@given(symbol=st.sampled_from([*LISTINGS, None]), hk=st.booleans(), model=st.sampled_from(MODELS),
       side=st.sampled_from(["buy", "sell"]), day=st.sampled_from([*DAYS, None]),
       size=st.sampled_from([0, 1, 7, 100, 1_300, 25_000, -400]),
       price=st.floats(0.01, 5_000.0, allow_nan=False), fx=st.sampled_from([1.0, 7.8, 7.8123, 0.79, 149.3]))
def test_a_fee_total_is_the_itemised_total(symbol: str | None, hk: bool, model: CostModel, side: str,
                                           day: str | None, size: int, price: float, fx: float) -> None:
    info = listing(symbol) if symbol is not None else None
    total = fee_totals(model, info, hk)
    expected = order_fees(model, size, price, hk=hk, fx=fx, side=side, day=day, listing=info).total
    assert total(size, price, fx, side, day) == expected
    assert total(size, price, fx, side, day) == expected  # the rules looked up once per (day, side) stay right


def test_a_fee_total_raises_what_order_fees_raises_on_a_bad_side() -> None:
    with pytest.raises(ValueError, match="side must be buy or sell"):
        fee_totals(CostModel(), listing("BABA"))(10, 5.0, 1.0, "hold", "2022-03-01")


def _entries(frame: pd.DataFrame, symbol: str, seq0: int) -> list[PlannedAction]:
    """A long entry on every third bar: with overlap=add, more than the cash buys, so many are refused."""
    return [PlannedAction(symbol, bar, frame.index[bar], "enter", "long", 5, f"e{seq0 + bar}", "analyst_upgrade",
                          None, 1, None, seq0 + bar) for bar in range(0, len(frame) - 1, 3)]


@pytest.mark.parametrize("fill", ["open", "close"])
@pytest.mark.parametrize("costs", [CostModel(), CostModel(0.0025, 5.0, 5.0, stamp_duty_rate=0.002)])
def test_refusals_price_what_the_eager_order_prices(fill: str, costs: CostModel) -> None:
    frames = {"BABA": frame_on_sessions("XNYS", "2022-04-01", "2023-03-31", seed=4, base=90.0),
              "0700.HK": frame_on_sessions("XHKG", "2022-04-01", "2023-03-31", seed=5, base=320.0),
              "JD": frame_on_sessions("XNYS", "2022-04-01", "2023-03-31", seed=6, base=60.0)}
    plan = Plan({s: _entries(f, s, 1000 * n) for n, (s, f) in enumerate(frames.items())}, [], [])
    config = RunConfig(strategy="event_hold", params={}, symbols=tuple(frames), start=dt.date(2022, 4, 1),
                       end=dt.date(2023, 3, 31), cash=200_000.0, costs=costs, fill=fill, sizing="percent", size=0.3,
                       overlap="add")
    market = build_market(frames, list(frames), None, None)
    result = simulate(market, config, plan)
    refused = [o for o in result.orders if o.status == "refused"]
    by_symbol = {b.symbol: b for b in market.books}
    venues = {by_symbol[o.symbol].listing.venue for o in refused}
    assert venues == {"US", "HK"} and len(refused) > 50  # the case the shortcut has to get right
    for order in refused:
        book = by_symbol[order.symbol]
        i = list(book.dates).index(order.date)
        price_base = book.fill_price(i, fill) / book.fx.item(i)
        cash = float(re.match(r"insufficient cash \((-?[\d.]+) available", order.reason).group(1))
        fees = order_fees(costs, order.size, price_base, hk=book.hk, fx=book.fx.item(i), side=order.action,
                          day=order.date, listing=book.listing)
        assert order.reason == f"insufficient cash ({cash:.2f} available, " \
                               f"{-(-order.size * price_base - fees.total):.2f} needed)"


def _price_frame(n: int = 40) -> pd.DataFrame:
    dates = pd.date_range("2022-01-03", periods=n, freq="B")
    rng = np.random.default_rng(3)
    block = rng.uniform(10, 20, (n, len(COLUMNS) - 1))
    stale = np.zeros(n, dtype=bool)
    stale[[4, 9]] = True
    return build_frame(pd.DatetimeIndex(dates.values, name="date"), block, stale)


def _layouts() -> list[pd.DataFrame]:
    price = _price_frame()
    reordered = price[["stale", "close", "volume", "open"]].copy()
    mixed = pd.DataFrame({"close": price["close"].astype("float32"), "open": price["open"].to_numpy(),
                          "stale": price["stale"].astype(object)}, index=price.index)
    nullable = pd.DataFrame({"open": pd.array(price["open"], dtype="Float64"), "close": price["close"].to_numpy(),
                             "stale": pd.array(price["stale"], dtype="boolean")}, index=price.index)
    return [price, price.iloc[5:30], reordered, mixed, nullable]


@pytest.mark.parametrize("layout", range(5))
def test_book_columns_are_what_the_frame_gives(layout: int) -> None:
    frame = _layouts()[layout]
    arrays = _columns(frame, _BOOK_COLUMNS)
    for (name, dtype), values in zip(_BOOK_COLUMNS, arrays, strict=True):
        public = frame[name].to_numpy(dtype=dtype)
        assert values.dtype == public.dtype and np.array_equal(values, public)
        assert values.flags.writeable == public.flags.writeable  # views read-only, as pandas gives them


def test_price_frames_are_read_from_their_blocks_without_copies() -> None:
    frame = _price_frame()
    book = make_book("BABA", frame.iloc[3:], None)
    block = frame._mgr.blocks[0].values  # the (columns x rows) float block the cache's frames are built on
    assert np.shares_memory(book.open, block) and np.shares_memory(book.close, block)
    assert np.array_equal(book.close, frame["close"].to_numpy()[3:])
    # stale bars 4 and 9 of the frame are bars 1 and 6 of the book: each moves to the next real bar
    assert book.next_tradable.tolist() == [0, 2, 2, 3, 4, 5, 7, 7, *range(8, 37)]
    assert make_book("BABA", frame.iloc[10:20], None).next_tradable.tolist() == list(range(10))  # none stale


def test_books_with_equal_dates_share_their_instants_per_exchange() -> None:
    """``Market.bar_instants`` reads each exchange's distinct bar dates once: books on equal dates get the arrays
    ``bar_instants`` gives each of them alone, an HK book on the very dates of a US book its own HK instants, and
    the equity points and marks are what each book's own arrays give."""
    us = frame_on_sessions("XNYS", "2022-03-01", "2022-05-31", seed=1)
    frames = {"0700.HK": us.copy(), "BABA": us, "JD": us.copy(),  # an HK book on US dates, first
              "PDD": us.iloc[5:].copy(), "9988.HK": frame_on_sessions("XHKG", "2022-03-01", "2022-05-31", seed=2)}
    market = build_market(frames, list(frames), None, None)
    assert market._date_group == [0, 0, 0, 1, 2]
    market.bar_instants()
    for book in market.books:
        alone = bar_instants(book.exchange, book.index)
        for name in ("open_at", "close_at", "session"):
            assert np.array_equal(getattr(book.instants, name), getattr(alone, name)), (book.symbol, name)
    hk, baba, jd = market.books[:3]
    assert baba.instants is jd.instants and hk.close_at.tolist() != baba.close_at.tolist()
    point_at = np.full(market.n_points, np.iinfo(np.int64).min)
    for book in market.books:
        np.maximum.at(point_at, market.index.searchsorted(book.index), book.close_at)
    assert np.array_equal(market.point_at, np.maximum.accumulate(point_at))
    for k, book in enumerate(market.books):
        last = np.searchsorted(book.close_at, market.point_at, side="right") - 1
        assert np.array_equal(market.closes_on_points(k), np.where(last >= 0, book.close_base[np.maximum(last, 0)], 0))


@pytest.mark.parametrize("fill", ["open", "close"])
def test_the_agenda_reads_each_actions_bar_as_its_book_does(fill: str) -> None:
    """An entry reads its bar's fill price, FX rate and date from the agenda (gathered for every action at
    once): the values ``Book.fill_price``, ``Book.fx`` and ``Book.dates`` give, HKD books at their daily rate, and
    a book whose dates are not day numbers read date by date."""
    frames = {"BABA": frame_on_sessions("XNYS", "2022-01-03", "2022-06-30", seed=1),
              "0700.HK": frame_on_sessions("XHKG", "2022-01-03", "2022-06-30", seed=2, base=300.0),
              "JD": frame_on_sessions("XNYS", "2022-02-01", "2022-05-31", seed=3, base=60.0)}
    plan = Plan({s: [PlannedAction(s, bar, f.index[bar], kind, "long", 5, f"e{bar}", "analyst_upgrade", None, 1,
                                   None, bar) for bar in range(0, len(f), 4) for kind in ("enter", "exit")]
                 for s, f in frames.items()}, [], [])
    days = pd.date_range("2021-12-20", "2022-07-05", freq="D")
    hkd = pd.Series(7.8 + 0.001 * np.sin(np.arange(len(days))), index=days)  # HKD=X quotes moving daily
    for plain in (False, True):
        market = build_market(frames, list(frames), hkd, None)
        if plain:
            market.books[1].dates = list(market.books[1].dates)  # a plain list of dates
        agenda, flat = market.agenda(plan, fill)
        assert len(agenda.prices) == len(agenda.fxs) == len(agenda.days) == len(flat)
        by_symbol = {b.symbol: b for b in market.books}
        for j, action in enumerate(flat):
            book = by_symbol[action.symbol]
            assert agenda.prices[j] == book.fill_price(action.bar, fill)
            assert agenda.fxs[j] == book.fx.item(action.bar)
            assert agenda.days[j] == book.dates[action.bar] == str(book.index[action.bar].date())
