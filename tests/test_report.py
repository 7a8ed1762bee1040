"""report.json building, canonical dumps, text and CSV renderings (hand-built RunResult, no backtrader)."""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd

from engine.analysis.metrics import compute_metrics
from engine.execution.records import OrderRecord, RunResult, TradeRecord
from engine.reporting.report import (
    SCHEMA_VERSION,
    build_report,
    dumps_report,
    render_text,
    trades_csv,
    trades_to_frame,
)

DATES = pd.to_datetime(["2022-03-14", "2022-03-15", "2022-03-16", "2022-03-17", "2022-03-18"])


def make_trade(tid: int, symbol: str, event_id: str, pnl: float) -> TradeRecord:
    return TradeRecord(
        trade_id=tid, symbol=symbol, side="long", event_id=event_id, event_type="official_reassurance",
        entry_date="2022-03-16", entry_fill="open", entry_price=80.0, exit_date="2022-03-18",
        exit_fill="close", exit_price=88.0, size=10, fx_entry=1.0, fx_exit=1.0, entry_fees=1.0,
        exit_fees=1.0, fees=2.0, entry_value=800.0, pnl=pnl, ret=pnl / 800.0, exit_reason="hold",
        holding_sessions=2, benchmark_return=0.05,
    )


def make_result(trades: list[TradeRecord] | None = None) -> RunResult:
    equity = pd.Series([1000.0, 1000.0, 1010.0, 1050.0, 1089.0], index=DATES)
    return RunResult(
        equity=equity,
        cash=pd.Series([1000.0, 1000.0, 200.0, 200.0, 1089.0], index=DATES),
        exposure=pd.Series([0.0, 0.0, 0.8, 0.8, 0.0], index=DATES),
        trades=[make_trade(1, "BABA", "2022-03-16-fsdc", 78.0)] if trades is None else trades,
        orders=[
            OrderRecord("2022-03-16", "BABA", "buy", 10, "filled", "", "2022-03-16-fsdc", 80.0, 1.0),
            OrderRecord("2022-03-16", "JD", "buy", 10, "refused", "insufficient cash", "2022-03-16-fsdc"),
        ],
        benchmark=pd.Series([20.0, 20.0, 21.0, 21.0, 21.0], index=DATES),
        fx_source="none needed",
        warnings=["JD: 1 stale bar skipped"],
    )


def make_report(source: str = "sample", params: dict[str, Any] | None = None) -> dict[str, Any]:
    result = make_result()
    metrics = compute_metrics(result.equity, result.trades, result.exposure, result.benchmark, 1000.0)
    data = {
        "JD": {"source": source, "first_date": "2022-01-03", "last_date": "2022-03-18", "rows": 52,
               "content_hash": "b" * 64, "fetched_at": "2026-01-01T00:00:00Z"},
        "BABA": {"source": "yfinance", "first_date": "2022-01-03", "last_date": "2022-03-18", "rows": 52,
                 "fingerprint": "a" * 64},
    }
    return build_report(
        run_id="reassurance-0123456789ab",
        strategy="reassurance",
        params=params if params is not None else {"hold": 2, "stop": None},
        config={"symbols": ["BABA", "JD"], "benchmark": "KWEB", "cash": 1000.0, "start": "2022-03-14"},
        result=result,
        metrics=metrics,
        data=data,
        events={"calendar_hash": "c" * 64, "count": 1},
    )


def test_report_has_documented_keys() -> None:
    report = make_report()
    for key in ("schema_version", "run_id", "strategy", "params", "config", "period", "universe", "benchmark",
                "metrics", "trades", "orders", "data", "events", "fx_source", "warnings"):
        assert key in report
    assert report["schema_version"] == SCHEMA_VERSION
    assert report["period"] == {"start": "2022-03-14", "end": "2022-03-18", "bars": 5}
    assert report["universe"] == ["BABA", "JD"]
    assert report["trades"][0]["event_id"] == "2022-03-16-fsdc"
    assert [o["status"] for o in report["orders"]] == ["filled", "refused"]
    assert report["data"]["symbols"]["JD"]["fingerprint"] == "b" * 64  # content_hash accepted
    assert "fetched_at" not in report["data"]["symbols"]["JD"]  # volatile provenance stays out
    assert report["metrics"]["total_return"] == 0.089


def test_synthetic_flag() -> None:
    assert make_report("sample")["data"]["synthetic"] is True
    assert make_report("csv")["data"]["synthetic"] is False


def test_dumps_is_deterministic_and_canonical() -> None:
    a = dumps_report(make_report(params={"hold": 2, "stop": None}))
    b = dumps_report(make_report(params={"stop": None, "hold": 2}))  # other insertion order
    assert a == b
    assert a.endswith("\n")
    assert json.loads(a)["run_id"] == "reassurance-0123456789ab"


def test_dumps_never_writes_nan() -> None:
    report = make_report(params={"x": float("nan"), "y": float("inf"), "when": pd.Timestamp("2022-01-03")})
    doc = json.loads(dumps_report(report))
    assert doc["params"] == {"x": None, "y": None, "when": "2022-01-03"}


def test_render_text_key_lines() -> None:
    text = render_text(make_report())
    assert "SYNTHETIC DATA" in text
    assert "Run reassurance-0123456789ab: reassurance  2022-03-14 -> 2022-03-18 (5 bars)" in text
    assert "universe: BABA, JD" in text
    assert "Params: hold=2, stop=None" in text
    lines = text.splitlines()
    assert any(line.startswith("Total return") and line.endswith("8.90%") for line in lines)
    assert any(line.startswith("Max drawdown ") and line.endswith("0.00%") for line in lines)
    trade_line = next(line for line in lines if "2022-03-16-fsdc" in line and "BABA" in line)
    assert "official_reassurance" in trade_line and "9.75%" in trade_line and "hold" in trade_line
    assert "Refused/skipped orders (1)" in text
    assert "insufficient cash" in text
    assert "JD: 1 stale bar skipped" in text


def test_render_text_real_data_has_no_banner() -> None:
    assert "SYNTHETIC" not in render_text(make_report("yfinance"))


def test_render_text_without_trades() -> None:
    report = make_report()
    report["trades"] = []
    assert "(no trades)" in render_text(report)


def test_trades_frame_and_csv() -> None:
    report = make_report()
    frame = trades_to_frame(make_result().trades)
    assert list(frame.columns)[:3] == ["trade_id", "symbol", "side"]
    pd.testing.assert_frame_equal(frame, trades_to_frame(report["trades"]))
    back = pd.read_csv(io.StringIO(trades_csv(report)))
    assert back.loc[0, "pnl"] == 78.0 and back.loc[0, "event_id"] == "2022-03-16-fsdc"
    report["trades"] = []
    assert trades_csv(report).startswith("trade_id,symbol,side,event_id")
    assert trades_csv(report).count("\n") == 1
