"""A frozen copy of the event-file parser and the calendar hash as they were before the column parser
(engine.events.columnar, engine.events.canonical): the reference the new code must equal, event for event,
problem for problem and byte for byte of the hash (saved runs and sweep ids embed the hash).

Copied verbatim from engine/events/catalog.py at commit 62fdc34 (only the public names prefixed ``ref_``);
do not edit it to follow later changes: a difference from it is a change of behaviour.
"""

# ruff: noqa

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.errors import ConfigError
from engine.events.catalog import (
    ANALYST_TYPES,
    COLUMNS,
    CONFIDENCES,
    EVENT_TYPES,
    MARKETS,
    REQUIRED_COLUMNS,
    SCOPES,
    SESSION_HINTS,
    Event,
)
from engine.market.symbols import normalize_symbol

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")
_TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?$")
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_SPLIT_RE = re.compile(r"[,\s]+")


@lru_cache(maxsize=65536)
def _parse_date(text: str) -> dt.date:
    if not _DATE_RE.match(text):
        raise ValueError
    return dt.date.fromisoformat(text)


def _parse_time(text: str) -> dt.time:
    m = _TIME_RE.match(text)
    if not m:
        raise ValueError
    return dt.time(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))


# zoneinfo also opens files that are not a fixed place's zone: ``localtime`` is whatever the machine is set to
# (timing would depend on the computer), ``Factory`` and ``posixrules`` are tooling artefacts.
_NOT_A_PLACE = {"localtime", "factory", "posixrules"}


@lru_cache(maxsize=4096)
def _valid_tz(name: str) -> bool:
    if not name or name.startswith("/") or ".." in name:
        return False
    if name.lower() in _NOT_A_PLACE or name.lower().startswith(("posix/", "right/")):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _opt(value: str | None) -> str | None:
    text = (value or "").strip()
    return text or None


def _check_choice(value: str | None, allowed: Sequence[str], what: str, problems: list[str]) -> None:
    if value is not None and value not in allowed:
        problems.append(f"unknown {what} {value!r} (expected one of: {', '.join(allowed)})")


def _parse_symbols(text: str, problems: list[str]) -> tuple[str, ...]:
    symbols, found = _symbols_of(text)
    problems += found
    return symbols


