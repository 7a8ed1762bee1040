"""``session_instants`` floors bar stamps to their dates in numpy; the instants equal those of the pandas
``normalize`` path it replaced (kept below as the reference), on both venues, any datetime unit, stamps with a
time of day, and dates that are not sessions (weekends, holidays)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.events import timing
from engine.execution.clock import session_instants


def _reference(exchange: str, dates: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    index = pd.DatetimeIndex(dates).normalize()
    sched = timing.schedule(exchange, index.min(), index.max())
    days = index.as_unit("ns").to_numpy()
    sessions = sched.sessions.as_unit("ns").to_numpy()
    pos = np.searchsorted(sessions, days, side="left")
    opens = sched.opens.astype("datetime64[ns]").astype(np.int64)
    closes = sched.closes.astype("datetime64[ns]").astype(np.int64)
    n = len(sessions)
    exact = (pos < n) & (sessions[np.minimum(pos, n - 1)] == days)
    ref = np.where(exact, pos, np.clip(pos - 1, 0, n - 1))
    shift = days.astype(np.int64) - sessions[ref].astype(np.int64)
    return opens[ref] + shift, closes[ref] + shift, pos


@pytest.mark.parametrize("exchange", ["XNYS", "XHKG"])
@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_numpy_dates_equal_the_normalize_path(exchange: str, unit: str) -> None:
    rng = np.random.default_rng(sum(map(ord, exchange + unit)))
    seconds = np.sort(rng.integers(0, 3000 * 86400, 400))  # any day 2016-2024, any time of day
    stamps = pd.DatetimeIndex(pd.Timestamp("2016-01-01") + pd.to_timedelta(seconds, unit="s")).as_unit(unit)
    got, want = session_instants(exchange, stamps), _reference(exchange, stamps)
    for name, a, b in zip(("open", "close", "session"), got, want, strict=True):
        assert np.array_equal(a, b.astype(a.dtype)), name
