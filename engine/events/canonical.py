"""The canonical form of events: one event as a JSON-friendly dict, and the hash of a whole calendar.

``calendar_hash`` is the sha256 of ``json.dumps([event_to_dict(e) for e in events sorted by id],
sort_keys=True, separators=(",", ":"), ensure_ascii=True)``. Saved runs, run ids and sweep ids embed it, so
those bytes never change. They are written without ``json.dumps``, in two ways that give the same bytes
(tests/test_events_columnar.py checks both against ``json.dumps`` itself):

- A ``Calendar`` (what ``load_calendar`` returns for files the column parser read) carries each event's JSON
  object as pieces laid out by the parser from its columns (``Canonical``); the hash sorts them by id and
  joins them. It is used only while the list still holds exactly the events it was made with (the events are
  frozen): after any change to the list the hash is computed from the events.
- Any other events: each field of every event is read once, each distinct value JSON-encoded once (with the
  json module's own string encoder) and the pieces joined in the order ``json.dumps`` writes them; events
  holding a value of another type than the declared ones take the ``json.dumps`` route itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from operator import attrgetter, is_
from typing import Any

from engine.events.model import EVENT_FIELDS, Event


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
    if isinstance(events, Calendar):
        digest = events.canonical_digest()
        if digest is not None:
            return digest
    ordered = sorted(events, key=attrgetter("id"))
    blob = _columns_json(ordered)
    if blob is None:
        blob = reference_json(ordered)
    return hashlib.sha256(blob.encode("ascii")).hexdigest()


def reference_json(ordered: Sequence[Event]) -> str:
    """The canonical JSON written by ``json.dumps`` (the definition ``_columns_json`` reproduces)."""
    payload = [event_to_dict(e) for e in ordered]
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


class _OtherType(Exception):
    """A value outside the declared field types: left to json.dumps."""


def _string(value: Hashable) -> str:
    if value is None:
        return "null"
    if type(value) is not str:
        raise _OtherType
    return str(encode_basestring_ascii(value))


def _date(value: Hashable) -> str:
    if type(value) is not dt.date:
        raise _OtherType
    return _string(value.isoformat())


def _time(value: Hashable) -> str:
    if value is None:
        return "null"
    # equal aware times may print differently; a time is naive when it comes from a file or the ratings
    if type(value) is not dt.time or value.tzinfo is not None:
        raise _OtherType
    return _string(value.isoformat())


def _symbols(value: Hashable) -> str:
    if type(value) is not tuple:
        raise _OtherType
    return "[" + ",".join(map(_string, value)) + "]"


_ENCODE: dict[str, Callable[[Hashable], str]] = {name: _string for name in EVENT_FIELDS}
_ENCODE.update(date=_date, time=_time, symbols=_symbols)
KEYS = tuple(sorted(EVENT_FIELDS))  # json.dumps(sort_keys=True) writes the keys in this order


def encoder(name: str) -> Callable[[Hashable], str]:
    """The JSON text of one value of field ``name`` as event_to_dict + json.dumps write it."""
    return _ENCODE[name]


def key_text(i: int) -> str:
    """The JSON text before the value of ``KEYS[i]`` in an event's object (``i == len(KEYS)``: after the last)."""
    if i == len(KEYS):
        return "}"
    return ("{" if i == 0 else ",") + f'"{KEYS[i]}":'


