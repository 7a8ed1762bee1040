"""When an event became public and which session a trade on it may enter (the no-lookahead rule).

Exchange sessions come from exchange-calendars (XHKG, XNYS: holidays, HK half days, the HK lunch break and
US daylight saving are modelled there), minus the extra full-day closures in
``event_calendar/closures.csv`` (e.g. HK typhoon days the library lists as sessions). The corrections are
applied by post-filtering the schedule, so every function here sees the same corrected sessions.

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

import csv
import datetime as dt
import hashlib
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from engine.errors import ConfigError
from engine.events.catalog import CALENDAR_DIR, MARKETS, Event
from engine.market.symbols import listing

CLOSURES_PATH = CALENDAR_DIR / "closures.csv"
FILLS = ("open", "close")
# Padded range the calendars are built for; events must fall well inside it.
CALENDAR_START = pd.Timestamp("2015-01-01")
CALENDAR_END = pd.Timestamp("2027-12-31")
_EPS = pd.Timedelta(microseconds=1)


@dataclass(frozen=True)
class MarketSchedule:
    """Corrected sessions of one exchange as sorted arrays (UTC instants as datetime64[ns], tz-naive)."""

    exchange: str
    sessions: pd.DatetimeIndex  # tz-naive session dates
    opens: np.ndarray
    closes: np.ndarray

    def index_of(self, session: pd.Timestamp) -> int | None:
        pos = int(self.sessions.searchsorted(session))
        if pos < len(self.sessions) and self.sessions[pos] == session:
            return pos
        return None


def load_closures() -> dict[str, set[pd.Timestamp]]:
    """Extra full-day closures per exchange from ``event_calendar/closures.csv``."""
    out: dict[str, set[pd.Timestamp]] = {m: set() for m in MARKETS}
    with CLOSURES_PATH.open(encoding="utf-8", newline="") as fh:
        for lineno, row in enumerate(csv.DictReader(fh), start=2):
            exchange = (row.get("exchange") or "").strip()
            try:
                day = pd.Timestamp(dt.date.fromisoformat((row.get("date") or "").strip()))
            except ValueError:
                raise ConfigError(f"{CLOSURES_PATH}:{lineno}: bad date {row.get('date')!r}") from None
            if exchange not in out:
                raise ConfigError(f"{CLOSURES_PATH}:{lineno}: unknown exchange {exchange!r}")
            out[exchange].add(day)
    return out


def _utc_naive_ns(values: pd.Series) -> np.ndarray:
    return values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ns]")


# Optional folder where built schedules are kept between processes (set by the CLI to <cache>/.calendars).
# Building XHKG and XNYS with exchange-calendars costs about 0.45 s a process; reading them back ~5 ms.
_SCHEDULE_CACHE_DIR: Path | None = None


def use_schedule_cache(folder: Path | None) -> None:
    """Keep built schedules in ``folder`` (keyed by exchange-calendars version, range and closures file)."""
    global _SCHEDULE_CACHE_DIR
    _SCHEDULE_CACHE_DIR = Path(folder) if folder is not None else None


def _schedule_cache_file(exchange: str) -> Path | None:
    if _SCHEDULE_CACHE_DIR is None:
        return None
    from importlib.metadata import version

    key = "|".join([exchange, version("exchange-calendars"), str(CALENDAR_START.date()), str(CALENDAR_END.date()),
                    hashlib.sha256(CLOSURES_PATH.read_bytes()).hexdigest()])
    return _SCHEDULE_CACHE_DIR / f"{exchange}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def _read_cached_schedule(exchange: str, path: Path) -> MarketSchedule | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            sessions = pd.DatetimeIndex(data["sessions"].astype("datetime64[ns]"))
            return MarketSchedule(exchange, sessions, data["opens"], data["closes"])
    except (OSError, KeyError, ValueError):
        return None  # absent or damaged: rebuild


def _write_cached_schedule(sched: MarketSchedule, path: Path) -> None:
    from engine.atomic import atomic_write_bytes
    from engine.errors import DataError

    buffer = io.BytesIO()
    np.savez(buffer, sessions=sched.sessions.to_numpy().astype("datetime64[ns]"), opens=sched.opens,
             closes=sched.closes)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue())
    except (OSError, DataError):
        pass  # a read-only cache only costs the rebuild next time


@cache
def schedule(exchange: str) -> MarketSchedule:
    """Corrected schedule of ``exchange`` (built once per process, or read from the schedule cache)."""
    if exchange not in MARKETS:
        raise ConfigError(f"no exchange calendar for {exchange!r} (expected one of: {', '.join(MARKETS)})")
    cache_file = _schedule_cache_file(exchange)
    if cache_file is not None and cache_file.is_file():
        cached = _read_cached_schedule(exchange, cache_file)
        if cached is not None:
            return cached
    sched = _build_schedule(exchange)
    if cache_file is not None:
        _write_cached_schedule(sched, cache_file)
    return sched


def _build_schedule(exchange: str) -> MarketSchedule:
    import exchange_calendars as xcals

    with warnings.catch_warnings():
        # exchange-calendars 4.13 under pandas 3.1 emits Pandas4Warning deprecations; not ours to fix.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        cal = xcals.get_calendar(exchange, start=CALENDAR_START, end=CALENDAR_END)
        frame = cal.schedule
    closed = load_closures()[exchange]
    if closed:
        frame = frame[~frame.index.isin(list(closed))]
    sessions = pd.DatetimeIndex(frame.index).tz_localize(None).normalize()
    return MarketSchedule(exchange, sessions, _utc_naive_ns(frame["open"]), _utc_naive_ns(frame["close"]))


def exchange_of(symbol: str) -> str:
    """Exchange code of a symbol's listing; FX pairs have no sessions and raise ConfigError."""
    exchange = listing(symbol).exchange
    if exchange not in MARKETS:
        raise ConfigError(f"{symbol}: no exchange sessions for this symbol (exchange {exchange})")
    return exchange


