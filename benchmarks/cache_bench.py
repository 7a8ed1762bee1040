"""Price cache read speed: parquet PriceStore vs the same data as Yahoo CSVs.

Run: /work/venv/bin/python benchmarks/cache_bench.py
Case 1: 10 symbols x 4 years (real CSVs from ../shared/data/prices when present, else synthetic).
Case 2: a synthetic 500-symbol x 10-year universe. Figures are warm medians of repeats, in ms; every repeat uses
a fresh PriceStore (no version remembered), so each load is a full checked read.
Targets: 10 symbols < 20 ms warm, 500 symbols < 2 s, parquet never slower than CSV.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from engine.prices.csv_import import read_yahoo_csv
from engine.prices.store import PriceStore

SHARED_PRICES = Path(__file__).resolve().parents[2] / "shared" / "data" / "prices"
REAL_10 = ["BABA", "JD", "PDD", "BIDU", "NTES", "KWEB", "FXI", "0700.HK", "9988.HK", "3690.HK"]


def median_ms(func: Callable[[], object], repeats: int) -> float:
    func()  # warm-up
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        func()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def synthetic_csv(path: Path, years: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2014-01-01", periods=252 * years)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, len(days))))
    frame = pd.DataFrame({"Date": days.strftime("%Y-%m-%d"), "Open": close, "High": close * 1.01,
                          "Low": close * 0.99, "Close": close, "Adj Close": close,
                          "Volume": rng.integers(1, 10**7, len(days))})
    frame.to_csv(path, index=False, float_format="%.6f")


def csv_load(paths: list[Path]) -> list[pd.DataFrame]:
    return [pd.read_csv(p, index_col="Date", parse_dates=["Date"]) for p in paths]


def preloaded(store: PriceStore, symbols: list[str], start: str | None, end: str | None) -> list[pd.DataFrame]:
    """What a run or sweep does: the checked reads on threads first (PriceStore.preload), then a load each."""
    store.preload(symbols)
    return [store.load(s, start, end) for s in symbols]


def bench_case(name: str, csvs: list[Path], start: str | None, end: str | None, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = PriceStore(root, offline=True)
        symbols = []
        for path in csvs:
            item = read_yahoo_csv(path)
            store.write(item.symbol, item.frame, "csv", item.adjustment)
            symbols.append(item.symbol)
        if start:
            csv_ms = median_ms(lambda: [f.loc[start:end] for f in csv_load(csvs)], repeats)
        else:
            csv_ms = median_ms(lambda: csv_load(csvs), repeats)
        pq_ms = median_ms(lambda: [PriceStore(root, offline=True).load(s, start, end) for s in symbols], repeats)
        pre_ms = median_ms(lambda: preloaded(PriceStore(root, offline=True), symbols, start, end), repeats)
        rows = sum(len(store.load(s, start, end)) for s in symbols)
    print(f"{name}: {len(symbols)} symbols, {rows} bars")
    print(f"  parquet PriceStore.load  {pq_ms:9.1f} ms")
    print(f"  preload + load           {pre_ms:9.1f} ms")
    print(f"  pandas.read_csv          {csv_ms:9.1f} ms")
    print(f"  ratio csv/parquet        {csv_ms / pq_ms:9.2f}x")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        real = [SHARED_PRICES / f"{s}.csv" for s in REAL_10]
        if all(p.is_file() for p in real):
            bench_case("10 symbols x 4 years (real CSVs, 2020-07-01..2024-06-30)", real, "2020-07-01",
                       "2024-06-30", repeats=25)
        else:
            paths = []
            for i in range(10):
                paths.append(tmp_path / f"S{i:03d}.csv")
                synthetic_csv(paths[-1], 4, i)
            bench_case("10 symbols x 4 years (synthetic; ../shared absent)", paths, None, None, repeats=25)
        big = []
        for i in range(500):
            big.append(tmp_path / f"U{i:03d}.csv")
            synthetic_csv(big[-1], 10, 1000 + i)
        bench_case("500 symbols x 10 years (synthetic)", big, None, None, repeats=3)


if __name__ == "__main__":
    main()
