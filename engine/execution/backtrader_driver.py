"""The backtrader facade: the only module that imports backtrader.

``run_backtest`` feeds the run's price frames (converted to the base currency with a daily FX rate),
executes a precomputed ``Plan`` bar by bar inside one internal adapter strategy, and returns plain data
(``RunResult``). Fill timing is pinned down explicitly:

- fill ``open``: cerebro runs with cheat-on-open; orders are submitted in ``next_open`` of the fill bar
  and execute at that bar's open. Sizing uses equity at the previous close and the fill bar's open
  (a notional "buy X dollars at the open" order).
- fill ``close``: the broker runs with cheat-on-close; orders submitted in ``next`` of the fill bar execute
  at that bar's close (backtrader books them at the start of the following cycle; the trade list carries the
  fill bar's date and price).

Orders are only ever submitted for a feed that produced a bar in the current cycle, so HK and US feeds with
different calendars never fill on a stale bar. Exits after ``hold`` sessions count the symbol's own bars.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import backtrader as bt
import numpy as np
import pandas as pd

from engine.errors import RunError
from engine.execution.records import OrderRecord, TradeRecord, round_trip
from engine.execution.sizing import entry_size
from engine.market.costs import CostModel, order_fees
from engine.market.fx import FxRates, as_rates
from engine.market.symbols import Listing, listing
from engine.plan.config import RunConfig
from engine.plan.planner import Plan, PlannedAction

HKD_PEG = 7.80


@dataclass
class _Lot:
    """One open position opened by one entry (``add`` overlap creates several lots per symbol)."""

    trade_id: int
    symbol: str
    side: str
    size: int
    entry_bar: int
    entry_price: float  # local currency, raw bar price
    fx_entry: float
    event_id: str
    event_type: str
    exit_due: int | None
    exit_reason: str = "hold"
    entry_fees: float = 0.0
    entry_exec: float = 0.0  # base-currency price backtrader executed at
    filled: bool = False
    exiting: bool = False


@dataclass
class _Book:
    """Per-symbol arrays and state the executor needs."""

    symbol: str
    data: object  # the backtrader feed
    comminfo: _CommInfo
    dates: np.ndarray
    open: np.ndarray  # local currency
    close: np.ndarray
    stale: np.ndarray
    fx: np.ndarray  # local units per base unit at each bar
    lot_size: int
    hk: bool
    actions: dict[int, list[PlannedAction]]
    lots: list[_Lot]
    seen: int = 0  # len(data) at the last cycle


class _CommInfo(bt.CommInfoBase):
    """Commission + slippage + HK stamp duty for one feed (``engine.market.costs`` does the arithmetic)."""

    params = (("stocklike", True), ("commtype", bt.CommInfoBase.COMM_FIXED))

    model: CostModel
    hk: bool
    fx: float
    day: object = None  # trade date of the order being executed (set at submission, like fx)
    listing: Listing | None = None

    def _getcommission(self, size: float, price: float, pseudoexec: bool) -> float:
        # backtrader passes the signed executed size: negative = a sell
        return order_fees(self.model, size, price, hk=self.hk, fx=self.fx, day=self.day, listing=self.listing).total


class _Adapter(bt.Strategy):
    """Forwards backtrader's callbacks to the plain-Python executor."""

    params = (("executor", None),)

    def __init__(self) -> None:
        self.p.executor.bind(self)

    def prenext_open(self) -> None:
        self.p.executor.on_open()

    def next_open(self) -> None:
        self.p.executor.on_open()

    def prenext(self) -> None:
        self.p.executor.on_close()

    def next(self) -> None:
        self.p.executor.on_close()

    def notify_order(self, order: bt.Order) -> None:
        self.p.executor.on_order(order)


