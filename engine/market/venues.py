"""Venues as data: which exchange, currency, time zone, price unit and board lot a Yahoo symbol has.

The table is ``engine/market/data/venues.csv`` (one row per Yahoo suffix, e.g. ``.HK``, ``.T``, ``.L``, the
empty suffix for US listings, and one row per index symbol such as ``^HSI`` or ``000001.SS``), plus
``engine/market/data/lots.csv`` (board lots of single listings). A user file named by ``--venues FILE`` or the
environment variable ``EVBT_VENUES`` adds rows or overrides rows with the same key; a row whose key is a full
symbol (``1810.HK``) overrides the suffix row for that symbol only, which is also how a user gives a board lot.

Lookup order for a normalised symbol: an exact symbol row; a Yahoo FX pair (``JPY=X``, ``GBPUSD=X``); an index
(``^...``) must have its own row; otherwise the text after the last dot is the suffix (no dot = US). A symbol
whose suffix or index is not in the table is a ConfigError listing the known ones: never a silent NYSE.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from engine.errors import ConfigError

DATA_DIR = Path(__file__).resolve().parent / "data"
VENUES_PATH = DATA_DIR / "venues.csv"
LOTS_PATH = DATA_DIR / "lots.csv"
ENV_VAR = "EVBT_VENUES"
KINDS = ("stock", "index")
# Price units that are a fraction of the currency (Yahoo: London in pence, Johannesburg in cents, Tel Aviv agorot).
SUBUNITS = {"GBp": ("GBP", 0.01), "GBX": ("GBP", 0.01), "ZAc": ("ZAR", 0.01), "ILA": ("ILS", 0.01)}
_COLUMNS = ("key", "venue", "kind", "calendar", "currency", "price_unit", "timezone", "default_lot", "lot_varies",
            "notes")
_REQUIRED = ("key", "calendar", "currency", "timezone")


@dataclass(frozen=True)
class Venue:
    """One row of the venue table."""

    key: str  # "" (US), ".HK", "^HSI", ...
    venue: str  # short venue id used by the fee schedule: US, HK, SSE, SZSE, TSE, LSE, ...
    kind: str  # stock | index
    calendar: str  # exchange-calendars code
    currency: str  # ISO currency of the prices (GBP for London, whose quotes are in pence)
    price_unit: str  # unit of the quotes: the currency, or a sub-unit such as GBp
    timezone: str
    default_lot: int
    lot_varies: bool  # the lot is set per listing: using default_lot is a guess and warns
    notes: str = ""

    @property
    def price_scale(self) -> float:
        """Currency units per quote unit (0.01 for pence)."""
        if self.price_unit == self.currency:
            return 1.0
        return SUBUNITS[self.price_unit][1]


@dataclass(frozen=True)
class VenueTable:
    """The built-in table merged with the user's rows."""

    rows: dict[str, Venue]
    lots: dict[str, int]
    sources: tuple[str, ...]  # files read, in order
    fingerprint: str  # sha256 of their bytes (part of what a run depends on)

    def known(self) -> str:
        suffixes = sorted(k for k in self.rows if k.startswith("."))
        indexes = sorted(k for k in self.rows if not k.startswith(".") and k)
        return f"suffixes {', '.join(suffixes)} (none = US); indexes {', '.join(indexes)}"

    def lookup(self, symbol: str) -> Venue:
        """Venue row of a normalised symbol (not an FX pair); ConfigError when unknown."""
        if symbol in self.rows:
            return self.rows[symbol]
        if symbol.startswith("^"):
            raise ConfigError(f"{symbol}: unknown index symbol (add a row to a --venues file); known: {self.known()}")
        if "=" in symbol:
            raise ConfigError(f"{symbol}: unsupported Yahoo symbol kind (only FX pairs like JPY=X end with '=')")
        suffix = symbol[symbol.rfind("."):] if "." in symbol else ""
        if suffix not in self.rows:
            raise ConfigError(f"{symbol}: unknown exchange suffix {suffix!r} (add a row to a --venues file); "
                              f"known: {self.known()}")
        return self.rows[suffix]

    def board_lot(self, symbol: str) -> tuple[int, bool]:
        """(lot, is_default): a per-symbol lot from lots.csv or an exact venue row, else the venue default.
        ``is_default`` is True only where the venue's lot varies per listing (a guess worth a warning)."""
        if symbol in self.lots:
            return self.lots[symbol], False
        row = self.lookup(symbol)
        if row.key == symbol:
            return row.default_lot, False
        return row.default_lot, row.lot_varies


