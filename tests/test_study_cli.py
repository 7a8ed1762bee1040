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
    assert doc["config"]["window"] == [-2, 5] and doc["model"] == "market"
    [group] = doc["groups"]
    assert group["types"] == ["official_reassurance"] and group["expected_sign"] == 1
    assert [d["day"] for d in group["days"]] == list(range(-2, 6))
    assert group["summary"]["day"] == 5
    assert len(group["events"]) >= 8
    store = PriceStore(sample_cache, offline=True)
    by_id = {e.id: e for e in load_calendar()}
    for row in group["events"]:
        # day 0 = the engine's fill bar: first non-stale bar on or after the entry session (no lookahead)
        entry = entry_session(by_id[row["event_id"]], row["symbol"], "open")
        frame = store.load(row["symbol"])
        bars = frame.index[~frame["stale"]]
        assert row["entry_session"] == entry.date().isoformat()
        assert row["day0"] == bars[bars >= entry][0].date().isoformat()
        assert row["benchmark"] == "KWEB"
        ar = _recompute(store, row, "KWEB", (-2, 5), (-200, -10))
        assert row["ar"] == pytest.approx(list(ar), rel=1e-7, abs=1e-12)
        assert row["car"] == pytest.approx(float(ar.sum()), rel=1e-7, abs=1e-12)
    n = len(group["events"])
    cars = np.array([row["car"] for row in group["events"]])
    summary = group["summary"]
    assert summary["caar"] == pytest.approx(cars.mean())
    assert summary["caar_t"]["stat"] == pytest.approx(cars.mean() / (cars.std(ddof=1) / np.sqrt(n)))
    assert summary["positive"] == int((cars > 0).sum())
    for key in ("caar_rank", "caar_sign", "caar_wilcoxon"):  # the non-parametric tests are reported
        assert summary[key]["p"] is not None
    # the Liu He readout hits all four symbols: clustering is reported and adjusted for
    assert group["clustering"]["clustered"] is True
    assert summary["caar_bmp_kp"] is not None
    early = [s for s in doc["skipped"] if s["kind"] == "history"]
    assert early, "2021 events lack 200 bars of history in the sample"
    assert any("benchmark for every symbol" in c and "KWEB" in c for c in doc["choices"])
    # a US fund as the benchmark of Hong Kong lines: its daily return covers the US session after the HK close
    mismatch = "benchmark KWEB trades on XNYS, not the venue of 0700.HK, 9988.HK"
    assert any(w.startswith(mismatch) for w in doc["warnings"])


def test_study_defaults_venue_benchmarks_and_groups(run_cli: Run, sample_cache: Path) -> None:
    code, out, err = run_cli("--offline", "study", *SAMPLE_ARGS, "--estimation", "-120:-10", "--json")
    assert code == 0, err
    doc = json.loads(out)
    by_symbol = {r["symbol"]: r["benchmark"] for g in doc["groups"] for r in g["events"]}
    assert by_symbol["BABA"] == "SPY" and by_symbol["0700.HK"] == "^HSI"  # broad market of each venue
    types = [g["types"] for g in doc["groups"]]
    assert len(types) > 1 and all(len(t) == 1 for t in types)  # one group per event type, never pooled
    assert [w for w in doc["warnings"] if "share their symbol and day 0" not in w] == []  # no venue mismatch


def test_study_pool_warns_on_opposite_signs(run_cli: Run, sample_cache: Path) -> None:
    code, out, err = run_cli("--offline", "study", "--type", "official_reassurance", "--type",
                             "regulatory_crackdown", *SAMPLE_ARGS, "--estimation", "-120:-10", "--pool")
    assert code == 0, err
    assert "WARNING: pooling event types with opposite expected signs" in out
    assert "official_reassurance + regulatory_crackdown (expected no expected sign)" in out
    code, out, err = run_cli("--offline", "study", "--type", "official_reassurance", "--type", "policy_support",
                             *SAMPLE_ARGS, "--estimation", "-120:-10", "--pool", "--json")
    assert code == 0, err
    assert json.loads(out)["warnings"] == []  # both bullish: pooling is fine


def test_study_text_groups_repeated_skip_reasons(run_cli: Run, sample_cache: Path) -> None:
    # QQQ is not in the sample: every sample has the same long reason, printed once with a count
    code, out, err = run_cli("--offline", "study", *SAMPLE_ARGS, "--benchmark", "QQQ")
    assert code == 0, err
    assert "SYNTHETIC" in out and "Skipped (" in out
    assert out.count("benchmark QQQ unavailable") == 1
    line = next(x for x in out.splitlines() if "benchmark QQQ unavailable" in x)
    assert line.startswith("- ") and " x benchmark QQQ unavailable" in line
    code, out, err = run_cli("--offline", "study", "--type", "official_reassurance", *SAMPLE_ARGS,
                             "--estimation", "-120:-10", "--model", "mean")
    assert code == 0, err
    assert "unavailable" not in out and "constant-mean model" in out
    for name in ("Corrado rank", "generalised sign", "Wilcoxon signed-rank", "BMP", "cross-sectional t"):
        assert name in out


