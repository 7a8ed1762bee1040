"""No-lookahead timing: known_at and the entry-session rule on corrected XHKG/XNYS calendars."""

from __future__ import annotations

import datetime as dt
import warnings

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import ConfigError
from engine.events import timing
from engine.events.catalog import Event, load_curated


def ev(date: str, time: str | None = None, tz: str = "Asia/Hong_Kong", hint: str | None = None,
       market: str | None = None) -> Event:
    return Event(
        id="t", date=dt.date.fromisoformat(date), tz=tz,
        time=dt.time.fromisoformat(time) if time else None, session_hint=hint, market=market,
        type="other", scope="sector", symbols=(), description="t", source="https://example.org",
    )


CURATED = {e.id: e for e in load_curated()}

# (case, event, symbol, fill, expected session)
CASES = [
    ("symposium readout, HK", CURATED["2022-05-17-cppcc-symposium"], "0700.HK", "open", "2022-05-18"),
    ("symposium readout, US", CURATED["2022-05-17-cppcc-symposium"], "BABA", "open", "2022-05-17"),
    ("FSDC meeting, US open", CURATED["2022-03-16-fsdc-liu-he"], "BABA", "open", "2022-03-16"),
    ("FSDC meeting, HK open", CURATED["2022-03-16-fsdc-liu-he"], "9988.HK", "open", "2022-03-17"),
    ("FSDC meeting, HK close", CURATED["2022-03-16-fsdc-liu-he"], "9988.HK", "close", "2022-03-16"),
    ("Saturday fine, HK", CURATED["2021-04-10-alibaba-antitrust-fine"], "9988.HK", "open", "2021-04-12"),
    ("Saturday fine, US", CURATED["2021-04-10-alibaba-antitrust-fine"], "BABA", "open", "2021-04-12"),
    ("JPM uninvestable, US close", CURATED["2022-03-14-jpm-uninvestable"], "BABA", "close", "2022-03-14"),
    ("JPM uninvestable, HK", CURATED["2022-03-14-jpm-uninvestable"], "9988.HK", "open", "2022-03-15"),
    ("JPM upgrades, US", CURATED["2022-05-16-jpm-upgrades"], "BABA", "open", "2022-05-16"),
    ("JPM upgrades, HK", CURATED["2022-05-16-jpm-upgrades"], "0700.HK", "open", "2022-05-17"),
    # holidays are skipped
    ("HK Buddha's Birthday", ev("2022-05-06", "18:00"), "0700.HK", "open", "2022-05-10"),
    ("US Memorial Day", ev("2022-05-27", "17:00", "America/New_York"), "BABA", "open", "2022-05-31"),
    # exactly at the open is not strictly after it
    ("at HK open, fill open", ev("2022-06-01", "09:30"), "0700.HK", "open", "2022-06-02"),
    ("at HK open, fill close", ev("2022-06-01", "09:30"), "0700.HK", "close", "2022-06-01"),
    ("at US open", ev("2022-06-01", "09:30", "America/New_York"), "BABA", "open", "2022-06-02"),
    # HK half day (Christmas Eve 2021 closes 12:00)
    ("half day, before noon close", ev("2021-12-24", "11:59"), "0700.HK", "close", "2021-12-24"),
    ("half day, after noon close", ev("2021-12-24", "13:00"), "0700.HK", "close", "2021-12-28"),
    # lunch break: the morning is over but the session's close is still ahead
    ("HK lunch break", ev("2022-06-01", "12:30"), "0700.HK", "close", "2022-06-01"),
    ("HK lunch break, open", ev("2022-06-01", "12:30"), "0700.HK", "open", "2022-06-02"),
    # between sessions
    ("between HK sessions", ev("2022-06-01", "20:00"), "0700.HK", "open", "2022-06-02"),
    # US daylight saving: open is 21:30 HKT in summer, 22:30 HKT in winter
    ("DST: 22:00 HKT is after the 21:30 open", ev("2022-06-01", "22:00"), "BABA", "open", "2022-06-02"),
    ("no DST: 22:00 HKT is before the 22:30 open", ev("2022-01-05", "22:00"), "BABA", "open", "2022-01-05"),
    # corrections file: HK closed on 2023-09-01 (typhoon) and 2023-09-08 (black rainstorm)
    ("typhoon closure", ev("2023-08-31", "18:00"), "0700.HK", "open", "2023-09-04"),
    ("rainstorm closure", ev("2023-09-07", "18:00"), "0700.HK", "close", "2023-09-11"),
    # session hints
    ("before_open HK", ev("2022-06-01", hint="before_open", market="XHKG"), "0700.HK", "open", "2022-06-01"),
    ("after_close HK", ev("2022-06-01", hint="after_close", market="XHKG"), "0700.HK", "close", "2022-06-02"),
    ("after_close HK, US same day", ev("2022-06-01", hint="after_close", market="XHKG"), "BABA", "open",
     "2022-06-01"),
    ("closed market: end of day", ev("2022-05-09", hint="before_open", market="XHKG"), "BABA", "open",
     "2022-05-10"),
    # date only = known at the next local midnight
    ("date only HK", ev("2022-06-01"), "0700.HK", "open", "2022-06-02"),
    ("date only HK, US next day", ev("2022-06-01"), "BABA", "open", "2022-06-02"),
    ("date only US, HK skips a day", ev("2022-06-07", tz="America/New_York"), "0700.HK", "open",
     "2022-06-09"),
]


