"""The vectorised CSV parser (engine.prices.csv_fast) gives exactly the row parser's frames, or steps aside.

``read_yahoo_csv(vectorised=False)`` is the reference (the careful row parser). For every input both must
agree: the same frame bit for bit and the same adjustment note, or the same error message.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import ConfigError, DataError
from engine.prices.csv_fast import parse_plain
from engine.prices.csv_import import read_yahoo_csv
from engine.prices.validate import prices_frame

PROPS = settings(max_examples=100, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
LABELS = {"date": "Date", "open": "Open", "high": "High", "low": "Low", "close": "Close",
          "adj_close": "Adj Close", "volume": "Volume"}


def assert_same_frame(fast: pd.DataFrame, slow: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(fast, slow, check_exact=True, check_freq=True, check_flags=True)
    assert fast.index.dtype == slow.index.dtype == np.dtype("datetime64[us]")
    assert np.array_equal(fast.index.asi8, slow.index.asi8)
    for col in slow.columns:  # bit for bit (assert_frame_equal treats -0.0 == 0.0)
        assert fast[col].to_numpy().tobytes() == slow[col].to_numpy().tobytes(), col


def outcome(path, vectorised: bool) -> tuple:
    try:
        got = read_yahoo_csv(path, vectorised=vectorised)
    except ConfigError as exc:
        return ("error", str(exc))
    return ("ok", got.symbol, got.adjustment, got.frame)


def direct_fast(raw: bytes, symbol: str) -> pd.DataFrame | None:
    """What the vectorised path alone makes of a file (None: it steps aside or its bars fail validation)."""
    plain = parse_plain(raw)
    if plain is None:
        return None
    days, values, _ = plain
    try:
        return prices_frame(pd.DatetimeIndex(days.astype("datetime64[us]"), name="date"), values, symbol)
    except DataError:
        return None


def assert_agree(path) -> tuple:
    """``read_yahoo_csv`` with and without the fast path agree, and so does the fast path on its own: it never
    accepts a file the row parser refuses, and what it accepts is the row parser's frame."""
    fast, slow = outcome(path, True), outcome(path, False)
    assert fast[0] == slow[0], (fast[:2], slow[:2])
    if fast[0] == "error":
        assert fast == slow
    else:
        assert fast[1:3] == slow[1:3]
        assert_same_frame(fast[3], slow[3])
    alone = direct_fast(path.read_bytes(), "ZZA")
    if slow[0] == "error":
        assert alone is None, slow[1]
    elif alone is not None:
        assert_same_frame(alone, slow[3])
    return slow


def test_real_files_take_the_fast_path_and_match_the_row_parser(shared_prices) -> None:
    files = sorted(shared_prices.glob("*.csv"))
    assert len(files) >= 20
    for path in files:
        slow = assert_agree(path)
        assert slow[0] == "ok", path.name
        alone = direct_fast(path.read_bytes(), slow[1])
        assert alone is not None, path.name
        assert_same_frame(alone, slow[3])


