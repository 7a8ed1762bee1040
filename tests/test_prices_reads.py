"""Reads of many cache files in a forked reader process (engine.prices.read_fork, ``preload(background=True)``).

What the loads serve after a background preload must be exactly what a checked read in this process gives
(metadata, identity, frame: dtypes, index, values, stale flags), whatever the child did: all the files, part
of them (the parent reads the rest), none (it died). A damaged file fails its own load with the same error, a
file replaced after the preload is read again, and a reader never collected is killed and reaped. The sweep's
``load_sweep_data`` hands on the same frames, fingerprints, metadata and token as with the reads on threads.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.errors import DataError, MissingDataError
from engine.plan.config import make_run_config
from engine.prices import read_fork
from engine.prices.cache_file import read_file_version
from engine.prices.store import PriceStore
from engine.sweeps import sweep
from strategies.registry import get_strategy

pytestmark = pytest.mark.skipif(not read_fork.supported(), reason="needs os.fork and os.memfd_create")

HANG_S = 60.0
SYMBOLS = [f"ZR{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(40)]


def bars(n: int, seed: int, start: str = "2021-01-04") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    frame = pd.DataFrame({"open": close * 1.001, "high": close * 1.02, "low": close * 0.98, "close": close,
                          "adj_close": close * 0.99, "volume": rng.integers(0, 10**6, n).astype("float64")},
                         index=pd.bdate_range(start, periods=n, name="date"))
    frame.iloc[3, :4] = frame.iloc[3]["close"]  # O=H=L=C ...
    frame.iloc[3, 5] = 0.0  # ... and no volume: a stale bar
    return frame


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    store = PriceStore(tmp_path)
    for i, sym in enumerate(SYMBOLS):  # lengths and starts differ: every file has its own offset and size
        store.write(sym, bars(300 + 7 * i, seed=i, start=f"2021-01-{4 + i % 20:02d}"), "csv", f"v1 {sym}")
    return tmp_path


def _reference(cache: Path, sym: str) -> tuple[dict, pd.DataFrame, tuple]:
    store = PriceStore(cache)
    return read_file_version(store.path_for(sym), sym)


def _same_frame(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, want, check_exact=True, check_freq=True, check_flags=True)
    assert list(got.dtypes) == list(want.dtypes) and got.index.dtype == want.index.dtype
    assert got.index.name == want.index.name == "date" and got.columns.equals(want.columns)
    assert got["stale"].sum() == 1 and got.to_numpy().flags.writeable is True


def test_reads_of_the_forked_reader_equal_checked_reads_here(cache: Path) -> None:
    reader = read_fork.ForkedReads(SYMBOLS, PriceStore(cache).path_for)
    time.sleep(0.5)  # most of the files done by the child
    reads = reader.collect()
    assert list(reads) != [] and set(reads) == set(SYMBOLS)
    for sym in SYMBOLS:
        meta, frame, ident = reads[sym].result()
        want_meta, want_frame, want_ident = _reference(cache, sym)
        assert meta == want_meta and ident == want_ident
        _same_frame(frame, want_frame)
        frame.iloc[0, 0] = -1.0  # copy-on-write: a frame's change is its own (pandas), the file is untouched
    assert PriceStore(cache).load(SYMBOLS[0])["open"].iloc[0] > 0


def test_the_parent_reads_what_the_child_has_not_started(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    real = read_fork.read_ahead

    def spy(syms: list[str], path_for: object) -> dict:
        calls.append(list(syms))
        return real(syms, path_for)  # type: ignore[arg-type]

    monkeypatch.setattr(read_fork, "read_ahead", spy)
    reads = read_fork.ForkedReads(SYMBOLS, PriceStore(cache).path_for).collect()  # at once: the child just began
    assert calls and 0 < len(calls[0]) < len(SYMBOLS) and calls[0] == SYMBOLS[-len(calls[0]):]
    for sym in SYMBOLS:
        want_meta, want_frame, _ = _reference(cache, sym)
        assert reads[sym].result()[0] == want_meta
        _same_frame(reads[sym].result()[1], want_frame)


def test_a_child_that_dies_leaves_every_read_to_this_process(cache: Path) -> None:
    reader = read_fork.ForkedReads(SYMBOLS, PriceStore(cache).path_for)
    os.kill(reader._pid, signal.SIGKILL)
    reads = reader.collect()
    assert set(reads) == set(SYMBOLS)
    _same_frame(reads[SYMBOLS[5]].result()[1], _reference(cache, SYMBOLS[5])[1])


def test_loads_after_a_background_preload(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = PriceStore(cache).path_for(SYMBOLS[2])
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside the bars
    path.write_bytes(bytes(data))
    with pytest.raises(DataError) as plain:
        PriceStore(cache).load(SYMBOLS[2])
    store = PriceStore(cache, offline=True)
    store.preload([*SYMBOLS, "NOPE"], background=True)
    assert store._background is not None  # the reader process, not threads
    time.sleep(0.3)
    new = PriceStore(cache).write(SYMBOLS[7], bars(50, seed=99), "csv", "v2")  # replaced after the preload
    PriceStore(cache).remove(SYMBOLS[9])  # removed after it
    assert len(store.load(SYMBOLS[0])) == len(_reference(cache, SYMBOLS[0])[1])
    with pytest.raises(DataError) as ahead:
        store.load(SYMBOLS[2])
    assert str(ahead.value) == str(plain.value) and "damaged or altered cache file" in str(ahead.value)
    assert store.load(SYMBOLS[7])["close"].iloc[-1] == bars(50, seed=99)["close"].iloc[-1]
    assert store.fingerprint(SYMBOLS[7]) == new["content_hash"]
    with pytest.raises(MissingDataError, match=f"{SYMBOLS[9]}: .*not in the price cache"):
        store.load(SYMBOLS[9])
    with pytest.raises(MissingDataError, match=r"NOPE: .*not in the price cache"):
        store.load("NOPE")
    for sym in SYMBOLS[10:]:
        _same_frame(store.load(sym), _reference(cache, sym)[1])
        assert store.read_meta(sym) == _reference(cache, sym)[0]


def test_a_reader_never_collected_is_killed_and_reaped(cache: Path) -> None:
    store = PriceStore(cache, offline=True)
    store.preload(SYMBOLS, background=True)
    pid = store._background._pid  # type: ignore[union-attr]
    store.cancel_preload()
    with pytest.raises(ChildProcessError):  # reaped: no zombie left
        os.waitpid(pid, os.WNOHANG)
    assert store._background is None and store._ahead == {}
    assert len(store.load(SYMBOLS[1])) == len(_reference(cache, SYMBOLS[1])[1])  # reads go on, here


def test_few_symbols_are_read_on_threads(cache: Path) -> None:
    store = PriceStore(cache, offline=True)
    store.preload(SYMBOLS[: read_fork.MIN_FILES - 1], background=True)
    assert store._background is None and len(store._ahead) == read_fork.MIN_FILES - 1


def _sweep_data(cache: Path) -> tuple[sweep.SweepData, sweep.WindowContext]:
    cls = get_strategy("event_hold")
    config = make_run_config("event_hold", (), {"symbols": ",".join(SYMBOLS), "start": "2021-03-01",
                                                "end": "2022-06-30", "benchmark": "none"}, None,
                             cls.default_symbols, cls.Params)
    window = sweep.Window("full", config.start, config.end)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = sweep.load_sweep_data(PriceStore(cache, offline=True), config, [window])
    return data, sweep.window_context(data, window)


def test_sweep_data_equals_the_sweep_data_of_reads_on_threads(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    forks: list[int] = []
    real = read_fork.ForkedReads

    def counted(*args: object) -> read_fork.ForkedReads:
        forks.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(read_fork, "ForkedReads", counted)
    got, got_window = _sweep_data(cache)
    assert forks == [1]
    monkeypatch.setattr(read_fork, "supported", lambda: False)  # the reference: checked reads on threads
    want, want_window = _sweep_data(cache)
    assert forks == [1]
    assert list(got.frames) == list(want.frames) == SYMBOLS
    for sym in SYMBOLS:
        _same_frame(got.frames[sym], want.frames[sym])
        _same_frame(got_window.history[sym], want_window.history[sym])
        pd.testing.assert_frame_equal(got_window.frames[sym], want_window.frames[sym], check_exact=True)
    assert got.frames[SYMBOLS[0]].index[0] < pd.Timestamp(dt.date(2021, 3, 1))  # the history before the start
    assert (got.fingerprints, got.meta, got.token, got.calendar_hash) == \
        (want.fingerprints, want.meta, want.token, want.calendar_hash)
    assert got.events == want.events and got.market_warnings == want.market_warnings


def test_with_cached_history_prepends_every_cached_bar_before_the_frame(cache: Path) -> None:
    from engine.plan.warmup import with_cached_history

    store = PriceStore(cache, offline=True)
    sym = SYMBOLS[4]
    everything = _reference(cache, sym)[1]
    later = store.load(sym, everything.index[100].date())
    assert len(later) == len(everything) - 100
    _same_frame(with_cached_history(store, sym, later), everything)  # the 100 bars before it, from the cache
    whole = store.load(sym)
    assert with_cached_history(store, sym, whole) is whole  # nothing cached before its first bar
    assert with_cached_history(store, "ZZZZ", later) is later  # not cached: the frame as it is


def test_the_objects_frozen_for_the_fork_are_thawed_after_it(cache: Path) -> None:
    import gc

    assert gc.get_freeze_count() == 0
    reader = read_fork.ForkedReads(SYMBOLS, PriceStore(cache).path_for)
    assert gc.get_freeze_count() > 0  # the collector leaves the shared pages alone meanwhile
    reader.collect()
    assert gc.get_freeze_count() == 0
    read_fork.ForkedReads(SYMBOLS, PriceStore(cache).path_for).close()
    assert gc.get_freeze_count() == 0
    gc.freeze()  # a caller's own freeze (the sweep's pool) is left as it is
    try:
        frozen = gc.get_freeze_count()
        read_fork.ForkedReads(SYMBOLS, PriceStore(cache).path_for).collect()
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_a_child_that_hangs_is_killed_and_its_share_read_here(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader stuck for good (e.g. a lock held across the fork) must not hang the sweep: past the wait the
    parent kills it and reads every file itself, the same checked reads."""
    monkeypatch.setattr(read_fork, "CHILD_WAIT_S", 1.0)
    monkeypatch.setattr(read_fork, "CHILD_WAIT_PER_FILE_S", 0.0)
    monkeypatch.setattr(read_fork, "_child", lambda *args: time.sleep(3600))  # forked after the patch
    reader = read_fork.ForkedReads(SYMBOLS, PriceStore(cache).path_for)
    got: list[dict] = []
    waiter = threading.Thread(target=lambda: got.append(reader.collect()), daemon=True)
    waiter.start()
    waiter.join(HANG_S)  # a hang detector (the child sleeps an hour), not a speed check
    if waiter.is_alive():
        os.kill(reader._pid, signal.SIGKILL)
        pytest.fail("collect() still waits on a reader that never answers")
    reads = got[0]
    assert set(reads) == set(SYMBOLS)
    for sym in (SYMBOLS[0], SYMBOLS[-1]):
        _same_frame(reads[sym].result()[1], _reference(cache, sym)[1])
    with pytest.raises(ChildProcessError):
        os.waitpid(reader._pid, os.WNOHANG)  # killed and reaped
