"""Yahoo CSV import: good files, and every error names file, line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.prices.csv_import import read_yahoo_csv, symbol_from_path

HEADER = "Date,Open,High,Low,Close,Adj Close,Volume\n"
ROWS = [
    "2022-03-14,100,105,95,96,95.5,1000\n",
    "2022-03-15,96,99,90,92,91.5,2000\n",
    "2022-03-16,92,120,91,118,117.4,5000\n",
]


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_good_file(tmp_path: Path) -> None:
    got = read_yahoo_csv(write(tmp_path, "BABA.csv", HEADER + "".join(ROWS)))
    assert got.symbol == "BABA"
    assert list(got.frame.columns) == ["open", "high", "low", "close", "adj_close", "volume", "stale"]
    assert got.frame.index.name == "date"
    assert got.frame.index.tz is None
    assert got.frame["close"].tolist() == [96.0, 92.0, 118.0]
    assert got.frame["adj_close"].iloc[2] == pytest.approx(117.4)
    assert not got.frame["stale"].any()


def test_stale_bar_flagged_and_bom_accepted(tmp_path: Path) -> None:
    text = HEADER + ROWS[0] + "2022-03-15,96,96,96,96,96,0\n"
    got = read_yahoo_csv(write(tmp_path, "0700.HK.csv", b"\xef\xbb\xbf" + text.encode()))
    assert got.frame["stale"].tolist() == [False, True]


@pytest.mark.parametrize(
    ("name", "symbol"),
    [("HSI.csv", "^HSI"), ("HSTECH.csv", "^HSTECH"), ("0700.HK.csv", "0700.HK"), ("700.csv", "0700.HK")],
)
def test_symbol_from_file_name(name: str, symbol: str) -> None:
    assert symbol_from_path(Path("/x") / name) == symbol


def test_symbol_override(tmp_path: Path) -> None:
    got = read_yahoo_csv(write(tmp_path, "tencent.csv", HEADER + ROWS[0]), symbol="700")
    assert got.symbol == "0700.HK"


def test_bad_number_names_line_and_column(tmp_path: Path) -> None:
    bad = [*ROWS[:2], "2022-03-16,92,120,91,abc,117.4,5000\n"]
    with pytest.raises(ConfigError, match=r"BABA.csv line 4, column Close: 'abc' is not a number"):
        read_yahoo_csv(write(tmp_path, "BABA.csv", HEADER + "".join(bad)))


def test_bad_date(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"line 2, column Date: '14/03/2022'"):
        read_yahoo_csv(write(tmp_path, "JD.csv", HEADER + "14/03/2022,1,1,1,1,1,1\n"))


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="empty file"):
        read_yahoo_csv(write(tmp_path, "JD.csv", ""))


def test_header_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no price rows"):
        read_yahoo_csv(write(tmp_path, "JD.csv", HEADER))


def test_missing_columns(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"JD.csv line 1: missing column\(s\) Volume"):
        read_yahoo_csv(write(tmp_path, "JD.csv", "Date,Open,High,Low,Close\n2022-01-03,1,1,1,1\n"))


def test_not_a_price_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing column"):
        read_yahoo_csv(write(tmp_path, "JD.csv", "id,name\n1,foo\n"))


def test_duplicate_dates(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"line 3, column Date: duplicate date 2022-03-14 \(first on line 2\)"):
        read_yahoo_csv(write(tmp_path, "JD.csv", HEADER + ROWS[0] + ROWS[0]))


def test_bad_encoding(tmp_path: Path) -> None:
    data = (HEADER + ROWS[0]).encode() + b"2022-03-15,96,99,90,92,91.5,2000 \xff\xfe\n"
    with pytest.raises(ConfigError, match=r"JD.csv line 3: not UTF-8"):
        read_yahoo_csv(write(tmp_path, "JD.csv", data))


def test_short_row(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"line 3: expected 7 fields, found 3"):
        read_yahoo_csv(write(tmp_path, "JD.csv", HEADER + ROWS[0] + "2022-03-15,1,2\n"))


def test_rule_violation_names_line_and_rule(tmp_path: Path) -> None:
    bad = HEADER + ROWS[0] + "2022-03-15,96,95,90,92,91.5,2000\n"  # high below open
    with pytest.raises(ConfigError, match=r"JD.csv line 3: .*2022-03-15: high < max\(open, close\)"):
        read_yahoo_csv(write(tmp_path, "JD.csv", bad))


@pytest.mark.parametrize("cell", ["-5", "0", "nan", "inf"])
def test_non_positive_or_non_finite_price(tmp_path: Path, cell: str) -> None:
    with pytest.raises(ConfigError, match="line 2"):
        read_yahoo_csv(write(tmp_path, "JD.csv", HEADER + f"2022-03-14,{cell},105,95,96,95.5,1000\n"))


def test_negative_volume(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="volume must be >= 0"):
        read_yahoo_csv(write(tmp_path, "JD.csv", HEADER + "2022-03-14,100,105,95,96,95.5,-1\n"))


def test_null_rows_skipped_and_unsorted_rows_sorted(tmp_path: Path) -> None:
    text = HEADER + ROWS[1] + "2022-03-10,null,null,null,null,null,null\n" + ROWS[0]
    got = read_yahoo_csv(write(tmp_path, "JD.csv", text))
    assert [d.day for d in got.frame.index] == [14, 15]


def test_partial_null_is_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="column Open: 'null'"):
        read_yahoo_csv(write(tmp_path, "JD.csv", HEADER + "2022-03-14,null,105,95,96,95.5,1000\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        read_yahoo_csv(tmp_path / "nope.csv")


def test_rounding_noise_tolerated(tmp_path: Path) -> None:
    # Yahoo prints 6 decimals; high can miss close by ~1e-6 relative.
    got = read_yahoo_csv(write(tmp_path, "JD.csv", HEADER + "2022-03-14,230.276136,230.276136,229.5,230.276138,1,10\n"))
    assert got.frame["high"].iloc[0] == 230.276136
