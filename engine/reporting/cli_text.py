"""Plain-text renderings of command results (the CLI prints them; nothing here prints or imports click)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from engine.reporting.formats import num, pct
from engine.reporting.models import EventListing, RankedPoint, StrategyRow, SweepSummary
from engine.reporting.report import METRIC_FORMATS, format_value, render_table, to_jsonable

if TYPE_CHECKING:
    from engine.analysis.placebo import PlaceboRow
    from engine.results.rerun import RerunOutcome
    from engine.saved_runs import RunSummary
    from engine.sweeps.sweep import SweepOutcome


def source_label(meta: Mapping[str, Any]) -> str:
    return "sample (SYNTHETIC)" if meta.get("source") == "sample" else str(meta.get("source", "?"))


def size_label(size: int) -> str:
    return f"{size / 1024:.1f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MB"


def aligned(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int] | None = None) -> str:
    """Aligned table without a rule line; columns in ``right`` are right-aligned."""
    right = right or set()
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in pairs).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def span_text(meta: Mapping[str, Any]) -> str:
    return f"{meta['first_date']} .. {meta['last_date']}"


def fetched_line(symbol: str, meta: Mapping[str, Any]) -> str:
    return f"{symbol}: {meta['rows']} bars {span_text(meta)} ({meta['source']})"


def imported_line(symbol: str, meta: Mapping[str, Any], file_name: str) -> str:
    return f"{symbol}: {meta['rows']} bars {span_text(meta)} from {file_name}"


def sample_line(meta: Mapping[str, Any]) -> str:
    return f"{meta['symbol']}: {meta['rows']} SYNTHETIC bars {span_text(meta)}"


def verify_rows(results: Sequence[Any]) -> list[dict[str, Any]]:
    """``data verify --json``: one object per file."""
    return [{"symbol": r.symbol, "path": str(r.path), "ok": r.ok, "status": r.status, "problem": r.problem}
            for r in results]


def verify_text(results: Sequence[Any]) -> str:
    """``data verify``: one line per file, then the summary."""
    from engine.prices.verify import verify_summary

    return "\n".join([*(r.line() for r in results), verify_summary(list(results))])


def runs_ls_rows(summaries: Sequence[RunSummary]) -> list[dict[str, Any]]:
    """``runs ls --json``: one object per saved run."""
    from engine.results.catalog import summary_json

    return [summary_json(s) for s in summaries]


def ratings_line(symbol: str, changes: int, moves: int) -> str:
    return f"{symbol}: {changes} rating change(s), {moves} up/downgrade(s) on the grade scale"


def gc_line(result: Any) -> str:
    return f"freed {result.removed} data version(s), {size_label(result.freed_bytes)}; {result.kept} kept"


def wrote_line(path: Any, size: int) -> str:
    return f"wrote {path} ({size / 1024:.0f} KB)"


def data_ls_text(entries: Sequence[Mapping[str, Any]]) -> str:
    rows = [[e["symbol"], e.get("first_date", "?"), e.get("last_date", "?"), str(e.get("rows", "?")),
             source_label(e) if "error" not in e else str(e.get("status", "damaged")).upper(),
             e.get("fetched_at", "?"),
             size_label(e["size"])] for e in entries]
    return aligned(["symbol", "first", "last", "rows", "source", "fetched at", "size"], rows, right={3, 6})


def data_show_text(symbol: str, summary: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    s = summary
    return "\n".join([
        f"{symbol} ({source_label(meta)}, {s['currency']})  {s['first_date']} .. {s['last_date']}, "
        f"{s['rows']} bars, {s['stale_bars']} stale",
        f"  close {s['first_close']:.4g} -> {s['last_close']:.4g}  return {s['return']:+.2%}",
        f"  min {s['min_close']:.4g} on {s['min_date']}, max {s['max_close']:.4g} on {s['max_date']}",
    ])


def events_ls_text(listing: EventListing) -> str:
    lines = []
    for row in listing["events"]:
        line = f"{row['id']:<44} {row['known_at'][:19]}Z  {row['type']:<20}"
        if listing["by_symbol"]:
            line += "  " + " ".join(f"{s}->{d}" for s, d in row["entry"].items())
        else:
            line += "  " + (" ".join(row["symbols"][:6]) + (" ..." if len(row["symbols"]) > 6 else "")
                            or "(universe)")
        lines.append(line)
    lines.append(f"{listing['count']} event(s)" + (f", entry on the {listing['fill']}" if listing["by_symbol"] else ""))
    return "\n".join(lines)


def param_value_text(value: Any) -> str:
    """A parameter default as a user would type it after ``-p key=`` (not a Python repr)."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) if value else "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "(none)"
    return str(value)


