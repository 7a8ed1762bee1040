"""Event-study statistics: hand computations on tiny datasets, and a second implementation written with plain
Python loops and the textbook closed forms (MacKinlay 1997) instead of engine.analysis.event_study's matrix algebra."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from engine.analysis import abnormal_returns as ab
from engine.analysis import distributions as dist
from engine.analysis import event_study as study
from engine.analysis import event_tests as et
from engine.errors import ConfigError

# ---------------------------------------------------------------- Student t


@pytest.mark.parametrize("t", [0.0, 0.3, 1.0, 2.5, 12.0])
def test_t_pvalue_closed_forms(t: float) -> None:
    # df = 1 is the Cauchy distribution, df = 2 has a closed form too.
    assert dist.t_pvalue(t, 1) == pytest.approx(1 - 2 / math.pi * math.atan(t), abs=1e-12)
    assert dist.t_pvalue(t, 2) == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-12)
    # very many degrees of freedom: the normal distribution
    assert dist.t_pvalue(t, 1e7) == pytest.approx(math.erfc(t / math.sqrt(2)), abs=1e-6)
    assert dist.t_pvalue(-t, 7) == dist.t_pvalue(t, 7)


def test_t_table_values() -> None:
    # printed t tables (two-sided 5% and 1%)
    assert dist.t_critical(10) == pytest.approx(2.228, abs=5e-4)
    assert dist.t_critical(1) == pytest.approx(12.706, abs=5e-4)
    assert dist.t_critical(30) == pytest.approx(2.042, abs=5e-4)
    assert dist.t_critical(5, 0.99) == pytest.approx(4.032, abs=5e-4)
    assert dist.t_pvalue(2.0, 10) == pytest.approx(0.07339, abs=1e-5)
    assert dist.t_pvalue(None, 10) is None
    assert dist.t_pvalue(float("nan"), 10) is None


# ---------------------------------------------------------------- one event by hand

# Estimation window built so that OLS is known exactly: y = 0.001 + 0.5 m + e, with e orthogonal to [1, m].
M_EST = np.array([-0.02, -0.01, 0.0, 0.01, 0.02])
E_EST = np.array([0.001, -0.002, 0.0, 0.002, -0.001])
Y_EST = 0.001 + 0.5 * M_EST + E_EST
M_WIN = np.array([0.01, 0.02])
Y_WIN = np.array([0.03, -0.01])


def test_market_model_by_hand() -> None:
    fit = ab.fit_model("market", Y_EST, M_EST)
    assert fit.params == pytest.approx([0.001, 0.5], abs=1e-12)
    sigma2 = 1e-5 / 3  # SSR = 1e-6 * (1 + 4 + 0 + 4 + 1), T - k = 3
    assert fit.sigma2 == pytest.approx(sigma2, rel=1e-9)
    assert fit.dof == 3
    out = ab.abnormal_returns(fit, Y_WIN, M_WIN)
    assert out.ar == pytest.approx([0.024, -0.021], abs=1e-12)  # 0.03 - 0.001 - 0.005; -0.01 - 0.001 - 0.01
    assert out.car == pytest.approx([0.024, 0.003], abs=1e-12)
    # (X'X)^-1 = diag(1/5, 1/0.001) because mean(m) = 0 and sum(m^2) = 0.001
    assert out.ar_var == pytest.approx([sigma2 * 1.3, sigma2 * 1.6], rel=1e-9)  # 1 + 1/5 + m^2 / 0.001
    assert out.car_var == pytest.approx([sigma2 * 1.3, sigma2 * 3.7], rel=1e-9)  # 2 + 2^2/5 + 0.03^2/0.001


def test_mean_and_raw_models_by_hand() -> None:
    fit = ab.fit_model("mean", Y_EST, M_EST)
    assert fit.params == pytest.approx([0.001])
    sigma2 = 2 * (0.009**2 + 0.007**2) / 4  # residuals -0.009 -0.007 0 0.007 0.009, T - 1 = 4
    assert fit.sigma2 == pytest.approx(sigma2, rel=1e-9)
    out = ab.abnormal_returns(fit, Y_WIN, M_WIN)
    assert out.ar == pytest.approx([0.029, -0.011], abs=1e-12)
    assert out.car_var[-1] == pytest.approx(sigma2 * (2 + 4 / 5), rel=1e-9)
    raw = ab.fit_model("raw", Y_EST, M_EST)
    assert raw.dof == 5
    assert raw.sigma2 == pytest.approx(float(np.sum(Y_EST**2)) / 5, rel=1e-12)
    out_raw = ab.abnormal_returns(raw, Y_WIN, M_WIN)
    assert out_raw.ar == pytest.approx(Y_WIN)
    assert out_raw.car_var == pytest.approx([raw.sigma2, 2 * raw.sigma2])


def test_cross_section_by_hand() -> None:
    res = et.cross_sectional_t(np.array([0.01, 0.03, 0.02]))
    assert res.stat == pytest.approx(2 * math.sqrt(3))  # mean 0.02, sd 0.01, N = 3
    assert res.df == 2
    assert res.p == pytest.approx(1 - 2 * math.sqrt(3) / math.sqrt(2 + 12))  # closed form for df = 2
    assert et.cross_sectional_t(np.array([0.01])).stat is None
    assert et.cross_sectional_t(np.array([0.01, 0.01])).stat is None
    assert et.kp_factor(0.1, 11) == pytest.approx(math.sqrt(0.9 / 2.0))
    assert et.kp_factor(0.0, 5) == 1.0


def test_windows_are_validated() -> None:
    assert study.parse_window("-5:10", "--window") == (-5, 10)
    for bad in ("5", "a:b", "3:1", "-1:2:3"):
        with pytest.raises(ConfigError, match="--window"):
            study.parse_window(bad, "--window")
    with pytest.raises(ConfigError, match="must end before"):
        study.StudyConfig(window=(-5, 10), estimation=(-100, -5))
    with pytest.raises(ConfigError, match="at least"):
        study.StudyConfig(estimation=(-40, -30))
    with pytest.raises(ConfigError, match="model"):
        study.StudyConfig(model="capm")


# ---------------------------------------------------------------- independent implementation (loops)


def ref_event(model: str, y_est: list[float], m_est: list[float], y_win: list[float], m_win: list[float]) -> dict:
    """Textbook formulas with plain loops: OLS by sums, MacKinlay's closed-form CAR variance."""
    t_len, l_len = len(y_est), len(y_win)
    if model == "market":
        m_bar = sum(m_est) / t_len
        y_bar = sum(y_est) / t_len
        sxx = sum((m - m_bar) ** 2 for m in m_est)
        sxy = sum((m - m_bar) * (y - y_bar) for m, y in zip(m_est, y_est, strict=True))
        beta = sxy / sxx
        alpha = y_bar - beta * m_bar
        resid = [y - alpha - beta * m for y, m in zip(y_est, m_est, strict=True)]
        s2 = sum(e * e for e in resid) / (t_len - 2)
        ar = [y - alpha - beta * m for y, m in zip(y_win, m_win, strict=True)]
        ar_var = [s2 * (1 + 1 / t_len + (m - m_bar) ** 2 / sxx) for m in m_win]
        car_var = []
        for tau in range(1, l_len + 1):
            sum_m = sum(m_win[:tau])
            car_var.append(s2 * (tau + tau * tau / t_len + (sum_m - tau * m_bar) ** 2 / sxx))
        dof = t_len - 2
    elif model == "mean":
        mu = sum(y_est) / t_len
        resid = [y - mu for y in y_est]
        s2 = sum(e * e for e in resid) / (t_len - 1)
        ar = [y - mu for y in y_win]
        ar_var = [s2 * (1 + 1 / t_len)] * l_len
        car_var = [s2 * (tau + tau * tau / t_len) for tau in range(1, l_len + 1)]
        dof = t_len - 1
    else:
        resid = list(y_est)
        s2 = sum(e * e for e in resid) / t_len
        ar = list(y_win)
        ar_var = [s2] * l_len
        car_var = [s2 * tau for tau in range(1, l_len + 1)]
        dof = t_len
    car, running = [], 0.0
    for a in ar:
        running += a
        car.append(running)
    return {"ar": ar, "ar_var": ar_var, "car": car, "car_var": car_var, "resid": resid, "dof": dof}


