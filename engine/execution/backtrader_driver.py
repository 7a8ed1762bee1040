"""The backtrader driver: the only module that imports backtrader.

The execution policy (``engine.execution.policy``) decides every fill; backtrader's broker executes them. The
report's equity curve is the policy's books (``Policy.curve``: cash after every fill, positions at their latest
close), the same arithmetic as the fast path, so both engines write the same report byte for byte; backtrader's
broker cash and value must agree with it at every equity point (1e-9 relative), else ``RunError``. Fill timing:

- feeds have one bar per session, stamped at the UTC instant of the run's fill point on the symbol's own
  exchange (the session open for fill ``open``, the close for fill ``close``), so backtrader's cycles follow
  the market clock: on a date both trade, HK open, HK close, US open, US close;
- a bar's ``open`` is the fill price in the base currency (the session's open or close) and its ``close`` the
  session close (marks). Cerebro runs with cheat-on-open: the policy's fills of each cycle's instant are
  submitted in ``next_open`` and execute at the bar's ``open``, i.e. at the fill price, in the same cycle, for
  both fill points;
- commissions come from the policy's fee model (``Book.fees``) at the price backtrader executes at;
- after every cycle backtrader's cash must equal the policy's, and every fill must execute at the policy's
  price, fees and size: any disagreement (or a fill without a bar) is a ``RunError``, never a silent difference.

Backtrader is fed only what can move the books (``engine.execution.spans``): the bars of each symbol from a
fill that opens a position to the fill that closes it (to its last bar if it stays open), packed into as few
feeds as there are positions open at once. The policy runs first (it never reads the broker); its fills are
then submitted cycle by cycle. Outside those spans a symbol holds nothing, so the equity curve is exactly the
one of feeding every symbol every session: one point per session date, taken after the last cycle at or before
that date's last close (``Market.point_at``), the start capital before the first cycle, positions summed in the
order backtrader's broker sums them when fed every symbol (``spans.value_order``), with backtrader's own value
arithmetic (checked against the broker's value at every cycle). ``run_backtest(..., spans=False)`` feeds every
symbol every session (the reference the tests compare the broker's values with, float for float).

``--allow-margin`` lets the policy spend cash it does not have; backtrader's stock broker cannot hold negative
cash, so the broker is given a credit line (the policy's largest overdraft) that is subtracted from its cash.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import backtrader as bt
import numpy as np
import pandas as pd

from engine.errors import RunError
from engine.execution.books import Book, Market, build_market
from engine.execution.policy import Fill, Policy
from engine.execution.records import OrderRecord, TradeRecord
from engine.execution.spans import Span, pack_slots, position_spans, value_order, whole_books
from engine.market.costs import CostModel
from engine.market.fx import FxRates
from engine.plan.config import RunConfig
from engine.plan.planner import Plan

_TOL = 1e-9


@dataclass
class _Slot:
    """One feed: per feed bar, the book it belongs to, that book's bar and the tick of its fill instant."""

    data: bt.feeds.PandasDirectData
    books: list[int]
    bars: list[int]
    ticks: list[int]


class _CommInfo(bt.CommInfoBase):
    """Fees of one feed at the bar being executed (``Book.fees`` does the arithmetic)."""

    params = (("stocklike", True), ("commtype", bt.CommInfoBase.COMM_FIXED))

    market: Market
    model: CostModel
    slot: _Slot

    def _getcommission(self, size: float, price: float, pseudoexec: bool) -> float:
        j = len(self.slot.data) - 1
        book = self.market.books[self.slot.books[j]]
        # backtrader passes the signed executed size: negative = a sell
        return book.fees(self.model, self.slot.bars[j], abs(size), price, "buy" if size > 0 else "sell").total


