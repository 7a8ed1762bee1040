"""The execution arrays at scale give exactly what the plain rules give: numpy-only books, sizing marks, the
plan's agenda (visits per tick), the curve summed book by book, records-free sweep trades, and the sweep's
history cut without index hash tables."""

from __future__ import annotations

import dataclasses
import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.execution.agenda import PlanActions, build_agenda
from engine.execution.books import Market, build_market
from engine.execution.policy import Fill, Policy
from engine.market.costs import Fees
from engine.plan.config import make_run_config
from engine.plan.planner import Plan, PlannedAction
from engine.prices.store import PriceStore
from engine.sweeps import sweep
from strategies.registry import get_strategy
from tests.engine_helpers import frame_on_sessions

SYMBOLS = ("BABA", "0700.HK", "JD")


def _market(stale_every: int = 0, nan_close: str | None = None) -> Market:
    frames = {
        "BABA": frame_on_sessions("XNYS", "2022-01-03", "2022-06-30", seed=1),
        "0700.HK": frame_on_sessions("XHKG", "2022-01-03", "2022-06-30", seed=2, base=300.0),
        "JD": frame_on_sessions("XNYS", "2022-02-01", "2022-05-31", seed=3, base=60.0),
    }
    if stale_every:
        for frame in frames.values():
            frame.iloc[3::stale_every, frame.columns.get_loc("stale")] = True
    if nan_close:
        frame = frames[nan_close]
        frame.iloc[10, frame.columns.get_loc("close")] = np.nan
    return build_market(frames, list(SYMBOLS), None, None)


def _config(**options):
    cls = get_strategy("event_hold")
    options.setdefault("symbols", ",".join(SYMBOLS))
    options.setdefault("start", "2022-01-03")
    options.setdefault("end", "2022-06-30")
    return make_run_config("event_hold", (), options, None, cls.default_symbols, cls.Params)


def _action(symbol: str, bar: int, action: str, seq: int, side: str = "long") -> PlannedAction:
    return PlannedAction(symbol, bar, pd.Timestamp("2022-01-03"), action, side, 5, f"e{seq}", "official_reassurance",
                         None, 1, None, seq)


def test_books_are_numpy_only_and_base_listings_share_their_prices() -> None:
    market = _market()
    for book in market.books:
        for name in ("open", "close", "stale", "fx", "open_base", "close_base", "next_tradable", "session"):
            assert isinstance(getattr(book, name), np.ndarray), (book.symbol, name)
        assert not [f.name for f in dataclasses.fields(book) if isinstance(getattr(book, f.name), list)]
    baba, hk = market.books[0], market.books[1]
    assert baba.open_base is baba.open and baba.fx.strides == (0,) and baba.fx.item(5) == 1.0
    assert hk.fx.item(0) == 7.8 and hk.close_base.item(4) == hk.close.item(4) / 7.8  # the HKD peg
    assert baba.fill_price(2, "open") == baba.open[2] and type(baba.fill_price(2, "close")) is float


@pytest.mark.parametrize("fill", ["open", "close"])
def test_sizing_marks_are_the_latest_close_strictly_before_each_tick(fill: str) -> None:
    market = _market()
    marks = market.sizing_marks(fill)
    instants = market.clock(fill).instants.tolist()
    assert marks.shape == (len(instants), len(market.books))
    for k, book in enumerate(market.books):
        closes, close_at = book.close_base.tolist(), book.close_at.tolist()
        for t, instant in enumerate(instants):
            before = [c for c, at in zip(closes, close_at, strict=True) if at < instant]
            want = before[-1] if before else book.open_base.item(0)
            assert marks[t, k] == want == book.mark(instant), (book.symbol, t)


