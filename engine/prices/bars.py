"""Operations on one symbol's bar frame as the store keeps it: the contract's column arrays to write, merging
downloads into cached bars, inclusive date slices, and the close-based summary of ``evbt data show``."""

from __future__ import annotations

import contextlib
import datetime as dt

import numpy as np
import pandas as pd

from engine.errors import DataError, NoBarsInRange
from engine.prices.validate import COLUMNS, INDEX_UNIT, Columns, check_columns, check_index, validate_prices

_CONTRACT_DTYPES = {c: np.dtype("float64") for c in COLUMNS[:-1]} | {"stale": np.dtype("bool")}


def stored_columns(frame: pd.DataFrame, sym: str) -> tuple[np.ndarray, Columns]:
    """Dates and column arrays of the bars to store: the frame's own when it already is in the contract's
    shape and passes every check (``validate_prices`` output, e.g. from ``data import``: no second copy),
    else those of ``validate_prices``'s checked copy."""
    if list(frame.columns) == COLUMNS and isinstance(frame.index, pd.DatetimeIndex) \
            and frame.index.unit == INDEX_UNIT and len(frame):
        cols = {c: frame[c].to_numpy() for c in COLUMNS}
        if all(cols[c].dtype == kind for c, kind in _CONTRACT_DTYPES.items()):
            with contextlib.suppress(DataError):  # e.g. stale flags to recompute: validate_prices decides
                dates = check_index(frame.index, sym)
                check_columns(dates, cols, sym)
                return dates, cols
    clean = validate_prices(frame, sym)
    return clean.index.values, {c: clean[c].to_numpy() for c in COLUMNS}


def day_text(day: dt.date | None) -> str:
    return day.isoformat() if day else "(open)"


def span_text(lo: dt.date | None, hi: dt.date | None, both: str = "in") -> str:
    """An asked date range for a message: "in A .. B" (``both`` is the word before it), "from A on", "up to B", or
    "" when neither end is given (messages used to say "(open) .. (open)")."""
    if lo and hi:
        return f"{both} {lo.isoformat()} .. {hi.isoformat()}"
    if lo:
        return f"from {lo.isoformat()} on"
    return f"up to {hi.isoformat()}" if hi else ""


def merge_bars(old: pd.DataFrame | None, parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate old and new bars; on a duplicate date the newest download wins."""
    candidates: list[pd.DataFrame] = ([old] if old is not None else []) + list(parts)
    frames = [f for f in candidates if f is not None and len(f)]
    if not frames:
        raise DataError("no price bars to store")
    pieces: list[pd.DataFrame] = [f[COLUMNS[:-1]].astype("float64").set_axis(
        pd.DatetimeIndex(f.index).as_unit(INDEX_UNIT), axis=0) for f in frames]  # type: ignore[arg-type]
    merged = pd.concat(pieces)
    merged = merged[~merged.index.duplicated(keep="last")].sort_index()
    merged.index.name = "date"
    return merged


def slice_bars(frame: pd.DataFrame, sym: str, lo: dt.date | None, hi: dt.date | None) -> pd.DataFrame:
    """Inclusive date slice by binary search on the sorted index (no boolean masks)."""
    index = frame.index
    values = index.values  # datetime64 (any unit): a day compares as its midnight, no Timestamp boxing
    a = 0 if lo is None else int(values.searchsorted(np.datetime64(lo, "D"), side="left"))
    b = len(index) if hi is None else int(values.searchsorted(np.datetime64(hi, "D"), side="right"))
    out = frame if (a, b) == (0, len(index)) else frame.iloc[a:b]
    if len(out) == 0:
        first, last = frame.index[0].date(), frame.index[-1].date()
        raise NoBarsInRange(
            f"{sym}: no cached prices {span_text(lo, hi)} (cache has {first} .. {last})"
        )
    return out


def price_summary(frame: pd.DataFrame, symbol: str) -> dict:
    """Close-based summary for ``evbt data show``."""
    close = frame["close"]
    first, last = float(close.iloc[0]), float(close.iloc[-1])
    return {
        "symbol": symbol,
        "first_date": frame.index[0].date().isoformat(),
        "last_date": frame.index[-1].date().isoformat(),
        "rows": len(frame),
        "first_close": first,
        "last_close": last,
        "return": last / first - 1.0,
        "min_close": float(close.min()),
        "min_date": close.idxmin().date().isoformat(),  # type: ignore[attr-defined]
        "max_close": float(close.max()),
        "max_date": close.idxmax().date().isoformat(),  # type: ignore[attr-defined]
        "stale_bars": int(frame["stale"].sum()),
    }
