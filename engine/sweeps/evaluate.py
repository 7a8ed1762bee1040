"""One backtest of one configuration on one window, from a sweep's data snapshot.

The only place a sweep calls a driver: the fast path when it is exact for the configuration, backtrader
otherwise. ``SweepCaches`` owns what is worth keeping between points of one process (window contexts, plans,
typed parameters); it is passed in, never a module global.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.analysis.metrics import Metrics, ReturnStats, compute_metrics, daily_returns, return_stats
from engine.backtest import benchmark_trade_return, mark_date
from engine.collector import collector_paused
from engine.execution import fast_driver as fastpath
from engine.execution.records import OrderRecord, RunResult, TradeRecord
from engine.plan.config import RunConfig, build_params, params_to_dict
from engine.plan.planner import PlacementMemo, Plan, RunContext, build_plan, build_plan_with_exits
from engine.plan.reuse import PendingTemplate, declared_exit_params
from engine.plan.signal_checks import checked_warmup
from engine.plan.warmup import WarmupFrames, with_warmup
from engine.reporting.models import Report
from engine.reporting.report import build_report, report_text, to_jsonable
from engine.saved_runs import make_run_id
from engine.sweeps.data import SweepData, WindowContext, window_context
from engine.sweeps.windows import Window
from strategies.registry import get_strategy

PLAN_CACHE_SIZE = 64
CONTEXT_CACHE_SIZE = 64
PARAMS_CACHE_SIZE = 100_000


class SweepCaches:
    """Per-process memo of window contexts (by data token and window) and typed parameters.

    Pickles empty: a Dask worker or a forked child builds its own from the shipped data."""

    def __init__(self) -> None:
        self.contexts: dict[tuple[str, Window], WindowContext] = {}
        self.params: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def context(self, data: SweepData, window: Window) -> WindowContext:
        key = (data.token, window)
        if key not in self.contexts:
            if len(self.contexts) >= CONTEXT_CACHE_SIZE:
                self.contexts.clear()
            self.contexts[key] = window_context(data, window)
        return self.contexts[key]

    def typed_params(self, strategy: str, raw: dict[str, Any]) -> Any:
        """``build_params`` memoised per (strategy, values): type hints are slow to resolve per point."""
        key = strategy + json.dumps(to_jsonable(raw), sort_keys=True)
        params = self.params.get(key)
        if params is None:
            if len(self.params) >= PARAMS_CACHE_SIZE:
                self.params.clear()
            params = self.params[key] = build_params(get_strategy(strategy).Params, raw, strategy)
        return params


def cached_context(data: SweepData, window: Window, caches: SweepCaches | None = None) -> WindowContext:
    return (caches or SweepCaches()).context(data, window)


def typed_params(strategy: str, raw: dict[str, Any], caches: SweepCaches | None = None) -> Any:
    return (caches or SweepCaches()).typed_params(strategy, raw)


def plan_for(data: SweepData, wctx: WindowContext, config: RunConfig, params: Any) -> Plan:
    """The plan of ``config`` on the window, memoised in the window context (key: fill and parameters).

    A strategy declaring ``exit_params`` plans once per value of its other parameters: a point differing only
    in declared exit parameters is derived from that plan (``engine.plan.reuse``), equal to a fresh build."""
    values = params_to_dict(params)
    key = (config.strategy, config.fill, json.dumps(to_jsonable(values), sort_keys=True))
    plan = wctx.plans.get(key)
    if plan is None:
        with collector_paused():  # planning allocates objects that live on: no collection rescans the heap
            plan = _plan(data, wctx, config, params, values, key)
    return plan


def _plan(data: SweepData, wctx: WindowContext, config: RunConfig, params: Any, values: dict[str, Any],
          key: tuple[str, str, str]) -> Plan:
    cls = get_strategy(config.strategy)
    strategy = cls(params)
    sessions = checked_warmup(strategy)
    ctx = wctx.contexts.get((config.fill, sessions))
    if ctx is None:  # the history engine.backtest.run would load: exactly the strategy's warm-up
        start, end = wctx.window.start, wctx.window.end
        lo = start - dt.timedelta(days=7)
        period = [e for e in data.events if lo <= e.date <= end]
        history = WarmupFrames(wctx.history, start, sessions)  # each frame cut when a price view reads it
        sibling = next((c for (fill, _), c in wctx.contexts.items() if fill == config.fill), None)
        ctx = (sibling.with_frames(history) if sibling is not None  # shares its entry sessions
               else RunContext(tuple(wctx.frames), period, history, config.fill, start, end))
        wctx.contexts[(config.fill, sessions)] = ctx
    placements = wctx.placements.setdefault(config.fill, PlacementMemo())
    declared = declared_exit_params(cls)
    if not declared:
        plan = plan_with_cache(strategy, ctx, wctx.frames, placements)
    else:
        rest = {k: v for k, v in values.items() if k not in declared}
        tkey = (config.strategy, config.fill, sessions, json.dumps(to_jsonable(rest), sort_keys=True))
        template = wctx.templates.get(tkey)
        if isinstance(template, PendingTemplate):
            template = wctx.templates[tkey] = template.resolve()
        if template is not None:  # derived plans are not kept: cheap to redo, 5 MB each at 500 symbols
            return template.derive(params)
        if tkey in wctx.templates:  # None: the declaration did not hold for this strategy; plan afresh
            plan = plan_with_cache(strategy, ctx, wctx.frames, placements)
        else:
            plan, own = build_plan_with_exits(strategy, ctx, wctx.frames, placements)
            _bounded_put(wctx.templates, tkey, PendingTemplate(plan, own, params, declared))
    _bounded_put(wctx.plans, key, plan)
    return plan


def _bounded_put(memo: dict[Any, Any], key: Any, value: Any) -> None:
    while len(memo) >= PLAN_CACHE_SIZE:  # tasks come sorted by plan key: a small FIFO suffices
        memo.pop(next(iter(memo)))
    memo[key] = value


def warmup_notes(data: SweepData, windows: Sequence[Window], tasks: Sequence[Any], caches: SweepCaches) -> list[str]:
    """One note per (symbol, window, warm-up) whose data lacks the warm-up some grid point declares."""
    cls = get_strategy(data.strategy)
    distinct = {t.params_json: t.config.params for t in tasks}
    sessions = {checked_warmup(cls(caches.typed_params(data.strategy, raw))) for raw in distinct.values()}
    notes: list[str] = []
    for window in windows:
        wctx = caches.context(data, window)
        have = {s: warmup_bars(h, window.start) for s, h in wctx.history.items() if s in wctx.frames}
        for n in sorted(sessions):
            # with_warmup writes the note (it also cuts the frame: only done for the symbols short of n bars)
            notes += [note for s, h in wctx.history.items() if s in have and ((bars := have[s]) is None or bars < n)
                      and (note := with_warmup(h, s, window.start, n)[1]) is not None]
    return list(dict.fromkeys(notes))


def warmup_bars(frame: pd.DataFrame, start: dt.date) -> int | None:
    """How many tradable (not stale) bars ``frame`` has before ``start``: ``with_warmup`` notes a warm-up of n
    sessions as short exactly when this is below n. None when the index is not a plain datetime index (then
    ``with_warmup`` itself decides)."""
    values = frame.index.values
    if values.dtype.kind != "M" or getattr(frame.index, "tz", None) is not None:
        return None
    stale = frame["stale"].to_numpy()
    if stale.dtype != np.bool_:
        return None
    first = int(values.searchsorted(np.datetime64(start, "D"), side="left"))
    return first - int(np.count_nonzero(stale[:first]))


def plan_with_cache(strategy: Any, ctx: RunContext, frames: dict[str, pd.DataFrame],
                    placements: dict[tuple[str, Any], tuple[Any, ...]]) -> Plan:
    """``engine.plan.planner.build_plan`` with the fill-bar look-ups memoised in ``placements`` across points."""
    return build_plan(strategy, ctx, frames, placements)


@dataclass
class PointResult:
    """A finished evaluation of one configuration on one window."""

    metrics: Metrics
    stats: ReturnStats
    engine: str  # fast | backtrader
    trades: list[TradeRecord]
    orders: list[OrderRecord]
    curve: pd.DataFrame | None
    plan: Plan
    context: WindowContext


def evaluate(data: SweepData, window: Window, config: RunConfig, records: bool = False,
             caches: SweepCaches | None = None) -> PointResult:
    """One backtest of ``config`` on ``window`` (fast path when exact, else backtrader)."""
    caches = caches or SweepCaches()
    wctx = caches.context(data, window)
    params = caches.typed_params(config.strategy, config.params)
    plan = plan_for(data, wctx, config, params)
    stop, take = getattr(params, "stop_loss", None), getattr(params, "take_profit", None)
    if fastpath.unsupported_reason(config) is not None:
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
    return [dataclasses.replace(t, benchmark_return=benchmark_trade_return(t, wctx.bench_frame, config.fill,
                                                                           mark_date(t, wctx.frames)))
            for t in trades]


def _evaluate_backtrader(wctx: WindowContext, config: RunConfig, plan: Plan, stop: float | None,
                         take: float | None) -> PointResult:
    from engine.execution.backtrader_driver import run_backtest

    symbols = [s for s in config.symbols if s in wctx.frames]
    trades, orders, curve = run_backtest(config, wctx.frames, plan, wctx.fx_series, stop_loss=stop,
                                         take_profit=take, symbols=symbols, market=wctx.market)
    bench_close = wctx.bench_frame["close"] if wctx.bench_frame is not None else None
    metrics = compute_metrics(curve["equity"], trades, curve["exposure"], bench_close, initial_value=config.cash)
    values = np.concatenate([[config.cash], curve["equity"].to_numpy(dtype=float)])
    stats = return_stats(daily_returns(values))
    trades = _with_benchmarks(trades, wctx, config)
    orders = sorted(plan.skipped + orders, key=lambda o: (o.date, o.symbol, o.status))
    return PointResult(metrics, stats, "backtrader", trades, orders, curve, plan, wctx)


def data_info(data: SweepData, fingerprints: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The report's per-symbol data section, as ``engine.backtest`` writes it (source, dates, rows)."""
    out: dict[str, dict[str, Any]] = {}
    for symbol, fp in fingerprints.items():
        meta = data.meta.get(symbol, {})
        out[symbol] = {"source": meta.get("source"), "first_date": meta.get("first_date"),
                       "last_date": meta.get("last_date"), "rows": meta.get("rows"), "fingerprint": fp,
                       "adjustment": meta.get("adjustment")}
    return out