class _Executor:
    def __init__(self, config: RunConfig, books: list[_Book], stop_loss: float | None = None,
                 take_profit: float | None = None) -> None:
        self.config = config
        self.books = books
        self.stop_loss = stop_loss
        self.take_profit = take_profit
        self.strategy: bt.Strategy | None = None
        self.trades: list[TradeRecord] = []
        self.orders: list[OrderRecord] = []
        self.equity: list[tuple[pd.Timestamp, float, float, float]] = []
        self._pending: dict[int, tuple[str, _Lot, _Book, int, float]] = {}
        self._advanced: list[tuple[_Book, int]] = []
        self._next_trade_id = 1

    def bind(self, strategy: bt.Strategy) -> None:
        self.strategy = strategy

    # ------------------------------------------------------------------ cycle callbacks

    def _detect_advanced(self) -> None:
        advanced = []
        for book in self.books:
            n = len(book.data)
            if n > book.seen:
                book.seen = n
                advanced.append((book, n - 1))
        self._advanced = advanced

    def on_open(self) -> None:
        self._detect_advanced()
        self._decide(price_field="open")

    def on_close(self) -> None:
        if self.config.fill == "close":
            self._detect_advanced()
            self._decide(price_field="close")
        self._check_guards()
        self._record_equity()

    # ------------------------------------------------------------------ decisions at a fill point

    def _decide(self, price_field: str) -> None:
        broker = self.strategy.broker
        cash = broker.getcash()
        equity = broker.getvalue()
        tradable = [(b, i) for b, i in self._advanced if not b.stale[i]]
        for book, i in self._advanced:
            if book.stale[i]:  # never fill on a placeholder bar: exits due here move to the next bar
                for lot in book.lots:
                    if lot.exit_due is not None and lot.exit_due <= i:
                        lot.exit_due = i + 1
        for book, i in tradable:  # exits first, so their proceeds fund this cycle's entries
            price = float(getattr(book, price_field)[i])
            for lot in list(book.lots):
                if lot.filled and not lot.exiting and lot.exit_due is not None and lot.exit_due <= i:
                    cash += self._submit_exit(book, lot, i, price, lot.exit_reason)
            for action in book.actions.get(i, []):
                if action.action == "exit":
                    for lot in list(book.lots):
                        if lot.filled and not lot.exiting and lot.side == action.side:
                            cash += self._submit_exit(book, lot, i, price, "signal")
        for book, i in tradable:
            price = float(getattr(book, price_field)[i])
            for action in book.actions.get(i, []):
                if action.action == "enter":
                    cash += self._enter(book, action, i, price, cash, equity)

    def _enter(self, book: _Book, action: PlannedAction, i: int, price: float, cash: float, equity: float) -> float:
        cfg = self.config
        date = _iso(book.dates[i])
        verb = "buy" if action.side == "long" else "sell"
        same = [lot for lot in book.lots if lot.side == action.side and not lot.exiting]
        opposite = [lot for lot in book.lots if lot.side != action.side and lot.filled and not lot.exiting]
        if same and cfg.overlap != "add":
            if cfg.overlap == "extend":
                for lot in same:
                    lot.exit_due = None if action.hold is None else i + action.hold
                    lot.exit_reason = "hold"
                reason = "already held: hold clock restarted (overlap=extend)"
            else:
                reason = "already held (overlap=ignore)"
            self.orders.append(OrderRecord(date, book.symbol, verb, 0, "skipped", reason, action.event_id))
            return 0.0
        if action.side == "short" and not cfg.allow_short:
            self.orders.append(OrderRecord(date, book.symbol, verb, 0, "refused",
                                           "shorts not allowed (use --allow-short)", action.event_id))
            return 0.0
        released = sum(self._submit_exit(book, lot, i, price, "signal") for lot in opposite)
        cash += released
        fx = float(book.fx[i])
        price_base = price / fx
        target, size = entry_size(cfg, action, equity, price_base, book.lot_size)
        if size <= 0:
            self.orders.append(OrderRecord(date, book.symbol, verb, 0, "skipped",
                                           f"target {target:.2f} is below one board lot ({book.lot_size})",
                                           action.event_id))
            return released
        fees = order_fees(cfg.costs, size, price_base, hk=book.hk, fx=fx,
                          side="buy" if action.side == "long" else "sell", day=book.dates[i],
                          listing=book.comminfo.listing).total
        delta = -(size * price_base + fees) if action.side == "long" else size * price_base - fees
        if action.side == "long" and cash + delta < 0 and not cfg.allow_margin:
            self.orders.append(OrderRecord(date, book.symbol, verb, size, "refused",
                                           f"insufficient cash ({cash:.2f} available, {-delta:.2f} needed)",
                                           action.event_id))
            return released
        lot = _Lot(
            trade_id=self._next_trade_id,
            symbol=book.symbol,
            side=action.side,
            size=size,
            entry_bar=i,
            entry_price=price,
            fx_entry=fx,
            event_id=action.event_id,
            event_type=action.event_type,
            exit_due=None if action.hold is None else i + action.hold,
        )
        self._next_trade_id += 1
        book.lots.append(lot)
        self._submit(book, lot, "entry", i, price, size if action.side == "long" else -size)
        return released + delta

    def _submit_exit(self, book: _Book, lot: _Lot, i: int, price: float, reason: str) -> float:
        lot.exiting = True
        lot.exit_reason = reason
        fx = float(book.fx[i])
        price_base = price / fx
        fees = order_fees(self.config.costs, lot.size, price_base, hk=book.hk, fx=fx,
                          side="sell" if lot.side == "long" else "buy", day=book.dates[i],
                          listing=book.comminfo.listing).total
        self._submit(book, lot, "exit", i, price, -lot.size if lot.side == "long" else lot.size)
        value = lot.size * price_base
        return (value - fees) if lot.side == "long" else (-value - fees)

    def _submit(self, book: _Book, lot: _Lot, kind: str, i: int, price: float, signed_size: int) -> None:
        book.comminfo.fx = float(book.fx[i])
        book.comminfo.day = book.dates[i]
        method = self.strategy.buy if signed_size > 0 else self.strategy.sell
        order = method(data=book.data, size=abs(signed_size), exectype=bt.Order.Market)
        self._pending[order.ref] = (kind, lot, book, i, price)

    # ------------------------------------------------------------------ broker notifications

    def on_order(self, order: bt.Order) -> None:
        if order.status in (order.Submitted, order.Accepted):
            return
        kind, lot, book, i, price = self._pending.pop(order.ref)
        date = _iso(book.dates[i])
        verb = "buy" if order.isbuy() else "sell"
        if order.status != order.Completed:
            status = order.getstatusname().lower()
            self.orders.append(OrderRecord(date, book.symbol, verb, abs(int(order.created.size)), "refused",
                                           f"broker: {status}", lot.event_id))
            if kind == "entry":
                book.lots.remove(lot)
            else:
                lot.exiting = False
            return
        fees = float(order.executed.comm)
        self.orders.append(OrderRecord(date, book.symbol, verb, abs(int(order.executed.size)), "filled", kind,
                                       lot.event_id, price, fees))
        if kind == "entry":
            lot.filled = True
            lot.entry_fees = fees
            lot.entry_exec = float(order.executed.price)
        else:
            book.lots.remove(lot)
            self.trades.append(self._trade(lot, book, i, price, float(order.executed.price), fees, lot.exit_reason))

    def _trade(self, lot: _Lot, book: _Book, i: int, price: float, exec_price: float, exit_fees: float,
               reason: str) -> TradeRecord:
        entry_value, pnl, ret = round_trip(lot.side, lot.size, lot.entry_exec, exec_price, lot.entry_fees, exit_fees)
        fill = self.config.fill
        is_open = reason == "open"
        return TradeRecord(
            trade_id=lot.trade_id,
            symbol=lot.symbol,
            side=lot.side,
            event_id=lot.event_id,
            event_type=lot.event_type,
            entry_date=_iso(book.dates[lot.entry_bar]),
            entry_fill=fill,
            entry_price=lot.entry_price,
            exit_date=None if is_open else _iso(book.dates[i]),
            exit_fill=None if is_open else fill,
            exit_price=price,
            size=lot.size,
            fx_entry=lot.fx_entry,
            fx_exit=float(book.fx[i]),
            entry_fees=lot.entry_fees,
            exit_fees=exit_fees,
            fees=lot.entry_fees + exit_fees,
            entry_value=entry_value,
            pnl=pnl,
            ret=ret,
            exit_reason=reason,
            holding_sessions=i - lot.entry_bar,
        )

    # ------------------------------------------------------------------ guards and bookkeeping

    def _check_guards(self) -> None:
        """Stop-loss / take-profit on closes; a hit exits at the next fill point of that symbol."""
        stop, take = self.stop_loss, self.take_profit
        if stop is None and take is None:
            return
        for book, i in self._advanced:
            close = float(book.close[i])
            for lot in book.lots:
                if not lot.filled or lot.exiting or (i <= lot.entry_bar and self.config.fill == "close"):
                    continue
                move = close / lot.entry_price - 1.0
                ret = move if lot.side == "long" else -move
                reason = None
                if stop is not None and ret <= -stop:
                    reason = "stop_loss"
                elif take is not None and ret >= take:
                    reason = "take_profit"
                if reason and (lot.exit_due is None or lot.exit_due > i + 1):
                    lot.exit_due = i + 1
                    lot.exit_reason = reason

    def _record_equity(self) -> None:
        if not self._advanced:
            return
        broker = self.strategy.broker
        date = max(pd.Timestamp(b.dates[i]) for b, i in self._advanced)
        value = broker.getvalue()
        gross = 0.0
        for book in self.books:
            position = broker.getposition(book.data)
            if position.size and len(book.data):
                gross += abs(position.size) * float(book.data.close[0])
        self.equity.append((date, value, broker.getcash(), gross / value if value else 0.0))

    def finish(self) -> None:
        """Open lots are marked to the last close; unfilled orders at the end are reported."""
        for kind, lot, book, i, _price in self._pending.values():
            verb = "buy" if (lot.side == "long") == (kind == "entry") else "sell"
            self.orders.append(OrderRecord(_iso(book.dates[i]), book.symbol, verb, lot.size, "skipped",
                                           "run ended before the fill", lot.event_id))
            if kind == "entry":
                book.lots.remove(lot)
        for book in self.books:
            last = book.seen - 1
            for lot in book.lots:
                if not lot.filled or last < 0:
                    continue
                fx = float(book.fx[last])
                price = float(book.close[last])
                self.trades.append(self._trade(lot, book, last, price, price / fx, 0.0, "open"))
        self.trades.sort(key=lambda t: t.trade_id)


