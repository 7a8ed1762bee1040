"""Exchange sessions for any era: the ONE module that imports exchange-calendars.

A schedule is built for the range a run needs (not a fixed window): requests are widened to whole five-year
blocks (so one run rarely rebuilds), clipped to the calendar's own bounds (``bound_min``/``bound_max`` of
exchange-calendars: XSHG, XSES and XBOM end 2026-12-31 in 4.13 because their lunisolar holidays are published
year by year; XTKS starts 1997) and grown when a later request needs more. A date a calendar cannot place is
a ConfigError naming the calendar and the date, never a silent gap.

The extra full-day closures of ``event_calendar/closures.csv`` (e.g. HK typhoon days the library lists as
sessions) are removed from every schedule. Built schedules can be kept on disk between processes
(``use_schedule_cache``), keyed by calendar, exchange-calendars version, range and closures file.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import ConfigError
from engine.paths import calendar_dir
from engine.versions import version

CLOSURES_PATH = calendar_dir() / "closures.csv"
BLOCK_YEARS = 5
EARLIEST = pd.Timestamp("1970-01-01")  # floor for calendars without a bound_min
LATEST = pd.Timestamp("2099-12-31")  # ceiling for calendars without a bound_max


def _library_version() -> str:
    """exchange-calendars' installed version (a dependency: always installed where schedules are built)."""
    return version("exchange-calendars") or "unknown"


@dataclass(frozen=True)
class MarketSchedule:
    """Corrected sessions of one exchange as sorted arrays (UTC instants as datetime64[ns], tz-naive)."""

    exchange: str
    sessions: pd.DatetimeIndex  # tz-naive session dates
    opens: np.ndarray
    closes: np.ndarray
    first: pd.Timestamp  # the range the schedule was built for (inclusive dates)
    last: pd.Timestamp

    def index_of(self, session: pd.Timestamp) -> int | None:
        pos = int(self.sessions.searchsorted(session))
        if pos < len(self.sessions) and self.sessions[pos] == session:
            return pos
        return None

    def covers(self, lo: pd.Timestamp, hi: pd.Timestamp) -> bool:
        return self.first <= lo and hi <= self.last


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        # exchange-calendars 4.13 under pandas 3.1 emits Pandas4Warning deprecations; not ours to fix.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _compute_meta() -> dict[str, Any]:
    import exchange_calendars as xcals
    from exchange_calendars import calendar_utils

    with _quiet():
        names = xcals.get_calendar_names(include_aliases=True)
        bounds = {}
        for name in names:
            cls = calendar_utils._default_calendar_factories[xcals.resolve_alias(name)]
            lo, hi = cls.bound_min(), cls.bound_max()
            bounds[name] = [str(pd.Timestamp(lo).date()) if lo is not None else None,
                            str(pd.Timestamp(hi).date()) if hi is not None else None]
    return {"bounds": bounds}


def _utc_naive_ns(values: pd.Series) -> np.ndarray:
    return values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ns]")


