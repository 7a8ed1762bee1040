"""Parameter sweeps: many backtests of one strategy over a grid, fast, parallel, resumable.

Flow (``run_sweep``): build the base RunConfig and the grid's point configs -> load prices, FX, benchmark and
events ONCE for the whole span -> per window (full period, or in/out-of-sample, or walk-forward windows)
slice the frames exactly like ``engine.backtest`` and build the union-index arrays once -> per point, reuse
a cached Plan (keyed by window, fill and strategy parameters) and replay it with ``engine.execution.fast_driver``
(backtrader for configurations the fast path does not cover) -> metrics -> one row per point and window,
streamed to parquet chunks in the sweep folder.

Every evaluated (point, window) has a key equal to the run id ``evbt run`` would give the same configuration
on the same data and calendar (``engine.saved_runs.make_run_id``): rows already in the sweep folder are reused, so
an interrupted sweep continues and a widened grid computes only the new points.

Sweep folder ``<runs>/sweeps/<sweep_id>/``: ``manifest.json`` (grid, base configuration, fingerprints,
calendar hash, versions), ``points/chunk-*.parquet`` (each written atomically: a killed sweep leaves only
complete chunks), ``summary.json`` (ranking, best point, out-of-sample analysis, multiple-testing note) and
``report.json`` (the full run report of the best point, so ``evbt runs show`` / ``evbt compare`` accept the
folder like a run folder).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import io
import json
import math
import os
import re
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.analysis.metrics import Metrics, compute_metrics
from engine.backtest import FX_SYMBOL, HISTORY_PAD_DAYS, benchmark_trade_return
from engine.errors import ConfigError, DataError, EvbtWarning, MissingDataError, RunError
from engine.events import catalog as events_mod
from engine.events import timing
from engine.execution import fast_driver as fastpath
from engine.execution.records import OrderRecord, RunResult, TradeRecord
from engine.market.symbols import listing
from engine.plan.config import RunConfig, build_params, params_to_dict
from engine.plan.planner import Plan, RunContext, build_plan
from engine.prices.store import PriceStore
from engine.reporting.report import build_report, dumps_report, to_jsonable
from engine.saved_runs import build_manifest, default_runs_dir, make_run_id
from engine.sweeps.grid import Grid
from strategies.registry import get_strategy

METRICS = tuple(f.name for f in dataclasses.fields(Metrics))
LOWER_IS_BETTER = frozenset({"annual_volatility", "max_drawdown_duration", "beta"})
CHUNK_ROWS = 256
PLAN_CACHE_SIZE = 64
CHUNK_ROWS_ENV = "EVBT_SWEEP_CHUNK_ROWS"  # test hook: smaller chunks
CONNECT_TIMEOUT_ENV = "EVBT_SWEEP_CONNECT_TIMEOUT"  # seconds to reach a Dask scheduler (default 5)
EULER_GAMMA = 0.5772156649015329
_COST_FIELDS = {"commission": "commission_pct", "min_commission": "min_commission",
                "slippage_bps": "slippage_bps", "stamp_duty": "stamp_duty_rate"}


# ================================================================================================ windows


@dataclass(frozen=True)
class Window:
    """A period evaluated for every point: full | is | oos | wf<N>-train | wf<N>-test."""

    label: str
    start: dt.date
    end: dt.date


def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    return dt.date(year, month, 1) if day.day == 1 else dt.date(year, month, min(day.day, 28))


def parse_walk_forward(text: str) -> tuple[int, int]:
    """``TRAIN:TEST`` in months (e.g. ``12:3``)."""
    match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", text or "")
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise ConfigError(f"--walk-forward {text!r}: expected TRAIN:TEST in months, e.g. 12:3")
    return int(match.group(1)), int(match.group(2))


def make_windows(start: dt.date, end: dt.date, split: dt.date | None = None,
                 walk_forward: tuple[int, int] | None = None) -> list[Window]:
    """The periods to evaluate. ``split``: in-sample ``start..split-1``, out-of-sample ``split..end``.
    ``walk_forward`` (TRAIN, TEST months): train ``[s, s+TRAIN)``, test ``[s+TRAIN, s+TRAIN+TEST)``, rolled by
    TEST months while the test window starts before ``end`` (the last test window is cut at ``end``)."""
    if split is not None and walk_forward is not None:
        raise ConfigError("use --split or --walk-forward, not both")
    if split is not None:
        if not start + dt.timedelta(days=1) < split < end:  # both windows need start < end, like `evbt run`
            raise ConfigError(f"--split {split} must be after {start + dt.timedelta(days=1)} and before the end "
                              f"{end} (in-sample {start}..DATE-1, out-of-sample DATE..{end})")
        return [Window("is", start, split - dt.timedelta(days=1)), Window("oos", split, end)]
    if walk_forward is None:
        return [Window("full", start, end)]
    train, test = walk_forward
    windows: list[Window] = []
    n = 0
    while True:
        train_start = _add_months(start, n * test)
        test_start = _add_months(train_start, train)
        if test_start >= end:
            break
        test_end = min(_add_months(test_start, test) - dt.timedelta(days=1), end)
        n += 1
        windows += [Window(f"wf{n}-train", train_start, test_start - dt.timedelta(days=1)),
                    Window(f"wf{n}-test", test_start, test_end)]
    if not windows:
        raise ConfigError(f"--walk-forward {train}:{test}: the period {start}..{end} is too short for one window")
    return windows


# ================================================================================================ data snapshot


@dataclass
class SweepData:
    """Everything a worker needs (picklable, shipped to Dask workers): no store, no network."""

    strategy: str
    frames: dict[str, pd.DataFrame]  # full span (first window start - history pad .. last window end)
    fx: pd.DataFrame | None
    bench: pd.DataFrame | None
    events: list[events_mod.Event]
    fingerprints: dict[str, str]
    calendar_hash: str
    symbols: tuple[str, ...]
    benchmark: str | None = None
    token: str = ""


def _inclusive(frame: pd.DataFrame, lo: dt.date, hi: dt.date) -> pd.DataFrame:
    index = frame.index
    a = int(index.searchsorted(pd.Timestamp(lo), side="left"))
    b = int(index.searchsorted(pd.Timestamp(hi), side="right"))
    return frame.iloc[a:b]


def load_sweep_data(store: PriceStore, base: RunConfig, windows: Sequence[Window]) -> SweepData:
    """Read every price file once (offline or online as the store is), plus FX, benchmark and events."""
    lo = min(w.start for w in windows) - dt.timedelta(days=HISTORY_PAD_DAYS)
    hi = max(w.end for w in windows)
    events = events_mod.load_calendar([Path(p) for p in base.events_files], base.replace_events)
    frames: dict[str, pd.DataFrame] = {}
    fingerprints: dict[str, str] = {}
    for symbol in base.symbols:
        try:
            frames[symbol] = store.load(symbol, lo, hi)
        except MissingDataError:
            if not store.has(symbol):
                raise
            continue  # no bars in the whole span: left out of every window (warned per window)
        fingerprints[symbol] = store.fingerprint(symbol)
    if not frames:
        raise MissingDataError(f"no symbol of the universe has prices between {lo} and {hi}")
    fx = _aux(store, FX_SYMBOL, lo, hi, fingerprints) if any(listing(s).is_hk for s in frames) else None
    bench = _aux(store, base.benchmark, lo, hi, fingerprints) if base.benchmark else None
    cal_hash = events_mod.calendar_hash(events)
    identity = [base.strategy, list(base.symbols), base.benchmark, sorted(fingerprints.items()), cal_hash,
                lo.isoformat(), hi.isoformat(), [len(f) for f in frames.values()]]
    token = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]  # keys the per-process caches
    return SweepData(base.strategy, frames, fx, bench, events, fingerprints, cal_hash, base.symbols,
                     base.benchmark, token)


def _aux(store: PriceStore, symbol: str, lo: dt.date, hi: dt.date, fps: dict[str, str]) -> pd.DataFrame | None:
    if not store.has(symbol):
        return None
    fps[symbol] = store.fingerprint(symbol)
    try:
        return store.load(symbol, lo, hi)
    except MissingDataError:
        return None


@dataclass
class WindowContext:
    """Per-window slices and arrays, built once per process (never shipped)."""

    window: Window
    frames: dict[str, pd.DataFrame]
    history: dict[str, pd.DataFrame]
    fx_series: pd.Series | None
    bench_frame: pd.DataFrame | None
    market: fastpath.Market
    fingerprints: dict[str, str]
    warnings: list[str]
    contexts: dict[str, RunContext] = field(default_factory=dict)
    plans: dict[Any, Plan] = field(default_factory=dict)
    placements: dict[str, dict[tuple[str, Any], tuple[Any, ...]]] = field(default_factory=dict)


def window_context(data: SweepData, window: Window) -> WindowContext:
    """The frames ``engine.backtest.run`` would load for this window, and the fast path's arrays."""
    start, end = window.start, window.end
    frames: dict[str, pd.DataFrame] = {}
    history: dict[str, pd.DataFrame] = {}
    notes: list[str] = []
    for symbol in data.symbols:
        full = data.frames.get(symbol)
        part = None if full is None else _inclusive(full, start - dt.timedelta(days=HISTORY_PAD_DAYS), end)
        trading = None if part is None else _inclusive(part, start, end)
        if trading is None or trading.empty:
            notes.append(f"{symbol}: no price bars between {start} and {end}; left out")
            continue
        frames[symbol] = trading
        history[symbol] = part
    if not frames:
        raise MissingDataError(f"no symbol of the universe has prices between {start} and {end}")
    aux_lo = start - dt.timedelta(days=10)
    fx_series = None
    if data.fx is not None and any(listing(s).is_hk for s in frames):
        fx_part = _inclusive(data.fx, aux_lo, end)
        fx_series = fx_part["close"] if not fx_part.empty else None
    bench_frame = None
    if data.bench is not None:
        bench_part = _inclusive(data.bench, aux_lo, end)
        bench_frame = bench_part if not bench_part.empty else None
    symbols = [s for s in data.symbols if s in frames]
    bench_close = bench_frame["close"] if bench_frame is not None else None
    market = fastpath.build_market(frames, symbols, fx_series, bench_close)
    fps = {s: data.fingerprints[s] for s in sorted(frames)}
    for s in (FX_SYMBOL if fx_series is not None else None, data.benchmark):
        if s and s in data.fingerprints:
            fps[s] = data.fingerprints[s]
    return WindowContext(window, frames, history, fx_series, bench_frame, market, fps, notes)


