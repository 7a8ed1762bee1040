"""Side-by-side comparison of 2..N run reports (``evbt compare``).

Everything is relative to the first report: metric deltas are ``value - first value`` (so a delta of a
fraction is in fraction points), parameters and config keys are listed only where some run differs, and
trades are matched by ``(event_id, symbol)`` (several trades on one key are summed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from engine.errors import ConfigError
from engine.reporting.report import METRIC_FORMATS, format_value, render_table

PNL_TOLERANCE = 1e-9
_MISSING = "<unset>"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _deltas(values: Sequence[Any]) -> list[float | None]:
    first = values[0]
    out: list[float | None] = [None]
    for value in values[1:]:
        out.append(value - first if _is_number(value) and _is_number(first) else None)
    return out


def _metric_names(reports: Sequence[Mapping[str, Any]]) -> list[str]:
    seen = set().union(*((r.get("metrics") or {}).keys() for r in reports))
    known = [name for name in METRIC_FORMATS if name in seen]
    return known + sorted(seen - set(known))


def _metrics_rows(reports: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for name in _metric_names(reports):
        values = [(r.get("metrics") or {}).get(name) for r in reports]
        rows.append({"name": name, "values": values, "deltas": _deltas(values)})
    return rows


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in value:
            out.update(_flatten(value[key], f"{prefix}{key}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: value}


def _differences(docs: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Keys (dotted for nested dicts) whose value is not the same in every document."""
    flat = [_flatten(doc or {}) for doc in docs]
    keys = sorted(set().union(*(f.keys() for f in flat)))
    out: dict[str, list[Any]] = {}
    for key in keys:
        values = [f.get(key, _MISSING) for f in flat]
        if any(v != values[0] for v in values[1:]):
            out[key] = values
    return out


def _trades_by_key(report: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    for trade in report.get("trades") or []:
        key = (str(trade.get("event_id")), str(trade.get("symbol")))
        entry = grouped.setdefault(key, {"count": 0, "pnl": 0.0, "entry_value": 0.0})
        entry["count"] += 1
        entry["pnl"] += float(trade.get("pnl") or 0.0)
        entry["entry_value"] += float(trade.get("entry_value") or 0.0)
    return grouped


def _trade_rows(reports: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    per_run = [_trades_by_key(r) for r in reports]
    keys = sorted(set().union(*(p.keys() for p in per_run)))
    rows = []
    for event_id, symbol in keys:
        entries = [p.get((event_id, symbol)) for p in per_run]
        pnl = [e["pnl"] if e else None for e in entries]
        rows.append(
            {
                "event_id": event_id,
                "symbol": symbol,
                "present": [e is not None for e in entries],
                "count": [e["count"] if e else 0 for e in entries],
                "pnl": pnl,
                "ret": [e["pnl"] / e["entry_value"] if e and e["entry_value"] else None for e in entries],
                "pnl_delta": _deltas(pnl),
            }
        )
    return rows


def _run_info(report: Mapping[str, Any]) -> dict[str, Any]:
    period = report.get("period") or {}
    return {
        "run_id": report.get("run_id"),
        "strategy": report.get("strategy"),
        "start": period.get("start"),
        "end": period.get("end"),
        "synthetic": bool((report.get("data") or {}).get("synthetic")),
    }


def compare_reports(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Comparison document of 2..N reports (JSON-ready; ``<unset>`` marks a key a run does not have)."""
    if len(reports) < 2:
        raise ConfigError("compare needs at least two runs")
    trades = _trade_rows(reports)
    return {
        "runs": [_run_info(r) for r in reports],
        "metrics": _metrics_rows(reports),
        "params": _differences([r.get("params") or {} for r in reports]),
        # the config's own copy of the parameters is left out: they are listed once, under params
        "config": _differences([{k: v for k, v in (r.get("config") or {}).items() if k != "params"}
                                for r in reports]),
        "trades": {
            "only_some": [t for t in trades if not all(t["present"])],
            "common": [t for t in trades if all(t["present"])],
        },
    }


# ---------------------------------------------------------------- text


def _format_delta(value: float | None, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{value * 100:+.2f}pp"
    if kind == "money":
        return f"{value:+,.2f}"
    if kind in ("int", "bars"):
        return f"{int(value):+d}"
    return f"{value:+.2f}"


def _metrics_text(comparison: Mapping[str, Any], n: int) -> str:
    headers = ["Metric", "[1]"]
    for i in range(2, n + 1):
        headers += [f"[{i}]", f"d[{i}]"]
    rows = []
    for row in comparison["metrics"]:
        label, kind = METRIC_FORMATS.get(row["name"], (row["name"], "ratio"))
        cells = [label, format_value(row["values"][0], kind)]
        for value, delta in zip(row["values"][1:], row["deltas"][1:], strict=True):
            cells += [format_value(value, kind), _format_delta(delta, kind)]
        rows.append(cells)
    return render_table(headers, rows)


def _diff_text(title: str, diffs: Mapping[str, list[Any]], n: int) -> list[str]:
    if not diffs:
        return []
    rows = [[key, *(str(v) for v in values)] for key, values in diffs.items()]
    return ["", title, render_table(["key", *(f"[{i}]" for i in range(1, n + 1))], rows)]


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _trades_text(comparison: Mapping[str, Any], n: int) -> list[str]:
    run_cols = [f"[{i}]" for i in range(1, n + 1)]
    lines: list[str] = []
    only = comparison["trades"]["only_some"]
    if only:
        rows = [[t["event_id"], t["symbol"], *(_money(p) for p in t["pnl"])] for t in only]
        lines += ["", f"Trades made by some runs only ({len(only)}; PnL, '-' = no trade)"]
        lines.append(render_table(["event", "symbol", *run_cols], rows))
    common = comparison["trades"]["common"]
    changed = [t for t in common if any(d is not None and abs(d) > PNL_TOLERANCE for d in t["pnl_delta"])]
    lines += ["", f"Common trades: {len(common)}, with a different PnL: {len(changed)}"]
    if changed:
        headers = ["event", "symbol", "[1]"]
        for i in range(2, n + 1):
            headers += [f"[{i}]", f"d[{i}]"]
        rows = []
        for t in changed:
            cells = [t["event_id"], t["symbol"], _money(t["pnl"][0])]
            for pnl, delta in zip(t["pnl"][1:], t["pnl_delta"][1:], strict=True):
                cells += [_money(pnl), _format_delta(delta, "money")]
            rows.append(cells)
        lines.append(render_table(headers, rows))
    return lines


def render_compare_text(comparison: Mapping[str, Any]) -> str:
    """Readable comparison: run legend, metrics with deltas vs [1], differing params, trade differences."""
    runs = comparison["runs"]
    n = len(runs)
    lines = [f"Comparing {n} runs (deltas against [1])"]
    for i, run in enumerate(runs, start=1):
        flag = "  SYNTHETIC DATA" if run["synthetic"] else ""
        lines.append(f"[{i}] {run['run_id']}  {run['strategy']}  {run['start']} -> {run['end']}{flag}")
    lines += ["", _metrics_text(comparison, n)]
    lines += _diff_text("Parameters that differ", comparison["params"], n)
    lines += _diff_text("Config that differs", comparison["config"], n)
    lines += _trades_text(comparison, n)
    return "\n".join(lines) + "\n"