@pytest.mark.parametrize("fill", ["open", "close"])
def test_agenda_equals_the_per_bar_grouping(fill: str) -> None:
    market = _market(stale_every=7)
    rng = np.random.default_rng(5)
    actions: dict[str, list[PlannedAction]] = {}
    seq = 0
    for book in market.books:
        for bar in sorted(rng.choice(len(book.dates), 40, replace=False).tolist()):
            for kind in rng.choice(["enter", "exit", "event_exit", "enter"], rng.integers(1, 4)).tolist():
                actions.setdefault(book.symbol, []).append(_action(book.symbol, bar, kind, seq))
                seq += 1
    plan = Plan(actions, [], [])
    flat = PlanActions.of(market, plan).flat
    got = build_agenda(market, PlanActions.of(market, plan), fill)
    # the rule as the policy first wrote it: per book, per bar, actions in plan order; stale bars never fill
    clock = market.clock(fill)
    by_tick: dict[int, list[tuple[int, int, list[PlannedAction]]]] = {}
    for k, book in enumerate(market.books):
        per_bar: dict[int, list[PlannedAction]] = {}
        for a in actions.get(book.symbol, []):
            per_bar.setdefault(a.bar, []).append(a)
        for bar, acts in per_bar.items():
            if not book.stale[bar]:
                by_tick.setdefault(int(clock.tick_of[k][bar]), []).append((k, bar, acts))
    assert got.ticks == sorted(by_tick)
    for t, visits, entering in zip(got.ticks, got.visits, got.entering, strict=True):
        want = sorted(by_tick[t], key=lambda v: v[0])
        assert [(k, bar) for k, bar, _, _ in visits] == [(k, bar) for k, bar, _ in want]
        for (_, _, enters, others), (_, _, acts) in zip(visits, want, strict=True):
            assert [flat[j] for j in enters] == [a for a in acts if a.action == "enter"]
            assert [flat[j] for j in others] == [a for a in acts if a.action != "enter"]
        assert entering == any(enters for _, _, enters, _ in visits)
    assert len(got.ticks) < sum(len(a) for a in actions.values())  # several actions share a tick
    # another hold on the same bars: the same agenda, pointing into that plan's own actions
    longer = Plan({s: [dataclasses.replace(a, hold=9) for a in acts] for s, acts in actions.items()}, [], [])
    (first, _), (again, longer_flat) = market.agenda(plan, fill), market.agenda(longer, fill)
    assert first is again and first == got and {a.hold for a in longer_flat} == {9}
    moved = Plan({**actions, "JD": [dataclasses.replace(a, bar=a.bar // 2) for a in actions["JD"]]}, [], [])
    assert market.agenda(moved, fill)[0] is not first


def _dense_curve(policy: Policy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The curve as a (books x points) matrix, the way it was first written."""
    market = policy.market
    n = market.n_points
    d_cash, d_pos = np.zeros(n), np.zeros((len(market.books), n))
    close_u = np.zeros((len(market.books), n))
    for k, book in enumerate(market.books):
        last = np.searchsorted(book.close_at, market.point_at, side="right") - 1
        close_u[k] = np.where(last >= 0, book.close_base[np.maximum(last, 0)], 0.0)
    points = np.searchsorted(market.point_at, policy.clock.instants[[f.tick for f in policy.fills]], side="left")
    for f, p in zip(policy.fills, points.tolist(), strict=True):
        d_cash[p] += f.cash_delta
        d_pos[f.book, p] += f.signed
    cash = policy.config.cash + np.cumsum(d_cash)
    marked = np.cumsum(d_pos, axis=1) * close_u
    equity = cash + marked.sum(axis=0)
    gross = np.abs(marked).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        exposure = np.where(equity != 0, gross / np.where(equity != 0, equity, 1.0), 0.0)
    return equity, cash, exposure


def _random_fills(policy: Policy, rng: np.random.Generator, books: list[int]) -> None:
    """Round trips (long and short) on ``books`` at random bars, booked as the policy books them."""
    clock = policy.clock
    for k in books:
        book = policy.market.books[k]
        bars = sorted(rng.choice(len(book.dates), 8, replace=False).tolist())
        for j, bar in enumerate(bars[:-1] if k % 2 else bars):  # odd books keep a position open at the end
            signed = int(rng.integers(1, 50)) * (1 if j % 2 == 0 else -1) * (-1 if k == books[0] else 1)
            price = book.fill_price(bar, policy.fill)
            fill = Fill(clock.tick_of[k].item(bar), k, bar, signed, price, price / book.fx.item(bar),
                        Fees({"commission": 1.5}), "entry")
            policy._book_fill(fill)
    policy.fills.sort(key=lambda f: f.tick)


@pytest.mark.parametrize("nan_close", [None, "JD"])
def test_curve_book_by_book_equals_the_full_matrix(nan_close: str | None) -> None:
    market = _market(nan_close=nan_close)
    rng = np.random.default_rng(11)
    for traded in ([0, 1, 2], [1], [0, 1]):  # with a NaN close on JD, the last one never trades it
        policy = Policy(market, _config(), Plan({}, [], []))
        _random_fills(policy, rng, traded)
        got, want = policy.curve(), _dense_curve(policy)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)  # float for float (NaN where NaN)
        if nan_close:
            assert np.isnan(got[0]).any()  # 0 x NaN is NaN: an untraded book's bad close still shows


def test_sweep_trades_without_records_differ_only_in_their_texts(sample_cache: Path) -> None:
    store = PriceStore(sample_cache, offline=True)
    cls = get_strategy("reassurance")
    config = make_run_config("reassurance", ("hold=6", "stop_loss=0.05"),
                             {"symbols": "BABA,JD,PDD,0700.HK,9988.HK,3690.HK", "end": "2022-12-30"}, None,
                             cls.default_symbols, cls.Params)
    window = sweep.Window("full", config.start, config.end)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = sweep.load_sweep_data(store, config, [window])
        caches = sweep.SweepCaches()
        full = sweep.evaluate(data, window, config, records=True, caches=caches)
        lean = sweep.evaluate(data, window, config, records=False, caches=caches)
    texts = {"entry_at": None, "exit_at": None, "entry_fee_items": "", "exit_fee_items": None,
             "benchmark_return": None}
    assert len(full.trades) == len(lean.trades) > 5
    for a, b in zip(full.trades, lean.trades, strict=True):
        assert dataclasses.replace(a, **texts) == b
    assert full.metrics == lean.metrics and full.stats == lean.stats and not lean.orders


def test_window_history_is_cut_without_index_hash_tables(sample_cache: Path) -> None:
    store = PriceStore(sample_cache, offline=True)
    cls = get_strategy("reassurance")
    config = make_run_config("reassurance", (), {"symbols": "BABA,0700.HK", "end": "2022-06-30"}, None,
                             cls.default_symbols, cls.Params)
    window = sweep.Window("w", config.start, dt.date(2022, 3, 15))
    data = sweep.load_sweep_data(store, config, [window])
    wctx = sweep.window_context(data, window)
    for symbol, full in data.frames.items():
        assert "_engine" not in full.index._cache  # a label look-up would build one per frame (60 KB a symbol)
        pd.testing.assert_frame_equal(wctx.history[symbol], full.loc[: pd.Timestamp(window.end)])


def test_simulate_pauses_the_collector_and_always_resumes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from engine.execution import fast_driver

    market = _market()
    seen: list[bool] = []
    real_run = Policy.run

    def spy(policy: Policy) -> None:
        seen.append(gc.isenabled())
        real_run(policy)

    monkeypatch.setattr(Policy, "run", spy)
    assert gc.isenabled()
    fast_driver.simulate(market, _config(), Plan({}, [], []))
    assert seen == [False] and gc.isenabled()

    def boom(policy: Policy) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(Policy, "run", boom)
    with pytest.raises(RuntimeError):
        fast_driver.simulate(market, _config(), Plan({}, [], []))
    assert gc.isenabled()
    gc.disable()
    try:  # a caller that paused it itself keeps it paused
        monkeypatch.setattr(Policy, "run", spy)
        fast_driver.simulate(market, _config(), Plan({}, [], []))
        assert not gc.isenabled()
    finally:
        gc.enable()
