"""Parameter sweeps: many backtests of one strategy over a grid, fast, parallel, resumable.

Flow (``run_sweep``): build the base RunConfig and the grid's point configs -> load prices, FX, benchmark and
events ONCE for the whole span (``data``) -> per window (``windows``: full period, in/out-of-sample, or
walk-forward) slice the frames exactly like ``engine.backtest`` and build the union-index arrays once -> per
point, reuse a cached Plan and replay it (``evaluate``: fast path, or backtrader where it is not exact) ->
metrics -> one row per point and window (``tasks``, keyed by the run id of the same `evbt run`), streamed to
parquet chunks in the sweep folder (``storage``) by a backend (``backends``: inline, process pool, Dask) ->
ranking and analysis (``summary``, ``stats``) -> the full reports of the best points.

Sweep folder ``<runs>/sweeps/<sweep_id>/``: ``manifest.json``, ``points/chunk-*.parquet``, ``summary.json``,
``report.json`` (the best point's full report) and ``reports/<run_id>.json`` (full reports of the top points).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import collector
from engine.errors import ConfigError, EvbtWarning, MissingDataError
from engine.plan.config import RunConfig, run_config_from_dict
from engine.prices.store import PriceStore
from engine.reporting.models import SweepSummary
from engine.reporting.report import dumps_report, with_sweep_section
from engine.saved_runs import build_manifest
from engine.saved_runs.ids import run_inputs
from engine.sweeps.backends import (  # noqa: F401  (re-exported)
    CONNECT_TIMEOUT_ENV,
    DaskBackend,
    Worker,
    batches,
    execute_processes,
    execute_serial,
    run_batch,
)
from engine.sweeps.data import SweepData, WindowContext, load_sweep_data, window_context  # noqa: F401
from engine.sweeps.evaluate import (  # noqa: F401  (re-exported)
    PointResult,
    SweepCaches,
    cached_context,
    evaluate,
    plan_for,
    plan_with_cache,
    point_report,
    point_report_text,
    point_result,
    typed_params,
    warmup_notes,
)
from engine.sweeps.grid import Grid
from engine.sweeps.heatmap import heatmap_keys_for, heatmap_matrix, write_heatmap  # noqa: F401
from engine.sweeps.stats import (  # noqa: F401  (re-exported)
    LOWER_IS_BETTER,
    METRICS,
    DeflatedSharpe,
    deflated_sharpe,
    norm_cdf,
    norm_ppf,
    rank_points,
)
from engine.sweeps.storage import (
    SUMMARY_FIELDS,
    StagedWrites,
    SweepFolder,
    folder_lock,
    make_sweep_id,
    schema,
    sweeps_dir,
)
from engine.sweeps.summary import summarise
from engine.sweeps.tasks import Task, build_tasks, config_dict, point_config, run_key  # noqa: F401
from engine.sweeps.windows import Window, make_windows, parse_walk_forward  # noqa: F401

CHUNK_ROWS = 256
CHUNK_ROWS_ENV = "EVBT_SWEEP_CHUNK_ROWS"  # test hook: smaller chunks
REPORTS_KEPT = 5  # full reports saved for the top points (at least; --top N keeps N when larger)
REPORTS_MAX = 20
_schema = schema  # older name (scripts/reliability.py)
_plan_for = plan_for


@dataclass
class SweepRequest:
    strategy: str
    base: RunConfig
    grid: Grid
    metric: str = "sharpe"
    top: int = 10
    workers: int = 1
    cluster: str | None = None
    split: dt.date | None = None
    walk_forward: tuple[int, int] | None = None
    command_prefix: str = "evbt"  # how the printed reproduce commands start (e.g. "evbt --sample")
    default_symbols: tuple[str, ...] | None = None  # the universe `evbt run` uses without --symbols


@dataclass
class SweepOutcome:
    sweep_id: str
    path: Path
    summary: SweepSummary
    computed: int
    reused: int
    elapsed: float


Progress = Callable[[int, int], None]


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        from engine.plan.config import suggest

        raise ConfigError(f"unknown metric {metric!r}{suggest(metric, list(METRICS))}; metrics: {', '.join(METRICS)}")
    return metric


def run_sweep(req: SweepRequest, store: PriceStore, runs_dir: Path | None = None,
              progress: Progress | None = None) -> SweepOutcome:
    """Compute the missing points of the grid, store them, and summarise the whole grid."""
    began = time.perf_counter()
    check_metric(req.metric)
    windows = make_windows(req.base.start, req.base.end, req.split, req.walk_forward)
    data = load_sweep_data(store, req.base, windows)
    worker = Worker(data)
    windows = _windows_with_data(worker, windows)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EvbtWarning)
        tasks = build_tasks(req.base, req.grid, windows, data, worker.caches)
    for note in dict.fromkeys(str(w.message) for w in caught):
        warnings.warn(note, EvbtWarning, stacklevel=2)
    for note in dict.fromkeys(n for w in windows for n in worker.caches.context(data, w).warnings):
        warnings.warn(note, EvbtWarning, stacklevel=2)
    for note in warmup_notes(data, windows, tasks, worker.caches):
        warnings.warn(note, EvbtWarning, stacklevel=2)
    backend = DaskBackend(req.cluster, req.workers) if req.cluster else None  # fail before writing anything
    folder = SweepFolder(sweeps_dir(runs_dir) / make_sweep_id(req.base, data, windows))
    keys = {t.key for t in tasks}
    # One sweep of a folder at a time: a second identical sweep waits, then reuses every point.
    with folder_lock(folder.path):
        try:
            folder.create()
            folder.write_json("manifest.json", _manifest(req, data, folder.path.name, windows))
            done = folder.keys()
            todo: dict[str, Task] = {}
            for task in tasks:
                if task.key not in done and task.key not in todo:
                    todo[task.key] = task
            computed = _compute(worker, list(todo.values()), req, folder, backend, progress)
        finally:
            if backend is not None:
                backend.close()
        rows = folder.read(keys, columns=[*SUMMARY_FIELDS, *METRICS])
        summary = summarise(req.metric, req.grid, rows, tasks, windows, folder.path.name, req.strategy)
        kept = _kept_rows(req, summary, folder)  # read once for the best point's command and the reports
        _add_commands(req, summary, folder, kept)
        summary["counts"] = {"points": len(req.grid), "evaluations": len(tasks), "computed": computed,
                             "reused": len(keys) - computed}
        # summary.json and the kept reports are written and fsynced on a thread while the data versions are
        # kept, then renamed into place (each file atomic: StagedWrites)
        writes = StagedWrites()
        try:
            writes.add(folder.path / "summary.json", dumps_report(summary).encode("utf-8"))
            _write_reports(req, worker, summary, folder, writes, kept)
            _keep_snapshots(store, data)
            writes.commit()
        finally:
            writes.discard()
    return SweepOutcome(folder.path.name, folder.path, summary, computed, len(keys) - computed,
                        time.perf_counter() - began)


def _windows_with_data(worker: Worker, windows: list[Window]) -> list[Window]:
    """Walk-forward steps with a window that holds no price bar (the data ends before the period does) are
    left out with a warning; any other window without data is an error."""
    empty = []
    for window in windows:
        try:
            worker.caches.context(worker.data, window)
        except MissingDataError:
            if not window.label.startswith("wf"):
                raise
            empty.append(window.label.split("-")[0])
    if not empty:
        return windows
    kept = [w for w in windows if w.label.split("-")[0] not in empty]
    if not kept:
        raise MissingDataError("no walk-forward window has prices: the data does not cover the period")
    dropped = [w for w in windows if w.label.endswith("-test") and w.label.split("-")[0] in empty]
    warnings.warn(f"walk-forward: {len(dropped)} step(s) left out, no prices in "
                  + ", ".join(f"{w.start}..{w.end}" for w in dropped), EvbtWarning, stacklevel=3)
    return kept


def _kept_rows(req: SweepRequest, summary: SweepSummary, folder: SweepFolder) -> dict[str, dict[Any, Any]]:
    """The stored rows (key, window, config) of the points whose report is kept (``_report_keys``), by key."""
    keys = _report_keys(req, summary)
    return {r["key"]: r for r in folder.read(keys, columns=["key", "window", "config"]).to_dict("records")}


def _add_commands(req: SweepRequest, summary: SweepSummary, folder: SweepFolder,
                  kept: dict[str, dict[Any, Any]] | None = None) -> None:
    """The shell-quoted `evbt run` command of the best point (same configuration, so the same run id); its row
    from ``kept`` (``_kept_rows``) when there, else read."""
    from engine.results.reproduce import reproduce_command

    best = summary.get("best")
    if not best:
        return
    row: dict[Any, Any] | None = (kept or {}).get(best["key"])
    if row is None:
        rows = folder.read([best["key"]], columns=["key", "config"])
        row = rows.iloc[0].to_dict() if len(rows) else None
    if row is not None:
        config = run_config_from_dict(json.loads(row["config"]))
        best["command"] = reproduce_command(config, req.command_prefix, req.default_symbols)
        summary["ranking"][0] = best


def _keep_snapshots(store: PriceStore, data: SweepData) -> None:
    """Keep the data versions the sweep read (content-addressed; unchanged data costs nothing)."""
    from engine.prices.snapshots import SnapshotStore

    SnapshotStore.for_store(store).keep(data.fingerprints)


def _compute(worker: Worker, items: list[Task], req: SweepRequest, folder: SweepFolder,
             backend: DaskBackend | None, progress: Progress | None) -> int:
    total = len(items)
    if progress:
        progress(0, total)
    if not items:
        return 0
    items.sort(key=lambda task: (task.window.start, task.config.fill, task.params_json))
    workers = max(1, req.workers)
    parts = batches(items, workers)
    inline = backend is None and (workers == 1 or len(parts) == 1)
    if inline and total <= _reports_kept(req):  # every point's report is kept: evaluate each once, with records
        worker.records_for = {task.key for task in items}
    froze = False
    if backend is not None:
        stream = backend.run(worker, parts)
    elif workers > 1 and len(parts) > 1:
        _warm(worker, items)
        # forked children share the warmed market copy-on-write; frozen objects are never visited by the
        # collector, so its passes do not copy those pages into every child (engine.collector: the children
        # inherit that evbt holds the freeze)
        froze = collector.freeze()
        stream = execute_processes(worker, parts, workers)
    else:
        stream = execute_serial(worker, parts)
    # rows go to disk every chunk_rows: memory holds one chunk, whatever the number of points
    buffer: list[dict[str, Any]] = []
    finished = 0
    chunk_rows = int(os.environ.get(CHUNK_ROWS_ENV) or CHUNK_ROWS)
    try:
        for rows in stream:
            buffer.extend(rows)
            finished += len(rows)
            if len(buffer) >= chunk_rows:
                folder.write_chunk(buffer)
                buffer = []
            if progress:
                progress(finished, total)
        if buffer:
            folder.write_chunk(buffer)
    finally:
        if froze:
            collector.thaw()
    return finished


def _warm(worker: Worker, items: list[Task]) -> None:
    """Build window arrays and each fill's session cache before forking, so children share them."""
    seen: set[tuple[Window, str]] = set()
    for task in items:
        key = (task.window, task.config.fill)
        if key in seen:
            continue
        seen.add(key)
        wctx = worker.caches.context(worker.data, task.window)
        _ = wctx.market  # built here, shared by the forked children
        plan_for(worker.data, wctx, task.config, worker.caches.typed_params(task.config.strategy,
                                                                             task.config.params))


