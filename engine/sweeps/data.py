"""What a sweep reads once: the data snapshot shipped to workers, and the per-window slices built from it.

``SweepData`` is picklable (sent to Dask workers) and holds no store: workers never read a cache or the
network. ``WindowContext`` is built per process from it (never shipped); ``engine.sweeps.evaluate.SweepCaches``
owns those contexts.

Prices and FX are prepared as ``evbt run`` prepares them (``engine.market.prepare``): frames in currency units
(London pence -> pounds) and the FX pairs the universe needs for the run's base currency, each window seeing
the quotes a run of that window would load (its start minus ``FX_PAD_DAYS`` to its end).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from engine.backtest import HISTORY_PAD_DAYS
from engine.errors import EvbtWarning, MissingDataError, NoBarsInRange
from engine.events import catalog as events_mod
from engine.execution import fast_driver as fastpath
from engine.market.fx import FX_PAD_DAYS, FxRates, currencies, pairs_needed
from engine.market.prepare import prepare_market
from engine.market.symbols import listing
from engine.plan.config import RunConfig
from engine.plan.planner import Plan, RunContext
from engine.plan.reuse import PlanTemplate
from engine.plan.warmup import with_cached_history
from engine.prices.store import PriceStore
from engine.sweeps.windows import Window

FrameT = TypeVar("FrameT", pd.DataFrame, pd.Series)
META_KEYS = ("source", "first_date", "last_date", "rows", "adjustment")


@dataclass
class SweepData:
    """Everything a worker needs (picklable, shipped to Dask workers): no store, no network."""

    strategy: str
    frames: dict[str, pd.DataFrame]  # full span (first window start - history pad .. last window end), currency units
    fx: FxRates | None  # the pairs the universe needs in the base currency, over the full span
    bench: pd.DataFrame | None
    events: list[events_mod.Event]
    fingerprints: dict[str, str]
    calendar_hash: str
    symbols: tuple[str, ...]
    benchmark: str | None = None
    token: str = ""
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)  # per symbol: source, dates, rows, adjustment
    market_warnings: list[str] = field(default_factory=list)  # prepare_market's (FX pegs, lots, fees), as a run's


def inclusive(frame: FrameT, lo: dt.date, hi: dt.date) -> FrameT:
    values = frame.index.values  # binary search on the datetime64 values: no Timestamp boxing
    a = int(values.searchsorted(np.datetime64(lo, "D"), side="left"))
    b = int(values.searchsorted(np.datetime64(hi, "D"), side="right"))
    return frame.iloc[a:b]  # a new frame even when it is all of it: callers may change theirs


def _load_span(store: PriceStore, symbol: str, lo: dt.date, start: dt.date, hi: dt.date) -> pd.DataFrame:
    """``symbol``'s bars of ``lo..hi``; offline, a cache that does not reach back to ``lo`` (the history pad
    before the first window) gives its bars from ``start`` on, as a run's warm-up does. What the windows
    themselves need is required: not cached, or offline and not covered, is an error naming the symbol and the
    dates, as in `evbt run` (such a symbol used to be "left out" with a false "no price bars" warning)."""
    try:
        return store.load(symbol, lo, hi)
    except NoBarsInRange:
        raise
    except MissingDataError:
        if not store.has(symbol):
            raise
    return store.load(symbol, start, hi)


def load_sweep_data(store: PriceStore, base: RunConfig, windows: Sequence[Window]) -> SweepData:
    """Read every price file once (offline or online as the store is), plus FX, benchmark and events.

    The price files are read and checked in a reader process (``PriceStore.preload(background=True)``) while
    this one parses and hashes the event file (pure Python: threads would not overlap it)."""
    lo = min(w.start for w in windows) - dt.timedelta(days=HISTORY_PAD_DAYS)
    hi = max(w.end for w in windows)
    store.preload(base.symbols, background=True)  # each load below uses its symbol's checked read
    try:
        events = events_mod.load_calendar([Path(p) for p in base.events_files], base.replace_events)
        cal_hash = events_mod.calendar_hash(events)
    except BaseException:
        store.cancel_preload()
        raise
    frames: dict[str, pd.DataFrame] = {}
    fingerprints: dict[str, str] = {}
    for symbol in base.symbols:
        try:
            loaded = _load_span(store, symbol, lo, min(w.start for w in windows), hi)
        except NoBarsInRange:  # cached, no bars in the whole span: left out of every window (warned per window)
            continue
        frames[symbol] = with_cached_history(store, symbol, loaded)
        fingerprints[symbol] = store.fingerprint(symbol)
    if not frames:
        raise MissingDataError(f"no symbol of the universe has prices between {lo} and {hi}")
    span = _Span(min(w.start for w in windows), hi, base.base_currency)
    with warnings.catch_warnings(record=True) as caught:  # kept for every window's report, shown by the sweep
        warnings.simplefilter("always", EvbtWarning)
        market = prepare_market(store, span, frames, {})  # pence -> pounds, FX pairs, lot and fee warnings
    market_warnings = list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, EvbtWarning)))
    for w in caught:  # anything else goes on as it came
        if not issubclass(w.category, EvbtWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    frames, fx = market.frames, market.fx
    for pair in fx.symbols():
        fingerprints[pair] = store.fingerprint(pair)
    bench = _aux(store, base.benchmark, lo, hi, fingerprints) if base.benchmark else None
    meta = {s: {k: m.get(k) for k in META_KEYS} for s in fingerprints for m in [store.read_meta(s)]}
    identity = [base.strategy, list(base.symbols), base.benchmark, sorted(fingerprints.items()), cal_hash,
                lo.isoformat(), hi.isoformat(), [len(f) for f in frames.values()]]
    token = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]
    return SweepData(base.strategy, frames, fx, bench, events, fingerprints, cal_hash, base.symbols,
                     base.benchmark, token, meta, market_warnings)


@dataclass(frozen=True)
class _Span:
    """What ``prepare_market`` reads of a run configuration, for the whole span of a sweep's windows."""

    start: dt.date
    end: dt.date
    base_currency: str


