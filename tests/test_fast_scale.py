"""The fast path's scale shortcuts give exactly what the plain rules give: entry sessions batched per exchange,
placements memoised per (symbol, event), lazy ISO dates and next-tradable bars."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from engine.events import timing
from engine.events.catalog import Event
from engine.execution.books import IsoDates, _next_tradable
from engine.plan.context import RunContext
from engine.plan.planner import PlacementMemo, build_plan
from strategies.registry import get_strategy
from tests.engine_helpers import event, frame_on_sessions


def _hinted(eid: str, date: str, hint: str, market: str) -> Event:
    return dataclasses.replace(event(eid, date, tz="Asia/Hong_Kong"), session_hint=hint, market=market)


# Same calendar day, different time notes: a batch keyed on the date alone would give them one session.
EVENTS = [
    event("plain", "2022-03-16"),
    event("morning", "2022-03-16", time="08:00"),
    event("evening", "2022-03-16", time="23:30"),
    event("ny-noon", "2022-03-16", tz="America/New_York", time="12:00"),
    _hinted("hk-open", "2022-03-16", "before_open", "XHKG"),
    _hinted("hk-close", "2022-03-16", "after_close", "XHKG"),
    _hinted("us-during", "2022-03-16", "during_session", "XNYS"),
    _hinted("us-holiday", "2022-04-15", "after_close", "XNYS"),  # Good Friday: no session, date-only rule
    event("weekend", "2022-03-19"),
    event("new-year", "2022-12-31", time="12:00"),
]


@pytest.mark.parametrize("fill", ["open", "close"])
def test_batched_entry_sessions_equal_the_per_event_rule(fill: str) -> None:
    frames = {s: frame_on_sessions(timing.exchange_of(s), "2022-01-03", "2023-01-31") for s in ("BABA", "0700.HK")}
    ctx = RunContext(tuple(frames), EVENTS, frames, fill, dt.date(2022, 1, 3), dt.date(2023, 1, 31))
    for symbol in frames:
        got = {e.id: ctx.entry_session(e, symbol) for e in EVENTS}
        want = {e.id: timing.entry_session(e, symbol, fill) for e in EVENTS}
        assert got == want, symbol
    # the HK morning note enters the same day's HK open; the evening one the next day's
    assert str(ctx.entry_session(EVENTS[1], "0700.HK").date()) == "2022-03-16"
    assert str(ctx.entry_session(EVENTS[2], "0700.HK").date()) == "2022-03-17"


def test_placements_reused_across_points_give_the_fresh_plan() -> None:
    frames = {"BABA": frame_on_sessions("XNYS", "2022-01-03", "2022-12-30", seed=2)}
    events = [event(f"e{k}", f"2022-{m:02d}-1{k}", symbols=("BABA",), scope="single") for k, m in
              zip(range(8), range(2, 10), strict=True)]
    ctx = RunContext(("BABA",), events, frames, "open", dt.date(2022, 1, 3), dt.date(2022, 12, 30))
    cls = get_strategy("event_hold")
    memo = PlacementMemo()
    for hold in (3, 7, 3):
        strategy = cls(cls.Params(hold=hold))
        reused = build_plan(strategy, ctx, frames, memo)
        fresh = build_plan(strategy, ctx, frames)
        assert reused == fresh and len(reused.actions["BABA"]) == 8
    assert len(memo.by_event) == 8


def test_iso_dates_and_next_tradable_bars() -> None:
    index = pd.DatetimeIndex(["1999-12-31", "2021-01-04", "2024-02-29"]).as_unit("us")
    dates = IsoDates(index)
    assert list(dates) == ["1999-12-31", "2021-01-04", "2024-02-29"] and len(dates) == 3 and dates[-1] == "2024-02-29"
    assert _next_tradable(np.array([True, False, True, True, False, True])).tolist() == [1, 1, 4, 4, 4, 6]
    assert _next_tradable(np.array([], dtype=bool)).tolist() == []
