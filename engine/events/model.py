"""The event record and the checks of one cell of an event file, shared by the row and the column parsers.

``engine.events.catalog`` re-exports everything public here (``Event``, the column and choice lists): import
them from there.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, fields
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.errors import ConfigError
from engine.market.symbols import normalize_symbol

EVENT_TYPES = (
    "official_reassurance",
    "policy_support",
    "regulatory_crackdown",
    "delisting_risk",
    "analyst_upgrade",
    "analyst_downgrade",
    "market_rumor",
    "other",
)
SESSION_HINTS = ("before_open", "during_session", "after_close")
MARKETS = ("XHKG", "XNYS")
SCOPES = ("single", "sector")
CONFIDENCES = ("high", "medium", "low")
ANALYST_TYPES = ("analyst_upgrade", "analyst_downgrade")

COLUMNS = (
    "id", "date", "time", "tz", "session_hint", "market", "type", "scope", "symbols",
    "firm", "from_grade", "to_grade", "description", "source", "confidence",
)
REQUIRED_COLUMNS = ("id", "date", "tz", "type", "scope", "description", "source")

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")
_TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?$")
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_SPLIT_RE = re.compile(r"[,\s]+")


@dataclass(frozen=True)
class Event:
    """One dated piece of news. See docs/design.md, "Event contract"."""

    id: str
    date: dt.date
    tz: str
    time: dt.time | None
    session_hint: str | None
    market: str | None
    type: str
    scope: str
    symbols: tuple[str, ...]
    description: str
    source: str
    firm: str | None = None
    from_grade: str | None = None
    to_grade: str | None = None
    confidence: str | None = None


EVENT_FIELDS = tuple(f.name for f in fields(Event))


@lru_cache(maxsize=65536)
def parse_date(text: str) -> dt.date:
    if not _DATE_RE.match(text):
        raise ValueError
    return dt.date.fromisoformat(text)


def parse_time(text: str) -> dt.time:
    m = _TIME_RE.match(text)
    if not m:
        raise ValueError
    return dt.time(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))


# zoneinfo also opens files that are not a fixed place's zone: ``localtime`` is whatever the machine is set to
# (timing would depend on the computer), ``Factory`` and ``posixrules`` are tooling artefacts.
_NOT_A_PLACE = {"localtime", "factory", "posixrules"}


@lru_cache(maxsize=4096)
def valid_tz(name: str) -> bool:
    if not name or name.startswith("/") or ".." in name:
        return False
    if name.lower() in _NOT_A_PLACE or name.lower().startswith(("posix/", "right/")):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def opt(value: str | None) -> str | None:
    text = (value or "").strip()
    return text or None


@lru_cache(maxsize=65536)
def symbols_of(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(symbols, problems) of one symbols cell (a calendar repeats the same few cells: parsed once each)."""
    out: list[str] = []
    problems: list[str] = []
    for part in _SPLIT_RE.split(text.strip()):
        if not part:
            continue
        try:
            sym = normalize_symbol(part)
        except ConfigError as exc:
            problems.append(f"bad symbol: {exc}")
            continue
        if sym not in out:
            out.append(sym)
    return tuple(out), tuple(problems)


def header_problems(header: list[str] | None) -> list[str]:
    if not header:
        return ["empty file: expected a header line with " + ",".join(COLUMNS)]
    names = [h.strip() for h in header]
    problems = []
    unknown = [h for h in names if h not in COLUMNS]
    if unknown:
        problems.append(f"unknown column(s) {', '.join(map(repr, unknown))} (allowed: {', '.join(COLUMNS)})")
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
    dupes = sorted({h for h in names if names.count(h) > 1})
    if dupes:
        problems.append(f"duplicate column(s): {', '.join(dupes)}")
    return problems