def test_study_two_factor_and_funds_get_sector_events(run_cli: Run, sample_cache: Path) -> None:
    code, out, err = run_cli("--offline", "study", "--type", "official_reassurance", "--symbol", "BABA",
                             "--symbol", "KWEB", "--sector-benchmark", "KWEB", "--estimation", "-120:-10", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["model"] == "two-factor"
    rows = [r for g in doc["groups"] for r in g["events"]]
    assert {r["symbol"] for r in rows} == {"BABA"}
    assert all(r["sector_benchmark"] == "KWEB" and len(r["params"]) == 3 for r in rows)
    for r in rows:
        d = r["decomposition"]
        assert d["raw"] == pytest.approx(d["constant"] + d["market"] + d["sector"] + d["abnormal"])
        assert d["abnormal"] == pytest.approx(r["car"])
    # KWEB (a fund) is studied against the sector events, but it is its own sector benchmark here
    own = [s for s in doc["skipped"] if s["symbol"] == "KWEB"]
    assert own and all(s["kind"] == "own_benchmark" for s in own)
    code, out, err = run_cli("--offline", "study", "--type", "official_reassurance", "--symbol", "KWEB",
                             "--estimation", "-120:-10", "--json")
    assert code == 0, err
    kweb = [r for g in json.loads(out)["groups"] for r in g["events"]]
    assert kweb and all(r["symbol"] == "KWEB" and r["benchmark"] == "SPY" for r in kweb)


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
        (("--model", "two-factor"), "needs --sector-benchmark"),
        (("--model", "mean", "--sector-benchmark", "KWEB"), "is used by the two-factor model"),
        (("--sector-benchmark", "../x"), "invalid symbol"),
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
    files = [str(shared_prices / f) for f in ("BABA.csv", "KWEB.csv", "SPY.csv", "0700.HK.csv", "HSI.csv")]
    code, _, err = run_cli("data", "import", *files)
    assert code == 0, err
    code, out, err = run_cli("--offline", "study", "--type", "official_reassurance", "--symbol", "BABA",
                             "--symbol", "0700.HK", "--json")
    assert code == 0, err
    doc = json.loads(out)
    [group] = doc["groups"]
    rows = {(r["event_id"], r["symbol"]): r for r in group["events"]}
    # README worked example: Liu He's readout during the HK afternoon -> US ADR day 0 the same day,
    # HK line the next morning; broad-market benchmarks by venue
    liu = "2022-03-16-fsdc-liu-he"
    assert rows[(liu, "BABA")]["day0"] == "2022-03-16" and rows[(liu, "BABA")]["benchmark"] == "SPY"
    assert rows[(liu, "0700.HK")]["day0"] == "2022-03-17" and rows[(liu, "0700.HK")]["benchmark"] == "^HSI"
    skipped = {(s["event_id"], s["symbol"]): s["reason"] for s in doc["skipped"]}
    assert "2023-11-06" in skipped[("2023-12-23-nppa-will-refine-draft", "0700.HK")]
    store = PriceStore(cache_dir, offline=True)
    for key, bench in (((liu, "BABA"), "SPY"), ((liu, "0700.HK"), "^HSI")):
        ar = _recompute(store, rows[key], bench, (-5, 10), (-250, -30))
        assert rows[key]["ar"] == pytest.approx(list(ar), rel=1e-7, abs=1e-12)
    # against the broad market, BABA's day-0 reaction to the readout is most of its 36.8% jump
    assert rows[(liu, "BABA")]["ar"][5] > 0.30
    code, out, err = run_cli("--offline", "study", "--type", "official_reassurance", "--symbol", "0700.HK",
                             "--fill", "close", "--json")
    assert code == 0, err
    close_rows = {r["event_id"]: r for g in json.loads(out)["groups"] for r in g["events"]}
    assert close_rows[liu]["day0"] == "2022-03-16"  # market-on-close the same HK afternoon


def test_study_real_index_and_two_factor(run_cli: Run, shared_prices: Path, cache_dir: Path) -> None:
    files = [str(shared_prices / f) for f in ("BABA.csv", "KWEB.csv", "SPY.csv", "HSI.csv", "HSTECH.csv")]
    code, _, err = run_cli("data", "import", *files)
    assert code == 0, err
    code, out, err = run_cli("--offline", "study", "--type", "official_reassurance", "--symbol", "^HSTECH")
    assert code == 0, err
    assert "sector events also applied to the index/fund symbols ^HSTECH" in out
    assert "^HSI for ^HSTECH" in out and "Wilcoxon signed-rank on CARs" in out
    code, out, err = run_cli("--offline", "study", "--type", "official_reassurance", "--symbol", "BABA",
                             "--sector-benchmark", "KWEB", "--json")
    assert code == 0, err
    doc = json.loads(out)
    liu = next(r for g in doc["groups"] for r in g["events"] if r["event_id"] == "2022-03-16-fsdc-liu-he")
    # against market + sector, BABA's day-0 abnormal return is the 6.2% beyond KWEB's 39.7% (the figure),
    # and the window's expected return is more sector than market
    assert 0.03 < liu["ar"][5] < 0.1
    d = liu["decomposition"]
    assert d["sector"] > d["market"] > 0 and d["raw"] == pytest.approx(sum(d[k] for k in ("constant", "market",
                                                                                         "sector", "abnormal")))
