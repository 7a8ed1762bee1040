"""The vectorised planner gives the plans of the obvious build (tests/plan_reference.py, the planner as it was):
every planned action with every field (dates of the same type and unit), symbol order, skipped orders, events
used, notes and the entries' own exits; on generated universes and events (hypothesis), through both the
columnar path (``Strategy.signal_rows``) and the plain ``signals`` path, and on the sample and the real seed data.
A no-lookahead check on every planned fill, and the same check catching a plan whose fills come one session
early."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.events import timing
from engine.events.catalog import Event
from engine.plan.config import make_run_config
from engine.plan.context import EntrySessions, RunContext
from engine.plan.planner import PlacementMemo, Plan, build_plan_with_exits
from engine.plan.warmup import with_warmup
from engine.prices.store import PriceStore
from engine.sweeps import sweep
from engine.sweeps.evaluate import SweepCaches, plan_for
from strategies.base import Strategy
from strategies.registry import get_strategy
from tests.engine_helpers import frame_on_sessions
from tests.plan_reference import reference_plan

UNIVERSE = ("BABA", "JD", "PDD", "0700.HK", "9988.HK")
START, END = dt.date(2021, 3, 1), dt.date(2021, 11, 30)
TYPES = ("analyst_upgrade", "analyst_downgrade", "official_reassurance")
ZONES = ("America/New_York", "Asia/Hong_Kong", "Asia/Shanghai")


def assert_same_plans(got: Plan, want: Plan) -> None:
    """Equal plans, and beyond ``==``: symbol order, each action's fields in order, dates' type and unit."""
    assert got == want
    assert list(got.actions) == list(want.actions)
    for symbol, actions in want.actions.items():
        for a, b in zip(got.actions[symbol], actions, strict=True):
            assert vars(a) == vars(b) and list(vars(a)) == list(vars(b))
            assert type(a.date) is type(b.date) and a.date.unit == b.date.unit, (a, b)


def _frames(draw: Any) -> dict[str, pd.DataFrame]:
    """History frames (from before the start) on each symbol's real sessions, some bars stale, some listings
    late or ending early."""
    symbols = draw(st.lists(st.sampled_from(UNIVERSE), min_size=1, max_size=4, unique=True))
    frames: dict[str, pd.DataFrame] = {}
    for k, symbol in enumerate(symbols):
        exchange = timing.exchange_of(symbol)
        first = dt.date(2021, 1, 4) + dt.timedelta(days=draw(st.integers(0, 150)))
        last = dt.date(2021, 12, 30) - dt.timedelta(days=draw(st.integers(0, 60)))
        frame = frame_on_sessions(exchange, str(first), str(last), seed=k)
        stale = np.random.default_rng(draw(st.integers(0, 99))).random(len(frame)) < draw(st.sampled_from((0, .1)))
        frame["stale"] = stale
        frames[symbol] = frame
    return frames


@st.composite
def scenarios(draw: Any) -> tuple[dict[str, pd.DataFrame], list[Event], str]:
    frames = _frames(draw)
    events = []
    for k in range(draw(st.integers(0, 25))):
        day = dt.date(2021, 2, 20) + dt.timedelta(days=draw(st.integers(0, 320)))
        symbols = tuple(draw(st.lists(st.sampled_from((*UNIVERSE, "NTES")), min_size=1, max_size=2, unique=True)))
        clock = draw(st.sampled_from((None, dt.time(8, 0), dt.time(12, 30), dt.time(17, 0))))
        events.append(Event(
            id=f"e{k}", date=day, tz=draw(st.sampled_from(ZONES)), time=clock, session_hint=None, market=None,
            type=draw(st.sampled_from(TYPES)), scope="single", symbols=symbols, description="generated",
            source="test", confidence="high", firm=draw(st.sampled_from((None, "Acme", "Borealis")))))
    return frames, events, draw(st.sampled_from(("open", "close")))


PARAMS = st.one_of(
    st.builds(lambda hold, short, ma, firms: ("analyst_follow", {"hold": hold, "short_downgrades": short,
                                                                 "below_ma": ma, "firms": firms}),
              st.integers(1, 30), st.booleans(), st.sampled_from((0, 2, 5)), st.sampled_from(((), ("acme",)))),
    st.builds(lambda hold: ("event_hold", {"hold": hold, "types": ("analyst_upgrade", "official_reassurance")}),
              st.integers(1, 10)),
    st.just(("fade", {"rally": 0.0, "lookback": 3})),
    st.just(("capitulation", {"fall": 0.001})),
    st.just(("buy_hold", {})),
    st.just(("reassurance", {})),
)


def _plans(name: str, values: dict[str, Any], frames: dict[str, pd.DataFrame], events: list[Event],
           fill: str) -> tuple[tuple[Plan, dict], tuple[Plan, dict], tuple[Plan, dict]]:
    """(columnar path, plain signals path, reference) of one strategy on history ``frames``."""
    cls = get_strategy(name)
    params = cls.Params(**values)
    trading = {s: f.loc[pd.Timestamp(START):pd.Timestamp(END)] for s, f in frames.items()}
    trading = {s: f for s, f in trading.items() if len(f)}
    history = {s: with_warmup(frames[s], s, START, cls(params).warmup())[0] for s in trading}

    def context() -> RunContext:
        return RunContext(tuple(trading), events, history, fill, START, END)

    fast = build_plan_with_exits(cls(params), context(), trading, PlacementMemo())
    plain_rule = cls(params)
    plain_rule.signal_rows = lambda ctx: None  # type: ignore[method-assign]
    plain = build_plan_with_exits(plain_rule, context(), trading, PlacementMemo())
    return fast, plain, reference_plan(cls(params), context(), trading)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), PARAMS)
def test_plans_equal_the_reference_build_on_generated_universes(scenario: Any, strategy: Any) -> None:
    frames, events, fill = scenario
    name, values = strategy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast, plain, want = _plans(name, values, frames, events, fill)
    # the reference predates the unknown-firm note: both paths must give it exactly when no analyst event of the
    # run names the firm asked for, and otherwise the reference's notes
    firm_notes = [n for n in fast[0].notes if "firms=" in n]
    named = {e.firm.lower() for e in events if e.firm and e.type in ("analyst_upgrade", "analyst_downgrade")}
    asked = values.get("firms", ())
    assert len(firm_notes) == (name == "analyst_follow" and any(f not in named for f in asked))
    for got in (fast, plain):
        assert got[0].notes == want[0].notes + firm_notes
        assert_same_plans(dataclasses.replace(got[0], notes=want[0].notes), want[0])
        assert got[1] == want[1]  # each planned entry's own exits, by seq
    assert _lookahead_problems(fast[0], events, fill) == []


def test_the_columnar_path_is_the_one_taken_and_covers_each_branch() -> None:
    """analyst_follow plans through signal_rows (not signals) with skips before the first bar, after the last
    bar, a symbol of two exchanges, a short on a downgrade and an average filter; equal to the reference."""
    frames = {"BABA": frame_on_sessions("XNYS", "2021-01-04", "2021-10-29", seed=1),
              "0700.HK": frame_on_sessions("XHKG", "2021-05-03", "2021-12-30", seed=2)}
    events = [Event(id=f"r{k}", date=dt.date.fromisoformat(day), tz="America/New_York", time=None, session_hint=None,
                    market=None, type=kind, scope="single", symbols=("BABA", "0700.HK"), description="d",
                    source="s", confidence="high")
              for k, (day, kind) in enumerate([("2021-03-10", "analyst_upgrade"), ("2021-04-06", "analyst_downgrade"),
                                               ("2021-06-15", "analyst_upgrade"), ("2021-11-10", "analyst_upgrade")])]
    cls = get_strategy("analyst_follow")
    asked: list[str] = []

    def no_signals(ctx: Any) -> Any:
        asked.append("signals")
        return iter(())

    for below_ma in (0, 5):
        values = {"hold": 7, "short_downgrades": True, "below_ma": below_ma}
        fast, plain, want = _plans("analyst_follow", values, frames, events, "open")
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(cls, "signals", no_signals)
            trading = {s: f.loc[pd.Timestamp(START):pd.Timestamp(END)] for s, f in frames.items()}
            ctx = RunContext(tuple(trading), events, frames, "open", START, END)
            plan, _ = build_plan_with_exits(cls(cls.Params(**values)), ctx, trading)
        assert asked == []  # the columnar path answered
        assert_same_plans(plan, want[0])
        assert_same_plans(fast[0], want[0]) and assert_same_plans(plain[0], want[0])
    reasons = {o.reason for o in want[0].skipped}
    assert reasons == {"fill session before the symbol's first bar in the run",
                       "entry session after the last bar of the run"}
    assert {a.side for acts in want[0].actions.values() for a in acts} == {"long", "short"}


def _lookahead_problems(plan: Plan, events: list[Event], fill: str) -> list[str]:
    """Planned event fills whose bar's session opens (fill=open) or closes (fill=close) at or before the
    instant the event became public: each is a trade on news not yet known."""
    known = {e.id: timing.known_at(e) for e in events}
    problems = []
    for symbol, actions in plan.actions.items():
        exchange = timing.exchange_of(symbol)
        for a in actions:
            if a.event_id in known:
                opens, closes = timing.session_bounds(exchange, a.date)
                if (opens if fill == "open" else closes) <= known[a.event_id]:
                    problems.append(f"{symbol} {a.event_id} fills {a.date.date()} before it is known")
    return problems


def test_a_fill_one_session_early_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Break the rule on purpose: entry sessions one session early (the vectorised table's). The no-lookahead
    check names the fills, and the plan no longer equals the reference build."""
    frames = {"BABA": frame_on_sessions("XNYS", "2021-01-04", "2021-12-30", seed=3)}
    events = [Event(id=f"u{k}", date=dt.date(2021, 4, 1) + dt.timedelta(days=9 * k), tz="America/New_York",
                    time=None, session_hint=None, market=None, type="analyst_upgrade", scope="single",
                    symbols=("BABA",), description="d", source="s", confidence="high") for k in range(6)]
    honest, _, want = _plans("analyst_follow", {"hold": 5}, frames, events, "open")
    assert_same_plans(honest[0], want[0]) and _lookahead_problems(honest[0], events, "open") == []
    real_values = EntrySessions.values

    def one_session_early(self: EntrySessions, exchange: str, symbol: str) -> np.ndarray | None:
        values = real_values(self, exchange, symbol)
        sessions = timing.sessions(exchange, "2020-12-01", "2022-01-31").to_numpy().astype("datetime64[ns]")
        return None if values is None else sessions[np.searchsorted(sessions, values) - 1]

    monkeypatch.setattr(EntrySessions, "values", one_session_early)
    early, _, _ = _plans("analyst_follow", {"hold": 5}, frames, events, "open")
    assert len(_lookahead_problems(early[0], events, "open")) == len(events)
    assert early[0] != want[0]


