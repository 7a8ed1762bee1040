"""Symbol normalisation and per-listing facts (exchange calendar, currency, board lot)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.errors import ConfigError

# Board lots of the Hong Kong lines evbt knows (HKEX "board lot" per listing, as in 2021-2023).
# Unknown HK listings default to 100 shares; US listings trade in single shares.
HK_LOT_SIZES: dict[str, int] = {
    "0700.HK": 100,
    "9988.HK": 100,
    "3690.HK": 100,
    "9618.HK": 50,
    "9999.HK": 100,
    "9888.HK": 50,
    "1024.HK": 100,
    "9626.HK": 20,
    "2800.HK": 500,
}
DEFAULT_HK_LOT = 100

_YAHOO = re.compile(r"^\^?[A-Z0-9][A-Z0-9.\-=]{0,19}$")
_HK_CODE = re.compile(r"^0*([0-9]{1,5})(\.HK)?$")
# Yahoo writes a few indexes without a caret in CSV file names; accept the common ones.
_INDEX_ALIASES = {"HSI": "^HSI", "HSTECH": "^HSTECH"}


@dataclass(frozen=True)
class Listing:
    """Where and how a symbol trades."""

    symbol: str
    exchange: str  # exchange-calendars code: "XHKG" or "XNYS"
    currency: str  # "HKD" or "USD"
    lot_size: int
    timezone: str

    @property
    def is_hk(self) -> bool:
        return self.exchange == "XHKG"


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


def listing(symbol: str) -> Listing:
    """Exchange, currency and board lot for a normalised symbol."""
    sym = normalize_symbol(symbol)
    if sym.endswith("=X"):  # Yahoo FX pair such as HKD=X (HKD per USD); no exchange calendar
        return Listing(sym, "FX", sym[:3], 1, "UTC")
    if sym.endswith(".HK") or sym in ("^HSI", "^HSTECH"):
        return Listing(sym, "XHKG", "HKD", HK_LOT_SIZES.get(sym, DEFAULT_HK_LOT), "Asia/Hong_Kong")
    return Listing(sym, "XNYS", "USD", 1, "America/New_York")


def parse_symbol_list(values: tuple[str, ...] | list[str] | str | None) -> list[str]:
    """Split comma/space separated symbols, normalise them, drop duplicates keeping order."""
    if values is None:
        return []
    items = [values] if isinstance(values, str) else list(values)
    out: list[str] = []
    for item in items:
        for part in re.split(r"[,\s]+", item):
            if part:
                sym = normalize_symbol(part)
                if sym not in out:
                    out.append(sym)
    return out
