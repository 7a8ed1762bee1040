"""The one fill-bar rule: which bar of a symbol's price frame a signal for a session fills on.

The first non-stale bar dated on or after the session, however far (a suspension or an unlisted closure moves
the fill to the next bar); a session after the last bar or before the frame's first bar (an earlier period, or
before the listing) is skipped, never moved forward. ``placements`` answers it for many sessions of one frame
at once (numpy); ``PlacementMemo`` keeps the answers, each frame's bar arrays and the fill dates for the points
of a sweep that share one period's frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

Placement = tuple  # ("bar", index, date) or ("skip", date text, reason)

NO_DATA: Placement = ("skip", "", "no price data in the run period")
NO_SESSION: Placement = ("skip", "", "no session after the event")


def fill_bars(frame: pd.DataFrame, sessions: Sequence[pd.Timestamp]) -> np.ndarray:
    """Index of the first non-stale bar dated on or after each session (-1 where there is none)."""
    wanted = np.array([pd.Timestamp(s).to_datetime64() for s in sessions], dtype="datetime64[ns]")
    return Bars.of(frame).fill_bars(wanted)


def fill_bar(frame: pd.DataFrame, session: pd.Timestamp) -> int | None:
    """Index of the first non-stale bar dated on or after ``session`` (None if there is none)."""
    bar = int(fill_bars(frame, [pd.Timestamp(session)])[0])
    return bar if bar >= 0 else None


class Bars:
    """A price frame's dates (datetime64[ns]) and tradable (non-stale) bar positions, read from pandas once."""

    __slots__ = ("dates", "first", "index", "tradable")

    def __init__(self, index: pd.Index, dates: np.ndarray, tradable: np.ndarray) -> None:
        self.index = index
        self.dates = dates
        self.tradable = tradable
        self.first = dates[0] if len(dates) else None

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Bars:
        index = frame.index
        if isinstance(index, pd.DatetimeIndex) and index.tz is None:  # its integers, read without a pandas copy
            dates = index.asi8.view(f"datetime64[{index.unit}]")
        else:
            dates = index.to_numpy()
        tradable = np.flatnonzero(~frame["stale"].to_numpy(dtype=bool))
        return cls(index, np.asarray(dates, dtype="datetime64[ns]"), tradable)

    def fill_bars(self, wanted: np.ndarray) -> np.ndarray:
        first = np.searchsorted(self.dates, wanted, side="left")
        j = self.tradable.searchsorted(first, side="left")
        out = np.full(len(j), -1, dtype=np.int64)
        found = j < len(self.tradable)
        out[found] = self.tradable[j[found]]
        return out


def placements(frame: pd.DataFrame | None, sessions: Sequence[pd.Timestamp | None]) -> list[Placement]:
    """Where signals for ``sessions`` fill in ``frame``: ("bar", index, date) or ("skip", date text, reason) each
    (the module's rule)."""
    if frame is None or frame.empty:
        return [NO_DATA for _ in sessions]
    return place(Bars.of(frame), sessions, {})


def placement(frame: pd.DataFrame | None, session: pd.Timestamp | None) -> Placement:
    """``placements`` for one session."""
    return placements(frame, [session])[0]


def place(bars: Bars, sessions: Sequence[pd.Timestamp | None], dates: dict[Any, dict[int, pd.Timestamp]]
          ) -> list[Placement]:
    """``placements`` on a non-empty frame's ``bars``; ``dates`` memoises the fill dates (one Timestamp per
    (index dtype, instant), shared by every frame of that dtype)."""
    known = [(k, s) for k, s in enumerate(sessions) if s is not None]
    if not all(type(s) is pd.Timestamp and s.tzinfo is None for _, s in known):
        known = [(k, pd.Timestamp(s)) for k, s in known]
        if not all(s.tzinfo is None for _, s in known):
            return _place_aware(bars, sessions, known)
    out: list[Placement] = [NO_SESSION] * len(sessions)
    if not known:
        return out
    wanted = np.array([s.value for _, s in known], dtype=np.int64).view("datetime64[ns]")
    found = bars.fill_bars(wanted).tolist()
    early = (wanted < bars.first).tolist()
    index = bars.index
    values = bars.dates.view(np.int64)
    memo = dates.setdefault(index.dtype, {})
    for (k, session), bar, before in zip(known, found, early, strict=True):
        if bar < 0:
            out[k] = ("skip", str(session.date()), "entry session after the last bar of the run")
        elif before:
            # The fill point is before this symbol's first bar in the run: it belongs to an earlier period (or the
            # listing did not exist yet) and must not be moved forward to the first available bar.
            out[k] = ("skip", str(session.date()), "fill session before the symbol's first bar in the run")
        else:
            value = int(values[bar])
            date = memo.get(value)
            if date is None:
                date = memo[value] = index[bar]
            out[k] = ("bar", bar, date)
    return out