def window_fx(fx: FxRates | None, symbols: Sequence[str], start: dt.date, end: dt.date) -> FxRates | None:
    """The FX quotes a run of ``symbols`` over ``start..end`` loads (``engine.market.fx.load_rates``: the pairs
    their currencies need, from start - FX_PAD_DAYS to end); a pair with no quote there is pegged as the run
    pegs it, or a MissingDataError as in the run."""
    if fx is None:
        return None
    needed = pairs_needed({listing(s).currency for s in symbols}, fx.base)
    out = FxRates(fx.base, {}, set())
    lo = start - dt.timedelta(days=FX_PAD_DAYS)
    for pair in needed:
        code = next(c for c, info in currencies().items() if info.yahoo == pair)
        closes = fx.series.get(pair)
        part = inclusive(closes, lo, end) if closes is not None else None
        if part is not None and len(part):
            out.series[pair] = part
        elif currencies()[code].peg is not None:
            out.pegged.add(code)
        else:
            raise MissingDataError(f"FX pair {pair} needed to convert {code} for a {fx.base} run has no usable "
                                   f"quotes between {lo} and {end}")
    return out


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
    frames: dict[str, pd.DataFrame]  # bars from the window's start to its end
    history: dict[str, pd.DataFrame]  # every bar up to the end (read only: may be the sweep data's own frame)
    fx_series: FxRates | None  # the window's FX quotes (as the run of the window loads them)
    bench_frame: pd.DataFrame | None
    symbols: list[str]  # the universe's symbols with bars in the window, in universe order
    fingerprints: dict[str, str]
    warnings: list[str]
    contexts: dict[tuple[str, int], RunContext] = field(default_factory=dict)  # (fill, warm-up) -> context
    plans: dict[Any, Plan] = field(default_factory=dict)
    templates: dict[Any, PlanTemplate | None] = field(default_factory=dict)  # plans shared by exit-param points
    placements: dict[str, dict[tuple[str, Any], tuple[Any, ...]]] = field(default_factory=dict)
    _market: fastpath.Market | None = None

    @property
    def market(self) -> fastpath.Market:
        """The fast path's arrays, built on first use: a process that only plans tasks (the main process of
        a Dask sweep) never holds them (about 0.6 MB a symbol over nine years)."""
        if self._market is None:
            bench_close = self.bench_frame["close"] if self.bench_frame is not None else None
            self._market = fastpath.build_market(self.frames, self.symbols, self.fx_series, bench_close)
        return self._market


def window_context(data: SweepData, window: Window) -> WindowContext:
    """The frames ``engine.backtest.run`` would load for this window, and the fast path's arrays."""
    start, end = window.start, window.end
    frames: dict[str, pd.DataFrame] = {}
    history: dict[str, pd.DataFrame] = {}
    notes: list[str] = []
    lo, hi = np.datetime64(start, "D"), np.datetime64(end, "D")
    for symbol in data.symbols:
        full = data.frames.get(symbol)
        # cut to each strategy's warm-up in plan_for; searchsorted, not .loc: a label look-up builds a hash
        # table of the index for every frame (about 60 KB a symbol, 126 MB at 2,000 symbols)
        values = None if full is None else full.index.values
        a = 0 if values is None else int(values.searchsorted(lo, side="left"))
        b = 0 if values is None else int(values.searchsorted(hi, side="right"))
        if full is None or values is None or a >= b:
            notes.append(f"{symbol}: no price bars between {start} and {end}; left out")
            continue
        frames[symbol] = full.iloc[a:b]
        # the history up to the end: the sweep's own frame when nothing follows the end (the last or only
        # window): history frames are only read (cut again by with_warmup), as every frame all windows share
        history[symbol] = full if b == len(values) else full.iloc[:b]
    if not frames:
        raise MissingDataError(f"no symbol of the universe has prices between {start} and {end}")
    aux_lo = start - dt.timedelta(days=10)
    fx_series = window_fx(data.fx, list(frames), start, end)
    bench_frame = None
    if data.bench is not None:
        bench_part = inclusive(data.bench, aux_lo, end)
        bench_frame = bench_part if not bench_part.empty else None
    symbols = [s for s in data.symbols if s in frames]
    fps = {s: data.fingerprints[s] for s in sorted(frames)}
    for s in (*(fx_series.symbols() if fx_series is not None else ()), data.benchmark):
        if s and s in data.fingerprints:
            fps[s] = data.fingerprints[s]
    # the warnings in the order `evbt run` of the window records them: symbols left out, then the market's
    return WindowContext(window, frames, history, fx_series, bench_frame, symbols, fps, notes + data.market_warnings)
