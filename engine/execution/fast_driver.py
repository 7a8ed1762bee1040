"""An exact, backtrader-free replay of a ``Plan`` for parameter sweeps.

``simulate`` reproduces ``engine.execution.backtrader_driver._Executor`` running inside backtrader's
``BackBroker`` (cheat-on-open
for fill ``open``, cheat-on-close for fill ``close``) with plain numpy arrays and Python objects:

- the equity curve lives on the union of the books' bar dates (one backtrader cycle per date);
- decisions happen only on cycles where something can happen (a planned action, a lot's exit bar, a
  stop-loss/take-profit hit), in the executor's order: stale-bar exit shifts, then exits of every tradable
  book (hold exits, then exit signals), then entries of every tradable book;
- sizing uses the broker value backtrader would report (value at the previous cycle's close for fill
  ``open``; at this cycle's close, before this cycle's orders, for fill ``close``); lots are rounded down to
  board lots; a long entry whose projected cash would go negative is refused; opposite lots are closed first;
- fees come from ``engine.market.costs.order_fees`` with the fill's FX rate, prices are divided by the FX rate like
  the backtrader feed;
- with fill ``close`` an order executes at the start of the next cycle (so its cash and position show in the
  equity curve one bar later) and orders of the last cycle never fill, as in backtrader.

``unsupported_reason`` names the features this replay does not cover (``allow_margin``: backtrader's own
margin check would then refuse orders the executor lets through); callers fall back to backtrader for those.
Tests compare every trade, the equity curve and the metrics with the backtrader engine.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.analysis.metrics import (
    Metrics,
    _finite,
    _ratio,
    annual_volatility,
    capm,
    daily_returns,
    max_drawdown,
    sharpe_ratio,
    sortino_ratio,
    trade_stats,
)
from engine.execution.backtrader_driver import fx_for
from engine.execution.records import OrderRecord, TradeRecord, round_trip
from engine.execution.sizing import entry_size
from engine.market.costs import order_fees
from engine.market.symbols import Listing, listing
from engine.plan.config import RunConfig
from engine.plan.planner import Plan, PlannedAction

_EPS = 1e-15


# ---------------------------------------------------------------------------------------------- market data


@dataclass
class Book:
    """One symbol's bars in the run period (local prices and base-currency prices)."""

    symbol: str
    dates: list[str]  # ISO session dates
    open: np.ndarray
    close: np.ndarray
    stale: np.ndarray
    fx: np.ndarray
    open_base: np.ndarray
    close_base: np.ndarray
    lot_size: int
    hk: bool
    cycle: np.ndarray  # bar -> position in the union index
    open_l: list[float] = field(default_factory=list)  # python copies: faster scalar access in the replay
    close_l: list[float] = field(default_factory=list)
    fx_l: list[float] = field(default_factory=list)
    stale_l: list[bool] = field(default_factory=list)
    cycle_l: list[int] = field(default_factory=list)
    listing: Listing | None = None  # venue, currency and lot facts (dated venue fees)


@dataclass
class Market:
    """Everything about a run period that does not depend on the parameters (built once per window)."""

    index: pd.DatetimeIndex  # union of the books' dates = the equity curve's index
    books: list[Book]
    bar_at: np.ndarray  # (books, cycles): bar index of the book dated at the cycle, -1 if none
    close_u: np.ndarray  # (books, cycles): last base-currency close on or before the cycle (0 before the first)
    bench_aligned: np.ndarray | None  # benchmark close on the index (ffilled, NaN before its first quote)
    years: float  # calendar years between the first and last date (CAGR)
    advanced: list[list[tuple[int, int]]] = field(default_factory=list)  # cycle -> [(book, bar)] in book order

    @property
    def n_cycles(self) -> int:
        return len(self.index)


