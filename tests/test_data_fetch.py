"""yfinance fetch: normalisation, retries, time bound, incremental cache updates, offline, stale fallback.

yfinance is mocked at its public API (``yfinance.Ticker``); nothing touches the network.
"""

from __future__ import annotations

import datetime as dt
import threading
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yfinance
from curl_cffi.requests.exceptions import ConnectionError as CurlConnectionError
from curl_cffi.requests.exceptions import DNSError
from yfinance.exceptions import YFPricesMissingError, YFRateLimitError

import engine.prices.yahoo
from engine.errors import DataError, EvbtWarning, MissingDataError
from engine.prices.store import OVERLAP_DAYS, PriceStore
from engine.prices.yahoo import fetch_history, normalize_history

TODAY = dt.date.today()


def yahoo_frame(start: str, end: str, tz: str = "America/New_York", base: float = 100.0) -> pd.DataFrame:
    """What Ticker.history(auto_adjust=False, actions=False) returns: tz-aware midnight index, Yahoo names."""
    days = pd.bdate_range(start, end)
    idx = pd.DatetimeIndex([pd.Timestamp(d).tz_localize(tz) for d in days], name="Date")
    close = base + np.arange(len(days), dtype="float64")
    return pd.DataFrame(
        {"Open": close - 0.5, "High": close + 1, "Low": close - 1, "Close": close, "Adj Close": close * 0.98,
         "Volume": np.full(len(days), 1e6)},
        index=idx,
    )


class FakeMarket:
    """Stands in for Yahoo: serves slices of one frame; can fail the first N calls."""

    def __init__(self, frame: pd.DataFrame, failures: list[BaseException] | None = None) -> None:
        self.frame = frame
        self.failures = list(failures or [])
        self.calls: list[dict] = []

    def ticker(self, symbol: str) -> FakeMarket._Ticker:
        return FakeMarket._Ticker(self, symbol)

    class _Ticker:
        def __init__(self, market: FakeMarket, symbol: str) -> None:
            self.market, self.symbol = market, symbol

        def history(self, **kwargs: object) -> pd.DataFrame:
            self.market.calls.append({"symbol": self.symbol, **kwargs})
            if self.market.failures:
                raise self.market.failures.pop(0)
            f = self.market.frame
            naive = f.index.tz_localize(None)
            mask = np.ones(len(f), dtype=bool)
            if kwargs.get("start"):
                mask &= naive >= pd.Timestamp(str(kwargs["start"]))
            if kwargs.get("end"):
                mask &= naive < pd.Timestamp(str(kwargs["end"]))  # yfinance end is exclusive
            return f[mask]


@pytest.fixture
def market(monkeypatch: pytest.MonkeyPatch) -> FakeMarket:
    m = FakeMarket(yahoo_frame("2022-01-03", "2022-06-30"))
    monkeypatch.setattr(yfinance, "Ticker", m.ticker)
    monkeypatch.setattr(engine.prices.yahoo, "BACKOFF", 0.001)
    return m


def no_sleep(_: float) -> None:
    return None


# ---------------------------------------------------------------- normalisation
def test_hk_bars_keep_their_session_date() -> None:
    raw = yahoo_frame("2022-03-14", "2022-03-18", tz="Asia/Hong_Kong")
    got = normalize_history(raw, "0700.HK")
    assert got.index.tz is None
    assert [d.isoformat() for d in got.index.date] == [
        "2022-03-14", "2022-03-15", "2022-03-16", "2022-03-17", "2022-03-18"]
    assert list(got.columns) == ["open", "high", "low", "close", "adj_close", "volume", "stale"]


def test_multiindex_columns_flattened() -> None:
    raw = yahoo_frame("2022-03-14", "2022-03-16")
    raw.columns = pd.MultiIndex.from_product([raw.columns, ["BABA"]], names=["Price", "Ticker"])
    got = normalize_history(raw, "BABA")
    assert got["close"].tolist() == [100.0, 101.0, 102.0]


def test_missing_adj_close_uses_close() -> None:
    raw = yahoo_frame("2022-03-14", "2022-03-15").drop(columns=["Adj Close"])
    assert normalize_history(raw, "BABA")["adj_close"].tolist() == [100.0, 101.0]


def test_stale_placeholder_flagged() -> None:
    raw = yahoo_frame("2022-12-23", "2022-12-27", tz="Asia/Hong_Kong")
    raw.iloc[0, :4] = 100.0
    raw.iloc[0, 5] = 0.0
    got = normalize_history(raw.assign(**{"Adj Close": raw["Close"]}), "0700.HK")
    assert got["stale"].tolist() == [True, False, False]


def test_invalid_bar_is_data_error() -> None:
    raw = yahoo_frame("2022-03-14", "2022-03-16")
    raw.iloc[1, 1] = 1.0  # High below open/close
    with pytest.raises(DataError, match=r"BABA: invalid price bar on 2022-03-15: high < max"):
        normalize_history(raw, "BABA")


