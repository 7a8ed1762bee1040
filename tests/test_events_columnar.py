"""The column parser and the column-laid hash equal the frozen row parser and json.dumps hash.

tests/test_events_reference.py holds the code as it was; here both read the same texts (hypothesis-made
files full of near-misses, and every real calendar at hand) and must give equal events in the same order,
the same problems word for word and the same calendar hash.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import pickle
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import ConfigError
from engine.events import columnar
from engine.events.canonical import Calendar
from engine.events.catalog import (
    COLUMNS,
    CURATED_PATH,
    REQUIRED_COLUMNS,
    Event,
    calendar_hash,
    check_events_text,
    load_calendar,
    load_curated,
)
from engine.events.model import EVENT_FIELDS
from tests.conftest import shared_data_dir
from tests.test_events_reference import (
    ref_calendar_hash,
    ref_check_events_text,
    ref_load_sorted,
    ref_problem_message,
)

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
SCALE = Path("/work/scale")  # benchmarks/scale_bench.py --keep output on the development machine, if present


def assert_same(text: str, origin: str = "f.csv") -> tuple[list[Event], list[str]]:
    got, ref = check_events_text(text, origin), ref_check_events_text(text, origin)
    assert got[1] == ref[1]
    assert got[0] == ref[0]
    assert [list(vars(e)) for e in got[0]] == [list(vars(e)) for e in ref[0]]  # the fields, in their order
    assert all(type(e) is Event for e in got[0])
    assert calendar_hash(got[0]) == ref_calendar_hash(ref[0])
    return got


def assert_same_calendar(text: str) -> None:
    """load_calendar (a Calendar when the column parser read the file) against the reference."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ev.csv"
        path.write_text(text, encoding="utf-8")
        _, problems = ref_check_events_text(path.read_text(encoding="utf-8-sig"), str(path))
        if problems:
            with pytest.raises(ConfigError) as err:
                load_calendar([path], replace=True)
            assert str(err.value) == ref_problem_message(problems)
            return
        events = load_calendar([path], replace=True)
        ref = ref_load_sorted([ref_check_events_text(path.read_text(encoding="utf-8-sig"), str(path))[0]])
        assert events == ref and calendar_hash(events) == ref_calendar_hash(ref)
        curated = ref_check_events_text(CURATED_PATH.read_text(encoding="utf-8-sig"), str(CURATED_PATH))[0]
        if not {e.id for e in curated} & {e.id for e in ref}:
            merged, ref_merged = load_calendar([path]), ref_load_sorted([curated, ref])
            assert merged == ref_merged and calendar_hash(merged) == ref_calendar_hash(ref_merged)


# ---------------------------------------------------------------- generated files

_GOOD = {
    "date": ["2022-03-16", "2024-02-29", "0999-01-01", "2015-07-31"],
    "tz": ["America/New_York", "Asia/Hong_Kong", "UTC", "Etc/GMT+5"],
    "type": ["analyst_upgrade", "analyst_downgrade", "other", "policy_support"],
    "symbols": ["BABA", "BABA 700", "BABA,JD", "ZAAA", "0700.hk", " , "],
    "firm": ["", "Acme", "Borealis Capital"],
    "from_grade": ["", "Hold", "Buy"],
    "to_grade": ["", "Sell", "Overweight"],
    "description": ["x", "Acme: Hold -> Buy", "comma, inside", "naïve ✓", 'say "hi"', "line\nbreak", "\u2028 sep"],
    "source": ["https://x", "https://example.invalid/"],
    "confidence": ["", "high", "LOW", "medium"],
}
_BAD = {  # cells the row parser rejects, or accepts only after trimming or folding
    "id": ["", "a b", "x" * 121, " e0", "e0"],
    "date": ["2022-02-29", "2022-13-01", "", "16/03/2022", " 2022-03-16"],
    "time": ["25:00", "9:30", " 14:00 ", "00:00"],
    "tz": ["Mars/Olympus", "", "localtime", " UTC", "../etc"],
    "session_hint": ["lunch", " during_session"],
    "market": ["LSE", "xnys", " XNYS "],
    "type": ["", "rumour", " other"],
    "scope": ["", "global", " single"],
    "symbols": ["", "../x", "a/b"],
    "firm": [" Acme "],
    "description": ["", "  "],
    "source": [""],
    "confidence": ["sure", " medium"],
}


