"""The one number formatter of every text and HTML rendering (engine/reporting/formats.py), pinned by hand."""

from __future__ import annotations

import numpy as np

from engine.reporting.formats import num, pct, signed_delta


def test_missing_values_are_one_rule() -> None:
    for missing in (None, float("nan"), float("inf"), np.float64("nan")):
        assert num(missing) == "-" and pct(missing) == "-"
        assert num(missing, missing="n/a") == "n/a" and pct(missing, missing="n/a") == "n/a"


def test_numbers_and_percents() -> None:
    assert num(1234.5, ",.2f") == "1,234.50"
    assert num(0.12345) == "0.123"  # 3 decimals unless told
    assert pct(0.0123) == "1.23%" and pct(0.0123, 3) == "1.230%"
    assert pct(-0.5) == "-50.00%"
    assert num(0, ".2f") == "0.00"  # zero is a value, not missing


def test_deltas() -> None:
    assert signed_delta(0.0123, "pct") == "+1.23pp"
    assert signed_delta(-1234.5, "money") == "-1,234.50"
    assert signed_delta(3.0, "int") == "+3" and signed_delta(0.5, "ratio") == "+0.50"
    assert signed_delta(None, "pct") == "-"