def build_market(
    frames: dict[str, pd.DataFrame],
    symbols: Sequence[str],
    fx_series: pd.Series | None,
    bench_close: pd.Series | None,
) -> Market:
    """Arrays for ``symbols`` (in the executor's book order) from the run's trading frames."""
    used = [s for s in symbols if s in frames and not frames[s].empty]
    index = pd.DatetimeIndex(sorted(set().union(*(frames[s].index for s in used))))
    books: list[Book] = []
    n = len(index)
    bar_at = np.full((len(used), n), -1, dtype=np.int64)
    close_u = np.zeros((len(used), n))
    for k, symbol in enumerate(used):
        frame = frames[symbol]
        info = listing(symbol)
        fx = fx_for(frame, fx_series, info.is_hk, symbol)
        cycle = index.searchsorted(frame.index).astype(np.int64)
        open_ = frame["open"].to_numpy(dtype=float)
        close = frame["close"].to_numpy(dtype=float)
        book = Book(
            symbol=symbol, dates=[str(d.date()) for d in frame.index], open=open_, close=close,
            stale=frame["stale"].to_numpy(dtype=bool), fx=fx, open_base=open_ / fx, close_base=close / fx,
            lot_size=info.lot_size, hk=info.is_hk, cycle=cycle, open_l=open_.tolist(), close_l=close.tolist(),
            fx_l=np.asarray(fx, dtype=float).tolist(), stale_l=frame["stale"].to_numpy(dtype=bool).tolist(),
            cycle_l=cycle.tolist(), listing=info,
        )
        books.append(book)
        bar_at[k, cycle] = np.arange(len(frame))
        filled = np.zeros(n)
        filled[cycle] = book.close_base
        seen = np.maximum.accumulate(np.where(bar_at[k] >= 0, np.arange(n), -1))
        close_u[k] = np.where(seen >= 0, filled[np.maximum(seen, 0)], 0.0)
    aligned = None
    if bench_close is not None and len(bench_close):
        from engine.analysis.metrics import align_benchmark

        series = align_benchmark(bench_close, index)
        aligned = None if series is None else series.to_numpy(dtype=float)
    years = (index[-1] - index[0]).days / 365.25 if n else 0.0
    advanced = [[(k, int(bar_at[k, t])) for k in range(len(used)) if bar_at[k, t] >= 0] for t in range(n)]
    return Market(index=index, books=books, bar_at=bar_at, close_u=close_u, bench_aligned=aligned, years=years,
                  advanced=advanced)


def unsupported_reason(config: RunConfig) -> str | None:
    """Why ``simulate`` cannot replay this configuration exactly (None = it can)."""
    if config.allow_margin:
        return "allow_margin (backtrader's own margin check is not replayed)"
    return None


# ---------------------------------------------------------------------------------------------- simulation


@dataclass(eq=False)
class _Lot:
    trade_id: int
    book: int
    side: str
    size: int
    entry_bar: int
    entry_cycle: int
    entry_price: float
    fx_entry: float
    entry_exec: float
    entry_fees: float
    event_id: str
    event_type: str
    exit_due: int | None
    exit_reason: str = "hold"
    exiting: bool = False


@dataclass
class FastResult:
    """Plain result of a replay: the same trades/orders/curve ``run_backtest`` returns."""

    trades: list[TradeRecord]
    orders: list[OrderRecord]
    equity: np.ndarray
    cash: np.ndarray
    exposure: np.ndarray
    index: pd.DatetimeIndex

    def curve(self) -> pd.DataFrame:
        frame = pd.DataFrame({"equity": self.equity, "cash": self.cash, "exposure": self.exposure},
                             index=self.index)
        frame.index.name = "date"
        return frame


@dataclass
class _State:
    market: Market
    config: RunConfig
    actions: list[dict[int, list[PlannedAction]]]
    stop: float | None
    take: float | None
    records: bool
    cash: float = 0.0
    pos: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lots: list[list[_Lot]] = field(default_factory=list)
    heap: list[int] = field(default_factory=list)
    guards: dict[int, list[_Lot]] = field(default_factory=dict)
    execs: list[tuple[int, int, float, float]] = field(default_factory=list)  # cycle, book, d_cash, d_pos
    trades: list[TradeRecord] = field(default_factory=list)
    orders: list[OrderRecord] = field(default_factory=list)
    next_id: int = 1
    last_cycle: int = 0
    unfilled: list[tuple[str, _Lot, int]] = field(default_factory=list)  # fill close, last cycle


