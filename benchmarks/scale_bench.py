"""How a run's cost grows with the universe: synthetic US universes of 14 to 2,000 symbols.

Run: .venv/bin/python benchmarks/scale_bench.py [--sizes 14,100,500] [--repeats 1] [--point-repeats 5]
     [--backtrader-max 500]

For each size it writes a seeded synthetic universe (random-walk Yahoo-layout CSVs on NYSE sessions
2015-02-02..2023-12-29, about 40 analyst up/downgrades per symbol in a user event file), then measures, each
command as a fresh process (imports included):

- `evbt data import` of all the CSVs;
- `evbt run analyst_follow` (the backtrader engine) and a minimal backtrader script that places the same orders
  on the same parquet files (the floor; ratio printed);
- a 1-point `evbt sweep` (the fast path, whole process) and a 100-point sweep on 2 workers (per extra point);
- the peak RSS of each child process and the 1-point sweep's CPU seconds, its workers included (from wait4);
- a host calibration: a fixed pure-Python loop, since this shared machine's speed drifts by a factor of two.

The project is byte-compiled first and the children run with Python's bytecode cache on, as an installed evbt
does (a sandbox setting PYTHONDONTWRITEBYTECODE would otherwise add about 0.2 s of compiling to every process).

Figures go to stdout as a table beside the targets of the scale issue; nothing is asserted.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
START, END = "2015-02-02", "2023-12-29"
RUN_START = "2015-06-01"
EVENTS_PER_SYMBOL = 40
FIRMS = ["Acme Securities", "Borealis Capital", "Cobalt Research", "Delta Brokers"]

MINIMAL = r'''
import json, sys
from pathlib import Path
from urllib.parse import quote
import backtrader as bt
import pandas as pd
import pyarrow.parquet as pq

cache, orders_file, start, end = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
orders = json.loads(orders_file.read_text())  # [symbol, date, signed size]
symbols = sorted({o[0] for o in orders})
by_key = {}
for sym, date, size in orders:
    by_key.setdefault((sym, date), []).append(size)
cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True, runonce=False)
cerebro.broker.setcash(1_000_000)
cerebro.broker.set_coo(True)
cerebro.broker.setcommission(commission=0.0015)
for sym in symbols:
    df = pq.read_table(cache / (quote(sym, safe="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") + ".parquet")).to_pandas()
    df = df.set_index(df.columns[0]) if "date" in df.columns else df
    df = df.loc[start:end]
    feed = pd.DataFrame({"open": df["open"], "high": df["high"], "low": df["low"], "close": df["close"],
                         "volume": df["volume"], "openinterest": 0.0})
    feed.index = pd.DatetimeIndex(feed.index).as_unit("ns")
    cerebro.adddata(bt.feeds.PandasDirectData(dataname=feed, name=sym), name=sym)

class Replay(bt.Strategy):
    def __init__(self):
        self.seen = {d: 0 for d in self.datas}
    def prenext_open(self):
        self.next_open()
    def next_open(self):
        for d in self.datas:
            if len(d) > self.seen[d]:
                self.seen[d] = len(d)
                for size in by_key.get((d._name, str(d.datetime.date(0))), []):
                    (self.buy if size > 0 else self.sell)(data=d, size=abs(size))

cerebro.addstrategy(Replay)
cerebro.run()
print(cerebro.broker.getvalue())
'''


def symbol_name(i: int) -> str:
    letters = string.ascii_uppercase
    return "Z" + letters[i // 676 % 26] + letters[i // 26 % 26] + letters[i % 26]


def nyse_sessions() -> list[str]:
    import exchange_calendars as xcals

    cal = xcals.get_calendar("XNYS", start="2014-01-01")
    return [str(d.date()) for d in cal.sessions_in_range(START, END)]


def write_universe(folder: Path, n: int, sessions: list[str], seed: int = 7) -> tuple[list[str], Path]:
    rng = np.random.default_rng(seed)
    prices = folder / "prices"
    prices.mkdir(parents=True)
    symbols = [symbol_name(i) for i in range(n)]
    days = len(sessions)
    for sym in symbols:
        close = 50.0 * np.exp(np.cumsum(rng.normal(0.0002, 0.02, days)))
        opens = close * np.exp(rng.normal(0, 0.005, days))
        high = np.maximum(opens, close) * 1.01
        low = np.minimum(opens, close) * 0.99
        vol = rng.integers(100_000, 2_000_000, days)
        with (prices / f"{sym}.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"])
            for k in range(days):
                w.writerow([sessions[k], f"{opens[k]:.4f}", f"{high[k]:.4f}", f"{low[k]:.4f}", f"{close[k]:.4f}",
                            f"{close[k]:.4f}", int(vol[k])])
    events = folder / "events.csv"
    with events.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "date", "time", "tz", "session_hint", "market", "type", "scope", "symbols", "firm",
                    "from_grade", "to_grade", "description", "source", "confidence"])
        for sym in symbols:
            picks = np.sort(rng.choice(np.arange(60, days), EVENTS_PER_SYMBOL, replace=False))
            for j, k in enumerate(picks):
                up = rng.random() < 0.6
                w.writerow([f"{sessions[k]}-{sym.lower()}-{j}", sessions[k], "", "America/New_York", "", "",
                            "analyst_upgrade" if up else "analyst_downgrade", "single", sym,
                            FIRMS[j % len(FIRMS)], "", "", "synthetic rating change", "https://example.invalid/",
                            "low"])
    return symbols, events


def child_env(folder: Path) -> dict[str, str]:
    """The environment of every timed command: the universe's cache and runs folders, and Python's bytecode
    cache on (a sandbox may set PYTHONDONTWRITEBYTECODE; an installed tool has its .pyc files, see
    ``compile_sources``)."""
    env = dict(os.environ, EVBT_CACHE_DIR=str(folder / "cache"), EVBT_RUNS_DIR=str(folder / "runs"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def compile_sources() -> None:
    """Byte-compile the project as ``pip install`` does for an installed wheel, so no timed process pays for
    compiling evbt's modules (about 0.2 s a process otherwise)."""
    import compileall

    for part in ("engine", "strategies", "cli.py"):
        path = ROOT / part
        ok = compileall.compile_dir(path, quiet=1) if path.is_dir() else compileall.compile_file(path, quiet=1)
        if not ok:
            raise SystemExit(f"could not byte-compile {path}")


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) of the child and its stdout; its CPU seconds, with the children it reaped, go
    to ``last_cpu``."""
    began = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
        err = proc.stderr.read().decode() if proc.stderr else ""
        if status != 0:
            raise SystemExit(f"failed ({status}): {' '.join(cmd[:6])} ...\n{err[-2000:]}")
        out.seek(0)
        global last_cpu
        # wait4 reports the child with the children it reaped (pool workers, the forked reader)
        last_cpu = usage.ru_utime + usage.ru_stime
        return wall, usage.ru_maxrss / 1024, out.read().decode()


last_cpu = 0.0


def calibration_loop() -> float:
    """Seconds of a fixed pure-Python loop at module level (best of 3): this shared machine's speed drifts, so
    figures taken on different days compare only beside it."""
    code = compile("total = 0\nfor i in range(5_000_000):\n    total += i\n", "<calibration>", "exec")
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        exec(code, {})  # globals, as `python -c` runs it
        best = min(best, time.perf_counter() - began)
    return best


def orders_from(report: dict) -> list[list]:
    orders = []
    for t in report["trades"]:
        sign = 1 if t["side"] == "long" else -1
        orders.append([t["symbol"], t["entry_date"], sign * t["size"]])
        if t["exit_date"]:
            orders.append([t["symbol"], t["exit_date"], -sign * t["size"]])
    return orders


def bench_size(n: int, sessions: list[str], repeats: int, backtrader_max: int,
               keep: Path | None = None, point_repeats: int = 1) -> dict[str, object]:
    evbt = [sys.executable, str(ROOT / "cli.py"), "--offline"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) if keep is None else keep / str(n)
        if keep is not None and folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        symbols, events = write_universe(folder, n, sessions)
        env = child_env(folder)
        files = sorted(str(p) for p in (folder / "prices").glob("*.csv"))
        t_import, rss_import, _ = measure([*evbt, "data", "import", *files], env)
        config = folder / "run.toml"
        config.write_text("symbols = [" + ", ".join(f'"{s}"' for s in symbols) + "]\n"
                          f'start = "{RUN_START}"\nend = "{END}"\nbenchmark = "none"\n')
        base = ["--config", str(config), "--events", str(events), "--replace-events"]
        row: dict[str, object] = {"symbols": n, "events": n * EVENTS_PER_SYMBOL, "import_s": t_import,
                                  "import_rss": rss_import}
        if n <= backtrader_max:
            run_cmd = [*evbt, "run", "analyst_follow", *base, "--no-save", "--json"]
            walls, rss, report = [], 0.0, {}
            for _ in range(repeats):
                wall, peak, out = measure(run_cmd, env)
                walls.append(wall)
                rss = max(rss, peak)
                report = json.loads(out)
            orders_file = folder / "orders.json"
            orders_file.write_text(json.dumps(orders_from(report)))
            script = folder / "minimal.py"
            script.write_text(MINIMAL)
            floor = [measure([sys.executable, str(script), env["EVBT_CACHE_DIR"], str(orders_file), RUN_START, END],
                             env)[0] for _ in range(repeats)]
            row.update(run_s=statistics.median(walls), run_rss=rss, floor_s=statistics.median(floor),
                       trades=len(report["trades"]))
        sweep = [*evbt, "sweep", "analyst_follow", *base, "--quiet", "--json", "--workers", "2"]
        # a new hold each time: an identical sweep would reuse its stored point
        one, cpus = [], []
        for k in range(max(repeats, point_repeats)):
            one.append(measure([*sweep, "-g", f"hold={20 + k}"], env))
            cpus.append(last_cpu)
        walls = [w for w, _, _ in one]
        row["sweep1_cpu"] = statistics.median(cpus)
        row.update(sweep1_s=statistics.median(walls), sweep1_rss=max(r for _, r, _ in one),
                   sweep1_range=(min(walls), max(walls), len(walls)))
        wall, peak, _ = measure([*sweep, "-g", "hold=101..200"], env)
        row.update(sweep100_s=wall, sweep100_rss=peak)
        row["per_point_s"] = max(0.0, (wall - row["sweep1_s"]) / 99)  # type: ignore[operator]
        return row


def fmt(value: object, unit: str = "s") -> str:
    if value is None:
        return "-"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="14,100,500")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--point-repeats", type=int, default=5,
                        help="Runs of the 1-point sweep (its median is printed, and the range below the table): "
                             "the shortest and noisiest figure.")
    parser.add_argument("--backtrader-max", type=int, default=500,
                        help="Skip the backtrader run and its floor above this many symbols.")
    parser.add_argument("--keep", type=Path, default=None,
                        help="Write each universe to KEEP/<size>/ (prices, cache, events, run.toml) and leave it "
                             "there for profiling (default: a temporary folder).")
    args = parser.parse_args()
    sessions = nyse_sessions()
    compile_sources()
    rows = [bench_size(int(n), sessions, args.repeats, args.backtrader_max, args.keep, args.point_repeats)
            for n in args.sizes.split(",")]
    print(f"synthetic US universe, NYSE sessions {START}..{END} ({len(sessions)}), run from {RUN_START}, "
          f"{EVENTS_PER_SYMBOL} analyst events per symbol, analyst_follow hold 20; {os.cpu_count()} CPUs")
    head = (f"{'symbols':>7} {'events':>7} {'import':>8} {'evbt run':>9} {'floor':>8} {'ratio':>6} "
            f"{'1-pt sweep':>10} {'per point':>9} {'100-pt':>8} {'peak RSS':>9}")
    print(head)
    for r in rows:
        ratio = f"{r['run_s'] / r['floor_s']:.2f}x" if "run_s" in r else "-"  # type: ignore[operator]
        peak = max(v for k, v in r.items() if k.endswith("rss"))  # type: ignore[type-var]
        print(f"{r['symbols']:>7} {r['events']:>7} {fmt(r['import_s']):>8} {fmt(r.get('run_s')):>9} "
              f"{fmt(r.get('floor_s')):>8} {ratio:>6} {fmt(r['sweep1_s']):>10} {fmt(r['per_point_s']):>9} "
              f"{fmt(r['sweep100_s']):>8} {fmt(peak, 'MB'):>9}")
    for r in rows:
        span: tuple[float, float, int] = r["sweep1_range"]  # type: ignore[assignment]
        print(f"1-point sweep, {r['symbols']} symbols: median of {span[2]} runs, {span[0]:.2f}-{span[1]:.2f} s; "
              f"CPU of all its processes {r['sweep1_cpu']:.2f} s (median)")
    print(f"host calibration: a fixed pure-Python loop of 5,000,000 additions takes {calibration_loop():.2f} s "
          "(best of 3)")
    print("targets (500 symbols): per point < 0.3 s, 1-point whole process < 3 s, run <= 1.3x floor at every size, "
          "import of 500 files < 3 s, peak RSS < 1 GB at 2,000 symbols")


if __name__ == "__main__":
    main()