class _Adapter(bt.Strategy):
    """Forwards backtrader's callbacks to the driver."""

    params = (("driver", None),)

    def prenext_open(self) -> None:
        self.p.driver.on_open(self)

    def next_open(self) -> None:
        self.p.driver.on_open(self)

    def prenext(self) -> None:
        self.p.driver.on_close(self)

    def next(self) -> None:
        self.p.driver.on_close(self)

    def notify_order(self, order: bt.Order) -> None:
        self.p.driver.on_order(order)


class _Driver:
    def __init__(self, policy: Policy, slots: list[_Slot], credit: float, start_cash: float) -> None:
        self.policy = policy
        self.slots = slots
        self.credit = credit
        self.start_cash = start_cash  # what the broker was given: the policy's cash plus the credit line
        self.seen = [0] * len(slots)
        self.tick = -1
        self.fills_at: dict[int, list[Fill]] = {}
        cash = float(policy.config.cash)
        self.fill_ticks: list[int] = []
        self.cash_after: list[float] = []  # the policy's cash after the fills of each fill tick
        for fill in policy.fills:
            self.fills_at.setdefault(fill.tick, []).append(fill)
            cash += fill.cash_delta  # the policy's own arithmetic, fill by fill
            if self.fill_ticks and self.fill_ticks[-1] == fill.tick:
                self.cash_after[-1] = cash
            else:
                self.fill_ticks.append(fill.tick)
                self.cash_after.append(cash)
        order = value_order(policy.fills, len(policy.market.books))
        self.rank = [0] * len(order)
        for r, k in enumerate(order):
            self.rank[k] = r
        self.submitted = 0
        self.pending: dict[int, Fill] = {}
        self.snapshots: list[tuple[int, float, float]] = []  # tick, cash, value (the broker's, less the credit)
        self.broker_values: list[float] = []  # backtrader's own value at each snapshot (tests compare)

    def symbol(self, book: int) -> str:
        return self.policy.market.books[book].symbol

    def on_open(self, strategy: bt.Strategy) -> None:
        ticks = set()
        hosts: dict[int, tuple[int, int]] = {}  # book -> (slot, bar) of the bars of this cycle
        for k, slot in enumerate(self.slots):
            n = len(slot.data)
            if n > self.seen[k]:
                self.seen[k] = n
                ticks.add(slot.ticks[n - 1])
                hosts[slot.books[n - 1]] = (k, slot.bars[n - 1])
        if len(ticks) != 1:
            raise RunError(f"backtrader cycle spans {len(ticks)} fill instants (expected one)")
        self.tick = ticks.pop()
        for fill in self.fills_at.get(self.tick, ()):
            host = hosts.get(fill.book)
            if host is None or host[1] != fill.bar:
                raise RunError(f"backtrader has no {self.symbol(fill.book)} bar for a fill of the policy "
                               f"(bar {fill.bar}, tick {fill.tick})")
            method = strategy.buy if fill.signed > 0 else strategy.sell
            order = method(data=self.slots[host[0]].data, size=abs(fill.signed), exectype=bt.Order.Market)
            self.pending[order.ref] = fill
            self.submitted += 1

    def on_order(self, order: bt.Order) -> None:
        if order.status in (order.Submitted, order.Accepted):
            return
        fill = self.pending.pop(order.ref)
        symbol = self.symbol(fill.book)
        if order.status != order.Completed:
            raise RunError(f"backtrader refused a {symbol} order the policy filled ({order.getstatusname()})")
        if not (_near(float(order.executed.price), fill.price_base)
                and _near(float(order.executed.comm), fill.fees.total)
                and int(order.executed.size) == fill.signed):
            raise RunError(f"backtrader executed {symbol} at {order.executed.price} (fees {order.executed.comm}), "
                           f"the policy at {fill.price_base} (fees {fill.fees.total})")

    def on_close(self, strategy: bt.Strategy) -> None:
        broker = strategy.broker
        cash = broker.getcash()
        done = bisect.bisect_right(self.fill_ticks, self.tick)
        expected = self.cash_after[done - 1] if done else float(self.policy.config.cash)
        if not _near(cash - self.credit, expected):
            raise RunError(f"backtrader cash {cash - self.credit} differs from the policy's {expected} "
                           f"(tick {self.tick})")
        held: list[tuple[int, bt.feeds.PandasDirectData]] = []
        for slot in self.slots:
            data = slot.data
            size = broker.getposition(data).size  # every feed, as before spans: the broker's position order
            n = len(data)
            if size and n:
                held.append((slot.books[n - 1], data))
        value = cash + _positions_value(broker, [d for _, d in sorted(held, key=lambda h: self.rank[h[0]])])
        if not _near(value, broker.getvalue()):
            raise RunError(f"backtrader value {broker.getvalue()} differs from its positions' {value}")
        self.snapshots.append((self.tick, cash - self.credit, value - self.credit))
        self.broker_values.append(broker.getvalue() - self.credit)

    def curve(self, market: Market) -> pd.DataFrame:
        if self.pending:
            raise RunError(f"{len(self.pending)} orders were not executed by backtrader")
        if self.submitted != len(self.policy.fills):
            raise RunError(f"{len(self.policy.fills) - self.submitted} fills of the policy had no backtrader cycle")
        # before the first cycle: the broker's start cash and value (no position), less the credit line
        start = (np.iinfo(np.int64).min, self.start_cash - self.credit, (self.start_cash + 0.0) - self.credit)
        snapshots = [start, *self.snapshots]
        final_cash = snapshots[-1][1]
        if not _near(final_cash, self.policy.cash):
            raise RunError(f"backtrader cash {final_cash} differs from the policy's {self.policy.cash}")
        ticks = np.array([s[0] for s in self.snapshots], dtype=np.int64)
        instants = np.concatenate([[start[0]], self.policy.clock.instants[ticks]]).astype(np.int64)
        last = np.searchsorted(instants, market.point_at, side="right") - 1
        broker_cash = [snapshots[j][1] for j in last]
        broker_value = [snapshots[j][2] for j in last]
        # The report's curve is the policy's books (cash after every fill, positions at their closes: the fast
        # path's arithmetic, so a sweep's kept report is byte for byte `evbt run`'s), checked point by point
        # against what backtrader's broker holds after executing the same fills.
        equity, cash, exposure = self.policy.curve()
        for p, (b_cash, b_value) in enumerate(zip(broker_cash, broker_value, strict=True)):
            if not (_near(b_cash, float(cash[p])) and _near(b_value, float(equity[p]))):
                raise RunError(f"backtrader's broker holds cash {b_cash}, value {b_value} on "
                               f"{market.index[p].date()}; the policy's books {cash[p]}, {equity[p]}")
        frame = pd.DataFrame({"equity": equity, "cash": cash, "exposure": exposure}, index=market.index)
        frame.index.name = "date"
        return frame


