"""Deterministic SYNTHETIC sample prices for the offline demo and tests.

These are not real prices: a geometric random walk (numpy ``default_rng`` with a fixed seed per symbol)
on each symbol's real exchange calendar (exchange-calendars XHKG / XNYS; FX on weekdays), 2021-01-01 ..
2022-12-31, with jumps on the seed event dates so a demo shows something. HK half-day sessions are written
as stale bars (zero volume, O=H=L=C) like Yahoo does. Files are stored with ``source="sample"`` and
``synthetic: true`` in the metadata; ``evbt data ls`` shows "sample (SYNTHETIC)".
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.market.symbols import listing

SAMPLE_START = dt.date(2021, 1, 1)
SAMPLE_END = dt.date(2022, 12, 31)
BASE_SEED = 20220316
SAMPLE_ADJUSTMENT = "SYNTHETIC sample data (not real prices); adj_close = close"


@dataclass(frozen=True)
class SampleSpec:
    """Start price, daily volatility, typical volume and jumps (log returns) keyed by session date."""

    price: float
    vol: float
    volume: float
    jumps: tuple[tuple[str, float], ...] = ()


_CHINA_JUMPS_US = (("2022-03-14", -0.12), ("2022-03-16", 0.30), ("2022-05-17", 0.07))
_CHINA_JUMPS_HK = (("2022-03-14", -0.10), ("2022-03-15", -0.06), ("2022-03-16", 0.20), ("2022-05-17", 0.05))
_ETF_JUMPS = (("2022-03-14", -0.10), ("2022-03-16", 0.22), ("2022-05-17", 0.05))

SAMPLE_SPECS: dict[str, SampleSpec] = {
    "BABA": SampleSpec(230.0, 0.030, 2.0e7, _CHINA_JUMPS_US),
    "JD": SampleSpec(85.0, 0.032, 1.0e7, _CHINA_JUMPS_US),
    "PDD": SampleSpec(170.0, 0.040, 8.0e6, _CHINA_JUMPS_US),
    "KWEB": SampleSpec(80.0, 0.028, 1.5e7, _ETF_JUMPS),
    "0700.HK": SampleSpec(590.0, 0.025, 1.8e7, _CHINA_JUMPS_HK),
    "9988.HK": SampleSpec(260.0, 0.030, 3.0e7, _CHINA_JUMPS_HK),
    "3690.HK": SampleSpec(290.0, 0.035, 2.0e7, _CHINA_JUMPS_HK),
    "HKD=X": SampleSpec(7.78, 0.0005, 0.0),
    # broad markets (the event study's default benchmarks); the real 2022-03-16 moves were about +9% and +2%
    "^HSI": SampleSpec(27000.0, 0.014, 2.0e9, (("2022-03-15", -0.05), ("2022-03-16", 0.09))),
    "SPY": SampleSpec(375.0, 0.011, 7.0e7, (("2022-03-16", 0.02),)),
}
SAMPLE_SYMBOLS: tuple[str, ...] = tuple(SAMPLE_SPECS)


def _sessions(symbol: str) -> tuple[pd.DatetimeIndex, set[pd.Timestamp]]:
    """Session dates and half days of the symbol's exchange over the sample window."""
    exchange = listing(symbol).exchange
    if exchange == "FX":
        return pd.bdate_range(SAMPLE_START, SAMPLE_END), set()
    from engine.market.calendars import raw_sessions

    sessions, early = raw_sessions(exchange, SAMPLE_START, SAMPLE_END)
    return sessions, (early if exchange == "XHKG" else set())


def sample_frame(symbol: str) -> pd.DataFrame:
    """The synthetic bars of one sample symbol (same output on every machine and run)."""
    spec = SAMPLE_SPECS[symbol]
    dates, half_days = _sessions(symbol)
    rng = np.random.default_rng([BASE_SEED, zlib.crc32(symbol.encode())])
    n = len(dates)
    rets = rng.normal(0.0, spec.vol, n)
    for day, jump in spec.jumps:
        pos = dates.searchsorted(pd.Timestamp(day))
        if pos < n:
            rets[pos] += jump
    close = spec.price * np.exp(np.cumsum(rets))
    prev = np.r_[spec.price, close[:-1]]
    gap = rets * rng.uniform(0.3, 0.7, n)  # part of the move happens at the open
    open_ = prev * np.exp(gap)
    wick = np.abs(rng.normal(0.0, spec.vol / 2, (2, n)))
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    volume = np.round(spec.volume * rng.lognormal(0.0, 0.4, n)) if spec.volume else np.zeros(n)
    frame = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close}, index=dates).round(4)
    frame["high"] = frame[["open", "high", "close"]].max(axis=1)
    frame["low"] = frame[["open", "low", "close"]].min(axis=1)
    frame["adj_close"] = frame["close"]
    frame["volume"] = volume.astype("float64")
    _add_stale_half_days(frame, half_days)
    frame.index = frame.index.rename("date")
    return frame[["open", "high", "low", "close", "adj_close", "volume"]]


def _add_stale_half_days(frame: pd.DataFrame, half_days: set[pd.Timestamp]) -> None:
    """Yahoo shows HK half days as zero-volume bars repeating the previous close."""
    for day in sorted(half_days):
        day = pd.Timestamp(day).tz_localize(None) if pd.Timestamp(day).tz else pd.Timestamp(day)
        pos = frame.index.searchsorted(day)
        if 0 < pos < len(frame) and frame.index[int(pos)] == day:
            prev_close = frame["close"].iloc[pos - 1]
            frame.iloc[pos, frame.columns.get_indexer(["open", "high", "low", "close"])] = prev_close  # type: ignore[index,arg-type]
            frame.iloc[pos, frame.columns.get_loc("volume")] = 0.0  # type: ignore[index]


def write_sample(store: object, symbols: tuple[str, ...] | list[str] | None = None) -> list[dict]:
    """Write the synthetic sample into ``store`` (a PriceStore); returns each file's metadata."""
    out = []
    for sym in symbols or SAMPLE_SYMBOLS:
        out.append(store.write(sym, sample_frame(sym), "sample", SAMPLE_ADJUSTMENT))  # type: ignore[attr-defined]
    return out
