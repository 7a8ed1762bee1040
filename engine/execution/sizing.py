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
    return target, math.floor(target / price_base / lot_size) * lot_size
