"""Run report: a stable, deterministic JSON document plus its text and CSV renderings.

The schema is documented in docs/report-schema.md. ``build_report`` only reshapes its inputs (no clock,
no environment), so the same inputs always give a byte-identical ``dumps_report`` output; the creation
time and package versions belong to the run manifest (engine/saved_runs/manifest.py), not to the report.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import pandas as pd

from engine.analysis.metrics import Metrics
from engine.execution.records import OrderRecord, RunResult, TradeRecord
from engine.reporting.formats import num, pct
from engine.reporting.json_text import (
    Records,
    canonical_json,
    dataclass_jsonable,
    iso,
    to_jsonable,
    with_key,
)
from engine.reporting.models import (
    DataSection,
    MetricsDoc,
    OrderDoc,
    Period,
    Report,
    SymbolData,
    TradeDoc,
    is_synthetic,
)

SCHEMA_VERSION = 1
SYNTHETIC_SOURCES = frozenset({"sample"})
DATA_KEYS = ("source", "first_date", "last_date", "rows", "fingerprint", "currency", "exchange", "adjustment")
TRADE_COLUMNS = tuple(f.name for f in dataclasses.fields(TradeRecord))

UNIVERSE_SHOWN = 12  # symbols named in a text report's header

# metric name -> (label, kind); kind: pct (fraction shown as percent), money, ratio, int, bars
METRIC_FORMATS: dict[str, tuple[str, str]] = {
    "final_value": ("Final value", "money"),
    "pnl": ("PnL", "money"),
    "total_return": ("Total return", "pct"),
    "cagr": ("CAGR", "pct"),
    "annual_volatility": ("Annual volatility", "pct"),
    "sharpe": ("Sharpe", "ratio"),
    "sortino": ("Sortino", "ratio"),
    "max_drawdown": ("Max drawdown", "pct"),
    "max_drawdown_duration": ("Max drawdown duration", "bars"),
    "calmar": ("Calmar", "ratio"),
    "trade_count": ("Closed trades", "int"),
    "open_trade_count": ("Open trades", "int"),
    "win_rate": ("Win rate", "pct"),
    "avg_win": ("Average win", "pct"),
    "avg_loss": ("Average loss", "pct"),
    "profit_factor": ("Profit factor", "ratio"),
    "exposure": ("Exposure", "pct"),
    "benchmark_return": ("Benchmark return", "pct"),
    "excess_return": ("Return minus benchmark", "pct"),
    "alpha": ("Alpha (annual)", "pct"),
    "beta": ("Beta", "ratio"),
}


# ---------------------------------------------------------------- JSON text


def dumps_report(report: Mapping[str, Any]) -> str:
    """Canonical JSON text: sorted keys, 2-space indent, no NaN, trailing newline (engine/reporting/json_text.py:
    the bytes of ``json.dumps(to_jsonable(report), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)``).
    """
    return canonical_json(report, end="\n")


# ---------------------------------------------------------------- building


def _period(equity: pd.Series) -> Period:
    if len(equity) == 0:
        return {"start": None, "end": None, "bars": 0}
    index = equity.index.sort_values()
    return {"start": iso(index[0]), "end": iso(index[-1]), "bars": len(index)}


def _data_section(data: Mapping[str, Any]) -> DataSection:
    symbols: dict[str, SymbolData] = {}
    for symbol in sorted(data):
        meta = dict(data[symbol] or {})
        if "fingerprint" not in meta and "content_hash" in meta:
            meta["fingerprint"] = meta["content_hash"]
        symbols[str(symbol)] = cast(SymbolData, {key: to_jsonable(meta.get(key)) for key in DATA_KEYS})
    synthetic = any(entry["source"] in SYNTHETIC_SOURCES for entry in symbols.values())
    return {"synthetic": synthetic, "symbols": symbols}


def _universe(config: Mapping[str, Any], data: Mapping[str, Any]) -> list[str]:
    for key in ("symbols", "universe"):
        if config.get(key):
            return [str(s) for s in config[key]]
    benchmark = config.get("benchmark")
    return sorted(str(s) for s in data if s != benchmark)


def trade_dict(trade: TradeRecord) -> TradeDoc:
    """One TradeRecord as a JSON-ready dict (field names as in the dataclass)."""
    return cast(TradeDoc, dataclass_jsonable(trade))


def order_dict(order: OrderRecord) -> OrderDoc:
    """One OrderRecord as a JSON-ready dict."""
    return cast(OrderDoc, dataclass_jsonable(order))


def with_sweep_section(text: str, section: Mapping[str, Any]) -> str | None:
    """The report text ``text`` (``dumps_report`` of a report) with a ``sweep`` section added, as
    ``dumps_report({**report, "sweep": section})`` writes it; None when the text is not such a report."""
    return with_key(text, "sweep", section, end="\n")


def build_report(
    *,
    run_id: str,
    strategy: str,
    params: dict[str, Any],
    config: dict[str, Any],
    result: RunResult,
    metrics: Metrics,
    data: dict[str, Any],
    events: dict[str, Any],
) -> Report:
    """The report.json document of one run (schema in docs/report-schema.md)."""
    return _document(run_id, strategy, params, config, result, metrics, data, events,
                     [trade_dict(t) for t in result.trades], [order_dict(o) for o in result.orders])


def report_text(
    *,
    run_id: str,
    strategy: str,
    params: dict[str, Any],
    config: dict[str, Any],
    result: RunResult,
    metrics: Metrics,
    data: dict[str, Any],
    events: dict[str, Any],
) -> str:
    """``dumps_report(build_report(...))`` of the same arguments, without a dict for each trade and order (their
    text comes from the records themselves: ``json_text.Records``)."""
    doc = _document(run_id, strategy, params, config, result, metrics, data, events, Records(result.trades),
                    Records(result.orders))
    return canonical_json(doc, end="\n")


def _document(run_id: str, strategy: str, params: dict[str, Any], config: dict[str, Any], result: RunResult,
              metrics: Metrics, data: dict[str, Any], events: dict[str, Any], trades: Any, orders: Any) -> Any:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "strategy": strategy,
        "params": to_jsonable(params),
        "config": to_jsonable(config),
        "period": _period(result.equity),
        "universe": _universe(config, data),
        "benchmark": to_jsonable(config.get("benchmark")),
        "metrics": to_jsonable(metrics.to_dict()),
        "trades": trades,
        "orders": orders,
        "data": _data_section(data),
        "events": to_jsonable(events),
        "fx_source": result.fx_source,
        "warnings": [str(w) for w in result.warnings],
    }


# ---------------------------------------------------------------- tables / CSV


def trades_to_frame(trades: Iterable[TradeRecord | Mapping[str, Any]]) -> pd.DataFrame:
    """Trades (records or report dicts) as a DataFrame with the TradeRecord columns, in that order."""
    rows = [dataclasses.asdict(t) if isinstance(t, TradeRecord) else dict(t) for t in trades]
    frame = pd.DataFrame(rows, columns=list(TRADE_COLUMNS))
    return frame


def trades_csv(report: Report) -> str:
    """The report's trades as CSV text (header always present, one row per trade)."""
    buf = io.StringIO()
    trades_to_frame(report["trades"]).to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


