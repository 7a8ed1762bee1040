"""Placebo tests (`evbt run ... --placebo N`): ranking and bootstrap by hand, pseudo-event dates and exclusion by
hand, the one timing and fill-bar rule, reproducibility, a planted event effect that must be found, the CLI."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.analysis import placebo as pl
from engine.events import timing
from engine.plan import planner
from engine.plan.config import make_run_config
from engine.prices.store import PriceStore
from strategies.registry import get_strategy
from tests.engine_helpers import event, frame_on_sessions

Run = Callable[..., tuple[int, str, str]]

# ---------------------------------------------------------------- statistics by hand


def test_rank_metric_by_hand() -> None:
    r = pl.rank_metric("total_return", 0.1, [0.0, 0.05, 0.1, 0.2, None, float("nan")])
    assert r.valid == 4
    assert r.percentile == pytest.approx(50.0)  # 2 of 4 strictly below
    assert r.p_value == pytest.approx((1 + 2) / (1 + 4))  # 0.1 and 0.2 are at or above
    assert r.placebo_mean == pytest.approx(0.0875) and r.placebo_median == pytest.approx(0.075)
    best = pl.rank_metric("sharpe", 9.0, [0.1, 0.2, 0.3])
    assert best.percentile == 100.0 and best.p_value == pytest.approx(1 / 4)  # never 0
    assert pl.rank_metric("sharpe", None, [0.1]).p_value is None


def test_bootstrap_interval_by_hand() -> None:
    flat = pl.bootstrap_mean([0.02, 0.02, 0.02], 500, seed=1)
    assert flat is not None and (flat.mean, flat.low, flat.high) == pytest.approx((0.02, 0.02, 0.02))
    # two trades 0 and 1: resampled means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4
    two = pl.bootstrap_mean([0.0, 1.0], 4000, seed=2)
    assert two is not None and two.mean == 0.5 and (two.low, two.high) == (0.0, 1.0)
    again = pl.bootstrap_mean([0.01, -0.02, 0.05, 0.0], 1000, seed=3)
    assert again == pl.bootstrap_mean([0.01, -0.02, 0.05, 0.0], 1000, seed=3)
    assert pl.bootstrap_mean([0.01], 100, seed=1) is None


# ---------------------------------------------------------------- pseudo-event dates


def test_allowed_sessions_exclude_real_windows_by_hand() -> None:
    # XNYS, January 2022: 3 4 5 6 7 | 10 11 12 13 14 | 18 (17th MLK day) 19 20 21 | 24 25 26 27 28 | 31
    days = pl.allowed_sessions("XNYS", dt.date(2022, 1, 3), dt.date(2022, 1, 31),
                               [pd.Timestamp("2022-01-12")], radius=2, tail=2)
    expected = ["2022-01-03", "2022-01-04", "2022-01-05", "2022-01-06", "2022-01-07",  # 10 .. 14 are within 2
                "2022-01-18", "2022-01-19", "2022-01-20", "2022-01-21", "2022-01-24", "2022-01-25", "2022-01-26",
                "2022-01-27"]  # the last 2 sessions (28, 31) leave no room for the hold
    assert [d.date().isoformat() for d in days] == expected


def test_pseudo_events_keep_everything_but_the_date_and_are_reproducible() -> None:
    template = event("t1", "2022-03-16", time="15:30", tz="Asia/Shanghai", symbols=("BABA",))
    allowed = [timing.sessions("XHKG", "2022-01-03", "2022-06-30")]
    draws = pl.draw_pseudo_events([template], allowed, 50, seed=9)
    assert draws == pl.draw_pseudo_events([template], allowed, 50, seed=9)
    assert draws != pl.draw_pseudo_events([template], allowed, 50, seed=10)
    days = {pd.Timestamp(d) for d in allowed[0]}
    for k, [(j, day)] in enumerate(draws):
        assert j == 0 and pd.Timestamp(day) in days
        pseudo = pl.pseudo_event(template, day, k)
        assert pseudo.id == f"t1~placebo{k + 1}" and pseudo.date == day
        assert (pseudo.time, pseudo.tz, pseudo.symbols, pseudo.type, pseudo.scope) == (
            template.time, template.tz, template.symbols, template.type, template.scope)
    assert pl.template_exchange(template, "XNYS") == "XHKG"
    assert pl.template_exchange(event("t2", "2022-03-16", tz="America/New_York"), "XHKG") == "XNYS"


def test_pseudo_entry_sessions_follow_the_timing_rule() -> None:
    # the placebo computes known_at once per event; the result must be the backtest's entry_session
    templates = [event("a", "2022-03-16", time="15:30"), event("b", "2022-05-17", time="19:00"),
                 event("c", "2022-04-09"), event("d", "2021-12-24", tz="America/New_York", time="08:00")]
    for fill in ("open", "close"):
        got = pl.entry_sessions_by_exchange(templates, ["XHKG", "XNYS"], fill)
        for ev in templates:
            assert got[(ev.id, "XHKG")] == timing.entry_session(ev, "0700.HK", fill)
            assert got[(ev.id, "XNYS")] == timing.entry_session(ev, "BABA", fill)


def test_vectorised_placements_are_the_scalar_rule() -> None:
    frame = frame_on_sessions("XHKG", "2022-01-03", "2022-03-31", seed=1)
    frame.iloc[5, frame.columns.get_loc("stale")] = True  # a placeholder bar is never a fill
    frame = frame.drop(frame.index[20:30])  # a suspension: the fill moves to the next bar
    sessions = [pd.Timestamp("2021-12-30"), *timing.sessions("XHKG", "2022-01-03", "2022-04-08"), None]
    many = planner.placements(frame, sessions)
    assert many == [planner.placement(frame, s) for s in sessions]
    by_day = dict(zip(sessions, many, strict=True))
    assert by_day[frame.index[5]][1] == 6
    assert by_day[pd.Timestamp("2022-02-07")][2] == frame.index[20]  # inside the gap -> first bar after it
    assert by_day[pd.Timestamp("2021-12-30")][0] == "skip"  # before the first bar: never moved forward
    assert by_day[pd.Timestamp("2022-04-08")][2] == "entry session after the last bar of the run"


# ---------------------------------------------------------------- end to end on a planted effect


EVENT_DATES = ["2021-03-10", "2021-06-15", "2021-09-14", "2022-01-19", "2022-05-10", "2022-09-13"]


def _planted_store(root: Path) -> PriceStore:
    """Two US symbols; after each event's entry session open the price rises about 4% a day for 5 days."""
    store = PriceStore(root, offline=True)
    sessions = timing.sessions("XNYS", "2020-09-01", "2022-12-30")
    for k, symbol in enumerate(("AAA", "BBB")):
        rng = np.random.default_rng(100 + k)
        r = rng.normal(0.0, 0.01, len(sessions))
        for day in EVENT_DATES:
            i = int(sessions.searchsorted(timing.entry_session(event("x", day, tz="America/New_York"), symbol)))
            r[i:i + 5] += 0.04
        closes = 50.0 * np.exp(np.cumsum(r))
        opens = np.r_[50.0, closes[:-1]]  # the move happens after the open
        frame = frame_on_sessions("XNYS", "2020-09-01", "2022-12-30", opens=opens, closes=closes)
        store.write(symbol, frame.drop(columns=["stale"]), "csv")
    return store


