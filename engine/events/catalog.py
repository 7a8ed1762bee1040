"""The event calendar: curated CSV, user CSV files, validation, merging, filtering (and, re-exported, the
Event model of ``engine.events.model`` and the hash of ``engine.events.canonical``).

The curated calendar lives in ``event_calendar/events.csv`` (format in ``event_calendar/README.md``). User
files use the same columns. Validation never stops at the first problem: every problem in every file is
collected with ``file:line`` and raised together as one ``ConfigError``, so a user fixes a file in one pass.
A file is first read whole columns at a time (``engine.events.columnar``), which answers only for a file
without any problem; otherwise the row parser below reads it and words every problem.
When the instant an event became public is computed lives in ``engine.events.timing``, not here.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from functools import lru_cache
from operator import attrgetter
from pathlib import Path

from engine.errors import ConfigError
from engine.events.canonical import Calendar, Canonical, calendar_hash, event_to_dict
from engine.events.columnar import parse_clean
from engine.events.model import (
    ANALYST_TYPES,
    COLUMNS,
    CONFIDENCES,
    EVENT_TYPES,
    ID_RE,
    MARKETS,
    REQUIRED_COLUMNS,
    SCOPES,
    SESSION_HINTS,
    Event,
    header_problems,
    opt,
    parse_date,
    parse_time,
    symbols_of,
    valid_tz,
)
from engine.market.symbols import normalize_symbol
from engine.paths import calendar_dir

__all__ = [
    "ANALYST_TYPES", "COLUMNS", "CONFIDENCES", "CURATED_PATH", "EVENT_TYPES", "MARKETS", "REQUIRED_COLUMNS",
    "SCOPES", "SESSION_HINTS", "Event", "calendar_hash", "check_events_file", "check_events_text",
    "event_to_dict", "filter_events", "load_calendar", "load_curated", "load_events_file", "symbols_for",
]

CALENDAR_DIR = calendar_dir()
CURATED_PATH = CALENDAR_DIR / "events.csv"


# ---------------------------------------------------------------- the row parser (the authority on problems)


def _check_choice(value: str | None, allowed: Sequence[str], what: str, problems: list[str]) -> None:
    if value is not None and value not in allowed:
        problems.append(f"unknown {what} {value!r} (expected one of: {', '.join(allowed)})")


def _parse_symbols(text: str, problems: list[str]) -> tuple[str, ...]:
    symbols, found = symbols_of(text)
    problems += found
    return symbols


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
    elif not ID_RE.match(eid):
        problems.append(f"bad id {eid!r} (letters, digits, '.', '_', '-'; max 120 characters)")

    date = None
    try:
        date = parse_date(get["date"])
    except ValueError:
        problems.append(f"bad date {get['date']!r} (expected YYYY-MM-DD)")

    time_ = None
    if get["time"]:
        try:
            time_ = parse_time(get["time"])
        except ValueError:
            problems.append(f"bad time {get['time']!r} (expected HH:MM or HH:MM:SS, 24-hour)")

    if not valid_tz(get["tz"]):
        problems.append(f"unknown time zone {get['tz']!r} (expected an IANA name like Asia/Hong_Kong)")

    hint, market = opt(get["session_hint"]), opt(get["market"])
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
    confidence = opt(get["confidence"])
    if confidence is not None:
        confidence = confidence.lower()
    _check_choice(confidence, CONFIDENCES, "confidence", problems)
    firm = opt(get["firm"])
    if etype in ANALYST_TYPES and firm is None:
        problems.append(f"{etype} needs a firm")

    if problems or date is None:
        return None, problems
    return Event(
        id=eid, date=date, tz=get["tz"], time=time_, session_hint=hint, market=market, type=etype,
        scope=scope, symbols=symbols, description=get["description"], source=get["source"], firm=firm,
        from_grade=opt(get["from_grade"]), to_grade=opt(get["to_grade"]), confidence=confidence,
    ), []


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"event file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"event file is a folder: {path}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read event file {path}: {exc.strerror}") from None


def check_events_text(text: str, origin: str) -> tuple[list[Event], list[str]]:
    """Parse CSV text; return (valid events, problems as 'origin:line: message'). Never raises."""
    events, problems, _ = _check_text(text, origin)
    return events, problems


def _check_text(text: str, origin: str) -> tuple[list[Event], list[str], Canonical | None]:
    """``check_events_text`` plus the canonical pieces of a file the column parser read."""
    clean = parse_clean(text)
    if clean is not None:
        return clean.events, [], clean.canonical
    return (*_check_rows(text, origin), None)


def _check_rows(text: str, origin: str) -> tuple[list[Event], list[str]]:
    """``check_events_text`` one row at a time: the route that finds and words every problem."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        return [], [f"{origin}:1: {exc}"]
    problems = [f"{origin}:1: {p}" for p in header_problems(header)]
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


