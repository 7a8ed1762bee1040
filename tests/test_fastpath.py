"""The sweep fast path (engine.execution.fast_driver) against the backtrader engine (engine.backtest.run): every trade,
every order, the equity curve and every metric, to 1e-9 relative, on sampled configurations."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine import backtest
from engine.analysis.metrics import compute_metrics
from engine.execution import fast_driver as fastpath
from engine.plan.config import make_run_config
from engine.plan.planner import RunContext, build_plan
from engine.prices.store import PriceStore
from engine.saved_runs import make_run_id
from engine.sweeps import sweep
from strategies.registry import get_strategy

SAMPLE_SYMBOLS = "BABA,JD,PDD,0700.HK,9988.HK,3690.HK"
REL = 1e-9


def _config(strategy: str, params: tuple[str, ...] = (), **options):
    cls = get_strategy(strategy)
    options.setdefault("symbols", SAMPLE_SYMBOLS)
    options.setdefault("end", "2022-12-30")
    return make_run_config(strategy, params, options, None, cls.default_symbols, cls.Params)


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=REL, abs_tol=1e-9)
    return a == b


def _assert_same(config, store: PriceStore, expect_engine: str = "fast") -> sweep.PointResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = backtest.run(config, store)
        window = sweep.Window("full", config.start, config.end)
        data = sweep.load_sweep_data(store, config, [window])
        got = sweep.evaluate(data, window, config, records=True)
    assert got.engine == expect_engine
    ref_trades = [dataclasses.asdict(t) for t in ref.result.trades]
    got_trades = [dataclasses.asdict(t) for t in got.trades]
    assert len(ref_trades) == len(got_trades)
    for a, b in zip(ref_trades, got_trades, strict=True):
        for key in a:
            assert _close(b[key], a[key]), (key, a, b)
    ref_orders = [dataclasses.astuple(o) for o in ref.result.orders]
    got_orders = [dataclasses.astuple(o) for o in got.orders]
    assert len(ref_orders) == len(got_orders)
    for a, b in zip(ref_orders, got_orders, strict=True):
        assert all(_close(y, x) for x, y in zip(a, b, strict=True)), (a, b)
    curve = got.curve
    assert list(curve.index) == list(ref.result.equity.index)
    for column, series in (("equity", ref.result.equity), ("cash", ref.result.cash),
                           ("exposure", ref.result.exposure)):
        np.testing.assert_allclose(curve[column].to_numpy(), series.to_numpy(), rtol=REL, atol=1e-9)
    for key, value in ref.report["metrics"].items():
        assert _close(got.metrics.to_dict()[key], value), (key, value, got.metrics.to_dict()[key])
    report = sweep.point_report(data, window, config, got)
    assert report["run_id"] == ref.report["run_id"]
    return got


CASES = [
    ("reassurance", (), {}),
    ("reassurance", ("hold=10",), {"fill": "close"}),
    ("reassurance", ("hold=3",), {"overlap": "add"}),
    ("reassurance", ("hold=20",), {"overlap": "ignore", "sizing": "equal", "size": "0.5"}),
    ("reassurance", ("hold=15", "stop_loss=0.04", "take_profit=0.08"), {"fill": "close"}),
    ("reassurance", ("hold=15", "stop_loss=0.04", "take_profit=0.08"), {}),
    ("reassurance", ("hold=30",), {"sizing": "cash", "size": "300000"}),  # refused: insufficient cash
    ("reassurance", ("hold=5",), {"sizing": "cash", "size": "500", "min_commission": "1"}),  # below one lot
    ("reassurance", ("hold=8",), {"commission": "0.002", "slippage_bps": "20", "stamp_duty": "0.001"}),
    ("event_hold", ("types=official_reassurance,policy_support,regulatory_crackdown", "side=short", "hold=7"),
     {"allow_short": True}),
    ("event_hold", ("types=official_reassurance,regulatory_crackdown", "side=short"), {}),  # shorts refused
    ("fade", ("rally=0.02", "action=short"), {"allow_short": True, "fill": "close"}),
    ("analyst_follow", ("hold=10", "short_downgrades=true"), {"allow_short": True, "overlap": "add"}),
    ("buy_hold", (), {}),
    ("buy_hold", (), {"fill": "close", "start": "2021-03-01"}),
]


@pytest.mark.parametrize(("strategy", "params", "options"), CASES)
def test_fast_path_equals_backtrader(sample_cache: Path, strategy, params, options) -> None:
    store = PriceStore(sample_cache, offline=True)
    got = _assert_same(_config(strategy, params, **options), store)
    assert got.trades or got.orders


def test_fast_path_covers_refusals_lots_and_stamp_duty(sample_cache: Path) -> None:
    store = PriceStore(sample_cache, offline=True)
    got = _assert_same(_config("reassurance", ("hold=30",), sizing="cash", size="300000"), store)
    assert any(o.status == "refused" and "insufficient cash" in o.reason for o in got.orders)
    got = _assert_same(_config("reassurance", ("hold=4",), size="0.1"), store)
    hk = [t for t in got.trades if t.symbol.endswith(".HK")]
    assert hk and all(t.size % 100 == 0 for t in hk if t.symbol == "0700.HK")
    assert all(t.fx_entry != 1.0 for t in hk)


@pytest.mark.parametrize("fill", ["open", "close"])
def test_orders_on_the_last_bar(sample_cache: Path, fill: str) -> None:
    """Entries and exits on the run's last cycle (fill close: never filled, the position stays open)."""
    store = PriceStore(sample_cache, offline=True)
    for end in ("2022-03-16", "2022-03-17", "2022-03-18"):
        _assert_same(_config("reassurance", ("hold=1",), fill=fill, end=end), store)


