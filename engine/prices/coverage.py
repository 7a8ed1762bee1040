"""Coverage of a yfinance cache file (the rule of ``engine.prices.store``'s module doc): whether a request is
covered, and which date ranges to download when it is not."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from engine.market.symbols import listing

OVERLAP_DAYS = 5


def has_session_between(symbol: str, after: dt.date, upto: dt.date) -> bool:
    """True if the symbol's exchange trades on a day in (after, upto]."""
    if upto <= after:
        return False
    exchange = listing(symbol).exchange
    days = pd.bdate_range(after + dt.timedelta(days=1), upto)
    if exchange == "FX" or len(days) == 0:
        return len(days) > 0
    try:
        from engine.market.calendars import calendar_bounds, raw_sessions

        first, last = calendar_bounds(exchange)
        if days[0] < first or days[-1] > last:
            return True  # outside what the calendar knows: assume a session
        sessions, _early = raw_sessions(exchange, days[0], days[-1])
        return len(sessions) > 0
    except Exception:  # calendar trouble must not block data access: assume a session
        return True


def covered(meta: dict, start: dt.date | None, end: dt.date | None) -> tuple[bool, bool]:
    """(start covered, end covered) for a yfinance file."""
    lo = min(dt.date.fromisoformat(meta["first_date"]), dt.date.fromisoformat(meta["covered_from"]))
    hi = max(dt.date.fromisoformat(meta["last_date"]), dt.date.fromisoformat(meta["covered_to"]))
    start_ok = start is None or start >= lo
    if end is None:
        return start_ok, True
    want = min(end, dt.date.today())
    end_ok = want <= hi or not has_session_between(meta["symbol"], hi, want)
    return start_ok, end_ok


def missing_ranges(
    meta: dict | None, start: dt.date | None, end: dt.date, refresh: bool
) -> list[tuple[dt.date | None, dt.date]]:
    """The date ranges to download: the whole request on a miss, else the uncovered edges."""
    if meta is None:
        return [(start, end)]
    start_ok, end_ok = covered(meta, start, end)
    ranges: list[tuple[dt.date | None, dt.date]] = []
    overlap = dt.timedelta(days=OVERLAP_DAYS)
    first, last = dt.date.fromisoformat(meta["first_date"]), dt.date.fromisoformat(meta["last_date"])
    if not start_ok:
        ranges.append((start, first + overlap))
    if not end_ok or refresh:
        ranges.append((last - overlap, end))
    return ranges