@pytest.mark.parametrize(("strategy", "values"), [("analyst_follow", {"short_downgrades": True}),
                                                  ("analyst_follow", {"below_ma": 20}),
                                                  ("event_hold", {"types": ("analyst_upgrade",)})])
def test_sweep_plans_equal_the_reference_on_the_sample(sample_cache: Path, strategy: str,
                                                       values: dict[str, Any]) -> None:
    _check_sweep_against_reference(PriceStore(sample_cache, offline=True), strategy, values,
                                   {"symbols": "BABA,JD,PDD,0700.HK,9988.HK,3690.HK", "end": "2022-12-30"})


SEED = ["BABA", "JD", "NTES", "BIDU", "TCEHY", "PDD", "BILI",
        "0700.HK", "9988.HK", "3690.HK", "9618.HK", "9999.HK", "9888.HK", "1024.HK"]  # fmt: skip


@pytest.mark.parametrize("values", [{"short_downgrades": True}, {"below_ma": 10, "hold": 3}])
def test_sweep_plans_equal_the_reference_on_the_real_seed_data(real_import: Any, values: dict[str, Any]) -> None:
    """Real seed prices with the curated calendar: analyst events naming a US and a Hong Kong line."""
    cache = real_import(SEED)
    plans = _check_sweep_against_reference(PriceStore(cache, offline=True), "analyst_follow", values, {})
    assert any(s.endswith(".HK") for s in plans[0].actions) and any("." not in s for s in plans[0].actions)


