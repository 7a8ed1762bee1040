"""Sweep memory against grid size and universe size, and the Dask LocalCluster sweep checked against the local one.

Run (a universe written by ``benchmarks/scale_bench.py --keep DIR``, read only: its cache is copied first):

    .venv/bin/python benchmarks/sweep_memory.py --universe /work/scale/100 --points 1,100,1000
    .venv/bin/python benchmarks/sweep_memory.py --universe /work/scale/2000 --points 200 --dask

Each sweep is ``evbt sweep analyst_follow`` in a fresh process with an empty runs folder (nothing reused), on a
grid of ``hold`` (up to 10 values) x ``cash`` (the rest): N points need only a few plans, so what grows with N is
the per-point bookkeeping. Memory is measured two ways: the peak RSS of the largest single process (``wait4``, as
``scale_bench.py`` reports it) and, sampled every 0.1 s from /proc, each process's peak RSS and the peak of the
whole tree's summed PSS (proportional set size: pages a forked worker shares with its parent counted once).

``--dask`` runs the same grid on ``--cluster local`` (2 worker processes) and locally (``--workers 2``), checks
that the two sweeps' stored rows are equal key by key and column by column and their rankings equal entry by
entry, and prints each one's wall time and every process's peak memory (the Dask workers by name).
Nothing is asserted except that equality; figures go to stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Usage:
    wall: float
    maxrss_mb: float  # wait4: largest single process of the tree
    tree_pss_mb: float  # sampled: peak of the summed PSS of the tree
    tree_rss_mb: float  # sampled: peak of the summed RSS of the tree
    per_process: dict[str, float] = field(default_factory=dict)  # label -> peak RSS (MB)
    stdout: str = ""


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out += [int(x) for x in fh.read().split()]
        except OSError:
            continue
    return out


def _tree(root: int) -> list[int]:
    todo, seen = [root], []
    while todo:
        pid = todo.pop()
        seen.append(pid)
        todo += _children(pid)
    return seen


def _kb(path: str, key: str) -> int:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _label(pid: int, root: int) -> str:
    if pid == root:
        return "main"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        cmd = ""
    if "spawn_main" in cmd or "forkserver" in cmd or "distributed" in cmd:
        return f"dask/mp child {pid}"
    return f"child {pid}"


class Sampler(threading.Thread):
    def __init__(self, root: int, every: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.root, self.every = root, every
        self.stop = threading.Event()
        self.peak_pss = self.peak_rss = 0
        self.per: dict[str, int] = {}

    def run(self) -> None:
        while not self.stop.is_set():
            pss = rss = 0
            for pid in _tree(self.root):
                r = _kb(f"/proc/{pid}/status", "VmRSS:")
                rss += r
                pss += _kb(f"/proc/{pid}/smaps_rollup", "Pss:")
                label = _label(pid, self.root)
                self.per[label] = max(self.per.get(label, 0), r)
            self.peak_pss, self.peak_rss = max(self.peak_pss, pss), max(self.peak_rss, rss)
            self.stop.wait(self.every)


def measure(cmd: list[str], env: dict[str, str]) -> Usage:
    began = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, cwd=ROOT)
        sampler = Sampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
        sampler.stop.set()
        sampler.join()
        if status != 0:
            err.seek(0)
            raise SystemExit(f"failed ({status}): {' '.join(cmd[3:8])} ...\n{err.read().decode()[-3000:]}")
        out.seek(0)
        return Usage(wall, usage.ru_maxrss / 1024, sampler.peak_pss / 1024, sampler.peak_rss / 1024,
                     {k: v / 1024 for k, v in sampler.per.items()}, out.read().decode())


def grid(points: int) -> list[str]:
    """``points`` = holds x cash values (at most 10 holds, so at most 10 plans)."""
    holds = min(10, points)
    while points % holds:
        holds -= 1
    cash = points // holds
    args = ["-g", f"hold={20}..{19 + holds}"]
    if cash > 1:
        args += ["-g", f"cash=1000000..{1000000 + cash - 1}"]
    return args


def sweep_cmd(universe: Path, points: int, workers: int, cluster: str | None, repo: Path = ROOT) -> list[str]:
    cmd = [sys.executable, str(repo / "cli.py"), "--offline", "sweep", "analyst_follow", "--config",
           str(universe / "run.toml"), "--events", str(universe / "events.csv"), "--replace-events", "--quiet",
           "--json", "--top", "1", "--workers", str(workers), *grid(points)]
    return cmd + (["--cluster", cluster] if cluster else [])


def run_one(universe: Path, work: Path, points: int, workers: int, cluster: str | None, tag: str,
            repo: Path = ROOT) -> Usage:
    runs = work / f"runs-{tag}"
    shutil.rmtree(runs, ignore_errors=True)
    env = dict(os.environ, EVBT_CACHE_DIR=str(work / "cache"), EVBT_RUNS_DIR=str(runs))
    return measure(sweep_cmd(universe, points, workers, cluster, repo), env)


def stored_rows(runs: Path) -> object:
    import pandas as pd
    import pyarrow.parquet as pq

    folders = list((runs / "sweeps").iterdir())
    folders = [f for f in folders if f.is_dir()]
    assert len(folders) == 1, folders
    tables = [pq.read_table(p).to_pandas() for p in sorted((folders[0] / "points").glob("chunk-*.parquet"))]
    rows = pd.concat(tables, ignore_index=True)
    return rows.drop(columns=["point"]).sort_values("key").reset_index(drop=True), folders[0]


def compare(work: Path) -> str:
    local, lf = stored_rows(work / "runs-local")
    dask, df = stored_rows(work / "runs-dask")
    if list(local["key"]) != list(dask["key"]):
        return "DIFFERENT: the two sweeps stored different keys"
    bad = [c for c in local.columns
           if not all((a == b) or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
                      for a, b in zip(local[c], dask[c], strict=True))]
    if bad:
        return f"DIFFERENT: columns {bad}"
    sl = json.loads((lf / "summary.json").read_text())
    sd = json.loads((df / "summary.json").read_text())
    if sl["ranking"] != sd["ranking"] or sl.get("multiple_testing") != sd.get("multiple_testing"):
        return "DIFFERENT: the rankings differ"
    return (f"equal: {len(local)} stored rows x {len(local.columns)} columns identical, ranking of "
            f"{len(sl['ranking'])} entries identical")


def fmt(u: Usage) -> str:
    return (f"{u.wall:7.1f} s  largest process {u.maxrss_mb:6.0f} MB  tree PSS {u.tree_pss_mb:6.0f} MB  "
            f"tree RSS {u.tree_rss_mb:6.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--universe", type=Path, required=True, help="a folder written by scale_bench.py --keep")
    parser.add_argument("--points", default="1,100,1000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dask", action="store_true", help="also run each size on --cluster local and compare")
    parser.add_argument("--repo", type=Path, default=ROOT,
                        help="the checkout whose cli.py runs the sweeps (e.g. an export of main, for before/after)")
    args = parser.parse_args()
    universe = args.universe.resolve()
    symbols = (universe / "run.toml").read_text().count('"Z')
    with tempfile.TemporaryDirectory(prefix="evbt-sweep-mem-") as tmp:
        work = Path(tmp)
        shutil.copytree(universe / "cache", work / "cache")  # the universe stays read-only
        print(f"universe {universe} ({symbols} symbols); {os.cpu_count()} CPUs; workers {args.workers}")
        for n in (int(p) for p in args.points.split(",")):
            local = run_one(universe, work, n, args.workers, None, "local", args.repo)
            print(f"{n:>6} points local: {fmt(local)}")
            if args.dask:
                dask = run_one(universe, work, n, args.workers, "local", "dask", args.repo)
                print(f"{n:>6} points dask:  {fmt(dask)}")
                for label, mb in sorted(dask.per_process.items()):
                    print(f"         {label}: peak RSS {mb:.0f} MB")
                print(f"         dask vs local: {compare(work)}")


if __name__ == "__main__":
    main()
