"""Builders for engine tests: synthetic frames on real exchange sessions, events, and an independent
trade recomputation (written separately from engine.market.costs / engine.execution.backtrader_driver on purpose)."""

from __future__ import annotations

import datetime as dt
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
