"""The fast paths of a sweep's tail (everything after the replay): each gives exactly what the plain code gives.

- ``json_text.Records``: a report's trades and orders written straight from the records, the same bytes as the
  list of their dicts (generated records with NaN/inf, numpy scalars and dates; a hand-written text);
- ``report_text`` / ``point_report_text``: ``dumps_report`` of the built report, byte for byte;
- ``warmup_notes``: the notes ``with_warmup`` writes, with the count of tradable bars checked first;
- ``SnapshotStore.keep``: a snapshot already linked to the version read is left alone, any other is handled in full.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import backtest
from engine.analysis.metrics import Metrics
from engine.execution.records import OrderRecord, TradeRecord
from engine.plan.config import RunConfig
from engine.plan.warmup import with_warmup
from engine.prices.snapshots import SnapshotStore
from engine.prices.store import PriceStore
from engine.reporting import json_text
from engine.reporting.json_text import Records, canonical_json, to_jsonable
from engine.reporting.report import build_report, dumps_report, report_text
from tests.engine_helpers import event, frame_on_sessions
from tests.test_json_text import (
    GENERATED,
    dumps_reference,
    hashables,
    order_records,
    plain_scalars,
    records,
    scalars,
    texts,
    to_jsonable_reference,
    trade_records,
)


@pytest.fixture(params=["c-encoder", "python-only"])
def writer_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """With json_text's C-encoder paths, and once more without them (a Python built without _json)."""
    if request.param == "python-only":
        monkeypatch.setattr(json_text, "_C_ENCODER", None)
    return str(request.param)

# ---------------------------------------------------------------- Records


@dataclasses.dataclass(frozen=True)
class Fill:
    symbol: str
    price: float | None
    size: int


def test_records_hand_written_text() -> None:
    """Keys in sorted order, NaN written as null, 2-space indents: the text json.dumps(indent=2) writes."""
    rows = Records([Fill("B\"X", 1.5, 3), Fill("A", float("nan"), -1)])
    assert canonical_json({"fills": rows}) == (
        '{\n  "fills": [\n    {\n      "price": 1.5,\n      "size": 3,\n      "symbol": "B\\"X"\n    },\n'
        '    {\n      "price": null,\n      "size": -1,\n      "symbol": "A"\n    }\n  ]\n}'
    )
    assert canonical_json(Records([])) == "[]"
    assert to_jsonable(rows) == [{"symbol": 'B"X', "price": 1.5, "size": 3}, {"symbol": "A", "price": None, "size": -1}]


@GENERATED
@given(trades=st.lists(trade_records, max_size=5), orders=st.lists(order_records, max_size=5))
def test_records_give_the_bytes_of_their_dicts(writer_mode: str, trades: list[TradeRecord],
                                               orders: list[OrderRecord]) -> None:
    doc = {"trades": Records(trades), "orders": Records(orders), "mixed": Records([*orders, *trades])}
    reference = {"trades": [to_jsonable_reference(dataclasses.asdict(t)) for t in trades],
                 "orders": [to_jsonable_reference(dataclasses.asdict(o)) for o in orders],
                 "mixed": [to_jsonable_reference(dataclasses.asdict(r)) for r in [*orders, *trades]]}
    assert canonical_json(doc) == dumps_reference(reference)
    assert to_jsonable(doc) == to_jsonable(reference)


@GENERATED
@given(rows=st.one_of(records(plain_scalars), records(scalars)), names=st.lists(texts, min_size=1, max_size=8,
                                                                             unique=True),
       other=st.lists(hashables, max_size=3))
def test_dicts_of_records_give_the_reference_bytes(writer_mode: str, rows: list[dict[str, Any]], names: list[str],
                                                   other: list[Any]) -> None:
    """A dict of dicts sharing one key set (a report's data section, by symbol) is written as json.dumps writes it,
    whatever the values (NaN, dates, numpy scalars), the keys (quotes, %, non-str keys) or a stray dict."""
    keyed = dict(zip(names, rows, strict=False))
    mixed = {**keyed, **dict(zip(other, rows, strict=False))}
    for doc in ({"data": {"symbols": keyed, "synthetic": False}}, keyed, mixed, {"%s": {"%d": "%%", "x": 1}}):
        assert canonical_json(doc) == dumps_reference(doc)


def test_data_section_hand_written_text() -> None:
    assert canonical_json({"B": {"rows": 2, "source": "c%sv"}, "A": {"source": None, "rows": 1.5}}) == (
        '{\n  "A": {\n    "rows": 1.5,\n    "source": null\n  },\n'
        '  "B": {\n    "rows": 2,\n    "source": "c%sv"\n  }\n}'
    )


