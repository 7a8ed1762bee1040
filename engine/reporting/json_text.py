"""Canonical JSON of evbt documents: the plain-data conversion (``to_jsonable``) and its text (``canonical_json``).

``canonical_json(doc)`` is, byte for byte, ``json.dumps(to_jsonable(doc), indent=2, sort_keys=True,
ensure_ascii=False, allow_nan=False)`` for every input (tests/test_json_text.py checks it against a copy of the
original code on generated documents), but several times faster on large reports:

- one pass: the conversion is applied while writing, and only where a value is not plain already (exact ``dict``
  with ``str`` keys, ``list``/``tuple``, ``str``, ``int``, ``bool``, ``None``, ``float``); anything else goes through
  ``to_jsonable`` first and its result is written;
- with ``indent`` set, CPython's json runs its pure-Python encoder; here a leaf container (every value a plain
  scalar) is written in one call of the C encoder (``json.encoder.c_make_encoder``) whose item separator carries the
  newline and indentation of its depth; strings, ints and floats come out of the same C code and ``float.__repr__``
  json itself uses. A list of dicts sharing one key set with plain scalar values (trades, orders) is written by
  one C call over all its values (``_records``); other containers holding containers are written key by key.

``to_jsonable`` keeps the conversion rules it always had (NaN/inf -> None, ISO dates, lists for tuples, sets sorted by
repr, ``str`` of the rest); dataclasses whose fields are all plain scalars (TradeRecord, OrderRecord) are read by
their field names instead of ``dataclasses.asdict``, which gives the same dict.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import json.encoder
import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from itertools import chain, compress
from operator import attrgetter, is_, itemgetter
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd

INDENT = "  "
_SCALARS = frozenset({str, int, bool, type(None)})  # returned as they are (floats need a finiteness check)
_PLAIN = _SCALARS | {float}
_STR = frozenset({str})
_DICT = frozenset({dict})
_isfinite = math.isfinite
_is_float_type = partial(is_, float)
_encode_str: Callable[[str], str] = json.encoder.encode_basestring  # the C version when _json is built
_int_text = int.__repr__
_float_text = float.__repr__
_Encoder = Callable[[Any, int], Any]  # json's C encoder: (value, indent level) -> chunks of text
_C_ENCODER: Callable[..., _Encoder] | None = getattr(json.encoder, "c_make_encoder", None)  # None without _json


# ---------------------------------------------------------------- plain data


def iso(value: dt.date | pd.Timestamp) -> str:
    """A date as YYYY-MM-DD when it is a plain day, else the full ISO timestamp."""
    ts = pd.Timestamp(value)
    if ts.tzinfo is None and ts == ts.normalize():
        return ts.date().isoformat()
    return ts.isoformat()


_Getter = Callable[[Any], tuple[Any, ...]]
_FIELDS: dict[type, tuple[tuple[str, ...], _Getter]] = {}


def _field_getter(cls: type) -> tuple[tuple[str, ...], _Getter]:
    names = tuple(f.name for f in dataclasses.fields(cls))
    if len(names) >= 2:
        getter: _Getter = attrgetter(*names)
    else:
        def getter(obj: Any) -> tuple[Any, ...]:
            return tuple(getattr(obj, n) for n in names)
    _FIELDS[cls] = (names, getter)
    return names, getter


def dataclass_jsonable(value: Any) -> Any:
    """``to_jsonable(dataclasses.asdict(value))`` of a dataclass instance (that is not a Mapping); read by field
    names, without asdict's deep copy, when every field is a plain scalar (TradeRecord, OrderRecord)."""
    names, getter = _FIELDS.get(type(value)) or _field_getter(type(value))
    values = getter(value)
    if _SCALARS.issuperset(map(type, values)):
        return dict(zip(names, values, strict=True))
    if not _PLAIN.issuperset(map(type, values)):
        return to_jsonable(dataclasses.asdict(value))
    if all(map(_isfinite, compress(values, map(_is_float_type, map(type, values))))):
        return dict(zip(names, values, strict=True))
    return {n: (None if type(v) is float and not _isfinite(v) else v) for n, v in zip(names, values, strict=True)}