@dataclass(frozen=True)
class Canonical:
    """Events (in one order) with their ids, ISO dates and canonical JSON objects, each object preceded by a
    comma and laid out as ``segments[0][g] + leads[0][i] + segments[1][g] + ... + segments[-1][g]`` for event
    ``i`` of group ``g = groups[i]`` (texts shared by a group, texts of the event's own)."""

    ids: list[str]
    dates: list[str]
    groups: list[int]
    segments: list[list[str]]  # one more than leads; each: one text per group
    leads: list[list[str]]  # each: one text per event

    @staticmethod
    def concat(parts: Sequence[Canonical]) -> Canonical:
        """The events of all parts, in order."""
        if len({len(p.leads) for p in parts}) != 1:  # laid out differently: each object in one text
            parts = [p.flat() for p in parts]
        offsets = [0]
        for p in parts[:-1]:
            offsets.append(offsets[-1] + len(p.segments[0]))
        return Canonical([i for p in parts for i in p.ids], [d for p in parts for d in p.dates],
                         [g + o for p, o in zip(parts, offsets, strict=True) for g in p.groups],
                         [[t for p in parts for t in p.segments[k]] for k in range(len(parts[0].segments))],
                         [[t for p in parts for t in p.leads[k]] for k in range(len(parts[0].leads))])

    def flat(self) -> Canonical:
        """The same events, each object in one text."""
        texts = [map(s.__getitem__, self.groups) for s in self.segments]
        pieces = [texts[0]] + [t for pair in zip(self.leads, texts[1:], strict=True) for t in pair]
        return Canonical(self.ids, self.dates, list(range(len(self.ids))),
                         [list(map("".join, zip(*pieces, strict=True)))], [])

    def json(self, order: Sequence[int] | None = None) -> str:
        """``reference_json`` of these events (sorted by id; ``order``: the indices in id order, if known)."""
        return "".join(self.chunks(order))

    def chunks(self, order: Sequence[int] | None = None) -> Iterator[str]:
        """``json(order)`` in consecutive pieces of a few hundred events (no text of megabytes is made)."""
        n = len(self.ids)
        if n == 0:
            yield "[]"
            return
        if order is None:
            order = sorted(range(n), key=self.ids.__getitem__)
        groups = list(map(self.groups.__getitem__, order))
        stride = len(self.segments) + len(self.leads)
        yield "["
        for start in range(0, n, _CHUNK):
            rows, tails = order[start:start + _CHUNK], groups[start:start + _CHUNK]
            parts = [""] * (stride * len(rows))
            parts[0::stride] = map(self.segments[0].__getitem__, tails)
            for k, (lead, segment) in enumerate(zip(self.leads, self.segments[1:], strict=True)):
                parts[2 * k + 1::stride] = map(lead.__getitem__, rows)
                parts[2 * k + 2::stride] = map(segment.__getitem__, tails)
            if start == 0:
                parts[0] = parts[0][1:]  # no comma before the first object
            yield "".join(parts)
        yield "]"


_CHUNK = 256  # events per piece of canonical JSON: about 80 KB


class Calendar(list[Event]):
    """A list of events that carries their canonical JSON pieces (made by ``load_calendar``)."""

    def __init__(self, events: Iterable[Event] = (), canonical: Canonical | None = None,
                 id_order: list[int] | None = None) -> None:
        """``canonical`` describes the same events (in any order); ``id_order`` lists its rows in id order.
        Without ``canonical`` (as copies made the way of any list are) it is a plain list of events."""
        super().__init__(events)
        self._members = tuple(self)
        self._canonical = canonical
        self._id_order = id_order
        if canonical is not None and len(canonical.ids) != len(self._members):
            raise ValueError("canonical pieces for a different number of events")

    def canonical_digest(self) -> str | None:
        """sha256 of ``reference_json`` of the events while the list holds exactly the events it was made with."""
        if self._canonical is None or len(self) != len(self._members) or not all(map(is_, self, self._members)):
            return None
        digest = hashlib.sha256()
        for chunk in self._canonical.chunks(self._id_order):
            digest.update(chunk.encode("ascii"))
        return digest.hexdigest()

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (list(self),))  # crosses processes as a plain list


def _columns_json(ordered: Sequence[Event]) -> str | None:
    """``reference_json(ordered)``, written one field column at a time; None for events of unusual shape."""
    n = len(ordered)
    if n == 0:
        return "[]"
    if set(map(type, ordered)) != {Event} or set(map(len, map(vars, ordered))) != {len(EVENT_FIELDS)}:
        return None  # a subclass, or attributes beyond the fields (event_to_dict would write them too)
    stride = 2 * len(KEYS)
    parts = [""] * (stride * n)
    try:
        for k, name in enumerate(KEYS):
            column = list(map(attrgetter(name), ordered))
            encode = _ENCODE[name]
            text = {value: encode(value) for value in set(column)}
            lead = [f',"{name}":'] * n if k else ['},{"' + name + '":'] * n
            if not k:
                lead[0] = '[{"' + name + '":'
            parts[2 * k::stride] = lead
            parts[2 * k + 1::stride] = list(map(text.__getitem__, column))
    except (_OtherType, TypeError):  # TypeError: an unhashable value
        return None
    return "".join(parts) + "}]"
