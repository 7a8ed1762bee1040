"""Number formatting shared by every text and HTML rendering: one missing-value rule, one percent rule.

A value that is None or not finite (NaN, inf) is shown as ``missing`` ("-" unless a table says "n/a").
"""

from __future__ import annotations

import math
from typing import Any


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return not math.isfinite(value)
    except TypeError:  # not a number: formatted as it is
        return False


def num(value: Any, spec: str = ".3f", missing: str = "-") -> str:
    """``value`` formatted with ``spec`` (e.g. ".2f", ",.2f"), or ``missing``."""
    return missing if _missing(value) else format(value, spec)


def pct(value: Any, digits: int = 2, missing: str = "-") -> str:
    """A fraction as a percent with ``digits`` decimals (0.0123 -> "1.23%"), or ``missing``."""
    return missing if _missing(value) else f"{value * 100:.{digits}f}%"


def signed_delta(value: float | None, kind: str) -> str:
    """A difference between two metric values: percent points for fractions, signed money/ints/ratios."""
    if value is None:
        return "-"
    if kind == "pct":
        return f"{value * 100:+.2f}pp"
    if kind == "money":
        return f"{value:+,.2f}"
    if kind in ("int", "bars"):
        return f"{int(value):+d}"
    return f"{value:+.2f}"

