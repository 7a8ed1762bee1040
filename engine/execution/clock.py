"""The market clock: every fill point is an instant (a session open or close of the symbol's exchange, in UTC).

``bar_instants`` gives, for each price bar of one symbol, the UTC instants of its session's open and close and the
session's ordinal on the exchange calendar (``hold`` counts these, not price bars). ``Clock`` merges the fill
instants of every symbol of a run into one sorted list of ticks: on a date both trade, HK open (01:30 UTC),
HK close (08:00 UTC), US open (13:30 or 14:30 UTC), US close. Both drivers process fills tick by tick in that order.

Instants are int64 nanoseconds since the epoch (UTC), so comparisons are plain integer comparisons.
"""

from __future__ import annotations

import datetime as dt
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
    index = pd.DatetimeIndex(dates)
    if index.tz is None:  # midnight of each date in numpy (DatetimeIndex.normalize costs ~0.6 ms a call)
        days = index.as_unit("ns").to_numpy().astype("datetime64[D]").astype("datetime64[ns]")
    else:
        days = index.normalize().as_unit("ns").to_numpy()
    # the schedule must cover the bars (calendars are built for the range a run needs, not a fixed window)
    sched = (timing.schedule(exchange, pd.Timestamp(days.min()), pd.Timestamp(days.max())) if len(days)
             else timing.schedule(exchange))
    sessions = sched.sessions.as_unit("ns").to_numpy()
    pos = np.searchsorted(sessions, days, side="left")
    opens = sched.opens.astype("datetime64[ns]").astype(np.int64)
    closes = sched.closes.astype("datetime64[ns]").astype(np.int64)
    n = len(sessions)
    exact = (pos < n) & (sessions[np.minimum(pos, n - 1)] == days)
    ref = np.where(exact, pos, np.clip(pos - 1, 0, n - 1))
    shift = days.astype(np.int64) - sessions[ref].astype(np.int64)
    return opens[ref] + shift, closes[ref] + shift, pos.astype(np.int32)


def bar_instants(exchange: str, dates: pd.DatetimeIndex) -> BarInstants:
    open_at, close_at, session = session_instants(exchange, dates)
    return BarInstants(open_at, close_at, session)


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
        stacked = np.concatenate(fill_instants) if fill_instants else np.zeros(0, dtype=np.int64)
        instants = np.unique(stacked)
        return cls(instants, [np.searchsorted(instants, inst).astype(np.int32) for inst in fill_instants])


_EPOCH = dt.datetime(1970, 1, 1)


def iso_utc(ns: int) -> str:
    """An instant as ISO 8601 UTC text, e.g. 2022-05-18T01:30:00Z (whole seconds, sub-seconds dropped)."""
    return (_EPOCH + dt.timedelta(seconds=int(ns) // 1_000_000_000)).strftime("%Y-%m-%dT%H:%M:%SZ")
