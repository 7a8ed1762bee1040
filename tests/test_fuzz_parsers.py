"""Fuzzing the CSV importer and the event-file parser (hypothesis, bounded for CI).

Whatever bytes arrive, the parsers raise nothing but ConfigError, and a failed import writes nothing.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import ConfigError
from engine.events.catalog import COLUMNS, check_events_text, load_events_file
from engine.prices.csv_import import read_yahoo_csv
from engine.prices.store import PriceStore

FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

_CELL = st.one_of(
    st.sampled_from(["", "null", "nan", "inf", "-1", "0", "1e309", "10.5", "2022-01-03", "2022-02-30",
                     "2022-01-03T09:30:00+08:00", "Asia/Hong_Kong", "BABA", "../../x", '"', "\ufeff", "\x00"]),
    st.text(max_size=12),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
_CSV_HEADERS = st.sampled_from(["Date,Open,High,Low,Close,Adj Close,Volume", "date,open,high,low,close,volume",
                                "Date,Open,High,Low,Close", ""])


@st.composite
def csv_texts(draw: st.DrawFn) -> bytes:
    header = draw(_CSV_HEADERS)
    rows = draw(st.lists(st.lists(_CELL, min_size=0, max_size=8), max_size=6))
    text = "\n".join([header, *(",".join(r) for r in rows)])
    return text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"])), errors="replace")


@FUZZ
@given(st.one_of(csv_texts(), st.binary(max_size=300)))
def test_csv_importer_only_raises_config_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "BABA.csv"
    path.write_bytes(data)
    try:
        imported = read_yahoo_csv(path)
    except ConfigError as exc:
        assert "BABA.csv" in str(exc) and "\n" not in str(exc)
        return
    assert len(imported.frame) > 0 and imported.frame.index.is_monotonic_increasing


@settings(FUZZ, max_examples=100)
@given(st.one_of(csv_texts(), st.binary(max_size=300)))
def test_failed_cli_import_writes_nothing(tmp_path: Path, run_cli, cache_dir: Path, data: bytes) -> None:
    path = tmp_path / "BABA.csv"
    path.write_bytes(data)
    before = sorted(p.name for p in cache_dir.rglob("*")) if cache_dir.exists() else []
    code, _, err = run_cli("data", "import", str(path))
    assert "Traceback" not in err
    if code != 0:
        assert code == 2, err
        after = sorted(p.name for p in cache_dir.rglob("*")) if cache_dir.exists() else []
        assert after == before
    else:
        PriceStore(cache_dir).remove("BABA")


_EVENT_CELLS = {
    "id": st.sampled_from(["e1", "", "a b", "x" * 130, "e1"]),
    "date": st.sampled_from(["2022-03-16", "2022-13-01", "16/03/2022", "", "2022-02-29"]),
    "time": st.sampled_from(["", "14:00", "25:00", "9:30", "14:00:00"]),
    "tz": st.sampled_from(["Asia/Hong_Kong", "", "Mars/Olympus", "../../etc/passwd", "UTC", "+08:00"]),
    "session_hint": st.sampled_from(["", "before_open", "lunch"]),
    "market": st.sampled_from(["", "XHKG", "xnys", "LSE"]),
    "type": st.sampled_from(["official_reassurance", "analyst_upgrade", "", "rumour"]),
    "scope": st.sampled_from(["single", "sector", ""]),
    "symbols": st.sampled_from(["BABA", "", "BABA 700", "../x", "BABA,JD"]),
}


@st.composite
def event_texts(draw: st.DrawFn) -> str:
    cols = draw(st.one_of(st.just(list(COLUMNS)), st.lists(st.sampled_from([*COLUMNS, "mood"]), max_size=16)))
    lines = [",".join(cols)]
    for _ in range(draw(st.integers(0, 5))):
        cells = [draw(_EVENT_CELLS.get(c, _CELL)) for c in cols]
        if draw(st.booleans()):
            cells = cells[: draw(st.integers(0, len(cells)))]
        lines.append(",".join(cells))
    return "\n".join(lines)


@FUZZ
@given(st.one_of(event_texts(), st.text(max_size=300)))
def test_event_text_parser_never_raises(text: str) -> None:
    events, problems = check_events_text(text, "fuzz.csv")
    assert all(p.startswith("fuzz.csv:") for p in problems)
    if not problems:
        assert len({e.id for e in events}) == len(events)


@FUZZ
@given(st.one_of(event_texts().map(str.encode), st.binary(max_size=300)))
def test_event_file_loader_only_raises_config_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "ev.csv"
    path.write_bytes(data)
    try:
        load_events_file(path)
    except ConfigError as exc:
        assert str(path) in str(exc)