_CONTEXT_CACHE: dict[tuple[str, Window], WindowContext] = {}


def cached_context(data: SweepData, window: Window) -> WindowContext:
    key = (data.token, window)
    if key not in _CONTEXT_CACHE:
        if len(_CONTEXT_CACHE) > 64:
            _CONTEXT_CACHE.clear()
        _CONTEXT_CACHE[key] = window_context(data, window)
    return _CONTEXT_CACHE[key]


def _plan_for(data: SweepData, wctx: WindowContext, config: RunConfig, params: Any) -> Plan:
    key = (config.strategy, config.fill, json.dumps(to_jsonable(params_to_dict(params)), sort_keys=True))
    plan = wctx.plans.get(key)
    if plan is None:
        ctx = wctx.contexts.get(config.fill)
        if ctx is None:
            start, end = wctx.window.start, wctx.window.end
            period = [e for e in data.events if start - dt.timedelta(days=7) <= e.date <= end]
            ctx = RunContext(tuple(wctx.frames), period, wctx.history, config.fill, start, end)
            wctx.contexts[config.fill] = ctx
        placements = wctx.placements.setdefault(config.fill, {})
        plan = plan_with_cache(get_strategy(config.strategy)(params), ctx, wctx.frames, placements)
        while len(wctx.plans) >= PLAN_CACHE_SIZE:  # tasks come sorted by plan key: a small FIFO suffices
            wctx.plans.pop(next(iter(wctx.plans)))
        wctx.plans[key] = plan
    return plan