class Records:
    """Dataclass instances (a run's trades or orders) that ``canonical_json`` writes, and ``to_jsonable`` returns,
    as the list of their ``dataclass_jsonable`` dicts: the text comes straight from the instances' attributes,
    without making a dict for each (``_write_records``)."""

    __slots__ = ("items",)

    def __init__(self, items: Sequence[Any]) -> None:
        self.items = items

    def dicts(self) -> list[Any]:
        return [dataclass_jsonable(v) for v in self.items]


def to_jsonable(value: Any) -> Any:
    """Plain JSON data: str keys, finite floats (NaN/inf -> None), ISO dates, lists for tuples/sets."""
    t = type(value)
    if t in _SCALARS:
        return value
    if t is float:
        return value if _isfinite(value) else None
    if t is list or t is tuple:
        if _SCALARS.issuperset(map(type, value)):
            return list(value)
        return [to_jsonable(v) for v in value]
    if t is dict or isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if t is Records:
        return value.dicts()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclass_jsonable(value)
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((to_jsonable(v) for v in value), key=repr)
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if _isfinite(value) else None
    if isinstance(value, (dt.date, pd.Timestamp)):
        return None if pd.isna(value) else iso(value)
    if isinstance(value, PurePath):
        return str(value)
    return str(value)


# ---------------------------------------------------------------- text


def _no_default(value: Any) -> Any:
    raise TypeError(f"not plain JSON data: {type(value).__name__}")


_ENCODERS: dict[tuple[str, bool], _Encoder] = {}


def _c_encoder(item_separator: str, sort_keys: bool) -> _Encoder:
    """json's C encoder (compact, no NaN, no circularity check) with this item separator and ": " after keys."""
    encoder = _ENCODERS.get((item_separator, sort_keys))
    if encoder is None:
        assert _C_ENCODER is not None  # callers check
        encoder = _C_ENCODER(None, _no_default, _encode_str, None, ": ", item_separator, sort_keys, False, False)
        _ENCODERS[item_separator, sort_keys] = encoder
    return encoder


def _leaf(value: dict[str, Any] | list[Any] | tuple[Any, ...], depth: int) -> str | None:
    """A container of plain scalars in one go, or None (a NaN/inf float: written item by item, as null)."""
    try:
        text = "".join(_c_encoder(",\n" + INDENT * (depth + 1), True)(value, 0))
    except ValueError:
        return None
    return f"{text[0]}\n{INDENT * (depth + 1)}{text[1:-1]}\n{INDENT * depth}{text[-1]}"


def _write_dict(value: dict[Any, Any], out: list[str], depth: int) -> None:
    if not value:
        out.append("{}")
        return
    if not _STR.issuperset(map(type, value)):  # str() of the keys, as to_jsonable does
        _write(to_jsonable(value), out, depth)
        return
    if _C_ENCODER is not None and _PLAIN.issuperset(map(type, value.values())):
        text = _leaf(value, depth)
        if text is not None:
            out.append(text)
            return
    if _C_ENCODER is not None:
        text = _keyed_records(value, depth)
        if text is not None:
            out.append(text)
            return
    newline = "\n" + INDENT * (depth + 1)
    opening = "{"
    for key in sorted(value):
        out.append(f"{opening}{newline}{_encode_str(key)}: ")
        _write(value[key], out, depth + 1)
        opening = ","
    out.append("\n" + INDENT * depth + "}")


def _records(value: list[Any] | tuple[Any, ...], depth: int) -> str | None:
    """A list of dicts with one set of str keys and plain scalar values (a report's trades or orders), or None.

    Every dict's values, in sorted-key order, go into one flat list written by the C encoder with a newline between
    items (a raw newline never occurs inside encoded JSON), so the text splits back into one token per value; each
    token then gets the text json writes before it (separator, indentation, key), interleaved by slice assignment.
    """
    if not _DICT.issuperset(map(type, value)):
        return None
    first = value[0]
    width = len(first)
    if not width or not {width}.issuperset(map(len, value)):
        return None
    if not _STR.issuperset(map(type, chain.from_iterable(value))):  # a key equal to a str but of its own type
        return None
    keys = sorted(first)
    try:
        flat = list(chain.from_iterable(map(itemgetter(*keys, keys[0]), value)))  # a tuple even for one key
    except KeyError:  # another key set
        return None
    del flat[width::width + 1]
    if not _PLAIN.issuperset(map(type, flat)):
        return None
    return _flat_records(keys, flat, len(value), depth)


