"""Event study: abnormal returns around dated events, with per-event and cross-sectional tests.

Conventions (README, "Event study and visual reports"):

* Event time counts the symbol's own non-stale price bars. Day 0 is the first non-stale bar dated on or after
  the event's entry session (``engine.events.timing.entry_session``, the same no-lookahead rule as the backtest).
* Returns are simple close-to-close returns of ``adj_close`` (total return; ``close`` where ``adj_close`` is
  missing). The return of day t is close(t) / close(t-1) - 1, so day 0 holds the first reaction a trader could
  act on. The benchmark level is aligned to the symbol's bar dates by forward fill (never back-filled).
* Models, estimated by OLS on the estimation window (T returns, k parameters):
  ``market`` AR = R - (alpha + beta Rm), k = 2; ``mean`` AR = R - mean(R_est), k = 1; ``raw`` AR = R, k = 0.
  sigma^2 = SSR / (T - k). Variances include the estimation error of the parameters (prediction error):
  Var(AR_t) = sigma^2 (1 + x_t' (X'X)^-1 x_t), Var(CAR) = sigma^2 (n + s' (X'X)^-1 s), s = sum of x_t.
* Per-event t = CAR / sd(CAR), Student t with T - k degrees of freedom.
* Cross-sectional test (N events): mean / (sample sd / sqrt(N)), t with N - 1 degrees of freedom.
* BMP (Boehmer, Musumeci, Poulsen 1991): the same cross-sectional test on standardised abnormal returns
  (AR_t / sd(AR_t)) and standardised CARs (CAR / sd(CAR)).
* Kolari-Pynnonen (2010): when event windows overlap in calendar time (clustering), the statistics are
  multiplied by sqrt((1 - r) / (1 + (N - 1) r)), r = the average over all N(N-1)/2 pairs of the correlation
  of the pair's estimation-window abnormal returns on common dates; pairs whose event windows do not overlap
  count as 0 (their event-window abnormal returns fall on different days). Applied to BMP (as in the paper)
  and to the cross-sectional t (same variance argument); the confidence band widens by the inverse factor.
* p-values are two-sided from the Student t distribution (regularised incomplete beta function, no scipy).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import ConfigError

MODELS = ("market", "mean", "raw")
DEFAULT_WINDOW = (-5, 10)
DEFAULT_ESTIMATION = (-250, -30)
DEFAULT_HK_BENCHMARK = "^HSI"
DEFAULT_US_BENCHMARK = "KWEB"
MIN_ESTIMATION = 30  # fewer estimation returns than this: the event is skipped
MIN_COMMON = 20  # common estimation dates needed to estimate a pair's correlation
MAX_DAY0_GAP_DAYS = 10  # day 0 bar more than this many calendar days after the entry session: skipped
CONFIDENCE = 0.95


# ---------------------------------------------------------------- Student t distribution (no scipy)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz evaluation)."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 1000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < eps:
            break
    return result


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must be in [0, 1], got {x}")
    if x in (0.0, 1.0):
        return x
    log_front = a * math.log(x) + b * math.log1p(-x) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_pvalue(t: float | None, df: float) -> float | None:
    """Two-sided p-value of a Student t statistic with ``df`` degrees of freedom."""
    if t is None or not math.isfinite(t) or df <= 0:
        return None
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def t_critical(df: float, confidence: float = CONFIDENCE) -> float:
    """Two-sided critical value: |t| above it has probability 1 - confidence (bisection on ``t_pvalue``)."""
    if df <= 0:
        raise ValueError("df must be positive")
    alpha = 1.0 - confidence
    lo, hi = 0.0, 1.0
    while (t_pvalue(hi, df) or 0.0) > alpha:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if (t_pvalue(mid, df) or 0.0) > alpha:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2.0


# ---------------------------------------------------------------- per-event estimation


@dataclass(frozen=True)
class ModelFit:
    """OLS fit of one event's return model on its estimation window."""

    model: str
    params: np.ndarray  # [alpha, beta] (market), [mean] (mean), [] (raw)
    sigma2: float  # residual variance SSR / (T - k)
    dof: int  # T - k
    xtx_inv: np.ndarray  # (k, k)
    residuals: np.ndarray  # estimation-window abnormal returns (T,)