def ref_corr(a: dict, b: dict) -> float | None:
    common = sorted(set(a) & set(b))
    if len(common) < et.MIN_COMMON:
        return None
    xs, ys = [a[d] for d in common], [b[d] for d in common]
    return statistics.correlation(xs, ys)


def ref_aggregate(events: list[dict]) -> dict:
    """Cross-sectional t, BMP and Kolari-Pynnonen with the statistics module."""
    n = len(events)
    pair_sum = 0.0
    clustered = False
    for i in range(n):
        for j in range(i + 1, n):
            a, b = events[i], events[j]
            if a["dates"][0] <= b["dates"][-1] and b["dates"][0] <= a["dates"][-1]:
                clustered = True
                r = ref_corr(a["resid_by_date"], b["resid_by_date"])
                pair_sum += r or 0.0
    rbar = pair_sum / (n * (n - 1) / 2)
    factor = math.sqrt((1 - rbar) / (1 + (n - 1) * rbar))
    out: dict[str, list[float]] = {"aar": [], "aar_t": [], "aar_bmp": [], "caar": [], "caar_t": [], "caar_bmp": []}
    for col in range(len(events[0]["ar"])):
        ars = [e["ar"][col] for e in events]
        sars = [e["ar"][col] / math.sqrt(e["ar_var"][col]) for e in events]
        cars = [e["car"][col] for e in events]
        scars = [e["car"][col] / math.sqrt(e["car_var"][col]) for e in events]
        for key, vals in (("aar", ars), ("caar", cars)):
            out[key].append(statistics.fmean(vals))
        for key, vals in (("aar_t", ars), ("aar_bmp", sars), ("caar_t", cars), ("caar_bmp", scars)):
            out[key].append(statistics.fmean(vals) * math.sqrt(n) / statistics.stdev(vals))
    out["rbar"] = rbar
    out["factor"] = factor
    out["clustered"] = clustered
    return out


