"""`fade` (rally >= X%) and `capitulation` (fall >= X%) take a move of exactly X% over the lookback.

Closes 25.00 -> 22.50 are a fall of exactly 10% and 19.00 -> 20.90 a rise of exactly 10%, but in floats
22.5 / 25 - 1 = -0.09999999999999998 and 20.9 / 19 - 1 = 0.09999999999999987, so both signals used to be
dropped. The expected entries are decided by hand from the decimal closes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from engine import backtest
from engine.market.costs import CostModel
from engine.plan.config import RunConfig
from engine.prices.store import PriceStore
from tests.engine_helpers import event, frame_on_sessions

NO_COSTS = CostModel(commission_pct=0.0, min_commission=0.0, slippage_bps=0, stamp_duty_rate=0.0)


def _run(tmp_path: Path, strategy: str, params: dict, first: float, last: float):
    """BABA on NYSE sessions; the event (2022-03-10 08:00 New York) enters at the 2022-03-10 open, and the
    lookback return of 5 sessions reads the closes of 2022-03-02 (``first``) and 2022-03-09 (``last``)."""
    dates = frame_on_sessions("XNYS", "2022-02-01", "2022-04-29").index
    closes = np.full(len(dates), 30.0)
    iso = [d.date().isoformat() for d in dates]
    a, b = iso.index("2022-03-02"), iso.index("2022-03-09")
    closes[a:b] = first
    closes[b:] = last
    frame = frame_on_sessions("XNYS", "2022-02-01", "2022-04-29", closes=closes, opens=closes)
    store = PriceStore(tmp_path / "cache", offline=True)
    store.write("BABA", frame, source="csv")
    config = RunConfig(strategy=strategy, params={"lookback": 5, "hold": 3, **params}, symbols=("BABA",),
                       start=dt.date(2022, 3, 1), end=dt.date(2022, 4, 29), benchmark=None, costs=NO_COSTS,
                       allow_short=True)
    ev = event("r", "2022-03-10", symbols=("BABA",), scope="single", tz="America/New_York", time="08:00")
    return backtest.run(config, store, events=[ev]).report["trades"]


@pytest.mark.parametrize(("first", "last", "want"), [(25.0, 22.5, 1), (25.0, 22.51, 0)])
def test_capitulation_takes_a_fall_of_exactly_the_threshold(tmp_path: Path, first, last, want) -> None:
    trades = _run(tmp_path, "capitulation", {"fall": 0.1}, first, last)  # 22.50 / 25.00 = 0.90: down 10%
    assert len(trades) == want
    if want:
        assert (trades[0]["side"], trades[0]["entry_date"]) == ("long", "2022-03-10")


@pytest.mark.parametrize(("first", "last", "want"), [(19.0, 20.9, 1), (19.0, 20.89, 0)])
def test_fade_takes_a_rally_of_exactly_the_threshold(tmp_path: Path, first, last, want) -> None:
    trades = _run(tmp_path, "fade", {"rally": 0.1}, first, last)  # 20.90 / 19.00 = 1.10: up 10%
    assert len(trades) == want
    if want:
        assert (trades[0]["side"], trades[0]["entry_date"]) == ("short", "2022-03-10")
