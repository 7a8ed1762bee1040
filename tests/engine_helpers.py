"""Builders for engine tests: synthetic frames on real exchange sessions, events, and an independent
trade recomputation (written separately from engine.market.costs / engine.execution.backtrader_driver on purpose)."""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from engine.events import timing
from engine.events.catalog import Event

COLUMNS = ["open", "high", "low", "close", "adj_close", "volume", "stale"]


def frame_on_sessions(exchange: str, start: str, end: str, seed: int = 0, base: float = 100.0,
                      opens: Sequence[float] | None = None, closes: Sequence[float] | None = None) -> pd.DataFrame:
    """Random-walk bars on the exchange's real sessions (or the given opens/closes)."""
    dates = pd.DatetimeIndex(timing.sessions(exchange, start, end))
    n = len(dates)
    rng = np.random.default_rng(seed)
    if closes is None:
        closes = base * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    if opens is None:
        opens = np.asarray(closes) * np.exp(rng.normal(0, 0.01, n))
    closes = np.asarray(closes, dtype=float)[:n]
    opens = np.asarray(opens, dtype=float)[:n]
    frame = pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(opens, closes) * 1.01,
            "low": np.minimum(opens, closes) * 0.99,
            "close": closes,
            "adj_close": closes,
            "volume": np.full(n, 1_000_000.0),
            "stale": np.zeros(n, dtype=bool),
        },
        index=pd.DatetimeIndex(dates, name="date"),
    )
    return frame[COLUMNS]


def event(eid: str, date: str, *, symbols: Sequence[str] = (), etype: str = "official_reassurance",
          scope: str = "sector", tz: str = "Asia/Shanghai", time: str | None = None,
          firm: str | None = None) -> Event:
    return Event(
        id=eid,
        date=dt.date.fromisoformat(date),
        tz=tz,
        time=dt.time.fromisoformat(time) if time else None,
        session_hint=None,
        market=None,
        type=etype,
        scope=scope,
        symbols=tuple(symbols),
        description="test event",
        source="https://example.com",
        firm=firm,
    )


# Hand-copied from the official sources (see README, "Fees"), independent of engine/market/data/fees.csv.
_HK_STAMP = [("2021-07-31", 0.001), ("2023-11-16", 0.0013), ("9999-12-31", 0.001)]  # (last day, rate)
_HK_TRADING_FEE = [("2022-12-31", 0.00005), ("9999-12-31", 0.0000565)]
_US_SEC = [("2020-02-17", 20.70), ("2021-02-24", 22.10), ("2022-05-13", 5.10), ("2023-02-26", 22.90),
           ("2024-05-21", 8.00), ("2025-05-13", 27.80), ("9999-12-31", 0.0)]  # $ per million sold


def _dated(table: list[tuple[str, float]], day: str) -> float:
    return next(rate for last, rate in table if day <= last)


def _cent(amount: float) -> float:
    return math.floor(amount * 100 + 0.5 + 1e-7) / 100


def expected_fees(value: float, *, pct: float, minimum: float, bps: float, stamp: float | None, hk: bool,
                  fx: float, day: str | None = None, side: str = "buy") -> float:
    """Fees recomputed by hand: commission with minimum, slippage, and (with a trade ``day``) the venue's
    dated fees: HK stamp duty (``stamp`` overrides the dated rate) rounded up in HKD, HK trading fee, SFC and
    AFRC levies to the cent in HKD; US SEC fee on sells, rounded up to the cent."""
    fee = max(pct * value, minimum) + bps / 10_000 * value
    if day is None:
        if hk and stamp:
            fee += math.ceil(stamp * value * fx - 1e-9) / fx
        return fee
    local = value * fx
    if hk:
        rate = _dated(_HK_STAMP, day) if stamp is None else stamp
        fee += math.ceil(rate * local - 1e-9) / fx
        fee += _cent(_dated(_HK_TRADING_FEE, day) * local) / fx
        fee += _cent(0.000027 * local) / fx
        if day >= "2022-01-01":
            fee += _cent(0.0000015 * local) / fx
    elif side == "sell":
        fee += math.ceil(_dated(_US_SEC, day) / 1e6 * local * 100 - 1e-7) / 100 / fx
    return fee


