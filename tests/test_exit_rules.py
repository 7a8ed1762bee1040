"""Exit rules attached to signals (trailing stop, stop-loss, take-profit, exit on a later event) and portfolio
limits (max positions, gross exposure, weight per symbol).

Expected exits and skips are recomputed here from the raw bars with plain loops (no evbt engine code); every run
goes through both engines (backtrader via ``engine.backtest.run``, the fast path via ``tests.engine_helpers``),
which must agree to 1e-9.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine import backtest
from engine.errors import ConfigError
from engine.events.catalog import Event
from engine.market.costs import CostModel
from engine.plan.config import RunConfig, make_run_config
from engine.prices.store import PriceStore
from strategies.base import Exits
from strategies.reassurance import ReassuranceParams
from tests.engine_helpers import event, fast_replay, frame_on_sessions

NO_COSTS = CostModel(commission_pct=0.0, min_commission=0.0, slippage_bps=0, stamp_duty_rate=0.0)
START, END = dt.date(2022, 3, 1), dt.date(2022, 8, 31)

RULE = '''
from dataclasses import dataclass

from strategies.base import BaseParams, Exits, Signal, Strategy


@dataclass(frozen=True)
class Params(BaseParams):
    hold: int = 60
    side: str = "long"
    exit_on: str = ""


class Rule(Strategy):
    name = "exits_probe"
    Params = Params

    def signals(self, ctx):
        exits = Exits(on_events=(self.params.exit_on,)) if self.params.exit_on else None
        for ev in ctx.events_of("official_reassurance", "analyst_upgrade"):
            for symbol in ctx.symbols_for(ev):
                yield Signal(symbol=symbol, event=ev, side=self.params.side, hold=self.params.hold, exits=exits)
'''


@pytest.fixture
def rule(tmp_path: Path) -> str:
    path = tmp_path / "exits_probe.py"
    path.write_text(RULE)
    return str(path)


def _store(root: Path, frames: dict[str, pd.DataFrame]) -> PriceStore:
    store = PriceStore(root / "cache", offline=True)
    for symbol, frame in frames.items():
        store.write(symbol, frame, source="csv")
    return store


def _both(tmp_path: Path, config: RunConfig, frames: dict[str, pd.DataFrame], events: list[Event]):
    """(backtrader outcome, fast result) of one configuration; asserts they agree to 1e-9."""
    store = _store(tmp_path, frames)
    slow = backtest.run(config, store, events=events)
    fast = fast_replay(config, store, events)
    key = ("symbol", "side", "entry_date", "exit_date", "size", "entry_price", "exit_price", "exit_reason")
    assert [tuple(getattr(t, k) for k in key) for t in fast.trades] == \
        [tuple(getattr(t, k) for k in key) for t in slow.result.trades]
    assert np.allclose([t.pnl for t in fast.trades], [t.pnl for t in slow.result.trades], rtol=1e-9, atol=1e-6)
    assert np.allclose(fast.equity, slow.result.equity.to_numpy(), rtol=1e-9, atol=1e-6)
    skipped = lambda orders: sorted((o.date, o.symbol, o.reason) for o in orders if o.status == "skipped")  # noqa: E731
    assert skipped(fast.orders) == skipped([o for o in slow.result.orders if o.reason not in _PLAN_REASONS])
    return slow, fast


_PLAN_REASONS = {"no price data in the run period", "no session after the event",
                 "entry session after the last bar of the run", "fill session before the symbol's first bar in the run"}


def _config(strategy: str, symbols: tuple[str, ...], fill: str = "open", **kw: object) -> RunConfig:
    params = kw.pop("params", {})
    return RunConfig(strategy=strategy, params=dict(params), symbols=symbols, start=START, end=END,  # type: ignore[arg-type]
                     benchmark=None, costs=NO_COSTS, fill=fill, **kw)  # type: ignore[arg-type]


def _premarket(eid: str, day: str, symbols: tuple[str, ...] = ("BABA",), etype: str = "official_reassurance"):
    return event(eid, day, symbols=symbols, scope="single", tz="America/New_York", time="08:00", etype=etype)


# ------------------------------------------------------------------------------------------------ trailing stop


def expected_trailing_exit(frame: pd.DataFrame, entry: str, fill: str, side: str, trail: float,
                           hold_exit: str | None) -> tuple[str | None, str]:
    """(exit date, reason) by a plain loop over the raw bars: from the entry (fill close: the next close) track the
    best close (starting at the entry price); the first close beyond the trail exits at the next bar."""
    dates = [d.date().isoformat() for d in frame.index]
    i = dates.index(entry)
    price = frame[fill].iloc[i]
    best = price
    for j in range(i + (1 if fill == "close" else 0), len(dates)):
        if hold_exit is not None and dates[j] >= hold_exit:
            return hold_exit, "hold"
        close = frame["close"].iloc[j]
        best = max(best, close) if side == "long" else min(best, close)
        hit = close <= best * (1 - trail) if side == "long" else close >= best * (1 + trail)
        if hit:
            if hold_exit is not None and j + 1 < len(dates) and dates[j + 1] >= hold_exit:
                return hold_exit, "hold"
            return (dates[j + 1], "trailing_stop") if j + 1 < len(dates) else (None, "open")
    return None, "open"


@pytest.mark.parametrize("fill", ["open", "close"])
@pytest.mark.parametrize("side", ["long", "short"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_trailing_stop_exits_recomputed_from_raw_bars(tmp_path: Path, rule: str, fill: str, side: str,
                                                      seed: int) -> None:
    frame = frame_on_sessions("XNYS", "2022-02-01", "2022-08-31", seed=seed)
    events = [_premarket("a", "2022-03-15"), _premarket("b", "2022-06-01")]
    config = _config(rule, ("BABA",), fill, allow_short=True,
                     params={"hold": 40, "side": side, "trailing_stop": 0.06})
    slow, _ = _both(tmp_path, config, {"BABA": frame}, events)
    trades = slow.result.trades
    assert trades
    for trade in trades:
        dates = [d.date().isoformat() for d in frame.index]
        hold_exit = dates[dates.index(trade.entry_date) + 40] if dates.index(trade.entry_date) + 40 < len(dates) \
            else None
        assert (trade.exit_date, trade.exit_reason) == expected_trailing_exit(
            frame, trade.entry_date, fill, side, 0.06, hold_exit)
    assert any(t.exit_reason == "trailing_stop" for t in trades)


def test_trailing_stop_by_hand(tmp_path: Path, rule: str) -> None:
    """Closes 100 (entry at the open 100), 110, 120, 115, 107.9, 110: the trail of 10% from the best close 120 is
    108; 107.9 on the fifth bar breaks it; the exit is the next bar's open."""
    dates = frame_on_sessions("XNYS", "2022-03-01", "2022-03-31").index
    closes = np.full(len(dates), 110.0)
    closes[:6] = [100.0, 110.0, 120.0, 115.0, 107.9, 110.0]
    frame = frame_on_sessions("XNYS", "2022-03-01", "2022-03-31", closes=closes, opens=closes - 0.5)
    frame.iloc[0, frame.columns.get_loc("open")] = 100.0
    config = _config(rule, ("BABA",), params={"hold": 15, "trailing_stop": 0.10})
    slow, _ = _both(tmp_path, config, {"BABA": frame}, [_premarket("a", "2022-03-01")])
    (trade,) = slow.result.trades
    assert (trade.entry_date, trade.entry_price) == ("2022-03-01", 100.0)
    assert (trade.exit_date, trade.exit_price, trade.exit_reason) == ("2022-03-08", 109.5, "trailing_stop")
    # with a 12% trail nothing fires (108 > 120 x 0.88 = 105.6): the hold exit after 15 sessions
    config = _config(rule, ("BABA",), params={"hold": 15, "trailing_stop": 0.12})
    slow, _ = _both(tmp_path / "b", config, {"BABA": frame}, [_premarket("a", "2022-03-01")])
    assert slow.result.trades[0].exit_reason == "hold"