def _real_outcome(tmp_path: Path) -> Any:
    store = PriceStore(tmp_path / "cache", offline=True)
    for sym, seed, base in (("BABA", 1, 100.0), ("JD", 2, 60.0), ("KWEB", 5, 30.0)):
        store.write(sym, frame_on_sessions("XNYS", "2021-10-01", "2022-06-30", seed=seed, base=base), source="csv")
    config = RunConfig(strategy="event_hold", params={"hold": 5}, symbols=("BABA", "JD"),
                       start=dt.date(2022, 3, 1), end=dt.date(2022, 6, 30), cash=100_000.0)
    events = [event(f"e{i}", f"2022-{m:02d}-{d:02d}") for i, (m, d) in enumerate([(3, 16), (4, 12), (5, 17)])]
    return backtest.run(config, store, events=events)


def test_report_text_is_dumps_of_the_built_report(tmp_path: Path, writer_mode: str) -> None:
    outcome = _real_outcome(tmp_path)
    report = outcome.report
    assert len(report["trades"]) >= 4 and report["orders"]
    inputs = {k: report[k] for k in ("run_id", "strategy", "params", "config", "events")}
    inputs.update(result=outcome.result, metrics=Metrics(**report["metrics"]),
                  data={s: dict(v) for s, v in report["data"]["symbols"].items()})
    assert report_text(**inputs) == dumps_report(build_report(**inputs)) == dumps_report(report)


def test_point_report_text_is_dumps_of_point_report(sample_cache: Path) -> None:
    import warnings

    from engine.plan.config import make_run_config
    from engine.sweeps import sweep
    from engine.sweeps.evaluate import point_report_text
    from strategies.registry import get_strategy

    cls = get_strategy("reassurance")
    for benchmark in ("KWEB", "none"):
        config = make_run_config("reassurance", ("hold=3",), {"symbols": "BABA,JD,PDD,0700.HK,9988.HK",
                                 "end": "2022-12-30", "benchmark": benchmark}, None, cls.default_symbols, cls.Params)
        store = PriceStore(sample_cache, offline=True)
        window = sweep.Window("full", config.start, config.end)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = sweep.load_sweep_data(store, config, [window])
            res = sweep.evaluate(data, window, config, records=True)
        assert len(res.trades) >= 4 and res.orders
        text = point_report_text(data, window, config, res)
        assert text == dumps_report(sweep.point_report(data, window, config, res))


# ---------------------------------------------------------------- warm-up notes


def test_warmup_bars_counts_tradable_bars_before_start() -> None:
    from engine.sweeps.evaluate import warmup_bars

    index = pd.bdate_range("2022-01-03", periods=8)
    stale = np.array([False, True, False, True, False, False, False, False])
    frame = pd.DataFrame({"close": np.arange(8.0), "stale": stale}, index=index)
    # 2022-01-03..01-07 lie before Monday 01-10: five bars, two of them stale
    assert warmup_bars(frame, dt.date(2022, 1, 10)) == 3
    assert warmup_bars(frame, dt.date(2022, 1, 1)) == 0
    for n in range(0, 6):  # with_warmup notes a short warm-up exactly when 3 < n
        assert (with_warmup(frame, "X", dt.date(2022, 1, 10), n)[1] is not None) == (n > 3)


def test_warmup_notes_are_with_warmups(tmp_path: Path) -> None:
    """Symbols with stale bars just before the start, and one whose data begins after a short history: the notes
    (and their order) are those of with_warmup over every symbol and warm-up."""
    from engine.sweeps.evaluate import SweepCaches, warmup_notes
    from engine.sweeps.windows import Window

    index = pd.bdate_range("2022-01-03", periods=30)
    frames = {}
    for k, (first, stale_at) in enumerate([(0, [4, 6]), (3, []), (5, [5, 6, 7]), (0, [])]):
        idx = index[first:]
        stale = np.zeros(len(idx), dtype=bool)
        stale[[i - first for i in stale_at]] = True
        frames[f"S{k}"] = pd.DataFrame({"close": np.arange(float(len(idx))), "stale": stale}, index=idx)
    start = index[8].date()

    class Ctx:
        history = frames
        window = Window("full", start, index[-1].date())

    ctx = Ctx()
    ctx.frames = {s: f for s, f in frames.items() if s != "S3"}  # type: ignore[attr-defined]

    class Caches(SweepCaches):
        def context(self, data: Any, window: Any) -> Any:
            return ctx

    class Task:
        def __init__(self, lookback: int) -> None:
            self.params_json = str(lookback)
            self.config = SimpleNamespace(params={"lookback": lookback})

    class Data:
        strategy = "fade"

    # warm-ups of 6 and 7 sessions; before the start S0 has 6 tradable bars, S1 5, S2 none (3 stale bars)
    got = warmup_notes(Data(), [ctx.window], [Task(5), Task(6)], Caches())  # type: ignore[arg-type]
    assert [n.split(" sessions")[0] for n in got] == [f"{s}: warm-up needs {n}" for n, s in
                                                       [(6, "S1"), (6, "S2"), (7, "S0"), (7, "S1"), (7, "S2")]]
    assert got[0].startswith("S1: warm-up needs 6 sessions before 2022-01-13, the data has 5 (its data begins "
                             "2022-01-06)")
    sessions = [6, 7]
    expected = [note for n in sessions for s, h in frames.items() if s != "S3"
                and (note := with_warmup(h, s, start, n)[1]) is not None]
    assert expected and got == list(dict.fromkeys(expected))