def _keyed_records(value: dict[str, Any], depth: int) -> str | None:
    """A dict (str keys) of dicts with one set of str keys and plain scalar values (a report's data section:
    symbol -> source, dates, rows...), or None: every value in one C call, as ``_records`` does, each record's
    text from a %-template (its literal parts' ``%`` doubled) holding its key and values."""
    names = sorted(value)
    rows = [value[k] for k in names]
    if not _DICT.issuperset(map(type, rows)):
        return None
    width = len(rows[0])
    if not width or not {width}.issuperset(map(len, rows)):
        return None
    if not _STR.issuperset(map(type, chain.from_iterable(rows))):
        return None
    keys = sorted(rows[0])
    try:
        flat = list(chain.from_iterable(map(itemgetter(*keys, keys[0]), rows)))  # a tuple even for one key
    except KeyError:
        return None
    del flat[width::width + 1]
    if not _PLAIN.issuperset(map(type, flat)):
        return None
    try:
        tokens = "".join(_c_encoder("\n", False)([*names, *flat], 0))[1:-1].split("\n")
    except ValueError:  # a NaN/inf float: written dict by dict
        return None
    inner, item = INDENT * (depth + 1), INDENT * (depth + 2)
    fields = ",\n".join(f"{item}{_encode_str(k).replace('%', '%%')}: %s" for k in keys)
    template = f"{inner}%s: {{\n{fields}\n{inner}}}"
    count = len(names)
    values = iter(tokens[count:])
    body = ",\n".join(map(template.__mod__, (
        (name, *row) for name, row in zip(tokens[:count], zip(*[values] * width, strict=True), strict=True))))
    return f"{{\n{body}\n{INDENT * depth}}}"


def _flat_records(keys: list[str], flat: list[Any], count: int, depth: int) -> str | None:
    """``count`` dicts with the sorted str ``keys``, given as their plain scalar values one dict after the other
    (``flat``), written as ``_records`` writes them; None if a value is a NaN/inf float."""
    try:
        tokens = "".join(_c_encoder("\n", False)(flat, 0)).split("\n")
    except ValueError:  # a NaN/inf float: written dict by dict
        return None
    tokens[0] = tokens[0][1:]  # the flat list's brackets, one after the other (one token if one value)
    tokens[-1] = tokens[-1][:-1]
    outer, inner, item = (INDENT * (depth + n) for n in (0, 1, 2))
    heads = [f",\n{item}{_encode_str(k)}: " for k in keys]
    heads[0] = f"\n{inner}}},\n{inner}{{\n{item}{_encode_str(keys[0])}: "
    parts = [""] * (2 * len(tokens))
    parts[0::2] = heads * count
    parts[1::2] = tokens
    parts[0] = f"[\n{inner}{{\n{item}{_encode_str(keys[0])}: "
    parts.append(f"\n{inner}}}\n{outer}]")
    return "".join(parts)


_SORTED_GETTERS: dict[type, tuple[list[str], _Getter]] = {}


def _write_records(items: Sequence[Any], out: list[str], depth: int) -> None:
    """``_write_list([dataclass_jsonable(v) for v in items])``, byte for byte. Instances of one dataclass (not a
    Mapping, two fields or more) whose field values are all plain scalars are read in sorted field order straight
    into ``_flat_records`` (NaN/inf floats become null, as in their dicts); anything else makes the dicts."""
    text = None
    cls = type(items[0]) if items else None
    if (_C_ENCODER is not None and cls is not None and dataclasses.is_dataclass(cls)
            and not issubclass(cls, Mapping) and {cls}.issuperset(map(type, items))):
        keys, getter = _SORTED_GETTERS.get(cls) or _sorted_getter(cls)
        if len(keys) >= 2:
            flat = list(chain.from_iterable(map(getter, items)))
            if _PLAIN.issuperset(map(type, flat)):
                text = _flat_records(keys, flat, len(items), depth)
                if text is None:  # a NaN/inf float: null, as dataclass_jsonable makes it
                    flat = [None if type(v) is float and not _isfinite(v) else v for v in flat]
                    text = _flat_records(keys, flat, len(items), depth)
    if text is None:
        _write_list([dataclass_jsonable(v) for v in items], out, depth)
    else:
        out.append(text)


