"""The warm-up: history a strategy reads before the run's first session (declared by ``Strategy.warmup()``).

A run loads the price frame from far enough back, then keeps exactly ``sessions`` tradable bars before the
start (plus every bar of the run). Those bars are never traded; they only feed the as-of price views. Keeping
exactly the declared number (not whatever the cache happens to hold) makes a run's signals independent of how
far back the cache goes, and a sweep point equal to the same run.

When the data has fewer bars before the start, the run goes on with what there is and a warning names the
symbol (indicators needing the missing bars read None until enough bars exist).
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import pandas as pd

from engine.errors import EvbtWarning, MissingDataError

if TYPE_CHECKING:
    from engine.prices.store import PriceStore


def load_start(start: dt.date, sessions: int) -> dt.date:
    """A calendar day early enough to hold ``sessions`` trading sessions before ``start`` (with room for holidays
    and missing bars: two calendar days per session plus ten)."""
    return start - dt.timedelta(days=2 * max(0, sessions) + 10)


def with_warmup(full: pd.DataFrame, symbol: str, start: dt.date, sessions: int) -> tuple[pd.DataFrame, str | None]:
    """``full`` cut to exactly ``sessions`` tradable bars before ``start`` plus every bar from ``start`` on.

    Returns (frame, note); note says how short the warm-up is when the data does not have it (else None)."""
    index = full.index
    first = int(index.searchsorted(pd.Timestamp(start), side="left"))
    if sessions <= 0:
        return full.iloc[first:], None
    tradable = (~full["stale"].to_numpy()[:first]).nonzero()[0]
    if len(tradable) >= sessions:
        return full.iloc[int(tradable[-sessions]):], None
    have = len(tradable)
    begin = f"its data begins {index[0].date()}" if len(index) else "no data"
    note = (f"{symbol}: warm-up needs {sessions} sessions before {start}, the data has {have} ({begin}); "
            f"indicators read None until enough bars exist (if the listing is older: "
            f"`evbt data fetch {symbol} --start ...`)")
    return full.iloc[int(tradable[0]) if have else first:], note


class WarmupFrames(Mapping[str, pd.DataFrame]):
    """``{symbol: with_warmup(frame, symbol, start, sessions)[0]}`` over ``history``, each cut when first read:
    a strategy that reads no price (an event rule without a filter) never pays for 500 frame slices."""

    def __init__(self, history: Mapping[str, pd.DataFrame], start: dt.date, sessions: int) -> None:
        self._history = history
        self._start = start
        self._sessions = sessions
        self._cut: dict[str, pd.DataFrame] = {}

    def __getitem__(self, symbol: str) -> pd.DataFrame:
        frame = self._cut.get(symbol)
        if frame is None:
            frame = self._cut[symbol] = with_warmup(self._history[symbol], symbol, self._start, self._sessions)[0]
        return frame

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._history

    def __iter__(self) -> Iterator[str]:
        return iter(self._history)

    def __len__(self) -> int:
        return len(self._history)


def load_with_warmup(store: PriceStore, symbol: str, start: dt.date, end: dt.date, sessions: int) -> pd.DataFrame:
    """Bars of ``symbol`` from ``sessions`` tradable bars before ``start`` to ``end``; warns when short.

    A cache that does not reach back far enough is not an error (offline it cannot be filled): the run uses the
    cached bars before the start it has and says so."""
    lo = load_start(start, sessions)
    try:
        full = store.load(symbol, lo, end)
    except MissingDataError:
        if sessions <= 0:
            raise
        trading = store.load(symbol, start, end)  # the run's own bars: required
        earlier = store.read_all(symbol) if store.has(symbol) else None
        if earlier is not None:
            earlier = earlier.loc[pd.Timestamp(lo): pd.Timestamp(start) - pd.Timedelta(days=1)]
        full = trading if earlier is None or earlier.empty else pd.concat([earlier, trading])
    frame, note = with_warmup(full, symbol, start, sessions)
    if note is not None and bool((frame.index >= pd.Timestamp(start)).any()):  # else the run leaves it out
        warnings.warn(note, EvbtWarning, stacklevel=2)
    return frame


def with_cached_history(store: PriceStore, symbol: str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` preceded by every cached bar of ``symbol`` before its first date (no network).

    Sweeps load once for all their points, whose warm-ups differ; each point then keeps its own
    (``with_warmup``). A sweep uses the history the cache holds: it does not fetch more."""
    if frame.empty:
        return frame
    try:
        first = store.read_meta(symbol).get("first_date")  # of the version ``frame`` came from (no second read)
    except MissingDataError:
        return frame  # not cached
    if first is not None and str(first) >= frame.index[0].date().isoformat():
        return frame  # the cache holds nothing before the frame's first bar (ISO dates compare as text)
    if not store.has(symbol):
        return frame
    cached = store.read_all(symbol)
    earlier = cached.loc[cached.index < frame.index[0]]
    return frame if earlier.empty else pd.concat([earlier, frame])
