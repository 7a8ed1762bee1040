"""Sweeps over listings in other currencies convert like `evbt run`: London pence become pounds, every FX pair
the universe needs (JPY=X, GBPUSD=X, HKD=X) is loaded for the run's base currency, each point's key is the run id
of the same `evbt run` (FX fingerprints included) and its metrics and kept report are the run's."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from tests.test_fx import END, PRICES, START, mixed_cache  # noqa: F401  (the fixture: Tokyo, London, HK + FX)

Run = Callable[..., tuple[int, str, str]]
SYMBOLS = ",".join(PRICES)
COMMON = ("--symbols", SYMBOLS, "--replace-events", "--start", START, "--end", END, "--benchmark", "none")


def _run(run_cli: Run, events: Path, hold: int, *extra: str) -> dict:
    code, out, err = run_cli("--offline", "run", "event_hold", "-p", f"hold={hold}", "--events", str(events),
                             *COMMON, "--json", "--no-save", *extra)
    assert code == 0, err
    return json.loads(out)


def _sweep(run_cli: Run, events: Path, *extra: str) -> dict:
    code, out, err = run_cli("--offline", "sweep", "event_hold", "-g", "hold=3,5", "--events", str(events), *COMMON,
                             "--workers", "1", "--json", "--quiet", "--metric", "final_value", *extra)
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("extra", [(), ("--base-currency", "JPY", "--cash", "130000000")], ids=["usd", "jpy"])
def test_sweep_of_tokyo_london_hk_lines_equals_the_runs(
        run_cli: Run, mixed_cache: tuple[Path, dict[str, pd.Series]], extra: tuple[str, ...]) -> None:  # noqa: F811
    events, _quotes = mixed_cache
    summary = _sweep(run_cli, events, *extra)
    by_hold = {entry["values"]["hold"]: entry for entry in summary["ranking"]}
    assert sorted(by_hold) == [3, 5]
    for hold, entry in by_hold.items():
        report = _run(run_cli, events, hold, *extra)
        assert entry["key"] == report["run_id"]  # same data fingerprints (FX pairs included) and configuration
        assert report["metrics"]["trade_count"] == 3
        for name in ("final_value", "total_return", "sharpe", "max_drawdown"):
            assert entry["metrics"][name] == pytest.approx(report["metrics"][name], rel=1e-9, abs=1e-12), name
    best = json.loads((Path(summary["saved"]) / "report.json").read_text(encoding="utf-8"))
    report = _run(run_cli, events, best["params"]["hold"], *extra)
    assert best["fx_source"] == report["fx_source"]
    assert "GBPUSD=X series" in best["fx_source"] and "JPY=X series" in best["fx_source"]
    keys = ("symbol", "entry_date", "entry_price", "fx_entry", "size", "entry_fees", "exit_date", "pnl")
    assert [{k: t[k] for k in keys} for t in best["trades"]] == [{k: t[k] for k in keys} for t in report["trades"]]
    barc = next(t for t in best["trades"] if t["symbol"] == "BARC.L")
    assert barc["entry_price"] == pytest.approx(1.50)  # 150 pence, in pounds
