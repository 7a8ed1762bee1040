"""Normal-return models and abnormal returns of one event window (the per-event half of the event study).

Models, estimated by least squares on the estimation window (T returns, k parameters) with
``numpy.linalg.lstsq`` (SVD based; a rank-deficient design, e.g. a benchmark that did not move, is refused rather
than inverted):

* ``market``      AR = R - (a + b Rm), k = 2 (Rm: the broad-market benchmark)
* ``two-factor``  AR = R - (a + b Rm + c Rs*), k = 3, where Rs* is the sector benchmark's return orthogonalised on
  the market over the estimation window (Rs* = Rs - (g + h Rm), g and h from the estimation window). The fitted
  values and abnormal returns are the same as with the raw sector return; the orthogonal form makes b the total
  market exposure and c the exposure to what the sector did beyond the market, so the expected return splits into
  "the market rose" (b Rm) and "the sector rose" (c Rs*).
* ``mean``        AR = R - mean(R_est), k = 1
* ``raw``         AR = R, k = 0

sigma^2 = SSR / (T - k). Variances include the estimation error of the parameters (prediction error, MacKinlay 1997):
Var(AR_t) = sigma^2 (1 + x_t' (X'X)^-1 x_t), Var(CAR) = sigma^2 (n + s' (X'X)^-1 s), s = sum of x_t; (X'X)^-1 comes
from the singular value decomposition of X (V S^-2 V').
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.errors import ConfigError

MODELS = ("market", "two-factor", "mean", "raw")
FACTOR_MODELS = ("market", "two-factor")


class CollinearError(ValueError):
    """The estimation-window design matrix is rank deficient (e.g. a constant benchmark)."""


@dataclass(frozen=True)
class ModelFit:
    """Least-squares fit of one event's return model on its estimation window."""

    model: str
    params: np.ndarray  # [a, b] (market), [a, b, c] (two-factor), [mean] (mean), [] (raw)
    sigma2: float  # residual variance SSR / (T - k)
    dof: int  # T - k
    xtx_inv: np.ndarray  # (k, k)
    residuals: np.ndarray  # estimation-window abnormal returns (T,)
    ortho: tuple[float, float] = (0.0, 0.0)  # (g, h) of the sector's projection on the market (two-factor)


def check_model(model: str) -> None:
    if model not in MODELS:
        raise ConfigError(f"unknown model {model!r} (expected one of: {', '.join(MODELS)})")


def _design(model: str, n: int, market: np.ndarray | None, sector: np.ndarray | None) -> np.ndarray:
    check_model(model)
    if model == "market":
        return np.column_stack([np.ones(n), np.asarray(market, dtype=float)])
    if model == "two-factor":
        return np.column_stack([np.ones(n), np.asarray(market, dtype=float), np.asarray(sector, dtype=float)])
    if model == "mean":
        return np.ones((n, 1))
    return np.zeros((n, 0))


def _lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    coef, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
    if rank < x.shape[1]:
        raise CollinearError("the regressors are collinear in the estimation window (a benchmark did not move?)")
    return coef


def _xtx_inv(x: np.ndarray) -> np.ndarray:
    if x.shape[1] == 0:
        return np.zeros((0, 0))
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    return (vt.T / (s * s)) @ vt


def fit_model(model: str, returns: np.ndarray, market: np.ndarray | None = None,
              sector: np.ndarray | None = None) -> ModelFit:
    """Estimate ``model`` by least squares on estimation-window returns (market/sector only where the model uses
    them). Raises CollinearError for a rank-deficient design and ValueError for too few returns."""
    y = np.asarray(returns, dtype=float)
    ortho = (0.0, 0.0)
    sector_x = None
    if model == "two-factor":
        m = np.asarray(market, dtype=float)
        g, h = _lstsq(np.column_stack([np.ones(len(m)), m]), np.asarray(sector, dtype=float))
        ortho = (float(g), float(h))
        sector_x = np.asarray(sector, dtype=float) - (g + h * m)
    x = _design(model, len(y), market, sector_x)
    k = x.shape[1]
    dof = len(y) - k
    if dof <= 0:
        raise ValueError("estimation window too short for the model")
    params = _lstsq(x, y) if k else np.zeros(0)
    resid = y - x @ params
    return ModelFit(model, params, float(resid @ resid) / dof, dof, _xtx_inv(x), resid, ortho)