def _synthetic_events(seed: int, n: int, model: str) -> tuple[list[ab.Sample], list[dict]]:
    """n events on a common business-day calendar; half of them share day 0 (clustering)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-01", periods=900)
    market = rng.normal(0, 0.012, len(dates))
    common = rng.normal(0, 0.01, len(dates))  # a shared shock: residuals of clustered events correlate
    est, win = (-120, -11), (-3, 5)
    samples, refs = [], []
    for k in range(n):
        pos = 300 if k % 2 == 0 else 300 + 60 * k
        beta = 0.6 + 0.1 * k
        rets = 0.0002 * k + beta * market + 0.7 * common + rng.normal(0, 0.015, len(dates))
        rets[pos : pos + 3] += 0.02  # an event effect
        returns = pd.Series(rets, index=dates)
        prepared = ab.prepare_sample(returns, pd.Series(market, index=dates), dates[pos], win, est)
        assert not isinstance(prepared, str)
        _, sample = ab.study_sample(prepared, model)
        samples.append(sample)
        ref = ref_event(model, list(prepared.est_returns), list(prepared.est_market),
                        list(prepared.win_returns), list(prepared.win_market))
        ref["dates"] = list(prepared.win_dates)
        ref["resid_by_date"] = dict(zip(prepared.est_dates, ref["resid"], strict=True))
        refs.append(ref)
    return samples, refs


@pytest.mark.parametrize("model", ("market", "mean", "raw"))
def test_against_independent_implementation(model: str) -> None:
    samples, refs = _synthetic_events(seed=7, n=8, model=model)
    for sample, ref in zip(samples, refs, strict=True):
        assert sample.abnormal.ar == pytest.approx(ref["ar"], rel=1e-9, abs=1e-14)
        assert sample.abnormal.ar_var == pytest.approx(ref["ar_var"], rel=1e-9)
        assert sample.abnormal.car == pytest.approx(ref["car"], rel=1e-9, abs=1e-14)
        assert sample.abnormal.car_var == pytest.approx(ref["car_var"], rel=1e-9)
    days, clustering = et.aggregate(samples, (-3, 5))
    expected = ref_aggregate(refs)
    assert clustering.clustered is expected["clustered"] is True
    assert clustering.mean_correlation == pytest.approx(expected["rbar"], rel=1e-9)
    assert clustering.kp_factor == pytest.approx(expected["factor"], rel=1e-9)
    assert clustering.shared_day0 == ((samples[0].day0.date().isoformat(), 4),)
    for col, day in enumerate(days):
        assert day.aar == pytest.approx(expected["aar"][col], rel=1e-9)
        assert day.caar == pytest.approx(expected["caar"][col], rel=1e-9)
        assert day.aar_t.stat == pytest.approx(expected["aar_t"][col], rel=1e-9)
        assert day.aar_bmp.stat == pytest.approx(expected["aar_bmp"][col], rel=1e-9)
        assert day.caar_t.stat == pytest.approx(expected["caar_t"][col], rel=1e-9)
        assert day.caar_bmp.stat == pytest.approx(expected["caar_bmp"][col], rel=1e-9)
        assert day.caar_bmp_kp is not None
        assert day.caar_bmp_kp.stat == pytest.approx(expected["caar_bmp"][col] * expected["factor"], rel=1e-9)
        assert day.caar_t_kp is not None
        assert day.caar_t_kp.stat == pytest.approx(expected["caar_t"][col] * expected["factor"], rel=1e-9)
        assert day.band_low is not None and day.band_high is not None
        half = dist.t_critical(len(samples) - 1) * statistics.stdev(
            [r["car"][col] for r in refs]) / math.sqrt(len(refs)) / expected["factor"]
        assert day.band_high - day.caar == pytest.approx(half, rel=1e-9)
        assert day.caar - day.band_low == pytest.approx(half, rel=1e-9)


def test_no_clustering_no_adjustment() -> None:
    samples, _ = _synthetic_events(seed=3, n=8, model="market")
    apart = samples[1::2]  # the events 60 bars apart: windows never overlap
    days, clustering = et.aggregate(apart, (-3, 5))
    assert clustering.clustered is False
    assert clustering.overlapping_pairs == 0
    assert clustering.kp_factor is None
    assert all(d.caar_bmp_kp is None and d.caar_t_kp is None for d in days)


def test_clustered_correlation_is_positive_and_shrinks_statistics() -> None:
    samples, _ = _synthetic_events(seed=11, n=8, model="market")
    days, clustering = et.aggregate(samples, (-3, 5))
    assert clustering.mean_correlation > 0  # the shared shock
    assert 0 < clustering.kp_factor < 1
    assert abs(days[-1].caar_bmp_kp.stat) < abs(days[-1].caar_bmp.stat)


def test_prepare_sample_skip_reasons() -> None:
    dates = pd.bdate_range("2021-01-01", periods=300)
    rets = pd.Series(np.random.default_rng(0).normal(0, 0.01, 300), index=dates)
    rets.iloc[0] = np.nan
    market = rets * 0.5
    ok = ab.prepare_sample(rets, market, dates[260], (-5, 10), (-250, -30))
    assert not isinstance(ok, str) and ok.day0 == dates[260]
    assert "not enough history" in ab.prepare_sample(rets, market, dates[100], (-5, 10), (-250, -30))
    assert "bars after day 0" in ab.prepare_sample(rets, market, dates[295], (-5, 10), (-250, -30))
    holes = market.copy()
    holes.iloc[100] = np.nan
    assert "benchmark" in ab.prepare_sample(rets, holes, dates[260], (-5, 10), (-250, -30))
    sector_holes = ab.prepare_sample(rets, market, dates[260], (-5, 10), (-250, -30), sector=holes)
    assert "sector benchmark has no prices" in sector_holes
    with pytest.raises(ValueError, match="not a bar"):  # day 0 comes from the fill-bar rule, always a bar
        ab.prepare_sample(rets, market, pd.Timestamp("2021-12-18"), (-5, 10), (-250, -30))


# ---------------------------------------------------------------- two-factor model by hand

# Sector = market + D, with D orthogonal to [1, m]: the sector's part beyond the market is exactly D (g = 0, h = 1).
D_EST = np.array([0.01, -0.02, 0.0, 0.02, -0.01])
S_EST = M_EST + D_EST
E3 = 0.001 * np.array([2.0, -1.0, -2.0, -1.0, 2.0])  # orthogonal to 1, m and D
Y3 = 0.001 + 0.5 * M_EST + 0.8 * D_EST + E3
S_WIN = np.array([0.03, 0.0])


def test_two_factor_model_by_hand() -> None:
    fit = ab.fit_model("two-factor", Y3, M_EST, S_EST)
    assert fit.ortho == pytest.approx((0.0, 1.0), abs=1e-12)
    assert fit.params == pytest.approx([0.001, 0.5, 0.8], abs=1e-12)
    sigma2 = 14e-6 / 2  # SSR = 1e-6 (4 + 1 + 4 + 1 + 4), T - k = 2
    assert fit.sigma2 == pytest.approx(sigma2, rel=1e-9) and fit.dof == 2
    assert fit.xtx_inv == pytest.approx(np.diag([0.2, 1000.0, 1000.0]), abs=1e-6)
    out = ab.abnormal_returns(fit, Y_WIN, M_WIN, S_WIN)
    # sector beyond the market in the window: S - M = [0.02, -0.02]
    assert out.ar == pytest.approx([0.03 - 0.001 - 0.005 - 0.016, -0.01 - 0.001 - 0.01 + 0.016], abs=1e-12)
    assert out.ar_var[0] == pytest.approx(sigma2 * (1 + 0.2 + 1000 * 0.01**2 + 1000 * 0.02**2), rel=1e-9)
    parts = ab.decompose(fit, Y_WIN, M_WIN, S_WIN)
    assert (parts.raw, parts.constant, parts.market, parts.sector, parts.abnormal) == pytest.approx(
        (0.02, 0.002, 0.015, 0.0, 0.003), abs=1e-12)
    # the orthogonal form keeps the market model's beta as the market exposure
    assert ab.fit_model("market", Y3, M_EST).params[1] == pytest.approx(fit.params[1], abs=1e-12)


def test_collinear_design_is_refused_not_inverted() -> None:
    with pytest.raises(ab.CollinearError, match="collinear"):
        ab.fit_model("market", Y_EST, np.full(5, 0.01))  # a benchmark that moved the same every day
    with pytest.raises(ab.CollinearError):
        ab.fit_model("two-factor", Y_EST, M_EST, 2.0 * M_EST)  # the sector is the market


# ---------------------------------------------------------------- groups, pooling, skip reasons


def _fake(event_type: str, k: int, car: float) -> tuple[study.EventResult, ab.Sample]:
    dates = pd.bdate_range("2021-01-01", periods=60) + pd.Timedelta(days=400 * k)
    ar = np.array([car / 2, car / 2])
    sample = ab.Sample(ab.EventAbnormal(ar, np.full(2, 1e-4), np.cumsum(ar), np.array([1e-4, 2e-4])),
                       pd.Series(np.linspace(-0.01, 0.01, 50), index=dates[:50]), dates[55:57], dates[55])
    result = study.EventResult(f"e{k}", "BABA", event_type, "2021-01-01", "", "2021-01-01", "2021-01-01", 0,
                               "", "", None, None, (), 0.01, 48, tuple(ar), car, 0.01, None, None)
    return result, sample


def test_groups_by_type_and_pooling() -> None:
    samples = [_fake("regulatory_crackdown", 0, -0.05), _fake("official_reassurance", 1, 0.04),
               _fake("official_reassurance", 2, 0.06), _fake("regulatory_crackdown", 3, -0.03)]
    groups = study.make_groups(samples, (0, 1), pool=False)
    assert [g.types for g in groups] == [("official_reassurance",), ("regulatory_crackdown",)]  # EVENT_TYPES order
    assert [g.expected_sign for g in groups] == [1, -1]
    assert [len(g.events) for g in groups] == [2, 2]
    assert groups[0].summary.caar == pytest.approx(0.05) and groups[1].summary.caar == pytest.approx(-0.04)
    pooled = study.make_groups(samples, (0, 1), pool=True)
    assert len(pooled) == 1 and pooled[0].types == ("official_reassurance", "regulatory_crackdown")
    assert pooled[0].summary.caar == pytest.approx(0.005)  # the two reactions cancel
    assert pooled[0].expected_sign == 0
    assert study.pooled_sign(["official_reassurance", "regulatory_crackdown"]) == (0, True)
    assert study.pooled_sign(["official_reassurance", "policy_support", "other"]) == (1, False)
    assert study.pooled_sign(["delisting_risk", "analyst_downgrade"]) == (-1, False)


def test_repeated_skip_reasons_are_grouped() -> None:
    skipped = [study.SkippedEvent(f"e{k}", "0700.HK", "benchmark ^HSI unavailable (" + "x" * 200 + ")", "benchmark")
               for k in range(20)]
    skipped += [study.SkippedEvent("h1", "BABA", "not enough history: ... has 10", "history"),
                study.SkippedEvent("h2", "BABA", "not enough history: ... has 56", "history")]
    groups = study.group_skips(skipped)
    assert [(g.kind, g.count) for g in groups] == [("benchmark", 20), ("history", 2)]
    assert groups[0].reason.startswith("benchmark ^HSI unavailable") and len(groups[0].examples) == 3
    assert groups[1].reason == study.SKIP_KINDS["history"]  # details differ: the kind's sentence


def test_sector_events_apply_to_named_indexes_and_funds() -> None:
    from engine.events.catalog import Event

    def ev(scope: str, symbols: tuple[str, ...]) -> Event:
        return Event("x", dt.date(2022, 3, 16), "Asia/Shanghai", None, None, None, "official_reassurance", scope,
                     symbols, "", "")

    universe = ["BABA", "NTES", "^HSTECH", "KWEB"]
    gaming = ev("sector", ("NTES",))
    assert [s for _, s in study.study_pairs([gaming], universe)] == ["NTES", "^HSTECH", "KWEB"]
    single = ev("single", ("BABA",))
    assert [s for _, s in study.study_pairs([single], universe)] == ["BABA"]


def test_day0_uses_the_backtest_fill_bar_rule_across_a_gap(tmp_path) -> None:
    """A suspension moves day 0 to the next bar, as it moves a backtest's fill (the study used to skip such
    samples with its own 10-day rule); the sample notes the gap."""
    from engine.events.timing import entry_session
    from engine.plan.planner import placement
    from engine.prices.store import PriceStore
    from tests.engine_helpers import event, frame_on_sessions

    store = PriceStore(tmp_path, offline=True)
    stock = frame_on_sessions("XNYS", "2020-06-01", "2022-12-30", seed=1)
    stock = stock.drop(stock.loc["2022-03-14":"2022-03-31"].index)
    store.write("AAA", stock.drop(columns=["stale"]), "csv")
    store.write("SPY", frame_on_sessions("XNYS", "2020-06-01", "2022-12-30", seed=2).drop(columns=["stale"]), "csv")
    ev = event("halt", "2022-03-16", tz="America/New_York")
    result = study.run_study(study.StudyConfig(types=("official_reassurance",)), store, [ev], ["AAA"])
    [row] = result.events
    entry = entry_session(ev, "AAA", "open")
    assert row.entry_session == "2022-03-17" == entry.date().isoformat()
    assert row.day0 == "2022-04-01" == placement(store.load("AAA"), entry)[2].date().isoformat()
    assert row.day0_gap_days == 15
    assert any("calendar days after the entry session" in w for w in result.warnings)


# ---------------------------------------------------------------- clustering against a pair-by-pair loop


def _loop_pairs(windows: list[pd.DatetimeIndex]) -> list[tuple[int, int]]:
    n = len(windows)
    return [(i, j) for i in range(n) for j in range(i + 1, n)
            if windows[i][0] <= windows[j][-1] and windows[j][0] <= windows[i][-1]]


def _loop_rbar(residuals: list[pd.Series], pairs: list[tuple[int, int]], min_common: int) -> tuple[float, int]:
    total, short = 0.0, 0
    for i, j in pairs:
        a, b = residuals[i].align(residuals[j], join="inner")
        if len(a) < min_common:
            short += 1
        elif a.std(ddof=0) > 0 and b.std(ddof=0) > 0:
            total += float(np.corrcoef(a.to_numpy(), b.to_numpy())[0, 1])
    n = len(residuals)
    return total / (n * (n - 1) / 2), short


@pytest.mark.parametrize("seed", range(6))
def test_overlaps_and_mean_correlation_equal_a_pair_by_pair_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2020-01-01", periods=900)
    windows, residuals = [], []
    for _ in range(int(rng.integers(2, 40))):
        start = int(rng.integers(0, 850))
        windows.append(days[start:start + int(rng.integers(1, 16))])
        est = days[max(0, start - 260):max(1, start - 20)]
        est = est[rng.random(len(est)) > 0.2]  # gaps: pairs share only some dates
        residuals.append(pd.Series(rng.normal(0, 0.01, len(est)), index=est))
    windows.append(windows[0][-1:].append(windows[0][-1:] + pd.Timedelta(days=3)))  # touches window 0's end
    residuals.append(residuals[0].iloc[::2])
    samples = [SimpleNamespace(window_dates=w) for w in windows]
    expected_pairs = _loop_pairs(windows)
    assert et.overlapping_pairs(samples) == expected_pairs
    assert (0, len(windows) - 1) in expected_pairs
    rbar, short = et.mean_cross_correlation(residuals, expected_pairs, min_common=30)
    want_rbar, want_short = _loop_rbar(residuals, expected_pairs, 30)
    assert short == want_short
    assert rbar == want_rbar  # same dates, same order, same numpy call: equal to the last bit


def test_mean_correlation_with_repeated_dates_uses_pandas_alignment() -> None:
    dates = pd.bdate_range("2021-01-01", periods=60)
    rng = np.random.default_rng(5)
    a = pd.Series(rng.normal(size=60), index=dates)
    b = pd.Series(rng.normal(size=61), index=dates.append(dates[-1:]))  # a repeated date: not a set of keys
    assert et.mean_cross_correlation([a, b], [(0, 1)], min_common=30) == _loop_rbar([a, b], [(0, 1)], 30)


# ---------------------------------------------------------------- benchmark data that ends early


def test_benchmark_levels_are_not_carried_past_the_benchmarks_last_bar() -> None:
    """Forward filling covers a session the benchmark skipped, never the dates after its data ends: there the
    benchmark return is unknown (NaN), not 0."""
    d = pd.DatetimeIndex(["2022-01-03", "2022-01-04", "2022-01-05", "2022-01-06", "2022-01-07"])
    bench = pd.DataFrame({"adj_close": [100.0, 110.0, 99.0], "close": [100.0, 110.0, 99.0],
                          "stale": [False, False, False]}, index=d[[0, 2, 3]])
    got = ab.aligned_market_returns(bench, d)
    # by hand: d1 has no bar (level 100 carried: 0%), d2 110/100 - 1 = 10%, d3 99/110 - 1 = -10%, d4 after the end
    assert got.iloc[1:4].tolist() == pytest.approx([0.0, 0.1, -0.1], abs=1e-15)
    assert math.isnan(got.iloc[0]) and math.isnan(got.iloc[4])


def test_benchmark_ending_before_a_window_skips_the_sample(tmp_path) -> None:
    """A market benchmark whose data ends before (or inside) the windows gave Rm = 0 on every later day: the
    sample was reported as a market-model CAR with a market part of exactly 0 (2800.HK, which ends 2022-09-30, as
    --benchmark for the 2023 events). It is skipped: the benchmark has no prices for part of a window."""
    from engine.prices.store import PriceStore
    from tests.engine_helpers import event, frame_on_sessions

    store = PriceStore(tmp_path, offline=True)
    store.write("AAA", frame_on_sessions("XNYS", "2020-06-01", "2022-12-30", seed=1).drop(columns=["stale"]), "csv")
    spy = frame_on_sessions("XNYS", "2020-06-01", "2022-12-30", seed=2).drop(columns=["stale"])
    store.write("SPY", spy.loc[:"2022-03-01"], "csv")
    inside = event("inside", "2022-03-16", tz="America/New_York")  # estimation window ends about 2022-02-01
    after = event("after", "2022-06-15", tz="America/New_York")  # estimation window crosses 2022-03-01
    before = event("before", "2021-10-15", tz="America/New_York")  # every window before the end: studied
    config = study.StudyConfig(types=("official_reassurance",))
    result = study.run_study(config, store, [before, inside, after], ["AAA"])
    assert [r.event_id for r in result.events] == ["before"]
    skipped = {s.event_id: s for s in result.skipped}
    assert set(skipped) == {"inside", "after"}
    assert skipped["inside"].kind == skipped["after"].kind == "benchmark_gap"
    assert "event window" in skipped["inside"].reason and "estimation window" in skipped["after"].reason


def test_not_enough_history_counts_the_bar_before_the_first_return() -> None:
    """Estimation day -250 is a return, which needs the close of bar -251: with 250 bars before day 0 the sample is
    skipped, and the reason said it needed 250 bars and the data had 250."""
    dates = pd.bdate_range("2021-01-01", periods=300)
    rets = pd.Series(np.random.default_rng(3).normal(0, 0.01, 300), index=dates)
    rets.iloc[0] = np.nan  # the first bar has no return
    assert not isinstance(ab.prepare_sample(rets, rets * 0.5, dates[251], (-5, 10), (-250, -30)), str)
    reason = ab.prepare_sample(rets, rets * 0.5, dates[250], (-5, 10), (-250, -30))
    assert isinstance(reason, str) and reason.startswith("not enough history")
    assert "needs 251 bars before day 0" in reason and "the data has 250" in reason


def test_no_band_when_the_cars_do_not_vary() -> None:
    """Two samples with the same CARs (one stock, two events on one day, e.g. two brokers' downgrades of 3690.HK on
    2023-11-29): the cross-sectional sd is 0, the t test is undefined, and the band was printed as
    '95% band [-15.879%, -15.879%]', a zero-width interval. It is undefined too."""
    samples, _ = _synthetic_events(seed=5, n=2, model="market")
    days, _ = et.aggregate([samples[1], samples[1]], (-3, 5))
    for d in days:
        assert d.caar_t.stat is None
        assert d.band_low is None and d.band_high is None


def test_decomposition_is_labelled_a_sum_of_daily_returns() -> None:
    """The decomposition adds daily returns (the CAR convention): +10% then -10% is 0% summed, while the price fell
    1% over the window. BABA's -5:10 window around 2022-03-16 sums to 25.7% while its adjusted close rose 19.6%
    (96.21 -> 115.03): the text called the sum the 'mean window return'."""
    from engine.reporting.study_text import decomposition_text

    fit = ab.fit_model("raw", np.array([0.01, -0.02, 0.005]))
    parts = ab.decompose(fit, np.array([0.1, -0.1]))
    assert parts.raw == pytest.approx(0.0, abs=1e-15)
    text = decomposition_text(parts, "raw")
    assert text is not None and "window return" not in text
    assert text.startswith("mean sum of daily returns over the window 0.000% = abnormal 0.000%")


def test_a_hole_in_a_same_venue_benchmark_is_reported(tmp_path) -> None:
    """A same-venue benchmark with no bar on a session the symbol traded (a hole in its data): the carried level
    gives the market model Rm = 0 that day and a two-day return the next. The sample is kept (a day or two of
    ~220 move beta little) but the study names the date and the samples. A venue's holiday is not a hole."""
    from engine.prices.store import PriceStore
    from tests.engine_helpers import event, frame_on_sessions

    store = PriceStore(tmp_path, offline=True)
    store.write("AAA", frame_on_sessions("XNYS", "2020-06-01", "2022-12-30", seed=1).drop(columns=["stale"]), "csv")
    spy = frame_on_sessions("XNYS", "2020-06-01", "2022-12-30", seed=2).drop(columns=["stale"])
    store.write("SPY", spy.drop(pd.Timestamp("2021-08-02")), "csv")
    hit = event("hit", "2021-11-15", tz="America/New_York")  # estimation window about 2020-11 .. 2021-10
    clear = event("clear", "2022-11-15", tz="America/New_York")  # estimation window from about 2021-11
    config = study.StudyConfig(types=("official_reassurance",))
    result = study.run_study(config, store, [hit, clear], ["AAA"])
    assert [r.event_id for r in result.events] == ["hit", "clear"]
    [note] = [w for w in result.warnings if "no bar on" in w]
    assert "benchmark SPY has no bar on 2021-08-02" in note and "1 sample(s)" in note and "hit AAA" in note
    alone = study.run_study(config, store, [clear], ["AAA"])
    assert not [w for w in alone.warnings if "no bar on" in w]


