"""What a strategy sees during planning: the run's events, universe, entry sessions and as-of price views.

``RunContext`` implements ``strategies.base.StrategyContext``. Every price view reads bars strictly before the
session it is asked about (no lookahead).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd

from engine.events import timing
from engine.events.catalog import Event, symbols_for


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
        frame = self._frames.get(symbol)
        if frame is None or frame.empty:
            return None
        tradable = frame.index[~frame["stale"].to_numpy()]
        return pd.Timestamp(tradable[0]) if len(tradable) else None

    def trailing_return(self, symbol: str, session: pd.Timestamp, sessions: int) -> float | None:
        """Close-to-close return over ``sessions`` bars ending at the last close strictly before ``session``."""
        frame = self._frames.get(symbol)
        if frame is None:
            return None
        end = int(frame.index.searchsorted(pd.Timestamp(session), side="left")) - 1
        begin = end - sessions
        if begin < 0 or end < 0:
            return None
        closes = frame["close"].to_numpy()
        return float(closes[end] / closes[begin] - 1.0)