@lru_cache(maxsize=65536)
def _symbols_of(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
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


def _timing_problems(time_: dt.time | None, hint: str | None, market: str | None) -> list[str]:
    """A row gives either an explicit local time, or a session hint with its market, or neither."""
    problems = []
    if hint is not None and market is None:
        problems.append(f"session_hint {hint!r} needs a market (XHKG or XNYS)")
    if market is not None and hint is None:
        problems.append(f"market {market!r} is only used with a session_hint; leave it empty")
    if time_ is not None and hint is not None:
        problems.append("give either time or session_hint, not both")
    return problems


def _row_to_event(row: dict[str, str]) -> tuple[Event | None, list[str]]:
    """Validate one CSV row; return the event (None if invalid) and its problems."""
    problems: list[str] = []
    get = {k: (row.get(k) or "").strip() for k in COLUMNS}

    eid = get["id"]
    if not eid:
        problems.append("missing id")
    elif not _ID_RE.match(eid):
        problems.append(f"bad id {eid!r} (letters, digits, '.', '_', '-'; max 120 characters)")

    date = None
    try:
        date = _parse_date(get["date"])
    except ValueError:
        problems.append(f"bad date {get['date']!r} (expected YYYY-MM-DD)")

    time_ = None
    if get["time"]:
        try:
            time_ = _parse_time(get["time"])
        except ValueError:
            problems.append(f"bad time {get['time']!r} (expected HH:MM or HH:MM:SS, 24-hour)")

    if not _valid_tz(get["tz"]):
        problems.append(f"unknown time zone {get['tz']!r} (expected an IANA name like Asia/Hong_Kong)")

    hint, market = _opt(get["session_hint"]), _opt(get["market"])
    _check_choice(hint, SESSION_HINTS, "session_hint", problems)
    if market is not None:
        market = market.upper()
    _check_choice(market, MARKETS, "market", problems)
    problems += _timing_problems(time_, hint, market)

    etype, scope = get["type"], get["scope"]
    _check_choice(etype or "<empty>", EVENT_TYPES, "type", problems)
    _check_choice(scope or "<empty>", SCOPES, "scope", problems)

    symbols = _parse_symbols(get["symbols"], problems)
    if scope == "single" and not symbols and get["symbols"] == "":
        problems.append("a single-scope event must list its symbols")

    if not get["source"]:
        problems.append("missing source")
    if not get["description"]:
        problems.append("missing description")
    confidence = _opt(get["confidence"])
    if confidence is not None:
        confidence = confidence.lower()
    _check_choice(confidence, CONFIDENCES, "confidence", problems)
    firm = _opt(get["firm"])
    if etype in ANALYST_TYPES and firm is None:
        problems.append(f"{etype} needs a firm")

    if problems or date is None:
        return None, problems
    return Event(
        id=eid, date=date, tz=get["tz"], time=time_, session_hint=hint, market=market, type=etype,
        scope=scope, symbols=symbols, description=get["description"], source=get["source"], firm=firm,
        from_grade=_opt(get["from_grade"]), to_grade=_opt(get["to_grade"]), confidence=confidence,
    ), []


def _header_problems(header: list[str] | None) -> list[str]:
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


def ref_check_events_text(text: str, origin: str) -> tuple[list[Event], list[str]]:
    """Parse CSV text; return (valid events, problems as 'origin:line: message'). Never raises."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        return [], [f"{origin}:1: {exc}"]
    problems = [f"{origin}:1: {p}" for p in _header_problems(header)]
    if problems:
        return [], problems
    assert header is not None
    names = [h.strip() for h in header]
    events: list[Event] = []
    seen: dict[str, int] = {}
    line = reader.line_num
    while True:
        start = line + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(f"{origin}:{start}: {exc}")
            break
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue  # blank line
        if len(values) != len(names):
            problems.append(f"{origin}:{start}: expected {len(names)} fields, found {len(values)}")
            continue
        row = dict(zip(names, values, strict=True))
        event, row_problems = _row_to_event(row)
        problems += [f"{origin}:{start}: {p}" for p in row_problems]
        eid = (row.get("id") or "").strip()
        if eid and eid in seen:
            problems.append(f"{origin}:{start}: duplicate id {eid!r} (first on line {seen[eid]})")
            continue
        if eid:
            seen[eid] = start
        if event is not None:
            events.append(event)
    return events, problems


def ref_event_to_dict(event: Event) -> dict[str, object]:
    """JSON-friendly dict (dates as ISO strings, symbols as a list)."""
    # Every field is a scalar or a tuple of strings, so a shallow read equals dataclasses.asdict (which deep-copies
    # and dominated calendar_hash on 20,000-event calendars).
    data: dict[str, object] = dict(event.__dict__)  # the fields, in declaration order (no __slots__)
    data["date"] = event.date.isoformat()
    data["time"] = event.time.isoformat() if event.time else None
    data["symbols"] = list(event.symbols)
    return data


def ref_calendar_hash(events: Iterable[Event]) -> str:
    """sha256 of the canonical JSON of the events sorted by id: stable across file order and formatting."""
    payload = [ref_event_to_dict(e) for e in sorted(events, key=lambda e: e.id)]
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode("ascii")).hexdigest()


def ref_load_sorted(sources: Sequence[Iterable[Event]]) -> list[Event]:
    """load_calendar's merge of clean sources (no id clash): every event, sorted by (date, id)."""
    return sorted([e for events in sources for e in events], key=lambda e: (e.date, e.id))


def ref_problem_message(problems: list[str]) -> str:
    lines = "\n  ".join(problems)
    return f"{len(problems)} problem(s) in event file(s):\n  {lines}"