def test_mean_correlation_matches_dates_whatever_their_unit() -> None:
    """Residual dates in microseconds (pandas 3's default) beside nanoseconds are the same dates: the pair's common
    dates were compared as raw integers, found none, and the pair counted 0 with 'no common dates'."""
    d = pd.bdate_range("2021-01-01", periods=40)
    a = np.random.default_rng(0).normal(size=40)
    b = a + np.random.default_rng(1).normal(size=40) * 0.1
    expected = float(np.corrcoef(a, b)[0, 1])  # same 40 dates: the plain correlation, over N(N-1)/2 = 1 pair
    got = et.mean_cross_correlation([pd.Series(a, index=d.as_unit("ns")), pd.Series(b, index=d.as_unit("us"))],
                                    [(0, 1)])
    assert got == (pytest.approx(expected, rel=1e-12), 0)


def test_an_undefined_kolari_pynnonen_factor_is_not_said_to_be_applied() -> None:
    """With an average cross-correlation of 1 (the same sample twice) the factor sqrt((1 - r) / (1 + (N - 1) r)) is
    undefined and nothing is adjusted (no KP rows, the plain band): the text and the HTML said 'factor - applied'."""
    from engine.reporting.html_report import _clustering_text
    from engine.reporting.study_text import clustering_text

    d = pd.Series(np.arange(30.0), index=pd.bdate_range("2021-01-01", periods=30))
    assert et.kp_factor(1.0, 2) != et.kp_factor(1.0, 2)  # NaN
    cl = et.Clustering(True, (("2021-03-01", 2),), 1, 1, 0, 1.0, None)
    assert et.mean_cross_correlation([d, d], [(0, 1)]) == (pytest.approx(1.0), 0)
    for text in (clustering_text(cl), _clustering_text(cl)):
        assert "applied" not in text and "not defined" in text