def _check_sweep_against_reference(store: PriceStore, strategy: str, values: dict[str, Any],
                                   options: dict[str, Any]) -> tuple[Plan, ...]:
    cls = get_strategy(strategy)
    config = make_run_config(strategy, (), options, None, cls.default_symbols, cls.Params)
    window = sweep.Window("full", config.start, config.end)
    plans = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = sweep.load_sweep_data(store, config, [window])
        caches = SweepCaches()
        wctx = caches.context(data, window)
        period = [e for e in data.events if window.start - dt.timedelta(days=7) <= e.date <= window.end]
        for fill, hold in itertools.product(("open", "close"), (2, 9)):
            point = dataclasses.replace(config, fill=fill, params={**config.params, **values, "hold": hold})
            params = caches.typed_params(strategy, point.params)
            got = plan_for(data, wctx, point, params)
            rule: Strategy = cls(params)
            history = {s: with_warmup(h, s, window.start, rule.warmup())[0] for s, h in wctx.history.items()}
            ctx = RunContext(tuple(wctx.frames), period, history, fill, window.start, window.end)
            want, _ = reference_plan(rule, ctx, wctx.frames)
            assert_same_plans(got, want)
            assert got.actions and _lookahead_problems(got, period, fill) == []
            plans.append(got)
    return tuple(plans)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.dates(dt.date(2015, 1, 1), dt.date(2024, 12, 31)),
                          st.sampled_from(("America/New_York", "Asia/Hong_Kong", "America/Sao_Paulo", "Europe/London",
                                           "America/Havana")),
                          st.sampled_from((None, dt.time(9, 15)))), max_size=12))
