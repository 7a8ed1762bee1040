"""Trading costs as pure functions, shared by both drivers and the trade verifier.

All amounts are in the run's base currency except where a name says ``_local``.
Conventions (stated in the README):
- commission: ``commission_pct * value``, at least ``min_commission`` per order (base currency);
- slippage: ``slippage_bps / 10_000 * value`` charged as a cost on every fill (equivalent to filling a buy
  that much above and a sell that much below the bar price; the trade list shows the raw bar price);
- regulatory fees and taxes of the listing's venue in force on the trade date (``engine/market/data/fees.csv``:
  HK stamp duty, trading fee, SFC and AFRC levies; US SEC fee on sells; mainland stamp duty on sells; UK SDRT
  on buys; Taiwan securities transaction tax on sells), each computed on the value in the listing's currency,
  rounded per order as the table says, then converted back to the base currency with the fill's FX rate.
  ``stamp_duty_rate`` (``--stamp-duty``), when set, replaces the HK stamp duty rate on every date;
- a listing's exemptions (``engine/market/data/exemptions.csv``, e.g. no HK stamp duty on ETFs such as 2800.HK
  since 2015-02-13) charge that item at zero on the dates they cover.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from engine.market import fee_schedule

if TYPE_CHECKING:
    from engine.market.symbols import Listing

# Rate of an undated HK call (a caller that passes no trade date): the 2021-08-01..2023-11-16 rate.
UNDATED_HK_STAMP_DUTY = 0.0013
SIDES = ("buy", "sell")


@dataclass(frozen=True)
class CostModel:
    commission_pct: float = 0.001
    min_commission: float = 0.0
    slippage_bps: float = 5.0
    stamp_duty_rate: float | None = None  # HK stamp duty override, both sides; None = the dated schedule
    venue_fees: bool = True  # the venue's dated taxes and levies (fees.csv); False = commission and slippage only

    def __post_init__(self) -> None:
        if not isinstance(self.venue_fees, bool):
            raise ValueError(f"venue_fees must be true or false, got {self.venue_fees!r}")
        for name in ("commission_pct", "min_commission", "slippage_bps", "stamp_duty_rate"):
            value = getattr(self, name)
            if value is None and name == "stamp_duty_rate":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                    or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        # a rate is a fraction of the order's value: 1 (100%) or more is a unit mistake (--stamp-duty 2 for 0.2%?)
        for name, below, unit in (("commission_pct", 1.0, "0.001 = 0.1%"), ("stamp_duty_rate", 1.0, "0.0013 = 0.13%"),
                                  ("slippage_bps", 10_000.0, "basis points: 5 = 0.05%")):
            value = getattr(self, name)
            if value is not None and value >= below:
                raise ValueError(f"{name} must be below {below:g} ({unit}), got {value!r}")


class Fees(dict[str, float]):
    """Itemised fees of one fill: item -> amount in the base currency (``commission``, ``slippage`` and
    ``stamp_duty`` always present; venue items such as ``sec_fee``, ``trading_fee``, ``sfc_levy`` when
    charged), with ``.total``."""

    @property
    def total(self) -> float:
        return float(sum(self.values()))

    @property
    def commission(self) -> float:
        return self.get("commission", 0.0)

    @property
    def slippage(self) -> float:
        return self.get("slippage", 0.0)

    @property
    def stamp_duty(self) -> float:
        return self.get("stamp_duty", 0.0)


def order_fees(
    model: CostModel,
    size: float,
    price_base: float,
    *,
    hk: bool = False,
    fx: float = 1.0,
    side: str | None = None,
    day: object = None,
    listing: Listing | None = None,
) -> Fees:
    """Fees for one fill of ``size`` shares at ``price_base`` (base currency per share).

    ``fx`` is local-currency units per base unit (HKD per USD for a HK listing in a USD run). ``side`` is
    ``buy``/``sell`` (default: the sign of ``size``, negative = sell), ``day`` the trade date and ``listing``
    the symbol's listing (its venue picks the fee rows; default: HK when ``hk`` else no venue fees). Without
    ``day`` only HK stamp duty is charged, at ``stamp_duty_rate`` or 0.13% (the behaviour of undated callers).
    """
    value = abs(size) * price_base
    if value == 0:
        return Fees(commission=0.0, slippage=0.0, stamp_duty=0.0)
    fees = Fees(commission=max(model.commission_pct * value, model.min_commission),
                slippage=model.slippage_bps / 10_000.0 * value, stamp_duty=0.0)
    venue = listing.venue if listing is not None else ("HK" if hk else "")
    if (listing is not None and listing.kind != "stock") or not model.venue_fees:
        return fees  # indexes are not traded on a venue, or the run leaves venue fees out
    if day is None:
        if venue == "HK":
            rate = UNDATED_HK_STAMP_DUTY if model.stamp_duty_rate is None else model.stamp_duty_rate
            fees["stamp_duty"] = fee_schedule.round_amount(rate * value * fx, "ceil_unit") / fx
        return fees
    if side is None:
        side = "sell" if size < 0 else "buy"
    if side not in SIDES:
        raise ValueError(f"side must be buy or sell, got {side!r}")
    value_local = value * fx
    iso = fee_schedule.iso_day(day)
    items = _venue_items(venue, iso, side, model.stamp_duty_rate)
    if listing is not None and fee_schedule.has_exemptions(listing.symbol):
        items = _without(items, fee_schedule.exempt_items(listing.symbol, iso))
    for item, rate, rounding in items:
        amount = fee_schedule.round_amount(rate * value_local, rounding) / fx
        fees[item] = fees.get(item, 0.0) + amount
    return fees


def _without(items: tuple[tuple[str, float, str], ...], exempt: frozenset[str]) -> tuple[tuple[str, float, str], ...]:
    """``items`` with the exempt ones charged at a zero rate (kept, so the trade list still names them)."""
    if not exempt:
        return items
    return tuple((item, 0.0, "none") if item in exempt else (item, rate, rounding) for item, rate, rounding in items)


_RULES_BY_DAY: dict[tuple[str, float | None], dict[tuple[str, str], tuple[tuple[str, float, str], ...]]] = {}
_FEE_TOTALS: dict[tuple[CostModel, str, bool, str | None], FeeTotal] = {}  # (model, venue, flat, exempt symbol)
FeeTotal = Callable[[float, float, float, str, str], float]  # (size, price_base, fx, side, day) -> total


def fee_totals(model: CostModel, listing: Listing | None = None, hk: bool = False) -> FeeTotal:
    """``order_fees(model, size, price_base, hk=hk, fx=fx, side=side, day=day, listing=listing).total`` as a
    function of one listing's fills, without the itemised fees (a refused order's text needs only the total):
    the same amounts summed in the same order (commission, slippage, stamp duty, then each venue item where
    it first comes), so the same float; the venue's rules of each (day, side) are looked up once. Listings of
    one venue and kind share one function (``order_fees`` reads nothing else of them), except a listing with
    exemptions (``exemptions.csv``), which has its own."""
    flat = (listing is not None and listing.kind != "stock") or not model.venue_fees  # commission and slippage
    venue = listing.venue if listing is not None else ("HK" if hk else "")
    exempt = listing.symbol if listing is not None and fee_schedule.has_exemptions(listing.symbol) else None
    key = (model, venue, flat, exempt)
    shared = _FEE_TOTALS.get(key)
    if shared is None:
        shared = _FEE_TOTALS[key] = _fee_totals(model, venue, flat, listing, hk)
    return shared


def _fee_totals(model: CostModel, venue: str, flat: bool, listing: Listing | None, hk: bool) -> FeeTotal:
    pct, minimum, slip = model.commission_pct, model.min_commission, model.slippage_bps / 10_000.0
    exempt = listing.symbol if listing is not None and fee_schedule.has_exemptions(listing.symbol) else None
    # (day, side) -> _venue_items (of this listing when it has exemptions: they depend on the symbol)
    rules = {} if exempt else _RULES_BY_DAY.setdefault((venue, model.stamp_duty_rate), {})

    def total(size: float, price_base: float, fx: float, side: str, day: str) -> float:
        value = abs(size) * price_base
        if value == 0:
            return 0.0
        commission = max(pct * value, minimum)
        slippage = slip * value
        if flat:
            return float(sum((commission, slippage, 0.0)))
        items = rules.get((day, side))
        if items is None:
            if day is None or side not in SIDES:  # undated callers (HK stamp duty only), or the error it raises
                return order_fees(model, size, price_base, hk=hk, fx=fx, side=side, day=day, listing=listing).total
            iso = fee_schedule.iso_day(day)
            items = _venue_items(venue, iso, side, model.stamp_duty_rate)
            if exempt:
                items = _without(items, fee_schedule.exempt_items(exempt, iso))
            rules[(day, side)] = items
        if not items:
            return float(sum((commission, slippage, 0.0)))
        amounts = {"commission": commission, "slippage": slippage, "stamp_duty": 0.0}
        value_local = value * fx
        for item, rate, rounding in items:
            amounts[item] = amounts.get(item, 0.0) + fee_schedule.round_amount(rate * value_local, rounding) / fx
        return float(sum(amounts.values()))

    return total


@cache
def _venue_items(venue: str, day: str, side: str, stamp_duty_rate: float | None) -> tuple[tuple[str, float, str], ...]:
    """(item, rate, rounding) of each fee rule of ``venue`` charged on a ``side`` fill dated ``day``, in the
    table's order, with the HK stamp duty rate replaced by ``--stamp-duty`` when set (memoised: a run prices
    thousands of fills on a few thousand dates)."""
    items = []
    for rule in fee_schedule.rules_on(venue, day):
        if not rule.applies(side):
            continue
        rate = rule.rate
        if venue == "HK" and rule.item == "stamp_duty" and stamp_duty_rate is not None:
            rate = stamp_duty_rate
        items.append((rule.item, rate, rule.rounding))
    return tuple(items)