def check_events_file(path: Path) -> tuple[list[Event], list[str]]:
    """Like ``check_events_text`` for a file; unreadable files raise ConfigError."""
    return check_events_text(_read_text(Path(path)), str(path))


def _check_file(path: Path) -> tuple[list[Event], list[str], Canonical | None]:
    return _check_text(_read_text(Path(path)), str(path))


def _raise_problems(problems: list[str]) -> None:
    if problems:
        lines = "\n  ".join(problems)
        raise ConfigError(f"{len(problems)} problem(s) in event file(s):\n  {lines}")


def load_events_file(path: Path) -> list[Event]:
    """Load and validate a user event CSV; raise ConfigError listing every problem."""
    events, problems = check_events_file(Path(path))
    _raise_problems(problems)
    return events


@lru_cache(maxsize=1)
def _curated() -> tuple[tuple[Event, ...], Canonical | None]:
    events, problems, canonical = _check_file(CURATED_PATH)
    _raise_problems(problems)
    return tuple(events), canonical


def load_curated() -> list[Event]:
    """The curated calendar shipped in ``event_calendar/events.csv`` (parsed once per process)."""
    return list(_curated()[0])


def load_calendar(files: Iterable[Path] = (), replace: bool = False) -> list[Event]:
    """Merged calendar: curated (unless ``replace``) plus every user file, sorted by (date, id).

    An id may appear only once across all merged sources; a clash is a problem like any other (to change
    a curated event, use ``replace`` with a full file or give the event a new id).
    """
    sources: list[tuple[str, list[Event]]] = []
    pieces: list[Canonical | None] = []
    problems: list[str] = []
    if not replace:
        curated, canonical = _curated()
        sources.append((str(CURATED_PATH), list(curated)))
        pieces.append(canonical)
    files = list(files)
    if replace and not files:
        raise ConfigError("--replace needs at least one --events FILE")
    for path in files:
        events, file_problems, canonical = _check_file(Path(path))
        problems += file_problems
        sources.append((str(path), events))
        pieces.append(canonical)
    merged = _merge(sources, problems)
    _raise_problems(problems)  # so no id is in two sources: merged is every source's events in order
    if None in pieces:
        return sorted(merged, key=attrgetter("date", "id"))
    joined = Canonical.concat([p for p in pieces if p is not None])
    # the ids of a calendar usually start with their date: then id order is (date, id) order
    by_id = all(map(str.startswith, joined.ids, joined.dates))
    keys = joined.ids if by_id else list(map(str.__add__, joined.dates, joined.ids))  # ISO dates: one width
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return Calendar(map(merged.__getitem__, order), joined, order if by_id else None)


def _merge(sources: list[tuple[str, list[Event]]], problems: list[str]) -> list[Event]:
    """The sources' events in order, each id kept from its first source (a clash is appended to problems)."""
    if len(sources) == 1:
        return list(sources[0][1])  # a source's own ids are distinct (a repeat is a problem of its file)
    ids = [set(map(attrgetter("id"), events)) for _, events in sources]
    if sum(map(len, ids)) == len(set().union(*ids)):  # no id in two sources
        return [ev for _, events in sources for ev in events]
    owner: dict[str, str] = {}
    merged: list[Event] = []
    for origin, events in sources:
        for ev in events:
            if ev.id in owner:
                problems.append(f"{origin}: duplicate id {ev.id!r} (already defined in {owner[ev.id]})")
                continue
            owner[ev.id] = origin
            merged.append(ev)
    return merged


# ---------------------------------------------------------------- queries


def filter_events(
    events: Iterable[Event],
    types: Iterable[str] | None = None,
    symbols: Iterable[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> list[Event]:
    """Events matching every given criterion. ``start``/``end`` are inclusive on ``Event.date``.

    A symbol matches an event that lists it, or a sector event with no symbols (it applies to any
    universe). Unknown types raise ConfigError.
    """
    type_set = set(types or ())
    bad = sorted(type_set - set(EVENT_TYPES))
    if bad:
        raise ConfigError(f"unknown event type(s) {', '.join(bad)} (expected: {', '.join(EVENT_TYPES)})")
    sym_set = {normalize_symbol(s) for s in (symbols or ())}
    out = []
    for ev in events:
        if type_set and ev.type not in type_set:
            continue
        if start is not None and ev.date < start:
            continue
        if end is not None and ev.date > end:
            continue
        if sym_set and not symbols_for(ev, sorted(sym_set)):
            continue
        out.append(ev)
    return out


def symbols_for(event: Event, universe: Sequence[str]) -> list[str]:
    """The symbols of ``universe`` an event applies to, in universe order.

    A sector event without symbols applies to the whole universe. An event that lists symbols (single or
    sector) applies only to those listed symbols that are in the universe: the list names the affected
    sub-sector (e.g. the gaming names), so it is not widened to unrelated names.
    """
    if event.scope == "sector" and not event.symbols:
        return list(universe)
    listed = set(event.symbols)
    return [s for s in universe if s in listed]