@st.composite
def good_row(draw: st.DrawFn, i: int) -> dict[str, str]:
    row = {k: draw(st.sampled_from(v)) for k, v in _GOOD.items()}
    row["id"] = f"e{i}" if draw(st.booleans()) else f"{row['date']}-e.{i}_X"
    row["time"], row["session_hint"], row["market"] = draw(st.sampled_from([
        ("", "", ""), ("14:00", "", ""), ("09:30:15", "", ""), ("", "before_open", "XHKG"),
        ("", "after_close", "XNYS"), ("", "during_session", "xhkg")]))
    row["scope"] = draw(st.sampled_from(["single", "sector"]))
    if row["type"].startswith("analyst") and not row["firm"]:
        row["firm"] = "Acme"
    return row


@st.composite
def event_files(draw: st.DrawFn) -> str:
    cols = list(draw(st.permutations(COLUMNS)))
    optional = [c for c in cols if c not in REQUIRED_COLUMNS]
    dropped = set(draw(st.lists(st.sampled_from(optional), max_size=3))) if optional else set()
    cols = [c for c in cols if c not in dropped]
    n = draw(st.integers(0, 12))
    # a few distinct rows repeated with fresh ids, as in a real analyst calendar
    pool = [draw(good_row(i)) for i in range(draw(st.integers(1, 4)))]
    rows = []
    for i in range(n):
        row = dict(draw(st.sampled_from(pool)))
        row["id"] = f"r{i}-{row['id']}"
        if draw(st.integers(0, 9)) == 0:  # now and then one bad cell
            col = draw(st.sampled_from(sorted(_BAD)))
            row[col] = draw(st.sampled_from(_BAD[col]))
        rows.append([row.get(c, "") for c in cols])
    header = list(cols)
    if draw(st.integers(0, 9)) == 0:
        header[0] = " " + header[0]
    style = draw(st.sampled_from(["csv", "csv-crlf", "plain", "plain-blank"]))
    if style.startswith("csv"):
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n" if style == "csv-crlf" else "\n").writerows([header, *rows])
        text = buf.getvalue()
    else:
        lines = [",".join(r) for r in [header, *rows]]
        if style == "plain-blank" and lines:
            lines.insert(draw(st.integers(1, len(lines))), draw(st.sampled_from(["", "  ", ",,,"])))
        text = "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n"]))
    return text


@SETTINGS
@given(event_files())
def test_generated_files_parse_as_the_reference_does(text: str) -> None:
    assert_same(text)


@settings(SETTINGS, max_examples=60)
@given(event_files())
def test_generated_files_load_and_hash_as_the_reference_does(text: str) -> None:
    assert_same_calendar(text)


@SETTINGS
@given(st.text(alphabet=st.sampled_from(list('id,date,tz,type,scope,description,source"\n\r x1-')), max_size=200))
def test_near_csv_noise_parses_as_the_reference_does(text: str) -> None:
    assert_same(text)


def test_the_generated_files_reach_the_column_parser() -> None:
    """The comparisons above are worth something only if clean files take the fast route (and unclean don't)."""
    header = ",".join(COLUMNS)
    row = "e1,2022-06-01,,UTC,,,analyst_upgrade,single,BABA,Acme,,,x,https://x,low"
    assert columnar.parse_clean(f"{header}\n{row}\n") is not None
    quoted = row.replace(",x,", ',"x, y",')
    assert columnar.parse_clean(f"{header}\r\n{quoted}\r\n") is not None  # the csv module's route
    assert columnar.parse_clean(f"{header}\n\n{row}\n  \n") is not None  # blank lines are no problem
    too_long = row.replace(",x,", "," + "x" * (csv.field_size_limit() + 1) + ",")  # a csv.Error for the row parser
    for bad in (row.replace("Acme", ""), row.replace("e1", " e1"), f"{row}\n{row}", f"{row}\n,x", row[2:], too_long):
        assert columnar.parse_clean(f"{header}\n{bad}\n") is None
        assert_same(f"{header}\n{bad}\n")


