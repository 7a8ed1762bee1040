"""engine/reporting/json_text.py: canonical JSON text byte for byte equal to the json.dumps it replaced.

The reference below is a verbatim copy of engine/reporting/report.py's ``to_jsonable`` and ``dumps_report`` before
json_text existed (saved runs and `evbt rerun` compare report.json files byte for byte, so the new writer must give
the same bytes for every document the old one accepted). Generated documents cover nested dicts/lists/tuples,
strings with escapes, control characters, non-ASCII and lone surrogates, big ints, every kind of float (NaN and
inf become null, -0.0, 1e-07, 1e+22, subnormals), dates and timestamps, numpy scalars, enums, sets, non-str keys
(colliding after str()), dataclasses, and lists of records (the trades/orders shape, written by a special path).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import enum
import json
import math
from collections.abc import Mapping
from pathlib import PurePath, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine import backtest
from engine.execution.records import OrderRecord, TradeRecord
from engine.plan.config import RunConfig
from engine.prices.store import PriceStore
from engine.reporting import json_text
from engine.reporting.json_text import canonical_json, to_jsonable
from engine.reporting.report import dumps_report, order_dict, trade_dict
from tests.engine_helpers import event, frame_on_sessions

# ---------------------------------------------------------------- the reference (the code before json_text)


def _iso_reference(value: dt.date | pd.Timestamp) -> str:
    ts = pd.Timestamp(value)
    if ts.tzinfo is None and ts == ts.normalize():
        return ts.date().isoformat()
    return ts.isoformat()


def to_jsonable_reference(value: Any) -> Any:
    """Plain JSON data: str keys, finite floats (NaN/inf -> None), ISO dates, lists for tuples/sets."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable_reference(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable_reference(dataclasses.asdict(value))
    if isinstance(value, (list, tuple)):
        return [to_jsonable_reference(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((to_jsonable_reference(v) for v in value), key=repr)
    if isinstance(value, np.generic):
        return to_jsonable_reference(value.item())
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dt.date, pd.Timestamp)):
        return None if pd.isna(value) else _iso_reference(value)
    if isinstance(value, PurePath):
        return str(value)
    return str(value)


def dumps_reference(value: Any) -> str:
    return json.dumps(to_jsonable_reference(value), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)


def same_data(a: Any, b: Any) -> bool:
    """Equal as plain data, type for type and in key order (what build_report's callers see in memory)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_data(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_data(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return repr(a) == repr(b)
    return bool(a == b)


# ---------------------------------------------------------------- generated documents


class Colour(enum.IntEnum):
    RED = 1
    GREEN = 2


class Side(enum.StrEnum):
    LONG = "long"
    SHORT = "sh\"ort"


class Mixed(str, enum.Enum):  # noqa: UP042 -- str() is "Mixed.LONG" though it equals and hashes as "long"
    LONG = "long"


class Label:
    """An object json cannot encode: to_jsonable writes its str()."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return f"Label<{self.text}>"


@dataclasses.dataclass(frozen=True)
class Flat:
    name: str
    value: float
    count: int
    flag: bool | None


@dataclasses.dataclass
class Nested:
    items: list[Any]
    table: dict[str, Any]
    inner: Flat | None = None
    single: Any = None


@dataclasses.dataclass(frozen=True)
class One:
    only: Any


Point = collections.namedtuple("Point", "x y")

TRICKY_TEXT = ['"', "\\", "\n", "\r\t\b\f", "\x00", "\x1f", "\x7f", "\u2028\u2029", "é", "中文", "😀", "\ud800",
               "\udfff", "}", '},\n      {', '": {"', "x\\", "null", "NaN", "", " ", "\ufeff"]
TRICKY_FLOATS = [0.0, -0.0, 1e-7, 1e-5, 1e22, 1e16, 1e15, 123456789012345680.0, 5e-324, 2.2250738585072014e-308,
                 1.7976931348623157e308, 0.1, 1 / 3, -2.5, float("nan"), float("inf"), float("-inf"), 63.86277990000001]

