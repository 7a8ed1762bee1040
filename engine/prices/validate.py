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
import functools
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

# pandas is imported by the functions that build or take frames, not by this module: the checks alone (what a
# `data import` worker runs) need numpy only, so a parse pool forked before pandas loads never imports it

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


FLOAT_COLUMNS = [*PRICE_COLUMNS, "volume"]
_FLOAT_PLACES = np.arange(len(FLOAT_COLUMNS))
_STALE_PLACE = np.array([len(FLOAT_COLUMNS)])
_FIRST = np.datetime64(FIRST_DAY.isoformat(), "D")
_LAST = np.datetime64(LAST_DAY.isoformat(), "D")
_DAY_IN_UNIT = {unit: int(np.timedelta64(1, "D") / np.timedelta64(1, unit)) for unit in ("D", "s", "ms", "us", "ns")}

# The checks work on numpy arrays, each column looked up once (a pandas column look-up costs ~40 us, a list
# look-up ``frame[[...]]`` over 1 ms): about 0.2 ms for 2,000 bars.
Columns = dict[str, np.ndarray]


@functools.cache
def _frame_parts() -> tuple[Any, Any]:
    """(pandas' block constructor, the contract's column Index): built once, a new string Index per frame
    costs more than the checks."""
    import pandas as pd
    from pandas.api.internals import create_dataframe_from_blocks  # type: ignore[import-not-found]  # no stub yet

    return create_dataframe_from_blocks, pd.Index(COLUMNS)


def build_frame(index: pd.DatetimeIndex, block: np.ndarray, stale: np.ndarray) -> pd.DataFrame:
    """The contract's frame around ``block`` (rows x FLOAT_COLUMNS, float64) and ``stale``, taken as they are
    (no copy, no check). pandas' block constructor: 20x cheaper than adding ``stale`` to a float frame."""
    floats = np.asfortranarray(block, dtype="float64")  # transposed: (columns, rows) C-contiguous, as pandas keeps it
    from_blocks, columns = _frame_parts()
    frame: pd.DataFrame = from_blocks([(floats.T, _FLOAT_PLACES), (stale.reshape(1, -1), _STALE_PLACE)],
                                      index=index, columns=columns)
    return frame


def _fail(symbol: str, dates: np.ndarray, mask: np.ndarray, rule: str) -> None:
    pos = int(np.flatnonzero(mask)[0])
    day = str(np.datetime_as_string(dates[pos], unit="D"))  # also for dates beyond Python's range
    raise DataError(f"{symbol}: invalid price bar on {day}: {rule}")


def check_index(idx: pd.Index, symbol: str) -> np.ndarray:
    """The index's ``datetime64`` values, every date rule checked."""
    import pandas as pd

    if not isinstance(idx, pd.DatetimeIndex):
        raise DataError(f"{symbol}: price index is not a DatetimeIndex")
    if idx.tz is not None:
        raise DataError(f"{symbol}: price index must be tz-naive session dates")
    dates = idx.values
    check_dates(dates, symbol)
    return dates


def _dates_ok(dates: np.ndarray) -> bool:
    """True when every date rule holds (a handful of array operations; ``check_dates`` words a failure)."""
    unit, count = np.datetime_data(dates.dtype)
    if len(dates) == 0 or count != 1 or unit not in _DAY_IN_UNIT:
        return False
    stamps = dates.view("int64")
    steps = np.diff(stamps)
    if len(steps) and steps.min() <= 0:  # duplicates, disorder, or NaT (the smallest int64) after the first
        return False
    day = _DAY_IN_UNIT[unit]
    first, last = (int(d.astype(dates.dtype).view("int64")) for d in (_FIRST, _LAST))
    return bool(first <= stamps[0] and stamps[-1] <= last and not (stamps % day).any())


def check_dates(dates: np.ndarray, symbol: str) -> None:
    """Every date rule on ``datetime64`` values (any unit): no NaT, inside ``FIRST_DAY .. LAST_DAY``, midnight,
    unique, ascending. DataError naming the first offending date and the rule."""
    if _dates_ok(dates):
        return
    if np.isnat(dates).any():
        raise DataError(f"{symbol}: price index contains a missing date")
    outside = (dates < _FIRST) | (dates > _LAST)
    if outside.any():
        _fail(symbol, dates, outside, f"date outside {FIRST_DAY.isoformat()} .. {LAST_DAY.isoformat()}")
    off_midnight = dates != dates.astype("datetime64[D]")
    if off_midnight.any():
        _fail(symbol, dates, off_midnight, "date is not a midnight session date")
    if len(dates) > 1:
        steps = np.diff(dates.view("int64"))
        if (steps == 0).any():
            _fail(symbol, dates, np.r_[False, steps == 0], "duplicate date")
        if (steps < 0).any():
            _fail(symbol, dates, np.r_[False, steps < 0], "dates not ascending")


def _values_ok(cols: Columns) -> bool:
    """True when every value rule holds: one min and one max per column (NaN propagates through both and
    fails the comparison, as does an infinity); ``_check_values`` words a failure."""
    if len(cols["volume"]) == 0:
        return False
    for col in PRICE_COLUMNS:
        values = cols[col]
        if not (values.min() >= PRICE_MIN and values.max() <= PRICE_MAX):
            return False
    volume = cols["volume"]
    return bool(volume.min() >= 0 and volume.max() <= VOLUME_MAX)