def _positions_value(broker: bt.BrokerBase, datas: Sequence[bt.feeds.PandasDirectData]) -> float:
    """The positions' part of the broker's value, summed over ``datas`` in that order with the arithmetic of
    backtrader's ``BackBroker._get_value`` (its default ``shortcash``): longs at their unlevered value plus
    unrealised profit, shorts at their (negative) size times the close."""
    total = 0.0
    for data in datas:
        comminfo = broker.getcommissioninfo(data)
        position = broker.getposition(data)
        close = data.close[0]
        value = comminfo.getvaluesize(position.size, close)
        unrealized = comminfo.profitandloss(position.size, position.price, close)
        if value > 0:
            value -= unrealized
            total += value / comminfo.get_leverage()
            total += unrealized
        else:
            total += value
    return total


def _near(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_TOL, abs_tol=1e-6)


def _slot(spans: Sequence[Span], market: Market, fill: str, name: str) -> _Slot:
    books = market.books
    clock = market.clock(fill)
    price = np.concatenate([_fill_prices(books[s.book], fill)[s.first: s.last + 1] for s in spans])
    close = np.concatenate([books[s.book].close_base[s.first: s.last + 1] for s in spans])
    instants = np.concatenate([books[s.book].fill_instants(fill)[s.first: s.last + 1] for s in spans])
    frame = pd.DataFrame(
        {
            "open": price,  # the fill price: cheat-on-open executes market orders here
            "high": np.maximum(price, close),
            "low": np.minimum(price, close),
            "close": close,  # marks
            "volume": np.ones(len(price)),
            "openinterest": np.zeros(len(price)),
        },
        index=pd.DatetimeIndex(instants.astype("datetime64[ns]")),
    )
    data = bt.feeds.PandasDirectData(dataname=frame, name=name, timeframe=bt.TimeFrame.Days)
    return _Slot(
        data=data,
        books=[s.book for s in spans for _ in range(s.last - s.first + 1)],
        bars=[i for s in spans for i in range(s.first, s.last + 1)],
        ticks=[t for s in spans for t in clock.tick_of[s.book][s.first: s.last + 1].tolist()],
    )