def test_known_at_values_are_known_at(rows: list[tuple[dt.date, str, dt.time | None]]) -> None:
    """Vectorised known-at instants equal the scalar rule, also where a zone skips or repeats midnight."""
    events = [Event(id=f"k{k}", date=day, tz=tz, time=clock, session_hint=None, market=None, type="x",
                    scope="single", symbols=("BABA",), description="d", source="s", confidence="high")
              for k, (day, tz, clock) in enumerate(rows)]
    want = [np.datetime64(timing.known_at(e).tz_convert("UTC").tz_localize(None).as_unit("ns")) for e in events]
    assert timing.known_at_values(events).tolist() == np.array(want, dtype="datetime64[ns]").tolist()


def test_known_at_values_on_a_midnight_the_zone_skips() -> None:
    """Sao Paulo moved its clocks from 00:00 to 01:00 on 2018-11-04: the end of 2018-11-03 goes through known_at."""
    event = Event(id="sp", date=dt.date(2018, 11, 3), tz="America/Sao_Paulo", time=None, session_hint=None,
                  market=None, type="x", scope="single", symbols=("BABA",), description="d", source="s",
                  confidence="high")
    assert timing.known_at_values([event])[0] == np.datetime64(
        timing.known_at(event).tz_convert("UTC").tz_localize(None).as_unit("ns"))


def test_a_subclass_of_a_built_in_plans_through_its_signals() -> None:
    """A subclass changing a helper its inherited ``signals`` calls (not ``signal_rows``) gets that rule."""
    from strategies.analyst_follow import AnalystFollow

    class NoTrend(AnalystFollow):
        def _trend_ok(self, ctx: Any, symbol: str, session: pd.Timestamp) -> bool:
            return False

    frames = {"BABA": frame_on_sessions("XNYS", "2021-01-04", "2021-12-30", seed=4)}
    events = [Event(id=f"n{k}", date=dt.date(2021, 4, 1) + dt.timedelta(days=9 * k), tz="America/New_York",
                    time=None, session_hint=None, market=None, type="analyst_upgrade", scope="single",
                    symbols=("BABA",), description="d", source="s", confidence="high") for k in range(4)]
    trading = {s: f.loc[pd.Timestamp(START):pd.Timestamp(END)] for s, f in frames.items()}
    ctx = RunContext(tuple(trading), events, frames, "open", START, END)
    assert build_plan_with_exits(NoTrend(), ctx, trading)[0].actions == {}
    assert len(build_plan_with_exits(AnalystFollow(), ctx, trading)[0].actions["BABA"]) == 4
