#!/usr/bin/env python
"""Reliability trials for evbt: crashes (SIGKILL at random points), concurrency, disk full / read-only folders.

Writes RELIABILITY.md with what was tried, how many times and what held. Refresh it with::

    python scripts/reliability.py                 # 240 crash trials (40 per kind), about 6-9 minutes on 2 cores
    python scripts/reliability.py --trials 20     # quick look (does not write RELIABILITY.md unless --out)

The test suite imports this module and runs the same trials with a handful of iterations
(tests/test_reliability_crash.py), so the script and the tests cannot drift apart.

Crash trial kinds (each trial starts a fresh process and SIGKILLs it at a random moment):
- ``cache-write``: a process rewriting 4 cache files in a loop (two known versions each), killed while writing;
- ``cache-fetch``: ``PriceStore.update(refresh=True)`` with a fake fetcher serving revised bars, in a loop;
- ``cli-import``: ``evbt data import`` of 12 Yahoo CSV files (alternating two versions), killed at a random
  time within its real duration;
- ``runs-save``: ``engine.saved_runs.save_run`` of two runs in a loop (new folders and replacement of existing ones);
- ``cli-run``: ``evbt run`` on the synthetic sample, killed at a random time within its real duration;
- ``cli-sweep``: ``evbt sweep`` (80 points, 4-row chunks) killed at a random moment, mostly while it writes chunks,
  from an empty runs folder or resuming the folder the previous kill left.
After every trial: ``evbt data verify`` passes, every cache file is a complete known version, every visible run
folder is complete (all five files, readable), no run that existed before the trial is lost, and no
temporary leftovers remain once the runs folder has been listed (recovery). After a sweep trial: every chunk
parquet file reads back whole, the sweep folder is absent, empty, partial (resumable) or complete, and a rerun on
a copy computes exactly the missing points, leaves no temp files and gives a summary and best-point report
identical to an uninterrupted sweep.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

SYMBOLS = ("BABA", "JD", "0700.HK", "9988.HK")
IMPORT_SYMBOLS = ("BABA", "JD", "PDD", "BIDU", "NTES", "TCEHY", "BILI", "KWEB", "0700.HK", "9988.HK", "3690.HK",
                  "9618.HK")
KINDS = ("cache-write", "cache-fetch", "cli-import", "runs-save", "cli-run", "cli-sweep")
# the sweep killed by the cli-sweep trials and run by the concurrency case (80 points; small chunks so a kill
# usually lands while chunks are written; the write delay widens the temp-file-written-not-renamed window)
SWEEP_ARGV = ["--sample", "sweep", "reassurance", "-g", "hold=1..40", "-g", "fill=open,close", "--workers", "1",
              "--quiet", "--json"]
SWEEP_POINTS = 80
SWEEP_ENV = {"EVBT_SWEEP_CHUNK_ROWS": "4", "EVBT_TEST_WRITE_DELAY": "0.03"}
FOUND = [
    "empty yfinance answer for dates already cached silently extended the cache's coverage "
    "(now: stale cache + warning)",
    "config files: `symbols = 5` silently fell back to the default universe; non-text symbols/events gave an "
    "internal TypeError; a UTF-8 BOM was a parse error; value errors did not name the file",
    "CSV import: a file name that is not a symbol did not name the file; a stray carriage return in a field was an "
    "internal error (fuzzing)",
    "run save on a full disk or read-only runs folder was an `internal error: OSError` (now a clear exit-1 error)",
    "two processes saving the same run id at once could fail with ENOTEMPTY (now the first complete folder is kept)",
    "sweep crash trials: a sweep killed while replacing manifest.json/summary.json/report.json left a hidden temp "
    "file in the sweep folder that no later sweep removed (now cleared like chunk temp files)",
    "sweep bad input: `--split` on the last day or the day after the start failed with an unrelated "
    "'start must be before end'; a malformed `--cluster` address was an internal ValueError (exit 1, now exit 2); "
    "a bad parameter value in `-g` did not name the `-g` spec",
]


# ---------------------------------------------------------------------------- data builders


def make_frame(rows: int, seed: int, start: str = "2012-01-02") -> pd.DataFrame:
    """Valid random-walk bars on business days (contract columns except ``stale``)."""
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range(start, periods=rows, name="date")
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.02, rows)))
    opn = close * np.exp(rng.normal(0, 0.01, rows))
    return pd.DataFrame({"open": opn, "high": np.maximum(opn, close) * 1.01, "low": np.minimum(opn, close) * 0.99,
                         "close": close, "adj_close": close * 0.97, "volume": rng.integers(1, 10**6, rows) * 1.0},
                        index=idx)


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    out = frame.rename(columns={"open": "Open", "high": "High", "low": "Low", "close": "Close",
                                "adj_close": "Adj Close", "volume": "Volume"})
    out.index = out.index.strftime("%Y-%m-%d")
    out.index.name = "Date"
    out.to_csv(path, float_format="%.6f")


def _variant(symbol: str, version: int) -> pd.DataFrame:
    seed = sum(map(ord, symbol)) * 10 + version
    return make_frame(2400 if version == 0 else 1800, seed)


def known_hashes(frames: dict[tuple[str, int], pd.DataFrame]) -> dict[str, set[str]]:
    from engine.prices.store import content_hash
    from engine.prices.validate import validate_prices

    out: dict[str, set[str]] = {}
    for (sym, _), frame in frames.items():
        out.setdefault(sym, set()).add(content_hash(validate_prices(frame, sym)))
    return out


# ---------------------------------------------------------------------------- drivers (child processes)


def _driver_cache_write(root: str) -> None:
    from engine.prices.store import PriceStore

    store = PriceStore(root)
    frames = {(s, v): _variant(s, v) for s in SYMBOLS for v in (0, 1)}
    k = 0
    while True:
        sym = SYMBOLS[k % len(SYMBOLS)]
        store.write(sym, frames[(sym, (k // len(SYMBOLS)) % 2)], "csv")
        if k == 0:
            print("ready", flush=True)
        k += 1


def _driver_cache_fetch(root: str) -> None:
    from engine.prices.store import PriceStore

    revision = [0]

    def fetcher(symbol: str, start: dt.date | None, end: dt.date) -> pd.DataFrame:
        frame = make_frame(2600, sum(map(ord, symbol)), start="2012-01-02")
        frame[["open", "high", "low", "close", "adj_close"]] *= 1 + (revision[0] % 7) / 100
        lo = pd.Timestamp(start) if start else frame.index[0]
        return frame.loc[lo: pd.Timestamp(end)]

    store = PriceStore(root, fetcher=fetcher)
    end = dt.date(2021, 12, 31)
    k = 0
    while True:
        revision[0] = k
        store.update(SYMBOLS[k % len(SYMBOLS)], dt.date(2012, 1, 2), end, refresh=True)
        if k == 0:
            print("ready", flush=True)
        k += 1


def _sample_outcomes(cache: str) -> list:
    from engine import backtest
    from engine.plan.config import make_run_config
    from engine.prices.store import PriceStore
    from engine.prices.synthetic import SAMPLE_SYMBOLS

    store = PriceStore(cache, offline=True)
    syms = ",".join(s for s in SAMPLE_SYMBOLS if s != "HKD=X")
    out = []
    for hold in (3, 7):
        cfg = make_run_config("reassurance", [f"hold={hold}"], {"symbols": syms, "start": "2021-01-04",
                                                                "end": "2022-12-30"})
        out.append(backtest.run(cfg, store))
    return out


def _driver_runs_save(runs_dir: str, cache: str) -> None:
    from engine import saved_runs as runs

    outcomes = _sample_outcomes(cache)
    manifests = [runs.build_manifest(run_id=o.report["run_id"], data_fingerprints=o.fingerprints,
                                     calendar_hash=o.calendar_hash, repo_dir=REPO) for o in outcomes]
    k = 0
    while True:
        o = outcomes[k % 2]
        runs.save_run(Path(runs_dir), o.report, o.result, manifests[k % 2])
        if k == 1:
            print("ready", flush=True)
        k += 1


def _driver_fetch_import(cache: str, csv_dir: str, order: str, start_at: str, rounds: str) -> None:
    """Concurrency: mocked yfinance fetch and CSV import of the same symbols, in the given order."""
    import yfinance

    import cli
    import engine.prices.yahoo

    class Ticker:
        def __init__(self, symbol: str) -> None:
            self.symbol = symbol

        def history(self, **kwargs: object) -> pd.DataFrame:
            time.sleep(0.01)
            frame = make_frame(800, sum(map(ord, self.symbol)) + 1, start="2019-01-01")
            frame.columns = ["Open", "High", "Low", "Close", "Adj Close", "Volume"]
            frame.index = frame.index.tz_localize("America/New_York")
            naive = frame.index.tz_localize(None)
            mask = np.ones(len(frame), dtype=bool)
            if kwargs.get("start"):
                mask &= naive >= pd.Timestamp(str(kwargs["start"]))
            if kwargs.get("end"):
                mask &= naive < pd.Timestamp(str(kwargs["end"]))
            return frame[mask]

    yfinance.Ticker = Ticker  # mocked at the public API, as in the tests
    engine.prices.yahoo.BACKOFF = 0.01
    csvs = sorted(str(p) for p in Path(csv_dir).glob("*.csv"))
    fetch = ["--cache-dir", cache, "data", "fetch", *IMPORT_SYMBOLS[:6], "--start", "2019-01-01",
             "--end", "2021-12-31"]
    imp = ["--cache-dir", cache, "data", "import", *csvs]
    while time.time() < float(start_at):
        time.sleep(0.005)
    codes = []
    for _ in range(int(rounds)):
        for step in order:
            codes.append(cli.main(fetch if step == "f" else imp))
    print(json.dumps(codes), flush=True)


def _driver_runs_writer(cache: str, holds: str, start_at: str) -> None:
    import cli

    while time.time() < float(start_at):
        time.sleep(0.005)
    codes = []
    for hold in holds.split(","):
        codes.append(cli.main(["--cache-dir", cache, "--sample", "run", "reassurance", "-p", f"hold={hold}",
                               "--json"]))
    print(json.dumps(codes), flush=True)


def _driver_sweep_writer(start_at: str) -> None:
    """Concurrency: one `evbt sweep` (SWEEP_ARGV) started at the given instant; prints its exit code."""
    while time.time() < float(start_at):
        time.sleep(0.002)
    code, text = _quiet_cli(*SWEEP_ARGV)
    print(json.dumps({"code": code, "error": "" if code == 0 else text.strip()[-300:]}), flush=True)


DRIVERS: dict[str, Callable[..., None]] = {
    "cache-write": _driver_cache_write,
    "cache-fetch": _driver_cache_fetch,
    "runs-save": _driver_runs_save,
    "fetch-import": _driver_fetch_import,
    "runs-writer": _driver_runs_writer,
    "sweep-writer": _driver_sweep_writer,
}


# ---------------------------------------------------------------------------- checks


def _quiet_cli(*argv: str) -> tuple[int, str]:
    import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue() + err.getvalue()


def check_cache(root: Path, hashes: dict[str, set[str]] | None, must_have: set[str]) -> list[str]:
    """`evbt data verify` passes; files are complete known versions; no symbol that existed is lost."""
    from engine.prices.store import PriceStore

    problems = []
    code, text = _quiet_cli("--cache-dir", str(root), "data", "verify")
    if code != 0:
        problems.append(f"data verify exit {code}: {text.strip()[-300:]}")
    store = PriceStore(root, offline=True)
    present = set(store.symbols())
    problems += [f"lost cache file {s}" for s in sorted(must_have - present)]
    if hashes:
        for sym in present:
            try:
                fp = store.fingerprint(sym)
            except Exception as exc:  # reported, not raised: this is what the trial measures
                problems.append(f"{sym}: unreadable ({exc})")
                continue
            if fp not in hashes.get(sym, set()):
                problems.append(f"{sym}: content is not one of the written versions")
    return problems


def check_runs(root: Path, must_have: set[str]) -> list[str]:
    """Visible run folders complete and readable; runs that existed are kept; no leftovers after listing."""
    import pyarrow.parquet as pq

    from engine import saved_runs as runs

    problems: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs.list_runs(root)  # also recovers what killed saves left behind
    problems += [f"runs ls warning: {w.message}" for w in caught if "skipping run folder" in str(w.message)]
    if not root.is_dir():
        return problems + [f"lost run {r}" for r in sorted(must_have)]
    visible = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    hidden = [p.name for p in root.iterdir() if p.name.startswith((".tmp-", ".old-"))]
    problems += [f"leftover {h}" for h in hidden]
    problems += [f"lost run {r}" for r in sorted(must_have - visible)]
    for name in sorted(visible):
        folder = root / name
        missing = [f for f in runs.RUN_FILES if not (folder / f).is_file()]
        if missing:
            problems.append(f"{name}: incomplete, missing {missing}")
            continue
        try:
            report = runs.load_report(folder)
            config = json.loads((folder / "config.json").read_text())
            json.loads((folder / "manifest.json").read_text())
            pq.read_table(folder / "equity.parquet")
            pq.read_table(folder / "trades.parquet")
        except Exception as exc:  # reported, not raised
            problems.append(f"{name}: unreadable ({type(exc).__name__}: {exc})")
            continue
        if report["run_id"] != name or config.get("run_id") != name:
            problems.append(f"{name}: run id does not match the folder")
    return problems


@dataclass
class SweepState:
    """What a sweep folder holds after a kill."""

    state: str  # absent | empty | partial | complete
    keys: list[str]
    problems: list[str]
    temp_files: int


def sweep_state(runs_dir: Path, expected: set[str], allow_duplicates: bool = False) -> SweepState:
    """Every chunk reads back whole (all columns, the sweep schema), keys are grid points, the JSON files parse;
    the folder is absent, empty (created, nothing saved), partial (manifest and complete chunks) or complete."""
    import pyarrow.parquet as pq

    from engine.sweeps import sweep

    root = runs_dir / "sweeps"
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not folders:
        return SweepState("absent", [], [], 0)
    problems = [f"{len(folders)} sweep folders for one grid"] if len(folders) > 1 else []
    folder = folders[0]
    schema = sweep._schema()
    keys: list[str] = []
    for chunk in sorted((folder / "points").glob("chunk-*.parquet")):
        try:
            table = pq.read_table(chunk)
        except Exception as exc:  # reported, not raised: this is what the trial measures
            problems.append(f"{chunk.name}: unreadable ({type(exc).__name__}: {exc})")
            continue
        if not table.schema.equals(schema):
            problems.append(f"{chunk.name}: unexpected schema")
        keys += table.column("key").to_pylist()
    if not allow_duplicates and len(keys) != len(set(keys)):
        problems.append(f"{len(keys) - len(set(keys))} duplicate point rows")
    problems += [f"row for unknown key {k}" for k in sorted(set(keys) - expected)[:3]]
    docs = {}
    for name in ("manifest.json", "summary.json", "report.json"):
        if (folder / name).is_file():
            try:
                docs[name] = json.loads((folder / name).read_text(encoding="utf-8"))
            except ValueError as exc:
                problems.append(f"{name}: unreadable ({exc})")
    if keys and "manifest.json" not in docs:
        problems.append("point chunks without manifest.json")
    if "summary.json" in docs and set(keys) != expected and docs["summary.json"].get("counts", {}).get(
            "points") == len(expected):
        problems.append("summary.json written before every point was saved")
    temps = len([p for p in folder.rglob(".*.tmp")])
    if set(keys) == expected and {"summary.json", "report.json"} <= set(docs):
        state = "complete"
    elif not keys and "manifest.json" not in docs:
        state = "empty"
    else:
        state = "partial"
    return SweepState(state, keys, problems, temps)


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class SweepReference:
    """An uninterrupted sweep: summary.json without its computed/reused counts, report.json, the point keys."""

    summary: dict
    report: bytes
    keys: set[str]
    seconds: float = 0.0  # wall time of the timed CLI process
    folder_after: float = 0.0  # seconds until the sweep folder's manifest appeared


def _sweep_docs(runs_dir: Path) -> tuple[dict, bytes]:
    [folder] = [p for p in (runs_dir / "sweeps").iterdir() if p.is_dir()]
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    summary.pop("counts", None)
    return summary, (folder / "report.json").read_bytes()


def reference_sweep(cache: Path, runs_dir: Path, runs: int = 2) -> SweepReference:
    """Run SWEEP_ARGV uninterrupted as a CLI process (twice by default: the first builds the exchange schedule
    cache, the second is timed)."""
    import pyarrow.parquet as pq

    env = _env({"EVBT_CACHE_DIR": str(cache), "EVBT_RUNS_DIR": str(runs_dir), **SWEEP_ENV})
    seconds = folder_after = 0.0
    for _ in range(runs):
        shutil.rmtree(runs_dir, ignore_errors=True)
        began = time.monotonic()
        proc = _spawn_cli(SWEEP_ARGV, env)
        folder_after = 0.0
        while proc.poll() is None:
            if not folder_after and list((runs_dir / "sweeps").glob("*/manifest.json")):
                folder_after = time.monotonic() - began
            time.sleep(0.005)
        seconds = time.monotonic() - began
        if proc.returncode != 0:
            raise RuntimeError(f"reference sweep failed with exit {proc.returncode}")
    summary, report = _sweep_docs(runs_dir)
    keys = {k for p in runs_dir.glob("sweeps/*/points/chunk-*.parquet") for k in pq.read_table(p)["key"].to_pylist()}
    if len(keys) != SWEEP_POINTS:
        raise RuntimeError(f"reference sweep stored {len(keys)} points, expected {SWEEP_POINTS}")
    return SweepReference(summary, report, keys, seconds, folder_after or seconds / 2)


def rerun_sweep(cache: Path, runs_dir: Path, done: int, reference: SweepReference,
                allow_duplicates: bool = False) -> list[str]:
    """Run the sweep to completion in ``runs_dir``: exactly the missing points are computed, no temp files are
    left, every point is stored once, and the results equal the uninterrupted reference sweep."""
    with _environ({"EVBT_RUNS_DIR": str(runs_dir), "EVBT_SWEEP_CHUNK_ROWS": SWEEP_ENV["EVBT_SWEEP_CHUNK_ROWS"]}):
        code, text = _quiet_cli("--cache-dir", str(cache), *SWEEP_ARGV)
    if code != 0:
        return [f"rerun exit {code}: {text.strip()[-300:]}"]
    problems = []
    counts = json.loads(text[text.index("{"):])["counts"]
    if counts["computed"] != SWEEP_POINTS - done or counts["reused"] != done:
        problems.append(f"rerun computed {counts['computed']} and reused {counts['reused']} with {done} of "
                        f"{SWEEP_POINTS} points saved")
    after = sweep_state(runs_dir, reference.keys, allow_duplicates)
    problems += [f"after rerun: {p}" for p in after.problems]
    if after.state != "complete" or len(set(after.keys)) != SWEEP_POINTS:
        problems.append(f"after rerun: folder {after.state} with {len(set(after.keys))} distinct points")
    if after.temp_files:
        problems.append(f"after rerun: {after.temp_files} temp files left in the sweep folder")
    summary, report = _sweep_docs(runs_dir)
    if summary != reference.summary:
        problems.append("summary differs from the uninterrupted sweep")
    if report != reference.report:
        problems.append("best-point report.json differs from the uninterrupted sweep")
    return problems


# ---------------------------------------------------------------------------- trials


@dataclass
class TrialStats:
    kind: str
    what: str
    trials: int = 0
    killed_while_running: int = 0
    finished_before_kill: int = 0
    held: int = 0
    orphan_temp_files: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    states: dict[str, int] = field(default_factory=dict)  # cli-sweep: folder state after the kill


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "EVBT_OFFLINE": ""}
    env.pop("EVBT_TEST_WRITE_DELAY", None)
    env.update(extra or {})
    return env


def _spawn_driver(name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--driver", name, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env or _env(), cwd=REPO,
                            text=True)


def _spawn_cli(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env, cwd=REPO)


def _kill(proc: subprocess.Popen, stats: TrialStats) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        stats.killed_while_running += 1
    else:
        stats.finished_before_kill += 1
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _wait_ready(proc: subprocess.Popen, timeout: float = 60.0) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    line = proc.stdout.readline()
    if line.strip() != "ready" or time.monotonic() > deadline:
        raise RuntimeError(f"driver did not start (exit {proc.poll()})")


def _orphans(root: Path) -> int:
    return len(list(root.glob(".*.tmp"))) if root.is_dir() else 0


def _prepare_sample(cache: Path) -> None:
    from engine.prices.store import PriceStore
    from engine.prices.synthetic import write_sample

    write_sample(PriceStore(cache / "sample"))


def _calibrate(argv: list[str], env: dict[str, str]) -> float:
    began = time.monotonic()
    code = _spawn_cli(argv, env).wait()
    if code != 0:
        raise RuntimeError(f"calibration run failed with exit {code}: {argv}")
    return time.monotonic() - began


def sweep_crash_trials(trials: int, seed: int, work: Path) -> TrialStats:
    """SIGKILL `evbt sweep` at random moments (85% of them after its folder appeared, i.e. while it writes
    chunks, the summary or the report); each trial starts from an empty runs folder or resumes the previous
    trial's leftovers (half each). After the kill the folder is checked, then a copy is rerun to completion."""
    rng = random.Random(seed)
    began = time.monotonic()
    base = work / "cli-sweep"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    cache, runs_dir, verify = base / "cache", base / "runs", base / "verify"
    _prepare_sample(cache)
    reference = reference_sweep(cache, base / "reference")
    stats = TrialStats("cli-sweep", f"`evbt sweep` of {SWEEP_POINTS} points (4-row chunks, 30 ms write delay), "
                       "killed mostly while writing chunks; fresh or resuming the last kill's folder")
    env = _env({"EVBT_CACHE_DIR": str(cache), "EVBT_RUNS_DIR": str(runs_dir), **SWEEP_ENV})
    for trial in range(trials):
        stats.trials += 1
        if trial == 0 or rng.random() < 0.5:
            shutil.rmtree(runs_dir, ignore_errors=True)
        proc = _spawn_cli(SWEEP_ARGV, env)
        started = time.monotonic()
        if rng.random() < 0.15:
            time.sleep(rng.uniform(0.2, reference.folder_after))
        else:
            while proc.poll() is None and not list((runs_dir / "sweeps").glob("*/manifest.json")) and \
                    time.monotonic() - started < 60:
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, max(reference.seconds - reference.folder_after, 0.1) * 1.05))
        _kill(proc, stats)
        state = sweep_state(runs_dir, reference.keys)
        stats.states[state.state] = stats.states.get(state.state, 0) + 1
        stats.orphan_temp_files = max(stats.orphan_temp_files, state.temp_files)
        problems = list(state.problems)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from engine import saved_runs as runs

            runs.list_runs(runs_dir)
        problems += [f"runs ls warning: {w.message}" for w in caught]
        problems += check_cache(cache / "sample", None, set())
        if not problems:
            shutil.rmtree(verify, ignore_errors=True)
            if runs_dir.is_dir():
                shutil.copytree(runs_dir, verify)
            problems += rerun_sweep(cache, verify, len(set(state.keys)), reference)
        if problems:
            stats.failures.append(f"trial {trial} ({state.state}, {len(state.keys)} rows): " + "; ".join(problems))
        else:
            stats.held += 1
    stats.seconds = time.monotonic() - began
    return stats


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