def _check_values(cols: Columns, dates: np.ndarray, symbol: str) -> None:
    if _values_ok(cols):
        return
    for col in FLOAT_COLUMNS:
        values = cols[col]
        if np.isnan(values).any():
            _fail(symbol, dates, np.isnan(values), f"{col} is missing (NaN)")
        if np.isinf(values).any():
            _fail(symbol, dates, np.isinf(values), f"{col} is infinite")
    for col in PRICE_COLUMNS:
        values = cols[col]
        if (values <= 0).any():
            _fail(symbol, dates, values <= 0, f"{col} must be > 0")
        odd = (values < PRICE_MIN) | (values > PRICE_MAX)
        if odd.any():
            _fail(symbol, dates, odd, f"{col} outside the plausible range {PRICE_MIN:g} .. {PRICE_MAX:g}")
    volume = cols["volume"]
    if (volume < 0).any():
        _fail(symbol, dates, volume < 0, "volume must be >= 0")
    if (volume > VOLUME_MAX).any():
        _fail(symbol, dates, volume > VOLUME_MAX, f"volume above {VOLUME_MAX:g}")


def _check_range(cols: Columns, dates: np.ndarray, symbol: str) -> None:
    o, h, lo, c = (cols[k] for k in ("open", "high", "low", "close"))
    top = np.maximum(o, c)
    bottom = np.minimum(o, c)
    tol_hi = PRICE_ABS_TOL + PRICE_REL_TOL * top
    tol_lo = PRICE_ABS_TOL + PRICE_REL_TOL * bottom
    if (h < top - tol_hi).any():
        _fail(symbol, dates, h < top - tol_hi, "high < max(open, close)")
    if (lo > bottom + tol_lo).any():
        _fail(symbol, dates, lo > bottom + tol_lo, "low > min(open, close)")
    if (lo > h + PRICE_ABS_TOL + PRICE_REL_TOL * h).any():
        _fail(symbol, dates, lo > h + PRICE_ABS_TOL + PRICE_REL_TOL * h, "low > high")


def _stale(cols: Columns) -> np.ndarray:
    o, h, lo, c = (cols[k] for k in ("open", "high", "low", "close"))
    return (cols["volume"] == 0) & (o == h) & (h == lo) & (lo == c)


def stale_mask(frame: pd.DataFrame) -> np.ndarray:
    """Zero volume with O=H=L=C (exactly equal: Yahoo repeats the previous close verbatim)."""
    return _stale({c: frame[c].to_numpy(dtype="float64") for c in ("open", "high", "low", "close", "volume")})


def check_frame(frame: pd.DataFrame, symbol: str) -> tuple[np.ndarray, Columns]:
    """Every rule on a frame already in the contract's shape (as read from the cache), without copying;
    the ``stale`` flags must equal the ones the prices imply. Returns the dates and the column arrays it
    checked (every one of COLUMNS), so callers need not look them up again."""
    dates = check_index(frame.index, symbol)
    cols = {c: frame[c].to_numpy() for c in COLUMNS}
    check_columns(dates, cols, symbol)
    return dates, cols


def check_columns(dates: np.ndarray, cols: Columns, symbol: str) -> None:
    """``check_frame``'s rules on the column arrays (dates already checked: ``check_frame``)."""
    floats = {c: cols[c].astype("float64", copy=False) for c in FLOAT_COLUMNS}
    _check_values(floats, dates, symbol)
    _check_range(floats, dates, symbol)
    wrong = cols["stale"] != _stale(floats)
    if wrong.any():
        _fail(symbol, dates, wrong, "stale flag does not match the prices")


def checked_bars(dates: np.ndarray, block: np.ndarray, symbol: str) -> tuple[np.ndarray, Columns]:
    """Fresh arrays checked by every rule, ``stale`` computed: (Fortran float64 block, the contract's column
    arrays: views of the block and ``stale``). ``block`` (rows x FLOAT_COLUMNS) is taken, not copied; DataError
    if invalid. What ``prices_frame`` builds its frame around, for writers that need no frame."""
    if len(dates) == 0:
        raise DataError(f"{symbol}: no price bars")
    block = np.asfortranarray(block, dtype="float64")
    cols = {col: block[:, j] for j, col in enumerate(FLOAT_COLUMNS)}
    check_dates(dates, symbol)
    _check_values(cols, dates, symbol)
    _check_range(cols, dates, symbol)
    cols["stale"] = _stale(cols)
    return block, cols


def prices_frame(index: pd.DatetimeIndex, block: np.ndarray, symbol: str) -> pd.DataFrame:
    """The checked contract frame of fresh arrays (``block``: rows x FLOAT_COLUMNS), ``stale`` computed;
    ``block`` is taken, not copied. DataError if invalid. ``index`` must already be ``INDEX_UNIT``."""
    if len(index) == 0:
        raise DataError(f"{symbol}: no price bars")
    dates = check_index(index, symbol)
    block, cols = checked_bars(dates, block, symbol)
    return build_frame(index.rename("date"), block, cols["stale"])


def validate_prices(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """Copy with the contract's columns/dtypes and ``stale`` recomputed; DataError if invalid."""
    import pandas as pd

    missing = [c for c in FLOAT_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{symbol}: price frame lacks column(s) {', '.join(missing)}")
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise DataError(f"{symbol}: price index is not a DatetimeIndex")
    index = frame.index.as_unit(INDEX_UNIT)  # type: ignore[arg-type]
    block = np.empty((len(index), len(FLOAT_COLUMNS)), dtype="float64", order="F")
    for j, col in enumerate(FLOAT_COLUMNS):
        block[:, j] = frame[col].to_numpy(dtype="float64")
    return prices_frame(index, block, symbol)
