"""Placebo tests for a backtest: could random dates have done as well?

``run_placebo`` reruns the run's strategy on ``n`` sets of pseudo-events and ranks the real result among them.

* Templates: the run-period events of the types the strategy traded on (``Plan.events_used``), so a strategy that
  filters events (``fade``'s rally rule) filters the pseudo-events the same way.
* Per placebo set and template, one pseudo-event: the same type, scope, symbols, time of day (or session hint, or
  date-only rule) and time zone, dated on a random session of the template's exchange (its ``market`` when the time
  is a session hint, else the exchange of its time zone) inside the run, drawn uniformly from the sessions that are
  outside every real event window (the ``hold`` sessions before and after each real event's entry session on that
  exchange) and leave ``hold`` sessions before the end. Draws come from ``numpy.random.default_rng(seed)``, one
  vector per template in template order: the same seed, run and calendar give the same placebo sets.
* Every set runs on the fast path (``engine.execution.fast_driver``, exact against backtrader), with the real run's
  configuration and fill-bar placements; the pseudo-events' entry sessions come from ``engine.events.timing``
  (``known_at`` once per pseudo-event, ``first_session_after`` per exchange).
* Ranking, for total return and Sharpe: percentile = share of placebo sets strictly below the real value; one-sided
  p-value = (1 + sets at or above the real value) / (1 + valid sets) (the permutation-test convention that never
  reports 0). Sets whose metric is undefined (e.g. Sharpe without trades) are left out and counted.
* Bootstrap: a percentile confidence interval of the real run's mean closed-trade return, resampling trades with
  replacement (``bootstrap`` resamples, same seed).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import ConfigError
from engine.events import timing
from engine.events.catalog import Event
from engine.plan.context import RunContext
from engine.plan.planner import placements

RANKED_METRICS = ("total_return", "sharpe")
DEFAULT_BOOTSTRAP = 10_000
MAX_PLACEBO = 100_000
CONFIDENCE = 0.95
_TZ_EXCHANGE = {"Asia": "XHKG", "America": "XNYS"}


@dataclass(frozen=True)
class MetricRank:
    """Where the real value of one metric falls among the placebo sets."""

    metric: str
    real: float | None
    placebo_mean: float | None
    placebo_median: float | None
    percentile: float | None  # percent of valid placebo sets strictly below the real value
    p_value: float | None  # one-sided: (1 + sets >= real) / (1 + valid sets)
    valid: int  # placebo sets where the metric is defined
    values: tuple[float, ...]  # the placebo distribution (for the histogram)


@dataclass(frozen=True)
class BootstrapInterval:
    """Percentile bootstrap interval of the mean closed-trade return of the real run."""

    mean: float
    low: float
    high: float
    confidence: float
    trades: int
    resamples: int


@dataclass(frozen=True)
class PlaceboResult:
    n: int
    seed: int
    templates: tuple[str, ...]  # ids of the real events pseudo-events are modelled on
    exclusion_sessions: int  # sessions either side of each real entry session never drawn
    ranks: tuple[MetricRank, ...]
    bootstrap: BootstrapInterval | None
    trades_per_set: float  # mean trades of the placebo sets
    elapsed_s: float
    notes: tuple[str, ...] = ()

    def rank(self, metric: str) -> MetricRank | None:
        return next((r for r in self.ranks if r.metric == metric), None)


# ---------------------------------------------------------------- pseudo-events


def template_exchange(event: Event, fallback: str) -> str:
    """The exchange whose sessions a template's pseudo-events are dated on."""
    if event.market:
        return event.market
    return _TZ_EXCHANGE.get(event.tz.split("/")[0], fallback)


