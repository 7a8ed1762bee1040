"""One backtest end to end: configuration -> events -> prices -> plan -> backtrader -> metrics -> report.

This is the library entry point the CLI calls (``run``); it never prints.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from engine.analysis.metrics import compute_metrics
from engine.errors import ConfigError, DataError, EvbtWarning, MissingDataError, NoBarsInRange
from engine.events import catalog as events_mod
from engine.execution.records import RunResult, TradeRecord
from engine.market.prepare import prepare_market
from engine.plan.config import RunConfig, build_params, params_to_dict
from engine.plan.planner import RunContext, build_plan
from engine.plan.signal_checks import checked_warmup
from engine.plan.warmup import load_with_warmup
from engine.prices.store import PriceStore
from engine.reporting.models import Report
from engine.reporting.report import build_report
from engine.saved_runs import make_run_id
from strategies.registry import get_strategy

FX_SYMBOL = "HKD=X"
HISTORY_PAD_DAYS = 120  # calendar days of history sweeps keep before a window (the run uses Strategy.warmup())


@dataclass
class Outcome:
    """A finished run: the report (JSON-ready), the plain result, and the manifest inputs."""

    report: Report
    result: RunResult
    config: RunConfig
    fingerprints: dict[str, str]
    calendar_hash: str


def resolve_params(strategy_name: str, raw: dict[str, Any]) -> Any:
    cls = get_strategy(strategy_name)
    return build_params(cls.Params, raw, strategy_name)


def _load_frames(store: PriceStore, config: RunConfig,
                 warmup_sessions: int = 0) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Trading frames (start..end) and history frames (the strategy's warm-up bars before start) per symbol."""
    frames: dict[str, pd.DataFrame] = {}
    history: dict[str, pd.DataFrame] = {}
    store.preload(config.symbols)  # the checked reads on threads; each load below uses its symbol's
    for symbol in config.symbols:
        try:
            full = load_with_warmup(store, symbol, config.start, config.end, warmup_sessions)
        except NoBarsInRange:  # cached, but not trading in the period (listed later, data ends before): as empty
            full = pd.DataFrame()
        trading = full.loc[pd.Timestamp(config.start): pd.Timestamp(config.end)] if len(full) else full
        if trading.empty:
            warnings.warn(f"{symbol}: no price bars between {config.start} and {config.end}; left out",
                          EvbtWarning, stacklevel=2)
            continue
        frames[symbol] = trading
        history[symbol] = full
    if not frames:
        raise MissingDataError(f"no symbol of the universe has prices between {config.start} and {config.end}")
    return frames, history


def _cached_series(store: PriceStore, symbol: str, config: RunConfig, fetch: bool) -> pd.Series | None:
    """Close series of an auxiliary symbol (FX, benchmark); None when unavailable (a warning says so)."""
    try:
        if not fetch and not store.has(symbol):
            return None
        frame = store.load(symbol, config.start - dt.timedelta(days=10), config.end)
    except (MissingDataError, ConfigError):
        return None
    except Exception as exc:  # network trouble fetching an auxiliary series must not kill the run
        warnings.warn(f"{symbol}: unavailable ({exc})", EvbtWarning, stacklevel=2)
        return None
    return frame["close"] if not frame.empty else None


def benchmark_trade_return(trade: TradeRecord, bench: pd.DataFrame | None, fill: str,
                           marked: pd.Timestamp | None = None) -> float | None:
    """Benchmark return over the trade's holding window, at the same fill point on the benchmark's own
    bars: opens of the first benchmark bars on/after the entry and exit dates (fill open), or closes of the
    last benchmark bars on/before them (fill close). An open trade is marked at its symbol's last close, on
    date ``marked`` (the symbol's last bar in the run): the benchmark's last close on or before that date
    (without ``marked``: its last close)."""
    if bench is None or bench.empty:
        return None
    idx = bench.index

    def at(date: str | None, field: str, after: bool) -> float | None:
        if date is None:
            if marked is None:
                return float(bench["close"].iloc[-1])
            pos = int(idx.searchsorted(marked, side="right")) - 1
            return float(bench["close"].iloc[pos]) if pos >= 0 else None
        ts = pd.Timestamp(date)
        if after:
            pos = int(idx.searchsorted(ts, side="left"))
            return float(bench[field].iloc[pos]) if pos < len(idx) else None
        pos = int(idx.searchsorted(ts, side="right")) - 1
        return float(bench[field].iloc[pos]) if pos >= 0 else None

    after = fill == "open"
    start = at(trade.entry_date, fill, after)
    end = at(trade.exit_date, fill, after) if trade.exit_date else at(None, "close", False)
    if start is None or end is None or start == 0:
        return None
    return end / start - 1.0