def _manifest(req: SweepRequest, data: SweepData, sweep_id: str, windows: Sequence[Window]) -> dict[str, Any]:
    doc = build_manifest(run_id=sweep_id, data_fingerprints=data.fingerprints, calendar_hash=data.calendar_hash,
                         inputs=run_inputs(req.base.strategy))
    doc.update({
        "kind": "sweep", "sweep_id": sweep_id, "strategy": req.strategy, "grid": req.grid.describe(),
        "base_config": req.base.to_dict(), "metric": req.metric,
        "windows": [{"label": w.label, "start": w.start.isoformat(), "end": w.end.isoformat()} for w in windows],
    })
    return doc


def _reports_kept(req: SweepRequest) -> int:
    return min(max(REPORTS_KEPT, req.top or REPORTS_KEPT), REPORTS_MAX)


def _report_keys(req: SweepRequest, summary: SweepSummary) -> list[str]:
    """The points whose full report is kept: the top ranked (with their out-of-sample runs), or each
    walk-forward step's chosen point on its test window."""
    keep = _reports_kept(req)
    keys = [entry["key"] for entry in summary["ranking"][:keep]]
    keys += [e["oos_key"] for e in summary["ranking"][:keep] if e.get("oos_key")]
    for step in summary.get("walk_forward") or []:  # each chosen point's out-of-sample run
        keys += [key] if (key := step["test_key"]) else []
    return list(dict.fromkeys(keys))