def plan_with_cache(strategy: Any, ctx: RunContext, frames: dict[str, pd.DataFrame],
                    placements: dict[tuple[str, Any], tuple[Any, ...]]) -> Plan:
    """``engine.plan.planner.build_plan`` with the fill-bar look-ups memoised in ``placements`` across points."""
    return build_plan(strategy, ctx, frames, placements)


# ================================================================================================ one point


_PARAMS_CACHE: dict[str, Any] = {}


def typed_params(strategy: str, raw: dict[str, Any]) -> Any:
    """``build_params`` memoised per (strategy, values): type hints are slow to resolve per point."""
    key = strategy + json.dumps(to_jsonable(raw), sort_keys=True)
    params = _PARAMS_CACHE.get(key)
    if params is None:
        if len(_PARAMS_CACHE) > 100_000:
            _PARAMS_CACHE.clear()
        params = _PARAMS_CACHE[key] = build_params(get_strategy(strategy).Params, raw, strategy)
    return params


@dataclass
class PointResult:
    """A finished evaluation of one configuration on one window."""

    metrics: Metrics
    stats: fastpath.ReturnStats
    engine: str  # fast | backtrader
    trades: list[TradeRecord]
    orders: list[OrderRecord]
    curve: pd.DataFrame | None
    plan: Plan
    context: WindowContext


def evaluate(data: SweepData, window: Window, config: RunConfig, records: bool = False,
             force_backtrader: bool = False) -> PointResult:
    """One backtest of ``config`` on ``window`` (fast path when exact, else backtrader)."""
    wctx = cached_context(data, window)
    params = typed_params(config.strategy, config.params)
    plan = _plan_for(data, wctx, config, params)
    stop, take = getattr(params, "stop_loss", None), getattr(params, "take_profit", None)
    if force_backtrader or fastpath.unsupported_reason(config) is not None:
        return _evaluate_backtrader(wctx, config, plan, stop, take)
    result = fastpath.simulate(wctx.market, config, plan, stop, take, records=records)
    if not np.all(np.isfinite(result.equity)):
        return _evaluate_backtrader(wctx, config, plan, stop, take)
    metrics, stats = fastpath.fast_metrics(wctx.market, result, config.cash)
    trades = _with_benchmarks(result.trades, wctx, config) if records else result.trades
    orders = sorted(plan.skipped + result.orders, key=lambda o: (o.date, o.symbol, o.status)) if records else []
    return PointResult(metrics, stats, "fast", trades, orders, result.curve() if records else None, plan, wctx)


def _with_benchmarks(trades: list[TradeRecord], wctx: WindowContext, config: RunConfig) -> list[TradeRecord]:
    if wctx.bench_frame is None:
        return trades
    return [dataclasses.replace(t, benchmark_return=benchmark_trade_return(t, wctx.bench_frame, config.fill))
            for t in trades]


def _evaluate_backtrader(wctx: WindowContext, config: RunConfig, plan: Plan, stop: float | None,
                         take: float | None) -> PointResult:
    from engine.execution.backtrader_driver import run_backtest

    symbols = [s for s in config.symbols if s in wctx.frames]
    trades, orders, curve = run_backtest(config, wctx.frames, plan, wctx.fx_series, stop_loss=stop,
                                         take_profit=take, symbols=symbols)
    bench_close = wctx.bench_frame["close"] if wctx.bench_frame is not None else None
    metrics = compute_metrics(curve["equity"], trades, curve["exposure"], bench_close, initial_value=config.cash)
    values = np.concatenate([[config.cash], curve["equity"].to_numpy(dtype=float)])
    from engine.analysis.metrics import daily_returns

    stats = fastpath.return_stats(daily_returns(values))
    trades = _with_benchmarks(trades, wctx, config)
    orders = sorted(plan.skipped + orders, key=lambda o: (o.date, o.symbol, o.status))
    return PointResult(metrics, stats, "backtrader", trades, orders, curve, plan, wctx)


def point_report(data: SweepData, window: Window, config: RunConfig, res: PointResult) -> dict[str, Any]:
    """The report.json ``evbt run`` would write for this configuration (built from the sweep's result)."""
    wctx = res.context
    params = params_to_dict(build_params(get_strategy(config.strategy).Params, config.params, config.strategy))
    needs_fx = any(listing(s).is_hk for s in wctx.frames)
    fx_source = "none needed" if not needs_fx else ("HKD=X series" if wctx.fx_series is not None else "7.80 peg")
    curve = res.curve if res.curve is not None else pd.DataFrame(columns=["equity", "cash", "exposure"])
    bench = wctx.bench_frame["close"] if wctx.bench_frame is not None else None
    result = RunResult(curve["equity"], curve["cash"], curve["exposure"], res.trades, res.orders, bench,
                       fx_source, list(wctx.warnings))
    run_id = make_run_id(config.strategy, params, config.to_dict(), wctx.fingerprints, data.calendar_hash)
    data_info = {s: {"fingerprint": fp} for s, fp in wctx.fingerprints.items()}
    return build_report(run_id=run_id, strategy=config.strategy, params=params, config=config.to_dict(),
                        result=result, metrics=res.metrics, data=data_info,
                        events={"calendar_hash": data.calendar_hash, "count": len(data.events),
                                "used": len(res.plan.events_used), "used_ids": res.plan.events_used})


# ================================================================================================ points


@dataclass(frozen=True)
class Task:
    """One (point, window) to evaluate; ``key`` is the equivalent run id."""

    point: int
    window: Window
    config: RunConfig
    key: str
    config_json: str = ""
    params_json: str = ""
    values_json: str = ""


