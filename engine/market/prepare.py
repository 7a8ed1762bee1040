"""What the market model adds to a run's price frames before the drivers see them (one call from the engine):

- prices in currency units: a listing quoted in a sub-unit (London, GBp) is divided by 100, so every driver,
  fee and trade record works in pounds;
- the FX rates the run needs for its base currency (``engine.market.fx.load_rates``);
- warnings for board lots that are only a venue default, or a venue lot used before the venue adopted it
  (TSE before 2018-10-01, SGX before 2015-01-19), and for dates the fee table does not cover.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass
from typing import Any

import pandas as pd

from engine.errors import EvbtWarning
from engine.market import calendars, fee_schedule
from engine.market.fx import FxRates, load_rates
from engine.market.symbols import listing, lot_era_warning, lot_warning

PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")


@dataclass
class MarketInputs:
    frames: dict[str, pd.DataFrame]  # trading frames, prices in currency units
    history: dict[str, pd.DataFrame]  # padded history frames, same units
    fx: FxRates

    @property
    def fx_symbols(self) -> list[str]:
        """FX pairs whose cached data the run used (for the run's data fingerprints)."""
        return self.fx.symbols()


def in_currency_units(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """Prices of ``symbol`` in its currency (pence -> pounds); other frames are returned unchanged."""
    scale = listing(symbol).price_scale
    if scale == 1.0:
        return frame
    per_unit = round(1.0 / scale)  # 100 pence a pound: divide (exact for prices quoted to the penny)
    return frame.assign(**{c: frame[c] / per_unit for c in PRICE_COLUMNS if c in frame.columns})


def _check_calendar_covers(symbol: str, exchange: str, frame: pd.DataFrame,
                           bounds: dict[str, tuple[pd.Timestamp, pd.Timestamp]]) -> None:
    """ConfigError when ``symbol`` has bars in the run outside its calendar's range (XSHG ends 2026-12-31 in
    exchange-calendars 4.13): such bars have no session to count, so a hold reaching them never ended. The
    index is sorted (the price frame contract), so its ends decide; the bars are looked at only when one is out."""
    if exchange == "FX" or frame.empty:
        return
    if exchange not in bounds:
        bounds[exchange] = calendars.calendar_bounds(exchange)
    lo, hi = bounds[exchange]
    first, last = calendars.as_day(frame.index[0]), calendars.as_day(frame.index[-1])
    if lo <= first and last <= hi:
        return
    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    index = index.normalize()
    outside = index[(index < lo) | (index > hi)]
    day = outside[-1] if outside[0] < lo else outside[0]  # the bar nearest the calendar's range
    calendars.require(exchange, day, f"{symbol}: price bar")


def prepare_market(store: Any, config: Any, frames: dict[str, pd.DataFrame],
                   history: dict[str, pd.DataFrame]) -> MarketInputs:
    """Frames in currency units, FX rates for ``config.base_currency`` and the market warnings of a run."""
    scaled = {s: in_currency_units(f, s) for s, f in frames.items()}
    scaled_history = {s: in_currency_units(f, s) for s, f in history.items()}
    infos = {s: listing(s) for s in frames}
    bounds: dict[str, tuple[pd.Timestamp, pd.Timestamp]] = {}
    for symbol, info in infos.items():
        _check_calendar_covers(symbol, info.exchange, frames[symbol], bounds)
    # spans: the days the run can fill on each venue, its symbols' bars in the run, not the run's requested
    # period (a --start in 1990 warned of fees "not charged" before 2008 though the data begins in 2019)
    spans: dict[str, tuple[Any, Any]] = {}
    for symbol, info in infos.items():
        frame = frames[symbol]
        message = lot_warning(symbol)
        if message:
            warnings.warn(message, EvbtWarning, stacklevel=2)
        if frame.empty:
            continue
        first, last = frame.index[0], frame.index[-1]
        message = lot_era_warning(symbol, first)
        if message:
            warnings.warn(message, EvbtWarning, stacklevel=2)
        if info.kind == "stock":
            lo, hi = spans.get(info.venue, (first, last))
            spans[info.venue] = (min(lo, first), max(hi, last))
    for venue, (first, last) in sorted(spans.items()):
        lo = max(pd.Timestamp(config.start), pd.Timestamp(first))
        hi = min(pd.Timestamp(config.end), pd.Timestamp(last))
        for message in fee_schedule.coverage_gaps(venue, lo, hi):
            warnings.warn(message, EvbtWarning, stacklevel=2)
    start: dt.date = config.start
    rates = load_rates(store, {i.currency for i in infos.values()}, getattr(config, "base_currency", "USD"),
                       start, config.end)
    return MarketInputs(scaled, scaled_history, rates)