def strategies_text(rows: Sequence[StrategyRow]) -> str:
    lines = []
    for row in rows:
        if row.get("broken"):
            lines.append(f"failed to import: {row['error']}")
            continue
        lines.append(f"{row['name']}: {row['description']}" + (f"  [{row['file']}]" if row.get("file") else ""))
        lines.extend(f"    {key} = {param_value_text(value)}" for key, value in row["params"].items())
    return "\n".join(lines)


def runs_ls_text(summaries: Sequence[RunSummary]) -> str:
    tagged = any(getattr(s, "tags", ()) for s in summaries)
    rows = [[s.run_id, s.strategy, s.created_at or "", f"{s.start} .. {s.end}",
             "" if s.total_return is None else f"{s.total_return:.2%}",
             "" if s.sharpe is None else f"{s.sharpe:.2f}", str(s.trades),
             *([",".join(s.tags)] if tagged else [])] for s in summaries]
    headers = ["run", "strategy", "created", "period", "return", "sharpe", "trades", *(["tags"] if tagged else [])]
    return render_table(headers, rows)


def rerun_text(verdict: RerunOutcome) -> str:
    data = getattr(verdict, "data", "current")
    source = "the data versions it read" if data == "snapshot" else "the current cache"
    missing = getattr(verdict, "missing_snapshots", [])
    lines = []
    if missing:
        lines.append(f"note: no saved data version for {', '.join(missing)}; rerun on the current cache")
    if verdict.reproduced:
        lines.append(f"reproduced exactly: {verdict.run_id} (byte-identical report, on {source})")
        return "\n".join(lines)
    lines.append(f"not reproduced: {verdict.run_id} -> {verdict.new_run_id} (on {source})")
    changes = verdict.changes or ["report differs but data, calendar and code fingerprints are unchanged"]
    lines.extend(f"  - {line}" for line in changes)
    trades = getattr(verdict, "trade_changes", [])
    if trades:
        lines.append(f"Trades that changed ({len(trades)}):")
        lines.extend(f"  - {line}" for line in trades)
    elif data == "current":
        lines.append("Trades: none changed")
    return "\n".join(lines)


def sweep_table(summary: SweepSummary, top: int) -> str:
    metric = summary["metric"]
    label, kind = METRIC_FORMATS.get(metric, (metric, "ratio"))
    keys = list(summary["grid"])
    split = any("oos_metrics" in r for r in summary["ranking"])
    headers = ["rank", *keys, f"IS {label}" if split else label]
    if split:
        headers.append(f"OOS {label}")
    headers += ["IS Return", "IS Max DD", "IS Trades"] if split else ["Return", "Max DD", "Trades"]
    rows = []
    for n, entry in enumerate(summary["ranking"][: top or None], start=1):
        m = entry["metrics"]
        cells = [str(n), *(str(entry["values"][k]) for k in keys), format_value(m.get(metric), kind)]
        if split:
            cells.append(format_value((entry.get("oos_metrics") or {}).get(metric), kind))
        cells += [format_value(m.get("total_return"), "pct"), format_value(m.get("max_drawdown"), "pct"),
                  str(m.get("trade_count"))]
        rows.append(cells)
    return render_table(headers, rows)


