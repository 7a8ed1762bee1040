"""Side-by-side comparison of 2..N run reports (``evbt compare``); its text is engine.reporting.compare_text.

Everything is relative to the first report: metric deltas are ``value - first value`` (so a delta of a
fraction is in fraction points), parameters and config keys are listed only where some run differs, and
trades are matched by ``(event_id, symbol)`` (several trades on one key are summed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from engine.errors import ConfigError
from engine.reporting.models import CompareRun, Comparison, MetricRow, Report, TradeRow, is_synthetic
from engine.reporting.report import METRIC_FORMATS

_MISSING = "<unset>"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _deltas(values: Sequence[Any]) -> list[float | None]:
    first = values[0]
    out: list[float | None] = [None]
    for value in values[1:]:
        out.append(value - first if _is_number(value) and _is_number(first) else None)
    return out


def _metric_names(reports: Sequence[Report]) -> list[str]:
    seen = set().union(*(r["metrics"].keys() for r in reports))
    known = [name for name in METRIC_FORMATS if name in seen]
    return known + sorted(seen - set(known))


def _metrics_rows(reports: Sequence[Report]) -> list[MetricRow]:
    rows: list[MetricRow] = []
    for name in _metric_names(reports):
        values = [r["metrics"].get(name) for r in reports]
        rows.append(MetricRow(name=name, values=values, deltas=_deltas(values)))
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


def _trades_by_key(report: Report) -> dict[tuple[str, str], dict[str, Any]]:
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    for trade in report["trades"]:
        key = (str(trade.get("event_id")), str(trade.get("symbol")))
        entry = grouped.setdefault(key, {"count": 0, "pnl": 0.0, "entry_value": 0.0})
        entry["count"] += 1
        entry["pnl"] += float(trade.get("pnl") or 0.0)
        entry["entry_value"] += float(trade.get("entry_value") or 0.0)
    return grouped


def _trade_rows(reports: Sequence[Report]) -> list[TradeRow]:
    per_run = [_trades_by_key(r) for r in reports]
    keys = sorted(set().union(*(p.keys() for p in per_run)))
    rows: list[TradeRow] = []
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


def _run_info(report: Report) -> CompareRun:
    period: Mapping[str, Any] = report.get("period") or {}
    return {
        "run_id": report["run_id"],
        "strategy": report.get("strategy"),
        "start": period.get("start"),
        "end": period.get("end"),
        "synthetic": is_synthetic(report),
        "base_currency": str((report.get("config") or {}).get("base_currency") or "USD"),
    }


def _warnings(runs: Sequence[CompareRun]) -> list[str]:
    currencies = [r["base_currency"] for r in runs]
    if len(set(currencies)) < 2:
        return []
    which = ", ".join(f"[{i}] {c}" for i, c in enumerate(currencies, start=1))
    return [f"the runs are in different base currencies ({which}): money figures (final value, PnL, fees) and "
            "their deltas compare amounts in different currencies; returns and ratios are each in the run's own "
            "currency"]


def compare_reports(reports: Sequence[Report]) -> Comparison:
    """Comparison document of 2..N reports (JSON-ready; ``<unset>`` marks a key a run does not have)."""
    if len(reports) < 2:
        raise ConfigError("compare needs at least two runs")
    trades = _trade_rows(reports)
    runs = [_run_info(r) for r in reports]
    return {
        "runs": runs,
        "metrics": _metrics_rows(reports),
        "params": _differences([r.get("params") or {} for r in reports]),
        # the config's own copy of the parameters is left out: they are listed once, under params
        "config": _differences([{k: v for k, v in (r.get("config") or {}).items() if k != "params"}
                                for r in reports]),
        "trades": {
            "only_some": [t for t in trades if not all(t["present"])],
            "common": [t for t in trades if all(t["present"])],
        },
        "warnings": _warnings(runs),
    }
