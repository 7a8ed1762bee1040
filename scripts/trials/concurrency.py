"""Concurrency trials: fetch+import of the same symbols, runs into one folder, sweeps into one folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from scripts.trials.common import (
    IMPORT_SYMBOLS,
    SWEEP_POINTS,
    _env,
    _prepare_sample,
    _spawn_driver,
    _variant,
    check_cache,
    check_runs,
    write_csv,
)
from scripts.trials.sweeps import _sweep_docs, reference_sweep, rerun_sweep, sweep_state


@dataclass
class ConcurrencyStats:
    name: str
    processes: int
    exit_codes: list[int]
    problems: list[str]
    detail: str
    seconds: float
    ok: str = "none: verify ok, every file a complete version, no lost run"


def concurrent_fetch_import(work: Path, processes: int = 4, rounds: int = 2) -> ConcurrencyStats:
    """N processes fetching (mocked yfinance) and importing the same symbols at the same moment."""
    began = time.monotonic()
    base = work / "concurrent-fetch-import"
    shutil.rmtree(base, ignore_errors=True)
    (base / "csv").mkdir(parents=True)
    for s in IMPORT_SYMBOLS[:6]:
        write_csv(base / "csv" / f"{s}.csv", _variant(s, 0))
    # reference: what a serial fetch and a serial import store (content hashes), in clean folders
    hashes: dict[str, set[str]] = {}
    for order in ("f", "i"):
        ref = base / f"ref-{order}"
        proc = _spawn_driver("fetch-import", str(ref), str(base / "csv"), order, "0", "1")
        proc.communicate(timeout=300)
        from engine.prices.store import PriceStore

        for sym in PriceStore(ref).symbols():
            hashes.setdefault(sym, set()).add(PriceStore(ref).fingerprint(sym))
    cache = base / "cache"
    start_at = str(time.time() + 3.0)
    orders = ["fi", "if", "fi", "if", "ff", "ii"][:processes]
    procs = [_spawn_driver("fetch-import", str(cache), str(base / "csv"), o, start_at, str(rounds))
             for o in orders]
    codes, problems = _collect_drivers(procs, "command")
    problems += check_cache(cache, hashes, set(hashes))
    leftovers = [p.name for p in cache.glob(".*.tmp")]
    problems += [f"leftover {n}" for n in leftovers]
    detail = (f"{processes} processes x {rounds} rounds of `data fetch` (6 symbols, mocked yfinance) and "
              f"`data import` (the same 6 symbols) started at the same instant")
    return ConcurrencyStats("fetch+import, same symbols", processes, codes, problems, detail,
                            time.monotonic() - began)


def _collect_drivers(procs: list[subprocess.Popen], what: str) -> tuple[list[int], list[str]]:
    """Wait for driver processes whose last stdout line is a JSON list of command exit codes."""
    codes: list[int] = []
    problems: list[str] = []
    for p in procs:
        out, _ = p.communicate(timeout=600)
        codes.append(p.returncode)
        try:
            inner = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            inner = ["no output"]
        if p.returncode != 0 or any(c != 0 for c in inner):
            problems.append(f"process exit {p.returncode}, {what} exits {inner}")
    return codes, problems


def concurrent_runs(work: Path, processes: int = 2, holds: str = "3,4,5,6") -> ConcurrencyStats:
    """N processes writing runs (some with the same run id) into one runs folder at the same moment."""
    began = time.monotonic()
    base = work / "concurrent-runs"
    shutil.rmtree(base, ignore_errors=True)
    cache, runs_dir = base / "cache", base / "runs"
    _prepare_sample(cache)
    env = _env({"EVBT_RUNS_DIR": str(runs_dir)})
    start_at = str(time.time() + 4.0)
    lists = [holds, ",".join(reversed(holds.split(","))), "7," + holds][:processes]
    procs = [_spawn_driver("runs-writer", str(cache), h, start_at, env=env) for h in lists]
    codes, problems = _collect_drivers(procs, "run")
    expected = len({h for lst in lists for h in lst.split(",")})
    visible = [p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")] \
        if runs_dir.is_dir() else []
    if len(visible) != expected:
        problems.append(f"expected {expected} distinct runs, found {len(visible)} (lost runs)")
    problems += check_runs(runs_dir, {p.name for p in visible})
    detail = (f"{processes} processes each running `evbt run` for hold in {lists} (the same run ids in "
              f"both, in opposite order) into one runs folder, started at the same instant")
    return ConcurrencyStats("runs into one folder", processes, codes, problems, detail, time.monotonic() - began)


def concurrent_sweeps(work: Path, processes: int = 2) -> ConcurrencyStats:
    """N processes running the same sweep (same grid, so the same sweep folder) into one runs folder at the same
    instant: each exits 0 or with a clear error, the folder ends complete, chunks readable, no temp files, every
    point stored (sweeps of one folder are serialised by a lock, so the second reuses the first's points; were a
    point ever stored twice, the values must be identical and readers keep one), and the summary and best-point
    report equal an uninterrupted sweep's."""
    import pyarrow.parquet as pq

    began = time.monotonic()
    base = work / "concurrent-sweeps"
    shutil.rmtree(base, ignore_errors=True)
    cache, runs_dir = base / "cache", base / "runs"
    _prepare_sample(cache)
    reference = reference_sweep(cache, base / "reference", runs=1)
    env = _env({"EVBT_CACHE_DIR": str(cache), "EVBT_RUNS_DIR": str(runs_dir), "EVBT_SWEEP_CHUNK_ROWS": "4"})
    start_at = str(time.time() + 3.0)
    procs = [_spawn_driver("sweep-writer", start_at, env=env) for _ in range(processes)]
    codes, problems = [], []
    for p in procs:
        out, _ = p.communicate(timeout=600)
        codes.append(p.returncode)
        try:
            inner = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            inner = {"code": None, "error": "no output"}
        clear_error = inner["code"] in (1, 2) and inner["error"].startswith("error:") and \
            "internal error" not in inner["error"] and "Traceback" not in inner["error"]
        if p.returncode != 0 or not (inner["code"] == 0 or clear_error):
            problems.append(f"process exit {p.returncode}, sweep exit {inner['code']}: {inner['error']}")
    if not any(c == 0 for c in codes):
        problems.append("no sweep succeeded")
    state = sweep_state(runs_dir, reference.keys, allow_duplicates=True)
    problems += state.problems
    if state.state != "complete":
        problems.append(f"final folder {state.state}")
    if state.temp_files:
        problems.append(f"{state.temp_files} temp files left")
    rows = pd.concat([pq.read_table(c).to_pandas() for c in runs_dir.glob("sweeps/*/points/chunk-*.parquet")])
    twice = rows[rows.duplicated("key", keep=False)].drop(columns=["params", "config", "values"])
    if len(twice.drop_duplicates()) != twice["key"].nunique():
        problems.append("a point stored twice with different values")
    if not problems:
        summary, report = _sweep_docs(runs_dir)
        if summary != reference.summary or report != reference.report:
            problems.append("summary or best-point report differs from an uninterrupted sweep")
        problems += rerun_sweep(cache, runs_dir, SWEEP_POINTS, reference, allow_duplicates=True)
    detail = (f"{processes} processes running the same `evbt sweep` ({SWEEP_POINTS} points, 4-row chunks) into one "
              f"runs folder, started at the same instant; {len(rows)} rows stored for {SWEEP_POINTS} points "
              f"(a per-folder lock makes the second sweep wait and reuse the first's points); "
              f"a rerun then computes 0")
    return ConcurrencyStats("sweeps into one folder", processes, codes, problems, detail, time.monotonic() - began,
                            ok="none: folder complete, chunks readable, no temp files, results equal an "
                               "uninterrupted sweep, rerun computes 0")