def point_config(base: RunConfig, values: dict[str, Any], grid: Grid, params_cls: type) -> RunConfig:
    """The base configuration with one grid point's values applied (validated like ``evbt run``)."""
    kinds = {a.key: a.kind for a in grid.axes}
    params = dict(base.params)
    run: dict[str, Any] = {}
    costs: dict[str, float] = {}
    for key, value in values.items():
        if kinds[key] == "param":
            params[key] = value
        elif key in _COST_FIELDS:
            costs[_COST_FIELDS[key]] = float(value)
        else:
            run[key] = value
    typed = params_to_dict(typed_params(base.strategy, params))
    try:
        cost_model = dataclasses.replace(base.costs, **costs) if costs else base.costs
        return dataclasses.replace(base, params=typed, costs=cost_model, **run)
    except ValueError as exc:
        raise ConfigError(f"grid point {values}: {exc}") from None


def config_dict(base_dict: dict[str, Any], cfg: RunConfig) -> dict[str, Any]:
    """``cfg.to_dict()`` computed from the base configuration's dict (only swept fields differ; tested)."""
    out = dict(base_dict)
    out["params"] = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.params.items()}
    out["costs"] = {f.name: getattr(cfg.costs, f.name) for f in dataclasses.fields(cfg.costs)}
    for name in ("cash", "fill", "sizing", "size", "overlap"):
        out[name] = getattr(cfg, name)
    out["start"], out["end"] = cfg.start.isoformat(), cfg.end.isoformat()
    return out


def run_key(strategy: str, params: dict[str, Any], config: dict[str, Any], fingerprints: dict[str, str],
            calendar_hash: str) -> str:
    """``engine.saved_runs.make_run_id`` for inputs that are already plain JSON (tests check they agree)."""
    payload = {"strategy": strategy, "params": params, "config": config, "data": fingerprints,
               "calendar_hash": calendar_hash}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    slug = re.sub(r"[^a-z0-9]+", "-", strategy.lower()).strip("-") or "run"
    return f"{slug}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def build_tasks(base: RunConfig, grid: Grid, windows: Sequence[Window], data: SweepData) -> list[Task]:
    params_cls = get_strategy(base.strategy).Params
    fps = {w: _window_fingerprints(data, w) for w in windows}
    base_dict = base.to_dict()
    tasks: list[Task] = []
    for n, values in enumerate(grid.points()):
        config = point_config(base, values, grid, params_cls)
        values_json = json.dumps(to_jsonable(values), sort_keys=True)
        for window in windows:
            cfg = dataclasses.replace(config, start=window.start, end=window.end)
            cdict = config_dict(base_dict, cfg)
            key = run_key(cfg.strategy, cdict["params"], cdict, fps[window], data.calendar_hash)
            tasks.append(Task(n, window, cfg, key, json.dumps(cdict, sort_keys=True),
                              json.dumps(cdict["params"], sort_keys=True), values_json))
    return tasks


def _window_fingerprints(data: SweepData, window: Window) -> dict[str, str]:
    return cached_context(data, window).fingerprints


# ================================================================================================ rows & storage


ROW_FIELDS: dict[str, str] = {
    "key": "str", "point": "int", "window": "str", "start": "str", "end": "str", "values": "str",
    "params": "str", "config": "str", "engine": "str", "n_returns": "int", "sharpe_daily": "float",
    "skew": "float", "kurtosis": "float",
}


def make_row(task: Task, res: PointResult) -> dict[str, Any]:
    row: dict[str, Any] = {
        "key": task.key, "point": task.point, "window": task.window.label, "start": task.window.start.isoformat(),
        "end": task.window.end.isoformat(), "values": task.values_json, "params": task.params_json,
        "config": task.config_json, "engine": res.engine,
        "n_returns": res.stats.n, "sharpe_daily": res.stats.sharpe_daily, "skew": res.stats.skew,
        "kurtosis": res.stats.kurtosis,
    }
    row.update(res.metrics.to_dict())
    return row


def _schema() -> Any:
    import pyarrow as pa

    types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}
    fields = [pa.field(k, types[v]) for k, v in ROW_FIELDS.items()]
    for f in dataclasses.fields(Metrics):
        kind = pa.int64() if "int" in str(f.type) else pa.float64()
        fields.append(pa.field(f.name, kind))
    return pa.schema(fields)


