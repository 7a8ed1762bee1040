"""Symbol normalisation and per-listing facts (exchange calendar, currency, price unit, board lot).

The facts come from the venue table (``engine.market.venues``: built-in CSV data plus the user's rows).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.errors import ConfigError
from engine.market.venues import VenueTable, active_venues

_YAHOO = re.compile(r"^\^?[A-Z0-9][A-Z0-9.\-=]{0,19}$")
_HK_CODE = re.compile(r"^0*([0-9]{1,5})(\.HK)?$")
# Yahoo writes a few indexes without a caret in CSV file names; accept the common ones.
_INDEX_ALIASES = {"HSI": "^HSI", "HSTECH": "^HSTECH"}


@dataclass(frozen=True)
class Listing:
    """Where and how a symbol trades."""

    symbol: str
    exchange: str  # exchange-calendars code ("XHKG", "XNYS", "XTKS", ...), "FX" for a Yahoo FX pair
    currency: str  # ISO currency of the prices ("GBP" for London, whose quotes are in pence)
    lot_size: int
    timezone: str
    venue: str = ""  # venue id of the fee schedule: US, HK, SSE, SZSE, TSE, LSE, ... ("" for FX pairs)
    kind: str = "stock"  # stock | index | fx
    price_unit: str = ""  # unit of the quotes: the currency, or a sub-unit such as GBp ("" = the currency)
    lot_is_default: bool = False  # the lot is the venue default for a venue whose lots vary per listing

    @property
    def is_hk(self) -> bool:
        return self.exchange == "XHKG"

    @property
    def price_scale(self) -> float:
        """Currency units per quote unit: 0.01 for a London listing quoted in pence, else 1."""
        from engine.market.venues import SUBUNITS

        if not self.price_unit or self.price_unit == self.currency:
            return 1.0
        return SUBUNITS[self.price_unit][1]


def normalize_symbol(raw: str) -> str:
    """Return the Yahoo-style symbol for user input, or raise ConfigError.

    ``700``, ``00700``, ``0700.hk`` -> ``0700.HK``; ``baba`` -> ``BABA``; ``hsi`` -> ``^HSI``.
    Anything that could be a path (slashes, dots only, spaces) is rejected.
    """
    text = str(raw).strip().upper()
    if not text:
        raise ConfigError("empty symbol")
    hk = _HK_CODE.match(text)
    if hk:
        code = int(hk.group(1))
        if code == 0:
            raise ConfigError(f"invalid HKEX code {raw!r}")
        return f"{code:04d}.HK"
    if text in _INDEX_ALIASES:
        return _INDEX_ALIASES[text]
    if not _YAHOO.match(text) or ".." in text or text.startswith("."):
        raise ConfigError(
            f"invalid symbol {raw!r}: expected a Yahoo symbol like BABA, 0700.HK or ^HSI"
        )
    return text


def listing(symbol: str, venues: VenueTable | None = None) -> Listing:
    """Exchange, currency, price unit and board lot for a symbol; ConfigError for an unknown suffix or index.

    ``venues`` defaults to the table in force (built-in rows plus ``EVBT_VENUES``)."""
    sym = normalize_symbol(symbol)
    table = venues if venues is not None else active_venues()
    if sym.endswith("=X") and sym not in table.rows:
        # Yahoo FX pair: JPY=X (JPY per USD) or GBPUSD=X (USD per GBP); no exchange calendar
        return Listing(sym, "FX", sym[:3], 1, "UTC", venue="", kind="fx", price_unit=sym[:3])
    row = table.lookup(sym)
    lot, is_default = table.board_lot(sym)
    return Listing(sym, row.calendar, row.currency, lot, row.timezone, venue=row.venue, kind=row.kind,
                   price_unit=row.price_unit, lot_is_default=is_default)


def lot_warning(symbol: str, venues: VenueTable | None = None) -> str | None:
    """The warning to show when a symbol's board lot is only its venue's default (None otherwise)."""
    info = listing(symbol, venues)
    if not info.lot_is_default:
        return None
    return (f"{info.symbol}: board lot unknown, using the {info.venue} default of {info.lot_size} shares "
            f"(add the symbol to engine/market/data/lots.csv or a --venues file)")


# Venues whose default lot in venues.csv holds only from a date (the exchanges' rule changes): before it the
# default is not the listing's lot. venue -> (first date of the default lot, what held before).
LOT_SINCE = {
    "TSE": ("2018-10-01", "trading units varied per listing (1, 10, 100, 1,000 shares) before the TSE unified "
                          "them to 100"),
    "SGX": ("2015-01-19", "the SGX board lot was 1,000 shares before"),
}


def lot_era_warning(symbol: str, first_day: object, venues: VenueTable | None = None) -> str | None:
    """The warning for a symbol sized in its venue's default lot on bars dated before that lot held (``first_day``:
    the symbol's first bar in the run), None when the lot is the listing's own or the bars are all later."""
    import datetime as dt

    import pandas as pd

    info = listing(symbol, venues)
    table = venues if venues is not None else active_venues()
    era = LOT_SINCE.get(info.venue)
    if era is None or info.kind != "stock" or info.symbol in table.lots or table.lookup(info.symbol).key == \
            info.symbol or info.lot_size != 100:
        return None
    since, before = era
    day = pd.Timestamp(first_day).date() if not isinstance(first_day, dt.date) else first_day  # type: ignore[arg-type]
    if day.isoformat() >= since:
        return None
    return (f"{info.symbol}: sized in board lots of {info.lot_size}, the {info.venue} lot from {since}; {before}, "
            f"and this run has bars from {day.isoformat()} (add the listing's lot of that era to a --venues file)")


def parse_symbol_list(values: tuple[str, ...] | list[str] | str | None) -> list[str]:
    """Split comma/space separated symbols, normalise them, drop duplicates keeping order; a symbol whose
    venue is unknown (``FOO.ZZ``, ``^NOPE``) is a ConfigError listing the known suffixes."""
    if values is None:
        return []
    items = [values] if isinstance(values, str) else list(values)
    table = active_venues()
    out: dict[str, None] = {}  # insertion-ordered: a universe of 500 symbols is not scanned per symbol
    for item in items:
        for part in re.split(r"[,\s]+", item):
            if part:
                sym = normalize_symbol(part)
                listing(sym, table)  # unknown suffix or index: an input error now, not a silent NYSE later
                out.setdefault(sym)
    return list(out)