def _window_design(fit: ModelFit, n: int, market: np.ndarray | None, sector: np.ndarray | None) -> np.ndarray:
    sector_x = None
    if fit.model == "two-factor":
        g, h = fit.ortho
        sector_x = np.asarray(sector, dtype=float) - (g + h * np.asarray(market, dtype=float))
    return _design(fit.model, n, market, sector_x)


@dataclass(frozen=True)
class EventAbnormal:
    """Abnormal returns of one event window and their prediction-error variances."""

    ar: np.ndarray  # (L,)
    ar_var: np.ndarray  # (L,) Var(AR_t)
    car: np.ndarray  # (L,) cumulative from the window start
    car_var: np.ndarray  # (L,) Var(CAR up to t)


def abnormal_returns(fit: ModelFit, returns: np.ndarray, market: np.ndarray | None = None,
                     sector: np.ndarray | None = None) -> EventAbnormal:
    """Event-window abnormal returns under ``fit`` with variances including the parameter estimation error."""
    y = np.asarray(returns, dtype=float)
    x = _window_design(fit, len(y), market, sector)
    ar = y - x @ fit.params
    ar_var = fit.sigma2 * (1.0 + np.einsum("ij,jk,ik->i", x, fit.xtx_inv, x))
    sums = np.cumsum(x, axis=0)
    counts = np.arange(1, len(y) + 1, dtype=float)
    car_var = fit.sigma2 * (counts + np.einsum("ij,jk,ik->i", sums, fit.xtx_inv, sums))
    return EventAbnormal(ar, ar_var, np.cumsum(ar), car_var)


@dataclass(frozen=True)
class Decomposition:
    """The event window's raw cumulative return split into the model's parts (sums over the window)."""

    raw: float  # sum of R
    constant: float  # the model's constant (a, or the mean) times the window length
    market: float  # b x sum of Rm
    sector: float  # c x sum of Rs* (the sector beyond the market)
    abnormal: float  # CAR = raw - constant - market - sector


def decompose(fit: ModelFit, returns: np.ndarray, market: np.ndarray | None = None,
              sector: np.ndarray | None = None) -> Decomposition:
    y = np.asarray(returns, dtype=float)
    x = _window_design(fit, len(y), market, sector)
    parts = x.sum(axis=0) * fit.params if len(fit.params) else np.zeros(0)
    constant = float(parts[0]) if fit.model != "raw" else 0.0
    mkt = float(parts[1]) if fit.model in FACTOR_MODELS else 0.0
    sec = float(parts[2]) if fit.model == "two-factor" else 0.0
    raw = float(y.sum())
    return Decomposition(raw, constant, mkt, sec, raw - float(parts.sum()))


# ---------------------------------------------------------------- returns and windows


def return_series(frame: pd.DataFrame) -> pd.Series:
    """Close-to-close simple returns of adj_close (close where missing) over non-stale bars; first is NaN."""
    bars = frame.loc[~frame["stale"].astype(bool)]
    price = bars["adj_close"].where(bars["adj_close"].notna() & (bars["adj_close"] > 0), bars["close"])
    price = price.where(price > 0)
    return (price / price.shift(1) - 1.0).astype("float64")