def walk_forward_text(summary: SweepSummary) -> str:
    rows = [[s["train"]["start"] + ".." + s["train"]["end"], s["test"]["start"] + ".." + s["test"]["end"],
             " ".join(f"{k}={v}" for k, v in s["values"].items()), num(s["train_metric"], missing="n/a"),
             num(s["test_metric"], missing="n/a")] for s in summary["walk_forward"]]
    metric = summary["metric"]
    table = render_table(["train", "test", "chosen point", f"train {metric}", f"test {metric}"], rows)
    wf = summary["walk_forward_summary"]
    measured = wf.get("test_metric_steps")
    if measured is None:  # a summary written before the count was kept
        measured = sum(s["test_metric"] is not None for s in summary["walk_forward"])
    # a test window without the metric (no trades, no variance) is left out of the mean: say how many count
    over = f" over {measured} of {wf['steps']} test windows" if measured != wf["steps"] else ""
    return (f"{table}\n\nWalk-forward: {wf['steps']} step(s); mean out-of-sample {metric} "
            f"{num(wf['mean_test_metric'], missing='n/a')}{over}; chained out-of-sample return "
            f"{pct(wf['chained_test_return'], missing='n/a')}")


RUN_OPTION_KEYS = frozenset({"fill", "sizing", "overlap", "size", "cash", "commission", "min_commission",
                             "slippage_bps", "stamp_duty"})


def best_command(strategy: str, best: RankedPoint) -> str:
    """The `evbt run` command that reproduces a sweep point, shell-quoted."""
    parts = ["evbt", "run", strategy]
    for key, value in best["values"].items():
        text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
        if key in RUN_OPTION_KEYS:
            parts += [f"--{key.replace('_', '-')}", text]
        else:
            parts += ["-p", f"{key}={text}"]
    return shlex.join(parts)


def sweep_text(strategy: str, outcome: SweepOutcome, top: int, heatmap: Any) -> str:
    summary = outcome.summary
    counts = summary["counts"]
    metric = summary["metric"]
    lines = [f"Sweep {outcome.sweep_id}: {strategy}, {counts['points']} point(s) x {len(summary['windows'])} "
             f"window(s), metric {metric}{' (lower is better)' if not summary['higher_is_better'] else ''}"]
    engines = [r["engine"] for r in summary["ranking"]]
    slow = f", {engines.count('backtrader')} via backtrader" if "backtrader" in engines else ""
    lines += [f"computed {counts['computed']}, reused {counts['reused']}, {outcome.elapsed:.2f} s{slow}", ""]
    if summary.get("walk_forward") is not None:
        lines.append(walk_forward_text(summary))
    else:
        lines.append(sweep_table(summary, top))
        best = summary["best"]
        if best:
            lines += ["", "Best: " + ", ".join(f"{k}={v}" for k, v in best["values"].items())
                      + f"  (run id {best['key']})", f"  {best.get('command') or best_command(strategy, best)}"]
    lines.append("")
    if summary.get("walk_forward") is None:
        lines.append("Multiple testing: " + summary["multiple_testing"].get("note", ""))
    else:
        lines.append(f"Multiple testing: {counts['points']} points tried in each train window.")
    if heatmap is not None:
        lines.append(f"heatmap: {heatmap}")
    lines.append(f"saved: {outcome.path}")
    return "\n".join(lines)


def sweep_json(outcome: SweepOutcome, top: int, ranked: Sequence[PlaceboRow] | None) -> dict[str, Any]:
    """``evbt sweep --json``: the summary with the ranking cut to ``--top``, the folder, the time taken, and the
    placebo ranking when asked for."""
    summary = outcome.summary
    doc: dict[str, Any] = dict(summary)
    doc["ranking"] = summary["ranking"][: top or None]
    doc.update({"saved": str(outcome.path), "elapsed_s": round(outcome.elapsed, 3)})
    if ranked is not None:
        doc["placebo_ranking"] = to_jsonable([{"point": r.label, "placebo": r.result} for r in ranked])
    return doc