def test_first_rule_wins_and_the_trade_names_it(tmp_path: Path, rule: str) -> None:
    dates = frame_on_sessions("XNYS", "2022-03-01", "2022-03-31").index
    closes = np.full(len(dates), 100.0)
    closes[:5] = [100.0, 104.0, 96.0, 93.0, 90.0]  # -4% from the best 104 on bar 2; -7% from entry on bar 3
    frame = frame_on_sessions("XNYS", "2022-03-01", "2022-03-31", closes=closes, opens=closes)
    events = [_premarket("a", "2022-03-01")]
    reasons = {}
    for name, params in {"trail": {"trailing_stop": 0.05, "stop_loss": 0.06},
                         "stop": {"trailing_stop": 0.12, "stop_loss": 0.06},
                         "hold": {"trailing_stop": 0.05, "hold": 2}}.items():
        slow, _ = _both(tmp_path / name, _config(rule, ("BABA",), params={"hold": 10, **params}), {"BABA": frame},
                        events)
        reasons[name] = (slow.result.trades[0].exit_reason, slow.result.trades[0].exit_date)
    assert reasons == {"trail": ("trailing_stop", "2022-03-04"), "stop": ("stop_loss", "2022-03-07"),
                       "hold": ("hold", "2022-03-03")}


def test_exit_on_a_later_event_of_the_same_symbol(tmp_path: Path, rule: str) -> None:
    frames = {s: frame_on_sessions("XNYS", "2022-02-01", "2022-08-31", seed=i) for i, s in enumerate(["BABA", "JD"])}
    events = [_premarket("up", "2022-03-15", ("BABA", "JD"), "analyst_upgrade"),
              _premarket("early-down", "2022-03-10", ("BABA",), "analyst_downgrade"),  # before the entry: no effect
              _premarket("down", "2022-03-22", ("BABA",), "analyst_downgrade")]  # BABA only
    config = _config(rule, ("BABA", "JD"), params={"hold": 20, "exit_on": "analyst_downgrade"})
    slow, _ = _both(tmp_path, config, frames, events)
    by_symbol = {t.symbol: (t.entry_date, t.exit_date, t.exit_reason) for t in slow.result.trades}
    assert by_symbol == {"BABA": ("2022-03-15", "2022-03-22", "event:analyst_downgrade"),
                         "JD": ("2022-03-15", "2022-04-12", "hold")}
    assert slow.report["trades"][0]["exit_reason"] in {"event:analyst_downgrade", "hold"}