def _block(lo: pd.Timestamp, hi: pd.Timestamp, bounds: tuple[pd.Timestamp, pd.Timestamp]) -> tuple[
        pd.Timestamp, pd.Timestamp]:
    start = pd.Timestamp(year=(lo.year - 1) // BLOCK_YEARS * BLOCK_YEARS, month=1, day=1)
    end = pd.Timestamp(year=(hi.year + 1) // BLOCK_YEARS * BLOCK_YEARS + BLOCK_YEARS - 1, month=12, day=31)
    return max(start, bounds[0]), min(end, bounds[1])


def as_day(value: object) -> pd.Timestamp:
    ts = pd.Timestamp(value)  # type: ignore[arg-type]
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.normalize()


@dataclass
class _Built:
    """What a process has built (pure functions of calendar, range, library version and closures file, so
    one ``_Built`` may serve several cache folders)."""

    schedules: dict[str, MarketSchedule] = field(default_factory=dict)
    persisted: set[tuple[str, str, pd.Timestamp, pd.Timestamp]] = field(default_factory=set)  # (folder, code, range)
    raw: dict[tuple[str, pd.Timestamp, pd.Timestamp], Any] = field(default_factory=dict)
    meta: dict[str, Any] | None = None


class Calendars:
    """Exchange schedules for any era: built for the ranges asked for, kept in memory, and on disk in ``folder``
    (``None``: memory only). Building XHKG and XNYS with exchange-calendars costs about 0.45 s a process; reading
    them back from the folder ~5 ms."""

    def __init__(self, folder: Path | None = None, *, _built: _Built | None = None) -> None:
        self.folder = Path(folder) if folder is not None else None
        self._built = _built if _built is not None else _Built()

    def at(self, folder: Path | None) -> Calendars:
        """The same built schedules, kept on disk in ``folder``."""
        return Calendars(folder, _built=self._built)

    def clear(self) -> None:
        """Forget what was built in memory (the next call reads the folder, as a new process would)."""
        self._built.schedules.clear()
        self._built.persisted.clear()
        self._built.raw.clear()
        self._built.meta = None

    @contextmanager
    def activate(self) -> Iterator[Calendars]:
        """Make this the calendars that the module functions (and so timing, clocks, stores) use, until exit."""
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)

    # ------------------------------------------------------------------------------------ codes and bounds

    def _meta_path(self) -> Path | None:
        return self.folder / f"meta-{_library_version()}.json" if self.folder is not None else None

    def meta(self) -> dict[str, Any]:
        """Calendar codes and their bounds; read from the folder when present (importing exchange-calendars
        costs ~0.5 s a process, so a run whose schedules are cached never imports it)."""
        if self._built.meta is not None:
            return self._built.meta
        path = self._meta_path()
        if path is not None and path.is_file():
            try:
                self._built.meta = json.loads(path.read_text(encoding="utf-8"))
                return self._built.meta
            except (OSError, ValueError):
                pass  # damaged: recompute
        self._built.meta = _compute_meta()
        return self._built.meta

    def _persist_meta(self) -> None:
        """Write the codes-and-bounds file next to the schedules (only from a persisting ``schedule`` call)."""
        path = self._meta_path()
        if path is None or path.is_file():
            return
        from engine.atomic import atomic_write_bytes
        from engine.errors import DataError

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, json.dumps(self.meta(), sort_keys=True).encode())
        except (OSError, DataError):
            pass  # a read-only cache only costs the import next time

    def names(self) -> frozenset[str]:
        return frozenset(self.meta()["bounds"])

    def check_code(self, code: str, what: str = "calendar") -> None:
        if code not in self.meta()["bounds"]:
            raise ConfigError(f"{what}: unknown exchange-calendars code {code!r}")

    def bounds(self, code: str) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last dates exchange-calendars can build ``code`` for."""
        self.check_code(code)
        lo, hi = self.meta()["bounds"][code]
        return (pd.Timestamp(lo) if lo is not None else EARLIEST, pd.Timestamp(hi) if hi is not None else LATEST)

    # ------------------------------------------------------------------------------------ disk cache

    def _cache_file(self, exchange: str, lo: pd.Timestamp, hi: pd.Timestamp) -> Path | None:
        if self.folder is None:
            return None
        key = "|".join([exchange, _library_version(), str(lo.date()), str(hi.date()),
                        hashlib.sha256(CLOSURES_PATH.read_bytes()).hexdigest()])
        return self.folder / f"{exchange}-{lo.year}-{hi.year}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"

    @staticmethod
    def _read_cached(exchange: str, path: Path, lo: pd.Timestamp, hi: pd.Timestamp) -> MarketSchedule | None:
        from engine.market.schedule_file import unpack

        arrays = unpack(path)  # None when damaged or altered (digest, shape): never trusted, rebuilt
        if arrays is None:
            with contextlib.suppress(OSError):
                path.unlink()  # so the rebuilt schedule is written in its place
            return None
        return MarketSchedule(exchange, pd.DatetimeIndex(arrays[0]), arrays[1], arrays[2], lo, hi)

    @staticmethod
    def _write_cached(sched: MarketSchedule, path: Path) -> None:
        from engine.atomic import atomic_write_bytes
        from engine.errors import DataError
        from engine.market.schedule_file import pack

        data = pack(sched.sessions.to_numpy(), sched.opens, sched.closes)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, data)
        except (OSError, DataError):
            pass  # a read-only cache only costs the rebuild next time

    # ------------------------------------------------------------------------------------ schedules

    def _build(self, exchange: str, lo: pd.Timestamp, hi: pd.Timestamp) -> MarketSchedule:
        import exchange_calendars as xcals

        with _quiet():
            frame = xcals.get_calendar(exchange, start=lo, end=hi).schedule
        closed = load_closures().get(exchange, set())
        if closed:
            frame = frame[~frame.index.isin(list(closed))]
        sessions = pd.DatetimeIndex(frame.index).tz_localize(None).normalize()
        return MarketSchedule(exchange, sessions, _utc_naive_ns(frame["open"]), _utc_naive_ns(frame["close"]), lo,
                              hi)

    def schedule(self, exchange: str, start: object = None, end: object = None, *,
                 persist: bool = True) -> MarketSchedule:
        """Corrected schedule of ``exchange`` covering ``start..end`` (dates; default: the current schedule, or
        the block around today). Dates outside the calendar's bounds are clipped (``require`` reports them).
        ``persist=False`` keeps a newly built schedule in memory only (paths that must not write, e.g. before
        a command has validated its input); a later persisting call writes it."""
        self.check_code(exchange, "exchange")
        bounds = self.bounds(exchange)
        today = pd.Timestamp.today().normalize()
        built = self._built
        current = built.schedules.get(exchange)
        lo = as_day(start) if start is not None else (current.first if current else today)
        hi = as_day(end) if end is not None else (current.last if current else today)
        lo, hi = min(lo, hi), max(lo, hi)
        # clip into the bounds (a range wholly outside them shrinks to the nearest edge; ``require`` reports it)
        lo, hi = min(max(lo, bounds[0]), bounds[1]), max(min(hi, bounds[1]), bounds[0])
        if current is None or not current.covers(lo, hi):
            if current is not None:
                lo, hi = min(lo, current.first), max(hi, current.last)
            first, last = _block(lo, hi, bounds)
            cache_file = self._cache_file(exchange, first, last)
            current = self._read_cached(exchange, cache_file, first, last) if cache_file is not None and \
                cache_file.is_file() else None
            if current is None:
                current = self._build(exchange, first, last)
            else:
                built.persisted.add((str(self.folder), exchange, first, last))
            built.schedules[exchange] = current
        if persist and self.folder is not None:
            key = (str(self.folder), exchange, current.first, current.last)
            if key not in built.persisted:
                cache_file = self._cache_file(exchange, current.first, current.last)
                if cache_file is not None and not cache_file.is_file():
                    self._write_cached(current, cache_file)
                self._persist_meta()
                built.persisted.add(key)
        return current

    def require(self, exchange: str, day: object, what: str) -> pd.Timestamp:
        """``day`` as a date if ``exchange``'s calendar can place it; ConfigError naming calendar and date."""
        ts = as_day(day)
        lo, hi = self.bounds(exchange)
        if ts < lo or ts > hi:
            side = f"ends {hi.date()}" if ts > hi else f"starts {lo.date()}"
            raise ConfigError(f"{what} {ts.date()}: the {exchange} calendar (exchange-calendars "
                              f"{_library_version()}) {side}; it cannot say which days {exchange} trades "
                              "then")
        return ts

    def session_dates(self, exchange: str, start: object, end: object) -> pd.DatetimeIndex:
        """Corrected session dates (tz-naive) of ``exchange`` in ``start..end`` inclusive (both checked)."""
        lo = self.require(exchange, start, f"{exchange}: start")
        hi = self.require(exchange, end, f"{exchange}: end")
        sched = self.schedule(exchange, lo, hi)
        return sched.sessions[(sched.sessions >= lo) & (sched.sessions <= hi)]

    def raw_sessions(self, exchange: str, start: object, end: object) -> tuple[pd.DatetimeIndex, set[pd.Timestamp]]:
        """The library's own sessions (no closures corrections) and early closes in ``start..end`` clipped to the
        calendar's bounds (for the price store's coverage checks and the synthetic sample)."""
        bounds = self.bounds(exchange)
        lo, hi = max(as_day(start), bounds[0]), min(as_day(end), bounds[1])
        if lo > hi:
            return pd.DatetimeIndex([]), set()
        key = (exchange, *_block(lo, hi, bounds))
        cal = self._built.raw.get(key)
        if cal is None:
            import exchange_calendars as xcals

            with _quiet():
                cal = self._built.raw[key] = xcals.get_calendar(exchange, start=key[1], end=key[2])
        with _quiet():
            sessions = pd.DatetimeIndex(cal.sessions_in_range(max(lo, cal.first_session),
                                                              min(hi, cal.last_session)))
            early = {pd.Timestamp(d).tz_localize(None) if pd.Timestamp(d).tzinfo else pd.Timestamp(d)
                     for d in cal.early_closes if lo <= pd.Timestamp(d).tz_localize(None) <= hi}
        return (sessions.tz_localize(None) if sessions.tz is not None else sessions), early