# ---------------------------------------------------------------- fetch_history
def test_fetch_passes_yfinance_arguments(market: FakeMarket) -> None:
    got = fetch_history("baba", dt.date(2022, 3, 1), dt.date(2022, 3, 4), sleep=no_sleep)
    assert got.index[-1].date() == dt.date(2022, 3, 4)  # end inclusive
    (call,) = market.calls
    assert call["symbol"] == "BABA" and call["auto_adjust"] is False and call["actions"] is False
    assert call["start"] == "2022-03-01" and call["end"] == "2022-03-05" and "timeout" in call


@pytest.mark.parametrize(
    "error", [DNSError("no dns"), CurlConnectionError("reset"), YFRateLimitError(), TimeoutError("slow")]
)
def test_transient_errors_retried_with_backoff(market: FakeMarket, error: BaseException) -> None:
    market.failures = [error, error]
    sleeps: list[float] = []
    got = fetch_history("BABA", dt.date(2022, 3, 1), dt.date(2022, 3, 4), sleep=sleeps.append)
    assert len(got) == 4 and len(market.calls) == 3
    assert sleeps == [pytest.approx(0.001), pytest.approx(0.002)]


def test_retries_are_bounded(market: FakeMarket) -> None:
    market.failures = [DNSError("down")] * 10
    with pytest.raises(DataError, match=r"BABA: download failed after 3 attempt\(s\): DNSError"):
        fetch_history("BABA", dt.date(2022, 3, 1), dt.date(2022, 3, 4), retries=2, sleep=no_sleep)
    assert len(market.calls) == 3


def test_hard_wall_clock_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """The call is abandoned while yfinance is still hanging (an order of events, not a measured duration)."""
    release, returned = threading.Event(), threading.Event()

    class Hanging:
        def __init__(self, symbol: str) -> None:
            pass

        def history(self, **kwargs: object) -> pd.DataFrame:
            release.wait(10)  # hangs until the test releases it (10 s only so a broken bound cannot hang CI)
            returned.set()
            return pd.DataFrame()

    monkeypatch.setattr(yfinance, "Ticker", Hanging)
    try:
        with pytest.raises(DataError, match="no answer within"):
            fetch_history("BABA", dt.date(2022, 3, 1), dt.date(2022, 3, 4), retries=1, attempt_timeout=0.2,
                          sleep=no_sleep)
        assert not returned.is_set(), "fetch_history waited for the hanging call instead of giving up"
    finally:
        release.set()


def test_empty_answer_is_clear_error(market: FakeMarket) -> None:
    with pytest.raises(DataError, match=r"Yahoo returned no prices .* possibly delisted"):
        fetch_history("BABA", dt.date(2023, 3, 1), dt.date(2023, 3, 4), sleep=no_sleep)


def test_possibly_delisted_is_data_error_without_retry(market: FakeMarket) -> None:
    market.failures = [YFPricesMissingError("XXXX", "")]
    with pytest.raises(DataError, match="possibly delisted"):
        fetch_history("XXXX", dt.date(2022, 3, 1), dt.date(2022, 3, 4), sleep=no_sleep)
    assert len(market.calls) == 1


def test_swallowed_network_error_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    """yfinance often logs a curl failure and returns an empty frame: treat it as a network failure."""
    import logging

    class Logged:
        def __init__(self, symbol: str) -> None:
            pass

        def history(self, **kwargs: object) -> pd.DataFrame:
            logging.getLogger("yfinance").error("Failed to get ticker 'BABA' reason: curl: (6) Could not resolve")
            return pd.DataFrame()

    monkeypatch.setattr(yfinance, "Ticker", Logged)
    sleeps: list[float] = []
    with pytest.raises(DataError, match="download failed after 2 attempt"):
        fetch_history("BABA", dt.date(2022, 3, 1), dt.date(2022, 3, 4), retries=1, sleep=sleeps.append)
    assert len(sleeps) == 1


# ---------------------------------------------------------------- PriceStore + yfinance
def test_miss_fetches_then_serves_from_cache(market: FakeMarket, tmp_path: Path) -> None:
    store = PriceStore(tmp_path)
    got = store.load("BABA", "2022-01-03", "2022-02-28")
    assert got.index[0].date() == dt.date(2022, 1, 3) and got.index[-1].date() == dt.date(2022, 2, 28)
    assert store.read_meta("BABA")["source"] == "yfinance"
    assert len(market.calls) == 1
    again = store.load("BABA", "2022-01-10", "2022-02-20")
    assert len(market.calls) == 1  # covered: no network
    assert len(again) == 30