texts = st.one_of(st.text(st.characters(exclude_categories=[]), max_size=12), st.sampled_from(TRICKY_TEXT))
floats = st.one_of(st.floats(), st.sampled_from(TRICKY_FLOATS))
ints = st.one_of(st.integers(), st.integers(-(2**70), 2**70), st.sampled_from([0, -1, 2**53 + 1, 10**30]))
plain_scalars = st.one_of(texts, ints, floats, st.booleans(), st.none())
dates = st.one_of(
    st.dates(),
    st.datetimes(),
    st.datetimes(timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=8))])),
    st.datetimes(min_value=dt.datetime(1700, 1, 1), max_value=dt.datetime(2200, 1, 1)).map(pd.Timestamp),
    st.just(pd.NaT),
)
numpy_scalars = st.one_of(
    floats.map(np.float64), st.floats(width=32).map(np.float32), st.integers(-(2**63), 2**63 - 1).map(np.int64),
    st.integers(0, 255).map(np.uint8), st.booleans().map(np.bool_), texts.map(np.str_),
)
other_scalars = st.one_of(
    dates, numpy_scalars, st.sampled_from([Colour.RED, Colour.GREEN, Side.LONG, Side.SHORT, Mixed.LONG]),
    st.decimals(allow_nan=True), texts.map(PurePosixPath), texts.map(Label), st.sampled_from([Label, Flat]),
)
scalars = st.one_of(plain_scalars, plain_scalars, other_scalars)
hashables = st.one_of(texts, ints, floats, st.booleans(), st.none(), st.tuples(ints, texts))


def records(values: st.SearchStrategy[Any]) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Lists of dicts sharing one key set (insertion order shuffled), sometimes with a stray dict mixed in."""

    @st.composite
    def build(draw: st.DrawFn) -> list[dict[str, Any]]:
        keys = draw(st.lists(texts, min_size=1, max_size=6, unique=True))
        rows = []
        for _ in range(draw(st.integers(1, 6))):
            order = draw(st.permutations(keys))
            rows.append({k: draw(values) for k in order})
        if draw(st.booleans()):
            stray = draw(st.sampled_from([{}, {keys[0]: 1}, {**rows[0], "extra": 2}, {k: [1] for k in keys}]))
            rows.insert(draw(st.integers(0, len(rows))), stray)
        return rows

    return build()


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(texts, children, max_size=5),
        st.dictionaries(hashables, children, max_size=5),  # str(key) may collide: the last value wins
        st.dictionaries(texts, children, max_size=3).map(collections.OrderedDict),
        st.frozensets(hashables, max_size=4),
        st.sets(st.one_of(texts, ints), max_size=4),
        st.builds(Point, children, children),
        st.builds(Nested, st.lists(children, max_size=3), st.dictionaries(texts, children, max_size=3),
                  st.none() | st.builds(Flat, texts, floats, ints, st.none() | st.booleans()), children),
        st.builds(One, children),
        records(plain_scalars),
        records(scalars),
    )


flats = st.builds(Flat, texts, floats, ints, st.none() | st.booleans())
documents = st.recursive(st.one_of(scalars, flats, records(plain_scalars)), containers, max_leaves=40)

GENERATED = settings(max_examples=250, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(params=["c-encoder", "python-only"])
def writer_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with json_text's C-encoder paths, and once more without them (a Python built without _json)."""
    if request.param == "python-only":
        monkeypatch.setattr(json_text, "_C_ENCODER", None)
    return str(request.param)


def check_same_text(doc: Any) -> None:
    assert canonical_json(doc) == dumps_reference(doc)


@GENERATED
@given(doc=documents)
@example(doc={"trades": [{"a": 1.0, "b": float("nan")}, {"b": 2, "a": None}], "x": [float("inf"), -0.0]})
@example(doc=[{"k": "},\n      {", "j": 1}, {"k": '": {"', "j": 2}])
@example(doc={1: "int key", "1": "str key", False: "bool key", 2.0: "float key", None: "none key", 1.5: [], "": {}})
@example(doc=[[], {}, [[]], [{}], (), "", 0])
@example(doc=[{"long": 1, "b": 2}, {Mixed.LONG: 3, "b": 4}, {"b": 5, Side.LONG: 6}])
def test_generated_documents_give_the_reference_bytes(writer_mode: str, doc: Any) -> None:
    check_same_text(doc)


@GENERATED
@given(doc=documents)
def test_to_jsonable_gives_the_reference_data(doc: Any) -> None:
    assert same_data(to_jsonable(doc), to_jsonable_reference(doc))


