"""Regulatory fees and taxes with effective dates, as data: ``engine/market/data/fees.csv``.

One row per (venue, item, period): ``side`` (buy | sell | both), ``rate`` (fraction of the trade value in
the listing's currency), ``rounding`` of the local amount per order (``ceil_unit``: up to a whole currency
unit, HK stamp duty; ``round_cent``: to the nearest cent; ``ceil_cent``: up to the cent; ``none``), ``start``
and ``end`` (inclusive ISO dates of the trade date; empty ``end`` = still in force) and ``source``.
A date outside every row of an item charges nothing for it; ``coverage_gaps`` names such dates so a run can
say so (never a silent zero).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import ConfigError

FEES_PATH = Path(__file__).resolve().parent / "data" / "fees.csv"
EXEMPTIONS_PATH = Path(__file__).resolve().parent / "data" / "exemptions.csv"
SIDES = ("buy", "sell", "both")
ROUNDINGS = ("none", "ceil_unit", "round_cent", "ceil_cent")
_OPEN_END = "9999-12-31"


@dataclass(frozen=True)
class FeeRule:
    venue: str
    item: str
    side: str
    rate: float
    rounding: str
    start: str  # ISO date, inclusive
    end: str  # ISO date, inclusive
    source: str

    def applies(self, side: str) -> bool:
        return self.side == "both" or self.side == side


def round_amount(amount: float, rounding: str) -> float:
    """Round a local-currency fee (the epsilon keeps float noise such as 13.000000000002 from rounding up)."""
    if rounding == "ceil_unit":
        return float(math.ceil(amount - 1e-9))
    if rounding == "ceil_cent":
        return math.ceil(amount * 100 - 1e-7) / 100
    if rounding == "round_cent":
        return math.floor(amount * 100 + 0.5 + 1e-7) / 100
    return amount


def _date(text: str, where: str, what: str) -> str:
    try:
        return dt.date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise ConfigError(f"{where}: {what} {text!r} is not a date (YYYY-MM-DD)") from None


def load_rules(path: Path = FEES_PATH) -> tuple[FeeRule, ...]:
    rules: list[FeeRule] = []
    with path.open(encoding="utf-8", newline="") as fh:
        for lineno, raw in enumerate(csv.DictReader(fh), start=2):
            where = f"{path}:{lineno}"
            side = (raw.get("side") or "").strip()
            rounding = (raw.get("rounding") or "none").strip()
            if side not in SIDES or rounding not in ROUNDINGS:
                raise ConfigError(f"{where}: side must be one of {SIDES} and rounding one of {ROUNDINGS}")
            try:
                rate = float(raw.get("rate") or "")
            except ValueError:
                raise ConfigError(f"{where}: rate {raw.get('rate')!r} is not a number") from None
            if not math.isfinite(rate) or rate < 0:
                raise ConfigError(f"{where}: rate must be >= 0")
            start = _date(raw.get("start") or "", where, "start")
            end = _date(raw["end"], where, "end") if (raw.get("end") or "").strip() else _OPEN_END
            if end < start:
                raise ConfigError(f"{where}: end {end} is before start {start}")
            rules.append(FeeRule((raw.get("venue") or "").strip(), (raw.get("item") or "").strip(), side, rate,
                                 rounding, start, end, (raw.get("source") or "").strip()))
    _check_overlaps(rules, path)
    return tuple(rules)


def _check_overlaps(rules: list[FeeRule], path: Path) -> None:
    by_key: dict[tuple[str, str], list[FeeRule]] = {}
    for rule in rules:
        by_key.setdefault((rule.venue, rule.item), []).append(rule)
    for (venue, item), group in by_key.items():
        group.sort(key=lambda r: r.start)
        for a, b in pairwise(group):
            if b.start <= a.end:
                raise ConfigError(f"{path}: {venue} {item}: periods {a.start}..{a.end} and {b.start}..{b.end} overlap")


@cache
def rules() -> tuple[FeeRule, ...]:
    return load_rules()


def load_exemptions(path: Path = EXEMPTIONS_PATH) -> dict[str, tuple[tuple[str, str, str], ...]]:
    """``data/exemptions.csv``: symbol -> ((item, start, end), ...), the fee items a listing does not pay on trade
    dates ``start``..``end`` (inclusive ISO; empty ``end`` = still in force), e.g. HK stamp duty on ETFs."""
    out: dict[str, list[tuple[str, str, str]]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for lineno, raw in enumerate(csv.DictReader(fh), start=2):
            where = f"{path}:{lineno}"
            symbol, item = (raw.get("symbol") or "").strip().upper(), (raw.get("item") or "").strip()
            if not symbol or not item:
                raise ConfigError(f"{where}: symbol and item are required")
            start = _date(raw.get("start") or "", where, "start")
            end = _date(raw["end"], where, "end") if (raw.get("end") or "").strip() else _OPEN_END
            if end < start:
                raise ConfigError(f"{where}: end {end} is before start {start}")
            out.setdefault(symbol, []).append((item, start, end))
    return {symbol: tuple(rows) for symbol, rows in out.items()}


@cache
def exemptions() -> dict[str, tuple[tuple[str, str, str], ...]]:
    return load_exemptions()


def has_exemptions(symbol: str) -> bool:
    return symbol in exemptions()


@cache
def exempt_items(symbol: str, day: str) -> frozenset[str]:
    """The fee items ``symbol`` is exempt from on trade date ``day`` (ISO)."""
    return frozenset(item for item, start, end in exemptions().get(symbol, ()) if start <= day <= end)


def iso_day(day: object) -> str:
    """ISO date of a trade date given as date, Timestamp, numpy datetime64 or text."""
    if isinstance(day, str):
        return day[:10]
    if isinstance(day, dt.datetime):
        return day.date().isoformat()
    if isinstance(day, dt.date):
        return day.isoformat()
    if isinstance(day, np.datetime64):
        return str(day.astype("datetime64[D]"))
    return pd.Timestamp(day).date().isoformat()  # type: ignore[arg-type]


@cache
def venue_rules(venue: str) -> tuple[FeeRule, ...]:
    """The rules of ``venue``, in the table's order."""
    return tuple(r for r in rules() if r.venue == venue)


@cache
def rules_on(venue: str, day: str) -> tuple[FeeRule, ...]:
    """The rules of ``venue`` in force on trade date ``day`` (ISO)."""
    return tuple(r for r in venue_rules(venue) if r.start <= day <= r.end)


def coverage_gaps(venue: str, start: object, end: object) -> list[str]:
    """Messages for the items of ``venue`` that have no rate on some day between ``start`` and ``end``."""
    lo, hi = iso_day(start), iso_day(end)
    items: dict[str, list[FeeRule]] = {}
    for rule in rules():
        if rule.venue == venue:
            items.setdefault(rule.item, []).append(rule)
    out = []
    for item, group in sorted(items.items()):
        group.sort(key=lambda r: r.start)
        first, last = group[0].start, group[-1].end
        if lo < first:
            out.append(f"{venue} {item}: no rate in fees.csv before {first}; not charged on earlier fills")
        if hi > last:
            out.append(f"{venue} {item}: no rate in fees.csv after {last}; not charged on later fills")
        for a, b in pairwise(group):
            gap_lo = (dt.date.fromisoformat(a.end) + dt.timedelta(days=1)).isoformat()
            if gap_lo < b.start and not (b.start <= lo or gap_lo > hi):
                out.append(f"{venue} {item}: no rate in fees.csv from {gap_lo} to {b.start}; not charged")
    return out
