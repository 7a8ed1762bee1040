"""Plans derived across exit parameters (engine.plan.reuse, Strategy.exit_params) equal fresh builds: the same
actions (bars, order, hold, exits), skipped orders, events used and notes; undeclared or wrongly declared
strategies plan every point afresh. Also the RunContext memos a sweep's points share."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from engine.errors import ConfigError
from engine.events import timing
from engine.events.catalog import symbols_for
from engine.plan.config import make_run_config
from engine.plan.planner import NO_EXITS, PlacementMemo, Plan, RunContext, build_plan, build_plan_with_exits
from engine.plan.reuse import PlanTemplate, declared_exit_params
from engine.plan.warmup import with_warmup
from engine.prices.store import PriceStore
from engine.sweeps import sweep
from engine.sweeps.evaluate import SweepCaches, plan_for
from strategies.base import BaseParams, Exits, Signal, Strategy, StrategyContext
from strategies.registry import get_strategy
from tests.engine_helpers import event, frame_on_sessions

SAMPLE_SYMBOLS = "BABA,JD,PDD,0700.HK,9988.HK,3690.HK"

# (strategy, fixed parameters): the built-ins that declare exit_params, with signals on the sample
BUILT_INS = [("reassurance", {}), ("event_hold", {}), ("analyst_follow", {"short_downgrades": True}),
             ("analyst_follow", {"below_ma": 20}), ("fade", {"rally": 0.02}), ("capitulation", {"fall": 0.05}),
             ("buy_hold", {}), ("fade", {"rally": 0.9})]  # the last: no signal, a note
GUARDS = [{}, {"stop_loss": 0.05}, {"trailing_stop": 0.1, "take_profit": 0.2}]


def _fresh(data: sweep.SweepData, window: sweep.Window, cls: type[Strategy], fill: str, params: Any) -> Plan:
    """The plan as `evbt run` builds it: a new context, no memo shared with anything."""
    rule = cls(params)
    wctx = sweep.window_context(data, window)
    period = [e for e in data.events if window.start - dt.timedelta(days=7) <= e.date <= window.end]
    history = {s: with_warmup(h, s, window.start, rule.warmup())[0] for s, h in wctx.history.items()}
    ctx = RunContext(tuple(wctx.frames), period, history, fill, window.start, window.end)
    return build_plan(rule, ctx, wctx.frames)


def _entries(plan: Plan) -> list[Any]:
    return [a for actions in plan.actions.values() for a in actions if a.action == "enter"]


@pytest.mark.parametrize(("strategy", "fixed"), BUILT_INS)
def test_built_in_plans_across_a_hold_and_guard_grid_equal_fresh_builds(sample_cache: Path, strategy: str,
                                                                         fixed: dict[str, Any]) -> None:
    cls = get_strategy(strategy)
    store = PriceStore(sample_cache, offline=True)
    config = make_run_config(strategy, (), {"symbols": SAMPLE_SYMBOLS, "end": "2022-12-30"}, None,
                             cls.default_symbols, cls.Params)
    window = sweep.Window("full", config.start, config.end)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = sweep.load_sweep_data(store, config, [window])
        caches = SweepCaches()
        wctx = caches.context(data, window)
        holds = [{"hold": h} for h in (1, 3, 20, 3)] if "hold" in cls.exit_params else [{}]
        for fill, hold, guards in itertools.product(("open", "close"), holds, GUARDS):
            values = {**config.params, **fixed, **hold, **guards}
            point = dataclasses.replace(config, fill=fill, params=values)
            params = caches.typed_params(strategy, values)
            got = plan_for(data, wctx, point, params)
            want = _fresh(data, window, cls, fill, params)
            assert got == want, (fill, values)
            assert list(got.actions) == list(want.actions)  # symbol order too
            assert all(a.hold == getattr(params, "hold", None) for a in _entries(got))
            assert all(a.exits.stop_loss == params.stop_loss and a.exits.trailing_stop == params.trailing_stop
                       for a in _entries(got))
    # one template per fill: every other point of the grid was derived, not planned
    assert len(wctx.templates) == 2 and all(t is not None for t in wctx.templates.values())
    # the sample gives every case entries (else the grid compared empty plans), the last one a note
    assert bool(_entries(got)) != bool(got.notes)


# ---------------------------------------------------------------- rules written for these tests

@dataclasses.dataclass(frozen=True)
class _HoldParams(BaseParams):
    hold: int = 5


class _Guarded(Strategy):
    """Entries with their own exit rules (a take-profit of their own, an exit on downgrades); exits on events."""

    name = "guarded"
    Params = _HoldParams
    exit_params = ("hold", "stop_loss", "take_profit", "trailing_stop")

    def signals(self, ctx: StrategyContext) -> Iterable[Signal]:
        own = Exits(take_profit=0.3, on_events=("analyst_downgrade",))
        for n, ev in enumerate(ctx.events_of("analyst_upgrade", "analyst_downgrade")):
            for symbol in ctx.symbols_for(ev):
                if ev.type == "analyst_downgrade":
                    yield Signal(symbol=symbol, event=ev, action="exit")
                else:
                    yield Signal(symbol=symbol, event=ev, hold=self.params.hold, exits=own if n % 2 else None)


class _ReadsHold(Strategy):
    """Reads hold to choose events: no declaration, so nothing is reused."""

    name = "reads_hold"
    Params = _HoldParams

    def signals(self, ctx: StrategyContext) -> Iterable[Signal]:
        for n, ev in enumerate(ctx.events_of("analyst_upgrade")):
            if n % self.params.hold == 0:
                for symbol in ctx.symbols_for(ev):
                    yield Signal(symbol=symbol, event=ev, hold=self.params.hold)


class _DoublesHold(_ReadsHold):
    """Declares hold but holds twice as long: the template check refuses it."""

    name = "doubles_hold"
    exit_params = ("hold",)

    def signals(self, ctx: StrategyContext) -> Iterable[Signal]:
        for ev in ctx.events_of("analyst_upgrade"):
            for symbol in ctx.symbols_for(ev):
                yield Signal(symbol=symbol, event=ev, hold=2 * self.params.hold)


def _analyst_context() -> tuple[RunContext, dict[str, Any]]:
    frames = {s: frame_on_sessions(timing.exchange_of(s), "2022-01-03", "2022-12-30", seed=k)
              for k, s in enumerate(("BABA", "0700.HK"))}
    events = []
    for k in range(24):
        day = dt.date(2022, 1, 10) + dt.timedelta(days=13 * k)
        kind = "analyst_downgrade" if k % 3 == 2 else "analyst_upgrade"
        events.append(event(f"e{k}", day.isoformat(), symbols=(("BABA", "0700.HK")[k % 2],), scope="single",
                            etype=kind, tz="America/New_York"))
    events.append(event("late", "2023-03-01", symbols=("BABA",), scope="single", etype="analyst_upgrade",
                        tz="America/New_York"))  # after the last bar: a skipped order
    return RunContext(tuple(frames), events, frames, "open", dt.date(2022, 1, 3), dt.date(2022, 12, 30)), frames


def test_own_exit_rules_are_refilled_for_each_points_guards() -> None:
    ctx, frames = _analyst_context()
    first = _Guarded(_HoldParams(hold=4))
    plan, own = build_plan_with_exits(first, ctx, frames, PlacementMemo())
    template = PlanTemplate.of(plan, own, first.params, _Guarded.exit_params)
    assert template is not None and len(template.owns) == 2 and plan.skipped
    for hold, stop, take, trail in itertools.product((1, 4, 9), (None, 0.05), (None, 0.1), (None, 0.2)):
        params = _HoldParams(hold=hold, stop_loss=stop, take_profit=take, trailing_stop=trail)
        derived = template.derive(params)
        assert derived == build_plan(_Guarded(params), ctx, frames), params
        entries = _entries(derived)
        assert {a.exits.take_profit for a in entries} == {0.3, take}  # the signal's own value wins over the run's
        assert {a.exits.stop_loss for a in entries} == {stop} and {a.hold for a in entries} == {hold}
        assert any(a.action == "event_exit" for acts in derived.actions.values() for a in acts)
    assert template.derive(first.params) == plan and plan.actions["BABA"][0].exits is not NO_EXITS


def test_a_declared_hold_the_entries_do_not_hold_gives_no_template() -> None:
    ctx, frames = _analyst_context()
    rule = _DoublesHold(_HoldParams(hold=3))
    plan, own = build_plan_with_exits(rule, ctx, frames)
    assert _entries(plan) and PlanTemplate.of(plan, own, rule.params, ("hold",)) is None


@pytest.mark.parametrize("cls", [_ReadsHold, _DoublesHold])
def test_undeclared_or_wrongly_declared_rules_plan_every_point_afresh(sample_cache: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      cls: type[Strategy]) -> None:
    import engine.sweeps.evaluate as evaluate

    monkeypatch.setattr(evaluate, "get_strategy", lambda name: cls)
    store = PriceStore(sample_cache, offline=True)
    config = make_run_config("analyst_follow", (), {"symbols": SAMPLE_SYMBOLS, "end": "2022-12-30"}, None, (),
                             get_strategy("analyst_follow").Params)
    window = sweep.Window("full", config.start, config.end)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = sweep.load_sweep_data(store, config, [window])
        wctx = SweepCaches().context(data, window)
        plans = []
        for hold in (1, 2, 3):
            params = _HoldParams(hold=hold)
            got = plan_for(data, wctx, dataclasses.replace(config, params={"hold": hold}), params)
            assert got == _fresh(data, window, cls, "open", params), hold
            plans.append(got)
    assert len({len(_entries(p)) for p in plans}) == (3 if cls is _ReadsHold else 1)  # hold changed the signals
    assert list(wctx.templates.values()) == ([] if cls is _ReadsHold else [None])


def test_exit_params_must_name_exit_parameters_of_the_rule() -> None:
    assert declared_exit_params(get_strategy("analyst_follow")) == ("hold", "stop_loss", "take_profit",
                                                                    "trailing_stop")
    assert declared_exit_params(_ReadsHold) == ()  # the default: nothing reused
    follow = get_strategy("analyst_follow")
    rewritten = type("Rewritten", (follow,), {"signals": lambda self, ctx: iter(())})
    assert declared_exit_params(rewritten) == ()  # inherited past new signals: promises nothing
    renamed = type("Renamed", (follow,), {"name": "renamed"})
    assert declared_exit_params(renamed) == follow.exit_params  # same signals: the promise still holds
    with pytest.raises(ConfigError, match="names 'lookback', not an exit parameter"):
        declared_exit_params(type("Bad", (_ReadsHold,), {"name": "bad", "exit_params": ("hold", "lookback")}))
    with pytest.raises(ConfigError, match="names 'hold', not"):  # buy_hold's Params has no hold
        declared_exit_params(type("NoHold", (get_strategy("buy_hold"),), {"exit_params": ("hold",)}))


def test_a_user_file_with_a_wrong_exit_params_is_refused_when_loaded(tmp_path: Path) -> None:
    from strategies.registry import load_file

    rule = tmp_path / "my_rule.py"
    rule.write_text("from strategies.base import Strategy\n\n\nclass MyRule(Strategy):\n"
                    "    exit_params = ('stop_loss', 'hold')\n\n    def signals(self, ctx):\n        return []\n")
    with pytest.raises(ConfigError, match=r"my_rule\.py: exit_params names 'hold', not an exit parameter"):
        load_file(rule)


# ---------------------------------------------------------------- the context's memos

def test_context_memos_answer_as_the_plain_rules_and_hand_out_new_lists() -> None:
    frames = {s: frame_on_sessions(timing.exchange_of(s), "2022-01-03", "2022-06-30") for s in ("BABA", "JD")}
    universe = ("JD", "PDD", "BABA")  # PDD has no prices
    events = [event("all", "2022-02-01"), event("two", "2022-02-02", symbols=("BABA", "JD", "PDD")),
              event("one", "2022-02-03", symbols=("BABA",), scope="single"),
              event("none", "2022-02-04", symbols=("PDD",), scope="single"),
              event("up", "2022-02-07", symbols=("JD",), scope="single", etype="analyst_upgrade")]
    ctx = RunContext(universe, events, frames, "open", dt.date(2022, 1, 3), dt.date(2022, 6, 30))
    for _ in range(2):
        for ev in events:
            got = ctx.symbols_for(ev)
            assert got == [s for s in symbols_for(ev, universe) if s in frames], ev.id
            got.append("XXX")  # the caller's list: the next answer is not changed
    assert [e.id for e in ctx.events_of("analyst_upgrade")] == ["up"]
    ctx.events_of("official_reassurance").clear()
    assert [e.id for e in ctx.events_of("official_reassurance")] == ["all", "two", "one", "none"]
    assert [e.id for e in ctx.events_of()] == [e.id for e in events]

    shorter = {s: f.iloc[10:] for s, f in frames.items()}
    other = ctx.with_frames(shorter)
    fresh = RunContext(universe, events, shorter, "open", dt.date(2022, 1, 3), dt.date(2022, 6, 30))
    for ev in events:
        assert other.symbols_for(ev) == fresh.symbols_for(ev)
        for symbol in frames:
            assert other.entry_session(ev, symbol) == fresh.entry_session(ev, symbol) == ctx.entry_session(ev,
                                                                                                           symbol)
    assert other._session_cache is ctx._session_cache  # asked once for every warm-up
    session = pd.Timestamp("2022-02-01")
    assert other.history("BABA", session).index[0] == shorter["BABA"].index[0]  # its own price views
    assert ctx.history("BABA", session).index[0] == frames["BABA"].index[0]
    assert other.first_session("BABA") == fresh.first_session("BABA")
