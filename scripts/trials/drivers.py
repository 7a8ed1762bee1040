"""Child processes of the trials (run as `python scripts/reliability.py --driver NAME ARGS`)."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from scripts.trials.common import IMPORT_SYMBOLS, REPO, SWEEP_ARGV, SYMBOLS, _quiet_cli, _variant, make_frame


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


def _driver_flip_import(cache: str, v0: str, v1: str) -> None:
    from scripts.trials.hostile_data import flip_import_driver

    flip_import_driver(cache, v0, v1)


DRIVERS: dict[str, Callable[..., None]] = {
    "flip-import": _driver_flip_import,
    "cache-write": _driver_cache_write,
    "cache-fetch": _driver_cache_fetch,
    "runs-save": _driver_runs_save,
    "fetch-import": _driver_fetch_import,
    "runs-writer": _driver_runs_writer,
    "sweep-writer": _driver_sweep_writer,
}