def test_a_benchmark_level_on_a_zero_volume_bar_is_used() -> None:
    """Yahoo's ^HSI bar of 2020-03-23 has volume 0 and O=H=L=C (flagged stale: never filled at) but holds that day's
    close, 21696.13 (-4.86% from 22805.07 on 2020-03-20); the study dropped it and carried 22805.07, so every HK
    symbol's market return was 0% on 2020-03-23 and -0.62% (22663.49 / 22805.07 - 1) on 2020-03-24. A benchmark's
    level is its close whatever the volume (a placeholder repeating the close gives 0%, as carrying it did)."""
    d = pd.DatetimeIndex(["2020-03-20", "2020-03-23", "2020-03-24"])
    closes = [22805.070312, 21696.130859, 22663.490234]
    hsi = pd.DataFrame({"adj_close": closes, "close": closes, "stale": [False, True, False]}, index=d)
    got = ab.aligned_market_returns(hsi, d)
    assert got.iloc[1] == pytest.approx(21696.130859 / 22805.070312 - 1, rel=1e-12)  # -4.86%
    assert got.iloc[2] == pytest.approx(22663.490234 / 21696.130859 - 1, rel=1e-12)  # +4.46%


def test_samples_sharing_symbol_and_day0_are_named(tmp_path) -> None:
    """Two events a day apart (2021-12-02 after the US close, 2021-12-03 before the open) reach the same fill bar
    of one symbol: the same abnormal returns counted as two samples, silently. The study names them; events on
    different days 0, or the same day 0 of different symbols, are not named."""

    from engine.prices.store import PriceStore
    from tests.engine_helpers import event, frame_on_sessions
    store = PriceStore(tmp_path, offline=True)
    for n, sym in enumerate(("AAA", "BBB", "SPY")):
        store.write(sym, frame_on_sessions("XNYS", "2020-06-01", "2022-12-30", seed=n).drop(columns=["stale"]), "csv")
    news = [event("late", "2021-12-02", tz="America/New_York", time="17:00", symbols=("AAA",), scope="company"),
            event("early", "2021-12-03", tz="America/New_York", time="08:00", symbols=("AAA", "BBB"),
                  scope="company"),
            event("apart", "2022-06-15", tz="America/New_York", time="08:00", symbols=("AAA",), scope="company")]
    result = study.run_study(study.StudyConfig(types=("official_reassurance",)), store, news, ["AAA", "BBB"])
    assert sorted((r.event_id, r.symbol, r.day0) for r in result.events) == [
        ("apart", "AAA", "2022-06-15"), ("early", "AAA", "2021-12-03"), ("early", "BBB", "2021-12-03"),
        ("late", "AAA", "2021-12-03")]
    [note] = [w for w in result.warnings if "share their symbol and day 0" in w]
    assert note.startswith("2 samples share their symbol and day 0 with another sample of their group: 1 reaction(s)")
    assert note.endswith("AAA day 0 2021-12-03 (late + early)")
