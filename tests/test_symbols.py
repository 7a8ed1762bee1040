"""Symbol normalisation and the cache's safe file naming."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.market.symbols import listing, normalize_symbol, parse_symbol_list
from engine.prices.store import PriceStore


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("700", "0700.HK"),
        ("00700", "0700.HK"),
        ("0700.HK", "0700.HK"),
        ("0700.hk", "0700.HK"),
        (" 9988 ", "9988.HK"),
        ("baba", "BABA"),
        ("^HSI", "^HSI"),
        ("hsi", "^HSI"),
        ("HSTECH", "^HSTECH"),
        ("HKD=X", "HKD=X"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize_symbol(raw) == expected


@pytest.mark.parametrize("raw", ["../../etc/x", "..", "a/b", "", "   ", "BA BA", ".HK", "0", "/etc/passwd"])
def test_rejects_paths_and_garbage(raw: str) -> None:
    with pytest.raises(ConfigError):
        normalize_symbol(raw)


def test_parse_symbol_list_dedupes() -> None:
    assert parse_symbol_list(["700,0700.HK", "baba jd"]) == ["0700.HK", "BABA", "JD"]


def test_listing() -> None:
    assert listing("700").exchange == "XHKG"
    assert listing("^HSI").currency == "HKD"
    assert listing("BABA").exchange == "XNYS"
    assert listing("HKD=X").exchange == "FX"


@pytest.mark.parametrize(
    ("symbol", "name"),
    [("^HSI", "%5EHSI.parquet"), ("HKD=X", "HKD%3DX.parquet"), ("700", "0700.HK.parquet"), ("BABA", "BABA.parquet")],
)
def test_cache_file_names_are_safe(tmp_path: Path, symbol: str, name: str) -> None:
    store = PriceStore(tmp_path)
    path = store.path_for(symbol)
    assert path.name == name
    assert path.parent == tmp_path


def test_cache_rejects_path_symbols(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        PriceStore(tmp_path).path_for("../../etc/x")


def test_symbols_listing_round_trips_names(tmp_path: Path) -> None:
    import pandas as pd

    store = PriceStore(tmp_path)
    frame = pd.DataFrame(
        {"open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0], "adj_close": [1.0], "volume": [5.0]},
        index=pd.DatetimeIndex(["2022-01-03"]),
    )
    for sym in ("^HSI", "HKD=X", "0700.HK"):
        store.write(sym, frame, "csv")
    assert store.symbols() == ["0700.HK", "HKD=X", "^HSI"]
