"""Event study: abnormal returns around dated events, grouped by event type, with parametric and non-parametric
tests. This module is the orchestration (what to study, against which benchmarks, which samples, which groups);
the models are in ``engine.analysis.abnormal_returns`` and the tests in ``engine.analysis.event_tests``.

Conventions (README, "Event study and visual reports"):

* Day 0 of an (event, symbol) is the backtest's fill bar: ``engine.plan.planner.placement`` of the event's entry
  session (``engine.events.timing.entry_session``) in the symbol's bars, i.e. the first non-stale bar on or after
  the entry session, whatever the gap (a suspension moves day 0 to the next bar, as it moves a backtest's fill;
  the sample then notes the gap). Event time counts the symbol's own non-stale bars.
* Returns are simple close-to-close returns of ``adj_close``; benchmark levels are forward filled onto the
  symbol's bar dates (never back filled, never past the benchmark's last bar).
* Benchmarks: the broad market of the symbol's venue (``VENUE_MARKET``: ^HSI for Hong Kong, SPY for US listings;
  ``--benchmark`` for every symbol), optionally a sector benchmark (``--sector-benchmark KWEB``) for the
  two-factor model (market + sector beyond the market). Every choice is printed with the result.
* Samples are grouped by event type (``pool`` puts every type in one group, with a warning when the pooled types
  have opposite expected signs: ``EXPECTED_SIGN``).
* Sector events apply to every index or fund the user names (``--symbol ^HSTECH``), besides the symbols they list.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from engine.analysis.abnormal_returns import (
    FACTOR_MODELS,
    MODELS,
    CollinearError,
    Decomposition,
    ModelFit,
    PreparedSample,
    Sample,
    aligned_market_returns,
    check_model,
    prepare_sample,
    return_series,
    study_sample,
)
from engine.analysis.distributions import CONFIDENCE, t_pvalue
from engine.analysis.event_tests import Clustering, aggregate, clustering_of
from engine.analysis.study_results import (
    SKIP_KINDS,
    EventResult,
    GroupResult,
    SkipGroup,
    SkippedEvent,
    StudyResult,
    group_skips,
)
from engine.errors import ConfigError, EvbtError

DEFAULT_WINDOW = (-5, 10)
DEFAULT_ESTIMATION = (-250, -30)
MIN_ESTIMATION = 30  # fewer estimation returns than this: the configuration is refused
# Broad-market benchmark per venue (exchange-calendars code). SPY (S&P 500 fund, dividends in adj_close) rather than
# ^GSPC, a price index without dividends that the shared data set does not hold.
VENUE_MARKET = {"XHKG": "^HSI", "XNYS": "SPY"}
# Index and fund symbols: sector events apply to them when the user names them (they hold the sector).
FUNDS = frozenset({"KWEB", "FXI", "MCHI", "CQQQ", "CHIQ", "KURE", "ASHR", "SPY", "QQQ", "IVV", "VOO",
                   "2800.HK", "2828.HK", "3033.HK", "3067.HK", "3088.HK"})
BULLISH, BEARISH = 1, -1
EXPECTED_SIGN = {"official_reassurance": BULLISH, "policy_support": BULLISH, "analyst_upgrade": BULLISH,
                 "regulatory_crackdown": BEARISH, "delisting_risk": BEARISH, "analyst_downgrade": BEARISH,
                 "market_rumor": 0, "other": 0}
GAP_NOTE_DAYS = 7  # day 0 this many calendar days or more after the entry session: noted on the sample


def sign_word(sign: int) -> str:
    return {BULLISH: "bullish", BEARISH: "bearish"}.get(sign, "no expected sign")


def is_index_or_fund(symbol: str) -> bool:
    return symbol.startswith("^") or symbol in FUNDS


def market_benchmark(symbol: str) -> str:
    from engine.market.symbols import listing

    return VENUE_MARKET.get(listing(symbol).exchange, VENUE_MARKET["XNYS"])


@dataclass(frozen=True)
class StudyConfig:
    """What to study (``evbt study`` options). ``model`` None: two-factor with a sector benchmark, else market."""

    types: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    start: dt.date | None = None
    end: dt.date | None = None
    window: tuple[int, int] = DEFAULT_WINDOW
    estimation: tuple[int, int] = DEFAULT_ESTIMATION
    model: str | None = None
    benchmark: str | None = None  # None: the venue's broad market (VENUE_MARKET)
    sector_benchmark: str | None = None
    fill: str = "open"
    pool: bool = False

    def __post_init__(self) -> None:
        check_windows(self.window, self.estimation)
        if self.model is not None:
            check_model(self.model)
        if self.fill not in ("open", "close"):
            raise ConfigError(f"unknown fill {self.fill!r} (expected open or close)")
        if self.model == "two-factor" and not self.sector_benchmark:
            raise ConfigError("--model two-factor needs --sector-benchmark SYMBOL (e.g. KWEB)")
        if self.sector_benchmark and self.model not in (None, "two-factor"):
            raise ConfigError(f"--sector-benchmark is used by the two-factor model, not by --model {self.model}")

    @property
    def resolved_model(self) -> str:
        if self.model is not None:
            return self.model
        return "two-factor" if self.sector_benchmark else "market"


# ---------------------------------------------------------------- windows


def parse_window(text: str, flag: str) -> tuple[int, int]:
    """'-5:10' -> (-5, 10); ConfigError naming the flag otherwise."""
    parts = str(text).strip().split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        lo, hi = int(parts[0]), int(parts[1])
    except ValueError:
        raise ConfigError(f"{flag}: bad window {text!r} (expected FROM:TO in trading days, e.g. -5:10)") from None
    if lo > hi:
        raise ConfigError(f"{flag}: window {text!r} starts after it ends")
    return lo, hi


def check_windows(window: tuple[int, int], estimation: tuple[int, int]) -> None:
    if window[0] > window[1] or estimation[0] > estimation[1]:
        raise ConfigError("a window must start before it ends")
    if estimation[1] >= window[0]:
        raise ConfigError(
            f"the estimation window {estimation[0]}:{estimation[1]} must end before the event window "
            f"{window[0]}:{window[1]} starts"
        )
    if estimation[1] - estimation[0] + 1 < MIN_ESTIMATION:
        raise ConfigError(f"the estimation window needs at least {MIN_ESTIMATION} days")


# ---------------------------------------------------------------- samples


def study_pairs(events: Sequence[Any], universe: Sequence[str]) -> list[tuple[Any, str]]:
    """(event, symbol) pairs: the symbols each event applies to, plus every index or fund of the universe for a
    sector event (an index holds the sector whatever names the event lists)."""
    from engine.events.catalog import symbols_for

    pairs = []
    for ev in events:
        chosen = symbols_for(ev, universe)
        if ev.scope == "sector":
            chosen += [s for s in universe if is_index_or_fund(s) and s not in chosen]
        pairs += [(ev, sym) for sym in universe if sym in chosen]
    return pairs


def _date_range(events: Sequence[Any], config: StudyConfig) -> tuple[dt.date, dt.date]:
    before = int(-config.estimation[0] * 1.6) + 30  # trading days -> calendar days, with margin
    after = int(max(config.window[1], 0) * 1.6) + 30
    lo = min(e.date for e in events) - dt.timedelta(days=before)
    hi = max(e.date for e in events) + dt.timedelta(days=after)
    return lo, hi


def _load_frames(store: Any, symbols: Iterable[str], lo: dt.date, hi: dt.date) -> dict[str, pd.DataFrame | str]:
    out: dict[str, pd.DataFrame | str] = {}
    for sym in symbols:
        try:
            frame = store.load(sym, lo, hi)
        except EvbtError as exc:
            out[sym] = f"no price data for {sym}: {exc}"
            continue
        out[sym] = frame if not frame.empty else f"no price data for {sym} between {lo} and {hi}"
    return out


Skip = tuple[str, str]  # (kind, reason)
Factors = tuple[pd.Series, pd.Series | None, pd.Series | None]  # returns, market, sector on the symbol's bars


@dataclass
class _Inputs:
    config: StudyConfig
    model: str
    frames: Mapping[str, pd.DataFrame | str]
    market_of: Mapping[str, str]
    returns: dict[str, Factors | Skip]
    # (benchmark, its missing dates) per symbol: sessions of the benchmark's own venue on which the symbol has a bar
    # and the benchmark none (a data hole, not a holiday): the carried level gives 0 that day, two days the next
    holes: dict[str, list[tuple[str, pd.DatetimeIndex]]] = field(default_factory=dict)


def _symbol_returns(inputs: _Inputs, sym: str) -> Factors | Skip:
    frame = inputs.frames[sym]
    if isinstance(frame, str):
        return "no_data", frame
    returns = return_series(frame)
    dates = pd.DatetimeIndex(returns.index)
    factors: list[pd.Series | None] = [None, None]
    if inputs.model in FACTOR_MODELS:
        wanted = [inputs.market_of[sym]]
        if inputs.model == "two-factor":
            wanted.append(str(inputs.config.sector_benchmark))
        for k, bench in enumerate(wanted):
            if bench == sym:
                return "own_benchmark", (f"{sym} is its own {'market' if k == 0 else 'sector'} benchmark "
                                         f"(choose another --benchmark, or --model mean)")
            bench_frame = inputs.frames[bench]
            if isinstance(bench_frame, str):
                return "benchmark", f"benchmark {bench} unavailable ({bench_frame})"
            factors[k] = aligned_market_returns(bench_frame, dates)
            missing = _same_venue_holes(sym, bench, bench_frame, dates)
            if len(missing):
                inputs.holes.setdefault(sym, []).append((bench, missing))
    return returns, factors[0], factors[1]


def _same_venue_holes(sym: str, bench: str, bench_frame: pd.DataFrame, dates: pd.DatetimeIndex
                      ) -> pd.DatetimeIndex:
    """The symbol's bar dates, inside the benchmark's data, on which a benchmark of the same venue has no bar."""
    from engine.market.symbols import listing

    if listing(bench).exchange != listing(sym).exchange:
        return pd.DatetimeIndex([])  # another venue's holidays are real: its level did not move
    bars = pd.DatetimeIndex(bench_frame.index)  # every bar gives a level (aligned_market_returns)
    if not len(bars):
        return pd.DatetimeIndex([])
    inside = dates[(dates >= bars[0]) & (dates <= bars[-1])]
    return inside.difference(bars)


def _hole_hits(inputs: _Inputs, sym: str, prepared: PreparedSample) -> list[tuple[str, pd.Timestamp]]:
    """(benchmark, missing date) whose carried level enters this sample's estimation or event returns (the missing
    date itself and the bar after it)."""
    hits = []
    used = prepared.est_dates.union(prepared.win_dates)
    for bench, missing in inputs.holes.get(sym, []):
        series = inputs.returns[sym][0]
        assert isinstance(series, pd.Series)
        dates = pd.DatetimeIndex(series.index)
        for day in missing:
            pos = int(dates.searchsorted(day))
            if any(dates[q] in used for q in (pos, pos + 1) if q < len(dates)):
                hits.append((bench, day))
    return hits


def _prepare(inputs: _Inputs, ev: Any, sym: str) -> PreparedSample | Skip:
    from engine.events.timing import entry_session
    from engine.plan.planner import placement

    if sym not in inputs.returns:
        inputs.returns[sym] = _symbol_returns(inputs, sym)
    got = inputs.returns[sym]
    if len(got) == 2:
        return got
    returns, market, sector = got
    try:
        entry = pd.Timestamp(entry_session(ev, sym, inputs.config.fill)).normalize()
    except ConfigError as exc:
        return "entry", f"no entry session: {exc}"
    frame = inputs.frames[sym]
    assert not isinstance(frame, str)
    placed = placement(frame, entry)  # the backtest's one fill-bar rule
    if placed[0] == "skip":
        first, last = frame.index[0].date(), frame.index[-1].date()
        return "fill_bar", f"{placed[2]} (entry session {entry.date()}, data {first} .. {last})"
    prepared = prepare_sample(returns, market, placed[2], inputs.config.window, inputs.config.estimation,
                              sector=sector, entry=entry)
    return (_kind_of(prepared), prepared) if isinstance(prepared, str) else prepared


def _kind_of(reason: str) -> str:
    if reason.startswith("not enough history"):
        return "history"
    if reason.startswith("the event window needs"):
        return "data_end"
    if "benchmark has no prices" in reason:
        return "benchmark_gap"
    return "prices"


def _event_result(ev: Any, sym: str, prepared: PreparedSample, fit: ModelFit, sample: Sample,
                  inputs: _Inputs) -> EventResult:
    car = float(sample.abnormal.car[-1])
    se = math.sqrt(float(sample.abnormal.car_var[-1]))
    t = car / se if se > 0 else None
    factor = inputs.model in FACTOR_MODELS
    return EventResult(
        event_id=ev.id, symbol=sym, event_type=ev.type, event_date=ev.date.isoformat(),
        description=ev.description, entry_session=_day(prepared.entry), day0=_day(prepared.day0),
        day0_gap_days=int((prepared.day0 - prepared.entry).days),
        window_start=_day(prepared.win_dates[0]), window_end=_day(prepared.win_dates[-1]),
        benchmark=inputs.market_of[sym] if factor else None,
        sector_benchmark=inputs.config.sector_benchmark if inputs.model == "two-factor" else None,
        params=tuple(float(p) for p in fit.params), sigma=math.sqrt(fit.sigma2), dof=fit.dof,
        ar=tuple(float(a) for a in sample.abnormal.ar), car=car, car_se=se, car_t=t,
        car_p=t_pvalue(t, fit.dof), decomposition=sample.decomposition,
    )


def _day(ts: pd.Timestamp) -> str:
    return pd.Timestamp(ts).date().isoformat()


# ---------------------------------------------------------------- groups


def _mean_decomposition(samples: Sequence[Sample]) -> Decomposition | None:
    parts = [s.decomposition for s in samples if s.decomposition is not None]
    if not parts:
        return None
    n = len(parts)
    return Decomposition(*(sum(getattr(p, f) for p in parts) / n
                           for f in ("raw", "constant", "market", "sector", "abnormal")))


def pooled_sign(types: Iterable[str]) -> tuple[int, bool]:
    """(expected sign of the pooled types, whether they have opposite expected signs)."""
    signs = {EXPECTED_SIGN.get(t, 0) for t in types} - {0}
    if len(signs) == 1:
        return signs.pop(), False
    return 0, len(signs) > 1


def make_groups(samples: Sequence[tuple[EventResult, Sample]], window: tuple[int, int], pool: bool,
                confidence: float = CONFIDENCE) -> tuple[GroupResult, ...]:
    """One group per event type (in EVENT_TYPES order), or one pooled group."""
    from engine.events.catalog import EVENT_TYPES

    present = [t for t in EVENT_TYPES if any(r.event_type == t for r, _ in samples)]
    present += sorted({r.event_type for r, _ in samples} - set(present))
    buckets = [tuple(present)] if pool else [(t,) for t in present]
    groups = []
    for types in buckets:
        chosen = [(r, s) for r, s in samples if r.event_type in types]
        days, clustering = aggregate([s for _, s in chosen], window, confidence)
        groups.append(GroupResult(types, pooled_sign(types)[0], tuple(r for r, _ in chosen), days, clustering,
                                  _mean_decomposition([s for _, s in chosen])))
    return tuple(groups)


# ---------------------------------------------------------------- the study (I/O through PriceStore)


def _choices(config: StudyConfig, model: str, market_of: Mapping[str, str], pairs_symbols: Sequence[str],
             applied: Sequence[str]) -> tuple[str, ...]:
    describe = {"market": "market model R = a + b Rm", "mean": "constant-mean model R = mean",
                "raw": "raw returns (no model)",
                "two-factor": "two-factor model R = a + b Rm + c Rs*, Rs* = sector return beyond the market"}
    out = [f"model: {describe[model]}, least squares on the estimation window {config.estimation[0]}:"
           f"{config.estimation[1]}; event window {config.window[0]}:{config.window[1]} trading days"]
    if model in FACTOR_MODELS:
        by_bench: dict[str, list[str]] = {}
        for sym in pairs_symbols:
            by_bench.setdefault(market_of[sym], []).append(sym)
        how = "--benchmark for every symbol" if config.benchmark else "the broad market of each symbol's venue"
        out.append("market benchmark (" + how + "): "
                   + "; ".join(f"{b} for {', '.join(syms)}" for b, syms in sorted(by_bench.items())))
    out.append(f"sector benchmark: {config.sector_benchmark}" if model == "two-factor" else
               "sector benchmark: none (--sector-benchmark SYMBOL adds the two-factor model)")
    out.append(f"day 0: the backtest's fill bar for fill {config.fill} (first non-stale bar on or after the entry "
               f"session; a gap moves it to the next bar)")
    out.append("groups: all event types pooled (--pool)" if config.pool else
               "groups: one per event type (--pool to pool them)")
    if applied:
        out.append(f"sector events also applied to the index/fund symbols {', '.join(applied)}")
    out.append("tests: cross-sectional t, BMP, Kolari-Pynnonen (when clustered) with Student t p-values; Corrado "
               "rank, generalised sign (Cowan) and Wilcoxon signed-rank on CARs with normal or exact p-values")
    return tuple(out)


def _venue_mismatches(model: str, market_of: Mapping[str, str], sector: str | None, symbols: Sequence[str]
                      ) -> list[str]:
    """Benchmarks of another venue than the symbol: their return on a date includes another session's hours."""
    from engine.market.symbols import listing

    if model not in FACTOR_MODELS:
        return []
    found: dict[tuple[str, str], list[str]] = {}
    for sym in symbols:
        benches = [market_of[sym]] + ([sector] if model == "two-factor" and sector else [])
        for bench in benches:
            if listing(bench).exchange != listing(sym).exchange:
                found.setdefault((bench, listing(bench).exchange), []).append(sym)
    return [f"benchmark {bench} trades on {ex}, not the venue of {', '.join(syms)}: its return on a date covers "
            f"another session (e.g. US hours after the Hong Kong close); a benchmark of the same venue is cleaner"
            for (bench, ex), syms in sorted(found.items())]