def _synthetic(tmp_path, n: int = 300, seed: int = 7) -> list:
    """Files as benchmarks/scale_bench.py writes them (random walk, 4 decimals, integer volume)."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2015-02-02", periods=n)
    paths = []
    for k in range(3):
        close = 50.0 * np.exp(np.cumsum(rng.normal(0.0002, 0.02, n)))
        opens = close * np.exp(rng.normal(0, 0.005, n))
        high, low = np.maximum(opens, close) * 1.01, np.minimum(opens, close) * 0.99
        vol = rng.integers(0, 2_000_000, n)
        lines = ["Date,Open,High,Low,Close,Adj Close,Volume"] + [
            f"{d:%Y-%m-%d},{o:.4f},{h:.4f},{lo:.4f},{c:.4f},{c * 0.98:.6f},{v}"
            for d, o, h, lo, c, v in zip(days, opens, high, low, close, vol, strict=True)]
        path = tmp_path / f"ZA{k}.csv"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def test_synthetic_files_take_the_fast_path_and_match(tmp_path) -> None:
    for path in _synthetic(tmp_path):
        assert assert_agree(path)[0] == "ok"
        assert direct_fast(path.read_bytes(), "ZZA") is not None


# ---------------------------------------------------------------- generated files

_PRICE = st.floats(min_value=0.01, max_value=5000, allow_nan=False, allow_infinity=False)
_DAY = st.dates(min_value=pd.Timestamp("1990-01-01").date(), max_value=pd.Timestamp("2030-12-31").date())


def _fmt(value: float, style: str) -> str:
    return {"repr": repr(value), "4": f"{value:.4f}", "6": f"{value:.6f}", "int": str(round(value)),
            "long": f"{value:.25f}", "lead0": "00" + f"{value:.3f}", "trail": f"{round(value)}."}[style]


@st.composite
def plain_files(draw: st.DrawFn) -> bytes:
    """Files the fast path must take: well-formed numbers, with layout quirks it handles (BOM, CRLF, blank
    lines, header case/spaces, reordered and extra columns, no Adj Close, rows out of order)."""
    keys = ["date", "open", "high", "low", "close", "adj_close", "volume"]
    if draw(st.booleans()):
        keys.remove("adj_close")
    keys = draw(st.permutations(keys))
    extra = draw(st.integers(0, 2))
    header = [draw(st.sampled_from([LABELS[k], LABELS[k].upper(), f" {LABELS[k].lower()} "])) for k in keys]
    header += [f"Note{i}" for i in range(extra)]
    days = draw(st.lists(_DAY, min_size=1, max_size=10, unique=True))
    style = draw(st.sampled_from(["repr", "4", "6", "int", "long", "lead0", "trail"]))
    rows = []
    for day in days:
        o, c = draw(_PRICE), draw(_PRICE)
        cell = {"date": day.isoformat(), "open": o, "close": c, "high": max(o, c) * 1.01, "low": min(o, c) * 0.99,
                "adj_close": c * 0.97, "volume": float(draw(st.integers(0, 10**12)))}
        if draw(st.integers(0, 9)) == 0:  # a stale bar
            cell.update(open=c, high=c, low=c, volume=0.0)
        text = [cell[k] if k == "date" else _fmt(cell[k], "int" if k == "volume" else style) for k in keys]
        rows.append(",".join(text + [str(i) for i in range(extra)]))
    nl = draw(st.sampled_from(["\n", "\r\n"]))
    body = nl.join(draw(st.permutations(rows)))
    if draw(st.booleans()):
        body = body.replace(nl, nl + nl, 1)  # a blank line
    text = ",".join(header) + nl + body + draw(st.sampled_from(["", nl, nl + nl]))
    raw = text.encode()
    return b"\xef\xbb\xbf" + raw if draw(st.booleans()) else raw


@PROPS
@given(plain_files())
def test_plain_files_take_the_fast_path_and_agree(tmp_path, raw: bytes) -> None:
    path = tmp_path / "ZZA.csv"
    path.write_bytes(raw)
    assert parse_plain(raw) is not None
    if assert_agree(path)[0] == "ok":  # (bars may fail validation: a zero price, high < open after rounding)
        assert direct_fast(raw, "ZZA") is not None


_ODD_CELLS = ["null", "NULL", " null ", "", " 12.5", "12.5 ", "1e3", "1E-2", "+5", "-5", "-0", "0", "nan", "inf",
              "-inf", "1_000", "1,5", '"12.5"', '"1,000.5"', "1 000", "12.5.1", ".", "-", ".5", "5.", "--5", "1-2",
              "1" + "0" * 400,
              "0.1" + "0" * 30 + "1", "٣", "12\u00a0", "0x10", "2022-01-03", "2022-01-03T00:00:00", "2022-02-30",
              "2022-1-03", "20220103", "1799-12-31", "2262-01-01", "9999-12-31"]


@st.composite
def quirky_files(draw: st.DrawFn) -> bytes:
    """A plain file with one to three cells replaced by odd text, maybe a duplicate or short row, a stray
    carriage return or quote: the fast path must step aside or agree."""
    lines = draw(plain_files()).split(b"\n")
    for _ in range(draw(st.integers(1, 3))):
        row = draw(st.integers(0, len(lines) - 1))
        cells = lines[row].split(b",")
        col = draw(st.integers(0, len(cells) - 1))
        cells[col] = draw(st.one_of(st.sampled_from(_ODD_CELLS), st.text("0123456789.-", max_size=6))).encode()
        lines[row] = b",".join(cells)
    action = draw(st.sampled_from(["none", "duplicate", "short", "long", "cr", "nul"]))
    if action == "duplicate" and len(lines) > 2:
        lines.append(lines[1])
    elif action == "short":
        lines.append(b"2021-01-04,1,2")
    elif action == "long" and len(lines) > 2:
        lines.append(lines[-2] + b",9")
    elif action == "cr":
        lines[-1] += b"\r1"
    elif action == "nul":
        lines[-1] += b"\x00"
    return b"\n".join(lines)


@PROPS
@given(quirky_files())
def test_quirky_files_both_parsers_agree_or_both_refuse(tmp_path, raw: bytes) -> None:
    path = tmp_path / "ZZA.csv"
    path.write_bytes(raw)
    assert_agree(path)


@PROPS
@given(st.text("0123456789.-", min_size=1, max_size=30), st.sampled_from(["open", "high", "low", "close",
                                                                          "adj_close", "volume"]))
def test_any_number_text_parses_to_the_same_double(tmp_path, cell: str, column: str) -> None:
    """Within the fast path's alphabet, pyarrow's float parser and Python's float() accept the same strings
    and give the same double (a file with that cell in one column is taken by both or refused by both)."""
    values = {"open": "100", "high": "9e9", "low": "0.000001", "close": "100", "adj_close": "100", "volume": "5"}
    values[column] = cell
    keys = ["open", "high", "low", "close", "adj_close", "volume"]
    path = tmp_path / "ZZA.csv"
    path.write_text("Date,Open,High,Low,Close,Adj Close,Volume\n2022-01-03," + ",".join(values[k] for k in keys)
                    + "\n")
    assert_agree(path)


def test_row_parser_quirks_are_handled_by_the_fallback(tmp_path) -> None:
    """null rows, spaces and a time suffix are not plain: the row parser reads them, the result is the same."""
    text = ("Date,Open,High,Low,Close,Adj Close,Volume\n2022-03-14,100,105,95,96,95.5,1000\n"
            "2022-03-15,null,null,null,null,null,null\n2022-03-16T00:00:00, 96 ,99,90,92,91.5,2000\n")
    path = tmp_path / "JD.csv"
    path.write_text(text)
    assert parse_plain(text.encode()) is None
    assert list(read_yahoo_csv(path).frame["close"]) == [96.0, 92.0]


def test_bad_values_in_a_plain_file_are_worded_by_the_row_parser(tmp_path) -> None:
    path = tmp_path / "JD.csv"
    path.write_text("Date,Open,High,Low,Close,Adj Close,Volume\n2022-03-14,100,105,95,96,95.5,1000\n"
                    "2022-03-15,96,95,90,92,91.5,2000\n")  # high below open: plain, but invalid
    assert parse_plain(path.read_bytes()) is not None
    with pytest.raises(ConfigError, match=r"JD.csv line 3: .*2022-03-15: high < max\(open, close\)"):
        read_yahoo_csv(path)


def test_bars_path_equals_the_frame_path(tmp_path) -> None:
    """``read_yahoo_bars`` (what `data import` stores) holds exactly the arrays of ``read_yahoo_csv``'s frame,
    on the fast path and on the row parser's (a ``null`` row sends the file there)."""
    from engine.prices.csv_import import read_yahoo_bars

    paths = _synthetic(tmp_path)
    odd = tmp_path / "ZN.csv"
    odd.write_text("Date,Open,High,Low,Close,Adj Close,Volume\n2022-03-14,100,105,95,96,95.5,1000\n"
                   "2022-03-15,null,null,null,null,null,null\n2022-03-16,96,99,90,92,91.5,0\n")
    for path in [*paths, odd]:
        bars, frame = read_yahoo_bars(path), read_yahoo_csv(path).frame
        assert bars.symbol == path.stem and bars.adjustment == read_yahoo_csv(path).adjustment
        assert bars.dates.dtype == frame.index.values.dtype and (bars.dates == frame.index.values).all()
        for col in frame.columns:
            assert bars.cols[col].dtype == frame[col].dtype
            assert bars.cols[col].tobytes() == frame[col].to_numpy().tobytes(), col
