"""The fast route through an event file: whole columns at a time, each distinct value checked once.

A calendar of 20,000 analyst events has 20,000 ids, a few thousand dates and times, and a few thousand
distinct tails of a line (time zone, type, symbols, firm, grades, description, source, confidence), often far
fewer. So the first three columns (``id,date,time`` in the documented order) are read per row, the rest of a
line is read once per distinct text, every distinct value is checked once with the cell checks of the row
parser (``engine.events.model``), and the events are built at the end from one field dict per distinct tail.
The canonical JSON of the calendar hash (``engine.events.canonical``) is laid out from the same columns.

The route only ever answers for a file without a single problem: the moment anything is off (a bad cell, a
duplicate id, a blank or short line, a CSV error, even a cell the row parser would accept after trimming
spaces that this route does not trim) it returns None and ``engine.events.catalog`` runs the row parser, which
stays the one authority on what a problem is and how it is worded. So a clean file gives exactly the events
the row parser would give (tests/test_events_columnar.py compares the two on generated and real files).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, TypeVar

from engine.collector import collector_paused
from engine.events.canonical import KEYS, Canonical, encoder, key_text
from engine.events.model import (
    ANALYST_TYPES,
    COLUMNS,
    CONFIDENCES,
    EVENT_FIELDS,
    EVENT_TYPES,
    MARKETS,
    SCOPES,
    SESSION_HINTS,
    Event,
    header_problems,
    parse_date,
    parse_time,
    symbols_of,
    valid_tz,
)

LEAD = 3  # columns read per row; the tail of a line after them is read once per distinct text
# An id that needs no trimming and passes ID_RE: the row parser would accept it unchanged.
_PLAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,119}").fullmatch
# Without these characters the csv module's default (excel) dialect splits a line at commas and nothing else.
_CSV_SPECIAL = ('"', "\r", "\x00")

V = TypeVar("V")


class _Unclean(Exception):
    """Something the row parser has to look at."""


@dataclass
class _Table:
    """An event file's cells: the first LEAD columns per row, the other columns per distinct tail."""

    names: list[str]  # the header, trimmed
    lead: list[Sequence[str]]  # one list per lead column, one cell per row
    groups: list[int]  # per row: the index of its tail
    tails: list[Sequence[str]]  # one list per other column, one cell per distinct tail


@dataclass(frozen=True)
class Parsed:
    """The events of a clean file in file order, with the pieces of their canonical JSON."""

    events: list[Event]
    canonical: Canonical


def _split_lines(text: str) -> _Table | None:
    """The table of a file without quotes, carriage returns or NULs, every line with the header's width."""
    if any(ch in text for ch in _CSV_SPECIAL):
        return None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    if not lines or max(map(len, lines)) > csv.field_size_limit():
        return None
    header, body = lines[0].split(","), lines[1:]
    width = len(header) - 1
    if width < LEAD:
        return None
    names = _names(header)
    try:  # a line with fewer than LEAD commas makes the columns uneven
        cols = list(zip(*map(str.split, body, repeat(","), repeat(LEAD)), strict=True)) or [()] * (LEAD + 1)
    except ValueError:
        return None
    index = {tail: j for j, tail in enumerate(dict.fromkeys(cols[LEAD]))} if len(cols) == LEAD + 1 else {}
    tails = [tail.split(",") for tail in index]
    if len(cols) != LEAD + 1 or any(len(cells) != width - LEAD + 1 for cells in tails):
        return None  # a line with another number of fields than the header
    return _Table(names, list(cols[:LEAD]), list(map(index.__getitem__, cols[LEAD])),
                  _columns(tails, len(names) - LEAD))