def run_study(config: StudyConfig, store: Any, events: Sequence[Any], universe: Sequence[str]) -> StudyResult:
    """Event study of ``events`` (already loaded) on ``universe`` symbols with prices from ``store``."""
    from engine.events.catalog import filter_events

    model = config.resolved_model
    chosen = filter_events(events, types=config.types or None, start=config.start, end=config.end)
    pairs = study_pairs(chosen, universe)
    symbols = sorted({sym for _, sym in pairs}, key=list(universe).index)
    market_of = {sym: config.benchmark or market_benchmark(sym) for sym in symbols}
    applied = sorted({sym for ev, sym in pairs if ev.scope == "sector" and sym not in ev.symbols and ev.symbols})
    choices = _choices(config, model, market_of, symbols, applied)
    warnings = []
    types_present = sorted({ev.type for ev, _ in pairs})
    if config.pool and pooled_sign(types_present)[1]:
        warnings.append("pooling event types with opposite expected signs ("
                        + ", ".join(f"{t} {sign_word(EXPECTED_SIGN.get(t, 0))}" for t in types_present)
                        + "): their reactions cancel in the CAAR; study them separately (drop --pool)")
    warnings += _venue_mismatches(model, market_of, config.sector_benchmark, symbols)
    if not pairs:
        return StudyResult(config, model, (), (), choices, tuple(warnings))
    lo, hi = _date_range([ev for ev, _ in pairs], config)
    needed = list(symbols)
    if model in FACTOR_MODELS:
        needed += sorted(set(market_of.values()) - set(needed))
    if model == "two-factor" and config.sector_benchmark not in needed:
        needed.append(str(config.sector_benchmark))
    inputs = _Inputs(config, model, _load_frames(store, needed, lo, hi), market_of, {})
    studied: list[tuple[EventResult, Sample]] = []
    skipped: list[SkippedEvent] = []
    holed: dict[tuple[str, pd.Timestamp], list[str]] = {}
    for ev, sym in pairs:
        prepared = _prepare(inputs, ev, sym)
        if isinstance(prepared, tuple):
            skipped.append(SkippedEvent(ev.id, sym, prepared[1], prepared[0]))
            continue
        try:
            fit, sample = study_sample(prepared, model)
        except CollinearError as exc:
            skipped.append(SkippedEvent(ev.id, sym, str(exc), "collinear"))
            continue
        if not fit.sigma2 > 0:
            skipped.append(SkippedEvent(ev.id, sym, "the model fits the estimation window exactly (zero residual "
                                        "variance): is the symbol its own benchmark?", "collinear"))
            continue
        studied.append((_event_result(ev, sym, prepared, fit, sample, inputs), sample))
        for bench, day in _hole_hits(inputs, sym, prepared):
            holed.setdefault((bench, day), []).append(f"{ev.id} {sym}")
    gaps = [r for r, _ in studied if r.day0_gap_days >= GAP_NOTE_DAYS]
    if gaps:
        warnings.append(f"{len(gaps)} sample(s) have day 0 {GAP_NOTE_DAYS}+ calendar days after the entry session "
                        f"(no bar in between, e.g. a suspension): " + ", ".join(
                            f"{r.event_id} {r.symbol} +{r.day0_gap_days}d" for r in gaps[:3]))
    warnings += _hole_warnings(holed)
    warnings += _shared_day0_warnings(studied, config.pool)
    groups = make_groups(studied, config.window, config.pool)
    synthetic = any(_is_sample(store, s) for s in symbols)
    benches = tuple(sorted({b for r, _ in studied for b in (r.benchmark, r.sector_benchmark) if b}))
    return StudyResult(config, model, groups, tuple(skipped), choices, tuple(warnings), CONFIDENCE, synthetic,
                       benches)


