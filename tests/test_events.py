"""Event model, curated calendar, user files, validation, merge, filtering, hashing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.events.catalog import (
    COLUMNS,
    EVENT_TYPES,
    calendar_hash,
    check_events_text,
    filter_events,
    load_calendar,
    load_curated,
    load_events_file,
    symbols_for,
)

HEADER = ",".join(COLUMNS)
GOOD = (
    "u-1,2022-06-01,10:00,Asia/Hong_Kong,,,policy_support,sector,,,,,Test event,https://example.org/a,high\n"
    "u-2,2022-06-02,,America/New_York,after_close,XNYS,analyst_upgrade,single,baba 700,Acme,Hold,Buy,"
    "Acme upgrade,https://example.org/b,medium\n"
)


def write(tmp_path: Path, body: str, name: str = "ev.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "\n" + body, encoding="utf-8")
    return path


def by_id() -> dict:
    return {e.id: e for e in load_curated()}


def test_curated_calendar_covers_all_research_rows() -> None:
    events = load_curated()
    assert len(events) == 81  # 76 research rows, 5 of them split per firm/grade
    assert {e.type for e in events} <= set(EVENT_TYPES)
    assert all(e.source.startswith("http") for e in events)
    assert len({e.id for e in events}) == len(events)


def test_required_curated_events() -> None:
    ev = by_id()
    fsdc = ev["2022-03-16-fsdc-liu-he"]
    assert (fsdc.type, fsdc.session_hint, fsdc.market) == ("official_reassurance", "during_session", "XHKG")
    sym = ev["2022-05-17-cppcc-symposium"]
    assert (sym.type, sym.time, sym.tz) == ("official_reassurance", dt.time(19, 0), "Asia/Shanghai")
    up = ev["2022-05-16-jpm-upgrades"]
    assert (up.type, up.firm) == ("analyst_upgrade", "JPMorgan")
    assert (up.from_grade, up.to_grade) == ("Underweight", "Overweight")
    assert up.tz == "America/New_York"
    assert {"TCEHY", "0700.HK", "3690.HK", "NTES", "9999.HK", "BABA", "9988.HK", "PDD"} <= set(up.symbols)
    down = ev["2022-03-14-jpm-uninvestable"]
    assert (down.type, down.firm, down.date, down.tz) == (
        "analyst_downgrade", "JPMorgan", dt.date(2022, 3, 14), "America/New_York")


def test_user_file_loads_and_normalises_symbols(tmp_path: Path) -> None:
    events = load_events_file(write(tmp_path, GOOD))
    assert [e.id for e in events] == ["u-1", "u-2"]
    assert events[1].symbols == ("BABA", "0700.HK")
    assert events[0].time == dt.time(10, 0) and events[0].symbols == ()


def test_every_problem_is_reported_with_line_numbers(tmp_path: Path) -> None:
    body = (
        GOOD
        + "u-3,2022-13-01,,Mars/Olympus,,,rumour,global,,,,,x,,high\n"  # line 4
        + "u-1,2022-06-01,,Asia/Hong_Kong,,,other,single,BABA,,,,dup,https://x,high\n"  # line 5
        + "u-5,2022-06-01,25:00,Asia/Hong_Kong,before_open,,other,single,a/b,,,,x,https://x,sure\n"  # line 6
        + "u-6,2022-06-01,09:00,Asia/Hong_Kong,after_close,XNYS,analyst_upgrade,single,BABA,,,,x,https://x,\n"
        + "u-7,2022-06-01,,Asia/Hong_Kong,,XHKG,other,sector,,,,,x,https://x,\n"  # line 8
        + "u-8,2022-06-01\n"  # line 9
    )
    with pytest.raises(ConfigError) as err:
        load_events_file(write(tmp_path, body))
    msg = str(err.value)
    for needle in [
        ":4: bad date '2022-13-01'", ":4: unknown time zone 'Mars/Olympus'", ":4: unknown type 'rumour'",
        ":4: unknown scope 'global'", ":4: missing source", ":5: duplicate id 'u-1' (first on line 2)",
        ":6: bad time '25:00'", ":6: session_hint 'before_open' needs a market", ":6: bad symbol",
        ":6: unknown confidence 'sure'", ":7: give either time or session_hint",
        ":7: analyst_upgrade needs a firm",
        ":8: market 'XHKG' is only used with a session_hint", ":9: expected 15 fields, found 2",
    ]:
        assert needle in msg, needle


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty file"),
        ("id,date,when\n", "unknown column(s) 'when'"),
        ("id,date\n", "missing column(s): tz, type, scope, description, source"),
        (HEADER + "\n" + 'u-1,2022-06-01,,"Asia/Hong_Kong', "expected 15 fields"),
    ],
)
def test_malformed_headers_and_quoting(text: str, needle: str) -> None:
    _, problems = check_events_text(text, "f.csv")
    assert problems and any(needle in p for p in problems), problems


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_events_file(tmp_path / "nope.csv")
    bad = tmp_path / "bin.csv"
    bad.write_bytes(b"\xff\xfe\x00id")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_events_file(bad)


def test_merge_replace_and_cross_file_duplicates(tmp_path: Path) -> None:
    user = write(tmp_path, GOOD)
    merged = load_calendar([user])
    assert len(merged) == 83
    assert merged == sorted(merged, key=lambda e: (e.date, e.id))
    assert [e.id for e in load_calendar([user], replace=True)] == ["u-1", "u-2"]
    clash = write(tmp_path, "2022-03-16-fsdc-liu-he,2022-03-16,,Asia/Shanghai,,,other,sector,,,,,x,https://x,\n",
                  "clash.csv")
    with pytest.raises(ConfigError, match="duplicate id '2022-03-16-fsdc-liu-he'"):
        load_calendar([clash])
    with pytest.raises(ConfigError, match="--replace needs"):
        load_calendar([], replace=True)


def test_filter_by_type_symbol_and_dates() -> None:
    events = load_curated()
    ups = filter_events(events, types=["analyst_upgrade"])
    assert ups and all(e.type == "analyst_upgrade" for e in ups)
    pdd = filter_events(events, symbols=["pdd"], start=dt.date(2022, 1, 1), end=dt.date(2022, 12, 31))
    assert pdd and all("PDD" in e.symbols for e in pdd)
    assert all(dt.date(2022, 1, 1) <= e.date <= dt.date(2022, 12, 31) for e in pdd)
    with pytest.raises(ConfigError, match="unknown event type"):
        filter_events(events, types=["bogus"])


def test_sector_event_without_symbols_matches_any_symbol(tmp_path: Path) -> None:
    events = load_events_file(write(tmp_path, GOOD))
    assert [e.id for e in filter_events(events, symbols=["JD"])] == ["u-1"]


def test_symbols_for() -> None:
    ev = by_id()
    universe = ["BABA", "0700.HK", "SPY"]
    assert symbols_for(ev["2022-03-16-fsdc-liu-he"], universe) == ["BABA", "0700.HK"]
    assert symbols_for(ev["2023-02-28-jpm-netease-upgrade"], universe) == []


def test_symbols_for_universe_wide_sector_event(tmp_path: Path) -> None:
    sector = load_events_file(write(tmp_path, GOOD))[0]
    assert symbols_for(sector, ["JD", "9618.HK"]) == ["JD", "9618.HK"]


def test_calendar_hash_is_order_independent_and_content_sensitive(tmp_path: Path) -> None:
    events = load_curated()
    h = calendar_hash(events)
    assert len(h) == 64 and h == calendar_hash(list(reversed(events)))
    merged = load_calendar([write(tmp_path, GOOD)])
    assert calendar_hash(merged) != h