# ---------------------------------------------------------------------------- concurrency


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


# ---------------------------------------------------------------------------- disk full / read-only (tmpfs)


def _mount_tmpfs(path: Path, size: str, read_only: bool = False) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    return subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True,
                          check=False).returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True, check=False)


def disk_trials(work: Path) -> list[tuple[str, str, str]]:
    """Real full/read-only file systems (tiny tmpfs mounts; needs root). Returns (case, result, held?)."""
    base = work / "disk"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    csv = base / "BABA.csv"
    write_csv(csv, _variant("BABA", 0))
    sample = base / "cache"
    _prepare_sample(sample)
    mnt = base / "mnt"
    results: list[tuple[str, str, str]] = []
    cases = [
        ("import into a full cache (32 KB tmpfs)", "32k", False, "import"),
        ("import into a read-only cache folder", "1m", True, "import"),
        ("save a run into a full runs folder (12 KB tmpfs)", "12k", False, "run"),
        ("save a run into a read-only runs folder", "1m", True, "run"),
    ]
    for name, size, ro, what in cases:
        if not _mount_tmpfs(mnt, size, ro):
            results.append((name, "skipped: cannot mount a tmpfs here (needs root)", "n/a"))
            continue
        try:
            if what == "import":
                proc = subprocess.run([sys.executable, "-m", "cli", "--cache-dir", str(mnt / "cache"), "data",
                                       "import", str(csv)], capture_output=True, text=True, env=_env(), cwd=REPO,
                                      check=False)
                leftovers = [p.name for p in (mnt / "cache").glob("*")] if (mnt / "cache").is_dir() else []
                partial = [n for n in leftovers if n != ".locks"]
            else:
                proc = subprocess.run([sys.executable, "-m", "cli", "--cache-dir", str(sample), "--sample", "run",
                                       "reassurance"], capture_output=True, text=True,
                                      env=_env({"EVBT_RUNS_DIR": str(mnt / "runs")}), cwd=REPO, check=False)
                partial = [p.name for p in (mnt / "runs").iterdir()] if (mnt / "runs").is_dir() else []
            message = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
            ok = proc.returncode == 1 and message.startswith("error:") and "internal error" not in message \
                and "Traceback" not in proc.stderr and not partial
            results.append((name, f"exit {proc.returncode}: `{message[:160]}`; left: {partial or 'nothing'}",
                            "held" if ok else "FAILED"))
        finally:
            _umount(mnt)
    return results