def run(
    config: RunConfig,
    store: PriceStore,
    events: list[events_mod.Event] | None = None,
) -> Outcome:
    """Run one backtest. ``events`` defaults to the calendar named by the config (curated + files)."""
    strategy_cls = get_strategy(config.strategy)
    params = build_params(strategy_cls.Params, config.params, config.strategy)
    strategy = strategy_cls(params)
    if events is None:
        events = events_mod.load_calendar([Path(p) for p in config.events_files], config.replace_events)
        if config.ratings:
            from engine.events.ratings import rating_events

            events = sorted([*events, *rating_events(config.symbols, store.root, offline=store.offline)],
                            key=lambda e: (e.date, e.id))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EvbtWarning)
        frames, history = _load_frames(store, config, checked_warmup(strategy))
        market = prepare_market(store, config, frames, history)  # pence -> pounds, FX rates, market warnings
        frames, history, fx_series = market.frames, market.history, market.fx
        bench_frame = None
        if config.benchmark:
            try:
                bench_frame = store.load(config.benchmark, config.start - dt.timedelta(days=10), config.end)
            except (MissingDataError, DataError) as exc:  # online (fetch failed) as offline: a warning
                warnings.warn(f"benchmark {config.benchmark} unavailable: {exc}", EvbtWarning, stacklevel=2)
    run_warnings = [str(w.message) for w in caught if issubclass(w.category, EvbtWarning)]
    for message in run_warnings:  # pass them on to whoever shows warnings (the CLI)
        warnings.warn(message, EvbtWarning, stacklevel=2)

    from engine.execution.backtrader_driver import run_backtest  # here: sweeps import this module, not backtrader

    period_events = [e for e in events if config.start - dt.timedelta(days=7) <= e.date <= config.end]
    ctx = RunContext(tuple(frames), period_events, history, config.fill, config.start, config.end)
    plan = build_plan(strategy, ctx, frames)
    trades, orders, curve = run_backtest(
        config, frames, plan, fx_series,
        stop_loss=getattr(params, "stop_loss", None),
        take_profit=getattr(params, "take_profit", None),
        symbols=[s for s in config.symbols if s in frames],
    )
    if bench_frame is not None and not bench_frame.empty:
        trades = [_with_benchmark(t, bench_frame, config.fill, frames) for t in trades]
    bench_close = bench_frame["close"] if bench_frame is not None and not bench_frame.empty else None
    fx_source = fx_series.describe()
    result = RunResult(
        equity=curve["equity"],
        cash=curve["cash"],
        exposure=curve["exposure"],
        trades=trades,
        orders=sorted(plan.skipped + orders, key=lambda o: (o.date, o.symbol, o.status)),
        benchmark=bench_close,
        fx_source=fx_source,
        warnings=run_warnings + plan.notes,
    )
    metrics = compute_metrics(result.equity, trades, result.exposure, bench_close, initial_value=config.cash)
    fingerprints = {s: store.fingerprint(s) for s in sorted(frames)}
    aux = [s for s in (*market.fx_symbols, config.benchmark) if s and store.has(s)]
    for s in aux:
        fingerprints[s] = store.fingerprint(s)
    cal_hash = events_mod.calendar_hash(events)
    data_info = _data_info(store, sorted(fingerprints))
    run_id = make_run_id(config.strategy, params_to_dict(params), config.to_dict(), fingerprints, cal_hash)
    report = build_report(
        run_id=run_id,
        strategy=config.strategy,
        params=params_to_dict(params),
        config=config.to_dict(),
        result=result,
        metrics=metrics,
        data=data_info,
        events={"calendar_hash": cal_hash, "count": len(events), "used": len(plan.events_used),
                "used_ids": plan.events_used},
    )
    return Outcome(report, result, config, fingerprints, cal_hash)


def _with_benchmark(trade: TradeRecord, bench: pd.DataFrame, fill: str,
                    frames: dict[str, pd.DataFrame]) -> TradeRecord:
    from dataclasses import replace

    return replace(trade, benchmark_return=benchmark_trade_return(trade, bench, fill, mark_date(trade, frames)))


def mark_date(trade: TradeRecord, frames: dict[str, pd.DataFrame]) -> pd.Timestamp | None:
    """The date an open trade is marked at (its symbol's last bar in the run); None for a closed trade."""
    if trade.exit_date is not None:
        return None
    frame = frames.get(trade.symbol)
    return pd.Timestamp(frame.index[-1]) if frame is not None and len(frame) else None


def _data_info(store: PriceStore, symbols: list[str]) -> dict[str, Any]:
    info: dict[str, Any] = {}
    for symbol in symbols:
        meta = store.read_meta(symbol)
        info[symbol] = {
            "source": meta.get("source"),
            "first_date": meta.get("first_date"),
            "last_date": meta.get("last_date"),
            "rows": meta.get("rows"),
            "fingerprint": meta.get("content_hash"),
            "adjustment": meta.get("adjustment"),
        }
    return info