def test_allow_margin_is_replayed_exactly(sample_cache: Path) -> None:
    """With --allow-margin cash may go negative: the fast path and backtrader (with its credit line) agree."""
    store = PriceStore(sample_cache, offline=True)
    config = _config("reassurance", (), allow_margin=True, size="0.3")
    assert fastpath.unsupported_reason(config) is None
    got = _assert_same(config, store)
    assert got.curve["cash"].min() < 0


def test_fast_metrics_equal_compute_metrics(sample_cache: Path) -> None:
    store = PriceStore(sample_cache, offline=True)
    config = _config("reassurance", ("hold=12",))
    window = sweep.Window("full", config.start, config.end)
    data = sweep.load_sweep_data(store, config, [window])
    got = sweep.evaluate(data, window, config, records=True)
    wctx = got.context
    bench = wctx.bench_frame["close"] if wctx.bench_frame is not None else None
    ref = compute_metrics(got.curve["equity"], got.trades, got.curve["exposure"], bench, initial_value=config.cash)
    for key, value in ref.to_dict().items():
        assert _close(got.metrics.to_dict()[key], value), key


def _duration_loop(values: np.ndarray) -> int:
    longest, peak_value, peak_pos = 0, values[0], 0
    for pos, value in enumerate(values):
        if value >= peak_value:
            if pos - peak_pos > 1:
                longest = max(longest, pos - peak_pos)
            peak_value, peak_pos = value, pos
    return int(max(longest, len(values) - 1 - peak_pos))


def test_drawdown_duration_matches_loop() -> None:
    from engine.analysis.metrics import max_drawdown_duration

    rng = np.random.default_rng(3)
    for _ in range(200):
        values = 100 + np.cumsum(rng.normal(0, 1, rng.integers(1, 40)))
        values[rng.integers(0, len(values))] = values.max()  # ties with the peak
        assert max_drawdown_duration(values) == _duration_loop(values)


def test_cached_plans_equal_build_plan(sample_cache: Path) -> None:
    store = PriceStore(sample_cache, offline=True)
    for strategy, params in (("reassurance", ("hold=4",)), ("fade", ("rally=0.02",)), ("buy_hold", ()),
                             ("analyst_follow", ("short_downgrades=true",))):
        for fill in ("open", "close"):
            config = _config(strategy, params, fill=fill, start="2021-02-01")
            window = sweep.Window("full", config.start, config.end)
            data = sweep.load_sweep_data(store, config, [window])
            wctx = sweep.window_context(data, window)
            period = [e for e in data.events if config.start - dt.timedelta(days=7) <= e.date <= config.end]
            cls = get_strategy(strategy)
            p = sweep.typed_params(strategy, config.params)
            ctx = RunContext(tuple(wctx.frames), period, wctx.history, fill, config.start, config.end)
            ref = build_plan(cls(p), ctx, wctx.frames)
            got = sweep.plan_with_cache(cls(p), ctx, wctx.frames, {})
            assert got == ref


def test_run_key_and_config_dict_match_engine(sample_cache: Path) -> None:
    from engine.sweeps.grid import parse_grid

    base = _config("reassurance")
    grid = parse_grid(["hold=3,7", "fill=open,close", "commission=0.002", "size=0.1"],
                      get_strategy("reassurance").Params, "reassurance")
    fps = {"BABA": "abc", "KWEB": "def"}
    for values in grid.points():
        cfg = sweep.point_config(base, values, grid, get_strategy("reassurance").Params)
        cdict = sweep.config_dict(base.to_dict(), cfg)
        assert cdict == cfg.to_dict()
        assert sweep.run_key(cfg.strategy, cdict["params"], cdict, fps, "cal") == make_run_id(
            cfg.strategy, cfg.params, cfg.to_dict(), fps, "cal")


def test_market_index_is_union_of_sessions(sample_cache: Path) -> None:
    store = PriceStore(sample_cache, offline=True)
    config = _config("reassurance")
    window = sweep.Window("full", config.start, config.end)
    wctx = sweep.window_context(sweep.load_sweep_data(store, config, [window]), window)
    union = sorted(set().union(*(f.index for f in wctx.frames.values())))
    assert list(wctx.market.index) == [pd.Timestamp(d) for d in union]
    for fill in ("open", "close"):
        clock = wctx.market.clock(fill)
        assert (np.diff(clock.instants) > 0).all()
        for k, book in enumerate(wctx.market.books):
            assert (clock.instants[clock.tick_of[k]] == book.fill_instants(fill)).all()


@pytest.mark.parametrize("strategy,params,options", [
    ("reassurance", (), {}),
    ("reassurance", ("hold=9",), {"fill": "close", "size": "0.3"}),
    ("reassurance", ("hold=20", "stop_loss=0.05"), {"overlap": "add"}),
])
def test_fast_path_equals_backtrader_on_real_data(shared_prices: Path, cache_dir: Path, strategy, params,
                                                  options) -> None:
    from engine.prices.csv_import import read_yahoo_csv

    store = PriceStore(cache_dir)
    for path in sorted(shared_prices.glob("*.csv")):
        item = read_yahoo_csv(path, None)
        store.write(item.symbol, item.frame, "csv", item.adjustment)
    store = PriceStore(cache_dir, offline=True)
    cls = get_strategy(strategy)
    config = make_run_config(strategy, params, options, None, cls.default_symbols, cls.Params)
    _assert_same(config, store)