def _write_reports(req: SweepRequest, worker: Worker, summary: SweepSummary, folder: SweepFolder,
                   writes: StagedWrites | None = None, kept: dict[str, dict[Any, Any]] | None = None) -> None:
    """Full reports (trades, orders, data, FX) of the top points, and report.json for the best one, so the
    folder and ``SWEEP_ID:RANK`` read like run folders. Written by ``writes`` (visible once the caller commits
    them), else each at once."""
    own = writes is None
    writes = StagedWrites() if writes is None else writes
    keys = _report_keys(req, summary)
    best = summary.get("best")
    steps = summary.get("walk_forward") or []
    best_key = best["key"] if best else (steps[-1]["test_key"] if steps else None)
    rows = kept if kept is not None else _kept_rows(req, summary, folder)
    reports_dir = folder.path / "reports"
    for key in keys:
        row = rows.get(key)
        if row is None:
            continue
        config = run_config_from_dict(json.loads(row["config"]))
        window = Window(str(row["window"]), config.start, config.end)
        target = reports_dir / f"{key}.json"
        text = None
        if not target.is_file():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", EvbtWarning)
                res = worker.kept.pop(key, None) or evaluate(worker.data, window, config, records=True,
                                                             caches=worker.caches)
            text = point_report_text(worker.data, window, config, res)  # dumps_report(point_report(...))
            writes.add(target, text.encode("utf-8"))
        if key == best_key:
            section = {"sweep_id": summary["sweep_id"], "metric": req.metric, "points_tried": len(req.grid),
                       "note": "report of the best point of the sweep"}
            text = text if text is not None else target.read_text(encoding="utf-8")
            best_text = with_sweep_section(text, section)  # the same bytes as loading, adding, writing again
            if best_text is None:
                best_text = dumps_report({**json.loads(text), "sweep": section})
            writes.add(folder.path / "report.json", best_text.encode("utf-8"))
    if own:
        try:
            writes.commit()
        finally:
            writes.discard()