def _events_file(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "date", "time", "tz", "session_hint", "market", "type", "scope", "symbols", "description",
                    "source"])
        for day in EVENT_DATES:
            w.writerow([f"ev-{day}", day, "", "America/New_York", "", "", "official_reassurance", "sector", "",
                        "planted", "https://example.com"])
    return path


def _config(events: Path) -> object:
    cls = get_strategy("event_hold")
    options = {"symbols": "AAA,BBB", "start": "2021-01-04", "end": "2022-12-30", "events": str(events),
               "replace_events": True, "benchmark": "none"}
    return make_run_config("event_hold", ["hold=5"], options, None, cls.default_symbols, cls.Params)


def test_planted_effect_is_found_and_results_are_reproducible(tmp_path: Path) -> None:
    store = _planted_store(tmp_path / "cache")
    config = _config(_events_file(tmp_path / "events.csv"))
    result = pl.run_placebo(config, store, 40, seed=5)
    assert len(result.templates) == len(EVENT_DATES)
    total = result.rank("total_return")
    assert total is not None and total.valid == 40
    assert total.percentile == 100.0 and total.p_value == pytest.approx(1 / 41)  # no random set comes close
    assert result.bootstrap is not None and result.bootstrap.low > 0.1  # ~20% per trade, clearly above 0
    again = pl.run_placebo(config, store, 40, seed=5, workers=2)  # forked workers: same sets, same order
    assert again.ranks == result.ranks and again.bootstrap == result.bootstrap
    other = pl.run_placebo(config, store, 40, seed=6)
    assert other.rank("total_return").values != total.values
    # the real value is the backtest's own (fast path exact against backtrader)
    from engine import backtest

    report = backtest.run(config, store).report
    assert total.real == pytest.approx(report["metrics"]["total_return"], rel=1e-9)


def test_placebo_dates_avoid_the_real_windows(tmp_path: Path) -> None:
    store = _planted_store(tmp_path / "cache")
    config = _config(_events_file(tmp_path / "events.csv"))
    setup = pl._setup(config, store)
    real = [timing.entry_session(event("x", d, tz="America/New_York"), "AAA") for d in EVENT_DATES]
    allowed = pl.allowed_sessions("XNYS", config.start, config.end, real, 5, 5)
    every = timing.schedule("XNYS").sessions
    for day in allowed:
        assert min(abs(int(every.searchsorted(day)) - int(every.searchsorted(r))) for r in real) > 5
    assert setup.period  # the run period holds the six events


