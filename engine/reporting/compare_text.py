"""Text of ``evbt compare``: run legend, metrics with deltas against the first run, differing parameters and
config, and the trades one run made and another did not (the comparison is engine.analysis.compare)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from engine.reporting.formats import num, signed_delta
from engine.reporting.models import Comparison
from engine.reporting.report import METRIC_FORMATS, format_value, render_table

PNL_TOLERANCE = 1e-9
money = partial(num, spec=",.2f")


def metric_cells(comparison: Comparison, n: int, first: str = "Metric") -> tuple[list[str], list[list[str]]]:
    """Headers and formatted rows of the metric table (text and HTML): run [1]'s value, then each later run's
    value and its difference from [1]."""
    headers = [first, "[1]"]
    for i in range(2, n + 1):
        headers += [f"[{i}]", f"d[{i}]"]
    rows = []
    for row in comparison["metrics"]:
        label, kind = METRIC_FORMATS.get(row["name"], (row["name"], "ratio"))
        cells = [label, format_value(row["values"][0], kind)]
        for value, delta in zip(row["values"][1:], row["deltas"][1:], strict=True):
            cells += [format_value(value, kind), signed_delta(delta, kind)]
        rows.append(cells)
    return headers, rows


def _metrics_text(comparison: Comparison, n: int) -> str:
    return render_table(*metric_cells(comparison, n))


def _diff_text(title: str, diffs: Mapping[str, list[Any]], n: int) -> list[str]:
    if not diffs:
        return []
    rows = [[key, *(str(v) for v in values)] for key, values in diffs.items()]
    return ["", title, render_table(["key", *(f"[{i}]" for i in range(1, n + 1))], rows)]


def _trades_text(comparison: Comparison, n: int) -> list[str]:
    run_cols = [f"[{i}]" for i in range(1, n + 1)]
    lines: list[str] = []
    only = comparison["trades"]["only_some"]
    if only:
        rows = [[t["event_id"], t["symbol"], *(money(p) for p in t["pnl"])] for t in only]
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
            cells = [t["event_id"], t["symbol"], money(t["pnl"][0])]
            for pnl, delta in zip(t["pnl"][1:], t["pnl_delta"][1:], strict=True):
                cells += [money(pnl), signed_delta(delta, "money")]
            rows.append(cells)
        lines.append(render_table(headers, rows))
    return lines


def render_compare_text(comparison: Comparison) -> str:
    """Readable comparison: run legend, metrics with deltas vs [1], differing params, trade differences."""
    runs = comparison["runs"]
    n = len(runs)
    lines = [f"Comparing {n} runs (deltas against [1])"]
    for i, run in enumerate(runs, start=1):
        flag = "  SYNTHETIC DATA" if run["synthetic"] else ""
        lines.append(f"[{i}] {run['run_id']}  {run['strategy']}  {run['start']} -> {run['end']}{flag}")
    lines += [f"warning: {w}" for w in comparison.get("warnings", [])]
    lines += ["", _metrics_text(comparison, n)]
    lines += _diff_text("Parameters that differ", comparison["params"], n)
    lines += _diff_text("Config that differs", comparison["config"], n)
    lines += _trades_text(comparison, n)
    return "\n".join(lines) + "\n"
