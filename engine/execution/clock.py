"""The market clock: every fill point is an instant (a session open or close of the symbol's exchange, in UTC).

``bar_instants`` gives, for each price bar of one symbol, the UTC instants of its session's open and close and the
session's ordinal on the exchange calendar (``hold`` counts these, not price bars). ``Clock`` merges the fill
instants of every symbol of a run into one sorted list of ticks: on a date both trade, HK open (01:30 UTC),
HK close (08:00 UTC), US open (13:30 or 14:30 UTC), US close. Both drivers process fills tick by tick in that order.

Instants are int64 nanoseconds since the epoch (UTC), so comparisons are plain integer comparisons.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.events import timing


@dataclass(frozen=True)
class BarInstants:
    """Per bar of one symbol: open and close instants (int64 ns UTC) and the session ordinal on its exchange
    (int32)."""

    open_at: np.ndarray
    close_at: np.ndarray
    session: np.ndarray


def session_instants(exchange: str, dates: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(open, close, ordinal) of the sessions of ``exchange`` dated ``dates`` (tz-naive session dates).

    A date that is not a session of the (corrected) calendar, e.g. a bar Yahoo wrote on an unlisted closure,
    takes the open/close time of day of the nearest session before it and the ordinal of the next session.
    """
    return session_instants_many(exchange, [dates])[0]


def session_instants_many(exchange: str, indexes: Sequence[pd.DatetimeIndex]
                          ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``session_instants`` of several bar indexes of one exchange (the books of a market), read against one
    schedule covering them all: the calendar is looked up and converted once, not once per book. Indexes
    whose session dates are equal share one (read-only) result, so a universe of symbols trading the same
    days holds one copy of those arrays."""
    days_of = [_days(ix) for ix in indexes]
    lows = [d.min() for d in days_of if len(d)]
    # the schedule must cover the bars (calendars are built for the range a run needs, not a fixed window)
    sched = (timing.schedule(exchange, pd.Timestamp(min(lows)), pd.Timestamp(max(d.max() for d in days_of if len(d))))
             if lows else timing.schedule(exchange))
    sessions = sched.sessions.as_unit("ns").to_numpy()
    opens = sched.opens.astype("datetime64[ns]").astype(np.int64)
    closes = sched.closes.astype("datetime64[ns]").astype(np.int64)
    starts = sessions.astype(np.int64)
    n = len(sessions)
    done: dict[tuple[int, int, int], list[tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]]] = {}
    out = []
    for days in days_of:
        key = (len(days), int(days[0].astype(np.int64)), int(days[-1].astype(np.int64))) if len(days) else (0, 0, 0)
        same = done.setdefault(key, [])
        shared = next((got for seen, got in same if np.array_equal(seen, days)), None)
        if shared is None:
            pos = np.searchsorted(sessions, days, side="left")
            exact = (pos < n) & (sessions[np.minimum(pos, n - 1)] == days)
            ref = np.where(exact, pos, np.clip(pos - 1, 0, n - 1))
            shift = days.astype(np.int64) - starts[ref]
            shared = (opens[ref] + shift, closes[ref] + shift, pos.astype(np.int32))
            for array in shared:
                array.flags.writeable = False
            same.append((days, shared))
        out.append(shared)
    return out


def _days(dates: pd.DatetimeIndex) -> np.ndarray:
    """Midnight (datetime64[ns]) of each stamp's date."""
    index = dates if type(dates) is pd.DatetimeIndex else pd.DatetimeIndex(dates)
    if index.tz is None:  # midnight of each date in numpy (DatetimeIndex.normalize costs ~0.6 ms a call)
        return index.values.astype("datetime64[D]").astype("datetime64[ns]")
    return index.normalize().as_unit("ns").to_numpy()


def bar_instants(exchange: str, dates: pd.DatetimeIndex) -> BarInstants:
    open_at, close_at, session = session_instants(exchange, dates)
    return BarInstants(open_at, close_at, session)


def bar_instants_many(exchange: str, indexes: Sequence[pd.DatetimeIndex]) -> list[BarInstants]:
    return [BarInstants(*arrays) for arrays in session_instants_many(exchange, indexes)]


class Clock:
    """All fill instants of a run in UTC order.

    ``instants[t]`` is tick ``t``; ``tick_of[k][i]`` the tick of book ``k``'s bar ``i`` (one int32 array per
    book: same-instant fills across venues are one tick).
    """

    def __init__(self, instants: np.ndarray, ticks: list[np.ndarray]) -> None:
        self.instants = instants
        self.tick_of = ticks

    @classmethod
    def build(cls, fill_instants: list[np.ndarray]) -> Clock:
        """Books sharing one instants array (the same session dates) share one ``tick_of`` array too."""
        distinct = list({id(inst): inst for inst in fill_instants}.values())
        stacked = np.concatenate(distinct) if distinct else np.zeros(0, dtype=np.int64)
        instants = np.unique(stacked)
        ticks: dict[int, np.ndarray] = {}
        for inst in distinct:
            tick_of = ticks[id(inst)] = np.searchsorted(instants, inst).astype(np.int32)
            tick_of.flags.writeable = False
        return cls(instants, [ticks[id(inst)] for inst in fill_instants])


_EPOCH = dt.datetime(1970, 1, 1)


def iso_utc(ns: int) -> str:
    """An instant as ISO 8601 UTC text, e.g. 2022-05-18T01:30:00Z (whole seconds, sub-seconds dropped)."""
    return (_EPOCH + dt.timedelta(seconds=int(ns) // 1_000_000_000)).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_utc_many(ns: np.ndarray) -> list[str]:
    """``iso_utc`` of each instant (int64 ns), in one numpy pass: whole seconds (floored), then ``Z``."""
    seconds = np.asarray(ns, dtype=np.int64).view("datetime64[ns]").astype("datetime64[s]")
    return [text + "Z" for text in np.datetime_as_string(seconds, unit="s").tolist()]
