"""The per-symbol cache lock (engine/prices/writes.symbol_lock: flock on `<cache>/.locks/<file>.lock`).

While one process holds a symbol's lock, no other process (nor another thread) can replace that symbol's file,
whether the holder is this code or `filelock` (what evbt used before, and still on the same lock files); other
symbols are not blocked. Waiting is bounded by the store's lock timeout, then a DataError names the lock file.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.errors import DataError
from engine.prices.store import PriceStore

REPO = Path(__file__).resolve().parents[1]

HOLD_WITH_STORE = """
import sys
from engine.prices.store import PriceStore
with PriceStore(sys.argv[1])._locked(sys.argv[2]):
    print("locked", flush=True)
    sys.stdin.readline()
"""

HOLD_WITH_FILELOCK = """
import sys
from filelock import FileLock
from engine.prices.store import PriceStore
with FileLock(PriceStore(sys.argv[1])._lock_file(sys.argv[2])):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def bars(n: int = 10, base: float = 100.0) -> pd.DataFrame:
    close = base + np.arange(n, dtype="float64")
    return pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close, "adj_close": close,
                         "volume": np.full(n, 1000.0)}, index=pd.bdate_range("2022-01-03", periods=n, name="date"))


def _holder(script: str, cache: Path, symbol: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", script, str(cache), symbol], cwd=REPO, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def _release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.wait(timeout=60) == 0


@pytest.mark.parametrize("script", [HOLD_WITH_STORE, HOLD_WITH_FILELOCK], ids=["evbt", "filelock"])
def test_another_process_holding_the_lock_blocks_writes_of_that_symbol_only(script: str, tmp_path: Path) -> None:
    first = PriceStore(tmp_path).write("BABA", bars(), "csv", "first")
    proc = _holder(script, tmp_path, "BABA")
    try:
        store = PriceStore(tmp_path, lock_timeout=0.2)
        with pytest.raises(DataError, match=r"BABA: cache is locked by another evbt process \(.*BABA\.parquet\.lock\)"):
            store.write("BABA", bars(base=50.0), "csv", "second")
        with pytest.raises(DataError, match="BABA: cache is locked"):
            list(store.write_many([("JD", bars(), "csv", ""), ("BABA", bars(base=50.0), "csv", "second")]))
        assert PriceStore(tmp_path).read_meta("BABA")["content_hash"] == first["content_hash"]  # not replaced
        store.write("JD", bars(), "csv", "other symbol")  # other symbols are not blocked
    finally:
        _release(proc)
    assert PriceStore(tmp_path).write("BABA", bars(base=50.0), "csv", "second")["adjustment"] == "second"
    assert all(r.ok for r in PriceStore(tmp_path).verify())


def test_two_threads_of_one_process_exclude_each_other(tmp_path: Path) -> None:
    store = PriceStore(tmp_path, lock_timeout=0.2)
    held, release, outcome = threading.Event(), threading.Event(), []

    def hold() -> None:
        with store._locked("BABA"):
            held.set()
            release.wait(60)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(60)
        try:
            store.write("BABA", bars(), "csv")
        except DataError as exc:
            outcome.append(str(exc))
    finally:
        release.set()
        thread.join(60)
    assert len(outcome) == 1 and "BABA: cache is locked" in outcome[0]
    store.write("BABA", bars(), "csv")  # free again once the holder left
