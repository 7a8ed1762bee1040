"""Vectorised parse of a plainly well-formed Yahoo CSV (pyarrow.csv), equal bit for bit to csv_import's rows.

``parse_plain(raw)`` answers only when it can be sure the careful row parser of ``csv_import`` would accept the
file and produce the same numbers; otherwise it returns None and the caller runs the row parser, which also
words every error (file, line, column). It returns None when:

- the header line holds a quote, a carriage return not followed by a newline, text that is not UTF-8, or
  lacks a required column (the header is split exactly as ``csv.reader`` splits a line without quotes);
- the body holds any byte other than ``0-9 . , -`` and line ends (so no ``null`` rows, quotes, spaces,
  exponents, ``nan``/``inf``, time suffixes or non-ASCII digits: all of those go to the row parser);
- pyarrow refuses a row (wrong field count, empty cell, a malformed number such as ``1-2``);
- a number is not finite (``1`` followed by 400 zeros), a date is not ``YYYY-MM-DD`` or not a real day,
  a date lies outside ``FIRST_DAY .. LAST_DAY``, or two rows share a date.

Within that alphabet pyarrow's float parser (fast_float, correctly rounded) and Python's ``float`` give the
same double for every string both accept; tests/test_csv_parity.py checks that over generated files.
"""

from __future__ import annotations

import csv

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from engine.prices.validate import FIRST_DAY, LAST_DAY

HEADERS = {"date": "Date", "open": "Open", "high": "High", "low": "Low", "close": "Close",
           "adj_close": "Adj Close", "volume": "Volume"}
REQUIRED = ("date", "open", "high", "low", "close", "volume")
NUMBERS = ("open", "high", "low", "close", "adj_close", "volume")
_BOM = b"\xef\xbb\xbf"
_BODY_BYTES = b"0123456789.,-\r\n"
_ZERO_DATE = np.frombuffer(b"0000-00-00", dtype=np.uint8)
_DATE_LIMIT = np.array([9, 9, 9, 9, 0, 9, 9, 0, 9, 9], dtype=np.uint8)
_FIRST = np.datetime64(FIRST_DAY.isoformat(), "D")
_LAST = np.datetime64(LAST_DAY.isoformat(), "D")
_BLOCK = 1 << 22  # 4 MiB blocks: a file of 30 years of daily bars is one block
_PARSE = pacsv.ParseOptions(delimiter=",", quote_char=False, double_quote=False, escape_char=False,
                            newlines_in_values=False, ignore_empty_lines=True)


def header_columns(header: list[str]) -> dict[str, int]:
    """Field index of each known column: names trimmed, case-insensitive, the last of duplicates wins."""
    names = {h.strip().lower(): i for i, h in enumerate(header)}
    return {key: names[label.lower()] for key, label in HEADERS.items() if label.lower() in names}


def _split_header(raw: bytes) -> tuple[list[str], bytes] | None:
    end = raw.find(b"\n")
    if end < 0:
        return None
    line = raw[:end].removesuffix(b"\r")
    if b'"' in line or b"\r" in line or b"\x00" in line:
        return None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return next(csv.reader([text])), raw[end + 1:]


def _plain_body(body: bytes) -> bool:
    """Only the plain alphabet, every carriage return followed by a newline (a body of line ends only reads
    as no rows: None below)."""
    if body.translate(None, _BODY_BYTES):
        return False
    if b"\r" not in body:
        return True
    codes = np.frombuffer(body, dtype=np.uint8)
    returns = np.flatnonzero(codes == 13)  # one pass instead of counting "\r" and "\r\n" separately
    return bool(returns[-1] + 1 < len(codes) and (codes[returns + 1] == 10).all())


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    """A float64 column without nulls as numpy, a view of its data buffer: pyarrow's ``to_numpy`` would
    import pandas (in a worker that must not load it)."""
    arr = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return np.frombuffer(arr.buffers()[1], dtype=np.float64)[arr.offset: arr.offset + len(arr)]


def _days(column: pa.ChunkedArray) -> np.ndarray | None:
    """``datetime64[D]`` of strictly ``YYYY-MM-DD`` strings (real days), or None."""
    arr = column.combine_chunks()
    if arr.null_count or not pa.types.is_string(arr.type):
        return None
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset: arr.offset + len(arr) + 1]
    if not (np.diff(offsets) == 10).all():
        return None
    chars = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0]: offsets[-1]].reshape(-1, 10)
    if not ((chars - _ZERO_DATE) <= _DATE_LIMIT).all():  # digits (uint8 wraps below '0') and the two dashes
        return None
    try:
        dated = arr.cast(pa.date32())  # Arrow's strict ISO parser
    except pa.ArrowInvalid:  # 2023-02-30, month 13, ...
        return None
    # days since 1970 straight from the int32 buffer (no nulls: checked above); Array.to_numpy of a date32
    # array would go through pandas, which a `data import` worker must not load
    days = np.frombuffer(dated.buffers()[1], dtype=np.int32)[dated.offset: dated.offset + len(dated)]
    days = days.astype("datetime64[D]")
    if (days < _FIRST).any() or (days > _LAST).any():
        return None
    return days


def parse_plain(raw: bytes) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """(``datetime64[D]`` dates sorted ascending, float64 values (rows x open..volume, adj_close = close when
    the column is absent), whether Adj Close was present), or None: see the module doc."""
    split = _split_header(raw.removeprefix(_BOM))
    if split is None:
        return None
    header, body = split
    cols = header_columns(header)
    if any(key not in cols for key in REQUIRED) or not _plain_body(body):
        return None
    names = [f"f{i}" for i in range(len(header))]
    wanted = {key: names[i] for key, i in cols.items()}
    types = {name: (pa.string() if key == "date" else pa.float64()) for key, name in wanted.items()}
    try:  # the streaming reader: ~20% less CPU than read_csv(use_threads=False), which starts a thread per call
        table = pacsv.open_csv(
            pa.BufferReader(body),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False, block_size=_BLOCK),
            parse_options=_PARSE,
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(wanted.values()),
                                                 null_values=[], strings_can_be_null=False,
                                                 quoted_strings_can_be_null=False),
        ).read_all()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows == 0:
        return None
    days = _days(table.column(wanted["date"]))
    if days is None:
        return None
    has_adj = "adj_close" in wanted
    source = [wanted[k] if k != "adj_close" or has_adj else wanted["close"] for k in NUMBERS]
    values = np.empty((table.num_rows, len(NUMBERS)), dtype="float64", order="F")
    for j, name in enumerate(source):
        column = table.column(name)
        if column.null_count:
            return None
        values[:, j] = _floats(column)
    if not np.isfinite(values).all():
        return None
    steps = np.diff(days.view("int64"))
    if (steps < 0).any():  # rows out of order are sorted (as the row parser does)
        order = np.argsort(days, kind="stable")
        days, values = days[order], np.asfortranarray(values[order])
        steps = np.diff(days.view("int64"))
    if (steps == 0).any():  # a duplicate date: the row parser names both lines
        return None
    return days, values, has_adj