# ---------------------------------------------------------------- snapshots


def _store(tmp_path: Path) -> tuple[PriceStore, dict[str, str]]:
    close = 100 + np.arange(20, dtype="float64")
    bars = pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close, "adj_close": close,
                         "volume": np.full(20, 10.0)}, index=pd.bdate_range("2022-01-03", periods=20, name="date"))
    writer = PriceStore(tmp_path)
    for i, sym in enumerate(("BABA", "JD")):
        writer.write(sym, bars + i, "csv")
    return _store_read(tmp_path)


def _store_read(tmp_path: Path) -> tuple[PriceStore, dict[str, str]]:
    reader = PriceStore(tmp_path, offline=True)
    reader.preload(["BABA", "JD"])
    return reader, {s: reader.fingerprint(s) for s in ("BABA", "JD")}


def test_keep_leaves_a_linked_snapshot_and_relinks_a_copy(tmp_path: Path) -> None:
    """A snapshot that is a copy of the version read (made where links failed, or by a backup restore) is
    linked to the cache file again; one already linked to the version read is left as it is (its inode's
    ctime, which any new link would change, stays the same)."""
    first, fps = _store(tmp_path)
    assert SnapshotStore.for_store(first).keep(fps) == []
    jd = SnapshotStore.for_store(first).path(fps["JD"])
    jd.unlink()
    shutil.copyfile(first.path_for("JD"), jd)  # same content, its own inode
    reader, fps_again = _store_read(tmp_path)  # the next sweep reads the files again (unlinking changed a ctime)
    assert fps_again == fps
    snaps = SnapshotStore.for_store(reader)
    baba = snaps.path(fps["BABA"])
    linked = os.stat(baba)
    assert not os.path.samefile(jd, reader.path_for("JD"))
    assert snaps.keep(fps) == []
    assert os.path.samefile(jd, reader.path_for("JD")) and snaps.disk_cost() == 0
    again = os.stat(baba)
    assert (again.st_ino, again.st_nlink, again.st_ctime_ns) == (linked.st_ino, linked.st_nlink, linked.st_ctime_ns)


def test_keep_relinks_a_snapshot_to_a_copy_of_the_version_read(tmp_path: Path) -> None:
    """The cache file was replaced, after the sweep read it, by a copy of itself made outside evbt (a restore, an
    rsync): the snapshot, linked to the old file, is linked to the new one (else it alone would hold the old
    inode: disk space)."""
    first, fps = _store(tmp_path)
    assert SnapshotStore.for_store(first).keep(fps) == []
    reader, _ = _store_read(tmp_path)
    source = reader.path_for("BABA")
    shutil.copyfile(source, tmp_path / "copy")
    os.replace(tmp_path / "copy", source)
    snaps = SnapshotStore.for_store(reader)
    assert not os.path.samefile(snaps.path(fps["BABA"]), source)
    assert snaps.keep(fps) == []
    assert os.path.samefile(snaps.path(fps["BABA"]), source) and snaps.disk_cost() == 0


# ---------------------------------------------------------------- the folder lock and the staged writes


def test_folder_lock_excludes_a_filelock_on_the_same_file(tmp_path: Path) -> None:
    """The sweep folder lock is the flock filelock takes on Unix: while one is held the other cannot be taken
    (an evbt that locked with filelock and this one exclude each other), and it is free again after."""
    from filelock import FileLock, Timeout

    from engine.sweeps.storage import folder_lock

    folder = tmp_path / "sweeps" / "sweep-x"
    other = FileLock(folder.parent / ".sweep-x.lock")
    with folder_lock(folder), pytest.raises(Timeout):
        other.acquire(timeout=0)
    other.acquire(timeout=0)
    other.release()
    with other:
        taken = []

        def take() -> None:
            with folder_lock(folder):
                taken.append(True)

        import threading

        thread = threading.Thread(target=take)
        thread.start()
        thread.join(0.3)
        assert not taken  # waits while filelock holds it
    thread.join()
    assert taken == [True]