def _iso(value: object) -> str:
    return str(pd.Timestamp(value).date())


def fx_for(frame: pd.DataFrame, fx_series: FxRates | pd.Series | None, hk: bool,
           symbol: str | None = None) -> np.ndarray:
    """Local currency units per base unit at each bar. With ``symbol``: ``engine.market.fx`` rates (any
    currency and base; the last quote known before the bar's session open). Without (older callers): 1 for
    USD listings; for HKD listings the last HKD=X close dated strictly before the bar (bars before the
    series starts use its first quote), else the 7.80 peg."""
    if symbol is not None:
        return as_rates(fx_series).for_bars(symbol, frame.index)
    if isinstance(fx_series, FxRates):
        fx_series = fx_series.series.get("HKD=X")
    if not hk:
        return np.ones(len(frame))
    if fx_series is None or fx_series.empty:
        return np.full(len(frame), HKD_PEG)
    fx_dates = pd.DatetimeIndex(fx_series.index).as_unit("ns")
    bar_dates = pd.DatetimeIndex(frame.index).as_unit("ns")
    pos = fx_dates.searchsorted(bar_dates, side="left") - 1
    values = fx_series.to_numpy(dtype=float)
    return values[np.clip(pos, 0, len(values) - 1)]


def _feed(frame: pd.DataFrame, fx: np.ndarray, name: str) -> bt.feeds.PandasDirectData:
    usd = pd.DataFrame(
        {
            "open": frame["open"].to_numpy() / fx,
            "high": frame["high"].to_numpy() / fx,
            "low": frame["low"].to_numpy() / fx,
            "close": frame["close"].to_numpy() / fx,
            "volume": frame["volume"].to_numpy(dtype=float),
            "openinterest": np.zeros(len(frame)),
        },
        index=pd.DatetimeIndex(frame.index).as_unit("ns"),
    )
    return bt.feeds.PandasDirectData(dataname=usd, name=name, timeframe=bt.TimeFrame.Days)