def simulate(
    market: Market,
    config: RunConfig,
    plan: Plan,
    stop_loss: float | None = None,
    take_profit: float | None = None,
    records: bool = True,
) -> FastResult:
    """Replay ``plan`` exactly as the backtrader executor would (see the module docstring)."""
    state = _State(market=market, config=config, actions=[], stop=stop_loss, take=take_profit, records=records)
    state.cash = float(config.cash)
    state.pos = np.zeros(len(market.books))
    state.lots = [[] for _ in market.books]
    state.last_cycle = market.n_cycles - 1
    for book in market.books:
        per_bar: dict[int, list[PlannedAction]] = {}
        for action in plan.actions.get(book.symbol, []):
            per_bar.setdefault(action.bar, []).append(action)
        state.actions.append(per_bar)
        for bar in per_bar:
            heapq.heappush(state.heap, book.cycle_l[bar])
    done = -1
    while state.heap:
        t = heapq.heappop(state.heap)
        if t <= done:
            continue
        done = t
        _cycle(state, t)
    return _finish(state)


def _schedule(state: _State, k: int, bar: int | None) -> None:
    book = state.market.books[k]
    if bar is not None and 0 <= bar < len(book.dates):
        heapq.heappush(state.heap, book.cycle_l[bar])


def _value(state: _State, t: int) -> float:
    """Broker value with the current cash and positions, marked at the closes known at cycle ``t``."""
    if t < 0:
        return state.cash
    return state.cash + float(np.dot(state.pos, state.market.close_u[:, t]))


def _cycle(state: _State, t: int) -> None:
    market, cfg = state.market, state.config
    fill_open = cfg.fill == "open"
    equity = _value(state, t - 1 if fill_open else t)
    cash = state.cash
    tradable = []
    for k, i in market.advanced[t]:
        if market.books[k].stale_l[i]:
            for lot in state.lots[k]:
                if lot.exit_due is not None and lot.exit_due <= i:
                    lot.exit_due = i + 1
                    _schedule(state, k, i + 1)
        else:
            tradable.append((k, i))
    for k, i in tradable:
        price = _price(market.books[k], i, fill_open)
        for lot in list(state.lots[k]):
            if lot.entry_cycle < t and not lot.exiting and lot.exit_due is not None and lot.exit_due <= i:
                cash += _exit(state, lot, i, t, price, lot.exit_reason)
        for action in state.actions[k].get(i, ()):
            if action.action == "exit":
                for lot in list(state.lots[k]):
                    if lot.entry_cycle < t and not lot.exiting and lot.side == action.side:
                        cash += _exit(state, lot, i, t, price, "signal")
    for k, i in tradable:
        price = _price(market.books[k], i, fill_open)
        for action in state.actions[k].get(i, ()):
            if action.action == "enter":
                cash += _enter(state, k, action, i, t, price, cash, equity)
    for lot in state.guards.pop(t, ()):
        _guard(state, lot, t)


def _price(book: Book, i: int, fill_open: bool) -> float:
    return book.open_l[i] if fill_open else book.close_l[i]


def _exec_cycle(state: _State, t: int) -> int:
    return t if state.config.fill == "open" else t + 1


