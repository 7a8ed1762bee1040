"""When an event became public and which session a trade on it may enter (the no-lookahead rule).

Exchange sessions come from ``engine.market.calendars`` (exchange-calendars for every venue of the venue
table, built for the range asked for, minus the extra full-day closures in ``event_calendar/closures.csv``).
A date a venue's calendar cannot place (before its start, after its end: XSHG ends 2026-12-31) is a
ConfigError naming the calendar and the date.

Rules (see event_calendar/README.md for the reasoning):

* ``known_at(event)``: explicit local ``time`` -> that instant; ``session_hint`` -> resolved against the
  named market's session on ``event.date`` (before_open = 1 microsecond before the open, during_session =
  1 microsecond before the close, i.e. "some time during the session", after_close = the close); if that
  market has no session that day, or there is no time at all -> end of ``event.date`` in ``event.tz`` (the
  next local midnight). Every choice takes the latest instant the time note allows.
* ``entry_session(event, symbol, "open")``: first session of the symbol's exchange whose open is strictly
  after known_at. ``"close"``: first session whose close is strictly after known_at (a market-on-close order
  placed after the news).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from engine.errors import ConfigError
from engine.events.catalog import Event
from engine.market import calendars
from engine.market.calendars import CLOSURES_PATH, MarketSchedule, load_closures
from engine.market.symbols import listing

__all__ = ["CLOSURES_PATH", "FILLS", "MarketSchedule", "entry_session", "entry_sessions", "exchange_of",
           "first_session_after", "known_at", "known_at_values", "load_closures", "next_sessions", "schedule",
           "session_bounds", "sessions"]

FILLS = ("open", "close")
_EPS = pd.Timedelta(microseconds=1)
# How far past an instant a schedule must reach to find the next session (long holidays: Lunar New Year,
# Golden Week, a week of typhoon days) before we conclude the calendar ends.
_LOOKAHEAD = pd.Timedelta(days=40)


def schedule(exchange: str, start: object = None, end: object = None) -> MarketSchedule:
    """Corrected schedule of ``exchange`` covering ``start..end`` (see engine.market.calendars)."""
    return calendars.schedule(exchange, start, end)


def exchange_of(symbol: str) -> str:
    """Exchange code of a symbol's listing; FX pairs have no sessions and raise ConfigError."""
    exchange = listing(symbol).exchange
    if exchange == "FX":
        raise ConfigError(f"{symbol}: no exchange sessions for this symbol (exchange {exchange})")
    return exchange


def _end_of_day_utc(event: Event) -> pd.Timestamp:
    midnight = dt.datetime.combine(event.date + dt.timedelta(days=1), dt.time(0), ZoneInfo(event.tz))
    return pd.Timestamp(midnight).tz_convert("UTC")


def known_at(event: Event) -> pd.Timestamp:
    """Instant (tz-aware UTC) from which the event is assumed public; conservative, see module doc."""
    if event.time is not None:
        local = dt.datetime.combine(event.date, event.time, ZoneInfo(event.tz))
        return pd.Timestamp(local).tz_convert("UTC")
    if event.session_hint is not None and event.market is not None:
        day = calendars.require(event.market, event.date, f"event {event.id}: date")
        sched = schedule(event.market, day, day)
        pos = sched.index_of(day)
        if pos is None:  # the named market is closed that day: fall back to the date-only rule
            return _end_of_day_utc(event)
        if event.session_hint == "before_open":
            instant = pd.Timestamp(sched.opens[pos]) - _EPS
        elif event.session_hint == "during_session":
            instant = pd.Timestamp(sched.closes[pos]) - _EPS
        else:  # after_close
            instant = pd.Timestamp(sched.closes[pos])
        return instant.tz_localize("UTC")
    return _end_of_day_utc(event)


def known_at_values(events: Sequence[Event]) -> np.ndarray:
    """``known_at`` of each event as UTC datetime64[ns]: the end-of-day rule (no time, no placed session hint)
    localised per time zone at once, every other event through ``known_at``. A local midnight the zone skips
    or repeats (a daylight-saving change at midnight) goes through ``known_at`` too."""
    out = np.empty(len(events), dtype="datetime64[ns]")
    by_zone: dict[str, list[int]] = {}
    for k, event in enumerate(events):
        if event.time is None and (event.session_hint is None or event.market is None):
            by_zone.setdefault(event.tz, []).append(k)
        else:
            out[k] = _as_utc_ns(known_at(event))
    for tz, members in by_zone.items():
        days = np.array([events[k].date for k in members], dtype="datetime64[D]") + np.timedelta64(1, "D")
        try:
            local = pd.DatetimeIndex(days.astype("datetime64[ns]")).tz_localize(
                ZoneInfo(tz), ambiguous="raise", nonexistent="raise")
        except (ValueError, TypeError):  # pandas' AmbiguousTimeError / NonExistentTimeError are ValueErrors
            for k in members:
                out[k] = _as_utc_ns(known_at(events[k]))
            continue
        out[np.array(members)] = local.tz_convert("UTC").tz_localize(None).as_unit("ns").to_numpy()
    return out


