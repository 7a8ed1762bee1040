"""Every real Yahoo CSV in ../shared/data/prices imports through `evbt data import` and reads back unchanged.

Skips cleanly when ../shared is absent; writes only to the per-test cache folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from engine.prices.csv_import import symbol_from_path
from engine.prices.store import PriceStore

Run = Callable[..., tuple[int, str, str]]


def test_all_real_csvs_import_and_read_back(run_cli: Run, shared_prices: Path, cache_dir: Path) -> None:
    files = sorted(shared_prices.glob("*.csv"))
    assert len(files) >= 22
    code, out, err = run_cli("data", "import", *map(str, files))
    assert code == 0, err
    store = PriceStore(cache_dir, offline=True)
    assert len(store.symbols()) == len(files)
    for path in files:
        sym = symbol_from_path(path)
        want = pd.read_csv(path)
        got = store.load(sym)
        assert [d.isoformat() for d in got.index.date] == want["Date"].tolist(), sym
        for col, name in [("open", "Open"), ("high", "High"), ("low", "Low"), ("close", "Close"),
                          ("adj_close", "Adj Close"), ("volume", "Volume")]:
            np.testing.assert_array_equal(got[col].to_numpy(), want[name].to_numpy(dtype="float64"), err_msg=sym)
        meta = store.read_meta(sym)
        assert meta["source"] == "csv" and meta["rows"] == len(want)
    assert store.symbols().count("^HSI") == 1 and "^HSTECH" in store.symbols()
    code, out, _ = run_cli("data", "verify")
    assert code == 0 and f"{len(files)} file(s) checked, 0 damaged" in out


def test_real_quirks(run_cli: Run, shared_prices: Path, cache_dir: Path) -> None:
    names = ["0700.HK.csv", "HSTECH.csv", "9618.HK.csv"]
    assert run_cli("data", "import", *(str(shared_prices / n) for n in names))[0] == 0
    store = PriceStore(cache_dir, offline=True)
    hk = store.load("0700.HK", "2021-12-24", "2021-12-24")
    assert hk["stale"].tolist() == [True]  # Christmas Eve half day placeholder
    assert "adj_close equals close" in store.read_meta("9618.HK")["adjustment"]  # already adjusted OHLC
    hstech = store.load("^HSTECH", "2022-04-22", "2022-04-26")
    assert "2022-04-25" not in {d.isoformat() for d in hstech.index.date}
