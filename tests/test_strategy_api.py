"""The strategy API cannot see the future (property test) and the warm-up is loaded and reported.

Property: for random price paths and events, perturbing every price and volume of a symbol at or after a session
T changes no signal whose entry session is on or before T: neither whether it is emitted nor any value derived
from the indicators (a probe strategy folds every indicator it reads into its signal's weight).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import warnings
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import backtest
from engine.errors import EvbtWarning
from engine.events.catalog import Event
from engine.plan.config import RunConfig
from engine.plan.context import RunContext
from engine.plan.warmup import load_with_warmup, with_warmup
from engine.prices.store import PriceStore
from strategies.analyst_follow import AnalystFollow, AnalystFollowParams
from strategies.base import BaseParams, Signal, Strategy, StrategyContext
from strategies.capitulation import Capitulation, CapitulationParams
from strategies.fade import Fade, FadeParams
from tests.engine_helpers import event, frame_on_sessions

START, END = dt.date(2022, 3, 1), dt.date(2022, 6, 30)
SYMBOLS = ("BABA", "0700.HK")
SETTINGS = settings(max_examples=15, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Probe(Strategy):
    """Reads every view as of the entry session and folds the values into the signal (weight, hold)."""

    name = "probe"

    def signals(self, ctx: StrategyContext) -> Iterable[Signal]:
        for ev in ctx.events:
            for symbol in ctx.symbols_for(ev):
                s = ctx.entry_session(ev, symbol)
                if s is None:
                    continue
                hist = ctx.history(symbol, s, bars=7)
                values = [ctx.sma(symbol, s, 10), ctx.rsi(symbol, s, 5), ctx.atr(symbol, s, 5),
                          ctx.rolling_return(symbol, s, 3), ctx.volatility(symbol, s, 5),
                          ctx.volume_zscore(symbol, s, 5), ctx.last_close(symbol, s),
                          None if hist is None or hist.empty else float(hist.to_numpy().sum())]
                if values[1] is not None and values[1] > 80:
                    continue  # a filter: whether the signal exists depends on the RSI
                folded = sum(v for v in values if v is not None)
                yield Signal(symbol=symbol, event=ev, hold=1 + len([v for v in values if v is None]),
                             weight=folded)


def _frames(seeds: tuple[int, int]) -> dict[str, pd.DataFrame]:
    frames = {"BABA": frame_on_sessions("XNYS", "2021-12-01", "2022-06-30", seed=seeds[0], base=90.0),
              "0700.HK": frame_on_sessions("XHKG", "2021-12-01", "2022-06-30", seed=seeds[1], base=350.0)}
    for i, frame in enumerate(frames.values()):
        frame["volume"] = 1e6 * (1 + (frame.index.day.to_numpy() * (7 + i)) % 13)  # a varying volume
    return frames


@st.composite
def scenarios(draw: st.DrawFn) -> dict:
    events = []
    for i in range(draw(st.integers(1, 6))):
        day = START + dt.timedelta(days=draw(st.integers(0, (END - START).days - 10)))
        etype = draw(st.sampled_from(["official_reassurance", "analyst_upgrade"]))
        syms = draw(st.sampled_from([(), ("BABA",), ("0700.HK",)]))
        events.append(event(f"e{i}", day.isoformat(), symbols=syms, scope="single" if syms else "sector",
                            etype=etype, tz=draw(st.sampled_from(["Asia/Shanghai", "America/New_York"])),
                            time=draw(st.sampled_from([None, "08:00", "12:30", "20:00"]))))
    return {"events": events, "seeds": (draw(st.integers(0, 9999)), draw(st.integers(0, 9999))),
            "symbol": draw(st.sampled_from(SYMBOLS)), "cut": draw(st.integers(0, 10**6)),
            "factor": draw(st.sampled_from([0.5, 0.93, 1.8]))}


RULES: list[Strategy] = [
    Probe(BaseParams()),
    Fade(FadeParams(rally=0.0, lookback=3)),
    Capitulation(CapitulationParams(fall=0.01, lookback=4)),
    AnalystFollow(AnalystFollowParams(below_ma=5)),
]


def _signals(rule: Strategy, frames: dict[str, pd.DataFrame], events: list[Event]) -> list[tuple]:
    ctx = RunContext(SYMBOLS, events, frames, "open", START, END)
    out = []
    for sig in rule.signals(ctx):
        session = ctx.entry_session(sig.event, sig.symbol) if sig.event is not None else sig.session
        out.append((session, dataclasses.replace(sig, weight=None if sig.weight is None else round(sig.weight, 9))))
    return out


@SETTINGS
@given(scenarios())
def test_prices_at_or_after_a_session_cannot_change_its_signals(s: dict) -> None:
    frames = _frames(s["seeds"])
    target = frames[s["symbol"]]
    for rule in RULES:
        base = _signals(rule, frames, s["events"])
        # cut at a signal's own session when there is one (the sharpest test), else at any bar
        sessions = sorted({x[0] for x in base if x[0] is not None and x[1].symbol == s["symbol"]})
        cut = sessions[s["cut"] % len(sessions)] if sessions else target.index[s["cut"] % len(target)]
        perturbed = target.copy()
        perturbed.loc[perturbed.index >= cut, ["open", "high", "low", "close", "adj_close", "volume"]] *= s["factor"]
        after = _signals(rule, {**frames, s["symbol"]: perturbed}, s["events"])
        assert [x for x in after if x[0] is not None and x[0] <= cut] == \
            [x for x in base if x[0] is not None and x[0] <= cut], rule.name


def test_the_probe_does_see_prices_before_the_session() -> None:
    """Guard against a vacuous property: perturbing the bar just before a signal's session changes it."""
    frames = _frames((1, 2))
    events = [event("e", "2022-04-12", symbols=("BABA",), scope="single", tz="America/New_York", time="08:00")]
    base = _signals(Probe(BaseParams()), frames, events)
    frame = frames["BABA"].copy()
    frame.loc[pd.Timestamp("2022-04-11"), "close"] *= 1.01
    assert _signals(Probe(BaseParams()), {**frames, "BABA": frame}, events) != base


