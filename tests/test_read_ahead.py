"""PriceStore.preload: checked reads on threads ahead of the loads. A load after a preload gives exactly what a
plain checked read gives, never a version the file no longer holds, and a damaged file still fails its load
with the same clear error (and only its own load)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.errors import DataError, MissingDataError
from engine.prices.store import PriceStore


def bars(n: int = 40, base: float = 100.0) -> pd.DataFrame:
    close = base + np.arange(n, dtype="float64")
    return pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close, "adj_close": close,
                         "volume": np.full(n, 1000.0)}, index=pd.bdate_range("2022-01-03", periods=n, name="date"))


SYMBOLS = ["BABA", "JD", "0700.HK", "^HSI"]


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    store = PriceStore(tmp_path)
    for i, sym in enumerate(SYMBOLS):
        store.write(sym, bars(base=100.0 + 10 * i), "csv", f"v1 {sym}")
    return tmp_path


def test_loads_after_a_preload_equal_plain_checked_reads(cache: Path) -> None:
    plain, ahead = PriceStore(cache, offline=True), PriceStore(cache, offline=True)
    ahead.preload([*SYMBOLS, "NOPE"])  # an absent symbol is skipped: its load says it is not cached
    assert set(ahead._ahead) == set(SYMBOLS)
    for sym in SYMBOLS:
        pd.testing.assert_frame_equal(ahead.load(sym, "2022-01-10"), plain.load(sym, "2022-01-10"), check_exact=True)
        assert ahead.read_meta(sym) == plain.read_meta(sym) and ahead.fingerprint(sym) == plain.fingerprint(sym)
    assert ahead._ahead == {}  # each read ahead is served once, then dropped
    with pytest.raises(MissingDataError, match=r"NOPE: .*not in the price cache"):
        ahead.load("NOPE")


def test_a_file_replaced_after_the_preload_is_read_again(cache: Path) -> None:
    store = PriceStore(cache, offline=True)
    store.preload(SYMBOLS)
    new = PriceStore(cache).write("JD", bars(base=7.0), "csv", "v2 JD")  # another process replaces JD
    assert store.read_meta("BABA")["adjustment"] == "v1 BABA"
    assert store.load("JD")["close"].iloc[0] == 7.0
    assert store.fingerprint("JD") == new["content_hash"] and store.read_meta("JD")["adjustment"] == "v2 JD"
    PriceStore(cache).remove("BABA")
    with pytest.raises(MissingDataError, match=r"BABA: .*not in the price cache"):
        store.load("BABA")


def test_a_damaged_file_fails_its_own_load_with_the_same_error(cache: Path) -> None:
    path = PriceStore(cache).path_for("JD")
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside the bars
    path.write_bytes(bytes(data))
    with pytest.raises(DataError) as plain:
        PriceStore(cache).load("JD")
    store = PriceStore(cache, offline=True)
    store.preload(SYMBOLS)
    assert len(store.load("BABA")) == 40  # the others load
    with pytest.raises(DataError) as ahead:
        store.load("JD")
    assert str(ahead.value) == str(plain.value) and "damaged or altered cache file" in str(ahead.value)
    with pytest.raises(DataError, match="damaged or altered"):  # and again on the next read (no stale success)
        store.load("JD")
    PriceStore(cache).write("JD", bars(), "csv", "repaired")
    fresh = PriceStore(cache)
    fresh.preload(["JD"])
    assert fresh.read_meta("JD")["adjustment"] == "repaired"
