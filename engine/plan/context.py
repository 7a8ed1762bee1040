"""What a strategy sees during planning: the run's events, universe, entry sessions and as-of price views.

``RunContext`` implements ``strategies.base.StrategyContext``. Every price view reads bars strictly before the
session it is asked about (no lookahead).
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import ConfigError
from engine.events import timing
from engine.events.catalog import Event, symbols_for
from strategies import indicators as ind

OHLCV = ("open", "high", "low", "close", "volume")
_MISSING = object()
_ID = operator.attrgetter("id")


class RunContext:
    """The StrategyContext the engine hands to ``Strategy.signals`` (read-only views, no lookahead)."""

    def __init__(
        self,
        universe: Sequence[str],
        events: Sequence[Event],
        frames: Mapping[str, pd.DataFrame],
        fill: str,
        start: dt.date,
        end: dt.date,
    ) -> None:
        self.universe = tuple(universe)
        self.fill = fill
        self._frames = frames
        self._start = pd.Timestamp(start)
        self._end = pd.Timestamp(end)
        self._events = tuple(events)  # read-only: the memos below stay right
        self._session_cache: dict[tuple[str, str], pd.Timestamp | None] = {}
        # symbols_for per event object (kept in the value, so its id is not reused) and events_of per type set:
        # a sweep's points share this context and ask the same questions
        self._symbols_memo: dict[int, tuple[Event, tuple[str, ...]]] = {}
        self._events_memo: dict[frozenset[str], tuple[Event, ...]] = {}
        self._entry_sessions = EntrySessions(self._events, fill)
        self._pairs_memo: dict[frozenset[str], tuple[np.ndarray, np.ndarray]] = {}
        self._ids_distinct: bool | None = None
        self._prices = PriceViews(frames)
        # universe position of each symbol with prices (None if the universe repeats a symbol: the slow path)
        self._position: dict[str, int] | None = {s: i for i, s in enumerate(self.universe) if s in frames}
        if len(set(self.universe)) != len(self.universe):
            self._position = None

    def with_frames(self, frames: Mapping[str, pd.DataFrame]) -> RunContext:
        """This context over other price frames (another warm-up of the same window): new price views; the
        memos that read no bar (entry sessions, events per type, and with the same symbols, symbols per event)
        are shared, so a sweep's points with different warm-ups ask those questions once."""
        other = RunContext(self.universe, (), frames, self.fill, self._start.date(), self._end.date())
        other._events = self._events
        other._session_cache = self._session_cache
        other._entry_sessions = self._entry_sessions
        other._events_memo = self._events_memo
        other._ids_distinct = self._ids_distinct
        if set(frames) == set(self._frames):
            other._symbols_memo = self._symbols_memo
            other._pairs_memo = self._pairs_memo
        return other

    @property
    def events(self) -> Sequence[Event]:
        return self._events

    def events_of(self, *types: str) -> list[Event]:
        wanted = frozenset(types)
        found = self._events_memo.get(wanted)
        if found is None:
            found = self._events_memo[wanted] = tuple(e for e in self._events if not wanted or e.type in wanted)
        return list(found)  # a new list each call: the caller may change it

    def symbols_for(self, event: Event) -> list[str]:
        """``catalog.symbols_for`` (universe order) restricted to symbols with prices; an event that lists its
        symbols costs a look-up per listed symbol, not a pass over the universe; asked again, a look-up."""
        hit = self._symbols_memo.get(id(event))
        if hit is not None and hit[0] is event:
            return list(hit[1])
        found = self._symbols_of(event)
        self._symbols_memo[id(event)] = (event, tuple(found))
        return found

    def _symbols_of(self, event: Event) -> list[str]:
        if self._position is None or (event.scope == "sector" and not event.symbols):
            return [s for s in symbols_for(event, self.universe) if s in self._frames]
        position = self._position
        if len(event.symbols) == 1:  # most events (every analyst rating) name one symbol
            return [event.symbols[0]] if event.symbols[0] in position else []
        hits = sorted({position[s] for s in event.symbols if s in position})
        return [self.universe[i] for i in hits]

    def entry_session(self, event: Event, symbol: str) -> pd.Timestamp | None:
        key = (event.id, symbol)
        session = self._session_cache.get(key, _MISSING)
        if session is _MISSING:
            session = self._session_cache[key] = self._entry_sessions.get(event, symbol)
        return session  # type: ignore[return-value]

    # ------------------------------------------------------------------ columnar views (strategies.base.RowsContext)

    def event_pairs(self, *types: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(event positions in ``events``, symbol positions in ``universe``) of every (event of ``types``, symbol
        of ``symbols_for(event)``) pair, in that double loop's order; None if the universe repeats a symbol."""
        position = self._position
        if position is None:
            return None
        wanted = frozenset(types)
        pairs = self._pairs_memo.get(wanted)
        if pairs is None:
            events: list[int] = []
            symbols: list[int] = []
            for k, event in enumerate(self._events):
                if wanted and event.type not in wanted:
                    continue
                names = event.symbols
                if len(names) == 1:  # as _symbols_of: a listed symbol with prices, else none
                    at = position.get(names[0])
                    if at is not None:
                        events.append(k)
                        symbols.append(at)
                    continue
                for symbol in self.symbols_for(event):
                    events.append(k)
                    symbols.append(position[symbol])
            pairs = self._pairs_memo[wanted] = (np.array(events, dtype=np.int64), np.array(symbols, dtype=np.int64))
        return pairs

    def event_ids_distinct(self) -> bool:
        """Whether every event of the run has its own, non-empty id (what positions stand for in columns)."""
        if self._ids_distinct is None:
            ids = set(map(_ID, self._events))
            self._ids_distinct = len(ids) == len(self._events) and "" not in ids
        return self._ids_distinct

    def entry_session_values(self, events: np.ndarray, symbols: np.ndarray) -> np.ndarray | None:
        """``entry_session`` of each (event position, symbol position) pair as datetime64[ns]; None where the
        per-exchange table cannot answer (a symbol without sessions, an event the calendar cannot place: the
        scalar look-up raises, naming it)."""
        out = np.empty(len(events), dtype="datetime64[ns]")
        if not len(events):
            return out
        exchanges: dict[str, list[int]] = {}
        for at in np.unique(symbols).tolist():
            exchange = self._entry_sessions.exchange_of(self.universe[at])
            if exchange is None:
                return None
            exchanges.setdefault(exchange, []).append(at)
        for exchange, members in exchanges.items():
            values = self._entry_sessions.values(exchange, self.universe[members[0]])
            if values is None:
                return None
            rows = np.isin(symbols, members) if len(exchanges) > 1 else slice(None)
            out[rows] = values[events[rows]]
        return out

    def indicator_values(self, symbols: np.ndarray, sessions: np.ndarray, func: ind.Indicator,
                         *args: Any) -> np.ndarray:
        """``indicator(universe[symbol], session, func, *args)`` of each pair as floats, NaN where it is None."""
        return self._prices.values_at([self.universe[at] for at in symbols.tolist()], symbols, sessions, func, args)

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
        return self._prices.value(symbol, session, ind.close)

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


# What ``timing.known_at`` reads of an event: events equal here become public at the same instant.
_known_key: Callable[[Event], tuple[Any, ...]] = operator.attrgetter("date", "time", "tz", "session_hint", "market")


class EntrySessions:
    """``timing.entry_session`` (normalised to its date) for every (event, symbol) a strategy asks about,
    computed per exchange in one vectorised ``timing.entry_sessions`` call over the distinct known-at instants of
    the run's events (20,000 analyst events of 500 symbols share about 2,000), normalised at once; the events of
    one instant share one Timestamp. Where that batch raises (an event the calendar cannot place), each look-up
    goes through ``timing.entry_session`` itself, which names the event."""

    def __init__(self, events: Sequence[Event], fill: str) -> None:
        self._events = events
        self._fill = fill
        self._exchange: dict[str, str | None] = {}
        self._by_exchange: dict[str, dict[tuple[Any, ...], pd.Timestamp] | None] = {}
        self._values: dict[str, np.ndarray | None] = {}
        self._keys: tuple[dict[tuple[Any, ...], Event], np.ndarray] | None = None
        self._distinct_values: dict[str, np.ndarray] = {}

    def get(self, event: Event, symbol: str) -> pd.Timestamp | None:
        exchange = self._exchange_of(symbol)
        table = self._table(exchange, symbol) if exchange is not None else None
        session = table.get(_known_key(event)) if table is not None else None
        if session is not None:
            return session
        return pd.Timestamp(timing.entry_session(event, symbol, self._fill)).normalize()

    def values(self, exchange: str, symbol: str) -> np.ndarray | None:
        """The normalised entry session of every event (datetime64[ns], in ``events`` order) on ``exchange``
        (``symbol`` one of its symbols); None where the vectorised table cannot be built."""
        if exchange not in self._values:
            values = None
            if self._table(exchange, symbol) is not None:
                values = self._distinct_values[exchange][self._distinct()[1]]
            self._values[exchange] = values
        return self._values[exchange]

    def _distinct(self) -> tuple[dict[tuple[Any, ...], Event], np.ndarray]:
        """The first event of each distinct known-at key, and each event's key number (in ``events`` order)."""
        if self._keys is None:
            numbers: dict[tuple[Any, ...], int] = {}
            firsts: list[Event] = []
            at: list[int] = []
            for event, key in zip(self._events, map(_known_key, self._events), strict=True):
                number = numbers.get(key)
                if number is None:
                    number = numbers[key] = len(firsts)
                    firsts.append(event)
                at.append(number)
            self._keys = (dict(zip(numbers, firsts, strict=True)), np.array(at, dtype=np.int64))
        return self._keys

    def exchange_of(self, symbol: str) -> str | None:
        return self._exchange_of(symbol)

    def _exchange_of(self, symbol: str) -> str | None:
        if symbol not in self._exchange:
            try:
                self._exchange[symbol] = timing.exchange_of(symbol)
            except ConfigError:  # no sessions (an FX pair): the per-event path raises with the symbol
                self._exchange[symbol] = None
        return self._exchange[symbol]

    def _table(self, exchange: str, symbol: str) -> dict[tuple[Any, ...], pd.Timestamp] | None:
        if exchange not in self._by_exchange:
            firsts = self._distinct()[0]
            table: dict[tuple[Any, ...], pd.Timestamp] | None = None
            if firsts:
                try:
                    sessions = timing.entry_sessions(list(firsts.values()), symbol, self._fill).normalize()
                    shared = {day: day for day in sessions.unique().tolist()}  # one object per session
                    table = dict(zip(firsts, [shared[day] for day in sessions.tolist()], strict=True))
                    self._distinct_values[exchange] = np.asarray(sessions.as_unit("ns").to_numpy())
                except ConfigError:
                    table = None
            self._by_exchange[exchange] = table
        return self._by_exchange[exchange]


class PriceViews:
    """Tradable bars per symbol and memoised indicator arrays, read as of a session (strictly before it)."""

    def __init__(self, frames: Mapping[str, pd.DataFrame]) -> None:
        self._frames = frames
        self._tradable: dict[str, pd.DataFrame] = {}
        self._dates: dict[str, np.ndarray] = {}
        self._memo: dict[tuple, np.ndarray] = {}
        self._dates_as_ns: dict[str, np.ndarray] = {}

    def _bars(self, symbol: str) -> pd.DataFrame | None:
        if symbol not in self._tradable:
            frame = self._frames.get(symbol)
            if frame is None:
                return None
            stale = frame["stale"].to_numpy(dtype=bool)
            columns = [frame.columns.get_loc(c) for c in OHLCV]
            tradable: pd.DataFrame
            if all(isinstance(c, int) for c in columns):  # by position: a label look-up is 3 times dearer
                rows = np.flatnonzero(~stale) if stale.any() else slice(None)
                tradable = frame.iloc[rows, columns]  # type: ignore[index,assignment]
            else:
                tradable = frame[list(OHLCV)]
                if stale.any():
                    tradable = tradable.iloc[np.flatnonzero(~stale)]
            self._tradable[symbol] = tradable
            self._dates[symbol] = tradable.index.to_numpy()
        return self._tradable[symbol]

    def dates(self, symbol: str) -> np.ndarray | None:
        bars = self._bars(symbol)
        return None if bars is None or len(bars) == 0 else self._dates[symbol]

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
        if frame is None or len(frame) == 0 or session is None:  # no session (e.g. after the calendar): no value
            return None
        values = self._values(symbol, frame, func, args, kwargs)
        pos = self._before(symbol, session) - 1
        if pos < 0 or not np.isfinite(values[pos]):
            return None
        return float(values[pos])

    def _values(self, symbol: str, frame: pd.DataFrame, func: ind.Indicator, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> np.ndarray:
        key = (symbol, func, args, tuple(sorted(kwargs.items())))
        values = self._memo.get(key)
        if values is None:
            series = func(frame, *args, **kwargs)
            values = np.asarray(series, dtype=float)
            if values.shape != (len(frame),):
                raise ValueError(f"indicator {getattr(func, '__name__', func)!r} returned {values.shape} values "
                                 f"for {len(frame)} bars of {symbol}")
            self._memo[key] = values
        return values

    def values_at(self, names: list[str], keys: np.ndarray, sessions: np.ndarray, func: ind.Indicator,
                  args: tuple[Any, ...]) -> np.ndarray:
        """``value`` of each (names[k], sessions[k]) as floats, NaN for None; ``keys``: an integer per name."""
        out = np.full(len(names), np.nan)
        if not len(names):
            return out
        order = np.argsort(keys, kind="stable")
        starts = np.flatnonzero(np.r_[True, keys[order][1:] != keys[order][:-1]])
        for lo, hi in zip(starts.tolist(), [*starts[1:].tolist(), len(order)], strict=True):
            rows = order[lo:hi]
            symbol = names[int(rows[0])]
            frame = self._bars(symbol)
            if frame is None or len(frame) == 0:
                continue
            values = self._values(symbol, frame, func, args, {})
            wanted = sessions[rows]
            pos = np.searchsorted(self._dates_ns(symbol), wanted, side="left") - 1
            got = np.where(pos >= 0, values[np.maximum(pos, 0)], np.nan)
            got[np.isnat(wanted) | ~np.isfinite(got)] = np.nan
            out[rows] = got
        return out

    def _dates_ns(self, symbol: str) -> np.ndarray:
        dates = self._dates_as_ns.get(symbol)
        if dates is None:
            dates = self._dates_as_ns[symbol] = np.asarray(self._dates[symbol], dtype="datetime64[ns]")
        return dates