# ------------------------------------------------------------------------------------------------ limits


def _flat_frames(symbols: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    out = {}
    for n, symbol in enumerate(symbols):
        dates = frame_on_sessions("XNYS", "2022-02-01", "2022-08-31").index
        closes = np.full(len(dates), 50.0 + 10 * n)
        out[symbol] = frame_on_sessions("XNYS", "2022-02-01", "2022-08-31", closes=closes, opens=closes)
    return out


def expected_skips(frames: dict[str, pd.DataFrame], entries: list[tuple[str, str]], size: float, cash: float, *,
                   max_positions: int | None = None, max_gross: float | None = None,
                   max_weight: float | None = None) -> list[tuple[str, str]]:
    """Replay entries (date, symbol) at the open by plain arithmetic (no costs, long, hold past the run):
    shares = floor(size x equity / open); exposure at the latest close before the fill."""
    held: dict[str, int] = {}
    skipped = []
    for date, symbol in entries:
        frame = frames[symbol]
        price = float(frame.loc[date, "open"])
        marks = {s: float(frames[s].loc[frames[s].index < pd.Timestamp(date), "close"].iloc[-1]) for s in held}
        equity = cash + sum(held[s] * marks[s] for s in held)
        shares = math.floor(size * equity / price)
        value = shares * price
        if max_positions is not None and len(held) >= max_positions:
            skipped.append((date, symbol))
            continue
        if max_weight is not None and (held.get(symbol, 0) * marks.get(symbol, 0.0) + value) / equity > max_weight:
            skipped.append((date, symbol))
            continue
        gross = sum(held[s] * marks[s] for s in held)
        if max_gross is not None and (gross + value) / equity > max_gross:
            skipped.append((date, symbol))
            continue
        held[symbol] = held.get(symbol, 0) + shares
        cash -= value
    return skipped


SYMS = ("BABA", "JD", "PDD", "BIDU")
LIMIT_EVENTS = [_premarket("one", "2022-03-15", SYMS), _premarket("two", "2022-04-12", ("BIDU", "BABA"))]
ENTRIES = [("2022-03-15", s) for s in SYMS] + [("2022-04-12", "BABA"), ("2022-04-12", "BIDU")]


@pytest.mark.parametrize("limits", [{"max_positions": 3}, {"max_gross": 0.25}, {"max_weight": 0.15},
                                    {"max_positions": 4, "max_gross": 0.5, "max_weight": 0.12}])
def test_portfolio_limit_skips_recomputed(tmp_path: Path, rule: str, limits: dict) -> None:
    frames = _flat_frames(SYMS)
    config = _config(rule, SYMS, params={"hold": 100}, size=0.1, overlap="add", **limits)
    slow, _ = _both(tmp_path, config, frames, LIMIT_EVENTS)
    got = [(o.date, o.symbol) for o in slow.result.orders if o.status == "skipped"]
    assert got == sorted(expected_skips(frames, ENTRIES, 0.1, 1_000_000.0, **limits))  # reports sort orders
    assert got  # every case skips something
    flag = {"max_positions": "--max-positions", "max_gross": "--max-gross", "max_weight": "--max-weight"}
    reasons = [o.reason for o in slow.result.orders if o.status == "skipped"]
    assert all(any(flag[k] in r for k in limits) for r in reasons)


def test_limits_are_run_options_and_validated() -> None:
    config = make_run_config("reassurance", (), {"max_positions": "3", "max_gross": "0.5", "max_weight": "0.1"},
                             default_symbols=("BABA",))
    assert (config.max_positions, config.max_gross, config.max_weight) == (3, 0.5, 0.1)
    # unset: the saved configuration (and so the run id) is what it was before limits existed
    assert "max_positions" not in make_run_config("reassurance", default_symbols=("BABA",)).to_dict()
    for bad in ({"max_positions": "0"}, {"max_gross": "-1"}, {"max_weight": "nan"}, {"max_positions": "2.5"}):
        with pytest.raises(ConfigError):
            make_run_config("reassurance", (), bad, default_symbols=("BABA",))


def test_exit_parameters_are_validated() -> None:
    for pair in ("trailing_stop=0", "trailing_stop=1.5", "stop_loss=-0.1", "take_profit=0"):
        with pytest.raises(ConfigError, match=pair.split("=")[0]):
            make_run_config("reassurance", (pair,), {}, default_symbols=("BABA",), params_cls=ReassuranceParams)
    assert Exits(trailing_stop=0.1).with_defaults(type("P", (), {"stop_loss": 0.2})()) == \
        Exits(stop_loss=0.2, trailing_stop=0.1)


def test_sweep_over_trailing_stop_and_below_ma_runs_on_the_fast_path(run_cli, sample_cache: Path) -> None:
    import json

    base = ("--offline", "sweep", "analyst_follow", "--symbols", "BABA,JD,PDD,0700.HK,9988.HK,3690.HK",
            "--start", "2021-06-01", "--end", "2022-12-30")
    code, out, err = run_cli(*base, "-g", "trailing_stop=0.05,0.1,0.15", "-g", "below_ma=20,50,200", "--quiet",
                             "--json", "--top", "0", "--workers", "1")
    assert code == 0, err
    ranking = json.loads(out)["ranking"]
    assert len(ranking) == 9 and {r["engine"] for r in ranking} == {"fast"}
    assert len({r["metrics"]["total_return"] for r in ranking}) > 3  # both keys change the results
    point = next(r for r in ranking if r["values"] == {"trailing_stop": 0.1, "below_ma": 50})
    code, out, err = run_cli("--offline", "run", "analyst_follow", *base[3:], "-p", "trailing_stop=0.1",
                             "-p", "below_ma=50", "--json", "--no-save")
    assert code == 0, err
    report = json.loads(out)
    assert report["run_id"] == point["key"]
    for name, value in report["metrics"].items():
        got = point["metrics"][name]
        assert (value is None and got is None) or math.isclose(got, value, rel_tol=1e-9, abs_tol=1e-12), name