def point_report(data: SweepData, window: Window, config: RunConfig, res: PointResult) -> Report:
    """The report.json ``evbt run`` would write for this configuration (built from the sweep's result)."""
    return build_report(**_report_inputs(data, config, res))


def point_report_text(data: SweepData, window: Window, config: RunConfig, res: PointResult) -> str:
    """``dumps_report(point_report(...))``: the text of that report, written without a dict per trade and order."""
    return report_text(**_report_inputs(data, config, res))


def _report_inputs(data: SweepData, config: RunConfig, res: PointResult) -> dict[str, Any]:
    wctx = res.context
    params = params_to_dict(build_params(get_strategy(config.strategy).Params, config.params, config.strategy))
    result = point_result(res)
    # the report's metrics come from the one metrics implementation, as `evbt run` computes them
    metrics = compute_metrics(result.equity, result.trades, result.exposure, result.benchmark,
                              initial_value=config.cash) if res.curve is not None else res.metrics
    run_id = make_run_id(config.strategy, params, config.to_dict(), wctx.fingerprints, data.calendar_hash)
    return {"run_id": run_id, "strategy": config.strategy, "params": params, "config": config.to_dict(),
            "result": result, "metrics": metrics, "data": data_info(data, wctx.fingerprints),
            "events": {"calendar_hash": data.calendar_hash, "count": len(data.events),
                       "used": len(res.plan.events_used), "used_ids": res.plan.events_used}}


def point_result(res: PointResult) -> RunResult:
    """The ``RunResult`` of a point evaluated with records (for saving it like a run)."""
    wctx = res.context
    fx_source = wctx.fx_series.describe() if wctx.fx_series is not None else "none needed"  # as `evbt run`
    curve = res.curve if res.curve is not None else pd.DataFrame(columns=["equity", "cash", "exposure"])
    bench = wctx.bench_frame["close"] if wctx.bench_frame is not None else None
    return RunResult(curve["equity"], curve["cash"], curve["exposure"], res.trades, res.orders, bench,
                     fx_source, list(wctx.warnings) + res.plan.notes)