# ---------------------------------------------------------------------------- report


def _catalogue_counts() -> dict[str, int]:
    sys.path.insert(0, str(REPO / "tests"))
    out: dict[str, int] = {}
    try:
        import test_bad_input_catalogue as cat
        import test_reliability_datasource as ds

        for case in cat.CASES:
            out[f"catalogue:{case.area}"] = out.get(f"catalogue:{case.area}", 0) + 1
        out["tolerated"] = len(cat.TOLERATED)
        out["faults"] = len(ds.FAULTS)
    except Exception:  # the report still gets written without the counts
        pass
    return out


def render(stats: list[TrialStats], conc: list[ConcurrencyStats], disk: list[tuple[str, str, str]],
           counts: dict[str, int], seed: int) -> str:
    total = sum(s.trials for s in stats)
    held = sum(s.held for s in stats)
    killed = sum(s.killed_while_running for s in stats)
    lines = [
        "# RELIABILITY",
        "",
        f"Generated by `python scripts/reliability.py` (seed {seed}) on "
        f"{dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs. Refresh with the same command. The test suite runs the same trials with a few "
        "iterations (`tests/test_reliability_crash.py`).",
        "",
        "## Crashes (SIGKILL at random points)",
        "",
        f"**{total} trials, {killed} killed while running, {held} held, {total - held} failed.** A trial holds "
        "when, after the kill, `evbt data verify` exits 0, every cache file is a complete version that was "
        "written (content hash of one known version, or a valid hash-checked merge for fetches), no cache file or "
        "saved run that existed before the trial is lost, every visible run folder has all five files and reads "
        "back, and listing the runs folder leaves no `.tmp-*`/`.old-*` leftovers (recovery). A sweep trial holds "
        "when every chunk parquet file reads back whole with the sweep schema, no point is stored twice, the "
        "sweep folder is absent, empty, partial (resumable) or complete, and a rerun (on a copy) computes exactly "
        "the missing points, leaves no temp file, and writes a summary and best-point report identical to an "
        "uninterrupted sweep's.",
        "",
        "| kind | what was killed | trials | killed while running | finished first | held | failed | "
        "max orphan temp files | seconds |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in stats:
        lines.append(f"| {s.kind} | {s.what} | {s.trials} | {s.killed_while_running} | {s.finished_before_kill} | "
                     f"{s.held} | {len(s.failures)} | {s.orphan_temp_files} | {s.seconds:.0f} |")
    failures = [f"- {s.kind} {f}" for s in stats for f in s.failures[:5]]
    lines += ["", *(["Failures:", "", *failures, ""] if failures else ["No failures.", ""])]
    for s in stats:
        if s.states:
            lines += [f"Sweep folder after the kill ({s.kind}): "
                      + ", ".join(f"{s.states.get(k, 0)} {k}" for k in ("absent", "empty", "partial", "complete"))
                      + " (empty: folder created, nothing saved yet; partial: manifest and complete chunks, "
                      "resumable). Every one was rerun to completion and compared with an uninterrupted sweep.", ""]
    lines += [
        "Orphan temp files: a writer killed between writing its temp file and `os.replace` leaves a hidden "
        "`.<symbol>.parquet.<pid>.tmp` next to the cache file; it is never read or listed, and the old file is "
        "intact. The column shows the most seen at once (for sweeps: `.chunk-*.parquet.<pid>.tmp` and "
        "`.summary.json.<pid>.tmp`-style files in the sweep folder, removed by the next sweep of that folder).",
        "",
        "## Concurrency",
        "",
        "| scenario | processes | exit codes | problems | seconds |",
        "|---|---:|---|---|---:|",
    ]
    for c in conc:
        lines.append(f"| {c.name}: {c.detail} | {c.processes} | {c.exit_codes} | "
                     f"{'; '.join(c.problems) or c.ok} | "
                     f"{c.seconds:.0f} |")
    lines += ["", "## Disk full and read-only folders (real tiny tmpfs mounts)", "",
              "| case | result | held |", "|---|---|---|"]
    lines += [f"| {name} | {result} | {ok} |" for name, result, ok in disk]
    lines += [
        "",
        "The test suite simulates the same faults without mounts (`os.write`/`os.fsync` raising ENOSPC or EROFS): "
        "`tests/test_reliability_disk.py`.",
        "",
        "## Found and fixed while writing these tests",
        "",
        *[f"- {item}" for item in FOUND],
        "",
        "## Tests in the suite (counts)",
        "",
        f"- Data-source faults (`tests/test_reliability_datasource.py`): {counts.get('faults', '?')} faults "
        "(network errors, timeouts, a hang, rate limits, empty/None/partial frames, new column shapes, NaN and zero "
        "rows, yfinance bugs), each with and without a cache, through the CLI, `evbt data verify` after each.",
        f"- Bad input catalogue (`tests/test_bad_input_catalogue.py`): "
        f"{sum(v for k, v in counts.items() if k.startswith('catalogue:'))} cases "
        f"(CLI {counts.get('catalogue:cli', '?')}, TOML config {counts.get('catalogue:config', '?')}, "
        f"event files {counts.get('catalogue:events', '?')}, CSV imports {counts.get('catalogue:csv', '?')}, "
        f"sweep grid specs and options {counts.get('catalogue:grid', '?')}) "
        f"plus {counts.get('tolerated', '?')} odd-but-valid inputs that must be accepted. Each: exit 2, a message "
        "naming the problem and the place, no traceback, cache and runs byte-identical (no sweep folder, no "
        "heatmap file).",
        "- Property-based tests (`tests/test_properties.py`, hypothesis): accounting identities, no lookahead, "
        "determinism, fast path = backtrader when `engine/execution/fast_driver.py` is present.",
        "- Fuzzing (`tests/test_fuzz_parsers.py`, hypothesis): CSV importer and event-file parser never raise "
        "anything but ConfigError and never write on error.",
        "- Security (`tests/test_reliability_security.py`): path-like symbols rejected everywhere, no pickle/eval/"
        "unsafe yaml in engine/ and cli.py, files written only under the chosen folders.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=240, help="total crash trials, split across the kinds")
    parser.add_argument("--seed", type=int, default=20260316)
    parser.add_argument("--out", type=Path, default=None, help="report path (default RELIABILITY.md when "
                                                                "--trials >= 200)")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp folder)")
    parser.add_argument("--driver", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.driver:
        DRIVERS[args.driver[0]](*args.driver[1:])
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="evbt-reliability-"))
    per_kind = max(1, -(-args.trials // len(KINDS)))
    stats = []
    for i, kind in enumerate(KINDS):
        s = crash_trials(kind, per_kind, args.seed + i, work)
        print(f"{kind}: {s.held}/{s.trials} held ({s.killed_while_running} killed while running) in "
              f"{s.seconds:.0f} s", flush=True)
        for f in s.failures[:3]:
            print(f"  {f}", flush=True)
        stats.append(s)
    conc = [concurrent_fetch_import(work), concurrent_runs(work), concurrent_sweeps(work)]
    for c in conc:
        print(f"{c.name}: exit codes {c.exit_codes}, problems {c.problems or 'none'}", flush=True)
    disk = disk_trials(work)
    for row in disk:
        print(" | ".join(row), flush=True)
    out = args.out or (REPO / "RELIABILITY.md" if args.trials >= 200 else None)
    if out is not None:
        out.write_text(render(stats, conc, disk, _catalogue_counts(), args.seed))
        print(f"wrote {out}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    failed = sum(len(s.failures) for s in stats) + sum(bool(c.problems) for c in conc) + \
        sum(r[2] == "FAILED" for r in disk)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
