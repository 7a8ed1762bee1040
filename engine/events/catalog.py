"""Event model and the event calendar: curated CSV, user CSV files, validation, filtering, hashing.

The curated calendar lives in ``event_calendar/events.csv`` (format in ``event_calendar/README.md``). User
files use the same columns. Validation never stops at the first problem: every problem in every file is
collected with ``file:line`` and raised together as one ``ConfigError``, so a user fixes a file in one pass.
When the instant an event became public is computed lives in ``engine.events.timing``, not here.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.errors import ConfigError
from engine.market.symbols import normalize_symbol
from engine.paths import calendar_dir

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

CALENDAR_DIR = calendar_dir()
CURATED_PATH = CALENDAR_DIR / "events.csv"

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")
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


# ---------------------------------------------------------------- parsing and validation


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


def check_events_text(text: str, origin: str) -> tuple[list[Event], list[str]]:
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


def check_events_file(path: Path) -> tuple[list[Event], list[str]]:
    """Like ``check_events_text`` for a file; unreadable files raise ConfigError."""
    return check_events_text(_read_text(Path(path)), str(path))


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
def _curated() -> tuple[Event, ...]:
    return tuple(load_events_file(CURATED_PATH))


def load_curated() -> list[Event]:
    """The curated calendar shipped in ``event_calendar/events.csv`` (parsed once per process)."""
    return list(_curated())


def load_calendar(files: Iterable[Path] = (), replace: bool = False) -> list[Event]:
    """Merged calendar: curated (unless ``replace``) plus every user file, sorted by (date, id).

    An id may appear only once across all merged sources; a clash is a problem like any other (to change
    a curated event, use ``replace`` with a full file or give the event a new id).
    """
    sources: list[tuple[str, list[Event]]] = []
    problems: list[str] = []
    if not replace:
        sources.append((str(CURATED_PATH), load_curated()))
    files = list(files)
    if replace and not files:
        raise ConfigError("--replace needs at least one --events FILE")
    for path in files:
        events, file_problems = check_events_file(Path(path))
        problems += file_problems
        sources.append((str(path), events))
    owner: dict[str, str] = {}
    merged: list[Event] = []
    for origin, events in sources:
        for ev in events:
            if ev.id in owner:
                problems.append(f"{origin}: duplicate id {ev.id!r} (already defined in {owner[ev.id]})")
                continue
            owner[ev.id] = origin
            merged.append(ev)
    _raise_problems(problems)
    return sorted(merged, key=lambda e: (e.date, e.id))


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


_EVENT_FIELDS = tuple(f.name for f in fields(Event))


def event_to_dict(event: Event) -> dict[str, object]:
    """JSON-friendly dict (dates as ISO strings, symbols as a list)."""
    # Every field is a scalar or a tuple of strings, so a shallow read equals dataclasses.asdict (which deep-copies
    # and dominated calendar_hash on 20,000-event calendars).
    data: dict[str, object] = dict(event.__dict__)  # the fields, in declaration order (no __slots__)
    data["date"] = event.date.isoformat()
    data["time"] = event.time.isoformat() if event.time else None
    data["symbols"] = list(event.symbols)
    return data


def calendar_hash(events: Iterable[Event]) -> str:
    """sha256 of the canonical JSON of the events sorted by id: stable across file order and formatting."""
    payload = [event_to_dict(e) for e in sorted(events, key=lambda e: e.id)]
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode("ascii")).hexdigest()