@given(doc=st.dictionaries(texts, documents, max_size=5))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_dumps_report_is_the_reference_text_plus_newline(doc: dict[str, Any]) -> None:
    assert dumps_report(doc) == dumps_reference(doc) + "\n"


def test_hand_written_examples() -> None:
    # json.dumps(indent=2, sort_keys=True) spelled out: the figures and layout every saved report.json has
    doc = {"b": [1, 2.5, None], "a": {"y": True, "x": "é\n"}, "c": [{"k": 1e-07, "j": float("nan")}], "d": []}
    assert canonical_json(doc) == (
        '{\n  "a": {\n    "x": "é\\n",\n    "y": true\n  },\n  "b": [\n    1,\n    2.5,\n    null\n  ],\n'
        '  "c": [\n    {\n      "j": null,\n      "k": 1e-07\n    }\n  ],\n  "d": []\n}'
    )
    assert canonical_json({"t": [{"z": 1e22, "a": "\x01"}, {"a": -0.0, "z": 5}]}) == (
        '{\n  "t": [\n    {\n      "a": "\\u0001",\n      "z": 1e+22\n    },\n'
        '    {\n      "a": -0.0,\n      "z": 5\n    }\n  ]\n}'
    )


# ---------------------------------------------------------------- records and real reports


trade_records = st.builds(
    TradeRecord,
    trade_id=st.integers(0, 10**6), symbol=texts, side=st.sampled_from(["long", "short"]), event_id=texts,
    event_type=texts, entry_date=texts, entry_fill=texts, entry_price=floats, exit_date=st.none() | texts,
    exit_fill=st.none() | texts, exit_price=st.none() | floats, size=ints, fx_entry=floats,
    fx_exit=st.none() | floats, entry_fees=floats, exit_fees=floats, fees=floats, entry_value=floats, pnl=floats,
    ret=floats, exit_reason=texts, holding_sessions=ints, benchmark_return=st.none() | floats | numpy_scalars,
    entry_at=st.none() | texts, exit_at=st.none() | texts, entry_fee_items=st.none() | texts,
    exit_fee_items=st.none() | texts | dates,
)
order_records = st.builds(OrderRecord, date=texts, symbol=texts, action=texts, size=ints, status=texts,
                          reason=texts, event_id=st.none() | texts, price=st.none() | floats,
                          fees=st.none() | floats)


@GENERATED
@given(trades=st.lists(trade_records, max_size=4), orders=st.lists(order_records, max_size=4))
def test_trade_and_order_dicts_as_before(writer_mode: str, trades: list[TradeRecord],
                                         orders: list[OrderRecord]) -> None:
    rows = [trade_dict(t) for t in trades]
    assert all(same_data(row, to_jsonable_reference(dataclasses.asdict(t))) for row, t in zip(rows, trades,
                                                                                           strict=True))
    assert all(same_data(order_dict(o), to_jsonable_reference(dataclasses.asdict(o))) for o in orders)
    check_same_text({"trades": rows, "orders": [order_dict(o) for o in orders], "raw": [*trades, *orders]})


def test_a_real_report_is_written_as_before(tmp_path: Any, writer_mode: str) -> None:
    store = PriceStore(tmp_path / "cache", offline=True)
    store.write("BABA", frame_on_sessions("XNYS", "2021-10-01", "2022-06-30", seed=1), source="csv")
    store.write("JD", frame_on_sessions("XNYS", "2021-10-01", "2022-06-30", seed=2, base=60), source="csv")
    store.write("KWEB", frame_on_sessions("XNYS", "2021-10-01", "2022-06-30", seed=5, base=30), source="csv")
    config = RunConfig(strategy="event_hold", params={"hold": 5}, symbols=("BABA", "JD"),
                       start=dt.date(2022, 3, 1), end=dt.date(2022, 6, 30), cash=100_000.0)
    events = [event(f"e{i}", f"2022-{m:02d}-{d:02d}") for i, (m, d) in enumerate([(3, 16), (4, 12), (5, 17)])]
    outcome = backtest.run(config, store, events=events)
    report = outcome.report
    assert len(report["trades"]) >= 4 and report["orders"]  # the records path is exercised
    expected = [to_jsonable_reference(dataclasses.asdict(t)) for t in outcome.result.trades]
    assert same_data(report["trades"], expected)
    assert dumps_report(report) == dumps_reference(report) + "\n"
