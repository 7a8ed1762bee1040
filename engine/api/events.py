"""The event calendar as the command line asks for it: the filtered listing with known-at instants and entry
sessions, event-type checks, user-file validation and analyst ratings."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from engine.api.settings import Settings, parse_day
from engine.errors import ConfigError
from engine.reporting.models import EventListing


def list_events(files: Sequence[Path], replace_calendar: bool, types: Sequence[str], symbols: Sequence[str],
                start: str | None, end: str | None, fill: str) -> EventListing:
    """The merged calendar filtered, with each event's known-at instant and, per symbol, its entry session."""
    from engine.events.catalog import calendar_hash, event_to_dict, filter_events, load_calendar, symbols_for
    from engine.events.timing import entry_session, known_at
    from engine.market.symbols import parse_symbol_list

    syms = parse_symbol_list(list(symbols))
    events = filter_events(load_calendar(list(files), replace=replace_calendar), types=types, symbols=syms,
                           start=parse_day(start, "--from"), end=parse_day(end, "--to"))
    rows = []
    for ev in events:
        row = event_to_dict(ev)
        row["known_at"] = known_at(ev).isoformat()
        if syms:
            row["entry"] = {s: entry_session(ev, s, fill).date().isoformat() for s in symbols_for(ev, syms)}
        rows.append(row)
    return {"count": len(rows), "fill": fill, "calendar_hash": calendar_hash(events), "events": rows,
            "by_symbol": bool(syms)}


def check_event_types(types: Sequence[str]) -> None:
    from engine.events.catalog import EVENT_TYPES

    bad = sorted(set(types) - set(EVENT_TYPES))
    if bad:
        raise ConfigError(f"unknown event type(s) {', '.join(bad)} (expected: {', '.join(EVENT_TYPES)})")


def validate_events_file(file: Path) -> tuple[list[Any], list[str]]:
    """The events of a user CSV and every problem found in it (with line numbers)."""
    from engine.events.catalog import check_events_file

    return check_events_file(file)


def fetch_ratings(settings: Settings, symbols: Sequence[str], refresh: bool) -> Iterator[tuple[str, int, int]]:
    """(symbol, rating changes, up/downgrades on the grade scale) per symbol as each is fetched and cached; every
    symbol is checked before anything is fetched."""
    from engine.events.ratings import fetch_ratings as fetch
    from engine.events.ratings import ratings_to_events
    from engine.market.symbols import parse_symbol_list

    for sym in parse_symbol_list(list(symbols)):
        frame = fetch(sym, settings.cache_dir, offline=settings.offline, refresh=refresh)
        yield sym, len(frame), len(ratings_to_events(sym, frame))