@pytest.mark.parametrize(("case", "event", "symbol", "fill", "expected"), CASES, ids=[c[0] for c in CASES])
def test_entry_session_cases(case: str, event: Event, symbol: str, fill: str, expected: str) -> None:
    got = timing.entry_session(event, symbol, fill)
    assert got == pd.Timestamp(expected), case
    assert got.tzinfo is None


def test_known_at_rules() -> None:
    assert timing.known_at(ev("2022-06-01", "10:00")) == pd.Timestamp("2022-06-01 02:00", tz="UTC")
    assert timing.known_at(ev("2022-06-01")) == pd.Timestamp("2022-06-01 16:00", tz="UTC")
    during = timing.known_at(ev("2022-06-01", hint="during_session", market="XNYS"))
    assert during == pd.Timestamp("2022-06-01 20:00", tz="UTC") - pd.Timedelta(microseconds=1)
    assert timing.known_at(ev("2022-01-05", hint="after_close", market="XNYS")) == pd.Timestamp(
        "2022-01-05 21:00", tz="UTC")


def test_vectorised_matches_scalar() -> None:
    events = load_curated()
    for sym in ("BABA", "0700.HK"):
        for fill in timing.FILLS:
            vec = timing.entry_sessions(events, sym, fill)
            assert list(vec) == [timing.entry_session(e, sym, fill) for e in events]


def test_sessions_and_next_sessions() -> None:
    hk = timing.sessions("XHKG", "2023-08-30", "2023-09-11")
    assert pd.Timestamp("2023-09-01") not in hk and pd.Timestamp("2023-09-08") not in hk
    assert pd.Timestamp("2023-09-04") in hk and hk.tz is None
    assert list(timing.next_sessions("XNYS", "2022-05-27", 2)) == [pd.Timestamp("2022-05-31"),
                                                                   pd.Timestamp("2022-06-01")]
    opens, closes = timing.session_bounds("XHKG", "2021-12-24")
    assert (closes - opens) == pd.Timedelta(hours=2, minutes=30)


def test_bad_inputs_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown fill"):
        timing.entry_session(ev("2022-06-01"), "BABA", "vwap")
    with pytest.raises(ConfigError, match="no exchange sessions"):
        timing.entry_session(ev("2022-06-01"), "HKD=X", "open")
    with pytest.raises(ConfigError, match="unknown exchange-calendars code 'XXXX'"):
        timing.sessions("XXXX", "2022-01-01", "2022-02-01")
    # a calendar that ends before the needed date: an error naming the calendar and the date
    with pytest.raises(ConfigError, match=r"2027-01-05: the XSHG calendar .* ends 2026-12-31"):
        timing.sessions("XSHG", "2026-12-01", "2027-01-05")
    with pytest.raises(ConfigError, match="XSHG"):
        timing.entry_session(ev("2026-12-31", "16:00", tz="Asia/Shanghai"), "600519.SS", "open")
    with pytest.raises(ConfigError, match=r"1996-06-03: the XTKS calendar .* starts 1997-01-01"):
        timing.entry_session(ev("1996-06-03", tz="Asia/Tokyo"), "7203.T", "open")


