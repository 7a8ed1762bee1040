"""Currencies and FX: local-currency units per base-currency unit at any fill instant, without lookahead.

Yahoo's conventions (``engine/market/data/currencies.csv``): ``JPY=X``, ``HKD=X``, ``CNY=X`` ... are units of
that currency per USD (``per_usd``); ``GBPUSD=X``, ``EURUSD=X``, ``AUDUSD=X`` are USD per unit (``usd_per``).
Every rate goes through USD: local per base = (local per USD) / (base per USD), so a JPY-base run holding a
London listing uses ``GBPUSD=X`` and ``JPY=X``.

When a quote counts as known: a daily FX bar dated D (Yahoo dates FX bars by the London day) is taken as known
from 00:00 UTC of D+1, the latest its close can be. A fill at instant t uses the last quote known *strictly*
before t. A bar's rate (``for_bars``) is the rate at its session's open on the listing's own exchange (the
earliest fill point of that session, so open and close fills of one bar share it): a HK or US bar dated D uses
the quote dated D-1; a Tokyo bar (09:00 JST = 00:00 UTC) the quote dated D-2.

Missing series: a currency with a documented peg (HKD 7.80, the Linked Exchange Rate System) uses the peg with
a warning; any other missing pair is a MissingDataError naming it. An instant before a series' first known
quote is likewise an error (or the peg).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from engine.errors import ConfigError, EvbtWarning, MissingDataError

if TYPE_CHECKING:
    from engine.market.symbols import Listing

CURRENCIES_PATH = Path(__file__).resolve().parent / "data" / "currencies.csv"
QUOTES = ("per_usd", "usd_per")
FX_PAD_DAYS = 30  # quotes loaded before a run's first bar, so its first fills have a known rate
_DAY_NS = np.timedelta64(1, "D").astype("timedelta64[ns]")


@dataclass(frozen=True)
class Currency:
    code: str
    yahoo: str  # Yahoo pair symbol ("" for USD)
    quote: str  # per_usd | usd_per ("" for USD)
    peg: float | None  # units per USD used when the series is missing, with a warning
    notes: str = ""


@cache
def currencies() -> dict[str, Currency]:
    out: dict[str, Currency] = {}
    with CURRENCIES_PATH.open(encoding="utf-8", newline="") as fh:
        for lineno, row in enumerate(csv.DictReader(fh), start=2):
            code = (row.get("currency") or "").strip()
            quote = (row.get("quote") or "").strip()
            if code != "USD" and quote not in QUOTES:
                raise ConfigError(f"{CURRENCIES_PATH}:{lineno}: quote must be one of {QUOTES}")
            peg_text = (row.get("peg") or "").strip()
            out[code] = Currency(code, (row.get("yahoo") or "").strip(), quote,
                                 float(peg_text) if peg_text else None, (row.get("notes") or "").strip())
    return out


def check_currency(code: str, what: str = "base currency") -> str:
    text = str(code).strip().upper()
    if text not in currencies():
        raise ConfigError(f"{what} {code!r} is not supported (known: {', '.join(sorted(currencies()))})")
    return text


def pair_of(currency: str) -> str | None:
    """Yahoo symbol that prices ``currency`` against USD (None for USD)."""
    info = currencies()[check_currency(currency, "currency")]
    return info.yahoo or None


def pairs_needed(local_currencies: Iterable[str], base: str) -> list[str]:
    """Yahoo pairs a run in ``base`` needs for listings in ``local_currencies`` (sorted, no duplicates)."""
    base = check_currency(base)
    needed = {c for c in local_currencies if c != base}
    if needed and base != "USD":
        needed.add(base)
    return sorted(p for p in (pair_of(c) for c in needed) if p)


def _as_ns(instants: Any) -> np.ndarray:
    """UTC instants (tz-aware or naive UTC; scalars or arrays) as naive datetime64[ns]."""
    index = pd.DatetimeIndex(np.atleast_1d(pd.to_datetime(instants)))
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.as_unit("ns").to_numpy()


@dataclass
class FxRates:
    """The FX quotes a run uses, and the rule that turns them into rates at fill instants."""

    base: str = "USD"
    series: dict[str, pd.Series] = field(default_factory=dict)  # Yahoo pair -> close series (dated bars)
    pegged: set[str] = field(default_factory=set)  # currencies priced at their peg (series missing)

    def per_usd(self, currency: str, instants: Any) -> np.ndarray:
        """Units of ``currency`` per USD, last quote known strictly before each UTC instant."""
        times = _as_ns(instants)
        if currency == "USD":
            return np.ones(len(times))
        info = currencies()[check_currency(currency, "currency")]
        closes = self.series.get(info.yahoo)
        if closes is None:
            if currency in self.pegged and info.peg is not None:
                return np.full(len(times), info.peg)
            raise MissingDataError(f"FX pair {info.yahoo} ({currency} vs USD) is not loaded for this run")
        known = pd.DatetimeIndex(closes.index).as_unit("ns").to_numpy() + _DAY_NS  # known from D+1 00:00 UTC
        pos = np.searchsorted(known, times, side="left") - 1
        values = closes.to_numpy(dtype=float)[np.maximum(pos, 0)]
        if len(pos) and int(pos.min()) < 0:
            if info.peg is None:
                first = pd.Timestamp(times[int(np.argmin(pos))])
                raise MissingDataError(f"FX pair {info.yahoo}: no quote known before {first} UTC (its first bar is "
                                       f"{pd.Timestamp(closes.index[0]).date()}); fetch or import earlier quotes")
            peg_quote = info.peg if info.quote == "per_usd" else 1.0 / info.peg
            values = np.where(pos >= 0, values, peg_quote)
        return values if info.quote == "per_usd" else 1.0 / values

    def local_per_base(self, currency: str, instants: Any) -> np.ndarray:
        """Units of ``currency`` per base unit at each UTC instant (1 when ``currency`` is the base)."""
        if currency == self.base:
            return np.ones(len(_as_ns(instants)))
        return self.per_usd(currency, instants) / self.per_usd(self.base, instants)

    def for_listing(self, info: Listing, instants: Any) -> np.ndarray:
        """Currency units of a listing per base unit at each fill instant (prices are in currency units:
        pence are converted to pounds before the drivers see them)."""
        return self.local_per_base(info.currency, instants)

    def for_bars(self, symbol: str, dates: Any) -> np.ndarray:
        """Rate of each price bar of ``symbol``: at the open of the bar's session on its own exchange
        (a bar on a day the calendar does not list as a session: 00:00 UTC of its date)."""
        from engine.market.symbols import listing

        info = listing(symbol)
        days = pd.DatetimeIndex(dates)
        if info.currency == self.base or len(days) == 0:
            return np.ones(len(days))
        return self.for_listing(info, session_open_instants(info.exchange, days))

    def symbols(self) -> list[str]:
        return sorted(self.series)

    def describe(self) -> str:
        """``fx_source`` of the report: which series and pegs converted prices."""
        parts = [f"{s} series" for s in sorted(self.series)]
        parts += [f"{currencies()[c].peg:.2f} peg" for c in sorted(self.pegged)]
        return ", ".join(parts) if parts else "none needed"


def session_open_instants(exchange: str, days: pd.DatetimeIndex) -> np.ndarray:
    """UTC open of each session date on ``exchange`` (00:00 UTC of the date where it is not a session)."""
    from engine.market.calendars import schedule

    naive = days.tz_localize(None) if days.tz is not None else days
    naive = naive.normalize().as_unit("ns")
    out = naive.to_numpy().copy()
    if exchange == "FX":
        return out
    sched = schedule(exchange, naive.min(), naive.max(), persist=False)  # FX paths write nothing
    sessions = sched.sessions.as_unit("ns")
    pos = np.clip(sessions.searchsorted(naive), 0, max(len(sessions) - 1, 0))
    if len(sessions):
        hit = sessions.to_numpy()[pos] == naive.to_numpy()
        out[hit] = sched.opens[pos[hit]]
    return out


def as_rates(value: FxRates | pd.Series | None) -> FxRates:
    """An FxRates from what older callers pass: None (HKD at its peg) or the HKD=X close series."""
    if isinstance(value, FxRates):
        return value
    if value is None or len(value) == 0:
        return FxRates("USD", {}, {"HKD"})
    return FxRates("USD", {"HKD=X": value}, set())


def load_rates(store: Any, local_currencies: Iterable[str], base: str, start: dt.date, end: dt.date) -> FxRates:
    """FX series for a run from the price cache (fetched like any symbol unless offline).

    A pegged currency (HKD) uses the cached series when present, else its peg with a warning (it is never
    fetched for a run: `evbt data fetch HKD=X` does that). Any other pair missing -> MissingDataError naming it."""
    base = check_currency(base)
    rates = FxRates(base, {}, set())
    lo = start - dt.timedelta(days=FX_PAD_DAYS)
    for pair in pairs_needed(local_currencies, base):
        currency = next(c for c, info in currencies().items() if info.yahoo == pair)
        peg = currencies()[currency].peg
        closes = None
        try:
            if peg is None or store.has(pair):
                frame = store.load(pair, lo, end)
                closes = frame["close"] if not frame.empty else None
        except MissingDataError as exc:
            if peg is None:
                raise MissingDataError(f"FX pair {pair} needed to convert {currency} for a {base} run: {exc}") \
                    from None
        if closes is not None and not closes.empty and all(math.isfinite(v) and v > 0 for v in closes):
            rates.series[pair] = closes
        elif peg is not None:
            rates.pegged.add(currency)
            warnings.warn(f"{pair} not in the cache: {currency} converted at its peg of {peg:.2f} per USD "
                          f"(evbt data fetch {pair} for the market rate)", EvbtWarning, stacklevel=2)
        else:
            raise MissingDataError(f"FX pair {pair} needed to convert {currency} for a {base} run has no usable "
                                   f"quotes between {lo} and {end}")
    return rates