def _enter(state: _State, k: int, action: PlannedAction, i: int, t: int, price: float, cash: float,
           equity: float) -> float:
    cfg = state.config
    book = state.market.books[k]
    date = book.dates[i]
    verb = "buy" if action.side == "long" else "sell"
    lots = state.lots[k]
    same = [lot for lot in lots if lot.side == action.side and not lot.exiting]
    if same and cfg.overlap != "add":
        if cfg.overlap == "extend":
            for lot in same:
                lot.exit_due = None if action.hold is None else i + action.hold
                lot.exit_reason = "hold"
                _schedule(state, k, lot.exit_due)
            reason = "already held: hold clock restarted (overlap=extend)"
        else:
            reason = "already held (overlap=ignore)"
        _order(state, date, book.symbol, verb, 0, "skipped", reason, action.event_id)
        return 0.0
    if action.side == "short" and not cfg.allow_short:
        _order(state, date, book.symbol, verb, 0, "refused", "shorts not allowed (use --allow-short)",
               action.event_id)
        return 0.0
    opposite = [lot for lot in lots if lot.side != action.side and lot.entry_cycle < t and not lot.exiting]
    released = sum(_exit(state, lot, i, t, price, "signal") for lot in opposite)
    cash += released
    fx = book.fx_l[i]
    price_base = price / fx
    target, size = entry_size(cfg, action, equity, price_base, book.lot_size)
    if size <= 0:
        _order(state, date, book.symbol, verb, 0, "skipped",
               f"target {target:.2f} is below one board lot ({book.lot_size})", action.event_id)
        return released
    fees = order_fees(cfg.costs, size, price_base, hk=book.hk, fx=fx, side="buy" if action.side == "long" else "sell",
                      day=book.dates[i], listing=book.listing).total
    delta = -(size * price_base + fees) if action.side == "long" else size * price_base - fees
    if action.side == "long" and cash + delta < 0 and not cfg.allow_margin:
        _order(state, date, book.symbol, verb, size, "refused",
               f"insufficient cash ({cash:.2f} available, {-delta:.2f} needed)", action.event_id)
        return released
    lot = _Lot(
        trade_id=state.next_id, book=k, side=action.side, size=size, entry_bar=i, entry_cycle=t,
        entry_price=price, fx_entry=fx, entry_exec=price_base, entry_fees=fees, event_id=action.event_id,
        event_type=action.event_type, exit_due=None if action.hold is None else i + action.hold,
    )
    state.next_id += 1
    lots.append(lot)
    signed = size if action.side == "long" else -size
    if _exec_cycle(state, t) > state.last_cycle:  # fill close on the last bar: backtrader never fills it
        state.unfilled.append(("entry", lot, i))
        return released + delta
    _execute(state, k, t, signed, price_base, fees)
    _order(state, date, book.symbol, verb, size, "filled", "entry", action.event_id, price, fees)
    _schedule(state, k, lot.exit_due)
    _arm_guard(state, lot)
    return released + delta


def _execute(state: _State, k: int, t: int, signed: int, price_base: float, fees: float) -> None:
    d_cash = -signed * price_base - fees
    state.cash += d_cash
    state.pos[k] += signed
    state.execs.append((_exec_cycle(state, t), k, d_cash, float(signed)))


def _exit(state: _State, lot: _Lot, i: int, t: int, price: float, reason: str) -> float:
    book = state.market.books[lot.book]
    lot.exiting = True
    lot.exit_reason = reason
    fx = book.fx_l[i]
    price_base = price / fx
    fees = order_fees(state.config.costs, lot.size, price_base, hk=book.hk, fx=fx,
                      side="sell" if lot.side == "long" else "buy", day=book.dates[i], listing=book.listing).total
    value = lot.size * price_base
    proceeds = (value - fees) if lot.side == "long" else (-value - fees)
    verb = "sell" if lot.side == "long" else "buy"
    if _exec_cycle(state, t) > state.last_cycle:  # never fills: the lot stays open (marked at the end)
        state.unfilled.append(("exit", lot, i))
        return proceeds
    signed = -lot.size if lot.side == "long" else lot.size
    _execute(state, lot.book, t, signed, price_base, fees)
    _order(state, book.dates[i], book.symbol, verb, lot.size, "filled", "exit", lot.event_id, price, fees)
    state.lots[lot.book].remove(lot)
    state.trades.append(_trade(state, lot, i, price, price_base, fees, reason))
    return proceeds