def test_any_era_and_any_venue() -> None:
    # 2008: Lehman Brothers filed before the US open on Monday 2008-09-15 -> that day's US open; a
    # date-only HK note of Friday 2008-09-12 -> 2008-09-16 (HK closed on 2008-09-15, the day after Mid-Autumn)
    lehman = ev("2008-09-15", "01:45", tz="America/New_York")
    assert timing.entry_session(lehman, "AIG", "open") == pd.Timestamp("2008-09-15")
    assert timing.entry_session(ev("2008-09-12"), "0005.HK", "open") == pd.Timestamp("2008-09-16")
    assert timing.known_at(ev("1999-01-04")) == pd.Timestamp("1999-01-04 16:00", tz="UTC")
    assert len(timing.sessions("XNYS", "2008-01-01", "2010-12-31")) == 253 + 252 + 252
    # the far future on a rule-based calendar, and other venues
    assert timing.entry_session(ev("2031-03-14", tz="America/New_York"), "BABA", "open") == pd.Timestamp(
        "2031-03-17")
    assert list(timing.sessions("XLON", "2022-12-23", "2022-12-29")) == [
        pd.Timestamp("2022-12-23"), pd.Timestamp("2022-12-28"), pd.Timestamp("2022-12-29")]
    # Tokyo opens 09:00 JST = 00:00 UTC: a 08:59 JST note enters the same day's open
    assert timing.entry_session(ev("2022-06-01", "08:59", tz="Asia/Tokyo"), "7203.T", "open") == pd.Timestamp(
        "2022-06-01")
    assert timing.entry_session(ev("2022-06-01", "09:00", tz="Asia/Tokyo"), "7203.T", "open") == pd.Timestamp(
        "2022-06-02")


def _raw_calendar(exchange: str) -> object:
    import exchange_calendars as xcals

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xcals.get_calendar(exchange, start="2019-01-01", end="2025-12-31")


RAW: dict[str, object] = {}


@settings(max_examples=200, deadline=None)
@given(
    minutes=st.integers(min_value=0, max_value=4 * 365 * 24 * 60),
    symbol=st.sampled_from(["BABA", "0700.HK", "9988.HK", "PDD"]),
    fill=st.sampled_from(["open", "close"]),
)
def test_fill_after_known_and_no_earlier_session_qualifies(minutes: int, symbol: str, fill: str) -> None:
    instant = pd.Timestamp("2020-01-01", tz="UTC") + pd.Timedelta(minutes=minutes)
    local = instant.tz_convert("Asia/Hong_Kong")
    event = ev(local.date().isoformat(), local.time().isoformat(timespec="seconds"))
    known = timing.known_at(event)
    assert known == instant
    exchange = timing.exchange_of(symbol)
    session = timing.entry_session(event, symbol, fill)
    opens, closes = timing.session_bounds(exchange, session)
    fill_time = opens if fill == "open" else closes
    assert fill_time > known
    # brute force over the raw library calendar: no earlier (uncorrected) session satisfies the rule
    raw = RAW.setdefault(exchange, _raw_calendar(exchange))
    sched = raw.schedule  # type: ignore[attr-defined]
    col = sched["open"] if fill == "open" else sched["close"]
    earlier = col[(sched.index < session) & (col > known)]
    closed = {pd.Timestamp("2023-09-01"), pd.Timestamp("2023-09-08")}
    assert set(earlier.index) <= closed


def test_us_run_over_2008_2010(tmp_path, run_cli) -> None:
    """Any era: a whole run in 2008-2010 (imported CSV, an event file), entries at the right sessions."""
    import json

    days = timing.sessions("XNYS", "2008-01-02", "2010-12-31")
    rows = ["Date,Open,High,Low,Close,Adj Close,Volume"] + [f"{d.date()},20,21,19,20,20,1000" for d in days]
    (tmp_path / "AIG.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    code, _out, err = run_cli("--offline", "data", "import", str(tmp_path / "AIG.csv"))
    assert code == 0, err
    events = tmp_path / "events.csv"
    events.write_text(
        "id,date,time,tz,session_hint,market,type,scope,symbols,firm,from_grade,to_grade,description,source,"
        "confidence\n"
        "2008-09-15-lehman,2008-09-15,01:45,America/New_York,,,official_reassurance,single,AIG,,,,Lehman files,"
        "https://example.com,high\n"
        "2009-03-10-rally,2009-03-10,,America/New_York,,,official_reassurance,single,AIG,,,,date only,"
        "https://example.com,high\n", encoding="utf-8")
    code, out, err = run_cli("--offline", "run", "event_hold", "-p", "hold=5", "--symbols", "AIG", "--events",
                             str(events), "--replace-events", "--start", "2008-01-02", "--end", "2010-12-31",
                             "--benchmark", "none", "--json", "--no-save")
    assert code == 0, err
    trades = json.loads(out)["trades"]
    assert [(t["entry_date"], t["exit_date"]) for t in trades] == [("2008-09-15", "2008-09-22"),
                                                                   ("2009-03-11", "2009-03-18")]
    # the sells pay the SEC fee of their dates: $5.60 per million (2008-09-22), $5.60 until 2009-05-10
    assert all(t["exit_fees"] > t["entry_fees"] for t in trades)
