"""Placebo speed: ``evbt run reassurance --placebo N`` (default 1,000) on the seed scenario, 1 and 2 workers.

Usage: python benchmarks/placebo_bench.py [-n 1000] [--prices DIR] [--workers 1,2]

Data: the real CSVs in ``--prices`` (default $EVBT_SHARED_DATA/prices, else ../shared/data/prices) imported into
a temporary cache when present, else the synthetic sample. Each measurement is one fresh Python process running the
whole command (imports, the real backtrader run, data loading, the N placebo replays on the fast path, printing),
with ``--no-save``; the figure inside the placebo (``elapsed_s`` of the JSON) is shown beside the wall time. The
machine's load average is printed: on a shared machine wall times grow with it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PRICES = Path(os.environ.get("EVBT_SHARED_DATA") or ROOT.parent / "shared" / "data") / "prices"


def _prepare_cache(cache: Path, prices: Path) -> tuple[str, list[str]]:
    sys.path.insert(0, str(ROOT))
    from engine.prices.store import PriceStore

    store = PriceStore(cache)
    if prices.is_dir() and list(prices.glob("*.csv")):
        from engine.prices.csv_import import read_yahoo_csv

        for path in sorted(prices.glob("*.csv")):
            item = read_yahoo_csv(path, None)
            store.write(item.symbol, item.frame, "csv", item.adjustment)
        return f"real ({prices}), seed scenario: 14 symbols 2021-01-01..2023-06-30", []
    from engine.prices.synthetic import write_sample

    write_sample(store)
    return ("SYNTHETIC sample: 6 symbols 2021-01-01..2022-12-30",
            ["--symbols", "BABA,JD,PDD,0700.HK,9988.HK,3690.HK", "--end", "2022-12-30"])


def _run(cache: Path, base: list[str], n: int, workers: int) -> dict:
    env = dict(os.environ, EVBT_CACHE_DIR=str(cache), EVBT_PLACEBO_WORKERS=str(workers))
    args = ["--offline", "run", "reassurance", *base, "--no-save", "--placebo", str(n), "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"run failed: {proc.stderr}")
    doc = json.loads(proc.stdout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "inside": doc["placebo"]["elapsed_s"], "doc": doc}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="placebo sets (default 1000)")
    parser.add_argument("--prices", type=Path, default=DEFAULT_PRICES, help="folder of Yahoo CSVs")
    parser.add_argument("--workers", default="1,2", help="worker counts to measure (default 1,2)")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        label, base = _prepare_cache(cache, opts.prices)
        print(f"data: {label}")
        print(f"machine: {os.cpu_count()} cpu(s), load average {os.getloadavg()[0]:.2f} (shared machines: wall "
              f"time grows with the load)")
        results = {}
        for workers in (int(w) for w in opts.workers.split(",")):
            res = _run(cache, base, opts.n, workers)
            results[workers] = res
            print(f"--placebo {opts.n}, {workers} worker(s): wall {res['wall']:.2f} s for the whole command, "
                  f"placebo part {res['inside']:.2f} s, cpu {res['cpu']:.2f} s; "
                  f"load average now {os.getloadavg()[0]:.2f}")
        docs = [r["doc"]["placebo"]["ranks"] for r in results.values()]
        same = all(d == docs[0] for d in docs)
        print(f"same placebo distribution with every worker count: {same}")
        ranks = {r["metric"]: r for r in docs[0]}
        tr = ranks["total_return"]
        print(f"real total return {tr['real']:.4%}, percentile {tr['percentile']:.1f}, p {tr['p_value']:.4f}")


if __name__ == "__main__":
    main()
