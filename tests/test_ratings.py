"""Analyst ratings: grade scale, yfinance fetch (mocked at yfinance.Ticker), parquet cache, events."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import yfinance

from engine.errors import DataError, MissingDataError
from engine.events import ratings


def yf_frame() -> pd.DataFrame:
    """Same layout as yfinance 1.7 ``Ticker.upgrades_downgrades`` (GradeDate index from epoch seconds)."""
    frame = pd.DataFrame({
        "GradeDate": pd.to_datetime([1652659200, 1647216000, 1647216000, 1700000000, 1650000000], unit="s"),
        "Firm": ["JPMorgan", "JPMorgan", "Nomura", "Barclays", "Citigroup"],
        "ToGrade": ["Overweight", "Underweight", "Neutral", "Equal-Weight", "Buy"],
        "FromGrade": ["Underweight", "Overweight", "Neutral", "", "Buy"],
        "Action": ["up", "down", "main", "init", "reit"],
    })
    return frame.set_index("GradeDate")


class FakeTicker:
    calls = 0
    fail_times = 0
    frame = None

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol

    @property
    def upgrades_downgrades(self) -> pd.DataFrame:
        FakeTicker.calls += 1
        if FakeTicker.calls <= FakeTicker.fail_times:
            raise ConnectionError("simulated network failure")
        return FakeTicker.frame if FakeTicker.frame is not None else yf_frame()


@pytest.fixture
def fake_yf(monkeypatch: pytest.MonkeyPatch) -> type[FakeTicker]:
    FakeTicker.calls, FakeTicker.fail_times, FakeTicker.frame = 0, 0, None
    monkeypatch.setattr(yfinance, "Ticker", FakeTicker)
    return FakeTicker


@pytest.mark.parametrize(
    ("from_grade", "to_grade", "expected"),
    [
        ("Underweight", "Overweight", "analyst_upgrade"),
        ("Buy", "Conviction Buy", "analyst_upgrade"),
        ("Overweight", "Equal-weight", "analyst_downgrade"),
        ("Outperform", "Sector Perform", "analyst_downgrade"),
        ("Strong Sell", "Reduce", "analyst_upgrade"),
        ("Overweight", "Buy", None),  # same rank
        ("", "Buy", None),  # initiation
        ("Speculative", "Buy", None),  # unknown grade
    ],
)
def test_classify_change(from_grade: str, to_grade: str, expected: str | None) -> None:
    assert ratings.classify_change(from_grade, to_grade) == expected


def test_scale_order() -> None:
    order = ["Strong Sell", "Underweight", "Neutral", "Overweight", "Top Pick"]
    assert [ratings.grade_rank(g) for g in order] == [0, 1, 2, 3, 4]


def test_fetch_caches_atomically_and_reuses_cache(tmp_path: Path, fake_yf: type[FakeTicker]) -> None:
    frame = ratings.fetch_ratings("baba", tmp_path)
    path = tmp_path / "ratings" / "BABA.parquet"
    assert path.exists() and list(frame.columns) == list(ratings.RATINGS_COLUMNS)
    assert frame["date"].is_monotonic_increasing
    assert [p.name for p in path.parent.iterdir()] == ["BABA.parquet"]  # no temp file left
    again = ratings.fetch_ratings("BABA", tmp_path, offline=True)
    pd.testing.assert_frame_equal(frame, again)
    assert fake_yf.calls == 1


def test_offline_without_cache_raises_and_writes_nothing(tmp_path: Path, fake_yf: type[FakeTicker]) -> None:
    with pytest.raises(MissingDataError, match="BABA"):
        ratings.fetch_ratings("BABA", tmp_path, offline=True)
    assert fake_yf.calls == 0 and not (tmp_path / "ratings").exists()


def test_bounded_retries(tmp_path: Path, fake_yf: type[FakeTicker]) -> None:
    fake_yf.fail_times = 2
    frame = ratings.fetch_ratings("PDD", tmp_path, attempts=3, backoff_s=0)
    assert len(frame) == 5 and fake_yf.calls == 3
    fake_yf.calls, fake_yf.fail_times = 0, 99
    with pytest.raises(DataError, match="after 3 attempt"):
        ratings.fetch_ratings("JD", tmp_path, attempts=3, backoff_s=0)
    assert fake_yf.calls == 3 and not (tmp_path / "ratings" / "JD.parquet").exists()
    # refresh failing with a cached copy serves the cache
    assert len(ratings.fetch_ratings("PDD", tmp_path, refresh=True, attempts=2, backoff_s=0)) == 5


def test_timeout_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    gate = threading.Event()

    class Hanging:
        def __init__(self, symbol: str) -> None:
            pass

        @property
        def upgrades_downgrades(self) -> pd.DataFrame:
            gate.wait(5)
            return yf_frame()

    monkeypatch.setattr(yfinance, "Ticker", Hanging)
    with pytest.raises(DataError, match="no answer"):
        ratings.fetch_ratings("BIDU", tmp_path, attempts=1, timeout_s=0.2)
    gate.set()


def test_rows_to_events(tmp_path: Path, fake_yf: type[FakeTicker]) -> None:
    events = ratings.ratings_to_events("BABA", ratings.fetch_ratings("BABA", tmp_path))
    assert [(e.type, e.firm, e.from_grade, e.to_grade) for e in events] == [
        ("analyst_downgrade", "JPMorgan", "Overweight", "Underweight"),
        ("analyst_upgrade", "JPMorgan", "Underweight", "Overweight"),
    ]
    down = events[0]
    assert down.date == dt.date(2022, 3, 14) and down.time is None and down.tz == "America/New_York"
    assert down.symbols == ("BABA",) and down.scope == "single"
    assert len({e.id for e in events}) == len(events)


def test_intraday_stamp_keeps_time_in_new_york() -> None:
    frame = ratings.normalise_frame(pd.DataFrame({
        "GradeDate": [pd.Timestamp("2022-03-14 13:00")], "Firm": ["X"], "ToGrade": ["Sell"],
        "FromGrade": ["Buy"], "Action": ["down"],
    }).set_index("GradeDate"))
    (event,) = ratings.ratings_to_events("PDD", frame)
    assert (event.date, event.time) == (dt.date(2022, 3, 14), dt.time(9, 0))


def test_symbol_without_history_caches_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class NoData:
        def __init__(self, symbol: str) -> None:
            pass

        @property
        def upgrades_downgrades(self) -> pd.DataFrame:
            raise yfinance.exceptions.YFDataException("No upgrade/downgrade history found for 2800.HK")

    monkeypatch.setattr(yfinance, "Ticker", NoData)
    frame = ratings.fetch_ratings("2800.HK", tmp_path, attempts=1)
    assert frame.empty and (tmp_path / "ratings" / "2800.HK.parquet").exists()
    assert ratings.ratings_to_events("2800.HK", frame) == []