class PlaceboContext(RunContext):
    """A RunContext whose entry sessions are precomputed per (event id, exchange) for the pseudo-events."""

    def __init__(self, *args: Any, sessions: dict[tuple[str, str], pd.Timestamp | None],
                 exchange_of: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sessions = sessions
        self._exchange = exchange_of or {s: timing.exchange_of(s) for s in self.universe}

    def entry_session(self, event: Event, symbol: str) -> pd.Timestamp | None:
        return self._sessions.get((event.id, self._exchange[symbol]))


def entry_sessions_by_exchange(events: Sequence[Event], exchanges: Sequence[str], fill: str
                               ) -> dict[tuple[str, str], pd.Timestamp | None]:
    """(event id, exchange) -> entry session, with ``known_at`` computed once per event (the timing rule)."""
    out: dict[tuple[str, str], pd.Timestamp | None] = {}
    for event in events:
        for exchange, session in zip(exchanges, _sessions_of(event, exchanges, fill), strict=True):
            out[(event.id, exchange)] = session
    return out


def _sessions_of(event: Event, exchanges: Sequence[str], fill: str) -> list[pd.Timestamp | None]:
    instant = timing.known_at(event)
    out: list[pd.Timestamp | None] = []
    for exchange in exchanges:
        try:
            out.append(pd.Timestamp(timing.first_session_after(exchange, instant, fill)))
        except ConfigError:
            out.append(None)
    return out


def allowed_sessions(exchange: str, start: dt.date, end: dt.date, real_sessions: Sequence[pd.Timestamp],
                     radius: int, tail: int) -> pd.DatetimeIndex:
    """Sessions of ``exchange`` in [start, end] leaving ``tail`` sessions before the end, more than ``radius``
    sessions away from every real entry session."""
    days = timing.sessions(exchange, start, end)
    if tail > 0:
        days = days[: max(len(days) - tail, 0)]
    if len(days) == 0:
        return days
    keep = np.ones(len(days), dtype=bool)
    every = timing.schedule(exchange).sessions
    pos_days = every.searchsorted(days)
    for session in real_sessions:
        p = int(every.searchsorted(pd.Timestamp(session)))
        keep &= np.abs(pos_days - p) > radius
    return days[keep]


def draw_pseudo_events(templates: Sequence[Event], allowed: Sequence[pd.DatetimeIndex], n: int, seed: int
                       ) -> list[list[tuple[int, dt.date]]]:
    """``n`` sets of (template index, session date), one per template each (see the module docstring)."""
    rng = np.random.default_rng(seed)
    picks = [rng.integers(0, len(days), size=n) for days in allowed]
    dates = [[d.date() for d in days[idx]] for days, idx in zip(allowed, picks, strict=True)]
    return [[(j, dates[j][k]) for j in range(len(templates))] for k in range(n)]


def pseudo_event(template: Event, day: dt.date, k: int) -> Event:
    """The template moved to ``day`` (placebo set ``k``): same type, scope, symbols, time, hint and time zone."""
    return dataclasses.replace(template, id=f"{template.id}~placebo{k + 1}", date=day)


# ---------------------------------------------------------------- statistics


def rank_metric(metric: str, real: float | None, values: Sequence[float | None]) -> MetricRank:
    valid = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if real is None or len(valid) == 0:
        return MetricRank(metric, real, None, None, None, None, len(valid), tuple(valid.tolist()))
    below = int(np.sum(valid < real))
    at_or_above = int(np.sum(valid >= real))
    return MetricRank(metric, real, float(np.mean(valid)), float(np.median(valid)), 100.0 * below / len(valid),
                      (1 + at_or_above) / (1 + len(valid)), len(valid), tuple(valid.tolist()))


def bootstrap_mean(returns: Sequence[float], resamples: int, seed: int, confidence: float = CONFIDENCE
                   ) -> BootstrapInterval | None:
    """Percentile bootstrap of the mean (None for fewer than 2 values)."""
    r = np.asarray(list(returns), dtype=float)
    if len(r) < 2 or resamples < 1:
        return None
    rng = np.random.default_rng([seed, 1])
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // len(r))
    for lo in range(0, resamples, chunk):
        hi = min(resamples, lo + chunk)
        means[lo:hi] = r[rng.integers(0, len(r), size=(hi - lo, len(r)))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return BootstrapInterval(float(r.mean()), float(low), float(high), confidence, len(r), resamples)


# ---------------------------------------------------------------- running


@dataclass
class _Setup:
    """The loaded run (sweep snapshot and window context) and the real plan."""

    data: Any
    wctx: Any
    config: Any
    params: Any
    period: list[Event]


def _setup(config: Any, store: Any) -> _Setup:
    from engine.execution import fast_driver
    from engine.sweeps.sweep import Window, load_sweep_data, typed_params, window_context

    reason = fast_driver.unsupported_reason(config)
    if reason is not None:
        raise ConfigError(f"--placebo runs on the fast path, which does not cover {reason}")
    window = Window("full", config.start, config.end)
    data = load_sweep_data(store, config, [window])
    wctx = window_context(data, window)
    period = [e for e in data.events if config.start - dt.timedelta(days=7) <= e.date <= config.end]
    return _Setup(data, wctx, config, typed_params(config.strategy, config.params), period)


def _prewarm(memo: dict, frames: dict[str, pd.DataFrame], exchanges: Sequence[str],
             sessions: Any) -> None:
    """Fill the (symbol, session) -> placement memo for every session the placebo sets use, one vectorised
    ``placements`` call per symbol."""
    per_exchange: dict[str, set[pd.Timestamp]] = {ex: set() for ex in exchanges}
    for row in sessions:
        for ex, session in zip(exchanges, row, strict=True):
            if session is not None:
                per_exchange[ex].add(session)
    for symbol, frame in frames.items():
        wanted = sorted(per_exchange[timing.exchange_of(symbol)] - {s for (sym, s) in memo if sym == symbol})
        for session, placed in zip(wanted, placements(frame, wanted), strict=True):
            memo[(symbol, session)] = placed


def evaluate_events(setup: _Setup, context: RunContext, placements: dict) -> tuple[Any, Any, Any]:
    """One fast-path replay of the run's strategy on ``context``'s events: (metrics, plan, fast result)."""
    from engine.execution import fast_driver
    from engine.plan.planner import build_plan
    from strategies.registry import get_strategy

    plan = build_plan(get_strategy(setup.config.strategy)(setup.params), context, setup.wctx.frames, placements)
    stop, take = getattr(setup.params, "stop_loss", None), getattr(setup.params, "take_profit", None)
    result = fast_driver.simulate(setup.wctx.market, setup.config, plan, stop, take, records=False)
    metrics, _ = fast_driver.fast_metrics(setup.wctx.market, result, setup.config.cash)
    return metrics, plan, result


@dataclass
class _Job:
    """What every placebo set needs (inherited by forked workers)."""

    setup: _Setup
    universe: tuple[str, ...]
    exchanges: list[str]
    templates: list[Event]
    known: dict[tuple[int, dt.date], list[pd.Timestamp | None]]
    placements: dict
    exchange_of: dict[str, str]


def _run_chunk(job: _Job, chunk: Sequence[tuple[int, list[tuple[int, dt.date]]]]
               ) -> tuple[dict[str, list[float | None]], int]:
    setup, config = job.setup, job.setup.config
    values: dict[str, list[float | None]] = {m: [] for m in RANKED_METRICS}
    trades = 0
    for k, draw in chunk:
        pseudo = [pseudo_event(job.templates[j], day, k) for j, day in draw]
        sessions = {(ev.id, ex): s for ev, (j, day) in zip(pseudo, draw, strict=True)
                    for ex, s in zip(job.exchanges, job.known[(j, day)], strict=True)}
        ctx = PlaceboContext(job.universe, pseudo, setup.wctx.history, config.fill, config.start, config.end,
                             sessions=sessions, exchange_of=job.exchange_of)
        metrics, _, result = evaluate_events(setup, ctx, job.placements)
        for m in RANKED_METRICS:
            values[m].append(getattr(metrics, m))
        trades += len(result.trades)
    return values, trades


_JOB: _Job | None = None


def _pool_chunk(chunk: Sequence[tuple[int, list[tuple[int, dt.date]]]]) -> tuple[dict[str, list[float | None]], int]:
    assert _JOB is not None
    return _run_chunk(_JOB, chunk)


def _run_sets(job: _Job, draws: list[tuple[int, list[tuple[int, dt.date]]]], workers: int
              ) -> tuple[dict[str, list[float | None]], int]:
    """Every placebo set, in order; ``workers`` > 1 forks processes that inherit the loaded run (results do not
    depend on the number of workers)."""
    if workers <= 1 or len(draws) < 2 * workers:
        return _run_chunk(job, draws)
    import concurrent.futures as cf
    import multiprocessing as mp

    global _JOB
    _JOB = job
    size = -(-len(draws) // workers)
    chunks = [draws[i:i + size] for i in range(0, len(draws), size)]
    try:
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork")) as pool:
            parts = list(pool.map(_pool_chunk, chunks))
    finally:
        _JOB = None
    values: dict[str, list[float | None]] = {m: [] for m in RANKED_METRICS}
    for part, _ in parts:
        for m in RANKED_METRICS:
            values[m] += part[m]
    return values, sum(t for _, t in parts)


def run_placebo(config: Any, store: Any, n: int, seed: int = 0, trade_returns: Sequence[float] | None = None,
                bootstrap: int = DEFAULT_BOOTSTRAP, workers: int = 1) -> PlaceboResult:
    """Rank the real run among ``n`` placebo sets (module docstring). ``trade_returns``: the real run's closed-trade
    returns for the bootstrap (default: the fast path's replay of the real run)."""
    if not 1 <= n <= MAX_PLACEBO:
        raise ConfigError(f"--placebo: expected 1..{MAX_PLACEBO} placebo sets, got {n}")
    began = time.perf_counter()
    setup = _setup(config, store)
    wctx, universe = setup.wctx, tuple(setup.wctx.frames)
    exchanges = sorted({timing.exchange_of(s) for s in universe})
    placements: dict = {}
    real_ctx = RunContext(universe, setup.period, wctx.history, config.fill, config.start, config.end)
    real_metrics, real_plan, real_result = evaluate_events(setup, real_ctx, placements)
    used = set(real_plan.events_used)
    types = {e.type for e in setup.period if e.id in used}
    templates = [e for e in setup.period if e.type in types]
    if not templates:
        raise ConfigError("--placebo: the strategy traded on no event in the run period; nothing to randomise")
    hold = getattr(setup.params, "hold", None)
    radius = hold if isinstance(hold, int) and hold > 0 else 5
    real_sessions = entry_sessions_by_exchange([e for e in setup.period if e.id in used], exchanges, config.fill)
    fallback = exchanges[0]
    allowed = []
    for template in templates:
        exchange = template_exchange(template, fallback)
        near = [s for (eid, ex), s in real_sessions.items() if ex == exchange and s is not None]
        days = allowed_sessions(exchange, config.start, config.end, near, radius, radius)
        if len(days) == 0:
            raise ConfigError(f"--placebo: no {exchange} session in the run is outside the real event windows")
        allowed.append(days)
    draws = draw_pseudo_events(templates, allowed, n, seed)
    known: dict[tuple[int, dt.date], list[pd.Timestamp | None]] = {}
    for draw in draws:
        for j, day in draw:
            if (j, day) not in known:
                known[(j, day)] = _sessions_of(pseudo_event(templates[j], day, 0), exchanges, config.fill)
    _prewarm(placements, wctx.frames, exchanges, known.values())
    job = _Job(setup, universe, exchanges, templates, known, placements,
               {s: timing.exchange_of(s) for s in universe})
    values, trades = _run_sets(job, list(enumerate(draws)), workers)
    ranks = tuple(rank_metric(m, getattr(real_metrics, m), values[m]) for m in RANKED_METRICS)
    if trade_returns is None:
        trade_returns = [t.ret for t in real_result.trades if t.exit_reason != "open"]
    notes = []
    if any(r.valid < n for r in ranks):
        notes.append("; ".join(f"{r.metric}: {n - r.valid} set(s) undefined (no trades or flat equity), left out"
                               for r in ranks if r.valid < n))
    return PlaceboResult(n, seed, tuple(e.id for e in templates), radius, ranks,
                         bootstrap_mean(trade_returns, bootstrap, seed), trades / n,
                         time.perf_counter() - began, tuple(notes))


@dataclass(frozen=True)
class PlaceboRow:
    """One configuration's placebo test, for ranking a sweep's points by their placebo p-value."""

    label: str
    result: PlaceboResult

    @property
    def p_value(self) -> float | None:
        r = self.result.rank("total_return")
        return None if r is None else r.p_value


def rank_by_placebo(store: Any, configs: Sequence[tuple[str, Any]], n: int, seed: int = 0, workers: int = 1
                    ) -> list[PlaceboRow]:
    """Placebo tests of several configurations (e.g. a sweep's top points), the same pseudo-event seed for each,
    ranked by the total-return p-value (lowest first; undefined last, then by label)."""
    rows = [PlaceboRow(label, run_placebo(config, store, n, seed=seed, workers=workers)) for label, config in configs]
    return sorted(rows, key=lambda r: (r.p_value is None, r.p_value if r.p_value is not None else 0.0))