def recompute_trade(trade: dict, frame: pd.DataFrame, fx: float | pd.Series, *, pct: float, minimum: float,
                    bps: float, stamp: float | None, hk: bool, end: str | None = None) -> dict:
    """Entry/exit prices from the raw bars and the fill rule; fees and PnL from the formulas.

    An open trade is marked at the last close on or before the run's ``end``."""
    fill = trade["entry_fill"]
    entry_px = float(frame.loc[pd.Timestamp(trade["entry_date"]), fill])
    if trade["exit_date"] is None:
        marks = frame.loc[: pd.Timestamp(end)] if end else frame
        exit_px = float(marks["close"].iloc[-1])
        exit_date = marks.index[-1]
    else:
        exit_date = pd.Timestamp(trade["exit_date"])
        exit_px = float(frame.loc[exit_date, trade["exit_fill"]])

    def rate(date: pd.Timestamp) -> float:
        if isinstance(fx, pd.Series):
            return float(fx.loc[:date].iloc[-1])
        return float(fx)

    fx_in, fx_out = rate(pd.Timestamp(trade["entry_date"])), rate(exit_date)
    size = trade["size"]
    entry_value = size * (entry_px / fx_in)
    exit_value = size * (exit_px / fx_out)
    sign = 1 if trade["side"] == "long" else -1
    fees = expected_fees(entry_value, pct=pct, minimum=minimum, bps=bps, stamp=stamp, hk=hk, fx=fx_in,
                         day=str(trade["entry_date"])[:10], side="buy" if sign > 0 else "sell")
    if trade["exit_date"] is not None:
        fees += expected_fees(exit_value, pct=pct, minimum=minimum, bps=bps, stamp=stamp, hk=hk, fx=fx_out,
                              day=str(trade["exit_date"])[:10], side="sell" if sign > 0 else "buy")
    pnl = sign * (exit_value - entry_value) - fees
    return {"entry_price": entry_px, "exit_price": exit_px, "fees": fees, "pnl": pnl}


def fast_replay(config, store, events: Sequence[Event]):
    """The same run as ``engine.backtest.run(config, store, events=events)`` through the fast driver."""
    from engine import backtest
    from engine.execution import fast_driver
    from engine.plan.planner import RunContext, build_plan
    from strategies.registry import get_strategy

    cls = get_strategy(config.strategy)
    params = backtest.resolve_params(config.strategy, config.params)
    frames, history = backtest._load_frames(store, config, cls(params).warmup())
    fx = backtest._cached_series(store, backtest.FX_SYMBOL, config, fetch=False)
    period = [e for e in events if config.start - dt.timedelta(days=7) <= e.date <= config.end]
    ctx = RunContext(tuple(frames), period, history, config.fill, config.start, config.end)
    plan = build_plan(cls(params), ctx, frames)
    market = fast_driver.build_market(frames, [s for s in config.symbols if s in frames], fx, None)
    return fast_driver.simulate(market, config, plan, getattr(params, "stop_loss", None),
                                getattr(params, "take_profit", None))


@functools.cache
def _calendar(exchange: str):
    import warnings

    import exchange_calendars as xcals

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exchange-calendars' pandas deprecations
        cal = xcals.get_calendar(exchange, start="2019-01-01", end="2024-12-31")
        cal.schedule  # noqa: B018 (built once here, under the filter)
    return cal


def fill_instant(exchange: str, date: str, fill: str) -> pd.Timestamp:
    """UTC instant of a session's open or close, straight from exchange-calendars (no engine code)."""
    cal = _calendar(exchange)
    day = pd.Timestamp(date)
    return pd.Timestamp(cal.session_open(day) if fill == "open" else cal.session_close(day)).tz_convert("UTC")


def bar_open_close(exchange: str, index: pd.DatetimeIndex) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
    """UTC open and close instants of the sessions dated ``index`` (exchange-calendars directly)."""
    schedule = _calendar(exchange).schedule.reindex(pd.DatetimeIndex(index).normalize())
    return pd.DatetimeIndex(schedule["open"].array).tz_convert("UTC"), \
        pd.DatetimeIndex(schedule["close"].array).tz_convert("UTC")


def perturb_after(frame: pd.DataFrame, exchange: str, instant: pd.Timestamp, factor: float) -> pd.DataFrame:
    """``frame`` with every open and close whose instant is strictly after ``instant`` multiplied by ``factor``
    (high/low kept consistent)."""
    out = frame.copy()
    opens_at, closes_at = bar_open_close(exchange, out.index)
    later_open = np.asarray(opens_at > instant)
    later_close = np.asarray(closes_at > instant)
    out.loc[later_open, "open"] *= factor
    out.loc[later_close, ["close", "adj_close"]] *= factor
    changed = later_open | later_close
    out.loc[changed, "high"] = out.loc[changed, ["open", "close"]].max(axis=1) * 1.01
    out.loc[changed, "low"] = out.loc[changed, ["open", "close"]].min(axis=1) * 0.99
    return out


def cash_timeline_problems(trades: Sequence[dict], cash: float, exchange_of) -> list[str]:
    """Replays a report's trade list in true UTC order (exits before entries at one instant) from the
    exchange calendars alone and lists every entry that spent cash not yet available at its instant."""
    moves = []
    for t in trades:
        sign = 1 if t["side"] == "long" else -1
        fx_in = t["fx_entry"]
        cost = sign * t["size"] * t["entry_price"] / fx_in + t["entry_fees"]
        when = fill_instant(exchange_of(t["symbol"]), t["entry_date"], t["entry_fill"])
        moves.append((when, 1, -cost, t))
        if t["exit_date"] is not None:
            proceeds = sign * t["size"] * t["exit_price"] / t["fx_exit"] - t["exit_fees"]
            moves.append((fill_instant(exchange_of(t["symbol"]), t["exit_date"], t["exit_fill"]), 0, proceeds, t))
    problems = []
    for when, kind, delta, t in sorted(moves, key=lambda m: (m[0], m[1])):
        cash += delta
        if kind == 1 and cash < -1e-6:
            problems.append(f"{t['symbol']} entry {t['entry_date']} at {when}: cash {cash:.2f}")
    return problems