def design(model: str, market: np.ndarray) -> np.ndarray:
    """Regressor matrix of a model for the given market returns: (n, k) with k = 2, 1 or 0."""
    n = len(market)
    if model == "market":
        return np.column_stack([np.ones(n), np.asarray(market, dtype=float)])
    if model == "mean":
        return np.ones((n, 1))
    if model == "raw":
        return np.zeros((n, 0))
    raise ConfigError(f"unknown model {model!r} (expected one of: {', '.join(MODELS)})")


def fit_model(model: str, returns: np.ndarray, market: np.ndarray) -> ModelFit:
    """Estimate ``model`` by OLS on estimation-window returns (``market`` is ignored unless model=market)."""
    y = np.asarray(returns, dtype=float)
    x = design(model, np.asarray(market, dtype=float) if model == "market" else np.zeros(len(y)))
    k = x.shape[1]
    dof = len(y) - k
    if dof <= 0:
        raise ValueError("estimation window too short for the model")
    xtx_inv = np.linalg.inv(x.T @ x) if k else np.zeros((0, 0))
    params = xtx_inv @ (x.T @ y) if k else np.zeros(0)
    resid = y - x @ params
    return ModelFit(model, params, float(resid @ resid) / dof, dof, xtx_inv, resid)


@dataclass(frozen=True)
class EventAbnormal:
    """Abnormal returns of one event window and their prediction-error variances."""

    ar: np.ndarray  # (L,)
    ar_var: np.ndarray  # (L,) Var(AR_t)
    car: np.ndarray  # (L,) cumulative from the window start
    car_var: np.ndarray  # (L,) Var(CAR up to t)


def abnormal_returns(fit: ModelFit, returns: np.ndarray, market: np.ndarray) -> EventAbnormal:
    """Event-window abnormal returns under ``fit`` with variances including the parameter estimation error."""
    y = np.asarray(returns, dtype=float)
    x = design(fit.model, np.asarray(market, dtype=float) if fit.model == "market" else np.zeros(len(y)))
    ar = y - x @ fit.params
    ar_var = fit.sigma2 * (1.0 + np.einsum("ij,jk,ik->i", x, fit.xtx_inv, x))
    sums = np.cumsum(x, axis=0)
    counts = np.arange(1, len(y) + 1, dtype=float)
    car_var = fit.sigma2 * (counts + np.einsum("ij,jk,ik->i", sums, fit.xtx_inv, sums))
    return EventAbnormal(ar, ar_var, np.cumsum(ar), car_var)


# ---------------------------------------------------------------- cross-section


@dataclass(frozen=True)
class TestResult:
    """A test statistic with its two-sided p-value and degrees of freedom (None when undefined)."""

    stat: float | None
    p: float | None
    df: int | None


def _undefined() -> TestResult:
    return TestResult(None, None, None)


def cross_sectional_t(values: np.ndarray, factor: float = 1.0) -> TestResult:
    """mean / (sd / sqrt(N)) x factor with N - 1 df; undefined for N < 2 or zero dispersion."""
    v = np.asarray(values, dtype=float)
    n = len(v)
    if n < 2:
        return _undefined()
    sd = float(np.std(v, ddof=1))
    if not sd > 0:
        return _undefined()
    stat = float(np.mean(v)) / (sd / math.sqrt(n)) * factor
    return TestResult(stat, t_pvalue(stat, n - 1), n - 1)


def kp_factor(mean_corr: float, n: int) -> float:
    """Kolari-Pynnonen multiplier sqrt((1 - r) / (1 + (n - 1) r)) for the average cross-correlation r."""
    denom = 1.0 + (n - 1) * mean_corr
    if n < 2 or denom <= 0 or mean_corr >= 1:
        return float("nan")
    return math.sqrt((1.0 - mean_corr) / denom)


