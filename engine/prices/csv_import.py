"""Yahoo Finance CSV (``Date,Open,High,Low,Close,Adj Close,Volume``) -> normalised price frame.

Every problem is a ``ConfigError`` naming the file, line and column, e.g.
``BABA.csv line 17, column Close: 'abc' is not a number``. Nothing is written here; the caller stores the
frame only after the whole file parsed and validated.

Decisions:
- Header names are matched case-insensitively after trimming; extra columns are ignored. ``Adj Close`` may
  be absent (then ``adj_close`` = ``close`` and the adjustment note says so); the other six are required.
- Dates must be ISO ``YYYY-MM-DD`` (a time/zone suffix after ``T`` or a space is ignored: daily bars only;
  ``2022-01-015`` is an error, not 2022-01-01) between ``FIRST_DAY`` and ``LAST_DAY`` of validate.py.
- Rows whose price fields are all ``null`` (Yahoo's placeholder for a day without data) are skipped; a row
  with only some fields ``null``/empty is an error.
- Duplicate dates are an error (which row is right is unknowable). Rows out of order are sorted: the order
  of lines carries no information.
- Encoding: UTF-8 (a BOM is accepted); anything else is reported with the line of the first bad byte.

Speed: a plainly well-formed file (digits, dots, commas, dashes and line ends below the header) is parsed by
``csv_fast.parse_plain`` (pyarrow.csv, about 1 ms a file); anything else, and any file whose bars fail
validation, goes through the row parser here, which is the reference and words every error. Both give the same
frame (tests/test_csv_parity.py).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import ConfigError, DataError
from engine.market.symbols import normalize_symbol
from engine.prices.csv_fast import header_columns, parse_plain
from engine.prices.validate import (
    COLUMNS,
    FIRST_DAY,
    INDEX_UNIT,
    LAST_DAY,
    Columns,
    checked_bars,
    prices_frame,
    validate_prices,
)

if TYPE_CHECKING:
    import pandas as pd  # the row parser and read_yahoo_csv import it: the plain path of a worker needs none

REQUIRED = {
    "date": "Date", "open": "Open", "high": "High", "low": "Low", "close": "Close", "volume": "Volume",
}
OPTIONAL = {"adj_close": "Adj Close"}
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:$|[T ])")
_FIELDS = ["open", "high", "low", "close", "adj_close", "volume"]


@dataclass(frozen=True)
class ImportedPrices:
    """A parsed and validated CSV, ready for ``PriceStore.write``."""

    symbol: str
    frame: pd.DataFrame
    adjustment: str
    path: Path


def symbol_from_path(path: Path) -> str:
    """``HSI.csv`` -> ``^HSI``, ``0700.HK.csv`` -> ``0700.HK``; the name is never used as a path again."""
    try:
        return normalize_symbol(Path(path).name.removesuffix(".csv").removesuffix(".CSV"))
    except ConfigError as exc:
        raise ConfigError(f"{Path(path).name}: the file name is not a symbol ({exc}); use --symbol") from None


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path.name} line {line}: not UTF-8 text (bad byte at offset {exc.start})"
        ) from exc


def _header_map(path: Path, header: list[str]) -> dict[str, int]:
    cols = header_columns(header)
    missing = [label for key, label in REQUIRED.items() if key not in cols]
    if missing:
        raise ConfigError(
            f"{path.name} line 1: missing column(s) {', '.join(missing)}; expected a Yahoo CSV header "
            "Date,Open,High,Low,Close,Adj Close,Volume"
        )
    return cols


def _parse_date(path: Path, line: int, text: str) -> dt.date:
    stripped = text.strip()
    try:
        if not _DATE_RE.match(stripped):
            raise ValueError(stripped)
        day = dt.date.fromisoformat(stripped[:10])
    except ValueError:
        raise ConfigError(
            f"{path.name} line {line}, column Date: {text!r} is not a YYYY-MM-DD date"
        ) from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ConfigError(f"{path.name} line {line}, column Date: {day.isoformat()} is outside the supported "
                          f"range {FIRST_DAY.isoformat()} .. {LAST_DAY.isoformat()}")
    return day


def _parse_number(path: Path, line: int, label: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{path.name} line {line}, column {label}: {text!r} is not a number") from None
    if math.isnan(value) or math.isinf(value):
        raise ConfigError(f"{path.name} line {line}, column {label}: {text!r} is not a finite number")
    return value


def _parse_rows(path: Path, text: str) -> tuple[list[dt.date], np.ndarray, list[int], bool]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or not any(h.strip() for h in header):
        raise ConfigError(f"{path.name}: empty file (expected a Yahoo CSV header and price rows)")
    cols = _header_map(path, header)
    labels = {**REQUIRED, **OPTIONAL}
    has_adj = "adj_close" in cols
    width = max(cols.values()) + 1
    dates: list[dt.date] = []
    lines: list[int] = []
    values: list[list[float]] = []
    for row in reader:
        line = reader.line_num
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) < width:
            raise ConfigError(f"{path.name} line {line}: expected {width} fields, found {len(row)}")
        if len(row) > len(header) and any(cell.strip() for cell in row[len(header):]):
            # more values than the header names (an unquoted "1,234.5", a shifted row): were silently dropped
            raise ConfigError(f"{path.name} line {line}: {len(row)} fields but the header names {len(header)}; "
                              f"extra value {next(c for c in row[len(header):] if c.strip())!r} (a thousands "
                              f"separator or a shifted row?)")
        fields = [f for f in _FIELDS if f in cols]
        cells = {f: row[cols[f]].strip() for f in fields}
        if all(cells[f].lower() == "null" for f in fields if f != "volume"):
            continue
        day = _parse_date(path, line, row[cols["date"]])
        nums = [_parse_number(path, line, labels[f], cells[f]) for f in fields]
        if not has_adj:
            nums.insert(4, nums[3])
        dates.append(day)
        lines.append(line)
        values.append(nums)
    if not values:
        raise ConfigError(f"{path.name}: no price rows after the header")
    return dates, np.asarray(values, dtype="float64"), lines, has_adj


def _check_duplicates(path: Path, dates: list[dt.date], lines: list[int]) -> None:
    seen: dict[dt.date, int] = {}
    for day, line in zip(dates, lines, strict=True):
        if day in seen:
            raise ConfigError(
                f"{path.name} line {line}, column Date: duplicate date {day.isoformat()} "
                f"(first on line {seen[day]})"
            )
        seen[day] = line


def _adjustment_note(adj_close: np.ndarray, close: np.ndarray, has_adj: bool) -> str:
    if not has_adj:
        return "csv without Adj Close: adj_close = close"
    if np.array_equal(adj_close, close):
        return "adj_close equals close: OHLC may already be dividend-adjusted (or no distributions)"
    return "raw OHLC; adj_close dividend/split adjusted (as in the CSV)"


@dataclass(frozen=True)
class ImportedBars:
    """A parsed and validated CSV as the arrays a cache file stores (no frame): ``dates`` (``INDEX_UNIT``)
    and ``cols`` (every contract column, ``stale`` computed), all checked by ``validate.checked_bars``."""

    symbol: str
    dates: np.ndarray
    cols: Columns
    adjustment: str
    path: Path


def read_yahoo_bars(path: Path | str, symbol: str | None = None) -> ImportedBars:
    """Parse and validate one Yahoo CSV into checked arrays (``data import``: no pandas frame is built on the
    plain path); errors as ``read_yahoo_csv``."""
    path = Path(path)
    sym = normalize_symbol(symbol) if symbol else symbol_from_path(path)
    raw = _read_raw(path)
    plain = parse_plain(raw)
    if plain is not None:
        days, values, has_adj = plain
        dates = days.astype(f"datetime64[{INDEX_UNIT}]")
        try:
            _block, cols = checked_bars(dates, values, sym)
        except DataError:
            pass  # the row parser below says which line
        else:
            return ImportedBars(sym, dates, cols, _adjustment_note(values[:, 4], values[:, 3], has_adj), path)
    item = _read_rows(path, sym, raw)
    return ImportedBars(sym, item.frame.index.values, {c: item.frame[c].to_numpy() for c in COLUMNS},
                        item.adjustment, path)


def _read_raw(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read file: {exc.strerror or exc}") from exc


def read_yahoo_csv(path: Path | str, symbol: str | None = None, *, vectorised: bool = True) -> ImportedPrices:
    """Parse and validate one Yahoo CSV. ``symbol`` overrides the one derived from the file name;
    ``vectorised=False`` forces the row parser (the reference the tests compare the fast path with)."""
    path = Path(path)
    sym = normalize_symbol(symbol) if symbol else symbol_from_path(path)
    raw = _read_raw(path)
    plain = parse_plain(raw) if vectorised else None
    if plain is not None:
        import pandas as pd

        days, values, has_adj = plain
        index = pd.DatetimeIndex(days.astype(f"datetime64[{INDEX_UNIT}]"), name="date")
        try:
            frame = prices_frame(index, values, sym)
        except DataError:
            pass  # the row parser below says which line
        else:
            return ImportedPrices(sym, frame, _adjustment_note(values[:, 4], values[:, 3], has_adj), path)
    return _read_rows(path, sym, raw)


def _read_rows(path: Path, sym: str, raw: bytes) -> ImportedPrices:
    import pandas as pd

    try:
        dates, values, lines, has_adj = _parse_rows(path, _decode(path, raw))
    except csv.Error as exc:  # e.g. a stray carriage return inside a field
        raise ConfigError(f"{path.name}: not a readable CSV file ({exc})") from None
    _check_duplicates(path, dates, lines)
    index = pd.DatetimeIndex(pd.to_datetime(dates), name="date")
    frame = pd.DataFrame(values, index=index, columns=_FIELDS)
    order = np.argsort(index.asi8, kind="stable")
    frame = frame.iloc[order]
    line_of = dict(zip(index.asi8.tolist(), lines, strict=True))
    try:
        frame = validate_prices(frame, sym)
    except DataError as exc:
        raise ConfigError(f"{path.name} line {_line_for(exc, line_of)}: {exc}") from exc
    note = _adjustment_note(frame["adj_close"].to_numpy(), frame["close"].to_numpy(), has_adj)
    return ImportedPrices(sym, frame, note, path)


def _line_for(exc: DataError, line_of: dict[int, int]) -> str:
    """Map the date a validation error names back to its CSV line (best effort)."""
    import pandas as pd

    text = str(exc)
    for token in text.replace(":", " ").split():
        try:
            stamp = pd.Timestamp(dt.date.fromisoformat(token))
        except ValueError:
            continue
        line = line_of.get(pd.DatetimeIndex([stamp]).asi8[0])
        if line is not None:
            return str(line)
    return "?"
