"""How many shares an entry buys (or sells short): shared by the backtrader executor and the fast path."""

from __future__ import annotations

import math

from engine.plan.config import RunConfig
from engine.plan.planner import PlannedAction


def entry_size(config: RunConfig, action: PlannedAction, equity: float, price_base: float,
               lot_size: int) -> tuple[float, int]:
    """Target value (base currency) and whole-board-lot share count of one entry.

    A signal's own ``weight`` (fraction of equity) wins; otherwise fixed cash (``sizing=cash``), an equal split of
    one allotment across the symbols of the signal's group (``equal``), or a fraction of equity (``percent``).
    ``equity`` is the portfolio value at the last close; ``price_base`` the fill price in the base currency.
    """
    if action.weight is not None:
        target = equity * action.weight
    elif config.sizing == "cash":
        target = config.size
    elif config.sizing == "equal":
        target = equity * config.size / max(action.group_size, 1)
    else:
        target = equity * config.size
    return target, whole_lots(target / price_base, lot_size)


# Relative slack of the lot rounding: a quotient within 1e-9 of the next whole lot is that lot. Division of a target
# by a converted price (HKD 130 / 7.8) can land a few ulps below an exact lot count (30,000 / 16.666666666666668 =
# 1,799.9999999999998) and flooring it would drop a whole lot; 1e-9 is far above float error and far below a share.
LOT_SLACK = 1e-9


def whole_lots(shares: float, lot_size: int) -> int:
    """``shares`` rounded down to whole board lots, not losing a lot to floating-point error."""
    lots = shares / lot_size
    whole = math.floor(lots)
    if whole + 1 - lots <= LOT_SLACK * (whole + 1):
        whole += 1
    return whole * lot_size