def test_incremental_fetch_only_missing_part_with_overlap(market: FakeMarket, tmp_path: Path) -> None:
    store = PriceStore(tmp_path)
    store.load("BABA", "2022-01-03", "2022-02-28")
    store.load("BABA", "2022-01-03", "2022-04-29")
    assert len(market.calls) == 2
    second = market.calls[1]
    assert second["start"] == (dt.date(2022, 2, 28) - dt.timedelta(days=OVERLAP_DAYS)).isoformat()
    assert second["end"] == "2022-04-30"
    meta = store.read_meta("BABA")
    assert meta["first_date"] == "2022-01-03" and meta["last_date"] == "2022-04-29"
    # earlier edge: only the missing head is fetched
    market.frame = yahoo_frame("2021-11-01", "2022-06-30", base=50.0)
    store.load("BABA", "2021-12-01", "2022-01-31")
    third = market.calls[2]
    assert third["start"] == "2021-12-01"
    assert third["end"] == (dt.date(2022, 1, 3) + dt.timedelta(days=OVERLAP_DAYS + 1)).isoformat()


def test_revised_bar_replaces_older(market: FakeMarket, tmp_path: Path) -> None:
    store = PriceStore(tmp_path)
    store.load("BABA", "2022-01-03", "2022-02-28")
    revised = market.frame.copy()
    stamp = revised.index[revised.index.tz_localize(None) == pd.Timestamp("2022-02-25")][0]
    revised.loc[stamp, ["Close", "High"]] = [140.0, 141.0]
    market.frame = revised
    store.load("BABA", "2022-01-03", "2022-03-31")
    got = store.load("BABA", "2022-02-25", "2022-02-25")
    assert got["close"].iloc[0] == 140.0


def test_listing_date_edge_does_not_refetch(market: FakeMarket, tmp_path: Path) -> None:
    store = PriceStore(tmp_path)
    store.load("BABA", "2021-06-01", "2022-02-28")  # Yahoo only has data from 2022-01-03
    store.load("BABA", "2021-06-01", "2022-02-28")
    assert len(market.calls) == 1


def test_offline_never_touches_network(market: FakeMarket, tmp_path: Path) -> None:
    store = PriceStore(tmp_path, offline=True)
    with pytest.raises(MissingDataError, match=r"BABA: prices for 2022-01-03 .. 2022-02-28 are not in the cache"):
        store.load("BABA", "2022-01-03", "2022-02-28")
    assert market.calls == []


def test_network_failure_serves_stale_cache_with_warning(market: FakeMarket, tmp_path: Path) -> None:
    store = PriceStore(tmp_path)
    store.load("BABA", "2022-01-03", "2022-02-28")
    market.failures = [DNSError("network down")] * 10
    with pytest.warns(EvbtWarning, match=r"BABA: could not update prices .* using cached data"):
        got = store.load("BABA", "2022-01-03", "2022-04-29")
    assert got.index[-1].date() == dt.date(2022, 2, 28)


def test_network_failure_without_cache_is_data_error(market: FakeMarket, tmp_path: Path) -> None:
    market.failures = [DNSError("network down")] * 10
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match="BABA: download failed"):
            PriceStore(tmp_path).load("BABA", "2022-01-03", "2022-02-28")


def test_unknown_symbol_online(market: FakeMarket, tmp_path: Path) -> None:
    market.frame = market.frame.iloc[:0]
    with pytest.raises(DataError, match="possibly delisted"):
        PriceStore(tmp_path).load("NOPE", "2022-01-03", "2022-02-28")
    assert not PriceStore(tmp_path).has("NOPE")


def test_update_refresh_refetches_tail(market: FakeMarket, tmp_path: Path) -> None:
    store = PriceStore(tmp_path)
    store.update("BABA", dt.date(2022, 1, 3), dt.date(2022, 2, 28))
    store.update("BABA", dt.date(2022, 1, 3), dt.date(2022, 2, 28), refresh=True)
    assert len(market.calls) == 2
    assert market.calls[1]["start"] == (dt.date(2022, 2, 28) - dt.timedelta(days=OVERLAP_DAYS)).isoformat()


def test_utc_index_is_converted_to_the_exchange_day() -> None:
    """A HK bar stamped at HK midnight but expressed in UTC (previous day 16:00) keeps its HK session date."""
    import engine.prices.yahoo

    hk_midnight = pd.DatetimeIndex(["2022-03-16", "2022-03-17"]).tz_localize("Asia/Hong_Kong")
    raw = pd.DataFrame({"Open": [1.0, 2.0], "High": [1.5, 2.5], "Low": [0.5, 1.5], "Close": [1.2, 2.2],
                        "Adj Close": [1.2, 2.2], "Volume": [10, 20]}, index=hk_midnight.tz_convert("UTC"))
    frame = engine.prices.yahoo.normalize_history(raw, "0700.HK")
    assert [str(d.date()) for d in frame.index] == ["2022-03-16", "2022-03-17"]
    us = pd.DatetimeIndex(["2022-03-16"]).tz_localize("America/New_York")
    raw_us = raw.iloc[:1].set_axis(us, axis=0)
    assert str(engine.prices.yahoo.normalize_history(raw_us, "BABA").index[0].date()) == "2022-03-16"
