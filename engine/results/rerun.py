"""``evbt rerun``: run a saved result again on the data versions it read (exact), or on today's cache
(``current_data``) and say, trade by trade, what changed."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import backtest
from engine.plan.config import run_config_from_dict
from engine.prices.snapshots import SnapshotStore
from engine.prices.store import PriceStore
from engine.reporting.models import Report, TradeDoc
from engine.reporting.report import dumps_report
from engine.results.catalog import save_outcome
from engine.results.resolve import Resolved
from engine.saved_runs import build_manifest, diff_manifests
from engine.saved_runs.ids import run_inputs

TRADE_FIELDS = ("entry_date", "entry_price", "exit_date", "exit_price", "size", "fees", "pnl", "exit_reason")
TOLERANCE = 1e-9


@dataclass
class RerunOutcome:
    run_id: str
    new_run_id: str
    reproduced: bool
    data: str  # "snapshot" | "current"
    missing_snapshots: list[str]
    changes: list[str]
    trade_changes: list[str] = field(default_factory=list)
    saved: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "new_run_id": self.new_run_id, "reproduced": self.reproduced,
                "data": self.data, "missing_snapshots": self.missing_snapshots, "changes": self.changes,
                "trade_changes": self.trade_changes, "saved": str(self.saved) if self.saved else None}


def fingerprints_of(report: Report) -> dict[str, str]:
    data = report.get("data")
    symbols = data["symbols"] if data else {}
    return {str(s): str(info["fingerprint"]) for s, info in symbols.items() if (info or {}).get("fingerprint")}


@contextlib.contextmanager
def _data_store(store: PriceStore, report: Report, current: bool) -> Iterator[tuple[PriceStore, list[str]]]:
    if current:
        yield store, []
        return
    with SnapshotStore.for_store(store).pinned(fingerprints_of(report)) as (pinned, missing):
        yield (store, missing) if missing else (pinned, [])


def _trade_key(trade: TradeDoc) -> tuple[str, str, str]:
    return str(trade.get("event_id")), str(trade.get("symbol")), str(trade.get("side"))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) <= TOLERANCE * max(1.0, abs(a), abs(b))
    return a == b


def trade_changes(old: Sequence[TradeDoc], new: Sequence[TradeDoc]) -> list[str]:
    """One line per trade that appeared, disappeared or changed (matched by event, symbol, side, in order)."""
    def grouped(trades: Sequence[TradeDoc]) -> dict[tuple[str, str, str], list[TradeDoc]]:
        out: dict[tuple[str, str, str], list[TradeDoc]] = {}
        for t in trades:
            out.setdefault(_trade_key(t), []).append(t)
        return out

    a, b = grouped(old), grouped(new)
    lines: list[str] = []
    for key in sorted(set(a) | set(b)):
        olds, news = a.get(key, []), b.get(key, [])
        for i in range(max(len(olds), len(news))):
            label = f"{key[1]} {key[2]} on {key[0]}"
            if i >= len(news):
                lines.append(f"{label}: trade gone (was entry {olds[i].get('entry_date')}, pnl {_money(olds[i])})")
            elif i >= len(olds):
                lines.append(f"{label}: new trade (entry {news[i].get('entry_date')}, pnl {_money(news[i])})")
            else:
                diffs = [f"{f} {olds[i].get(f)} -> {news[i].get(f)}" for f in TRADE_FIELDS
                         if not _same(olds[i].get(f), news[i].get(f))]
                if diffs:
                    lines.append(f"{label} (entry {olds[i].get('entry_date')}): " + "; ".join(diffs))
    return lines


def _money(trade: TradeDoc) -> str:
    pnl = trade.get("pnl")
    return "-" if pnl is None else f"{pnl:,.2f}"


def _sweep_inputs(folder: Path) -> dict[str, str]:
    try:
        doc = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    inputs = doc.get("inputs") if isinstance(doc, dict) else None
    return {str(k): str(v) for k, v in inputs.items()} if isinstance(inputs, dict) else {}


def rerun(target: Resolved, store: PriceStore, runs_dir: Path | None = None, current_data: bool = False,
          save: bool = True, repo_dir: Path | None = None) -> RerunOutcome:
    """Run ``target`` again; byte-compare the reports; explain a difference by inputs and by trades."""
    old = target.plain_report()
    config = run_config_from_dict(old.get("config") or {})
    with _data_store(store, old, current_data) as (data_store, missing):
        outcome = backtest.run(config, data_store)
        saved = save_outcome(outcome, data_store, runs_dir, repo_dir=repo_dir) if save else None
    new = outcome.report
    same = dumps_report(new) == dumps_report(old)
    changes: list[str] = []
    trades: list[str] = []
    if not same:
        old_manifest = {"data": fingerprints_of(old), "event_calendar_hash": (old.get("events") or {}).get(
            "calendar_hash")}
        new_manifest = build_manifest(run_id=new["run_id"], data_fingerprints=outcome.fingerprints,
                                      calendar_hash=outcome.calendar_hash, repo_dir=repo_dir,
                                      inputs=run_inputs(config.strategy))
        if target.sweep is not None:  # a sweep point: its sweep's strategy file and venue table
            old_manifest["inputs"] = _sweep_inputs(target.sweep)
        changes = [c for c in diff_manifests(old_manifest, new_manifest)
                   if c.startswith(("data ", "event calendar", "closures file", "strategy file", "venue table"))]
        if target.folder is not None and (target.folder / "manifest.json").is_file():
            from engine.saved_runs import load_manifest

            changes = diff_manifests(load_manifest(target.folder), new_manifest)
        trades = trade_changes(old["trades"], new["trades"])
    return RerunOutcome(old["run_id"], new["run_id"], same, "current" if current_data or missing else "snapshot",
                        missing, changes, trades, saved)