def test_staged_writes_appear_on_commit_and_a_failure_leaves_nothing(tmp_path: Path) -> None:
    from engine.errors import DataError
    from engine.sweeps.storage import StagedWrites

    (tmp_path / "sub").mkdir()
    (tmp_path / "a.json").write_text("old", encoding="utf-8")
    writes = StagedWrites()
    writes.add(tmp_path / "a.json", b"new a")
    writes.add(tmp_path / "sub" / "b.json", b"new b")
    writes._join()  # staged (written, fsynced), not yet visible
    assert (tmp_path / "a.json").read_text(encoding="utf-8") == "old" and not (tmp_path / "sub" / "b.json").exists()
    assert len([p for p in tmp_path.rglob(".*.tmp")]) == 2
    writes.commit()
    assert (tmp_path / "a.json").read_bytes() == b"new a" and (tmp_path / "sub" / "b.json").read_bytes() == b"new b"
    assert not list(tmp_path.rglob(".*.tmp"))

    (tmp_path / "blocker").write_text("a file, not a folder", encoding="utf-8")
    failing = StagedWrites()
    failing.add(tmp_path / "a.json", b"newer a")
    failing.add(tmp_path / "blocker" / "c.json", b"cannot be written")
    failing.add(tmp_path / "d.json", b"after the failure")
    with pytest.raises(DataError, match="cannot write"):
        failing.commit()
    assert (tmp_path / "a.json").read_bytes() == b"new a"  # nothing renamed: the old file stays
    assert not (tmp_path / "d.json").exists() and not list(tmp_path.rglob(".*.tmp"))

    dropped = StagedWrites()
    dropped.add(tmp_path / "a.json", b"dropped")
    dropped.discard()
    assert (tmp_path / "a.json").read_bytes() == b"new a" and not list(tmp_path.rglob(".*.tmp"))


# ---------------------------------------------------------------- window contexts


def test_window_context_slices_as_loc_does(tmp_path: Path) -> None:
    """Each window's frames are the bars from its start to its end, its history every bar up to its end (label
    slices spelled out), for a window in the middle of the data and one reaching its last bar; a symbol without
    bars in a window is left out with a note."""
    from engine.sweeps.data import SweepData, window_context
    from engine.sweeps.windows import Window

    index = pd.bdate_range("2022-01-03", "2022-03-31")
    full = pd.DataFrame({"close": np.arange(float(len(index))), "stale": np.zeros(len(index), dtype=bool)},
                        index=index)
    late = full.loc["2022-03-01":]
    data = SweepData("fade", {"A": full, "B": late}, None, None, [], {"A": "a" * 64, "B": "b" * 64}, "c",
                     ("A", "B", "C"))
    for start, end in (("2022-01-10", "2022-02-15"), ("2022-02-01", "2022-03-31"), ("2022-01-01", "2022-06-30")):
        window = Window("w", dt.date.fromisoformat(start), dt.date.fromisoformat(end))
        ctx = window_context(data, window)
        kept = [s for s, f in (("A", full), ("B", late)) if len(f.loc[start:end])]
        assert list(ctx.frames) == list(ctx.history) == kept == ctx.symbols
        for symbol in kept:
            source = data.frames[symbol]
            pd.testing.assert_frame_equal(ctx.frames[symbol], source.loc[start:end])
            pd.testing.assert_frame_equal(ctx.history[symbol], source.loc[:end])
        assert [n.split(":")[0] for n in ctx.warnings] == [s for s in ("A", "B", "C") if s not in kept]


# ---------------------------------------------------------------- chunk reads


def test_read_parquet_is_read_table(tmp_path: Path) -> None:
    """The same table as pyarrow's read_table for every column choice; a column the file lacks is refused as
    read_table refuses it (the sweep then sets the chunk aside as damaged, as before)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from engine.sweeps.storage import read_parquet

    path = tmp_path / "chunk.parquet"
    pq.write_table(pa.table({"key": ["a", "b"], "x": [1.5, None], "n": [1, 2]}), path)
    for columns in (None, ["key"], ["x", "key"], ["n", "x", "key"], ["key", "key"]):
        got, want = read_parquet(path, columns), pq.read_table(path, columns=columns)
        assert got.equals(want) and got.schema.metadata == want.schema.metadata
        assert got.column_names == want.column_names
    with pytest.raises(pa.ArrowInvalid):
        pq.read_table(path, columns=["key", "missing"])
    with pytest.raises(pa.ArrowInvalid):
        read_parquet(path, ["key", "missing"])
