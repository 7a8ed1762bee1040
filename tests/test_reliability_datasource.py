"""Faults in the data source, end to end through the CLI, with the cache verified after every case.

yfinance is mocked at its public API (``yfinance.Ticker``). Every fault must end in a retry that succeeds,
a stale-cache fallback with a warning, or a clear one-line error (exit 1) - never a traceback, never a
damaged or partial cache file.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yfinance
from curl_cffi.requests.exceptions import ConnectionError as CurlConnectionError
from curl_cffi.requests.exceptions import DNSError, ReadTimeout
from yfinance.exceptions import YFRateLimitError, YFTickerMissingError

import engine.prices.yahoo

Run = Callable[..., tuple[int, str, str]]
FIRST = ("--start", "2022-01-03", "--end", "2022-03-31")
LATER = ("--start", "2022-01-03", "--end", "2022-06-30")


def yahoo(start: str = "2022-01-03", end: str = "2022-06-30") -> pd.DataFrame:
    days = pd.bdate_range(start, end)
    idx = pd.DatetimeIndex([d.tz_localize("America/New_York") for d in days], name="Date")
    close = 100.0 + np.arange(len(days), dtype="float64")
    return pd.DataFrame({"Open": close - 0.5, "High": close + 1, "Low": close - 1, "Close": close,
                         "Adj Close": close * 0.98, "Volume": np.full(len(days), 1e6)}, index=idx)


def _slice(frame: pd.DataFrame, kwargs: dict) -> pd.DataFrame:
    naive = frame.index.tz_localize(None) if getattr(frame.index, "tz", None) is not None else frame.index
    mask = np.ones(len(frame), dtype=bool)
    if kwargs.get("start"):
        mask &= naive >= pd.Timestamp(str(kwargs["start"]))
    if kwargs.get("end"):
        mask &= naive < pd.Timestamp(str(kwargs["end"]))
    return frame[mask]


def _raise(exc: BaseException) -> Callable[[dict], pd.DataFrame]:
    def answer(_: dict) -> pd.DataFrame:
        raise exc
    return answer


def _hang(_: dict) -> pd.DataFrame:
    time.sleep(3)
    return yahoo()


def _logged_network_error(_: dict) -> pd.DataFrame:
    logging.getLogger("yfinance").error("Failed to perform, curl: (6) Could not resolve host: query2.finance")
    return pd.DataFrame()


def _shape(transform: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[dict], pd.DataFrame]:
    return lambda kw: transform(_slice(yahoo(), kw))


def _nan_close(f: pd.DataFrame) -> pd.DataFrame:
    f = f.copy()
    f.iloc[len(f) // 2, f.columns.get_loc("Close")] = np.nan
    return f


def _all_nan_row(f: pd.DataFrame) -> pd.DataFrame:
    f = f.copy()
    f.iloc[len(f) // 2, :5] = np.nan  # Yahoo's "no data that day" row: dropped, not stored
    return f


def _zero_row(f: pd.DataFrame) -> pd.DataFrame:
    f = f.copy()
    f.iloc[len(f) // 2, :5] = 0.0
    return f


def _multiindex(f: pd.DataFrame) -> pd.DataFrame:
    f = f.copy()
    f.columns = pd.MultiIndex.from_product([f.columns, ["BABA"]], names=["Price", "Ticker"])
    return f


def _renamed(f: pd.DataFrame) -> pd.DataFrame:
    return f.rename(columns={"Open": "regularMarketOpen", "Close": "regularMarketPrice"})


def _lowercase_no_adj(f: pd.DataFrame) -> pd.DataFrame:
    return f.drop(columns=["Adj Close"]).rename(columns=str.lower)


def _partial(f: pd.DataFrame) -> pd.DataFrame:
    return f.iloc[: max(1, len(f) // 3)]


def _utc_index(f: pd.DataFrame) -> pd.DataFrame:
    return f.tz_convert("UTC")  # new index shape: same instants, UTC; session dates must not shift to HK days


# name -> (answer, outcome with no cache, outcome with a cache).
# outcomes: "ok" (exit 0, updated, no warning), "stale" (exit 0 + warning, cache unchanged),
# "error" (exit 1, one clear line), "flaky-ok" (first two calls fail, then data: retried, exit 0)
FAULTS: dict[str, tuple[Callable[[dict], pd.DataFrame], str, str]] = {
    "dns-error": (_raise(DNSError("Failed to resolve host query2.finance.yahoo.com")), "error", "stale"),
    "connection-reset": (_raise(CurlConnectionError("Connection reset by peer")), "error", "stale"),
    "read-timeout": (_raise(ReadTimeout("Operation timed out after 30000 ms")), "error", "stale"),
    "hang": (_hang, "error", "stale"),
    "rate-limit": (_raise(YFRateLimitError()), "error", "stale"),
    "logged-network-error-empty": (_logged_network_error, "error", "stale"),
    "ticker-missing": (_raise(YFTickerMissingError("BABA", "no price data found")), "error", "stale"),
    "yfinance-bug-keyerror": (_raise(KeyError("chart")), "error", "stale"),
    "returns-none": (lambda kw: None, "error", "stale"),
    "empty-frame": (lambda kw: pd.DataFrame(), "error", "stale"),
    "nan-close": (_shape(_nan_close), "error", "stale"),
    "zero-row": (_shape(_zero_row), "error", "stale"),
    "renamed-columns": (_shape(_renamed), "error", "stale"),
    "all-nan-row": (_shape(_all_nan_row), "ok", "ok"),
    "multiindex-columns": (_shape(_multiindex), "ok", "ok"),
    "lowercase-no-adj-close": (_shape(_lowercase_no_adj), "ok", "ok"),
    "partial-frame": (_shape(_partial), "ok", "ok"),
    "utc-index": (_shape(_utc_index), "ok", "ok"),
    "flaky-then-ok": (_shape(lambda f: f), "flaky-ok", "flaky-ok"),
}


class Yahoo:
    """``yfinance.Ticker`` stand-in whose ``history`` answers with ``self.answer`` (after N failures)."""

    def __init__(self) -> None:
        self.answer: Callable[[dict], pd.DataFrame] = _shape(lambda f: f)
        self.fail_first = 0
        self.calls = 0

    def ticker(self, symbol: str) -> Yahoo:
        return self

    def history(self, **kwargs: object) -> pd.DataFrame:
        self.calls += 1
        if self.calls <= self.fail_first:
            raise CurlConnectionError("Connection reset by peer")
        return self.answer(dict(kwargs))


@pytest.fixture
def yahoo_mock(monkeypatch: pytest.MonkeyPatch) -> Yahoo:
    mock = Yahoo()
    monkeypatch.setattr(yfinance, "Ticker", mock.ticker)
    monkeypatch.setattr(engine.prices.yahoo, "BACKOFF", 0.001)
    bounded = functools.partial(engine.prices.yahoo.fetch_history, attempt_timeout=0.3, deadline=5.0)
    monkeypatch.setattr(engine.prices.yahoo, "fetch_history", bounded)
    return mock


def _files(cache: Path) -> dict[str, bytes]:
    if not cache.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in cache.iterdir() if p.is_file()}


def _check_verified(run_cli: Run, cache: Path) -> None:
    code, out, err = run_cli("data", "verify")
    assert code == 0, (out, err)
    assert "0 damaged" in out
    leftovers = [p.name for p in cache.iterdir() if p.name.endswith(".tmp")] if cache.is_dir() else []
    assert leftovers == []


def _apply(mock: Yahoo, name: str) -> str:
    answer, _, _ = FAULTS[name]
    mock.answer, mock.calls = answer, 0
    if name == "flaky-then-ok":
        mock.fail_first = 2
    return name


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_fault_without_cache(name: str, yahoo_mock: Yahoo, run_cli: Run, cache_dir: Path) -> None:
    _apply(yahoo_mock, name)
    expected = FAULTS[name][1]
    code, out, err = run_cli("data", "fetch", "BABA", *LATER)
    assert "Traceback" not in err
    if expected == "error":
        assert code == 1, (out, err)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: BABA"), err
        assert [n for n in _files(cache_dir) if n.endswith(".parquet")] == []  # nothing written
    else:
        assert code == 0, (out, err)
        assert "BABA:" in out and "warning" not in err
        if expected == "flaky-ok":
            assert yahoo_mock.calls == 3  # two failures retried, third attempt served
    _check_verified(run_cli, cache_dir)


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_fault_with_cache(name: str, yahoo_mock: Yahoo, run_cli: Run, cache_dir: Path) -> None:
    code, _, err = run_cli("data", "fetch", "BABA", *FIRST)
    assert code == 0, err
    before = _files(cache_dir)
    _apply(yahoo_mock, name)
    expected = FAULTS[name][2]
    code, out, err = run_cli("data", "fetch", "BABA", *LATER)
    assert "Traceback" not in err
    assert code == 0, (out, err)
    if expected == "stale":
        assert "warning: BABA: could not update prices" in err and "using cached data" in err, err
        assert _files(cache_dir) == before  # the cache is served, not rewritten
    else:
        assert "warning" not in err, err
        assert "2022-06-30" in out or "2022-06-" in out or expected == "ok"
    _check_verified(run_cli, cache_dir)
    # the served data (stale or new) is readable offline afterwards
    code, out, err = run_cli("--offline", "data", "show", "BABA", "--start", "2022-01-03", "--end", "2022-03-31")
    assert code == 0, (out, err)


def test_utc_index_keeps_session_dates(yahoo_mock: Yahoo, run_cli: Run, cache_dir: Path) -> None:
    """A UTC-stamped answer must not move bars to another day (HK midnight = previous day 16:00 UTC)."""
    _apply(yahoo_mock, "utc-index")
    code, _, err = run_cli("data", "fetch", "BABA", *FIRST)
    assert code == 0, err
    from engine.prices.store import PriceStore

    got = PriceStore(cache_dir).read_all("BABA")
    assert got.index[0] == pd.Timestamp("2022-01-03")
    assert got.index.dayofweek.max() <= 4  # no bar moved onto a weekend


def test_faults_counted() -> None:
    assert len(FAULTS) >= 15
