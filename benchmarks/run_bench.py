"""End-to-end speed of the seed scenario: `evbt run reassurance` vs a minimal hand-written backtrader script.

Run: /work/venv/bin/python benchmarks/run_bench.py [--repeats 5]

Both sides run as fresh processes (imports included) on the same parquet cache (real CSVs from
../shared/data/prices imported through `evbt data import`, else the synthetic sample). The minimal script
reads the 14 parquet files with pyarrow, feeds backtrader bars stamped at the same UTC fill instants as evbt
(session opens from the exchange calendars, computed beforehand by this harness and handed over in a file, as evbt
reads them from its schedule cache), runs cheat-on-open and submits exactly the orders of the evbt run (taken from
its trade list) at the same bars: the floor of "the same work in backtrader".
Prints wall-clock medians, the ratio, and peak RSS. Targets: CLI within 1.3x of the floor and under 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED_PRICES = Path(os.environ.get("EVBT_SHARED_DATA") or ROOT.parent / "shared" / "data") / "prices"
sys.path.insert(0, str(ROOT))

SEED = ["BABA", "JD", "NTES", "BIDU", "TCEHY", "PDD", "BILI",
        "0700.HK", "9988.HK", "3690.HK", "9618.HK", "9999.HK", "9888.HK", "1024.HK"]

MINIMAL = r'''
import json, sys
from pathlib import Path
import backtrader as bt
import pandas as pd
import pyarrow.parquet as pq
from urllib.parse import quote

import numpy as np

cache, orders_file, stamps_file = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
orders = json.loads(orders_file.read_text())  # [symbol, bar index, signed size]
stamps = np.load(stamps_file)  # symbol -> UTC fill instant (int64 ns) of each bar in the period
symbols = sorted({o[0] for o in orders})
by_key = {}
for sym, bar, size in orders:
    by_key.setdefault((sym, bar), []).append(size)

cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True, runonce=False)
cerebro.broker.setcash(1_000_000)
cerebro.broker.set_coo(True)
cerebro.broker.setcommission(commission=0.0015)
for sym in symbols:
    table = pq.read_table(cache / (quote(sym, safe="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") + ".parquet"))
    df = table.to_pandas()
    df = df.set_index(df.columns[0]) if "date" in df.columns else df
    df = df.loc["2021-01-01":"2023-06-30"]
    fx = 7.8 if sym.endswith(".HK") else 1.0
    feed = pd.DataFrame({"open": df["open"] / fx, "high": df["high"] / fx, "low": df["low"] / fx,
                         "close": df["close"] / fx, "volume": df["volume"], "openinterest": 0.0})
    feed.index = pd.DatetimeIndex(stamps[sym].astype("datetime64[ns]"))
    cerebro.adddata(bt.feeds.PandasDirectData(dataname=feed, name=sym), name=sym)

class Replay(bt.Strategy):
    def __init__(self):
        self.seen = {d: 0 for d in self.datas}
        self.values = []
    def prenext_open(self):
        self.next_open()
    def prenext(self):
        self.next()
    def next_open(self):
        for d in self.datas:
            if len(d) > self.seen[d]:
                self.seen[d] = len(d)
                for size in by_key.get((d._name, len(d) - 1), []):
                    (self.buy if size > 0 else self.sell)(data=d, size=abs(size))
    def next(self):
        self.values.append(self.broker.getvalue())

cerebro.addstrategy(Replay)
cerebro.run()
print(cerebro.broker.getvalue())
'''


def _orders_and_stamps(report: dict, cache: Path) -> tuple[list, dict[str, np.ndarray]]:
    """The run's orders as (symbol, bar index, signed size) and each symbol's bar instants (session opens, UTC)."""
    from engine.execution.clock import session_instants
    from engine.market.symbols import listing
    from engine.prices.store import PriceStore

    store = PriceStore(cache, offline=True)
    config = report["config"]
    symbols = sorted({t["symbol"] for t in report["trades"]})
    frames = {s: store.load(s).loc[config["start"]: config["end"]] for s in symbols}
    orders = []
    for t in report["trades"]:
        sign = 1 if t["side"] == "long" else -1
        index = frames[t["symbol"]].index
        orders.append([t["symbol"], int(index.get_loc(pd.Timestamp(t["entry_date"]))), sign * t["size"]])
        if t["exit_date"]:
            orders.append([t["symbol"], int(index.get_loc(pd.Timestamp(t["exit_date"]))), -sign * t["size"]])
    stamps = {s: session_instants(listing(s).exchange, f.index)[0] for s, f in frames.items()}
    return orders, stamps


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one fresh process: CPU time is the steadier figure on a shared
    machine."""
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"failed ({status}): {' '.join(cmd[:6])}")
    return time.perf_counter() - began, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    evbt = [sys.executable, str(ROOT / "cli.py")]
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, EVBT_CACHE_DIR=f"{tmp}/cache", EVBT_RUNS_DIR=f"{tmp}/runs")
        if SHARED_PRICES.is_dir():
            files = [str(SHARED_PRICES / f"{s}.csv") for s in [*SEED, "KWEB"]]
            subprocess.run([*evbt, "data", "import", *files], check=True, env=env, stdout=subprocess.DEVNULL)
            run_args = [*evbt, "--offline", "run", "reassurance", "--no-save"]
            label = "real data (../shared), 14 symbols, 2021-01..2023-06"
        else:
            subprocess.run([*evbt, "data", "sample"], check=True, env=env, stdout=subprocess.DEVNULL)
            run_args = [*evbt, "--offline", "run", "reassurance", "--no-save",
                        "--symbols", "BABA,JD,PDD,0700.HK,9988.HK,3690.HK"]
            label = "SYNTHETIC sample (no ../shared), 6 symbols"
        report = json.loads(subprocess.run([*run_args, "--json"], check=True, env=env, capture_output=True,
                                           text=True).stdout)
        orders, stamps = _orders_and_stamps(report, Path(env["EVBT_CACHE_DIR"]))
        orders_file = Path(tmp) / "orders.json"
        orders_file.write_text(json.dumps(orders))
        stamps_file = Path(tmp) / "stamps.npz"
        np.savez(stamps_file, **stamps)
        script = Path(tmp) / "minimal.py"
        script.write_text(MINIMAL)
        minimal = [sys.executable, str(script), env["EVBT_CACHE_DIR"], str(orders_file), str(stamps_file)]
        timed(run_args, env)  # warm the schedule cache and the OS page cache
        timed(minimal, env)
        cli_times, floor_times = [], []
        for _ in range(args.repeats):
            cli_times.append(timed(run_args, env))
            floor_times.append(timed(minimal, env))
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    cli, floor = statistics.median(w for w, _ in cli_times), statistics.median(w for w, _ in floor_times)
    cli_cpu, floor_cpu = statistics.median(c for _, c in cli_times), statistics.median(c for _, c in floor_times)
    print(f"seed scenario: {label}; {len(report['trades'])} trades")
    print(f"evbt run (CLI, whole process)      median {cli * 1000:7.0f} ms  (min {min(cli_times)[0] * 1000:.0f}), "
          f"CPU {cli_cpu * 1000:.0f} ms")
    print(f"minimal backtrader script          median {floor * 1000:7.0f} ms  (min {min(floor_times)[0] * 1000:.0f}), "
          f"CPU {floor_cpu * 1000:.0f} ms")
    print(f"ratio CLI / floor                  {cli / floor:.2f}x wall, {cli_cpu / floor_cpu:.2f}x CPU   "
          "(target <= 1.3x; CLI target < 2 s)")
    print(f"peak RSS of a child process        {peak:.0f} MB")


if __name__ == "__main__":
    main()