def aligned_market_returns(bench: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.Series:
    """Benchmark returns between consecutive ``dates`` (levels forward-filled onto them, never back-filled, and
    never carried past the benchmark's last bar: after it the return is unknown, NaN, not 0). Every bar counts,
    stale ones too: a zero-volume O=H=L=C bar is never filled at, but its close is the benchmark's level that day
    (^HSI on 2020-03-23: 21696.13, -4.86%); a placeholder repeating the previous close gives 0%, as carrying it
    would."""
    bars = bench
    level = bars["adj_close"].where(bars["adj_close"].notna() & (bars["adj_close"] > 0), bars["close"])
    level = level.where(level > 0).dropna()
    union = level.index.union(dates)
    on_dates = level.reindex(union).ffill().reindex(dates)
    if len(level):
        on_dates = on_dates.where(dates <= level.index[-1])
    return (on_dates / on_dates.shift(1) - 1.0).astype("float64")


@dataclass(frozen=True)
class PreparedSample:
    """One (event, symbol) ready for estimation: returns by relative day and the calendar."""

    est_returns: np.ndarray
    est_market: np.ndarray | None
    est_sector: np.ndarray | None
    est_dates: pd.DatetimeIndex
    win_returns: np.ndarray
    win_market: np.ndarray | None
    win_sector: np.ndarray | None
    win_dates: pd.DatetimeIndex
    day0: pd.Timestamp
    entry: pd.Timestamp


def prepare_sample(
    returns: pd.Series, market: pd.Series | None, day0: pd.Timestamp, window: tuple[int, int],
    estimation: tuple[int, int], sector: pd.Series | None = None, entry: pd.Timestamp | None = None,
) -> PreparedSample | str:
    """Slice the estimation and event windows around ``day0`` (a date of ``returns``' index, the fill bar of the
    event), or return why the sample is skipped. ``market``/``sector`` share ``returns``' index."""
    dates = pd.DatetimeIndex(returns.index)
    pos = int(dates.searchsorted(pd.Timestamp(day0)))
    if pos >= len(dates) or dates[pos] != pd.Timestamp(day0):
        raise ValueError(f"day 0 {pd.Timestamp(day0).date()} is not a bar of the return series")
    if pos + estimation[0] < 1:
        return (f"not enough history: the estimation window needs {1 - estimation[0]} bars before day 0 "
                f"{dates[pos].date()} ({-estimation[0]} returns), the data has {pos}")
    if pos + window[1] >= len(dates):
        return (f"the event window needs {window[1]} bars after day 0 {dates[pos].date()}, "
                f"the data has {len(dates) - 1 - pos}")
    est = slice(pos + estimation[0], pos + estimation[1] + 1)
    win = slice(pos + window[0], pos + window[1] + 1)
    r = returns.to_numpy(dtype=float)
    factors = {"benchmark": market, "sector benchmark": sector}
    arrays = {name: (s.to_numpy(dtype=float) if s is not None else None) for name, s in factors.items()}
    for part_name, part in (("estimation", est), ("event", win)):
        if not np.isfinite(r[part]).all():
            return f"missing or invalid prices in the {part_name} window"
        for name, arr in arrays.items():
            if arr is not None and not np.isfinite(arr[part]).all():
                return f"{name} has no prices for part of the {part_name} window"
    m, s = arrays["benchmark"], arrays["sector benchmark"]
    return PreparedSample(
        r[est], None if m is None else m[est], None if s is None else s[est], dates[est],
        r[win], None if m is None else m[win], None if s is None else s[win], dates[win],
        dates[pos], pd.Timestamp(entry if entry is not None else day0),
    )


@dataclass(frozen=True)
class Sample:
    """Inputs of the aggregation for one (event, symbol): abnormal returns and calendar facts."""

    abnormal: EventAbnormal
    residuals: pd.Series  # estimation-window abnormal returns indexed by bar date
    window_dates: pd.DatetimeIndex  # bar dates of the event window
    day0: pd.Timestamp
    decomposition: Decomposition | None = None


def study_sample(prepared: PreparedSample, model: str) -> tuple[ModelFit, Sample]:
    """Fit the model on the estimation window and compute the event-window abnormal returns (CollinearError when
    the design is rank deficient)."""
    fit = fit_model(model, prepared.est_returns, prepared.est_market, prepared.est_sector)
    abnormal = abnormal_returns(fit, prepared.win_returns, prepared.win_market, prepared.win_sector)
    parts = decompose(fit, prepared.win_returns, prepared.win_market, prepared.win_sector)
    residuals = pd.Series(fit.residuals, index=prepared.est_dates)
    return fit, Sample(abnormal, residuals, prepared.win_dates, prepared.day0, parts)