# ------------------------------------------------------------------------------------------------ warm-up


def test_with_warmup_keeps_exactly_the_declared_bars_before_the_start() -> None:
    frame = frame_on_sessions("XNYS", "2021-12-01", "2022-03-31")
    frame.loc[pd.Timestamp("2022-02-25"), "stale"] = True  # a placeholder is not a warm-up session
    cut, note = with_warmup(frame, "BABA", dt.date(2022, 3, 1), 3)
    assert note is None
    # three tradable bars before the start: 02-23, 02-24, 02-28 (the stale 02-25 between them is kept, not counted)
    assert [d.date().isoformat() for d in cut.index[:5]] == ["2022-02-23", "2022-02-24", "2022-02-25",
                                                             "2022-02-28", "2022-03-01"]
    short, note = with_warmup(frame, "BABA", dt.date(2021, 12, 6), 10)
    assert note is not None and note.startswith("BABA: warm-up needs 10 sessions before 2021-12-06, the data has 3")
    assert short.index[0] == frame.index[0]


def _store(root: Path, frames: dict[str, pd.DataFrame]) -> PriceStore:
    store = PriceStore(root, offline=True)
    for symbol, frame in frames.items():
        store.write(symbol, frame, source="csv")
    return store


def test_a_200_session_average_is_available_from_the_first_session(tmp_path: Path) -> None:
    """The pad follows the declared warm-up (the old fixed 120 calendar days held about 80 sessions)."""
    frame = frame_on_sessions("XNYS", "2021-01-04", "2022-06-30", seed=5)
    store = _store(tmp_path, {"BABA": frame})
    loaded = load_with_warmup(store, "BABA", dt.date(2022, 3, 1), dt.date(2022, 6, 30), 200)
    assert int((loaded.index < pd.Timestamp("2022-03-01")).sum()) == 200
    ctx = RunContext(("BABA",), [], {"BABA": loaded}, "open", START, END)
    expected = frame.loc[: pd.Timestamp("2022-02-28"), "close"].iloc[-200:].mean()
    assert ctx.sma("BABA", pd.Timestamp("2022-03-01"), 200) == pytest.approx(expected, rel=1e-12)


def test_a_run_warns_naming_the_symbol_without_enough_history(tmp_path: Path) -> None:
    frames = {"BABA": frame_on_sessions("XNYS", "2022-01-03", "2022-06-30", seed=1),
              "JD": frame_on_sessions("XNYS", "2021-06-01", "2022-06-30", seed=2)}
    config = RunConfig(strategy="analyst_follow", params={"below_ma": 50}, symbols=("BABA", "JD"),
                       start=START, end=END, benchmark=None)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always", EvbtWarning)
        out = backtest.run(config, _store(tmp_path, frames), events=[])
    notes = [w for w in out.result.warnings if "warm-up" in w]
    assert len(notes) == 1
    assert notes[0].startswith("BABA: warm-up needs 50 sessions before 2022-03-01, the data has 39")


