"""compare_reports / render_compare_text on hand-built report dicts."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from engine.analysis.compare import compare_reports
from engine.analysis.metrics import compute_metrics
from engine.errors import ConfigError
from engine.execution.records import RunResult, TradeRecord
from engine.reporting.compare_text import render_compare_text
from engine.reporting.report import build_report


def trade(event_id: str, symbol: str, pnl: float, entry_value: float = 1000.0) -> dict[str, Any]:
    return {"event_id": event_id, "symbol": symbol, "pnl": pnl, "entry_value": entry_value}


def report(run_id: str, params: dict[str, Any], metrics: dict[str, Any], trades: list[dict[str, Any]],
           synthetic: bool = False, config: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "schema_version": 1, "run_id": run_id, "strategy": "reassurance", "params": params,
        "config": config or {"cash": 100000.0, "costs": {"commission": 0.001}},
        "period": {"start": "2022-01-03", "end": "2022-12-30", "bars": 250},
        "metrics": metrics, "trades": trades, "data": {"synthetic": synthetic},
    }


A = report("run-a", {"hold": 5, "stop": 0.1},
           {"total_return": 0.10, "sharpe": 1.0, "trade_count": 3, "profit_factor": None},
           [trade("e1", "BABA", 50.0), trade("e1", "JD", -20.0), trade("e2", "BABA", 30.0)])
B = report("run-b", {"hold": 10, "stop": 0.1},
           {"total_return": 0.15, "sharpe": 0.5, "trade_count": 3, "profit_factor": 2.0},
           [trade("e1", "BABA", 80.0), trade("e2", "BABA", 30.0), trade("e3", "PDD", 10.0),
            trade("e3", "PDD", 5.0)],
           config={"cash": 100000.0, "costs": {"commission": 0.002}})


def test_metric_deltas_against_first() -> None:
    comp = compare_reports([A, B])
    rows = {r["name"]: r for r in comp["metrics"]}
    assert rows["total_return"]["values"] == [0.10, 0.15]
    assert rows["total_return"]["deltas"][0] is None
    assert rows["total_return"]["deltas"][1] == pytest.approx(0.05)
    assert rows["sharpe"]["deltas"][1] == pytest.approx(-0.5)
    assert rows["trade_count"]["deltas"] == [None, 0]
    assert rows["profit_factor"]["deltas"] == [None, None]  # undefined in the first run
    assert [r["name"] for r in comp["metrics"]][:2] == ["total_return", "sharpe"]  # schema order


def test_only_differing_params_and_config() -> None:
    comp = compare_reports([A, B])
    assert comp["params"] == {"hold": [5, 10]}
    assert comp["config"] == {"costs.commission": [0.001, 0.002]}
    c = report("run-c", {"hold": 5}, {}, [])
    assert compare_reports([A, c])["params"] == {"stop": [0.1, "<unset>"]}


def test_per_event_trade_differences() -> None:
    comp = compare_reports([A, B])
    only = {(t["event_id"], t["symbol"]): t for t in comp["trades"]["only_some"]}
    assert set(only) == {("e1", "JD"), ("e3", "PDD")}
    assert only[("e1", "JD")]["present"] == [True, False]
    assert only[("e1", "JD")]["pnl"] == [-20.0, None]
    assert only[("e3", "PDD")]["count"] == [0, 2]
    assert only[("e3", "PDD")]["pnl"] == [None, 15.0]  # two trades on one key are summed
    common = {(t["event_id"], t["symbol"]): t for t in comp["trades"]["common"]}
    assert common[("e1", "BABA")]["pnl_delta"] == [None, 30.0]
    assert common[("e1", "BABA")]["ret"] == [0.05, 0.08]
    assert common[("e2", "BABA")]["pnl_delta"] == [None, 0.0]


def test_three_runs() -> None:
    c = report("run-c", {"hold": 20, "stop": 0.1}, {"total_return": -0.05, "sharpe": None}, [])
    comp = compare_reports([A, B, c])
    rows = {r["name"]: r for r in comp["metrics"]}
    assert rows["total_return"]["deltas"][2] == pytest.approx(-0.15)
    assert rows["sharpe"]["deltas"][2] is None
    assert comp["params"] == {"hold": [5, 10, 20]}
    assert comp["trades"]["common"] == []  # run c made no trades
    text = render_compare_text(comp)
    assert "[3] run-c" in text and "d[3]" in text


def test_needs_two_reports() -> None:
    with pytest.raises(ConfigError, match="at least two"):
        compare_reports([A])


def test_render_compare_text() -> None:
    synthetic = report("run-s", {"hold": 5, "stop": 0.1}, {}, [], True)
    text = render_compare_text(compare_reports([A, synthetic, B]))
    assert "Comparing 3 runs (deltas against [1])" in text
    assert "[1] run-a  reassurance  2022-01-03 -> 2022-12-30" in text
    assert "[2] run-s  reassurance  2022-01-03 -> 2022-12-30  SYNTHETIC DATA" in text
    text = render_compare_text(compare_reports([A, B]))
    lines = text.splitlines()
    total = next(line for line in lines if line.startswith("Total return"))
    assert total.split()[-3:] == ["10.00%", "15.00%", "+5.00pp"]
    assert "Parameters that differ" in text and "Config that differs" in text
    assert "Trades made by some runs only (2" in text
    assert "Common trades: 2, with a different PnL: 1" in text
    assert any("e1" in line and "BABA" in line and "+30.00" in line for line in lines)


def test_compare_built_reports_of_identical_runs() -> None:
    idx = pd.to_datetime(["2022-01-03", "2022-01-04"])
    t = TradeRecord(1, "BABA", "long", "e1", "other", "2022-01-03", "open", 10.0, "2022-01-04", "close", 11.0,
                    10, 1.0, 1.0, 0.1, 0.1, 0.2, 100.0, 9.8, 0.098, "hold", 1)
    result = RunResult(pd.Series([1000.0, 1009.8], index=idx), pd.Series([900.0, 1009.8], index=idx),
                       pd.Series([0.1, 0.0], index=idx), [t], [], None, "none needed")
    reports = [
        build_report(run_id=f"r{i}", strategy="s", params={"hold": 1}, config={}, result=result,
                     metrics=compute_metrics(result.equity, result.trades), data={}, events={})
        for i in (1, 2)
    ]
    comp = compare_reports(reports)
    assert comp["params"] == {} and comp["config"] == {} and comp["trades"]["only_some"] == []
    assert all(d in (None, 0, 0.0) for row in comp["metrics"] for d in row["deltas"])
    assert "with a different PnL: 0" in render_compare_text(comp)


def test_runs_in_different_base_currencies_are_a_warning() -> None:
    hkd = report("run-h", {"hold": 5, "stop": 0.1}, {"final_value": 7_800_000.0}, [],
                 config={"cash": 7_800_000.0, "costs": {"commission": 0.001}, "base_currency": "HKD"})
    usd = report("run-u", {"hold": 5, "stop": 0.1}, {"final_value": 1_000_000.0}, [],
                 config={"cash": 1_000_000.0, "costs": {"commission": 0.001}, "base_currency": "USD"})
    comp = compare_reports([A, hkd, usd])  # A has no base_currency: a report of USD runs
    assert [r["base_currency"] for r in comp["runs"]] == ["USD", "HKD", "USD"]
    assert len(comp["warnings"]) == 1 and "different base currencies ([1] USD, [2] HKD, [3] USD)" in comp["warnings"][0]
    text = render_compare_text(comp).splitlines()
    assert text[4].startswith("warning: the runs are in different base currencies")  # right under the legend
    assert compare_reports([A, usd])["warnings"] == []
    from engine.reporting.html_report import compare_document

    html = compare_document(comp, {})
    assert "Warning: the runs are in different base currencies ([1] USD, [2] HKD, [3] USD)" in html