class SweepFolder:
    """``<runs>/sweeps/<sweep_id>/``: manifest, atomic parquet chunks of rows, summary and best report."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.points_dir = self.path / "points"
        self._seq = 0

    def create(self) -> None:
        self.points_dir.mkdir(parents=True, exist_ok=True)
        # leftovers of a killed writer: chunks, and manifest/summary/report temp files next to them
        for tmp in [*self.points_dir.glob(".*.tmp"), *self.path.glob(".*.tmp")]:
            match = re.search(r"\.(\d+)\.tmp$", tmp.name)
            if match and not _pid_alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    tmp.unlink()

    def chunks(self) -> list[Path]:
        return sorted(self.points_dir.glob("chunk-*.parquet")) if self.points_dir.is_dir() else []

    def keys(self) -> set[str]:
        import pyarrow.parquet as pq

        out: set[str] = set()
        for chunk in self.chunks():
            out.update(pq.read_table(chunk, columns=["key"]).column("key").to_pylist())
        return out

    def write_chunk(self, rows: list[dict[str, Any]]) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from engine.atomic import atomic_write_bytes

        schema = _schema()
        table = pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in rows], schema=schema)
        buf = io.BytesIO()
        pq.write_table(table, buf)
        self._seq += 1
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.points_dir / f"chunk-{stamp}-{os.getpid()}-{self._seq:05d}.parquet"
        atomic_write_bytes(path, buf.getvalue())
        return path

    def read(self, keys: Iterable[str] | None = None, columns: Sequence[str] | None = None) -> pd.DataFrame:
        import pyarrow.parquet as pq

        names = list(columns) if columns is not None else None
        frames = [pq.read_table(chunk, columns=names).to_pandas() for chunk in self.chunks()]
        if not frames:
            return pd.DataFrame(columns=names or _schema().names)
        rows = pd.concat(frames, ignore_index=True).drop_duplicates("key", keep="last")
        if keys is not None:
            rows = rows[rows["key"].isin(set(keys))]
        return rows.reset_index(drop=True)

    def write_json(self, name: str, doc: dict[str, Any]) -> None:
        from engine.atomic import atomic_write_bytes

        atomic_write_bytes(self.path / name, dumps_report(doc).encode("utf-8"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def sweeps_dir(runs_dir: Path | None = None) -> Path:
    return (Path(runs_dir) if runs_dir is not None else default_runs_dir()) / "sweeps"


def make_sweep_id(base: RunConfig, data: SweepData) -> str:
    """Scope of the reusable points: strategy, universe, period, benchmark, events, data and calendar."""
    scope = {"strategy": base.strategy, "symbols": list(base.symbols), "start": base.start.isoformat(),
             "end": base.end.isoformat(), "benchmark": base.benchmark, "events": list(base.events_files),
             "replace_events": base.replace_events, "data": data.fingerprints, "calendar": data.calendar_hash}
    digest = hashlib.sha256(json.dumps(scope, sort_keys=True).encode()).hexdigest()[:12]
    return f"sweep-{re.sub(r'[^a-z0-9]+', '-', base.strategy.lower())}-{digest}"


# ================================================================================================ execution


_WORKER_DATA: SweepData | None = None


def run_batch(data: SweepData, batch: Sequence[Task]) -> list[dict[str, Any]]:
    """Evaluate a batch of tasks (in a pool process, a Dask worker or inline) and return their rows."""
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvbtWarning)
        for task in batch:
            rows.append(make_row(task, evaluate(data, task.window, task.config)))
    return rows


def _pool_batch(batch: Sequence[Task]) -> list[dict[str, Any]]:
    assert _WORKER_DATA is not None
    return run_batch(_WORKER_DATA, batch)


def _batches(items: list[Task], workers: int) -> list[list[Task]]:
    if not items:
        return []
    size = max(8, min(200, math.ceil(len(items) / max(workers * 4, 1))))
    return [items[i:i + size] for i in range(0, len(items), size)]


def execute_serial(data: SweepData, batches: list[list[Task]]) -> Iterator[list[dict]]:
    for batch in batches:
        yield run_batch(data, batch)


def execute_processes(data: SweepData, batches: list[list[Task]],
                      workers: int) -> Iterator[list[dict]]:
    """Fork-based process pool: children inherit the data and the warmed window contexts (copy-on-write)."""
    import concurrent.futures as cf
    import multiprocessing as mp

    global _WORKER_DATA
    _WORKER_DATA = data
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork")) as pool:
        futures = [pool.submit(_pool_batch, batch) for batch in batches]
        try:
            for future in cf.as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


class DaskBackend:
    """``--cluster ADDR`` (an existing scheduler) or ``--cluster local`` (a LocalCluster on loopback)."""

    def __init__(self, address: str, workers: int, timeout: float | None = None) -> None:
        timeout = timeout if timeout is not None else float(os.environ.get(CONNECT_TIMEOUT_ENV) or 5.0)
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:  # an optional extra: a usage error, before anything is written
            raise ConfigError("--cluster needs the 'cluster' extra (Dask distributed): "
                              "pip install 'evbt[cluster]'") from None
        self.cluster = None
        try:
            if address == "local":
                self.cluster = LocalCluster(n_workers=max(workers, 1), threads_per_worker=1, processes=True,
                                            dashboard_address="127.0.0.1:0", host="127.0.0.1")
                self.client = Client(self.cluster, timeout=timeout)
            else:
                self.client = Client(address, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise RunError(f"cannot reach the Dask cluster at {address}: {exc}") from None
        except ValueError as exc:  # a malformed address (e.g. no port): bad input, not an internal error
            self.close()
            raise ConfigError(f"--cluster {address!r}: {exc} (expected tcp://HOST:PORT or 'local')") from None

    def run(self, data: SweepData, batches: list[list[Task]]) -> Iterator[list[dict]]:
        from dask.distributed import as_completed

        shipped = self.client.scatter(data, broadcast=True)
        futures = [self.client.submit(run_batch, shipped, batch, pure=False) for batch in batches]
        for future in as_completed(futures):
            yield future.result()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if getattr(self, "client", None) is not None:
                self.client.close()
        with contextlib.suppress(Exception):
            if self.cluster is not None:
                self.cluster.close()


# ================================================================================================ analysis


def norm_cdf(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def norm_ppf(p: float) -> float:
    """Inverse standard normal CDF (Acklam's rational approximation refined by two Halley steps)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02,
         -3.066479806614716e01, 2.506628277459239e00)
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01,
         -1.328068155288572e01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00,
         4.374664141464968e00, 2.938163982698783e00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
    low = 0.02425
    if p < low:
        q = math.sqrt(-2 * math.log(p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    elif p <= 1 - low:
        q = p - 0.5
        r = q * q
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / \
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    else:
        q = math.sqrt(-2 * math.log(1 - p))
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    for _ in range(2):  # Halley refinement to full double precision
        e = norm_cdf(x) - p
        u = e * math.sqrt(2 * math.pi) * math.exp(x * x / 2)
        x = x - u / (1 + x * u / 2)
    return x


@dataclass(frozen=True)
class DeflatedSharpe:
    """Bailey & López de Prado (2014): probability that the best point's true Sharpe is above the
    Sharpe a best-of-N selection would show by luck alone."""

    trials: int
    sharpe: float  # daily (not annualised) Sharpe of the best point
    expected_max_sharpe: float  # SR0: expected maximum daily Sharpe of N trials with zero true Sharpe
    dsr: float
    n_returns: int
    skew: float
    kurtosis: float


def deflated_sharpe(sharpe: float, trial_sharpes: Sequence[float], n_returns: int, skew: float,
                    kurtosis: float) -> DeflatedSharpe | None:
    """DSR = Phi(((SR - SR0) sqrt(T - 1)) / sqrt(1 - skew SR + (kurt - 1) / 4 SR^2)), with
    SR0 = sqrt(Var[SR_n]) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e))). N = the number of
    distinct points tried (an upper bound on independent trials: conservative)."""
    finite = [s for s in trial_sharpes if s is not None and math.isfinite(s)]
    n = len(finite)
    if n_returns < 3 or not math.isfinite(sharpe):
        return None
    if n >= 2:
        var = float(np.var(finite, ddof=1))
        sr0 = math.sqrt(var) * ((1 - EULER_GAMMA) * norm_ppf(1 - 1 / n) + EULER_GAMMA * norm_ppf(1 - 1 / (n * math.e)))
    else:
        sr0 = 0.0
    denom = 1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe**2
    if not denom > 0:
        return None
    z = (sharpe - sr0) * math.sqrt(n_returns - 1) / math.sqrt(denom)
    return DeflatedSharpe(max(n, 1), sharpe, sr0, norm_cdf(z), n_returns, skew, kurtosis)


def _better(metric: str) -> bool:
    """True when larger is better."""
    return metric not in LOWER_IS_BETTER


def rank_points(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows sorted best first by ``metric`` (undefined values last, ties by point number)."""
    col = frame[metric].astype("float64")
    key = -col if _better(metric) else col
    return frame.assign(_k=key.fillna(np.inf)).sort_values(["_k", "point"], kind="stable").drop(columns="_k")


# ================================================================================================ orchestration


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


@dataclass
class SweepOutcome:
    sweep_id: str
    path: Path
    summary: dict[str, Any]
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
    timing.use_schedule_cache(store.root / ".calendars")
    windows = make_windows(req.base.start, req.base.end, req.split, req.walk_forward)
    data = load_sweep_data(store, req.base, windows)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EvbtWarning)
        tasks = build_tasks(req.base, req.grid, windows, data)
    for note in dict.fromkeys(str(w.message) for w in caught):
        warnings.warn(note, EvbtWarning, stacklevel=2)
    for note in dict.fromkeys(n for w in windows for n in cached_context(data, w).warnings):
        warnings.warn(note, EvbtWarning, stacklevel=2)
    backend = DaskBackend(req.cluster, req.workers) if req.cluster else None  # fail before writing anything
    folder = SweepFolder(sweeps_dir(runs_dir) / make_sweep_id(req.base, data))
    # One sweep of a folder at a time: a second identical sweep waits, then reuses every point.
    with _folder_lock(folder.path):
        try:
            folder.create()
            folder.write_json("manifest.json", _manifest(req, data, folder.path.name, windows))
            done = folder.keys()
            values = list(req.grid.points())
            todo: dict[str, Task] = {}
            for task in tasks:
                if task.key not in done and task.key not in todo:
                    todo[task.key] = task
            computed = _compute(data, list(todo.values()), req, folder, backend, progress)
        finally:
            if backend is not None:
                backend.close()
        columns = [n for n in _schema().names if n not in ("config", "params")]
        rows = folder.read({t.key for t in tasks}, columns=columns)
        summary = summarise(req, rows, tasks, values, windows, folder.path.name)
        summary["counts"] = {"points": len(req.grid), "evaluations": len(tasks), "computed": computed,
                             "reused": len({t.key for t in tasks}) - computed}
        folder.write_json("summary.json", summary)
        _write_best_report(req, data, summary, folder)
    return SweepOutcome(folder.path.name, folder.path, summary, computed, len({t.key for t in tasks}) - computed,
                        time.perf_counter() - began)


@contextlib.contextmanager
def _folder_lock(path: Path) -> Iterator[None]:
    """Cross-process lock for one sweep folder (a hidden lock file beside it in <runs>/sweeps/)."""
    from filelock import FileLock

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {path.parent}: {exc.strerror or exc}") from exc
    with FileLock(path.parent / f".{path.name}.lock"):
        yield


def _compute(data: SweepData, items: list[Task], req: SweepRequest, folder: SweepFolder,
             backend: DaskBackend | None, progress: Progress | None) -> int:
    total = len(items)
    if progress:
        progress(0, total)
    if not items:
        return 0
    items.sort(key=lambda task: (task.window.start, task.config.fill, task.params_json))
    workers = max(1, req.workers)
    batches = _batches(items, workers)
    if backend is not None:
        stream = backend.run(data, batches)
    elif workers > 1 and len(batches) > 1:
        _warm(data, items)
        stream = execute_processes(data, batches, workers)
    else:
        stream = execute_serial(data, batches)
    buffer: list[dict[str, Any]] = []
    finished = 0
    chunk_rows = int(os.environ.get(CHUNK_ROWS_ENV) or CHUNK_ROWS)
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
    return finished


def _warm(data: SweepData, items: list[Task]) -> None:
    """Build window arrays and each fill's session cache before forking, so children share them."""
    seen: set[tuple[Window, str]] = set()
    for task in items:
        key = (task.window, task.config.fill)
        if key in seen:
            continue
        seen.add(key)
        wctx = cached_context(data, task.window)
        params = build_params(get_strategy(task.config.strategy).Params, task.config.params, task.config.strategy)
        _plan_for(data, wctx, task.config, params)


def _manifest(req: SweepRequest, data: SweepData, sweep_id: str, windows: Sequence[Window]) -> dict[str, Any]:
    doc = build_manifest(run_id=sweep_id, data_fingerprints=data.fingerprints, calendar_hash=data.calendar_hash)
    doc.update({
        "kind": "sweep", "sweep_id": sweep_id, "strategy": req.strategy, "grid": req.grid.describe(),
        "base_config": req.base.to_dict(), "metric": req.metric,
        "windows": [{"label": w.label, "start": w.start.isoformat(), "end": w.end.isoformat()} for w in windows],
    })
    return doc


def _metric_value(row: pd.Series | dict, metric: str) -> float | None:
    value = row.get(metric)
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def summarise(req: SweepRequest, rows: pd.DataFrame, tasks: Sequence[Task], values: list[dict[str, Any]],
              windows: Sequence[Window], sweep_id: str) -> dict[str, Any]:
    """Ranking, best point, out-of-sample analysis and the multiple-testing note (JSON-ready)."""
    by_key = rows.set_index("key")
    metric = req.metric
    per_window: dict[str, pd.DataFrame] = {}
    for window in windows:
        keys = [t.key for t in tasks if t.window == window]
        per_window[window.label] = by_key.loc[[k for k in keys if k in by_key.index]].reset_index()
    main = "is" if req.split else ("full" if not req.walk_forward else None)
    doc: dict[str, Any] = {"sweep_id": sweep_id, "strategy": req.strategy, "metric": metric,
                           "higher_is_better": _better(metric), "grid": req.grid.describe(),
                           "windows": [w.label for w in windows]}
    if main is not None:
        ranked = rank_points(per_window[main], metric)
        oos = {int(r["point"]): r for r in per_window["oos"].to_dict("records")} if req.split else {}
        doc["ranking"] = [_point_doc(r, values, oos) for r in ranked.to_dict("records")]
        doc["best"] = doc["ranking"][0] if doc["ranking"] else None
        doc["multiple_testing"] = _multiple_testing(ranked, len(req.grid))
    else:
        doc.update(_walk_forward(per_window, windows, values, metric, len(req.grid)))
    return doc


def _point_doc(row: dict[str, Any], values: list[dict[str, Any]], oos: dict[int, dict[str, Any]]) -> dict[str, Any]:
    point = int(row["point"])
    out: dict[str, Any] = {"point": point, "values": to_jsonable(values[point]), "key": row["key"],
                           "engine": row["engine"], "metrics": {m: _clean(row.get(m)) for m in METRICS}}
    match = oos.get(point)
    if match is not None:
        out["oos_key"] = match["key"]
        out["oos_metrics"] = {m: _clean(match.get(m)) for m in METRICS}
    return out


def _clean(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return number if math.isfinite(number) else None


def _multiple_testing(ranked: pd.DataFrame, points: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"points_tried": points, "deflated_sharpe": None,
                           "note": f"{points} points tried: the best of many is flattered by luck."}
    if ranked.empty:
        return doc
    best = ranked.iloc[0]
    sharpe, n = _clean(best.get("sharpe_daily")), int(best.get("n_returns") or 0)
    skew, kurt = _clean(best.get("skew")), _clean(best.get("kurtosis"))
    if sharpe is None or skew is None or kurt is None:
        return doc
    result = deflated_sharpe(sharpe, [_clean(v) for v in ranked["sharpe_daily"]], n, skew, kurt)
    if result is not None:
        doc["deflated_sharpe"] = dataclasses.asdict(result)
        doc["note"] = (f"{points} points tried; deflated Sharpe ratio of the best point = {result.dsr:.3f} "
                       f"(probability its true Sharpe beats the best-of-{result.trials} luck threshold "
                       f"{result.expected_max_sharpe * math.sqrt(252):.2f} annualised)")
    return doc


def _walk_forward(per_window: dict[str, pd.DataFrame], windows: Sequence[Window], values: list[dict[str, Any]],
                  metric: str, points: int) -> dict[str, Any]:
    steps = []
    labels = [w.label for w in windows]
    for w in windows:
        if not w.label.endswith("-train"):
            continue
        test_label = w.label.replace("-train", "-test")
        test = next(x for x in windows if x.label == test_label)
        ranked = rank_points(per_window[w.label], metric)
        if ranked.empty:
            continue
        best = ranked.iloc[0]
        point = int(best["point"])
        test_rows = per_window[test_label]
        match = test_rows[test_rows["point"] == point]
        test_row = match.iloc[0] if len(match) else None
        steps.append({
            "train": {"label": w.label, "start": w.start.isoformat(), "end": w.end.isoformat()},
            "test": {"label": test_label, "start": test.start.isoformat(), "end": test.end.isoformat()},
            "chosen_point": point, "values": to_jsonable(values[point]), "train_metric": _clean(best.get(metric)),
            "test_metric": None if test_row is None else _clean(test_row.get(metric)),
            "test_total_return": None if test_row is None else _clean(test_row.get("total_return")),
            "test_key": None if test_row is None else test_row["key"],
            "multiple_testing": _multiple_testing(ranked, points),
        })
    oos = [s["test_metric"] for s in steps if s["test_metric"] is not None]
    growth = 1.0
    for s in steps:
        growth *= 1.0 + (s["test_total_return"] or 0.0)
    return {"walk_forward": steps, "windows": labels,
            "walk_forward_summary": {"steps": len(steps), "mean_test_metric": float(np.mean(oos)) if oos else None,
                                     "chained_test_return": growth - 1.0 if steps else None},
            "best": None, "ranking": [], "multiple_testing": {"points_tried": points}}


def _write_best_report(req: SweepRequest, data: SweepData, summary: dict[str, Any], folder: SweepFolder) -> None:
    """report.json of the best point (full trades), so the folder reads like a run folder."""
    best = summary.get("best")
    if not best:
        steps = summary.get("walk_forward") or []
        if not steps:
            return
        key, window_label = steps[-1]["test_key"], steps[-1]["test"]["label"]
    else:
        key, window_label = best["key"], ("is" if req.split else "full")
    rows = folder.read([key])
    if rows.empty:
        return
    row = rows.iloc[0]
    from engine.plan.config import run_config_from_dict

    config = run_config_from_dict(json.loads(row["config"]))
    window = Window(window_label, config.start, config.end)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvbtWarning)
        res = evaluate(data, window, config, records=True)
    report = point_report(data, window, config, res)
    report["sweep"] = {"sweep_id": summary["sweep_id"], "metric": req.metric, "points_tried": len(req.grid),
                       "note": "report of the best point of the sweep"}
    folder.write_json("report.json", report)


# ================================================================================================ reading back


def find_sweep(ref: str, runs_dir: Path | None = None) -> Path | None:
    """A sweep folder by id, unique id prefix or path; None when ``ref`` is not a sweep."""
    path = Path(ref)
    if path.is_dir() and (path / "manifest.json").is_file() and (path / "points").is_dir():
        return path
    root = sweeps_dir(runs_dir)
    if not root.is_dir() or not ref.startswith("sweep-"):
        return None
    name, _, _ = ref.partition(":")
    matches = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(name))
    exact = [p for p in matches if p.name == name]
    if exact:
        return exact[0]
    if len(matches) > 1:
        raise ConfigError(f"sweep id prefix {name!r} is ambiguous: {', '.join(p.name for p in matches[:10])}")
    return matches[0] if matches else None


def load_sweep_report(ref: str, runs_dir: Path | None = None) -> dict[str, Any] | None:
    """A run report for ``SWEEP_ID`` (the best point, full report) or ``SWEEP_ID:RANK`` (the point ranked RANK,
    metrics/params/config only, no trades); None when ``ref`` is not a sweep (callers then try runs)."""
    folder = find_sweep(ref, runs_dir)
    if folder is None:
        return None
    _, _, rank_text = ref.partition(":")
    if not rank_text or rank_text == "1":
        path = folder / "report.json"
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    try:
        rank = int(rank_text or 1)
    except ValueError:
        raise ConfigError(f"{ref}: expected SWEEP_ID:RANK with an integer rank") from None
    ranking = summary.get("ranking") or []
    if not 1 <= rank <= len(ranking):
        raise ConfigError(f"{ref}: rank must be between 1 and {len(ranking)}")
    entry = ranking[rank - 1]
    rows = SweepFolder(folder).read([entry["key"]])
    config = json.loads(rows.iloc[0]["config"]) if len(rows) else {}
    return {"schema_version": 1, "run_id": entry["key"], "strategy": summary.get("strategy"),
            "params": config.get("params", {}), "config": config, "metrics": entry["metrics"], "trades": [],
            "orders": [], "period": {"start": config.get("start"), "end": config.get("end"), "bars": None},
            "universe": config.get("symbols", []), "benchmark": config.get("benchmark"), "data": {},
            "fx_source": None, "warnings": [f"sweep point (rank {rank} of {summary['sweep_id']}): trades not stored"]}



# ================================================================================================ heatmap


def heatmap_keys_for(grid: Grid, text: str | None) -> tuple[str, str]:
    """The two grid keys of the heatmap (``X,Y``; default: the first two axes)."""
    keys = grid.keys
    if text:
        wanted = [k.strip() for k in text.split(",") if k.strip()]
        if len(wanted) != 2 or wanted[0] == wanted[1]:
            raise ConfigError(f"--heatmap-keys {text!r}: expected two different grid keys X,Y")
        for key in wanted:
            if key not in keys:
                from engine.plan.config import suggest

                raise ConfigError(f"--heatmap-keys: {key!r} is not a grid key{suggest(key, keys)}; "
                                  f"grid keys: {', '.join(keys)}")
        return wanted[0], wanted[1]
    if len(keys) < 2:
        raise ConfigError("--heatmap needs two grid keys (give two -g options)")
    return keys[0], keys[1]


def heatmap_matrix(grid_values: dict[str, list[Any]], ranking: Sequence[dict[str, Any]], keys: tuple[str, str],
                   metric: str, higher_is_better: bool) -> tuple[list[Any], list[Any], np.ndarray]:
    """Best metric value per (x, y) cell over the other grid keys (NaN where undefined), axes in grid order."""
    xs = [_hashable(v) for v in grid_values[keys[0]]]
    ys = [_hashable(v) for v in grid_values[keys[1]]]
    grid = np.full((len(ys), len(xs)), np.nan)
    for entry in ranking:
        value = entry["metrics"].get(metric)
        if value is None:
            continue
        x = xs.index(_hashable(entry["values"][keys[0]]))
        y = ys.index(_hashable(entry["values"][keys[1]]))
        current = grid[y, x]
        if np.isnan(current) or (value > current if higher_is_better else value < current):
            grid[y, x] = value
    return xs, ys, grid


def _hashable(value: Any) -> Any:
    return "+".join(value) if isinstance(value, list) else value


def write_heatmap(path: Path, folder: Path, keys: tuple[str, str], metric: str) -> Path:
    """PNG of the metric over two grid keys (matplotlib, imported only here), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from engine.atomic import atomic_write_bytes

    summary = json.loads((Path(folder) / "summary.json").read_text(encoding="utf-8"))
    xs, ys, grid = heatmap_matrix(summary["grid"], summary["ranking"], keys, metric, summary["higher_is_better"])
    fig, ax = plt.subplots(figsize=(max(4.0, 0.35 * len(xs) + 2), max(3.0, 0.35 * len(ys) + 1.5)))
    image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", origin="lower", cmap="viridis")
    ax.set_xticks(range(len(xs)), [str(x) for x in xs], rotation=90 if len(xs) > 12 else 0)
    ax.set_yticks(range(len(ys)), [str(y) for y in ys])
    ax.set_xlabel(keys[0])
    ax.set_ylabel(keys[1])
    ax.set_title(f"{summary['strategy']}: {metric} (best over other keys)")
    fig.colorbar(image, ax=ax, label=metric)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)