# ---------------------------------------------------------------------------------------------- the current one

_CURRENT: ContextVar[Calendars | None] = ContextVar("evbt_calendars", default=None)
_UNSCOPED = Calendars()  # outside any command: memory only, never writes


def current() -> Calendars:
    """The calendars of the running command (``Calendars.activate``), else the memory-only one."""
    return _CURRENT.get() or _UNSCOPED


def calendar_names() -> frozenset[str]:
    return current().names()


def check_calendar_code(code: str, what: str = "calendar") -> None:
    current().check_code(code, what)


def calendar_timezone(code: str) -> str:
    import exchange_calendars as xcals

    with _quiet():
        return str(xcals.get_calendar(code).tz)


def calendar_bounds(code: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last dates exchange-calendars can build ``code`` for."""
    return current().bounds(code)


def load_closures() -> dict[str, set[pd.Timestamp]]:
    """Extra full-day closures per exchange from ``event_calendar/closures.csv``."""
    out: dict[str, set[pd.Timestamp]] = {}
    names = calendar_names()
    with CLOSURES_PATH.open(encoding="utf-8", newline="") as fh:
        for lineno, row in enumerate(csv.DictReader(fh), start=2):
            exchange = (row.get("exchange") or "").strip()
            try:
                day = pd.Timestamp(dt.date.fromisoformat((row.get("date") or "").strip()))
            except ValueError:
                raise ConfigError(f"{CLOSURES_PATH}:{lineno}: bad date {row.get('date')!r}") from None
            if exchange not in names:
                raise ConfigError(f"{CLOSURES_PATH}:{lineno}: unknown exchange {exchange!r}")
            out.setdefault(exchange, set()).add(day)
    return out


def schedule(exchange: str, start: object = None, end: object = None, *, persist: bool = True) -> MarketSchedule:
    """``Calendars.schedule`` of the current calendars."""
    return current().schedule(exchange, start, end, persist=persist)


def require(exchange: str, day: object, what: str) -> pd.Timestamp:
    """``Calendars.require`` of the current calendars."""
    return current().require(exchange, day, what)


def session_dates(exchange: str, start: object, end: object) -> pd.DatetimeIndex:
    """``Calendars.session_dates`` of the current calendars."""
    return current().session_dates(exchange, start, end)


def raw_sessions(exchange: str, start: object, end: object) -> tuple[pd.DatetimeIndex, set[pd.Timestamp]]:
    """``Calendars.raw_sessions`` of the current calendars."""
    return current().raw_sessions(exchange, start, end)
