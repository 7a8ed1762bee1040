"""What a sweep reads once: the data snapshot shipped to workers, and the per-window slices built from it.

``SweepData`` is picklable (sent to Dask workers) and holds no store: workers never read a cache or the
network. ``WindowContext`` is built per process from it (never shipped); ``engine.sweeps.evaluate.SweepCaches``
owns those contexts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from engine.backtest import FX_SYMBOL, HISTORY_PAD_DAYS
from engine.errors import MissingDataError
from engine.events import catalog as events_mod
from engine.execution import fast_driver as fastpath
from engine.market.symbols import listing
from engine.plan.config import RunConfig
from engine.plan.planner import Plan, RunContext
from engine.plan.warmup import with_cached_history
from engine.prices.store import PriceStore
from engine.sweeps.windows import Window

META_KEYS = ("source", "first_date", "last_date", "rows", "adjustment")


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
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)  # per symbol: source, dates, rows, adjustment


def inclusive(frame: pd.DataFrame, lo: dt.date, hi: dt.date) -> pd.DataFrame:
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
            frames[symbol] = with_cached_history(store, symbol, store.load(symbol, lo, hi))
        except MissingDataError:
            if not store.has(symbol):
                raise
            continue  # no bars in the whole span: left out of every window (warned per window)
        fingerprints[symbol] = store.fingerprint(symbol)
    if not frames:
        raise MissingDataError(f"no symbol of the universe has prices between {lo} and {hi}")
    fx = _aux(store, FX_SYMBOL, lo, hi, fingerprints) if any(listing(s).is_hk for s in frames) else None
    bench = _aux(store, base.benchmark, lo, hi, fingerprints) if base.benchmark else None
    meta = {s: {k: m.get(k) for k in META_KEYS} for s in fingerprints for m in [store.read_meta(s)]}
    cal_hash = events_mod.calendar_hash(events)
    identity = [base.strategy, list(base.symbols), base.benchmark, sorted(fingerprints.items()), cal_hash,
                lo.isoformat(), hi.isoformat(), [len(f) for f in frames.values()]]
    token = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]
    return SweepData(base.strategy, frames, fx, bench, events, fingerprints, cal_hash, base.symbols,
                     base.benchmark, token, meta)


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
    contexts: dict[tuple[str, int], RunContext] = field(default_factory=dict)  # (fill, warm-up) -> context
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
        part = None if full is None else full.loc[: pd.Timestamp(end)]  # cut to each strategy's warm-up in plan_for
        trading = None if part is None else inclusive(part, start, end)
        if part is None or trading is None or trading.empty:
            notes.append(f"{symbol}: no price bars between {start} and {end}; left out")
            continue
        frames[symbol] = trading
        history[symbol] = part
    if not frames:
        raise MissingDataError(f"no symbol of the universe has prices between {start} and {end}")
    aux_lo = start - dt.timedelta(days=10)
    fx_series = None
    if data.fx is not None and any(listing(s).is_hk for s in frames):
        fx_part = inclusive(data.fx, aux_lo, end)
        fx_series = fx_part["close"] if not fx_part.empty else None
    bench_frame = None
    if data.bench is not None:
        bench_part = inclusive(data.bench, aux_lo, end)
        bench_frame = bench_part if not bench_part.empty else None
    symbols = [s for s in data.symbols if s in frames]
    bench_close = bench_frame["close"] if bench_frame is not None else None
    market = fastpath.build_market(frames, symbols, fx_series, bench_close)
    fps = {s: data.fingerprints[s] for s in sorted(frames)}
    for s in (FX_SYMBOL if fx_series is not None else None, data.benchmark):
        if s and s in data.fingerprints:
            fps[s] = data.fingerprints[s]
    return WindowContext(window, frames, history, fx_series, bench_frame, market, fps, notes)