# ---------------------------------------------------------------- text rendering


def format_value(value: Any, kind: str) -> str:
    """One metric value for humans: percent for fractions, 2 decimals for money/ratios, n/a for None."""
    if value is None:
        return "n/a"
    if kind == "pct":
        return f"{value * 100:.2f}%"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "ratio":
        return f"{value:.2f}"
    if kind == "bars":
        return f"{int(value)} bars"
    return str(value)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain aligned text table; columns whose cells all look numeric are right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [all(_looks_numeric(r[i]) for r in rows) and bool(rows) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _looks_numeric(cell: str) -> bool:
    stripped = cell.replace(",", "").replace("%", "").replace("pp", "").replace(" bars", "").strip()
    if stripped in ("n/a", "-", ""):
        return True
    try:
        float(stripped)
    except ValueError:
        return False
    return True


def _header(report: Report) -> list[str]:
    period: Mapping[str, Any] = report.get("period") or {}
    names = [str(s) for s in report.get("universe") or []]
    universe = ", ".join(names[:UNIVERSE_SHOWN]) or "-"
    if len(names) > UNIVERSE_SHOWN:
        universe += f", ... ({len(names)} symbols; all in the JSON report)"
    lines = [
        f"Run {report['run_id']}: {report.get('strategy')}  "
        f"{period.get('start')} -> {period.get('end')} ({period.get('bars', 0)} bars)  universe: {universe}"
    ]
    if report.get("benchmark"):
        lines.append(f"Benchmark: {report['benchmark']}")
    params = report.get("params") or {}
    if params:
        lines.append("Params: " + ", ".join(f"{k}={params[k]}" for k in sorted(params)))
    lines.append(f"FX: {report.get('fx_source')}")
    return lines


def _synthetic_banner() -> list[str]:
    bar = "!" * 72
    text = "SYNTHETIC DATA: sample prices, not real market history"
    return [bar, "!!" + text.center(68) + "!!", bar]


def exposure_matched_excess(metrics: MetricsDoc) -> float | None:
    """Total return minus what the benchmark earned on the strategy's average exposure (exposure x benchmark
    return): "Return minus benchmark" compares a mostly-in-cash strategy with a fully invested benchmark."""
    values = [metrics.get(k) for k in ("total_return", "exposure", "benchmark_return")]
    if any(not isinstance(v, (int, float)) or isinstance(v, bool) for v in values):
        return None
    total, exposure, bench = (float(v) for v in values)  # type: ignore[arg-type]
    return total - exposure * bench


def _metrics_block(metrics: MetricsDoc) -> str:
    rows = [[label, format_value(metrics.get(name), kind)] for name, (label, kind) in METRIC_FORMATS.items()]
    at = next(i for i, (name, _) in enumerate(METRIC_FORMATS.items()) if name == "excess_return") + 1
    rows.insert(at, ["  vs benchmark x exposure", format_value(exposure_matched_excess(metrics), "pct")])
    return render_table(["Metric", "Value"], rows)


TRADE_HEADERS = ["symbol", "side", "event", "type", "entry", "entry px", "exit", "exit px", "size", "fees", "pnl",
                 "return", "bench", "reason"]


def _trade_row(t: TradeDoc) -> list[str]:
    return [
        str(t.get("symbol")), str(t.get("side")), str(t.get("event_id")), str(t.get("event_type")),
        str(t.get("entry_date")), num(t.get("entry_price"), ".2f"),
        str(t.get("exit_date") or "-"), num(t.get("exit_price"), ".2f"),
        str(t.get("size")), num(t.get("fees"), ",.2f"), num(t.get("pnl"), ",.2f"),
        pct(t.get("ret")), pct(t.get("benchmark_return")), str(t.get("exit_reason")),
    ]


def _orders_block(orders: Sequence[OrderDoc]) -> list[str]:
    bad = [o for o in orders if o.get("status") != "filled"]
    if not bad:
        return []
    rows = [[str(o.get("date")), str(o.get("symbol")), str(o.get("action")), str(o.get("size")),
             str(o.get("status")), str(o.get("event_id") or "-"), str(o.get("reason"))] for o in bad]
    table = render_table(["date", "symbol", "action", "size", "status", "event", "reason"], rows)
    return ["", f"Refused/skipped orders ({len(bad)})", table]


def render_text(report: Report) -> str:
    """Readable summary: header, SYNTHETIC banner if needed, metrics, trades, refused orders, warnings."""
    synthetic = is_synthetic(report)
    lines = _synthetic_banner() if synthetic else []
    lines += _header(report)
    lines += ["", _metrics_block(report["metrics"])]
    trades = report.get("trades") or []
    lines += ["", f"Trades ({len(trades)})"]
    lines.append(render_table(TRADE_HEADERS, [_trade_row(t) for t in trades]) if trades else "(no trades)")
    lines += _orders_block(report.get("orders") or [])
    warnings = report.get("warnings") or []
    if warnings:
        lines += ["", "Warnings:", *(f"- {w}" for w in warnings)]
    if synthetic:
        lines += ["", "SYNTHETIC DATA: these results say nothing about real markets."]
    return "\n".join(lines) + "\n"
