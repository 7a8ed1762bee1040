"""Shared pieces of the reliability trials: constants, data builders, process helpers, cache/runs checks."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "reliability.py"  # drivers run as `reliability.py --driver NAME`
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
    return subprocess.Popen([sys.executable, str(SCRIPT), "--driver", name, *args],
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


def forget_schedules() -> None:
    """Drop schedules held in this process so the next run reads the files (as a new process would)."""
    from engine.api import process_calendars
    from engine.market.calendars import current

    process_calendars().clear()  # what commands built (shared by every Settings of this process)
    current().clear()  # what calls outside a command built