def _shared_day0_warnings(studied: Sequence[tuple[EventResult, Sample]], pool: bool) -> list[str]:
    """Samples of one group with the same symbol and day 0 (two brokers' upgrades of one day; events a day apart
    that reach the same fill bar): one reaction counted as several events."""
    seen: dict[tuple[str, str, str], list[str]] = {}
    for result, _ in studied:
        seen.setdefault(("" if pool else result.event_type, result.symbol, result.day0), []).append(result.event_id)
    shared = [(key, ids) for key, ids in seen.items() if len(ids) > 1]
    if not shared:
        return []
    count = sum(len(ids) for _, ids in shared)
    examples = ", ".join(f"{symbol} day 0 {day0} ({' + '.join(ids)})" for (_, symbol, day0), ids in shared[:3])
    return [f"{count} samples share their symbol and day 0 with another sample of their group: {len(shared)} "
            f"reaction(s) counted as {count} events (the tests take samples as independent; the Kolari-Pynnonen "
            f"factor only partly allows for it): {examples}"
            + (f", ... ({len(shared) - 3} more)" if len(shared) > 3 else "")]


def _hole_warnings(holed: Mapping[tuple[str, pd.Timestamp], list[str]]) -> list[str]:
    by_bench: dict[str, dict[pd.Timestamp, list[str]]] = {}
    for (bench, day), samples in sorted(holed.items()):
        by_bench.setdefault(bench, {})[day] = samples
    out = []
    for bench, days in by_bench.items():
        samples = sorted({s for names in days.values() for s in names})
        dates = ", ".join(str(d.date()) for d in days)
        out.append(f"benchmark {bench} has no bar on {dates}, a session of its venue on which a studied symbol "
                   f"traded: its level is carried (a 0% return that day, two days' return the next) in the windows "
                   f"of {len(samples)} sample(s), e.g. {', '.join(samples[:3])}")
    return out


def _is_sample(store: Any, symbol: str) -> bool:
    try:
        return store.read_meta(symbol).get("source") == "sample"
    except Exception:
        return False


__all__ = ["MODELS", "SKIP_KINDS", "Clustering", "EventResult", "GroupResult", "SkipGroup", "SkippedEvent",
           "StudyConfig", "StudyResult", "clustering_of", "group_skips", "make_groups", "parse_window", "run_study"]