def _csv_rows(text: str) -> _Table | None:
    """The table of any other file the csv module reads without error, blank lines skipped."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        return None
    if not rows or len(rows[0]) <= LEAD:
        return None
    names, body, width = _names(rows[0]), rows[1:], len(rows[0])
    if any(len(r) != width for r in body):
        body = [r for r in body if len(r) == width or any(v.strip() for v in r)]  # blank lines are skipped
        if any(len(r) != width for r in body):
            return None
    cols = list(zip(*body, strict=True)) or [()] * width
    keys = list(zip(*cols[LEAD:], strict=True))
    index = {tail: j for j, tail in enumerate(dict.fromkeys(keys))}
    return _Table(names, list(cols[:LEAD]), list(map(index.__getitem__, keys)),
                  _columns(list(index), width - LEAD))


def _columns(rows: Sequence[Sequence[str]], width: int) -> list[Sequence[str]]:
    return list(zip(*rows, strict=True)) if rows else [()] * width


def _names(header: list[str]) -> list[str]:
    if header_problems(header):
        raise _Unclean
    return [h.strip() for h in header]


def _convert(col: Sequence[str], convert: Callable[[str], V]) -> list[V]:
    """The column converted cell by cell, calling ``convert`` (on the trimmed text) once per distinct cell."""
    table = {raw: convert(raw.strip()) for raw in set(col)}
    if len(table) == 1:
        return [next(iter(table.values()))] * len(col)
    return list(map(table.__getitem__, col))


def _choice(allowed: Sequence[str], fold: Callable[[str], str] | None = None) -> Callable[[str], str | None]:
    def convert(text: str) -> str | None:
        if not text:
            return None
        value = fold(text) if fold else text
        if value not in allowed:
            raise _Unclean
        return value

    return convert


def _required(allowed: Sequence[str] | None = None) -> Callable[[str], str]:
    def convert(text: str) -> str:
        if not text or (allowed is not None and text not in allowed):
            raise _Unclean
        return text

    return convert


def _id(text: str) -> str:
    raise _Unclean  # only reached for an id that is not plain (checked before converting)


def _date(text: str) -> dt.date:
    try:
        return parse_date(text)
    except ValueError:
        raise _Unclean from None


def _time(text: str) -> dt.time | None:
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise _Unclean from None


def _tz(text: str) -> str:
    if not valid_tz(text):
        raise _Unclean
    return text


def _symbols(text: str) -> tuple[str, ...]:
    symbols, problems = symbols_of(text)
    if problems:
        raise _Unclean
    return symbols


def _optional(text: str) -> str | None:
    return text or None


_CONVERT: dict[str, Callable[[str], Any]] = {
    "id": _id, "date": _date, "time": _time, "tz": _tz, "session_hint": _choice(SESSION_HINTS),
    "market": _choice(MARKETS, str.upper), "type": _required(EVENT_TYPES), "scope": _required(SCOPES),
    "symbols": _symbols, "firm": _optional, "from_grade": _optional, "to_grade": _optional,
    "description": _required(), "source": _required(), "confidence": _choice(CONFIDENCES, str.lower),
}
assert set(_CONVERT) == set(COLUMNS) == set(EVENT_FIELDS)


def parse_clean(text: str) -> Parsed | None:
    """The events of an event file's text in file order, or None unless the file has no problem at all."""
    try:
        with collector_paused():  # tens of thousands of acyclic objects: a third of the time
            table = _split_lines(text) or _csv_rows(text)
            return _parse(table) if table is not None else None
    except _Unclean:
        return None


class _Cells:
    """Each field's column, per row (lead) or per distinct tail, raw and converted."""

    def __init__(self, table: _Table) -> None:
        self.groups = table.groups
        self.n, self.m = len(table.groups), len(table.tails[0])
        self.raw: dict[str, Sequence[str]] = dict(zip(table.names[LEAD:], table.tails, strict=True))
        self.lead_names: list[str] = []  # the fields read per row, in header order
        for name, col in zip(table.names[:LEAD], table.lead, strict=True):
            if self.n and col.count(col[0]) == self.n:  # one text in every row (an empty time column): a tail's
                self.raw[name] = [col[0]] * self.m
            else:
                self.raw[name] = col
                self.lead_names.append(name)
        self.lead = set(self.lead_names)
        for name in set(COLUMNS) - set(self.raw):
            self.raw[name] = [""] * self.m  # a column left out of the file: empty cells
        self.value: dict[str, list[Any]] = {}

    def per_row(self, values: Sequence[V], name: str) -> Iterable[V]:
        return values if name in self.lead else map(values.__getitem__, self.groups)

    def derive(self, name: str, like: str, values: list[Any]) -> None:
        """Another column laid out like ``like`` (per row or per tail)."""
        self.value[name] = values
        if like in self.lead:
            self.lead.add(name)

    def combos(self, *names: str) -> set[tuple[Any, ...]]:
        """The distinct combinations of the named fields' values over all rows."""
        if not self.lead & set(names):
            return set(zip(*(self.value[k] for k in names), strict=True))
        return set(zip(*(self.per_row(self.value[k], k) for k in names), strict=True))


