"""SIGKILL trials of cache writers, fetches, imports, run saves, runs and sweeps."""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

from scripts.trials.common import (
    IMPORT_SYMBOLS,
    SYMBOLS,
    TrialStats,
    _calibrate,
    _env,
    _kill,
    _orphans,
    _prepare_sample,
    _spawn_cli,
    _spawn_driver,
    _variant,
    _wait_ready,
    check_cache,
    check_runs,
    known_hashes,
    write_csv,
)
from scripts.trials.sweeps import sweep_crash_trials


def crash_trials(kind: str, trials: int, seed: int, work: Path) -> TrialStats:
    """``trials`` SIGKILL trials of one kind in a fresh folder under ``work``; returns what held."""
    if kind == "cli-sweep":
        return sweep_crash_trials(trials, seed, work)
    rng = random.Random(seed)
    began = time.monotonic()
    base = work / kind
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    cache, runs_dir = base / "cache", base / "runs"
    what = {
        "cache-write": "cache files rewritten in a loop (4 symbols x 2 versions), killed at random",
        "cache-fetch": "incremental fetch + merge (fake fetcher, revised bars) in a loop, killed at random",
        "cli-import": "`evbt data import` of 12 CSV files (2 versions), killed within its real duration",
        "runs-save": "saving 2 runs in a loop (new folder or replacing an existing run), killed at random",
        "cli-run": "`evbt run reassurance` on the synthetic sample, killed within its real duration",
    }[kind]
    stats = TrialStats(kind, what)
    hashes: dict[str, set[str]] | None = None
    env = _env({"EVBT_CACHE_DIR": str(cache), "EVBT_RUNS_DIR": str(runs_dir)})
    argv: list[str] = []
    duration = 0.0
    if kind == "cache-write":
        hashes = known_hashes({(s, v): _variant(s, v) for s in SYMBOLS for v in (0, 1)})
    elif kind == "cli-import":
        from engine.prices.csv_import import read_yahoo_csv

        for v in (0, 1):
            (base / f"csv{v}").mkdir()
            for s in IMPORT_SYMBOLS:
                write_csv(base / f"csv{v}" / f"{s}.csv", _variant(s, v))
        # the stored versions are what the importer reads back from the (6-decimal) CSV text
        hashes = known_hashes({(s, v): read_yahoo_csv(base / f"csv{v}" / f"{s}.csv").frame
                               for s in IMPORT_SYMBOLS for v in (0, 1)})
        duration = _calibrate(["data", "import", *sorted(str(p) for p in (base / "csv0").glob("*.csv"))], env)
    elif kind in ("runs-save", "cli-run"):
        _prepare_sample(cache)
        if kind == "cli-run":
            argv = ["--sample", "run", "reassurance", "-p", "hold=4", "--json"]
            duration = _calibrate(argv, _env({"EVBT_CACHE_DIR": str(cache), "EVBT_RUNS_DIR": str(base / "cal")}))
    for trial in range(trials):
        stats.trials += 1
        have_cache = set(__import__("engine.prices.store", fromlist=["PriceStore"]).PriceStore(cache).symbols())
        have_runs = {p.name for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")} \
            if runs_dir.is_dir() else set()
        if kind == "cache-write":
            proc = _spawn_driver("cache-write", str(cache), env=env)
            _wait_ready(proc)
            time.sleep(rng.uniform(0.0, 0.5))
        elif kind == "cache-fetch":
            proc = _spawn_driver("cache-fetch", str(cache), env=env)
            _wait_ready(proc)
            time.sleep(rng.uniform(0.0, 0.5))
        elif kind == "runs-save":
            proc = _spawn_driver("runs-save", str(runs_dir), str(cache / "sample"), env=env)
            _wait_ready(proc, timeout=120)
            time.sleep(rng.uniform(0.0, 0.4))
        elif kind == "cli-import":
            files = sorted(str(p) for p in (base / f"csv{trial % 2}").glob("*.csv"))
            proc = _spawn_cli(["data", "import", *files], env)
            time.sleep(rng.uniform(0.3, duration * 1.05))
        else:  # cli-run
            proc = _spawn_cli([*argv[:4], f"hold={rng.choice([3, 4, 5])}", "--json"], env)
            time.sleep(rng.uniform(0.3, duration * 1.05))
        _kill(proc, stats)
        stats.orphan_temp_files = max(stats.orphan_temp_files, _orphans(cache))
        problems: list[str] = []
        if kind in ("cache-write", "cache-fetch", "cli-import"):
            problems += check_cache(cache, hashes, have_cache)
        if kind in ("runs-save", "cli-run"):
            problems += check_runs(runs_dir, have_runs)
            problems += check_cache(cache / "sample", None, set())
        if problems:
            stats.failures.append(f"trial {trial}: " + "; ".join(problems))
        else:
            stats.held += 1
    stats.seconds = time.monotonic() - began
    return stats