def _arm_guard(state: _State, lot: _Lot) -> None:
    """Schedule the first close that hits the stop-loss / take-profit (checked after that cycle's orders)."""
    if state.stop is None and state.take is None:
        return
    book = state.market.books[lot.book]
    first = lot.entry_bar + (1 if state.config.fill == "close" else 0)
    closes = book.close[first:]
    move = closes / lot.entry_price - 1.0
    ret = move if lot.side == "long" else -move
    hit = np.zeros(len(ret), dtype=bool)
    if state.stop is not None:
        hit |= ret <= -state.stop
    if state.take is not None:
        hit |= ret >= state.take
    where = np.flatnonzero(hit)
    if len(where):
        j = first + int(where[0])
        cycle = int(book.cycle[j])
        state.guards.setdefault(cycle, []).append(lot)
        heapq.heappush(state.heap, cycle)


def _guard(state: _State, lot: _Lot, t: int) -> None:
    if lot.exiting or all(other is not lot for other in state.lots[lot.book]):
        return
    book = state.market.books[lot.book]
    i = int(state.market.bar_at[lot.book, t])
    ret = book.close[i] / lot.entry_price - 1.0
    ret = ret if lot.side == "long" else -ret
    reason = None
    if state.stop is not None and ret <= -state.stop:
        reason = "stop_loss"
    elif state.take is not None and ret >= state.take:
        reason = "take_profit"
    if reason and (lot.exit_due is None or lot.exit_due > i + 1):
        lot.exit_due = i + 1
        lot.exit_reason = reason
        _schedule(state, lot.book, i + 1)


def _order(state: _State, date: str, symbol: str, verb: str, size: int, status: str, reason: str,
           event_id: str | None, price: float | None = None, fees: float | None = None) -> None:
    if state.records:
        state.orders.append(OrderRecord(date, symbol, verb, size, status, reason, event_id, price, fees))


def _trade(state: _State, lot: _Lot, i: int, price: float, exec_price: float, exit_fees: float,
           reason: str) -> TradeRecord:
    book = state.market.books[lot.book]
    entry_value, pnl, ret = round_trip(lot.side, lot.size, lot.entry_exec, exec_price, lot.entry_fees, exit_fees)
    fill = state.config.fill
    is_open = reason == "open"
    return TradeRecord(
        trade_id=lot.trade_id, symbol=book.symbol, side=lot.side, event_id=lot.event_id,
        event_type=lot.event_type, entry_date=book.dates[lot.entry_bar], entry_fill=fill,
        entry_price=lot.entry_price, exit_date=None if is_open else book.dates[i],
        exit_fill=None if is_open else fill, exit_price=price, size=lot.size, fx_entry=lot.fx_entry,
        fx_exit=book.fx_l[i], entry_fees=lot.entry_fees, exit_fees=exit_fees,
        fees=lot.entry_fees + exit_fees, entry_value=entry_value, pnl=pnl,
        ret=ret, exit_reason=reason, holding_sessions=i - lot.entry_bar,
    )


def _finish(state: _State) -> FastResult:
    market = state.market
    n = market.n_cycles
    d_cash = np.zeros(n + 1)
    d_pos = np.zeros((len(market.books), n + 1))
    for cycle, k, dc, dp in state.execs:
        d_cash[cycle] += dc
        d_pos[k, cycle] += dp
    cash = state.config.cash + np.cumsum(d_cash[:n])
    pos = np.cumsum(d_pos[:, :n], axis=1)
    marked = pos * market.close_u
    equity = cash + marked.sum(axis=0)
    gross = np.abs(marked).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        exposure = np.where(equity != 0, gross / np.where(equity != 0, equity, 1.0), 0.0)
    for kind, lot, i in state.unfilled:
        book = market.books[lot.book]
        verb = "buy" if (lot.side == "long") == (kind == "entry") else "sell"
        _order(state, book.dates[i], book.symbol, verb, lot.size, "skipped", "run ended before the fill",
               lot.event_id)
        if kind == "entry":
            state.lots[lot.book].remove(lot)
    for k, book in enumerate(market.books):
        last = len(book.dates) - 1
        for lot in state.lots[k]:
            price = float(book.close[last])
            state.trades.append(_trade(state, lot, last, price, price / float(book.fx[last]), 0.0, "open"))
    state.trades.sort(key=lambda tr: tr.trade_id)
    return FastResult(state.trades, state.orders, equity, cash, exposure, market.index)