# ---------------------------------------------------------------- the real calendars


def _real_files() -> list[Path]:
    files = [CURATED_PATH, *sorted(shared_data_dir().glob("events/*.csv"))]
    return files + sorted(SCALE.glob("*/events.csv"), key=lambda p: p.stat().st_size)[:3]  # 14, 100, 500 symbols


@pytest.mark.parametrize("path", _real_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_calendars_parse_load_and_hash_as_the_reference_does(path: Path) -> None:
    text = path.read_text(encoding="utf-8-sig")
    _, problems = assert_same(text, str(path))
    if not problems:
        assert columnar.parse_clean(text) is not None
        assert_same_calendar(text)


def test_curated_calendar_hash_is_unchanged() -> None:
    """The packaged calendar's hash as the reference gave it before the column parser (pinned from 62fdc34)."""
    assert calendar_hash(load_calendar()) == calendar_hash(load_curated())
    assert calendar_hash(load_curated()) == "2c93fbd0a841c0681b1e91157644f651c2a159b274c2389b76e5a6f128c89ccd"


# ---------------------------------------------------------------- the hash by hand, and unusual events


def _hand_event(**changes: object) -> Event:
    base = dict(id="u-1", date=dt.date(2022, 6, 1), tz="Asia/Hong_Kong", time=dt.time(10, 0), session_hint=None,
                market=None, type="policy_support", scope="sector", symbols=(), description="Test naïve",
                source="https://example.org/a", firm=None, from_grade=None, to_grade=None, confidence="high")
    return Event(**{**base, **changes})


HAND_JSON = (
    '[{"confidence":"high","date":"2022-06-01","description":"Test na\\u00efve","firm":null,"from_grade":null,'
    '"id":"u-1","market":null,"scope":"sector","session_hint":null,"source":"https://example.org/a",'
    '"symbols":[],"time":"10:00:00","to_grade":null,"type":"policy_support","tz":"Asia/Hong_Kong"},'
    '{"confidence":null,"date":"2022-06-02","description":"Test na\\u00efve","firm":"Acme","from_grade":"Hold",'
    '"id":"u-2","market":"XNYS","scope":"single","session_hint":"after_close","source":"https://example.org/a",'
    '"symbols":["BABA","0700.HK"],"time":null,"to_grade":"Buy","type":"analyst_upgrade","tz":"Asia/Hong_Kong"}]'
)


def test_hash_of_two_events_written_out_by_hand(tmp_path: Path) -> None:
    second = _hand_event(id="u-2", date=dt.date(2022, 6, 2), time=None, session_hint="after_close", market="XNYS",
                         type="analyst_upgrade", scope="single", symbols=("BABA", "0700.HK"), firm="Acme",
                         from_grade="Hold", to_grade="Buy", confidence=None)
    expected = hashlib.sha256(HAND_JSON.encode("ascii")).hexdigest()
    assert calendar_hash([second, _hand_event()]) == expected == ref_calendar_hash([_hand_event(), second])
    path = tmp_path / "ev.csv"
    path.write_text(",".join(COLUMNS) + "\n"
                    "u-2,2022-06-02,,Asia/Hong_Kong,after_close,XNYS,analyst_upgrade,single,baba 700,Acme,Hold,Buy,"
                    "Test naïve,https://example.org/a,\n"
                    "u-1,2022-06-01,10:00,Asia/Hong_Kong,,,policy_support,sector,,,,,Test naïve,https://example.org/a,"
                    "high\n", encoding="utf-8")
    loaded = load_calendar([path], replace=True)
    assert isinstance(loaded, Calendar) and loaded == [_hand_event(), second]
    assert calendar_hash(loaded) == expected


class _Sub(Event):
    pass


@pytest.mark.parametrize("odd", [
    _hand_event(firm=3), _hand_event(symbols=["BABA"]), _hand_event(time=dt.time(10, tzinfo=dt.UTC)),
    _hand_event(date=dt.datetime(2022, 6, 1, 9)), _hand_event(description=True), _Sub(**vars(_hand_event())),
])
def test_events_of_unusual_types_hash_as_json_dumps_does(odd: Event) -> None:
    events = [odd, _hand_event(id="u-0", symbols=("JD",))]
    assert calendar_hash(events) == ref_calendar_hash(events)


def test_event_with_an_extra_attribute_hashes_as_json_dumps_does() -> None:
    odd = _hand_event()
    object.__setattr__(odd, "note", "x")  # event_to_dict writes every attribute: so does the hash
    assert calendar_hash([odd]) == ref_calendar_hash([odd]) != ref_calendar_hash([_hand_event()])


def test_a_changed_calendar_is_hashed_from_its_events(tmp_path: Path) -> None:
    path = tmp_path / "ev.csv"
    path.write_text(",".join(COLUMNS) + "\n" + "".join(
        f"e{i},2022-06-0{i},,UTC,,,other,sector,,,,,x{i},https://x,\n" for i in range(1, 5)), encoding="utf-8")
    for change in (lambda c: c.append(_hand_event()), lambda c: c.pop(), lambda c: c.reverse(),
                   lambda c: c.__setitem__(0, _hand_event()), lambda c: c.__delitem__(slice(0, 2))):
        events = load_calendar([path], replace=True)
        assert isinstance(events, Calendar)
        change(events)
        assert calendar_hash(events) == ref_calendar_hash(list(events))
    events = load_calendar([path], replace=True)
    copy = pickle.loads(pickle.dumps(events))
    assert type(copy) is list and copy == events and calendar_hash(copy) == calendar_hash(events)
    rebuilt = type(events)(iter(events))  # as dataclasses.asdict copies a list
    assert rebuilt == events and calendar_hash(rebuilt) == calendar_hash(events)


def test_events_built_from_columns_equal_constructed_ones(tmp_path: Path) -> None:
    events = check_events_text(",".join(COLUMNS) + "\ne1,2022-06-01,,UTC,,,analyst_upgrade,single,BABA,Acme,"
                               ",,x,https://x,low\n", "f.csv")[0]
    rebuilt = [Event(**{f: getattr(e, f) for f in EVENT_FIELDS}) for e in events]
    assert events == rebuilt and [repr(e) for e in events] == [repr(e) for e in rebuilt]
    assert [hash(e) for e in events] == [hash(e) for e in rebuilt]
    assert pickle.loads(pickle.dumps(events)) == rebuilt


def test_merged_files_laid_out_differently_hash_as_the_reference_does(tmp_path: Path) -> None:
    """Curated (id, date and time per row), a file with an empty time column, one with a single row."""
    header = ",".join(COLUMNS) + "\n"
    no_times = tmp_path / "a.csv"
    no_times.write_text(header + "".join(f"2019-01-0{i}-a{i},2019-01-0{i},,UTC,,,other,sector,,,,,x,https://x,\n"
                                         for i in range(1, 6)), encoding="utf-8")
    single = tmp_path / "b.csv"
    single.write_text(header + '2018-05-05-b,2018-05-05,09:00,UTC,,,other,sector,,,,,"y, z",https://y,low\n',
                      encoding="utf-8")
    events = load_calendar([no_times, single])
    assert isinstance(events, Calendar) and len(events) == 81 + 6
    texts = [p.read_text(encoding="utf-8") for p in (CURATED_PATH, no_times, single)]
    ref = ref_load_sorted([ref_check_events_text(t, "x")[0] for t in texts])
    assert events == ref and calendar_hash(events) == ref_calendar_hash(ref)