# ---------------------------------------------------------------- CLI


def test_cli_placebo_text_json_html(run_cli: Run, sample_cache: Path, tmp_path: Path) -> None:
    args = ("--offline", "run", "reassurance", "--symbols", "BABA,JD,PDD,0700.HK,9988.HK,3690.HK", "--no-save")
    code, out, err = run_cli(*args, "--placebo", "12", "--placebo-seed", "4", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["placebo"]["n"] == 12 and doc["placebo"]["seed"] == 4
    ranks = {r["metric"]: r for r in doc["placebo"]["ranks"]}
    assert ranks["total_return"]["real"] == pytest.approx(doc["metrics"]["total_return"], rel=1e-9)
    assert len(ranks["total_return"]["values"]) == 12
    html = tmp_path / "run.html"
    code, out, err = run_cli(*args, "--placebo", "12", "--placebo-seed", "4", "--html", str(html))
    assert code == 0, err
    assert "Placebo test: 12 sets of random event dates (seed 4)" in out and "bootstrap interval" in out
    text = html.read_text(encoding="utf-8")
    assert "Placebo test: random event dates" in text and "real run (" in text  # histogram with the marker
    assert text.count("<svg") >= 5


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--placebo-seed", "3"), "--placebo-seed needs --placebo N"),
        (("--placebo", "0"), "expected 1..100000 placebo sets"),
        (("--placebo", "x"), "Invalid value"),
    ],
)
def test_cli_placebo_bad_input_exits_2(run_cli: Run, sample_cache: Path, extra: tuple[str, ...],
                                       message: str) -> None:
    code, out, err = run_cli("--offline", "run", "reassurance", "--symbols", "BABA,JD", *extra)
    assert code == 2 and message in err
    assert "saved:" not in out  # refused before the real run


def test_rank_by_placebo_orders_configurations_by_p_value(tmp_path: Path) -> None:
    store = _planted_store(tmp_path / "cache")
    planted = _config(_events_file(tmp_path / "events.csv"))
    # the same strategy on events one week later: the planted moves are over, nothing to find
    late = tmp_path / "late.csv"
    rows = list(csv.reader(_events_file(tmp_path / "base.csv").open(encoding="utf-8")))
    with late.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(rows[0])
        for row in rows[1:]:
            row[1] = (dt.date.fromisoformat(row[1]) + dt.timedelta(days=21)).isoformat()
            w.writerow(row)
    ranked = pl.rank_by_placebo(store, [("late", _config(late)), ("planted", planted)], 20, seed=1)
    assert [r.label for r in ranked] == ["planted", "late"]
    assert ranked[0].p_value == pytest.approx(1 / 21) and ranked[1].p_value > ranked[0].p_value


def test_cli_placebo_refused_when_the_fast_path_cannot_replay(run_cli: Run, sample_cache: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.execution import fast_driver

    monkeypatch.setattr(fast_driver, "unsupported_reason", lambda config: "a feature it does not model")
    code, out, err = run_cli("--offline", "run", "reassurance", "--symbols", "BABA,JD", "--placebo", "5")
    assert code == 2 and "--placebo runs on the fast path, which does not cover a feature it does not model" in err
    assert "saved:" not in out


def test_cli_sweep_ranks_top_points_by_placebo_p_value(run_cli: Run, sample_cache: Path) -> None:
    base = ("--offline", "sweep", "reassurance", "--symbols", "BABA,JD,PDD,0700.HK,9988.HK,3690.HK", "-g",
            "hold=1,5,10", "--top", "2", "--quiet")
    code, out, err = run_cli(*base, "--placebo", "10", "--placebo-seed", "2", "--json")
    assert code == 0, err
    doc = json.loads(out)
    ranked = doc["placebo_ranking"]
    assert len(ranked) == 2  # the --top points only
    top_points = {" ".join(f"{k}={v}" for k, v in e["values"].items()) for e in doc["ranking"][:2]}
    assert {r["point"] for r in ranked} == top_points
    p = [next(x["p_value"] for x in r["placebo"]["ranks"] if x["metric"] == "total_return") for r in ranked]
    assert p == sorted(p)
    assert all(r["placebo"]["n"] == 10 and r["placebo"]["seed"] == 2 for r in ranked)
    code, out, err = run_cli(*base, "--placebo", "10")
    assert code == 0, err
    assert "Placebo ranking of the top 2 point(s): 10 sets of random event dates each (seed 0)" in out
    for extra, message in ((("--placebo", "5", "--split", "2022-07-01"), "not with --split or --walk-forward"),
                           (("--placebo-seed", "1"), "--placebo-seed needs --placebo N")):
        code, _, err = run_cli(*base, *extra)
        assert code == 2 and message in err
