"""Venues as data: suffix -> calendar, currency, time zone, price unit, board lot; user rows; unknown symbols."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.market import venues
from engine.market.symbols import listing, lot_era_warning, lot_warning


@pytest.mark.parametrize(
    ("symbol", "calendar", "currency", "unit", "tz", "lot"),
    [
        ("BABA", "XNYS", "USD", "USD", "America/New_York", 1),
        ("0700.HK", "XHKG", "HKD", "HKD", "Asia/Hong_Kong", 100),
        ("9618.HK", "XHKG", "HKD", "HKD", "Asia/Hong_Kong", 50),
        ("2800.HK", "XHKG", "HKD", "HKD", "Asia/Hong_Kong", 500),
        ("600519.SS", "XSHG", "CNY", "CNY", "Asia/Shanghai", 100),
        ("000858.SZ", "XSHG", "CNY", "CNY", "Asia/Shanghai", 100),  # Shenzhen: Shanghai's calendar
        ("7203.T", "XTKS", "JPY", "JPY", "Asia/Tokyo", 100),
        ("BARC.L", "XLON", "GBP", "GBp", "Europe/London", 1),
        ("SAP.DE", "XETR", "EUR", "EUR", "Europe/Berlin", 1),
        ("SAP.F", "XFRA", "EUR", "EUR", "Europe/Berlin", 1),
        ("RY.TO", "XTSE", "CAD", "CAD", "America/Toronto", 100),
        ("BHP.AX", "XASX", "AUD", "AUD", "Australia/Sydney", 1),
        ("D05.SI", "XSES", "SGD", "SGD", "Asia/Singapore", 100),
        ("005930.KS", "XKRX", "KRW", "KRW", "Asia/Seoul", 1),
        ("2330.TW", "XTAI", "TWD", "TWD", "Asia/Taipei", 1000),
        ("RELIANCE.BO", "XBOM", "INR", "INR", "Asia/Kolkata", 1),
        ("RELIANCE.NS", "XBOM", "INR", "INR", "Asia/Kolkata", 1),  # NSE: no calendar of its own
        ("^N225", "XTKS", "JPY", "JPY", "Asia/Tokyo", 1),
        ("^FTSE", "XLON", "GBP", "GBP", "Europe/London", 1),  # index points, not pence
        ("^GSPC", "XNYS", "USD", "USD", "America/New_York", 1),
        ("^HSTECH", "XHKG", "HKD", "HKD", "Asia/Hong_Kong", 1),
        ("^GDAXI", "XETR", "EUR", "EUR", "Europe/Berlin", 1),
        ("000001.SS", "XSHG", "CNY", "CNY", "Asia/Shanghai", 1),
    ],
)
def test_listing_facts(symbol: str, calendar: str, currency: str, unit: str, tz: str, lot: int) -> None:
    info = listing(symbol)
    assert (info.exchange, info.currency, info.price_unit, info.timezone, info.lot_size) == (
        calendar, currency, unit, tz, lot)


def test_pence_scale() -> None:
    assert listing("BARC.L").price_scale == 0.01
    assert listing("^FTSE").price_scale == 1.0
    assert listing("7203.T").price_scale == 1.0


@pytest.mark.parametrize("symbol", ["FOO.ZZ", "^NOPE", "CL=F", "BRK.B"])
def test_unknown_symbols_are_input_errors_listing_the_known_ones(symbol: str) -> None:
    with pytest.raises(ConfigError) as info:
        listing(symbol)
    if "=" not in symbol:
        assert ".HK" in str(info.value) and "^N225" in str(info.value) and "none = US" in str(info.value)


def test_table_time_zones_match_exchange_calendars() -> None:
    from engine.market.calendars import calendar_timezone

    for row in venues.load_venue_table().rows.values():
        assert calendar_timezone(row.calendar) == row.timezone, row.key


def test_default_lot_warns_naming_the_symbol() -> None:
    assert lot_warning("0700.HK") is None
    assert lot_warning("BABA") is None  # US lots are single shares by rule, not a guess
    message = lot_warning("1810.HK")
    assert message is not None and "1810.HK" in message and "100" in message
    assert listing("1810.HK").lot_is_default


def test_user_file_adds_and_overrides_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "venues.csv"
    user.write_text(
        "key,venue,kind,calendar,currency,price_unit,timezone,default_lot,lot_varies,notes\n"
        ".JK,IDX,stock,XIDX,IDR,IDR,Asia/Jakarta,100,0,Indonesia\n"
        "1810.HK,HK,stock,XHKG,HKD,HKD,Asia/Hong_Kong,200,0,Xiaomi board lot\n"
        ".T,TSE,stock,XTKS,JPY,JPY,Asia/Tokyo,1000,0,an older era\n",
        encoding="utf-8",
    )
    table = venues.use_venues_file(user)
    try:
        assert listing("BBCA.JK").exchange == "XIDX"
        assert listing("1810.HK").lot_size == 200 and lot_warning("1810.HK") is None
        assert listing("7203.T").lot_size == 1000
        assert listing("0700.HK").lot_size == 100  # built-in rows stay
        assert str(user.resolve()) in table.sources
        assert table.fingerprint != venues.load_venue_table().fingerprint
    finally:
        venues.use_venues_file(None)
    with pytest.raises(ConfigError):
        listing("BBCA.JK")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (".JK,IDX,stock,XJKT,IDR,IDR,Asia/Jakarta,100,0,x", "XJKT"),
        (".JK,IDX,stock,XIDX,IDR,IDR,Mars/Base,100,0,x", "time zone"),
        (".JK,IDX,stock,XIDX,IDR,GBp,Asia/Jakarta,100,0,x", "price_unit"),
        (".JK,IDX,stock,XIDX,IDR,IDR,Asia/Jakarta,0,0,x", "default_lot"),
    ],
)
def test_bad_user_rows_are_input_errors(tmp_path: Path, row: str, message: str) -> None:
    user = tmp_path / "venues.csv"
    user.write_text("key,venue,kind,calendar,currency,price_unit,timezone,default_lot,lot_varies,notes\n"
                    + row + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        venues.use_venues_file(user)
    assert listing("0700.HK").exchange == "XHKG"  # the failed file changed nothing


def test_no_warning_machinery_needed_for_known_lots() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for symbol in ("0700.HK", "9988.HK", "3690.HK", "9618.HK", "9999.HK", "9888.HK", "1024.HK", "2800.HK"):
            assert not listing(symbol).lot_is_default


def test_venues_option_on_the_command_line(tmp_path: Path, run_cli) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("key,calendar\n.JK,XIDX\n", encoding="utf-8")
    code, _out, err = run_cli("--venues", str(bad), "--offline", "run", "event_hold", "--symbols", "BBCA.JK")
    assert code == 2 and "Traceback" not in err
    assert err.startswith("error:") and "currency" in err and len(err.strip().splitlines()) == 1
    good = tmp_path / "good.csv"
    good.write_text("key,venue,calendar,currency,timezone\n.JK,IDX,XIDX,IDR,Asia/Jakarta\n", encoding="utf-8")
    csv = tmp_path / "BBCA.JK.csv"
    csv.write_text("Date,Open,High,Low,Close,Adj Close,Volume\n2022-06-02,10,10,10,10,10,5\n", encoding="utf-8")
    code, _out, err = run_cli("--venues", str(good), "--offline", "data", "import", str(csv))
    assert code == 0, err
    other = tmp_path / "BBRI.JK.csv"
    other.write_bytes(csv.read_bytes())
    venues.use_venues_file(None)  # a new process would start without it
    code, _out, err = run_cli("--offline", "data", "import", str(other))  # without the file: unknown suffix
    assert code == 2 and ".JK" in err


def _sessions_csv(path: Path, calendar: str, start: str, end: str, price: float) -> None:
    import exchange_calendars as xcals

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        days = xcals.get_calendar(calendar, start="2010-01-01").sessions_in_range(start, end)
    lines = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    lines += [f"{d:%Y-%m-%d},{price},{price},{price},{price},{price},1000" for d in days]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize(("symbol", "calendar", "fx", "changed", "start", "end"), [
    ("D05.SI", "XSES", "SGD=X", "2015-01-19", "2014-06-02", "2014-12-31"),  # SGX: lots of 1,000 before 2015-01-19
    ("7203.T", "XTKS", "JPY=X", "2018-10-01", "2017-06-01", "2017-12-29"),  # TSE: units varied before 2018-10-01
])
def test_board_lot_before_the_venues_unification_is_said(tmp_path: Path, run_cli, symbol: str, calendar: str,
                                                         fx: str, changed: str, start: str, end: str) -> None:
    """The venue lots of SGX (100) and TSE (100) hold from 2015-01-19 and 2018-10-01 only: a run on bars before
    those dates sized in the modern lot silently (SGX traded 1,000-share lots in 2014) and must say so."""
    _sessions_csv(tmp_path / f"{symbol}.csv", calendar, start, end, 10.0)
    _sessions_csv(tmp_path / f"{fx}.csv", "XNYS", "2014-01-02", end, 1.3)
    code, _out, err = run_cli("--offline", "data", "import", str(tmp_path / f"{symbol}.csv"),
                              str(tmp_path / f"{fx}.csv"))
    assert code == 0, err
    code, out, err = run_cli("--offline", "run", "event_hold", "--symbols", symbol, "--start", start, "--end", end,
                             "--benchmark", "none", "--json")
    assert code == 0, err
    import json

    said = [w for w in json.loads(out)["warnings"] if symbol in w and changed in w]
    assert said, json.loads(out)["warnings"]
    assert listing(symbol).lot_size == 100
    # from the unification on, the venue lot is the rule, not a guess: no warning
    assert lot_era_warning(symbol, changed) is None
    assert lot_era_warning(symbol, "2010-01-04") is not None


def test_no_lot_era_warning_where_the_lot_is_the_listings_own(tmp_path: Path) -> None:
    user = tmp_path / "venues.csv"
    user.write_text("key,venue,kind,calendar,currency,price_unit,timezone,default_lot,lot_varies,notes\n"
                    "D05.SI,SGX,stock,XSES,SGD,SGD,Asia/Singapore,1000,0,DBS in 2014\n", encoding="utf-8")
    venues.use_venues_file(user)
    try:
        assert lot_era_warning("D05.SI", "2014-06-02") is None  # the user set this listing's lot
        assert lot_era_warning("O39.SI", "2014-06-02") is not None
    finally:
        venues.use_venues_file(None)
    assert lot_era_warning("BABA", "2000-01-03") is None and lot_era_warning("0700.HK", "2000-01-03") is None


def test_bars_past_a_calendars_last_session_are_an_error_naming_it(tmp_path: Path, run_cli) -> None:
    """XSHG ends 2026-12-31 in exchange-calendars 4.13: Shanghai bars of 2027 have no session to count, so a hold
    entered on 2026-12-31 never ended (an open trade, `holding_sessions` 1, no warning) though the data went on
    to 2027-03-31. The run must refuse with the calendar and its last session, not leave a silent gap."""
    import pandas as pd

    stock = tmp_path / "600519.SS.csv"
    _sessions_csv(stock, "XSHG", "2026-10-08", "2026-12-31", 1500.0)
    with stock.open("a", encoding="utf-8") as fh:
        for day in pd.bdate_range("2027-01-04", "2027-03-31"):
            fh.write(f"{day:%Y-%m-%d},1500,1500,1500,1500,1500,1000\n")
    _sessions_csv(tmp_path / "CNY=X.csv", "XNYS", "2026-09-01", "2027-03-31", 7.1)
    events = tmp_path / "events.csv"
    events.write_text("id,date,time,tz,session_hint,market,type,scope,symbols,firm,from_grade,to_grade,description,"
                      "source,confidence\ne1,2026-12-30,20:00,Asia/Shanghai,,,regulatory_crackdown,single,600519.SS,,,,"
                      "x,https://example.com,high\n", encoding="utf-8")
    code, _out, err = run_cli("--offline", "data", "import", str(stock), str(tmp_path / "CNY=X.csv"))
    assert code == 0, err
    args = ("--offline", "run", "event_hold", "-p", "types=regulatory_crackdown", "-p", "hold=3", "--symbols",
            "600519.SS", "--start", "2026-11-01", "--benchmark", "none", "--events", str(events), "--replace-events",
            "--json")
    code, _out, err = run_cli(*args, "--end", "2027-03-31")
    assert code == 2, err
    assert "600519.SS" in err and "XSHG" in err and "2026-12-31" in err and "2027-01-04" in err
    assert "Traceback" not in err
    code, _out, err = run_cli(*args, "--end", "2026-12-31")  # within the calendar: runs (the trade stays open)
    assert code == 0, err
