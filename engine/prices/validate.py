"""Checks every price frame passes before it is cached or served.

Rules (a violation raises ``DataError`` naming the symbol, the first offending date and the rule):
unique ascending midnight dates between ``FIRST_DAY`` and ``LAST_DAY``; no NaN; open/high/low/close/adj_close
within ``[PRICE_MIN, PRICE_MAX]`` (so no zero, negative or denormal price: sizing divides by prices); volume in
``[0, VOLUME_MAX]``; high >= max(open, close); low <= min(open, close).

Real-world quirks and what we decided (all seen in the real Yahoo CSVs under ../shared/data/prices):
- Rounding noise: Yahoo prints 6 decimals and derives some fields from adjusted values, so H/L can miss
  open/close by about 1e-6 relative. The H/L rules allow ``PRICE_ABS_TOL + PRICE_REL_TOL * price``;
  values are never altered (the cache must read back exactly what was imported).
- Stale bars: zero volume with O=H=L=C is Yahoo's placeholder for HK half days / no trading. They are kept
  and flagged in ``stale`` (the engine never fills on them), not rejected.
- HSTECH before 2020-07-27 has closes only (O=H=L=C); bars with volume 0 there are flagged stale, bars with
  volume pass as ordinary bars (they satisfy every rule).
- Zero volume with a real range (O != C) is allowed and not stale (index volume is sometimes missing).
- Dividend-adjusted OHLC (9618.HK, 9999.HK: Adj Close = Close) is valid data; adjustment is recorded in
  the cache metadata, not here.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from engine.errors import DataError

PRICE_COLUMNS = ["open", "high", "low", "close", "adj_close"]
COLUMNS = [*PRICE_COLUMNS, "volume", "stale"]
PRICE_ABS_TOL = 1e-6
PRICE_REL_TOL = 1e-6
INDEX_UNIT = "us"  # pandas 3's default; readers must not rely on it
# Plausible bounds: a bar outside them is a typo or a damaged file, and would overflow date or share arithmetic
# later (year 9999 + a holding period; cash / 1e-310 shares). The dates stay inside the datetime64[ns] range
# (1677-09-22 .. 2262-04-11) that calendar and session arithmetic use.
FIRST_DAY = dt.date(1800, 1, 1)
LAST_DAY = dt.date(2261, 12, 31)
PRICE_MIN = 1e-9
PRICE_MAX = 1e12
VOLUME_MAX = 1e18


def _fail(symbol: str, frame: pd.DataFrame, mask: np.ndarray, rule: str) -> None:
    pos = int(np.flatnonzero(mask)[0])
    day = str(np.datetime_as_string(frame.index.values[pos], unit="D"))  # also for dates beyond Python's range
    raise DataError(f"{symbol}: invalid price bar on {day}: {rule}")


def _check_index(frame: pd.DataFrame, symbol: str) -> None:
    idx = frame.index
    if not isinstance(idx, pd.DatetimeIndex):
        raise DataError(f"{symbol}: price index is not a DatetimeIndex")
    if idx.tz is not None:
        raise DataError(f"{symbol}: price index must be tz-naive session dates")
    if idx.hasnans:
        raise DataError(f"{symbol}: price index contains a missing date")
    too_early, too_late = idx < pd.Timestamp(FIRST_DAY), idx > pd.Timestamp(LAST_DAY)
    if too_early.any() or too_late.any():
        _fail(symbol, frame, np.asarray(too_early | too_late),
              f"date outside {FIRST_DAY.isoformat()} .. {LAST_DAY.isoformat()}")
    off_midnight = idx != idx.normalize()
    if off_midnight.any():
        _fail(symbol, frame, np.asarray(off_midnight), "date is not a midnight session date")
    values = idx.asi8
    if len(values) > 1:
        steps = np.diff(values)
        if (steps == 0).any():
            _fail(symbol, frame, np.r_[False, steps == 0], "duplicate date")
        if (steps < 0).any():
            _fail(symbol, frame, np.r_[False, steps < 0], "dates not ascending")


def _check_values(frame: pd.DataFrame, symbol: str) -> None:
    for col in [*PRICE_COLUMNS, "volume"]:
        values = frame[col].to_numpy(dtype="float64")
        if np.isnan(values).any():
            _fail(symbol, frame, np.isnan(values), f"{col} is missing (NaN)")
        if np.isinf(values).any():
            _fail(symbol, frame, np.isinf(values), f"{col} is infinite")
    for col in PRICE_COLUMNS:
        values = frame[col].to_numpy(dtype="float64")
        if (values <= 0).any():
            _fail(symbol, frame, values <= 0, f"{col} must be > 0")
        odd = (values < PRICE_MIN) | (values > PRICE_MAX)
        if odd.any():
            _fail(symbol, frame, odd, f"{col} outside the plausible range {PRICE_MIN:g} .. {PRICE_MAX:g}")
    volume = frame["volume"].to_numpy(dtype="float64")
    if (volume < 0).any():
        _fail(symbol, frame, volume < 0, "volume must be >= 0")
    if (volume > VOLUME_MAX).any():
        _fail(symbol, frame, volume > VOLUME_MAX, f"volume above {VOLUME_MAX:g}")


def _check_range(frame: pd.DataFrame, symbol: str) -> None:
    o, h, lo, c = (frame[k].to_numpy(dtype="float64") for k in ("open", "high", "low", "close"))
    top = np.maximum(o, c)
    bottom = np.minimum(o, c)
    tol_hi = PRICE_ABS_TOL + PRICE_REL_TOL * top
    tol_lo = PRICE_ABS_TOL + PRICE_REL_TOL * bottom
    if (h < top - tol_hi).any():
        _fail(symbol, frame, h < top - tol_hi, "high < max(open, close)")
    if (lo > bottom + tol_lo).any():
        _fail(symbol, frame, lo > bottom + tol_lo, "low > min(open, close)")
    if (lo > h + PRICE_ABS_TOL + PRICE_REL_TOL * h).any():
        _fail(symbol, frame, lo > h + PRICE_ABS_TOL + PRICE_REL_TOL * h, "low > high")


def stale_mask(frame: pd.DataFrame) -> np.ndarray:
    """Zero volume with O=H=L=C (exactly equal: Yahoo repeats the previous close verbatim)."""
    o, h, lo, c = (frame[k].to_numpy(dtype="float64") for k in ("open", "high", "low", "close"))
    vol = frame["volume"].to_numpy(dtype="float64")
    return (vol == 0) & (o == h) & (h == lo) & (lo == c)


def check_frame(frame: pd.DataFrame, symbol: str) -> None:
    """Every rule on a frame already in the contract's shape (as read from the cache), without copying;
    the ``stale`` flags must equal the ones the prices imply."""
    _check_index(frame, symbol)
    _check_values(frame, symbol)
    _check_range(frame, symbol)
    flags = frame["stale"].to_numpy()
    wrong = flags != stale_mask(frame)
    if wrong.any():
        _fail(symbol, frame, wrong, "stale flag does not match the prices")


def validate_prices(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """Copy with the contract's columns/dtypes and ``stale`` recomputed; DataError if invalid."""
    missing = [c for c in [*PRICE_COLUMNS, "volume"] if c not in frame.columns]
    if missing:
        raise DataError(f"{symbol}: price frame lacks column(s) {', '.join(missing)}")
    out = frame[[*PRICE_COLUMNS, "volume"]].astype("float64")
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise DataError(f"{symbol}: price index is not a DatetimeIndex")
    out.index = frame.index.as_unit(INDEX_UNIT).rename("date")  # type: ignore[arg-type]
    if len(out) == 0:
        raise DataError(f"{symbol}: no price bars")
    _check_index(out, symbol)
    _check_values(out, symbol)
    _check_range(out, symbol)
    out["stale"] = stale_mask(out)
    return out
