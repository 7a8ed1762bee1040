"""PriceStore: round trip, metadata, coverage/offline rules, verify, atomic writes, crash and concurrency."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import engine.atomic
from engine.errors import DataError, MissingDataError
from engine.prices.store import PriceStore, content_hash, price_summary

REPO = Path(__file__).resolve().parents[1]


def bars(start: str, periods: int, base: float = 100.0, freq: str = "B") -> pd.DataFrame:
    idx = pd.date_range(start, periods=periods, freq=freq)
    close = base + np.arange(periods, dtype="float64")
    return pd.DataFrame(
        {"open": close - 0.5, "high": close + 1, "low": close - 1, "close": close, "adj_close": close * 0.99,
         "volume": np.full(periods, 1000.0)},
        index=idx,
    )


def test_round_trip_and_metadata(tmp_path: Path) -> None:
    store = PriceStore(tmp_path)
    frame = bars("2022-01-03", 20)
    meta = store.write("baba", frame, "csv", "raw")
    got = store.load("BABA")
    assert list(got.columns) == ["open", "high", "low", "close", "adj_close", "volume", "stale"]
    assert got.index.name == "date" and got.index.tz is None
    assert got.dtypes["stale"] == np.dtype(bool) and got.dtypes["close"] == np.dtype("float64")
    np.testing.assert_array_equal(got["close"].to_numpy(), frame["close"].to_numpy())
    assert list(got.index.date) == list(frame.index.date)
    read = store.read_meta("BABA")
    assert read == meta
    for key in ("symbol", "source", "fetched_at", "adjustment", "currency", "exchange", "first_date",
                "last_date", "rows", "content_hash"):
        assert key in read
    assert (read["currency"], read["exchange"], read["rows"]) == ("USD", "XNYS", 20)
    assert store.fingerprint("BABA") == content_hash(got)


def test_content_hash_ignores_datetime_unit() -> None:
    a = bars("2022-01-03", 5)
    a["stale"] = False
    b = a.copy()
    b.index = b.index.as_unit("s")
    assert content_hash(a) == content_hash(b)


def test_load_range_is_inclusive(tmp_path: Path) -> None:
    store = PriceStore(tmp_path, offline=True)
    store.write("JD", bars("2022-01-03", 10), "csv")
    got = store.load("JD", "2022-01-04", "2022-01-06")
    assert [d.day for d in got.index] == [4, 5, 6]


def test_offline_missing_symbol(tmp_path: Path) -> None:
    with pytest.raises(MissingDataError, match="BABA"):
        PriceStore(tmp_path, offline=True).load("BABA", "2022-01-01", "2022-02-01")


def test_csv_source_serves_overlap_offline(tmp_path: Path) -> None:
    store = PriceStore(tmp_path, offline=True)
    store.write("JD", bars("2022-01-03", 10), "csv")
    got = store.load("JD", "2021-06-01", "2022-01-05")  # starts before the file: serve what exists
    assert len(got) == 3
    with pytest.raises(MissingDataError, match=r"JD: no cached prices in 2023-01-01 .. 2023-02-01"):
        store.load("JD", "2023-01-01", "2023-02-01")


def test_sample_never_fetched_online(tmp_path: Path) -> None:
    calls: list[tuple] = []
    store = PriceStore(tmp_path, fetcher=lambda *a: calls.append(a) or bars("2022-01-03", 3))
    store.write("JD", bars("2022-01-03", 10), "sample")
    assert len(store.load("JD", "2021-01-01", "2022-12-31")) == 10
    assert calls == []


def test_yfinance_source_offline_uncovered_raises(tmp_path: Path) -> None:
    import datetime as dt

    store = PriceStore(tmp_path, offline=True)
    store.write("BABA", bars("2022-01-03", 10), "yfinance", covered=(dt.date(2022, 1, 1), dt.date(2022, 1, 14)))
    assert len(store.load("BABA", "2022-01-01", "2022-01-16")) == 10  # weekend after covered end: fine
    with pytest.raises(MissingDataError, match=r"BABA: prices for 2022-01-01 .. 2022-03-01 are not in the cache"):
        store.load("BABA", "2022-01-01", "2022-03-01")


def test_verify_detects_damage(tmp_path: Path) -> None:
    store = PriceStore(tmp_path)
    store.write("BABA", bars("2022-01-03", 10), "csv")
    store.write("JD", bars("2022-01-03", 10), "csv")
    store.path_for("JD").write_bytes(b"not parquet at all")
    results = {r.symbol: r for r in store.verify()}
    assert results["BABA"].ok
    assert not results["JD"].ok and "unreadable" in (results["JD"].problem or "")


def test_verify_detects_tampered_values(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    store = PriceStore(tmp_path)
    store.write("BABA", bars("2022-01-03", 10), "csv")
    path = store.path_for("BABA")
    table = pq.read_table(path)
    close = table.column("close").to_numpy().copy()
    close[3] += 0.5
    table = table.set_column(table.schema.get_field_index("close"), "close", pa.array(close))
    pq.write_table(table, path)
    (result,) = store.verify(["BABA"])
    assert not result.ok and "hash" in (result.problem or "")


def test_write_rejects_invalid_frame(tmp_path: Path) -> None:
    frame = bars("2022-01-03", 5)
    frame.iloc[2, frame.columns.get_loc("low")] = 500.0
    with pytest.raises(DataError, match=r"BABA: invalid price bar on 2022-01-05: low > min\(open, close\)"):
        PriceStore(tmp_path).write("BABA", frame, "csv")
    assert not PriceStore(tmp_path).has("BABA")


def test_remove(tmp_path: Path) -> None:
    store = PriceStore(tmp_path)
    store.write("BABA", bars("2022-01-03", 5), "csv")
    assert store.remove("BABA") is True
    assert store.remove("BABA") is False
    assert store.symbols() == []


def test_price_summary() -> None:
    frame = bars("2022-01-03", 5)
    frame["stale"] = False
    s = price_summary(frame, "BABA")
    assert s["first_close"] == 100.0 and s["last_close"] == 104.0
    assert s["return"] == pytest.approx(0.04)
    assert s["rows"] == 5 and s["stale_bars"] == 0


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS])
def test_disk_full_or_read_only_leaves_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int) -> None:
    store = PriceStore(tmp_path)
    store.write("BABA", bars("2022-01-03", 5), "csv")
    before = store.path_for("BABA").read_bytes()

    def broken_write(fd: int, data: object) -> int:
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(engine.atomic.os, "write", broken_write)
    with pytest.raises(DataError, match=os.strerror(err)):
        store.write("BABA", bars("2022-01-03", 9), "csv")
    assert store.path_for("BABA").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_unwritable_cache_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DataError, match="cannot create cache folder"):
        PriceStore(blocker / "cache").write("BABA", bars("2022-01-03", 5), "csv")


_WRITER = """
import sys
import numpy as np, pandas as pd
from engine.prices.store import PriceStore
n = int(sys.argv[2])
idx = pd.date_range("2022-01-03", periods=n, freq="B")
c = 100 + np.arange(n, dtype="float64")
f = pd.DataFrame({"open": c, "high": c + 1, "low": c - 1, "close": c, "adj_close": c, "volume": 1.0}, index=idx)
PriceStore(sys.argv[1]).write("BABA", f, "csv")
"""


def _writer(root: Path, rows: int, delay: float | None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if delay is not None:
        env[engine.atomic.WRITE_DELAY_ENV] = str(delay)
    return subprocess.Popen([sys.executable, "-c", _WRITER, str(root), str(rows)], env=env, cwd=REPO)


def test_sigkill_during_write_keeps_old_file(tmp_path: Path) -> None:
    store = PriceStore(tmp_path)
    store.write("BABA", bars("2022-01-03", 7), "csv")
    old_hash = store.fingerprint("BABA")
    proc = _writer(tmp_path, 50, delay=30)
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob(".BABA.parquet.*.tmp")):  # temp written, replace pending
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert store.fingerprint("BABA") == old_hash
    assert all(r.ok for r in store.verify())
    assert store.symbols() == ["BABA"]  # the orphan temp file is not a cache entry


def test_sigkill_at_random_points(tmp_path: Path) -> None:
    store = PriceStore(tmp_path)
    store.write("BABA", bars("2022-01-03", 7), "csv")
    rng = random.Random(7)
    for _ in range(4):
        proc = _writer(tmp_path, rng.choice([20, 60]), delay=0.05)
        time.sleep(rng.uniform(0.2, 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        (result,) = [r for r in store.verify(["BABA"]) if r.status != "removed"]
        assert result.ok, result.problem
        assert store.read_meta("BABA")["rows"] in (7, 20, 60)


def test_two_processes_same_symbol_end_with_one_valid_file(tmp_path: Path) -> None:
    procs = [_writer(tmp_path, 20, delay=0.3), _writer(tmp_path, 40, delay=0.3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    (result,) = [r for r in PriceStore(tmp_path).verify() if r.status != "removed"]
    assert result.ok, result.problem
    assert PriceStore(tmp_path).read_meta("BABA")["rows"] in (20, 40)
    assert (tmp_path / ".locks").is_dir()
    assert list(tmp_path.glob("*.tmp")) == [] and list(tmp_path.glob(".*.tmp")) == []


def test_fetch_over_csv_history_keeps_the_whole_span(tmp_path: Path) -> None:
    """`data fetch SYM --start D` over an imported CSV replaced 1,181 rows by the 124 fetched ones: the
    yfinance download now reaches back to the CSV's first date."""
    full = bars("2019-01-02", 1181)
    asked: list[object] = []

    def fetcher(symbol: str, start: object, end: object) -> pd.DataFrame:
        asked.append(start)
        lo = pd.Timestamp(start) if start is not None else full.index[0]
        return full.loc[lo: pd.Timestamp(end)]

    store = PriceStore(tmp_path, fetcher=fetcher)
    store.write("BABA", full, "csv")
    with pytest.warns(Warning, match="replacing csv data"):
        store.update("BABA", pd.Timestamp(full.index[-124]).date(), pd.Timestamp(full.index[-1]).date(),
                     refresh=True)
    meta = store.read_meta("BABA")
    assert meta["source"] == "yfinance" and meta["rows"] == 1181
    assert asked == [full.index[0].date()]