def _fill_prices(book: Book, fill: str) -> np.ndarray:
    return book.open_base if fill == "open" else book.close_base


def _credit_line(config: RunConfig, fills: Sequence[Fill]) -> float:
    """The policy's largest overdraft (0 without ``allow_margin``)."""
    if not config.allow_margin:
        return 0.0
    low, cash = float(config.cash), float(config.cash)
    for fill in fills:
        cash += fill.cash_delta
        low = min(low, cash)
    return max(0.0, -low) * 2 + 1.0


def run_backtest(
    config: RunConfig,
    frames: dict[str, pd.DataFrame],
    plan: Plan,
    fx_series: FxRates | pd.Series | None,
    stop_loss: float | None = None,
    take_profit: float | None = None,
    symbols: Sequence[str] | None = None,
    market: Market | None = None,
    spans: bool = True,
) -> tuple[list[TradeRecord], list[OrderRecord], pd.DataFrame]:
    """Run the plan through the policy and backtrader. Returns trades, orders and a frame of equity, cash,
    exposure (one row per session date). ``spans=False`` feeds backtrader every bar of every symbol."""
    if market is None:
        order = list(symbols) if symbols is not None else sorted(frames)
        market = build_market(frames, order, fx_series, None)
    if not market.books:
        raise RunError("no symbol has price data in the run period")
    policy = Policy(market, config, plan, stop_loss, take_profit, records=True)
    policy.run()
    credit = _credit_line(config, policy.fills)
    start_cash = config.cash + credit
    lengths = [len(book.dates) for book in market.books]
    if spans:
        packed = pack_slots(position_spans(policy.fills, lengths))
        names = [f"slot{j}" for j in range(len(packed))]
    else:
        clock = market.clock(config.fill)
        packed = whole_books(lengths, [ticks.item(0) for ticks in clock.tick_of])
        names = [market.books[s[0].book].symbol for s in packed]
    slots = [_slot(group, market, config.fill, name) for group, name in zip(packed, names, strict=True)]
    driver = _Driver(policy, slots, credit, start_cash)
    if slots:  # no fill: nothing for backtrader to execute, the curve is the start capital throughout
        cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True, runonce=False, preload=True)
        broker = cerebro.getbroker()
        broker.setcash(start_cash)
        broker.set_coo(True)
        broker.set_checksubmit(False)  # the policy already checked the cash; backtrader still refuses overdrafts
        for slot, name in zip(slots, names, strict=True):
            cerebro.adddata(slot.data)
            comminfo = _CommInfo()
            comminfo.market, comminfo.model, comminfo.slot = market, config.costs, slot
            broker.addcommissioninfo(comminfo, name=name)
        cerebro.addstrategy(_Adapter, driver=driver)
        cerebro.run()
    policy.finish()
    return policy.trades, policy.orders, driver.curve(market)