def _sorted_getter(cls: type) -> tuple[list[str], _Getter]:
    names, _ = _FIELDS.get(cls) or _field_getter(cls)
    keys = sorted(names)
    entry: tuple[list[str], _Getter] = (keys, attrgetter(*keys) if len(keys) >= 2 else _field_getter(cls)[1])
    _SORTED_GETTERS[cls] = entry
    return entry


def _write_list(value: list[Any] | tuple[Any, ...], out: list[str], depth: int) -> None:
    if not value:
        out.append("[]")
        return
    if _C_ENCODER is not None:
        text = _leaf(value, depth) if _PLAIN.issuperset(map(type, value)) else _records(value, depth)
        if text is not None:
            out.append(text)
            return
    separator = "[\n" + INDENT * (depth + 1)
    for item in value:
        out.append(separator)
        _write(item, out, depth + 1)
        separator = ",\n" + INDENT * (depth + 1)
    out.append("\n" + INDENT * depth + "]")


def _write(value: Any, out: list[str], depth: int) -> None:
    t = type(value)
    if t is str:
        out.append(_encode_str(value))
    elif t is dict:
        _write_dict(value, out, depth)
    elif t is list or t is tuple:
        _write_list(value, out, depth)
    elif t is float:
        out.append(_float_text(value) if _isfinite(value) else "null")
    elif t is int:
        out.append(_int_text(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif t is Records:
        _write_records(value.items, out, depth)
    else:
        _write_plain(to_jsonable(value), out, depth)


def _write_plain(value: Any, out: list[str], depth: int) -> None:
    """A value ``to_jsonable`` returned: plain containers, or scalars that may be subclasses (IntEnum, StrEnum)."""
    if type(value) is dict or type(value) is list:
        _write(value, out, depth)
    elif isinstance(value, str):
        out.append(_encode_str(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(_int_text(value))
    elif isinstance(value, float) and _isfinite(value):
        out.append(_float_text(value))
    else:  # to_jsonable returns none of these
        raise ValueError(f"not plain JSON data: {value!r}")


def canonical_json(value: Any, end: str = "") -> str:
    """``json.dumps(to_jsonable(value), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + end``."""
    out: list[str] = []
    _write(value, out, 0)
    out.append(end)
    return "".join(out)


_DECODER = json.JSONDecoder()


def with_key(text: str, key: str, value: Any, end: str = "") -> str | None:
    """``canonical_json({**doc, key: value}, end)`` from ``text == canonical_json(doc, end)``, a dict ``doc``
    without ``key``, without writing ``doc`` again: the entry goes in before the first top-level key that sorts
    after it. Top-level keys are the lines indented by exactly one step that start with a quote (encoded JSON
    never holds a raw newline, and deeper lines are indented further). None when ``text`` is not such a text
    (not a non-empty object, or ``key`` already there)."""
    tail = "\n}" + end
    if not text.startswith('{\n' + INDENT + '"') or not text.endswith(tail):
        return None
    body_end = len(text) - len(tail)
    out: list[str] = []
    _write(value, out, 1)
    entry = f"{INDENT}{_encode_str(key)}: {''.join(out)}"
    marker = "\n" + INDENT + '"'
    pos = text.find(marker)
    while 0 <= pos < body_end:
        name = _DECODER.raw_decode(text, pos + len(marker) - 1)[0]  # the key, from its opening quote
        if name == key:
            return None
        if name > key:
            return f"{text[:pos]}\n{entry},{text[pos:]}"
        pos = text.find(marker, pos + len(marker))
    return f"{text[:body_end]},\n{entry}{text[body_end:]}"