def expected_exit_session(exchange: str, entry_date: str, hold: int, bar_dates: pd.DatetimeIndex) -> str:
    """The exit of a ``hold``-session trade: ``hold`` sessions of the exchange after the entry session, or
    the next bar when the data has no bar on that session (exchange-calendars plus closures.csv)."""
    sessions = timing.sessions(exchange, "2019-01-02", "2024-12-31")
    target = sessions[sessions.searchsorted(pd.Timestamp(entry_date)) + hold]
    return str(bar_dates[bar_dates.searchsorted(target)].date())


def trade_problems(trade: dict, frame: pd.DataFrame, exchange: str, known: pd.Timestamp, hold: int) -> list[str]:
    """What is wrong with one trade of a ``hold``-session strategy, recomputed from the raw bars and the
    exchange calendar only: the entry must be the first fill point (open/close) strictly after ``known`` (on the
    first real bar on or after that session), the exit ``hold`` sessions later (next bar if none), and both
    prices the raw bars' prices at that fill point."""
    fill = trade["entry_fill"]
    cal = _calendar(exchange)
    schedule = cal.schedule
    column = "open" if fill == "open" else "close"
    instants = pd.DatetimeIndex(schedule[column].array).tz_convert("UTC")
    session = schedule.index[int(instants.searchsorted(known, side="right"))]
    real = frame.index[~frame["stale"].to_numpy(dtype=bool)] if "stale" in frame else frame.index
    want_entry = str(real[real.searchsorted(session)].date())
    problems = []
    if trade["entry_date"] != want_entry:
        problems.append(f"{trade['symbol']}: entry {trade['entry_date']}, first fill point after the news is "
                        f"{want_entry}")
    if trade["entry_price"] != float(frame.loc[pd.Timestamp(trade["entry_date"]), fill]):
        problems.append(f"{trade['symbol']}: entry price is not the bar's {fill}")
    if trade["exit_date"] is not None:
        want_exit = expected_exit_session(exchange, want_entry, hold, real)
        if trade["exit_date"] != want_exit:
            problems.append(f"{trade['symbol']}: exit {trade['exit_date']}, {hold} sessions later is {want_exit}")
        if trade["exit_price"] != float(frame.loc[pd.Timestamp(trade["exit_date"]), fill]):
            problems.append(f"{trade['symbol']}: exit price is not the bar's {fill}")
    return problems


def size_problems(trades: Sequence[dict], frames: dict[str, pd.DataFrame], cash: float, fraction: float,
                  lots: dict[str, int], exchange_of, fx: float | None = 7.8) -> list[str]:
    """Recomputes every entry size of a percent-sized run from the trade list and the raw bars alone: the
    equity known strictly before the entry's instant (cash after every earlier fill, each position at its
    latest raw close whose close instant is before the entry) times ``fraction``, in whole board lots."""
    fills = []
    for t in trades:
        sign = 1 if t["side"] == "long" else -1
        when = fill_instant(exchange_of(t["symbol"]), t["entry_date"], t["entry_fill"])
        fills.append((when, 1, t, sign * t["size"], -sign * t["size"] * t["entry_price"] / t["fx_entry"]
                      - t["entry_fees"]))
        if t["exit_date"] is not None:
            out = fill_instant(exchange_of(t["symbol"]), t["exit_date"], t["exit_fill"])
            fills.append((out, 0, t, -sign * t["size"], sign * t["size"] * t["exit_price"] / t["fx_exit"]
                          - t["exit_fees"]))
    closes = {}
    for symbol, frame in frames.items():
        _, closes_at = bar_open_close(exchange_of(symbol), frame.index)
        closes[symbol] = (closes_at, frame["close"].to_numpy(dtype=float))
    problems = []
    for when, kind, t, _shares, _money in sorted(fills, key=lambda f: (f[0], f[1])):
        if kind != 1:
            continue
        equity = cash
        for w2, _k2, t2, shares2, money2 in fills:
            if w2 < when:
                equity += money2
                closes_at, close = closes[t2["symbol"]]
                last = int(closes_at.searchsorted(when, side="left")) - 1
                rate = fx if t2["symbol"].endswith(".HK") and fx else 1.0
                equity += shares2 * close[last] / rate
        price_base = t["entry_price"] / t["fx_entry"]
        lot = lots.get(t["symbol"], 1)
        want = math.floor(fraction * equity / price_base / lot) * lot
        if want != t["size"]:
            problems.append(f"{t['symbol']} {t['entry_date']}: size {t['size']}, equity known before "
                            f"{when} gives {want}")
    return problems