def _int(value: str, what: str, where: str) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{where}: {what} {value!r} is not a whole number") from None
    if number < 1:
        raise ConfigError(f"{where}: {what} must be >= 1, got {number}")
    return number


def _row(raw: dict[str, str], where: str) -> Venue:
    values = {k: (raw.get(k) or "").strip() for k in _COLUMNS}
    for name in _REQUIRED[1:]:
        if not values[name]:
            raise ConfigError(f"{where}: column {name!r} is empty")
    key = values["key"]
    if key.startswith("."):
        key = key.upper()
    elif key:  # a full symbol (an index such as ^N225, or one listing such as 1810.HK)
        from engine.market.symbols import normalize_symbol

        try:
            key = normalize_symbol(key)
        except ConfigError as exc:
            raise ConfigError(f"{where}: key: {exc}") from None
    currency = values["currency"].upper()
    unit = values["price_unit"] or currency
    if unit != currency and SUBUNITS.get(unit, ("", 0))[0] != currency:
        raise ConfigError(f"{where}: price_unit {unit!r} is neither {currency} nor one of its sub-units "
                          f"({', '.join(k for k, v in SUBUNITS.items() if v[0] == currency) or 'none known'})")
    kind = values["kind"] or "stock"
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    varies = values["lot_varies"] or "0"
    if varies not in ("0", "1"):
        raise ConfigError(f"{where}: lot_varies must be 0 or 1, got {varies!r}")
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(values["timezone"])
    except (KeyError, ValueError):
        raise ConfigError(f"{where}: unknown time zone {values['timezone']!r}") from None
    return Venue(
        key=key, venue=values["venue"] or key or "US", kind=kind, calendar=values["calendar"].upper(),
        currency=currency, price_unit=unit, timezone=values["timezone"],
        default_lot=_int(values["default_lot"] or "1", "default_lot", where), lot_varies=varies == "1",
        notes=values["notes"],
    )


def _read_rows(path: Path) -> list[Venue]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"venues file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"venues file {path}: cannot read ({exc})") from None
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in _REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise ConfigError(f"venues file {path}: missing column(s) {', '.join(missing)} "
                          f"(columns: {', '.join(_COLUMNS)})")
    return [_row(raw, f"{path}:{lineno}") for lineno, raw in enumerate(reader, start=2)]


def _read_lots(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for lineno, raw in enumerate(csv.DictReader(fh), start=2):
            out[(raw.get("symbol") or "").strip()] = _int(raw.get("lot") or "", "lot", f"{path}:{lineno}")
    return out


def load_venue_table(user_file: Path | None = None) -> VenueTable:
    """Built-in venues and lots, then the rows of ``user_file`` (added, or replacing rows with the same key).
    User rows' calendar codes are checked against exchange-calendars."""
    rows = {v.key: v for v in _read_rows(VENUES_PATH)}
    lots = _read_lots(LOTS_PATH)
    sources = [VENUES_PATH, LOTS_PATH]
    if user_file is not None:
        from engine.market.calendars import check_calendar_code

        path = Path(user_file)
        for venue in _read_rows(path):
            check_calendar_code(venue.calendar, f"venues file {path}, key {venue.key!r}")
            rows[venue.key] = venue
            lots.pop(venue.key, None)  # an exact user row's lot wins over the built-in lots table
        sources.append(path)
    digest = hashlib.sha256()
    for path in sources:
        digest.update(path.read_bytes())
    return VenueTable(rows, lots, tuple(str(p) for p in sources), digest.hexdigest())


@cache
def _table_for(user_file: str) -> VenueTable:
    return load_venue_table(Path(user_file) if user_file else None)


def active_venues() -> VenueTable:
    """The table in force: built-in rows plus the file named by ``EVBT_VENUES`` (read once per process)."""
    return _table_for(os.environ.get(ENV_VAR, "").strip())


def use_venues_file(path: Path | str | None) -> VenueTable:
    """Make ``path`` the user venues file of this process and of the processes it starts (the environment
    variable is inherited by sweep workers); validates it now so a bad file is an input error up front."""
    if path is None or not str(path).strip():
        os.environ.pop(ENV_VAR, None)
    else:
        resolved = str(Path(path).expanduser().resolve())
        _table_for(resolved)  # raises ConfigError on a bad file before anything is changed
        os.environ[ENV_VAR] = resolved
    return active_venues()
