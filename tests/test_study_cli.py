"""`evbt study` end to end: day 0 from the entry rule, skipped events with reasons, bad input, real prices.

Abnormal returns are recomputed here from the cached bars with numpy.polyfit (not engine.analysis.event_study's
code)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.events.catalog import load_calendar
from engine.events.timing import entry_session
from engine.prices.store import PriceStore

Run = Callable[..., tuple[int, str, str]]
SAMPLE_ARGS = ("--symbol", "BABA", "--symbol", "JD", "--symbol", "0700.HK", "--symbol", "9988.HK")


def _returns(frame: pd.DataFrame) -> pd.Series:
    bars = frame[~frame["stale"]]
    return bars["adj_close"].pct_change()


def _recompute(store: PriceStore, row: dict, bench: str, window: tuple[int, int], est: tuple[int, int]
               ) -> np.ndarray:
    """AR of one event with numpy.polyfit on the cached bars (independent of engine.analysis.event_study)."""
    r = _returns(store.load(row["symbol"]))
    b = store.load(bench)["adj_close"]
    level = b.reindex(b.index.union(r.index)).ffill().reindex(r.index)
    m = level.pct_change()
    pos = r.index.get_loc(pd.Timestamp(row["day0"]))
    est_sl = slice(pos + est[0], pos + est[1] + 1)
    win_sl = slice(pos + window[0], pos + window[1] + 1)
    beta, alpha = np.polyfit(m.iloc[est_sl].to_numpy(), r.iloc[est_sl].to_numpy(), 1)
    return r.iloc[win_sl].to_numpy() - alpha - beta * m.iloc[win_sl].to_numpy()


def test_study_on_sample_json(run_cli: Run, sample_cache: Path) -> None:
    code, out, err = run_cli("--offline", "study", "--type", "official_reassurance", *SAMPLE_ARGS,
                             "--benchmark", "KWEB", "--window", "-2:5", "--estimation", "-200:-10", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["synthetic"] is True
    assert doc["config"]["window"] == [-2, 5] and doc["config"]["model"] == "market"
    assert [d["day"] for d in doc["days"]] == list(range(-2, 6))
    assert doc["summary"]["day"] == 5
    assert len(doc["events"]) >= 8
    store = PriceStore(sample_cache, offline=True)
    by_id = {e.id: e for e in load_calendar()}
    for row in doc["events"]:
        # day 0 = the engine's fill bar: first bar on or after the entry session (no lookahead)
        entry = entry_session(by_id[row["event_id"]], row["symbol"], "open")
        bars = store.load(row["symbol"]).index
        assert row["entry_session"] == entry.date().isoformat()
        assert row["day0"] == bars[bars >= entry][0].date().isoformat()
        assert row["benchmark"] == "KWEB"
        ar = _recompute(store, row, "KWEB", (-2, 5), (-200, -10))
        assert row["ar"] == pytest.approx(list(ar), rel=1e-7, abs=1e-12)
        assert row["car"] == pytest.approx(float(ar.sum()), rel=1e-7, abs=1e-12)
    n = len(doc["events"])
    cars = np.array([row["car"] for row in doc["events"]])
    assert doc["summary"]["caar"] == pytest.approx(cars.mean())
    assert doc["summary"]["caar_t"]["stat"] == pytest.approx(cars.mean() / (cars.std(ddof=1) / np.sqrt(n)))
    # the Liu He readout hits all four symbols: clustering is reported and adjusted for
    assert doc["clustering"]["clustered"] is True
    assert doc["summary"]["caar_bmp_kp"] is not None
    early = [s for s in doc["skipped"] if "not enough history" in s["reason"]]
    assert early, "2021 events lack 200 bars of history in the sample"


def test_study_text_and_skip_reasons(run_cli: Run, sample_cache: Path) -> None:
    # the sample has no ^HSI: HK lines cannot use the default market model benchmark
    code, out, err = run_cli("--offline", "study", "--type", "official_reassurance", *SAMPLE_ARGS,
                             "--estimation", "-120:-10")
    assert code == 0, err
    assert "SYNTHETIC" in out and "Skipped" in out
    assert "0700.HK: benchmark ^HSI unavailable" in out
    assert "CAAR -5:10" in out and "BMP" in out
    code, out, err = run_cli("--offline", "study", "--type", "official_reassurance", *SAMPLE_ARGS,
                             "--estimation", "-120:-10", "--model", "mean")
    assert code == 0, err
    assert "unavailable" not in out and "model mean (benchmark none)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--window", "5"), "--window: bad window"),
        (("--window", "3:-3"), "starts after it ends"),
        (("--estimation", "-100:-2"), "must end before"),
        (("--type", "nonsense"), "unknown event type"),
        (("--from", "2022-13-01"), "--from: bad date"),
        (("--model", "capm"), "Invalid value"),
        (("--symbol", "../etc"), "invalid symbol"),
    ],
)
def test_study_bad_input_exits_2(run_cli: Run, sample_cache: Path, args: tuple[str, ...], message: str) -> None:
    code, _, err = run_cli("--offline", "study", *args)
    assert code == 2
    assert message in err


def test_study_no_matching_events_exits_2(run_cli: Run, sample_cache: Path) -> None:
    code, _, err = run_cli("--offline", "study", "--type", "delisting_risk", "--symbol", "9988.HK",
                           "--from", "2030-01-01")
    assert code == 2 and "no event matches" in err


def test_study_real_prices_worked_example(run_cli: Run, shared_prices: Path, cache_dir: Path) -> None:
    files = [str(shared_prices / f) for f in ("BABA.csv", "KWEB.csv", "0700.HK.csv", "HSI.csv")]
    code, _, err = run_cli("data", "import", *files)
    assert code == 0, err
    code, out, err = run_cli("--offline", "study", "--type", "official_reassurance", "--symbol", "BABA",
                             "--symbol", "0700.HK", "--json")
    assert code == 0, err
    doc = json.loads(out)
    rows = {(r["event_id"], r["symbol"]): r for r in doc["events"]}
    # README worked example: Liu He's readout during the HK afternoon -> US ADR day 0 the same day,
    # HK line the next morning
    liu = "2022-03-16-fsdc-liu-he"
    assert rows[(liu, "BABA")]["day0"] == "2022-03-16" and rows[(liu, "BABA")]["benchmark"] == "KWEB"
    assert rows[(liu, "0700.HK")]["day0"] == "2022-03-17" and rows[(liu, "0700.HK")]["benchmark"] == "^HSI"
    skipped = {(s["event_id"], s["symbol"]): s["reason"] for s in doc["skipped"]}
    assert "data ends 2023-11-06" in skipped[("2023-12-23-nppa-will-refine-draft", "0700.HK")]
    store = PriceStore(cache_dir, offline=True)
    for key, bench in (((liu, "BABA"), "KWEB"), ((liu, "0700.HK"), "^HSI")):
        ar = _recompute(store, rows[key], bench, (-5, 10), (-250, -30))
        assert rows[key]["ar"] == pytest.approx(list(ar), rel=1e-7, abs=1e-12)
    code, out, err = run_cli("--offline", "study", "--type", "official_reassurance", "--symbol", "0700.HK",
                             "--fill", "close", "--json")
    assert code == 0, err
    close_rows = {r["event_id"]: r for r in json.loads(out)["events"]}
    assert close_rows[liu]["day0"] == "2022-03-16"  # market-on-close the same HK afternoon
