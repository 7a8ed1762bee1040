"""Backtrader fed only the spans where the plan holds positions (engine.execution.spans): the spans and slots of a
hand-made fill list, and runs on the synthetic sample compared float for float with feeding every symbol every
session (trades, orders, every equity/cash/exposure point, the report)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import warnings
from pathlib import Path

import pandas as pd
import pytest

from engine import backtest
from engine.errors import RunError
from engine.execution import backtrader_driver
from engine.execution.policy import Fill
from engine.execution.spans import Span, pack_slots, position_spans, value_order
from engine.market.costs import Fees
from engine.plan.config import RunConfig, make_run_config
from engine.prices.store import PriceStore
from strategies.registry import get_strategy
from tests.engine_helpers import event, frame_on_sessions

RUN_BACKTEST = backtrader_driver.run_backtest  # engine.backtest imports it at call time: patch the driver


def _fill(tick: int, book: int, bar: int, signed: int) -> Fill:
    return Fill(tick, book, bar, signed, 10.0, 10.0, Fees(), "entry" if signed > 0 else "exit")


# book 0: long bars 2..5, then long at 7 reversed to short at 9 (one instant: one span, open at the end);
# book 1: two lots from bar 1, both sold at bar 4; book 2: bars 3..5; book 3: opens at tick 10, the instant
# book 0 closes (so it cannot take book 0's feed), closes at tick 16.
FILLS = [
    _fill(3, 1, 1, 100), _fill(4, 0, 2, 100), _fill(5, 1, 2, 20), _fill(9, 1, 4, -100), _fill(9, 1, 4, -20),
    _fill(10, 0, 5, -100), _fill(10, 3, 0, 40), _fill(11, 2, 3, 7), _fill(13, 2, 5, -7), _fill(14, 0, 7, 50),
    _fill(16, 3, 2, -40), _fill(18, 0, 9, -50), _fill(18, 0, 9, -30),
]
BARS = [10, 8, 6, 5]


def test_spans_of_hand_made_fills() -> None:
    spans = position_spans(FILLS, BARS)
    assert spans == [
        Span(0, 2, 5, 4, 10), Span(0, 7, 9, 14, None),  # the reversal keeps the span open to book 0's last bar
        Span(1, 1, 4, 3, 9),
        Span(2, 3, 5, 11, 13),
        Span(3, 0, 2, 10, 16),
    ]


def test_slots_reuse_a_feed_only_after_its_span_closed() -> None:
    slots = pack_slots(position_spans(FILLS, BARS))
    # by opening tick: book 1 (3..9) slot 0; book 0 (4..10) slot 1; book 3 (10..16) reuses slot 0 (closed at 9);
    # book 2 (11..13) reuses slot 1 (closed at 10, not slot 0); book 0 again (14..end) slot 1, kept to the end
    assert [[(s.book, s.first) for s in slot] for slot in slots] == [[(1, 1), (3, 0)], [(0, 2), (2, 3), (0, 7)]]
    open_ended = pack_slots([Span(0, 0, 4, 0, None), Span(1, 3, 6, 9, 12)])
    assert len(open_ended) == 2  # a position open at the end never gives its feed away


def test_value_order_puts_first_instant_fills_first() -> None:
    assert value_order([_fill(0, 2, 0, 5), _fill(0, 0, 0, 5), _fill(0, 2, 0, 1), _fill(3, 3, 1, 5)], 4) == [2, 0, 1, 3]
    assert value_order(FILLS, 4) == [0, 1, 2, 3]


def _config(strategy: str, params: tuple[str, ...] = (), **options):
    cls = get_strategy(strategy)
    options.setdefault("symbols", "BABA,JD,PDD,0700.HK,9988.HK,3690.HK")
    options.setdefault("end", "2022-12-30")
    return make_run_config(strategy, params, options, None, cls.default_symbols, cls.Params)


class _Recorder:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.drivers: list[backtrader_driver._Driver] = []
        original = backtrader_driver._Driver

        def make(*args, **kwargs):
            driver = original(*args, **kwargs)
            self.drivers.append(driver)
            return driver

        monkeypatch.setattr(backtrader_driver, "_Driver", make)


def _run(config, store: PriceStore, monkeypatch: pytest.MonkeyPatch, spans: bool):
    with monkeypatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        patch.setattr(backtrader_driver, "run_backtest", functools.partial(RUN_BACKTEST, spans=spans))
        return backtest.run(config, store)


CASES = [
    ("reassurance", (), {}),
    ("reassurance", ("hold=10",), {"fill": "close"}),
    ("reassurance", ("hold=15", "stop_loss=0.04", "take_profit=0.08"), {}),  # guard exits inside spans
    ("reassurance", ("hold=3",), {"overlap": "add", "allow_margin": True, "size": "0.3"}),  # lots, credit line
    ("analyst_follow", ("hold=10", "short_downgrades=true"), {"allow_short": True, "fill": "close"}),
    ("buy_hold", (), {}),  # fills at the run's first instant, positions open to the last session
    ("reassurance", ("hold=1",), {"end": "2022-03-17"}),  # orders on the last bar
    ("reassurance", (), {"size": "0.00001"}),  # every entry below one lot: no fill, no feed
]


@pytest.mark.parametrize(("strategy", "params", "options"), CASES)
def test_span_feeding_equals_feeding_every_session(sample_cache: Path, monkeypatch: pytest.MonkeyPatch,
                                                   strategy, params, options) -> None:
    store = PriceStore(sample_cache, offline=True)
    config = _config(strategy, params, **options)
    drivers = _Recorder(monkeypatch)
    ref = _run(config, store, monkeypatch, spans=False)
    got = _run(config, store, monkeypatch, spans=True)
    full, spanned = drivers.drivers

    assert got.result.trades == ref.result.trades
    assert got.result.orders == ref.result.orders
    for column in ("equity", "cash", "exposure"):  # every session date, float for float
        pd.testing.assert_series_equal(getattr(got.result, column), getattr(ref.result, column), check_exact=True)
    assert got.report == ref.report
    # fed every session, the driver's book-ordered sum is the broker's own value bit for bit
    assert full.broker_values == [s[2] for s in full.snapshots]
    fed = sum(len(slot.bars) for slot in spanned.slots)
    total = sum(len(slot.bars) for slot in full.slots)
    assert fed == total if strategy == "buy_hold" else fed < total / 2  # buy_hold holds everything throughout
    if not spanned.policy.fills:
        assert not spanned.slots and set(got.result.equity) == {config.cash}
    if options.get("allow_margin"):
        assert spanned.credit > 0 and got.result.cash.min() < 0


def test_spans_on_data_that_ends_early_starts_late_or_has_placeholders(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """0700.HK's data ends a month before the run with a position open (marked at its last close to the end),
    with a placeholder bar inside a held span; JD's data begins late; entries on the run's first session."""
    hk = frame_on_sessions("XHKG", "2021-12-01", "2022-02-28", seed=2, base=400.0)
    hk.loc[pd.Timestamp("2022-01-10"), ["open", "high", "low", "close"]] = hk.loc[pd.Timestamp("2022-01-07"),
                                                                                    "close"]
    hk.loc[pd.Timestamp("2022-01-10"), ["volume", "stale"]] = [0.0, True]
    frames = {"BABA": frame_on_sessions("XNYS", "2021-12-01", "2022-03-31", seed=1), "0700.HK": hk,
              "JD": frame_on_sessions("XNYS", "2022-02-01", "2022-03-31", seed=3, base=70.0)}
    store = PriceStore(tmp_path / "cache", offline=True)
    for symbol, frame in frames.items():
        store.write(symbol, frame, source="csv")
    events = [event("e1", "2021-12-31", symbols=("BABA", "0700.HK")), event("e2", "2022-01-06", symbols=("0700.HK",)),
              event("e3", "2022-02-24", symbols=("0700.HK", "JD", "BABA")), event("e4", "2022-03-25", symbols=("JD",))]
    config = RunConfig(strategy="event_hold", params={"hold": 4}, symbols=tuple(frames), start=dt.date(2022, 1, 3),
                       end=dt.date(2022, 3, 31), benchmark=None)
    drivers = _Recorder(monkeypatch)

    def run(spans: bool):
        with monkeypatch.context() as patch, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            patch.setattr(backtrader_driver, "run_backtest", functools.partial(RUN_BACKTEST, spans=spans))
            return backtest.run(config, store, events=events)

    ref, got = run(False), run(True)
    trades = got.result.trades
    assert [(t.symbol, t.entry_date, t.exit_reason) for t in trades if t.exit_reason == "open"] == [
        ("0700.HK", "2022-02-25", "open"), ("JD", "2022-03-28", "open")]
    assert any(t.entry_date == "2022-01-03" for t in trades)
    assert trades == ref.result.trades and got.result.orders == ref.result.orders
    for column in ("equity", "cash", "exposure"):
        pd.testing.assert_series_equal(getattr(got.result, column), getattr(ref.result, column), check_exact=True)
    full, spanned = drivers.drivers
    assert full.broker_values == [s[2] for s in full.snapshots]
    assert sum(len(slot.bars) for slot in spanned.slots) < sum(len(slot.bars) for slot in full.slots)


def test_a_span_cut_short_is_an_error_not_a_lost_fill(sample_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the bar of a closing fill the driver stops (the fill is never dropped silently)."""
    original = backtrader_driver.position_spans

    def cut(fills, lengths):
        return [dataclasses.replace(s, last=s.last - 1) if s.end_tick is not None and s.last > s.first else s
                for s in original(fills, lengths)]

    monkeypatch.setattr(backtrader_driver, "position_spans", cut)
    with pytest.raises(RunError, match=r"bar for a fill|had no backtrader cycle|cash .* differs from the policy"):
        _run(_config("reassurance"), PriceStore(sample_cache, offline=True), monkeypatch, spans=True)