def run_backtest(
    config: RunConfig,
    frames: dict[str, pd.DataFrame],
    plan: Plan,
    fx_series: pd.Series | None,
    stop_loss: float | None = None,
    take_profit: float | None = None,
    symbols: Sequence[str] | None = None,
) -> tuple[list[TradeRecord], list[OrderRecord], pd.DataFrame]:
    """Run the plan through backtrader. Returns trades, orders and a frame of equity, cash, exposure."""
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=config.fill == "open", runonce=False, preload=True)
    broker = cerebro.getbroker()
    broker.setcash(config.cash)
    broker.set_coo(config.fill == "open")
    broker.set_coc(config.fill == "close")
    books: list[_Book] = []
    for symbol in symbols if symbols is not None else sorted(frames):
        frame = frames[symbol]
        if frame.empty:
            continue
        info = listing(symbol)
        fx = fx_for(frame, fx_series, info.is_hk, symbol)
        data = _feed(frame, fx, symbol)
        cerebro.adddata(data)
        comminfo = _CommInfo()
        comminfo.model = config.costs
        comminfo.hk = info.is_hk
        comminfo.listing = info
        comminfo.fx = float(fx[0])
        broker.addcommissioninfo(comminfo, name=symbol)
        actions: dict[int, list[PlannedAction]] = {}
        for action in plan.actions.get(symbol, []):
            actions.setdefault(action.bar, []).append(action)
        books.append(_Book(
            symbol=symbol, data=data, comminfo=comminfo, dates=frame.index.to_numpy(),
            open=frame["open"].to_numpy(dtype=float), close=frame["close"].to_numpy(dtype=float),
            stale=frame["stale"].to_numpy(dtype=bool), fx=fx, lot_size=info.lot_size, hk=info.is_hk,
            actions=actions, lots=[],
        ))
    if not books:
        raise RunError("no symbol has price data in the run period")
    executor = _Executor(config, books, stop_loss, take_profit)
    cerebro.addstrategy(_Adapter, executor=executor)
    cerebro.run()
    executor.finish()
    curve = pd.DataFrame(executor.equity, columns=["date", "equity", "cash", "exposure"]).set_index("date")
    return executor.trades, executor.orders, curve