def _parse(table: _Table) -> Parsed | None:
    cells = _Cells(table)
    ids = list(cells.per_row(cells.raw["id"], "id"))
    if not all(map(_PLAIN_ID, ids)) or len(set(ids)) != cells.n:
        return None  # an id to trim, a bad or a duplicate id
    for name in COLUMNS:
        cells.value[name] = list(cells.raw[name]) if name == "id" else _convert(cells.raw[name], _CONVERT[name])
    for time_, hint, market in cells.combos("time", "session_hint", "market"):
        if (hint is None) != (market is None) or (time_ is not None and hint is not None):
            return None  # a hint without its market, a market without a hint, or both a time and a hint
    if "single" in cells.value["scope"] and () in cells.value["symbols"]:
        cells.derive("symbol_text", "symbols", [raw.strip() for raw in cells.raw["symbols"]])
        for scope, text in cells.combos("scope", "symbol_text"):
            if scope == "single" and text == "":
                return None  # a single-scope event must list its symbols
    if None in cells.value["firm"] and any(t in ANALYST_TYPES for t in cells.value["type"]):
        for kind, firm in cells.combos("type", "firm"):
            if kind in ANALYST_TYPES and firm is None:
                return None  # an analyst event needs its firm
    return Parsed(_events(cells), _canonical(cells))


def _events(cells: _Cells) -> list[Event]:
    """The events, equal to ``Event(**fields)`` row by row.

    Event is a frozen dataclass without ``__post_init__``: its ``__init__`` only stores the fields in
    declaration order. Here each row copies its tail's field dict, fills in its lead fields and becomes the
    ``__dict__`` of a new Event (loops run by map). The tails' dicts are copies of the ``__dict__`` of an Event
    made by ``__init__``: laid out as every Event's (CPython shares the keys), each row's copy holds only values."""
    layout = vars(Event(**dict.fromkeys(EVENT_FIELDS)))  # type: ignore[arg-type]
    templates = list(map(dict.copy, repeat(layout, cells.m)))
    for name in EVENT_FIELDS:
        if name not in cells.lead:
            deque(map(dict.__setitem__, templates, repeat(name), cells.value[name]), maxlen=0)
    rows = list(map(templates.__getitem__, cells.groups))
    if cells.m < cells.n:  # (with as many tails as rows, each tail is one row's: its dict is that row's)
        rows = list(map(dict.copy, rows))
    for name in cells.lead_names:
        deque(map(dict.__setitem__, rows, repeat(name), cells.value[name]), maxlen=0)
    events = list(map(object.__new__, repeat(Event, cells.n)))
    deque(map(object.__setattr__, events, repeat("__dict__"), rows), maxlen=0)
    return events


def _canonical(cells: _Cells) -> Canonical:
    """Each row's canonical JSON object (after a comma) as texts fixed per tail around its lead fields' values."""
    segments: list[list[str]] = []
    leads: list[list[str]] = []
    segment: list[Iterable[str]] = [repeat(",", cells.m)]
    for i, name in enumerate(KEYS):
        segment.append(repeat(key_text(i), cells.m))
        values = cells.value[name]
        if name == "id" and name in cells.lead:  # a plain id (checked): its JSON is itself in quotes
            segment.append(repeat('"', cells.m))
            segments.append(_per_tail(segment))
            leads.append(values)
            segment = [repeat('"', cells.m)]
            continue
        table = {v: encoder(name)(v) for v in set(values)}
        texts = list(map(table.__getitem__, values))
        if name not in cells.lead:
            segment.append(texts)
            continue
        segments.append(_per_tail(segment))
        leads.append(texts)
        segment = []
    segment.append(repeat(key_text(len(KEYS)), cells.m))
    segments.append(_per_tail(segment))
    dates = list(cells.per_row(cells.value["date"], "date"))
    iso = {d: d.isoformat() for d in set(dates)}
    return Canonical(list(cells.per_row(cells.value["id"], "id")), list(map(iso.__getitem__, dates)),
                     cells.groups, segments, leads)


def _per_tail(segment: list[Iterable[str]]) -> list[str]:
    return list(map("".join, zip(*segment, strict=True)))