def mean_cross_correlation(
    residuals: Sequence[pd.Series], clustered_pairs: Iterable[tuple[int, int]], min_common: int = MIN_COMMON
) -> tuple[float, int]:
    """(average correlation over all N(N-1)/2 pairs, pairs lacking common dates).

    Only ``clustered_pairs`` (index pairs whose event windows overlap) contribute; every other pair counts 0.
    ``residuals`` are estimation-window abnormal returns indexed by date.
    """
    n = len(residuals)
    if n < 2:
        return 0.0, 0
    total, short = 0.0, 0
    for i, j in clustered_pairs:
        a, b = residuals[i].align(residuals[j], join="inner")
        if len(a) < min_common:
            short += 1
            continue
        sa, sb = float(np.std(a.to_numpy())), float(np.std(b.to_numpy()))
        if sa > 0 and sb > 0:
            total += float(np.corrcoef(a.to_numpy(), b.to_numpy())[0, 1])
    return total / (n * (n - 1) / 2.0), short


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class StudyConfig:
    """What to study (``evbt study`` options)."""

    types: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    start: dt.date | None = None
    end: dt.date | None = None
    window: tuple[int, int] = DEFAULT_WINDOW
    estimation: tuple[int, int] = DEFAULT_ESTIMATION
    model: str = "market"
    benchmark: str | None = None  # None: ^HSI for HK listings, KWEB for US ones
    fill: str = "open"

    def __post_init__(self) -> None:
        check_windows(self.window, self.estimation)
        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r} (expected one of: {', '.join(MODELS)})")
        if self.fill not in ("open", "close"):
            raise ConfigError(f"unknown fill {self.fill!r} (expected open or close)")


@dataclass(frozen=True)
class EventResult:
    """One (event, symbol) sample."""

    event_id: str
    symbol: str
    event_type: str
    event_date: str
    description: str
    entry_session: str
    day0: str
    window_start: str
    window_end: str
    benchmark: str | None
    params: tuple[float, ...]  # (alpha, beta) | (mean,) | ()
    sigma: float
    dof: int
    ar: tuple[float, ...]
    car: float
    car_se: float
    car_t: float | None
    car_p: float | None


@dataclass(frozen=True)
class SkippedEvent:
    """An (event, symbol) pair that could not be studied, and why."""

    event_id: str
    symbol: str
    reason: str


@dataclass(frozen=True)
class DayStat:
    """Cross-sectional statistics of one relative day of the event window."""

    day: int
    n: int
    aar: float
    aar_t: TestResult
    aar_bmp: TestResult
    caar: float
    caar_t: TestResult
    caar_bmp: TestResult
    caar_t_kp: TestResult | None  # Kolari-Pynnonen adjusted (None when not clustered)
    caar_bmp_kp: TestResult | None
    band_low: float | None  # CAAR confidence band (KP-widened when clustered)
    band_high: float | None


@dataclass(frozen=True)
class Clustering:
    """Whether event windows overlap in calendar time and the resulting Kolari-Pynnonen adjustment."""

    clustered: bool
    shared_day0: tuple[tuple[str, int], ...]  # (date, samples) for day-0 dates shared by 2+ samples
    overlapping_pairs: int
    pairs: int
    pairs_without_common_dates: int
    mean_correlation: float
    kp_factor: float | None


@dataclass(frozen=True)
class StudyResult:
    """Everything ``evbt study`` prints (``to_dict`` gives the JSON document)."""

    config: StudyConfig
    events: tuple[EventResult, ...]
    skipped: tuple[SkippedEvent, ...]
    days: tuple[DayStat, ...]
    clustering: Clustering
    confidence: float = CONFIDENCE
    synthetic: bool = False
    benchmarks: tuple[str, ...] = field(default_factory=tuple)

    @property
    def summary(self) -> DayStat | None:
        """Statistics over the whole event window (the last day's cumulative values)."""
        return self.days[-1] if self.days else None

    def to_dict(self) -> dict[str, Any]:
        from engine.reporting.report import to_jsonable

        doc = to_jsonable(self)
        doc["summary"] = to_jsonable(self.summary)
        return doc


# ---------------------------------------------------------------- aggregation (pure)


@dataclass(frozen=True)
class Sample:
    """Inputs of the aggregation for one (event, symbol): abnormal returns and calendar facts."""

    abnormal: EventAbnormal
    residuals: pd.Series  # estimation-window abnormal returns indexed by bar date
    window_dates: pd.DatetimeIndex  # bar dates of the event window
    day0: pd.Timestamp