# ---------------------------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class ReturnStats:
    """Moments of the daily returns (for the deflated Sharpe ratio)."""

    n: int
    sharpe_daily: float | None
    skew: float | None
    kurtosis: float | None  # not excess (normal = 3)


def return_stats(returns: np.ndarray) -> ReturnStats:
    n = len(returns)
    if n < 3:
        return ReturnStats(n, None, None, None)
    mean = float(np.mean(returns))
    std = float(np.std(returns, ddof=1))
    pop = float(np.std(returns))
    if not std > _EPS or not pop > _EPS:
        return ReturnStats(n, None, None, None)
    z = (returns - mean) / pop
    return ReturnStats(n, mean / std, float(np.mean(z**3)), float(np.mean(z**4)))


def _drawdown_duration(values: np.ndarray) -> int | None:
    """Vectorised ``engine.analysis.metrics.max_drawdown_duration``."""
    if len(values) == 0:
        return None
    prior_peak = np.maximum.accumulate(values)
    is_peak = np.empty(len(values), dtype=bool)
    is_peak[0] = True
    is_peak[1:] = values[1:] >= prior_peak[:-1]
    peaks = np.flatnonzero(is_peak)
    gaps = np.diff(peaks)
    longest = int(gaps[gaps > 1].max()) if np.any(gaps > 1) else 0
    return int(max(longest, len(values) - 1 - int(peaks[-1])))


def _alpha_beta(equity: np.ndarray, bench: np.ndarray | None) -> tuple[float | None, float | None]:
    if bench is None:
        return None, None
    e = np.where(equity > 0, equity, np.nan)
    b = np.where(bench > 0, bench, np.nan)
    r = e[1:] / e[:-1] - 1.0
    rb = b[1:] / b[:-1] - 1.0
    ok = ~(np.isnan(r) | np.isnan(rb))
    return capm(r[ok], rb[ok])


def _cagr(start_value: float, end_value: float, years: float) -> float | None:
    """``engine.analysis.metrics.cagr`` with the period precomputed."""
    if years <= 0 or start_value <= 0 or end_value < 0:
        return None
    return _finite((end_value / start_value) ** (1.0 / years) - 1.0)


def fast_metrics(market: Market, result: FastResult, initial_value: float) -> tuple[Metrics, ReturnStats]:
    """``engine.analysis.metrics.compute_metrics`` on the replay's curve, with numpy only (tests check equality)."""
    eq = result.equity
    values = np.concatenate([[float(initial_value)], eq])
    rets = daily_returns(values)
    start_value, final_value = float(values[0]), float(values[-1])
    total = _ratio(final_value - start_value, start_value)
    growth = _cagr(start_value, final_value, market.years) if len(eq) else None
    mdd = max_drawdown(values)
    bench = market.bench_aligned
    bench_ret = None
    if bench is not None and len(bench):
        first, last = bench[0], bench[-1]
        if not (np.isnan(first) or np.isnan(last) or first <= 0):
            bench_ret = _finite(last / first - 1.0)
    alpha, beta = _alpha_beta(eq, bench)
    stats = trade_stats(result.trades)
    exposure = float(np.mean(result.exposure)) if len(result.exposure) else None
    metrics = Metrics(
        final_value=_finite(final_value), pnl=_finite(final_value - start_value), total_return=total, cagr=growth,
        annual_volatility=annual_volatility(rets), sharpe=sharpe_ratio(rets), sortino=sortino_ratio(rets),
        max_drawdown=mdd, max_drawdown_duration=_drawdown_duration(values),
        calmar=_ratio(growth, abs(mdd) if mdd is not None else None), trade_count=stats.trade_count,
        open_trade_count=stats.open_trade_count, win_rate=stats.win_rate, avg_win=stats.avg_win,
        avg_loss=stats.avg_loss, profit_factor=stats.profit_factor, exposure=_finite(exposure),
        benchmark_return=bench_ret, excess_return=None if total is None or bench_ret is None
        else _finite(total - bench_ret), alpha=alpha, beta=beta,
    )
    return metrics, return_stats(rets)
