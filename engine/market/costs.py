"""Trading costs as pure functions, shared by the backtrader commission scheme and the trade verifier.

All amounts are in the run's base currency except where a name says ``_local``.
Conventions (stated in the README):
- commission: ``commission_pct * value``, at least ``min_commission`` per order (base currency);
- slippage: ``slippage_bps / 10_000 * value`` charged as a cost on every fill (equivalent to filling a buy
  that much above and a sell that much below the bar price; the trade list shows the raw bar price);
- Hong Kong stamp duty: ``stamp_duty_rate * value`` in HKD, rounded up to a whole HKD, on both sides
  (0.13% in 2021-2023), then converted back to the base currency with the fill's FX rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class CostModel:
    commission_pct: float = 0.001
    min_commission: float = 0.0
    slippage_bps: float = 5.0
    stamp_duty_rate: float = 0.0013  # HK only, both sides

    def __post_init__(self) -> None:
        for name in ("commission_pct", "min_commission", "slippage_bps", "stamp_duty_rate"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class Fees:
    commission: float
    slippage: float
    stamp_duty: float

    @property
    def total(self) -> float:
        return self.commission + self.slippage + self.stamp_duty


def order_fees(model: CostModel, size: float, price_base: float, *, hk: bool, fx: float) -> Fees:
    """Fees for one fill of ``size`` shares at ``price_base`` (base currency per share).

    ``fx`` is local-currency units per base unit (HKD per USD for a HK listing in a USD run).
    """
    value = abs(size) * price_base
    if value == 0:
        return Fees(0.0, 0.0, 0.0)
    commission = max(model.commission_pct * value, model.min_commission)
    slippage = model.slippage_bps / 10_000.0 * value
    stamp = 0.0
    if hk and model.stamp_duty_rate > 0:
        # Round the HKD amount up to a whole dollar; the tiny epsilon keeps exact integers from rounding up
        # because of float noise (e.g. 13.000000000002 -> 13).
        stamp_local = math.ceil(model.stamp_duty_rate * value * fx - 1e-9)
        stamp = stamp_local / fx
    return Fees(commission, slippage, stamp)