def clustering_of(samples: Sequence[Sample]) -> tuple[Clustering, list[tuple[int, int]]]:
    """Which samples' event windows overlap in calendar time, and the Kolari-Pynnonen factor."""
    n = len(samples)
    pairs = [
        (i, j)
        for i in range(n)
        for j in range(i + 1, n)
        if samples[i].window_dates[0] <= samples[j].window_dates[-1]
        and samples[j].window_dates[0] <= samples[i].window_dates[-1]
    ]
    counts = pd.Series([s.day0.date().isoformat() for s in samples], dtype=object).value_counts()
    shared = tuple(sorted((str(d), int(c)) for d, c in counts.items() if c > 1))
    rbar, short = mean_cross_correlation([s.residuals for s in samples], pairs)
    factor = kp_factor(rbar, n) if pairs else None
    if factor is not None and not math.isfinite(factor):
        factor = None
    clustering = Clustering(bool(pairs), shared, len(pairs), n * (n - 1) // 2, short, rbar, factor)
    return clustering, pairs


def _scaled(test: TestResult, factor: float | None) -> TestResult | None:
    if factor is None:
        return None
    if test.stat is None or test.df is None:
        return test
    stat = test.stat * factor
    return TestResult(stat, t_pvalue(stat, test.df), test.df)


def aggregate(samples: Sequence[Sample], window: tuple[int, int], confidence: float = CONFIDENCE
              ) -> tuple[tuple[DayStat, ...], Clustering]:
    """AAR/CAAR per relative day with cross-sectional, BMP and (when clustered) Kolari-Pynnonen tests."""
    clustering, _ = clustering_of(samples)
    n = len(samples)
    if n == 0:
        return (), clustering
    ar = np.vstack([s.abnormal.ar for s in samples])
    sar = ar / np.sqrt(np.vstack([s.abnormal.ar_var for s in samples]))
    car = np.vstack([s.abnormal.car for s in samples])
    scar = car / np.sqrt(np.vstack([s.abnormal.car_var for s in samples]))
    factor = clustering.kp_factor if clustering.clustered else None
    crit = t_critical(n - 1, confidence) if n >= 2 else None
    days = []
    for col, day in enumerate(range(window[0], window[1] + 1)):
        caar_t = cross_sectional_t(car[:, col])
        caar = float(np.mean(car[:, col]))
        low = high = None
        if crit is not None:
            se = float(np.std(car[:, col], ddof=1)) / math.sqrt(n)
            se = se / factor if factor else se
            low, high = caar - crit * se, caar + crit * se
        days.append(DayStat(
            day=day, n=n, aar=float(np.mean(ar[:, col])),
            aar_t=cross_sectional_t(ar[:, col]), aar_bmp=cross_sectional_t(sar[:, col]),
            caar=caar, caar_t=caar_t, caar_bmp=cross_sectional_t(scar[:, col]),
            caar_t_kp=_scaled(caar_t, factor), caar_bmp_kp=_scaled(cross_sectional_t(scar[:, col]), factor),
            band_low=low, band_high=high,
        ))
    return tuple(days), clustering


# ---------------------------------------------------------------- windows and data


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


def default_benchmark(symbol: str) -> str:
    from engine.market.symbols import listing

    return DEFAULT_HK_BENCHMARK if listing(symbol).is_hk else DEFAULT_US_BENCHMARK


def return_series(frame: pd.DataFrame) -> pd.Series:
    """Close-to-close simple returns of adj_close (close where missing) over non-stale bars; first is NaN."""
    bars = frame.loc[~frame["stale"].astype(bool)]
    price = bars["adj_close"].where(bars["adj_close"].notna() & (bars["adj_close"] > 0), bars["close"])
    price = price.where(price > 0)
    return (price / price.shift(1) - 1.0).astype("float64")


def aligned_market_returns(bench: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.Series:
    """Benchmark returns between consecutive ``dates`` (levels forward-filled onto them, never back-filled)."""
    bars = bench.loc[~bench["stale"].astype(bool)]
    level = bars["adj_close"].where(bars["adj_close"].notna() & (bars["adj_close"] > 0), bars["close"])
    level = level.where(level > 0).dropna()
    union = level.index.union(dates)
    on_dates = level.reindex(union).ffill().reindex(dates)
    return (on_dates / on_dates.shift(1) - 1.0).astype("float64")


@dataclass(frozen=True)
class PreparedSample:
    """One (event, symbol) ready for estimation: returns by relative day and the calendar."""

    est_returns: np.ndarray
    est_market: np.ndarray
    est_dates: pd.DatetimeIndex
    win_returns: np.ndarray
    win_market: np.ndarray
    win_dates: pd.DatetimeIndex
    day0: pd.Timestamp
    entry: pd.Timestamp


def prepare_sample(
    returns: pd.Series, market: pd.Series | None, entry: pd.Timestamp, window: tuple[int, int],
    estimation: tuple[int, int],
) -> PreparedSample | str:
    """Slice the estimation and event windows around day 0, or return why the sample is skipped.

    ``returns``/``market`` are indexed by the symbol's non-stale bar dates (same index). Day 0 is the first
    bar on or after ``entry``.
    """
    dates = pd.DatetimeIndex(returns.index)
    pos = int(dates.searchsorted(entry))
    if pos >= len(dates):
        return f"no price bar on or after the entry session {entry.date()} (data ends {dates[-1].date()})"
    day0 = dates[pos]
    if (day0 - entry).days > MAX_DAY0_GAP_DAYS:
        return f"no price bar within {MAX_DAY0_GAP_DAYS} days of the entry session {entry.date()} (next {day0.date()})"
    first, last = pos + estimation[0], pos + window[1]
    if first < 1:
        return (f"not enough history: the estimation window needs {-estimation[0]} bars before day 0 "
                f"{day0.date()}, the data has {pos}")
    if last >= len(dates):
        return (f"the event window needs {window[1]} bars after day 0 {day0.date()}, "
                f"the data has {len(dates) - 1 - pos}")
    est = slice(pos + estimation[0], pos + estimation[1] + 1)
    win = slice(pos + window[0], pos + window[1] + 1)
    r = returns.to_numpy(dtype=float)
    m = market.to_numpy(dtype=float) if market is not None else np.zeros(len(r))
    for name, part in (("estimation", est), ("event", win)):
        if not np.isfinite(r[part]).all():
            return f"missing or invalid prices in the {name} window"
        if market is not None and not np.isfinite(m[part]).all():
            return f"benchmark has no prices for part of the {name} window"
    return PreparedSample(r[est], m[est], dates[est], r[win], m[win], dates[win], day0, pd.Timestamp(entry))


def study_sample(prepared: PreparedSample, model: str) -> tuple[ModelFit, Sample]:
    """Fit the model on the estimation window and compute the event-window abnormal returns."""
    fit = fit_model(model, prepared.est_returns, prepared.est_market)
    abnormal = abnormal_returns(fit, prepared.win_returns, prepared.win_market)
    residuals = pd.Series(fit.residuals, index=prepared.est_dates)
    return fit, Sample(abnormal, residuals, prepared.win_dates, prepared.day0)


# ---------------------------------------------------------------- the study (I/O through PriceStore)


def _load_window_frames(store: Any, symbols: Iterable[str], lo: dt.date, hi: dt.date
                        ) -> dict[str, pd.DataFrame | str]:
    from engine.errors import EvbtError

    out: dict[str, pd.DataFrame | str] = {}
    for sym in symbols:
        try:
            frame = store.load(sym, lo, hi)
        except EvbtError as exc:
            out[sym] = f"no price data for {sym}: {exc}"
            continue
        out[sym] = frame if not frame.empty else f"no price data for {sym} between {lo} and {hi}"
    return out


def _date_range(events: Sequence[Any], config: StudyConfig) -> tuple[dt.date, dt.date]:
    before = int(-config.estimation[0] * 1.6) + 30  # trading days -> calendar days, with margin
    after = int(max(config.window[1], 0) * 1.6) + 30
    lo = min(e.date for e in events) - dt.timedelta(days=before)
    hi = max(e.date for e in events) + dt.timedelta(days=after)
    return lo, hi


def _pairs(events: Sequence[Any], universe: Sequence[str]) -> list[tuple[Any, str]]:
    from engine.events.catalog import symbols_for

    return [(ev, sym) for ev in events for sym in symbols_for(ev, universe)]


def run_study(config: StudyConfig, store: Any, events: Sequence[Any], universe: Sequence[str]) -> StudyResult:
    """Event study of ``events`` (already loaded) on ``universe`` symbols with prices from ``store``."""
    from engine.events.catalog import filter_events
    from engine.events.timing import entry_session, use_schedule_cache

    if getattr(store, "root", None) is not None:
        use_schedule_cache(store.root / ".calendars")
    chosen = filter_events(events, types=config.types or None, start=config.start, end=config.end)
    pairs = _pairs(chosen, universe)
    if not pairs:
        return StudyResult(config, (), (), (), clustering_of([])[0])
    lo, hi = _date_range([ev for ev, _ in pairs], config)
    symbols = sorted({sym for _, sym in pairs})
    bench_of = {sym: config.benchmark or default_benchmark(sym) for sym in symbols}
    needs_bench = config.model == "market"
    frames = _load_window_frames(store, symbols + (sorted(set(bench_of.values())) if needs_bench else []), lo, hi)
    results: list[EventResult] = []
    samples: list[Sample] = []
    skipped: list[SkippedEvent] = []
    returns_cache: dict[str, tuple[pd.Series, pd.Series | None] | str] = {}
    for ev, sym in pairs:
        prepared = _prepare(ev, sym, config, frames, bench_of, returns_cache, entry_session)
        if isinstance(prepared, str):
            skipped.append(SkippedEvent(ev.id, sym, prepared))
            continue
        fit, sample = study_sample(prepared, config.model)
        samples.append(sample)
        results.append(_event_result(ev, sym, prepared, fit, sample, bench_of[sym] if needs_bench else None))
    days, clustering = aggregate(samples, config.window)
    synthetic = any(_is_sample(store, s) for s in symbols)
    benches = tuple(sorted({r.benchmark for r in results if r.benchmark}))
    return StudyResult(config, tuple(results), tuple(skipped), days, clustering, CONFIDENCE, synthetic, benches)


def _is_sample(store: Any, symbol: str) -> bool:
    try:
        return store.read_meta(symbol).get("source") == "sample"
    except Exception:
        return False


def _prepare(ev: Any, sym: str, config: StudyConfig, frames: Mapping[str, pd.DataFrame | str],
             bench_of: Mapping[str, str], cache: dict, entry_session: Any) -> PreparedSample | str:
    if sym not in cache:
        cache[sym] = _symbol_returns(sym, config, frames, bench_of)
    got = cache[sym]
    if isinstance(got, str):
        return got
    returns, market = got
    try:
        entry = entry_session(ev, sym, config.fill)
    except ConfigError as exc:
        return f"no entry session: {exc}"
    return prepare_sample(returns, market, entry, config.window, config.estimation)


def _symbol_returns(sym: str, config: StudyConfig, frames: Mapping[str, pd.DataFrame | str],
                    bench_of: Mapping[str, str]) -> tuple[pd.Series, pd.Series | None] | str:
    frame = frames[sym]
    if isinstance(frame, str):
        return frame
    returns = return_series(frame)
    if config.model != "market":
        return returns, None
    bench = frames[bench_of[sym]]
    if isinstance(bench, str):
        return f"benchmark {bench_of[sym]} unavailable ({bench})"
    return returns, aligned_market_returns(bench, pd.DatetimeIndex(returns.index))


def _event_result(ev: Any, sym: str, prepared: PreparedSample, fit: ModelFit,
                  sample: Sample, benchmark: str | None) -> EventResult:
    car = float(sample.abnormal.car[-1])
    se = math.sqrt(float(sample.abnormal.car_var[-1]))
    t = car / se if se > 0 else None
    return EventResult(
        event_id=ev.id, symbol=sym, event_type=ev.type, event_date=ev.date.isoformat(),
        description=ev.description, entry_session=_day(prepared.entry), day0=_day(prepared.day0),
        window_start=_day(prepared.win_dates[0]), window_end=_day(prepared.win_dates[-1]), benchmark=benchmark,
        params=tuple(float(p) for p in fit.params), sigma=math.sqrt(fit.sigma2), dof=fit.dof,
        ar=tuple(float(a) for a in sample.abnormal.ar), car=car, car_se=se, car_t=t,
        car_p=t_pvalue(t, fit.dof),
    )


def _day(ts: pd.Timestamp) -> str:
    return pd.Timestamp(ts).date().isoformat()


# ---------------------------------------------------------------- text


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, spec)


def _pct(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value * 100:.3f}%"


def _test_text(test: TestResult | None) -> str:
    if test is None or test.stat is None:
        return "n/a"
    return f"t={test.stat:.3f} (p={_fmt(test.p, '.4f')}, df={test.df})"


def clustering_text(cl: Clustering) -> str:
    if not cl.clustered:
        return "no clustering: no two event windows overlap in calendar time"
    shared = ", ".join(f"{d} x{n}" for d, n in cl.shared_day0) or "none"
    return (f"CLUSTERED: {cl.overlapping_pairs} of {cl.pairs} sample pairs have overlapping event windows "
            f"(shared day 0: {shared}); average cross-correlation {cl.mean_correlation:.4f}, "
            f"Kolari-Pynnonen factor {_fmt(cl.kp_factor, '.4f')} applied")


def render_study_text(result: StudyResult) -> str:
    """Readable study report: setup, per-day table, window tests, clustering, events, skipped."""
    from engine.reporting.report import render_table

    c = result.config
    lines = ["SYNTHETIC DATA: sample prices, not real market history", ""] if result.synthetic else []
    bench = ", ".join(result.benchmarks) if c.model == "market" else "none"
    lines.append(f"Event study: types {', '.join(c.types) or 'all'}; model {c.model} (benchmark {bench}); "
                 f"window {c.window[0]}:{c.window[1]}, estimation {c.estimation[0]}:{c.estimation[1]}; "
                 f"day 0 = entry session (fill {c.fill})")
    lines.append(f"{len(result.events)} event-symbol sample(s), {len(result.skipped)} skipped")
    if result.days:
        rows = [[str(d.day), str(d.n), _pct(d.aar), _fmt(d.aar_t.stat, ".2f"), _fmt(d.aar_bmp.stat, ".2f"),
                 _pct(d.caar), _fmt(d.caar_t.stat, ".2f"), _fmt(d.caar_t.p, ".4f"), _fmt(d.caar_bmp.stat, ".2f"),
                 _fmt(d.caar_bmp_kp.stat if d.caar_bmp_kp else None, ".2f")] for d in result.days]
        lines += ["", render_table(["day", "N", "AAR", "t", "BMP", "CAAR", "t", "p", "BMP", "BMP-KP"], rows)]
        s = result.days[-1]
        lines += ["", f"CAAR {c.window[0]}:{c.window[1]} = {_pct(s.caar)}",
                  f"  cross-sectional {_test_text(s.caar_t)}", f"  BMP             {_test_text(s.caar_bmp)}"]
        if s.caar_t_kp is not None:
            lines += [f"  cross-sectional, Kolari-Pynnonen {_test_text(s.caar_t_kp)}",
                      f"  BMP, Kolari-Pynnonen (adj-BMP)   {_test_text(s.caar_bmp_kp)}"]
        if s.band_low is not None:
            lines.append(f"  {result.confidence:.0%} band [{_pct(s.band_low)}, {_pct(s.band_high)}]")
        lines += ["", clustering_text(result.clustering)]
        ev_rows = [[e.event_id, e.symbol, e.day0, _pct(e.car), _fmt(e.car_t, ".2f"), _fmt(e.car_p, ".4f")]
                   for e in result.events]
        lines += ["", "Events", render_table(["event", "symbol", "day 0", "CAR", "t", "p"], ev_rows)]
    if result.skipped:
        lines += ["", f"Skipped ({len(result.skipped)})"]
        lines += [f"- {s.event_id} {s.symbol}: {s.reason}" for s in result.skipped]
    return "\n".join(lines) + "\n"