def _place_aware(bars: Bars, sessions: Sequence[pd.Timestamp | None], known: list[tuple[int, pd.Timestamp]]
                 ) -> list[Placement]:
    """``place`` where some session is tz-aware (an explicit ``Signal.session``): compared as pandas does."""
    found = bars.fill_bars(np.array([s.to_datetime64() for _, s in known], dtype="datetime64[ns]"))
    first = bars.index[0]
    dates = bars.index[np.maximum(found, 0)].tolist()
    out: list[Placement] = [NO_SESSION] * len(sessions)
    for (k, session), bar, date in zip(known, found.tolist(), dates, strict=True):
        if bar < 0:
            out[k] = ("skip", str(session.date()), "entry session after the last bar of the run")
        elif session < first:
            out[k] = ("skip", str(session.date()), "fill session before the symbol's first bar in the run")
        else:
            out[k] = ("bar", bar, date)
    return out


class BarTable:
    """Every non-empty frame's ``Bars`` by rank, to place many (symbol rank, session) pairs at once: the rows
    sorted by rank, then two searchsorted calls per symbol (the fill rule of ``place``) and the rest in numpy
    over all rows. Only for frames of one tz-naive index dtype (``of`` returns None otherwise)."""

    AFTER_LAST, BEFORE_FIRST, NO_SESSION = 1, 2, 3

    def __init__(self, ranks: dict[str, int], bars: list[Bars], dtype: Any) -> None:
        self.ranks = ranks
        self._bars = bars
        self._firsts = np.array([b.first for b in bars], dtype="datetime64[ns]")
        self.dtype = dtype

    @classmethod
    def of(cls, bars: dict[str, Bars]) -> BarTable | None:
        kept = [(symbol, b) for symbol, b in bars.items() if len(b.dates)]
        if not kept or len({b.index.dtype for _, b in kept}) != 1 or getattr(kept[0][1].index, "tz", None):
            return None  # one tz-naive dtype: one memo of boxed fill dates
        return cls({symbol: k for k, (symbol, _) in enumerate(kept)}, [b for _, b in kept], kept[0][1].index.dtype)

    def place(self, ranks: np.ndarray, sessions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(status: 0 placed, AFTER_LAST, BEFORE_FIRST or NO_SESSION; bar index in the symbol's frame; that bar's
        date as int64 nanoseconds) of each (rank, datetime64[ns] session) pair."""
        n = len(ranks)
        bar = np.full(n, -1, dtype=np.int64)
        day = np.zeros(n, dtype=np.int64)
        order = np.argsort(ranks, kind="stable")
        ordered = ranks[order]
        cuts = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
        for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), n], strict=True) if n else ():
            rows = order[lo:hi]
            bars = self._bars[int(ordered[lo])]
            tradable = bars.tradable
            j = tradable.searchsorted(bars.dates.searchsorted(sessions[rows], side="left"), side="left")
            found = j < len(tradable)
            at = tradable[np.minimum(j, len(tradable) - 1)] if len(tradable) else np.zeros(len(rows), np.int64)
            bar[rows] = np.where(found, at, -1)
            day[rows] = bars.dates.view(np.int64)[at] if len(tradable) else 0
        none = np.isnat(sessions)
        status = np.where(none, self.NO_SESSION, np.where(bar < 0, self.AFTER_LAST,
                                                           np.where(sessions < self._firsts[ranks], self.BEFORE_FIRST,
                                                                    0)))
        return status, bar, day


class PlacementMemo(dict[tuple[str, Any], Placement]):
    """The (symbol, session) -> placement memo of one period's frames and fill, and beside it the placement of
    each (symbol, event id) signal without an explicit session (string keys: no session to derive and hash),
    each frame's ``Bars`` and the fill dates (one Timestamp per instant, shared by every symbol)."""

    def __init__(self) -> None:
        super().__init__()
        self.by_event: dict[tuple[str, str], Placement] = {}
        self.bars: dict[str, Bars] = {}
        self.dates: dict[Any, dict[int, pd.Timestamp]] = {}
        self._table: tuple[BarTable | None] | None = None

    def table(self, frames: dict[str, pd.DataFrame]) -> BarTable | None:
        """The ``BarTable`` of ``frames`` (the frames this memo belongs to), built once."""
        if self._table is None:
            for symbol, frame in frames.items():
                if symbol not in self.bars and not frame.empty:
                    self.bars[symbol] = Bars.of(frame)
            self._table = (BarTable.of({s: self.bars[s] for s in frames if s in self.bars}),)
        return self._table[0]


def place_missing(memo: dict[tuple[str, Any], Placement], frames: dict[str, pd.DataFrame],
                  missing: dict[str, list[Any]]) -> None:
    """Fill ``memo`` for each symbol's distinct sessions it lacks (``missing``): one vectorised ``place`` per
    symbol. ``frames`` must be the frames the memo belongs to."""
    dates = memo.dates if isinstance(memo, PlacementMemo) else {}
    known_bars = memo.bars if isinstance(memo, PlacementMemo) else {}
    for symbol, sessions in missing.items():
        frame = frames.get(symbol)
        if frame is None or frame.empty:
            found = [NO_DATA] * len(sessions)
        else:
            bars = known_bars.get(symbol)
            if bars is None:
                bars = known_bars[symbol] = Bars.of(frame)
            found = place(bars, sessions, dates)
        for session, placed in zip(sessions, found, strict=True):
            memo[(symbol, session)] = placed
