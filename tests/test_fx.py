"""Currencies: Yahoo FX conventions, cross rates, the known-at rule, pence, pegs, missing pairs, and
end-to-end offline runs mixing Tokyo, London and Hong Kong listings in a USD and a JPY base."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.errors import ConfigError, EvbtWarning, MissingDataError
from engine.events import timing
from engine.market import fx
from engine.market.prepare import in_currency_units
from engine.market.symbols import listing

Run = Callable[..., tuple[int, str, str]]
UTC = "UTC"


def series(values: dict[str, float]) -> pd.Series:
    return pd.Series(list(values.values()), index=pd.DatetimeIndex(list(values)), name="close")


def test_yahoo_conventions_and_cross_rates() -> None:
    rates = fx.FxRates("USD", {"JPY=X": series({"2022-06-01": 130.0}), "GBPUSD=X": series({"2022-06-01": 1.25})})
    t = pd.Timestamp("2022-06-03 12:00", tz=UTC)
    assert rates.local_per_base("JPY", t)[0] == 130.0  # JPY=X is JPY per USD
    assert rates.local_per_base("GBP", t)[0] == pytest.approx(0.8)  # GBPUSD=X is USD per GBP
    assert rates.local_per_base("USD", t)[0] == 1.0
    jpy_base = fx.FxRates("JPY", rates.series)
    assert jpy_base.local_per_base("GBP", t)[0] == pytest.approx(0.8 / 130.0)  # GBP per JPY via USD
    assert jpy_base.local_per_base("USD", t)[0] == pytest.approx(1 / 130.0)
    assert jpy_base.local_per_base("JPY", t)[0] == 1.0
    assert fx.pairs_needed({"JPY", "GBP", "HKD", "USD"}, "USD") == ["GBPUSD=X", "HKD=X", "JPY=X"]
    assert fx.pairs_needed({"JPY", "USD"}, "JPY") == ["JPY=X"]  # USD per JPY comes from JPY=X itself
    assert fx.pairs_needed({"JPY"}, "JPY") == []
    assert fx.pairs_needed({"GBP"}, "JPY") == ["GBPUSD=X", "JPY=X"]


def test_a_daily_quote_is_known_from_the_next_utc_midnight() -> None:
    rates = fx.FxRates("USD", {"JPY=X": series({"2022-05-31": 128.0, "2022-06-01": 129.0, "2022-06-02": 130.0})})
    at = [pd.Timestamp("2022-06-02 00:00", tz=UTC), pd.Timestamp("2022-06-02 00:00:01", tz=UTC),
          pd.Timestamp("2022-06-03 13:30", tz=UTC)]
    assert list(rates.local_per_base("JPY", at)) == [128.0, 129.0, 130.0]
    # a bar's rate is the rate at its session's open: Tokyo opens 00:00 UTC (quote D-2), HK 01:30 UTC (D-1)
    hk = fx.FxRates("USD", {"HKD=X": series({"2022-05-31": 7.84, "2022-06-01": 7.85})})
    assert list(hk.for_bars("0700.HK", pd.DatetimeIndex(["2022-06-02"]))) == [7.85]
    assert list(rates.for_bars("7203.T", pd.DatetimeIndex(["2022-06-02"]))) == [128.0]


def test_missing_pairs_and_pegs() -> None:
    empty = fx.FxRates("USD", {}, {"HKD"})
    assert empty.local_per_base("HKD", pd.Timestamp("2022-06-02", tz=UTC))[0] == 7.80
    with pytest.raises(MissingDataError, match="JPY=X"):
        empty.local_per_base("JPY", pd.Timestamp("2022-06-02", tz=UTC))
    late = fx.FxRates("USD", {"JPY=X": series({"2022-06-01": 130.0})})
    with pytest.raises(MissingDataError, match=r"JPY=X: no quote known before 2022-05-20"):
        late.local_per_base("JPY", pd.Timestamp("2022-05-20", tz=UTC))
    with pytest.raises(ConfigError, match="XYZ"):
        fx.check_currency("XYZ")


def test_load_rates_offline(tmp_path: Path) -> None:
    import datetime as dt

    from engine.prices.store import PriceStore

    store = PriceStore(tmp_path, offline=True)
    with pytest.raises(MissingDataError, match="JPY=X"):
        fx.load_rates(store, {"JPY"}, "USD", dt.date(2022, 6, 1), dt.date(2022, 6, 30))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EvbtWarning)
        rates = fx.load_rates(store, {"HKD"}, "USD", dt.date(2022, 6, 1), dt.date(2022, 6, 30))
    assert rates.pegged == {"HKD"} and rates.describe() == "7.80 peg"
    assert any("HKD=X" in str(w.message) and "7.80" in str(w.message) for w in caught)


def test_pence_become_pounds() -> None:
    frame = pd.DataFrame({"open": [150.0], "high": [151.0], "low": [149.0], "close": [150.5],
                          "adj_close": [150.5], "volume": [10.0], "stale": [False]},
                         index=pd.DatetimeIndex(["2022-06-06"], name="date"))
    pounds = in_currency_units(frame, "BARC.L")
    assert list(pounds.iloc[0][["open", "close", "volume"]]) == [1.5, 1.505, 10.0]
    assert in_currency_units(frame, "^FTSE") is frame  # index points are not pence


# ------------------------------------------------------------------------------------------- end to end

START, END = "2022-05-02", "2022-07-29"
PRICES = {"7203.T": 2000.0, "BARC.L": 150.0, "0700.HK": 300.0}  # JPY, pence, HKD (constant)


def _fx_values(days: pd.DatetimeIndex, base: float, step: float) -> np.ndarray:
    return base + step * np.arange(len(days))  # a different quote every day: shows which day was used


def _write_csv(path: Path, days: pd.DatetimeIndex, values: np.ndarray) -> None:
    rows = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    rows += [f"{d.date()},{v},{v},{v},{v},{v},1000000" for d, v in zip(days, values, strict=True)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


@pytest.fixture
def mixed_cache(tmp_path: Path, run_cli: Run) -> tuple[Path, dict[str, pd.Series]]:
    folder = tmp_path / "csv"
    folder.mkdir()
    for symbol, price in PRICES.items():
        days = timing.sessions(listing(symbol).exchange, START, END)
        _write_csv(folder / f"{symbol}.csv", days, np.full(len(days), price))
    fx_days = pd.bdate_range("2022-04-01", END)
    quotes = {"JPY=X": _fx_values(fx_days, 125.0, 0.01), "GBPUSD=X": _fx_values(fx_days, 1.30, -0.001),
              "HKD=X": _fx_values(fx_days, 7.80, 0.0001)}
    for pair, values in quotes.items():
        _write_csv(folder / f"{pair}.csv", fx_days, values)
    code, _out, err = run_cli("--offline", "data", "import", *sorted(str(p) for p in folder.glob("*.csv")))
    assert code == 0, err
    events = tmp_path / "events.csv"
    events.write_text(
        "id,date,time,tz,session_hint,market,type,scope,symbols,firm,from_grade,to_grade,description,source,"
        "confidence\n2022-06-01-test,2022-06-01,12:00,Europe/London,,,official_reassurance,single,"
        "7203.T BARC.L 0700.HK,,,,test event,https://example.com,high\n", encoding="utf-8")
    return events, {p: pd.Series(v, index=fx_days) for p, v in quotes.items()}


def _run(run_cli: Run, events: Path, *extra: str) -> dict:
    code, out, err = run_cli("--offline", "run", "event_hold", "-p", "hold=3", "--symbols", "7203.T,BARC.L,0700.HK",
                             "--events", str(events), "--replace-events", "--start", START, "--end", END,
                             "--benchmark", "none", "--json", "--no-save", *extra)
    assert code == 0, err
    return json.loads(out)


def test_mixed_venues_usd_base(run_cli: Run, mixed_cache: tuple[Path, dict[str, pd.Series]]) -> None:
    events, quotes = mixed_cache
    report = _run(run_cli, events)
    trades = {t["symbol"]: t for t in report["trades"]}
    # news at 2022-06-01 11:00 UTC: Tokyo enters at the 2022-06-02 open (00:00 UTC), Hong Kong at 06-02 01:30 UTC,
    # London at 06-06 (06-02 and 06-03 were the Platinum Jubilee bank holidays)
    assert {s: t["entry_date"] for s, t in trades.items()} == {
        "7203.T": "2022-06-02", "0700.HK": "2022-06-02", "BARC.L": "2022-06-06"}
    jpy, gbp, hkd = quotes["JPY=X"], quotes["GBPUSD=X"], quotes["HKD=X"]
    assert trades["7203.T"]["fx_entry"] == pytest.approx(jpy["2022-05-31"])  # known before 06-02 00:00 UTC
    assert trades["0700.HK"]["fx_entry"] == pytest.approx(hkd["2022-06-01"])
    assert trades["BARC.L"]["fx_entry"] == pytest.approx(1 / gbp["2022-06-03"])  # GBP per USD
    assert trades["BARC.L"]["entry_price"] == pytest.approx(1.50)  # 150 pence
    assert trades["7203.T"]["size"] % 100 == 0 and trades["0700.HK"]["size"] % 100 == 0
    # London buy: commission 0.1% + slippage 5 bps of the USD value, SDRT 0.5% of the GBP value to the penny
    t = trades["BARC.L"]
    value_gbp = t["size"] * 1.50
    want = 0.0015 * value_gbp / t["fx_entry"] + round(0.005 * value_gbp, 2) / t["fx_entry"]
    assert t["entry_fees"] == pytest.approx(want, rel=1e-9)
    assert "GBPUSD=X" in report["fx_source"] and "JPY=X" in report["fx_source"]


def test_mixed_venues_jpy_base(run_cli: Run, mixed_cache: tuple[Path, dict[str, pd.Series]]) -> None:
    events, quotes = mixed_cache
    report = _run(run_cli, events, "--base-currency", "JPY", "--cash", "130000000")
    trades = {t["symbol"]: t for t in report["trades"]}
    jpy, gbp, hkd = quotes["JPY=X"], quotes["GBPUSD=X"], quotes["HKD=X"]
    assert trades["7203.T"]["fx_entry"] == 1.0
    # 5% of 130,000,000 JPY at 2,000 JPY a share, whole lots of 100 -> 3,200 shares
    assert trades["7203.T"]["size"] == 3200
    assert trades["0700.HK"]["fx_entry"] == pytest.approx(hkd["2022-06-01"] / jpy["2022-06-01"])
    assert trades["BARC.L"]["fx_entry"] == pytest.approx((1 / gbp["2022-06-03"]) / jpy["2022-06-03"])
    assert report["config"]["base_currency"] == "JPY"


def test_unknown_suffix_is_exit_2(run_cli: Run) -> None:
    code, _out, err = run_cli("--offline", "run", "event_hold", "--symbols", "FOO.ZZ", "--no-save")
    assert code == 2
    assert "FOO.ZZ" in err and ".HK" in err and "Traceback" not in err
    code, _out, err = run_cli("--offline", "run", "event_hold", "--symbols", "BABA", "--base-currency", "XYZ")
    assert code == 2 and "XYZ" in err