def test_warm_up_bars_are_never_traded(tmp_path: Path) -> None:
    frame = frame_on_sessions("XNYS", "2021-06-01", "2022-06-30", seed=3)
    config = RunConfig(strategy="buy_hold", params={}, symbols=("BABA",), start=START, end=END, benchmark=None)
    out = backtest.run(config, _store(tmp_path, {"BABA": frame}), events=[])
    assert out.result.equity.index[0] == pd.Timestamp("2022-03-01")
    assert [t.entry_date for t in out.result.trades] == ["2022-03-01"]
    assert not math.isnan(out.result.equity.iloc[-1])


class SizedProbe(Strategy):
    """Entries whose own weight comes from an indicator (RSI) read as of the entry session."""

    name = "sized_probe"

    def signals(self, ctx: StrategyContext) -> Iterable[Signal]:
        for ev in ctx.events:
            for symbol in ctx.symbols_for(ev):
                rsi = ctx.rsi(symbol, ctx.entry_session(ev, symbol), 5)
                if rsi is not None:
                    yield Signal(symbol=symbol, event=ev, hold=30, weight=0.01 + 0.04 * rsi / 100)


def _targets(rule: Strategy, frames: dict[str, pd.DataFrame], events: list[Event], fill: str,
             monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """(symbol, entry date, event, target value) of every entry the policy sizes (fast driver, no costs)."""
    from engine.execution import fast_driver, policy
    from engine.execution.sizing import entry_size as real
    from engine.plan.planner import build_plan

    seen: list[tuple] = []

    def recording(config, action, equity, price_base, lot_size):
        target, size = real(config, action, equity, price_base, lot_size)
        seen.append((action.symbol, action.date, action.event_id, round(target, 6)))
        return target, size

    monkeypatch.setattr(policy, "entry_size", recording)
    trading = {k: f.loc[pd.Timestamp(START):] for k, f in frames.items()}
    ctx = RunContext(SYMBOLS, events, frames, fill, START, END)
    plan = build_plan(rule, ctx, trading)
    config = RunConfig(strategy="probe", params={}, symbols=SYMBOLS, start=START, end=END, fill=fill,
                       benchmark=None, allow_margin=True, size=0.05, overlap="add")
    fast_driver.simulate(fast_driver.build_market(trading, list(SYMBOLS), None, None), config, plan)
    return seen


@SETTINGS
@given(scenarios(), st.sampled_from(["open", "close"]))
def test_prices_at_or_after_a_session_cannot_change_its_entry_size(s: dict, fill: str) -> None:
    """The size of an entry (its target value: equity known before the fill instant x weight) does not move when
    the symbol's prices at or after its session change; the share count is that value at the fill price."""
    weekly = [event(f"w{i}", (START + dt.timedelta(days=7 * i + 3)).isoformat()) for i in range(12)]
    events = s["events"] + weekly  # entries on held symbols: equity then includes their marks
    with pytest.MonkeyPatch.context() as monkeypatch:
        frames = _frames(s["seeds"])
        for rule in (SizedProbe(BaseParams()), Fade(FadeParams(rally=0.0, lookback=3))):
            base = _targets(rule, frames, events, fill, monkeypatch)
            sessions = sorted({date for sym, date, _, _ in base if sym == s["symbol"]})
            if not sessions:
                continue
            cut = sessions[s["cut"] % len(sessions)]
            perturbed = frames[s["symbol"]].copy()
            perturbed.loc[perturbed.index >= cut, ["open", "high", "low", "close", "adj_close", "volume"]] *= \
                s["factor"]
            after = _targets(rule, {**frames, s["symbol"]: perturbed}, events, fill, monkeypatch)
            # the symbol's entries up to its cut session, and every other entry dated before it (another venue's
            # session on the cut date may come after the cut session's prices, which it may then use)
            assert _known(after, cut, s["symbol"]) == _known(base, cut, s["symbol"]), rule.name


def _known(rows: list[tuple], cut: pd.Timestamp, symbol: str) -> list[tuple]:
    return [x for x in rows if x[1] < cut or (x[1] == cut and x[0] == symbol)]
