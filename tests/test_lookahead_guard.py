"""A fill placed one session too early is caught.

The "no lookahead" tests elsewhere show that later prices cannot change a fill; a fill placed one session too
early passes them too (shown below). Here every fill is checked against the instant its event became public,
recomputed without engine.events.timing: from the event's local time and zone and the exchange's opening and
closing times written out by hand. The fill bar's fill time must be strictly after the news (open: the open is
after it; close: the close is after it), and the bar before it must not be (the first bar a trader could use,
not a later one); the fill price is that bar's raw open or close.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from engine import backtest
from engine.events import timing
from engine.events.catalog import Event
from engine.market.costs import CostModel
from engine.plan.config import RunConfig
from engine.prices.store import PriceStore
from tests.engine_helpers import event, frame_on_sessions

# Regular session times (no half days occur on the bars used here).
VENUES = {"XNYS": ("America/New_York", dt.time(9, 30), dt.time(16, 0)),
          "XHKG": ("Asia/Hong_Kong", dt.time(9, 30), dt.time(16, 0))}
START, END = dt.date(2022, 3, 1), dt.date(2022, 6, 30)
FSDC = event("fsdc", "2022-03-16", time="14:00", tz="Asia/Hong_Kong")  # during the HK afternoon session
CPPCC = event("cppcc", "2022-05-17", time="19:00")  # Beijing evening: after the HK close, before the US open
EVENTS = {e.id: e for e in (FSDC, CPPCC)}


def _venue(symbol: str) -> str:
    return "XHKG" if symbol.endswith(".HK") else "XNYS"


def _public_at(ev: Event) -> dt.datetime:
    assert ev.time is not None, "these tests use events with a known local time"
    return dt.datetime.combine(ev.date, ev.time, ZoneInfo(ev.tz))


def _fill_time(symbol: str, day: pd.Timestamp, fill: str) -> dt.datetime:
    zone, opens, closes = VENUES[_venue(symbol)]
    return dt.datetime.combine(day.date(), opens if fill == "open" else closes, ZoneInfo(zone))


def fill_problems(trade: dict, ev: Event, bars: pd.DataFrame) -> list[str]:
    """What is wrong with a trade's entry given its event and the symbol's raw bars (empty: nothing)."""
    fill, entry = trade["entry_fill"], pd.Timestamp(trade["entry_date"])
    usable = bars.index[~bars["stale"].to_numpy()]
    if entry not in usable:
        return [f"{trade['symbol']}: entry {entry.date()} is not a tradable bar"]
    problems = []
    public = _public_at(ev)
    if not _fill_time(trade["symbol"], entry, fill) > public:
        problems.append(f"{trade['symbol']}: {fill} of {entry.date()} is not after the news ({public.isoformat()})")
    earlier = usable[usable < entry]
    if len(earlier) and _fill_time(trade["symbol"], earlier[-1], fill) > public:
        problems.append(f"{trade['symbol']}: {earlier[-1].date()} was already after the news (filled late)")
    if trade["entry_price"] != float(bars.loc[entry, fill]):
        problems.append(f"{trade['symbol']}: entry price is not the raw {fill} of {entry.date()}")
    return problems


@pytest.fixture
def store(tmp_path: Path) -> PriceStore:
    s = PriceStore(tmp_path / "cache", offline=True)
    s.write("BABA", frame_on_sessions("XNYS", "2021-10-01", "2022-06-30", seed=1), source="csv")
    s.write("0700.HK", frame_on_sessions("XHKG", "2021-10-01", "2022-06-30", seed=3, base=300), source="csv")
    return s


def _run(store: PriceStore, fill: str = "open") -> list[dict]:
    cfg = RunConfig(strategy="event_hold", params={"hold": 5}, symbols=("BABA", "0700.HK"), start=START, end=END,
                    cash=100_000.0, fill=fill, benchmark=None, costs=CostModel())
    return backtest.run(cfg, store, events=list(EVENTS.values())).report["trades"]


def _problems(trades: list[dict], store: PriceStore) -> list[str]:
    return [p for t in trades for p in fill_problems(t, EVENTS[t["event_id"]], store.load(t["symbol"]))]


@pytest.mark.parametrize(("fill", "entries"), [
    # README worked examples: US ADRs the same day, HK the next open (or the same day's close with fill close)
    ("open", {("fsdc", "BABA"): "2022-03-16", ("fsdc", "0700.HK"): "2022-03-17",
              ("cppcc", "BABA"): "2022-05-17", ("cppcc", "0700.HK"): "2022-05-18"}),
    ("close", {("fsdc", "BABA"): "2022-03-16", ("fsdc", "0700.HK"): "2022-03-16",
               ("cppcc", "BABA"): "2022-05-17", ("cppcc", "0700.HK"): "2022-05-18"}),
])
def test_engine_fills_pass_the_guard(store: PriceStore, fill: str, entries: dict) -> None:
    trades = _run(store, fill)
    assert {(t["event_id"], t["symbol"]): t["entry_date"] for t in trades} == entries
    assert _problems(trades, store) == []


def test_a_trade_moved_one_bar_early_is_caught(store: PriceStore) -> None:
    for trade in _run(store):
        bars = store.load(trade["symbol"])
        before = bars.index[bars.index.get_loc(pd.Timestamp(trade["entry_date"])) - 1]
        early = dict(trade, entry_date=str(before.date()), entry_price=float(bars.loc[before, "open"]))
        problems = fill_problems(early, EVENTS[trade["event_id"]], bars)
        assert len(problems) == 1 and "is not after the news" in problems[0], problems
        late_day = bars.index[bars.index.get_loc(pd.Timestamp(trade["entry_date"])) + 1]
        late = dict(trade, entry_date=str(late_day.date()), entry_price=float(bars.loc[late_day, "open"]))
        assert ["filled late" in p for p in fill_problems(late, EVENTS[trade["event_id"]], bars)] == [True]


def test_an_engine_that_enters_one_session_early_is_caught(store: PriceStore, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    honest = timing.entry_session

    def one_session_early(ev: Event, symbol: str, fill: str = "open") -> pd.Timestamp:
        session = honest(ev, symbol, fill)
        return timing.sessions(_venue(symbol), session - pd.Timedelta(days=10), session - pd.Timedelta(days=1))[-1]

    honest_many = timing.entry_sessions

    def many_one_session_early(events: list[Event], symbol: str, fill: str = "open") -> pd.DatetimeIndex:
        venue, day = _venue(symbol), pd.Timedelta(days=1)
        return pd.DatetimeIndex([timing.sessions(venue, s - 10 * day, s - day)[-1]
                                 for s in honest_many(events, symbol, fill)])

    # the rule has a per-event and a vectorised form (the planner batches events per exchange): plant it in both
    monkeypatch.setattr(timing, "entry_session", one_session_early)
    monkeypatch.setattr(timing, "entry_sessions", many_one_session_early)
    trades = _run(store)
    assert {(t["event_id"], t["symbol"]): t["entry_date"] for t in trades} == {
        ("fsdc", "BABA"): "2022-03-15", ("fsdc", "0700.HK"): "2022-03-16",
        ("cppcc", "BABA"): "2022-05-16", ("cppcc", "0700.HK"): "2022-05-17"}
    problems = _problems(trades, store)
    assert len(problems) == 4 and all("is not after the news" in p for p in problems), problems

    # The older "no lookahead" property cannot see this defect: prices after the (early) FSDC fills change nothing.
    changed = PriceStore(tmp_path / "changed", offline=True)
    for symbol in ("BABA", "0700.HK"):
        frame = store.load(symbol).copy()
        entry = next(pd.Timestamp(t["entry_date"]) for t in trades if (t["event_id"], t["symbol"]) == ("fsdc", symbol))
        frame.loc[frame.index > entry, ["open", "high", "low", "close", "adj_close"]] *= 3.0
        changed.write(symbol, frame, source="csv")
    key = ("symbol", "entry_date", "entry_price", "size", "entry_fees")
    fsdc = [tuple(t[k] for k in key) for t in trades if t["event_id"] == "fsdc"]
    assert [tuple(t[k] for k in key) for t in _run(changed) if t["event_id"] == "fsdc"] == fsdc
