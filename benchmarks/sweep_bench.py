"""Sweep speed and memory: ``evbt sweep`` (fast path) with 1 and 2 workers vs the backtrader engine.

Usage: python benchmarks/sweep_bench.py [--points-subset 20] [--no-memory]

Data: the real CSVs in ../shared/data/prices (imported into a temporary cache) when present, else the
synthetic sample. The grid is the seed scenario (reassurance, 14 symbols, 2021-01-01..2023-06-30) with
hold 1..50 x fill open,close x size (10 values) = 1,000 points.

Every sweep runs in a fresh Python process (imports, data loading, calendars, planning, writing the sweep
folder included) with an empty runs folder, so nothing is reused. The backtrader figure runs a SUBSET of the
points through ``engine.execution.backtrader_driver.run_backtest`` (the engine's backtrader path, with the data
already loaded
and the plan already built, i.e. backtrader's own cost only) and extrapolates to the full grid: it is
labelled as such. The same subset's final values are compared with the sweep's rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_PRICES = ROOT.parent / "shared" / "data" / "prices"
SIZES = "0.02,0.05,0.1,0.2,0.3,0.5,0.7,0.8,0.9,1.0"
_CHILD = (
    "import resource, sys, cli\n"
    "code = cli.main(sys.argv[1:])\n"
    "me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(f'MAXRSS {me} {kids}', file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def _prepare_cache(cache: Path) -> tuple[str, list[str]]:
    """Fill the cache; return a data label and the base options of the sweep."""
    sys.path.insert(0, str(ROOT))
    from engine.prices.store import PriceStore

    store = PriceStore(cache)
    if SHARED_PRICES.is_dir() and list(SHARED_PRICES.glob("*.csv")):
        from engine.prices.csv_import import read_yahoo_csv

        for path in sorted(SHARED_PRICES.glob("*.csv")):
            item = read_yahoo_csv(path, None)
            store.write(item.symbol, item.frame, "csv", item.adjustment)
        return "real (../shared CSVs), seed scenario: 14 symbols 2021-01-01..2023-06-30", []
    from engine.prices.synthetic import write_sample

    write_sample(store)
    return ("SYNTHETIC sample: 6 symbols 2021-01-01..2022-12-30",
            ["--symbols", "BABA,JD,PDD,0700.HK,9988.HK,3690.HK", "--end", "2022-12-30"])


def _sweep_process(cache: Path, runs: Path, base: list[str], grid: list[str], workers: int) -> dict:
    env = dict(os.environ, EVBT_CACHE_DIR=str(cache), EVBT_RUNS_DIR=str(runs))
    args = ["--offline", "sweep", "reassurance", *base, *grid, "--workers", str(workers), "--json", "--top", "1"]
    began = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"sweep failed: {proc.stderr}")
    doc = json.loads(proc.stdout)
    rss = next(line.split() for line in proc.stderr.splitlines() if line.startswith("MAXRSS"))
    return {"wall": wall, "inside": doc["elapsed_s"], "computed": doc["counts"]["computed"],
            "rss_mb": int(rss[1]) / 1024, "child_rss_mb": int(rss[2]) / 1024, "doc": doc,
            "folder": Path(doc["saved"])}


def _grid(points: int) -> list[str]:
    holds = max(1, points // 20)
    return ["-g", f"hold=1..{holds}", "-g", "fill=open,close", "-g", f"size={SIZES}"]


def _backtrader_subset(cache: Path, base: list[str], folder: Path, subset: int) -> tuple[float, int, float]:
    """Seconds per point through backtrader (data and plans prepared beforehand) and the max relative
    difference of final values against the sweep's rows."""
    import warnings

    import pyarrow.parquet as pq

    from engine.execution.backtrader_driver import run_backtest
    from engine.plan.config import run_config_from_dict
    from engine.prices.store import PriceStore
    from engine.sweeps import sweep

    warnings.simplefilter("ignore")
    rows = pq.read_table(folder / "points").to_pandas()
    step = max(1, len(rows) // subset)
    picked = rows.iloc[::step].head(subset)
    store = PriceStore(cache, offline=True)
    configs = [run_config_from_dict(json.loads(c)) for c in picked["config"]]
    window = sweep.Window("full", configs[0].start, configs[0].end)
    data = sweep.load_sweep_data(store, configs[0], [window])
    wctx = sweep.cached_context(data, window)
    prepared = []
    for config in configs:
        params = sweep.typed_params(config.strategy, config.params)
        prepared.append((config, sweep._plan_for(data, wctx, config, params), params))
    worst = 0.0
    began = time.perf_counter()
    finals = []
    for config, plan, params in prepared:
        _, _, curve = run_backtest(config, wctx.frames, plan, wctx.fx_series, params.stop_loss, params.take_profit,
                                   [s for s in config.symbols if s in wctx.frames])
        finals.append(float(curve["equity"].iloc[-1]))
    per_point = (time.perf_counter() - began) / len(prepared)
    for final, expected in zip(finals, picked["final_value"], strict=True):
        worst = max(worst, abs(final - expected) / abs(expected))
    return per_point, len(prepared), worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points-subset", type=int, default=20, help="points run through backtrader")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory-vs-grid-size runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="evbt-sweep-bench-") as tmp:
        cache = Path(tmp) / "cache"
        label, base = _prepare_cache(cache)
        print(f"data: {label}")
        print(f"machine: {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}")
        grid = _grid(1000)
        results = {}
        for workers in (1, 2):
            res = _sweep_process(cache, Path(tmp) / f"runs-w{workers}", base, grid, workers)
            results[workers] = res
            print(f"workers={workers}: {res['computed']} points, whole process {res['wall']:.2f} s wall "
                  f"(imports included), sweep {res['inside']:.2f} s -> {res['computed'] / res['wall']:.0f} points/s "
                  f"end to end, {res['computed'] / res['inside']:.0f} points/s in the sweep; peak RSS "
                  f"{res['rss_mb']:.0f} MB (largest child {res['child_rss_mb']:.0f} MB)")
        print(f"speed-up 2 vs 1 workers: {results[1]['wall'] / results[2]['wall']:.2f}x end to end, "
              f"{results[1]['inside'] / results[2]['inside']:.2f}x in the sweep")
        again = _sweep_process(cache, Path(tmp) / "runs-w2", base, grid, 2)
        print(f"rerun (every point reused): {again['computed']} computed, {again['wall']:.2f} s wall")
        same = results[1]["doc"]["ranking"] == results[2]["doc"]["ranking"]
        print(f"1 and 2 workers give the same best point and metrics: {same}")
        per_point, n, worst = _backtrader_subset(cache, base, results[1]["folder"], args.points_subset)
        ratio = per_point * results[1]["computed"] / results[1]["inside"]
        print(f"backtrader engine (run_backtest, data and plans preloaded), SUBSET of {n} points: "
              f"{per_point * 1000:.0f} ms/point -> EXTRAPOLATED {per_point * 1000:.0f} s for 1,000 points on 1 core "
              f"({1 / per_point:.1f} points/s); the sweep is {ratio:.0f}x faster per point on 1 worker")
        print(f"max relative difference of final value, sweep vs backtrader on the subset: {worst:.2e}")
        if not args.no_memory:
            for points in (200, 1000, 4000):
                res = _sweep_process(cache, Path(tmp) / f"runs-mem-{points}", base, _grid(points), 1)
                print(f"memory: {res['computed']:>5} points, 1 worker: peak RSS {res['rss_mb']:.0f} MB, "
                      f"{res['inside']:.2f} s")


if __name__ == "__main__":
    main()