def _check_range(day: pd.Timestamp, what: str) -> None:
    lo, hi = CALENDAR_START + pd.Timedelta(days=10), CALENDAR_END - pd.Timedelta(days=30)
    if not lo <= day <= hi:
        raise ConfigError(f"{what} {day.date()} is outside the supported range {lo.date()}..{hi.date()}")


def _end_of_day_utc(event: Event) -> pd.Timestamp:
    midnight = dt.datetime.combine(event.date + dt.timedelta(days=1), dt.time(0), ZoneInfo(event.tz))
    return pd.Timestamp(midnight).tz_convert("UTC")


def known_at(event: Event) -> pd.Timestamp:
    """Instant (tz-aware UTC) from which the event is assumed public; conservative, see module doc."""
    _check_range(pd.Timestamp(event.date), f"event {event.id}: date")
    if event.time is not None:
        local = dt.datetime.combine(event.date, event.time, ZoneInfo(event.tz))
        return pd.Timestamp(local).tz_convert("UTC")
    if event.session_hint is not None and event.market is not None:
        sched = schedule(event.market)
        pos = sched.index_of(pd.Timestamp(event.date))
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


def _as_utc_ns(ts: pd.Timestamp) -> np.datetime64:
    ts = pd.Timestamp(ts)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return np.datetime64(ts.tz_localize(None).as_unit("ns"))


def _check_fill(fill: str) -> None:
    if fill not in FILLS:
        raise ConfigError(f"unknown fill {fill!r} (expected open or close)")


def first_session_after(exchange: str, instant: pd.Timestamp, fill: str = "open") -> pd.Timestamp:
    """First session whose open (fill="open") or close (fill="close") is strictly after ``instant``."""
    _check_fill(fill)
    sched = schedule(exchange)
    bounds = sched.opens if fill == "open" else sched.closes
    pos = int(np.searchsorted(bounds, _as_utc_ns(instant), side="right"))
    if pos >= len(sched.sessions):
        raise ConfigError(f"{exchange}: no session after {instant} within the calendar range")
    return sched.sessions[pos]


def entry_session(event: Event, symbol: str, fill: str = "open") -> pd.Timestamp:
    """Session date (tz-naive) on the symbol's exchange where a trade on ``event`` may first fill."""
    _check_fill(fill)
    return first_session_after(exchange_of(symbol), known_at(event), fill)


def entry_sessions(events: Sequence[Event], symbol: str, fill: str = "open") -> pd.DatetimeIndex:
    """Vectorised ``entry_session`` for many events on one symbol (same order as ``events``)."""
    _check_fill(fill)
    sched = schedule(exchange_of(symbol))
    bounds = sched.opens if fill == "open" else sched.closes
    instants = np.array([_as_utc_ns(known_at(e)) for e in events], dtype="datetime64[ns]")
    pos = np.searchsorted(bounds, instants, side="right")
    if len(pos) and int(pos.max()) >= len(sched.sessions):
        raise ConfigError(f"{sched.exchange}: an event is after the last session in the calendar range")
    return pd.DatetimeIndex(sched.sessions[pos])


def sessions(exchange: str, start: object, end: object) -> pd.DatetimeIndex:
    """Corrected session dates (tz-naive) of ``exchange`` between ``start`` and ``end`` inclusive."""
    sched = schedule(exchange)
    lo, hi = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if lo > hi:
        raise ConfigError(f"start {lo.date()} is after end {hi.date()}")
    _check_range(lo, "start")
    _check_range(hi, "end")
    return sched.sessions[(sched.sessions >= lo) & (sched.sessions <= hi)]


def next_sessions(exchange: str, session: object, n: int = 1) -> pd.DatetimeIndex:
    """The ``n`` sessions strictly after ``session`` (which need not itself be a session)."""
    if n < 0:
        raise ConfigError(f"n must be >= 0, got {n}")
    sched = schedule(exchange)
    day = pd.Timestamp(session).normalize()
    _check_range(day, "session")
    pos = int(sched.sessions.searchsorted(day, side="right"))
    if pos + n > len(sched.sessions):
        raise ConfigError(f"{exchange}: fewer than {n} sessions after {day.date()} in the calendar range")
    return sched.sessions[pos : pos + n]


def session_bounds(exchange: str, session: object) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(open, close) of a session as tz-aware UTC instants; ConfigError if the day is not a session."""
    sched = schedule(exchange)
    day = pd.Timestamp(session).normalize()
    pos = sched.index_of(day)
    if pos is None:
        raise ConfigError(f"{exchange}: {day.date()} is not a session")
    return (
        pd.Timestamp(sched.opens[pos]).tz_localize("UTC"),
        pd.Timestamp(sched.closes[pos]).tz_localize("UTC"),
    )