def _as_utc_ns(ts: pd.Timestamp) -> np.datetime64:
    ts = pd.Timestamp(ts)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return np.datetime64(ts.tz_localize(None).as_unit("ns"))


def _check_fill(fill: str) -> None:
    if fill not in FILLS:
        raise ConfigError(f"unknown fill {fill!r} (expected open or close)")


def _bounds_after(exchange: str, instant: pd.Timestamp, fill: str) -> tuple[MarketSchedule, np.ndarray]:
    day = calendars.require(exchange, instant, f"{exchange}: instant")
    sched = schedule(exchange, day - pd.Timedelta(days=7), day + _LOOKAHEAD)
    return sched, (sched.opens if fill == "open" else sched.closes)


def _no_session_after(exchange: str, instant: object) -> ConfigError:
    last = calendars.calendar_bounds(exchange)[1]
    return ConfigError(f"{exchange}: no session after {instant}: the {exchange} calendar of exchange-calendars "
                       f"ends {last.date()}")


def first_session_after(exchange: str, instant: pd.Timestamp, fill: str = "open") -> pd.Timestamp:
    """First session whose open (fill="open") or close (fill="close") is strictly after ``instant``."""
    _check_fill(fill)
    sched, bounds = _bounds_after(exchange, instant, fill)
    pos = int(np.searchsorted(bounds, _as_utc_ns(instant), side="right"))
    if pos >= len(sched.sessions):
        raise _no_session_after(exchange, instant)
    return sched.sessions[pos]


def entry_session(event: Event, symbol: str, fill: str = "open") -> pd.Timestamp:
    """Session date (tz-naive) on the symbol's exchange where a trade on ``event`` may first fill."""
    _check_fill(fill)
    return first_session_after(exchange_of(symbol), known_at(event), fill)


def entry_sessions(events: Sequence[Event], symbol: str, fill: str = "open") -> pd.DatetimeIndex:
    """Vectorised ``entry_session`` for many events on one symbol (same order as ``events``)."""
    _check_fill(fill)
    exchange = exchange_of(symbol)
    if not events:
        return pd.DatetimeIndex([])
    instants = known_at_values(events)
    lo, hi = (pd.Timestamp(instants.min()).tz_localize("UTC"), pd.Timestamp(instants.max()).tz_localize("UTC"))
    calendars.require(exchange, lo, f"{exchange}: event known at")
    calendars.require(exchange, hi, f"{exchange}: event known at")
    sched = schedule(exchange, calendars.as_day(lo) - pd.Timedelta(days=7), calendars.as_day(hi) + _LOOKAHEAD)
    bounds = sched.opens if fill == "open" else sched.closes
    pos = np.searchsorted(bounds, instants, side="right")
    if int(pos.max()) >= len(sched.sessions):
        raise _no_session_after(exchange, known_at(events[int(np.argmax(pos))]))
    return pd.DatetimeIndex(sched.sessions[pos])


def sessions(exchange: str, start: object, end: object) -> pd.DatetimeIndex:
    """Corrected session dates (tz-naive) of ``exchange`` between ``start`` and ``end`` inclusive."""
    lo, hi = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()  # type: ignore[arg-type]
    if lo > hi:
        raise ConfigError(f"start {lo.date()} is after end {hi.date()}")
    return calendars.session_dates(exchange, lo, hi)


def next_sessions(exchange: str, session: object, n: int = 1) -> pd.DatetimeIndex:
    """The ``n`` sessions strictly after ``session`` (which need not itself be a session)."""
    if n < 0:
        raise ConfigError(f"n must be >= 0, got {n}")
    day = calendars.require(exchange, session, f"{exchange}: session")
    reach = _LOOKAHEAD + pd.Timedelta(days=2 * n)
    while True:
        sched = schedule(exchange, day, day + reach)
        pos = int(sched.sessions.searchsorted(day, side="right"))
        if pos + n <= len(sched.sessions):
            return sched.sessions[pos : pos + n]
        if sched.last >= calendars.calendar_bounds(exchange)[1]:
            raise ConfigError(f"{exchange}: fewer than {n} sessions after {day.date()}: the {exchange} calendar "
                              f"of exchange-calendars ends {sched.last.date()}")
        reach = reach * 2


def session_bounds(exchange: str, session: object) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(open, close) of a session as tz-aware UTC instants; ConfigError if the day is not a session."""
    day = calendars.require(exchange, session, f"{exchange}: session")
    sched = schedule(exchange, day, day)
    pos = sched.index_of(day)
    if pos is None:
        raise ConfigError(f"{exchange}: {day.date()} is not a session")
    return (
        pd.Timestamp(sched.opens[pos]).tz_localize("UTC"),
        pd.Timestamp(sched.closes[pos]).tz_localize("UTC"),
    )
