"""What a strategy sees during planning: the run's events, universe, entry sessions and as-of price views.

``RunContext`` implements ``strategies.base.StrategyContext``. Every price view reads bars strictly before the
session it is asked about (no lookahead).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.events import timing
from engine.events.catalog import Event, symbols_for
from strategies import indicators as ind

OHLCV = ("open", "high", "low", "close", "volume")


class RunContext:
    """The StrategyContext the engine hands to ``Strategy.signals`` (read-only views, no lookahead)."""

    def __init__(
        self,
        universe: Sequence[str],
        events: Sequence[Event],
        frames: dict[str, pd.DataFrame],
        fill: str,
        start: dt.date,
        end: dt.date,
    ) -> None:
        self.universe = tuple(universe)
        self.fill = fill
        self._frames = frames
        self._start = pd.Timestamp(start)
        self._end = pd.Timestamp(end)
        self._events = list(events)
        self._session_cache: dict[tuple[str, str], pd.Timestamp | None] = {}
        self._prices = PriceViews(frames)

    @property
    def events(self) -> Sequence[Event]:
        return self._events

    def events_of(self, *types: str) -> list[Event]:
        wanted = set(types)
        return [e for e in self._events if not wanted or e.type in wanted]

    def symbols_for(self, event: Event) -> list[str]:
        return [s for s in symbols_for(event, self.universe) if s in self._frames]

    def entry_session(self, event: Event, symbol: str) -> pd.Timestamp | None:
        key = (event.id, symbol)
        if key not in self._session_cache:
            session = timing.entry_session(event, symbol, self.fill)
            self._session_cache[key] = pd.Timestamp(session).normalize() if session is not None else None
        return self._session_cache[key]

    def first_session(self, symbol: str) -> pd.Timestamp | None:
        """The first tradable (non-stale) bar on or after the run's start: warm-up bars are never traded."""
        dates = self._prices.dates(symbol)
        if dates is None:
            return None
        pos = int(dates.searchsorted(self._start.to_datetime64(), side="left"))
        return pd.Timestamp(dates[pos]) if pos < len(dates) and dates[pos] <= self._end.to_datetime64() else None

    # ------------------------------------------------------------------ as-of price views (bars < session)

    def history(self, symbol: str, session: pd.Timestamp | None, bars: int | None = None) -> pd.DataFrame | None:
        """Tradable OHLCV bars of ``symbol`` dated strictly before ``session`` (the last ``bars`` of them)."""
        return self._prices.history(symbol, session, bars)

    def last_close(self, symbol: str, session: pd.Timestamp | None) -> float | None:
        """The close of the last tradable bar strictly before ``session``."""
        return self._prices.value(symbol, session, _close)

    def indicator(self, symbol: str, session: pd.Timestamp | None, func: ind.Indicator, *args: Any,
                  **kwargs: Any) -> float | None:
        """``func(frame, *args, **kwargs)`` (a Series over the symbol's tradable bars, computed once per symbol and
        arguments) read at the last bar strictly before ``session``; None if there is no such bar or it is NaN."""
        return self._prices.value(symbol, session, func, *args, **kwargs)

    def sma(self, symbol: str, session: pd.Timestamp | None, n: int) -> float | None:
        return self.indicator(symbol, session, ind.sma, n)

    def rsi(self, symbol: str, session: pd.Timestamp | None, n: int = 14) -> float | None:
        return self.indicator(symbol, session, ind.rsi, n)

    def atr(self, symbol: str, session: pd.Timestamp | None, n: int = 14) -> float | None:
        return self.indicator(symbol, session, ind.atr, n)

    def rolling_return(self, symbol: str, session: pd.Timestamp | None, n: int) -> float | None:
        return self.indicator(symbol, session, ind.rolling_return, n)

    def volatility(self, symbol: str, session: pd.Timestamp | None, n: int, annualize: bool = False) -> float | None:
        return self.indicator(symbol, session, ind.volatility, n, annualize=annualize)

    def volume_zscore(self, symbol: str, session: pd.Timestamp | None, n: int = 20) -> float | None:
        return self.indicator(symbol, session, ind.volume_zscore, n)

    def trailing_return(self, symbol: str, session: pd.Timestamp | None, sessions: int) -> float | None:
        """Close-to-close return over ``sessions`` bars ending at the last close strictly before ``session``."""
        return self.rolling_return(symbol, session, sessions)


def _close(frame: pd.DataFrame) -> pd.Series:
    return frame["close"]


class PriceViews:
    """Tradable bars per symbol and memoised indicator arrays, read as of a session (strictly before it)."""

    def __init__(self, frames: dict[str, pd.DataFrame]) -> None:
        self._frames = frames
        self._tradable: dict[str, pd.DataFrame] = {}
        self._dates: dict[str, np.ndarray] = {}
        self._memo: dict[tuple, np.ndarray] = {}

    def _bars(self, symbol: str) -> pd.DataFrame | None:
        if symbol not in self._tradable:
            frame = self._frames.get(symbol)
            if frame is None:
                return None
            tradable = frame.loc[~frame["stale"].to_numpy(), list(OHLCV)]
            self._tradable[symbol] = tradable
            self._dates[symbol] = tradable.index.to_numpy()
        return self._tradable[symbol]

    def dates(self, symbol: str) -> np.ndarray | None:
        bars = self._bars(symbol)
        return None if bars is None or bars.empty else self._dates[symbol]

    def _before(self, symbol: str, session: pd.Timestamp) -> int:
        """Number of tradable bars dated strictly before ``session``."""
        return int(self._dates[symbol].searchsorted(pd.Timestamp(session).to_datetime64(), side="left"))

    def history(self, symbol: str, session: pd.Timestamp | None, bars: int | None) -> pd.DataFrame | None:
        frame = self._bars(symbol)
        if frame is None or session is None:
            return None
        end = self._before(symbol, session)
        begin = 0 if bars is None else max(0, end - bars)
        return frame.iloc[begin:end].copy()

    def value(self, symbol: str, session: pd.Timestamp | None, func: ind.Indicator, *args: Any,
              **kwargs: Any) -> float | None:
        frame = self._bars(symbol)
        if frame is None or frame.empty or session is None:  # no session (e.g. after the calendar): no value
            return None
        key = (symbol, func, args, tuple(sorted(kwargs.items())))
        values = self._memo.get(key)
        if values is None:
            series = func(frame, *args, **kwargs)
            values = np.asarray(series, dtype=float)
            if values.shape != (len(frame),):
                raise ValueError(f"indicator {getattr(func, '__name__', func)!r} returned {values.shape} values "
                                 f"for {len(frame)} bars of {symbol}")
            self._memo[key] = values
        pos = self._before(symbol, session) - 1
        if pos < 0 or not np.isfinite(values[pos]):
            return None
        return float(values[pos])
