"""The backtrader driver: the only module that imports backtrader.

The execution policy (``engine.execution.policy``) decides every fill; backtrader's broker executes them and
keeps the books the report's equity curve comes from. Fill timing:

- each symbol's feed has one bar per session, stamped at the UTC instant of the run's fill point on the
  symbol's own exchange (the session open for fill ``open``, the close for fill ``close``), so backtrader's
  cycles follow the market clock: on a date both trade, HK open, HK close, US open, US close;
- the feed's ``open`` is the fill price in the base currency (the session's open or close) and its ``close``
  the session close (marks). Cerebro runs with cheat-on-open: at each cycle the policy is stepped for that
  instant in ``next_open`` and its orders execute at the feed's ``open``, i.e. at the fill price, in the same
  cycle, for both fill points;
- commissions come from the policy's fee model (``Book.fees``) at the price backtrader executes at;
- after every fill backtrader's cash must equal the policy's: any disagreement (price, fees, a refused order,
  cash) is a ``RunError``, never a silent difference;
- the equity curve has one point per session date, taken from the broker after the last cycle at or before
  that date's last close (``Market.point_at``).

``--allow-margin`` lets the policy spend cash it does not have; backtrader's stock broker cannot hold negative
cash, so the broker is given a credit line (the policy's largest overdraft) that is subtracted from its cash.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import backtrader as bt
import numpy as np
import pandas as pd

from engine.errors import RunError
from engine.execution.books import Book, Market, build_market
from engine.execution.policy import Fill, Policy
from engine.execution.records import OrderRecord, TradeRecord
from engine.market.costs import CostModel
from engine.market.fx import FxRates
from engine.plan.config import RunConfig
from engine.plan.planner import Plan

_TOL = 1e-9


class _CommInfo(bt.CommInfoBase):
    """Fees of one feed at the bar being executed (``Book.fees`` does the arithmetic)."""

    params = (("stocklike", True), ("commtype", bt.CommInfoBase.COMM_FIXED))

    book: Book
    model: CostModel
    data: bt.feeds.PandasDirectData

    def _getcommission(self, size: float, price: float, pseudoexec: bool) -> float:
        # backtrader passes the signed executed size: negative = a sell
        return self.book.fees(self.model, len(self.data) - 1, abs(size), price, "buy" if size > 0 else "sell").total


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
    def __init__(self, policy: Policy, feeds: list[bt.feeds.PandasDirectData], credit: float) -> None:
        self.policy = policy
        self.feeds = feeds
        self.credit = credit
        self.seen = [0] * len(feeds)
        self.tick = -1
        self.pending: dict[int, Fill] = {}
        self.snapshots: list[tuple[int, float, float, float]] = []  # tick, cash, value, gross

    def on_open(self, strategy: bt.Strategy) -> None:
        ticks = set()
        for k, data in enumerate(self.feeds):
            n = len(data)
            if n > self.seen[k]:
                self.seen[k] = n
                ticks.add(self.policy.clock.tick_of[k][n - 1])
        if len(ticks) != 1:
            raise RunError(f"backtrader cycle spans {len(ticks)} fill instants (expected one)")
        self.tick = ticks.pop()
        for fill in self.policy.step(self.tick):
            method = strategy.buy if fill.signed > 0 else strategy.sell
            order = method(data=self.feeds[fill.book], size=abs(fill.signed), exectype=bt.Order.Market)
            self.pending[order.ref] = fill

    def on_order(self, order: bt.Order) -> None:
        if order.status in (order.Submitted, order.Accepted):
            return
        fill = self.pending.pop(order.ref)
        symbol = self.policy.market.books[fill.book].symbol
        if order.status != order.Completed:
            raise RunError(f"backtrader refused a {symbol} order the policy filled ({order.getstatusname()})")
        if not (_near(float(order.executed.price), fill.price_base)
                and _near(float(order.executed.comm), fill.fees.total)
                and int(order.executed.size) == fill.signed):
            raise RunError(f"backtrader executed {symbol} at {order.executed.price} (fees {order.executed.comm}), "
                           f"the policy at {fill.price_base} (fees {fill.fees.total})")

    def on_close(self, strategy: bt.Strategy) -> None:
        broker = strategy.broker
        gross = 0.0
        for data in self.feeds:
            size = broker.getposition(data).size
            if size and len(data):
                gross += abs(size) * float(data.close[0])
        self.snapshots.append((self.tick, broker.getcash() - self.credit, broker.getvalue() - self.credit, gross))

    def curve(self, market: Market) -> pd.DataFrame:
        if self.pending:
            raise RunError(f"{len(self.pending)} orders were not executed by backtrader")
        final_cash = self.snapshots[-1][1] if self.snapshots else self.policy.config.cash
        if not _near(final_cash, self.policy.cash):
            raise RunError(f"backtrader cash {final_cash} differs from the policy's {self.policy.cash}")
        ticks = np.array([s[0] for s in self.snapshots], dtype=np.int64)
        instants = self.policy.clock.instants[ticks]
        last = np.searchsorted(instants, market.point_at, side="right") - 1
        cash = np.array([self.snapshots[j][1] for j in last])
        value = np.array([self.snapshots[j][2] for j in last])
        gross = np.array([self.snapshots[j][3] for j in last])
        exposure = np.where(value != 0, gross / np.where(value != 0, value, 1.0), 0.0)
        frame = pd.DataFrame({"equity": value, "cash": cash, "exposure": exposure}, index=market.index)
        frame.index.name = "date"
        return frame


def _near(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_TOL, abs_tol=1e-6)


def _feed(book: Book, fill: str) -> bt.feeds.PandasDirectData:
    price = book.open_base if fill == "open" else book.close_base
    frame = pd.DataFrame(
        {
            "open": price,  # the fill price: cheat-on-open executes market orders here
            "high": np.maximum(price, book.close_base),
            "low": np.minimum(price, book.close_base),
            "close": book.close_base,  # marks
            "volume": np.ones(len(price)),
            "openinterest": np.zeros(len(price)),
        },
        index=pd.DatetimeIndex(book.fill_instants(fill).astype("datetime64[ns]")),
    )
    return bt.feeds.PandasDirectData(dataname=frame, name=book.symbol, timeframe=bt.TimeFrame.Days)


def _credit_line(market: Market, config: RunConfig, plan: Plan, stop_loss: float | None,
                 take_profit: float | None) -> float:
    """The policy's largest overdraft (0 without ``allow_margin``): a dry run of the same policy."""
    if not config.allow_margin:
        return 0.0
    dry = Policy(market, config, plan, stop_loss, take_profit, records=False)
    dry.run()
    low, cash = float(config.cash), float(config.cash)
    for fill in dry.fills:
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
) -> tuple[list[TradeRecord], list[OrderRecord], pd.DataFrame]:
    """Run the plan through the policy and backtrader. Returns trades, orders and a frame of equity, cash,
    exposure (one row per session date)."""
    if market is None:
        order = list(symbols) if symbols is not None else sorted(frames)
        market = build_market(frames, order, fx_series, None)
    if not market.books:
        raise RunError("no symbol has price data in the run period")
    policy = Policy(market, config, plan, stop_loss, take_profit, records=True)
    credit = _credit_line(market, config, plan, stop_loss, take_profit)
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True, runonce=False, preload=True)
    broker = cerebro.getbroker()
    broker.setcash(config.cash + credit)
    broker.set_coo(True)
    broker.set_checksubmit(False)  # the policy already checked the cash; backtrader still refuses overdrafts
    feeds = []
    for book in market.books:
        data = _feed(book, config.fill)
        cerebro.adddata(data)
        comminfo = _CommInfo()
        comminfo.book, comminfo.model, comminfo.data = book, config.costs, data
        broker.addcommissioninfo(comminfo, name=book.symbol)
        feeds.append(data)
    driver = _Driver(policy, feeds, credit)
    cerebro.addstrategy(_Adapter, driver=driver)
    cerebro.run()
    policy.finish()
    return policy.trades, policy.orders, driver.curve(market)
