"""One price cache file: its parquet layout, its metadata, and the checks every read makes.

A file is trusted only after the checks of ``decode``: the Arrow schema is exactly the contract's (a
``close`` stored as text is refused), the ``evbt`` metadata is a JSON object with every required key and
sane values, every price rule of ``engine.prices.validate`` holds (midnight session dates, ascending and
unique, no NaN, ...), the ``stale`` flags match the prices, the content hash of the bars just read equals
the stored one, and the symbol, row count and first/last dates agree with the bars. A key no evbt version
writes is refused too (a flipped bit in ``"meta_hash"`` must not turn the hash check off). Files written by this
version also carry ``meta_hash`` (sha256 of the other metadata fields), so a flipped byte in, say,
``fetched_at`` is caught too. Hashing the arrays already in memory costs about 0.1 ms per 1,000 bars.

The checks run on the numpy arrays of the Arrow columns (no pandas look-ups); the frame is built last, around
the very arrays that were checked and hashed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine.errors import DataError
from engine.prices.validate import COLUMNS, INDEX_UNIT, Columns, build_frame, check_columns, check_dates

if TYPE_CHECKING:
    import pandas as pd  # imported where a frame is built (decode): encoding a file needs no pandas

META_KEY = b"evbt"
SUFFIX = ".parquet"
SOURCES = ("yfinance", "csv", "sample")
REQUIRED_META = ("symbol", "source", "fetched_at", "adjustment", "currency", "exchange", "first_date",
                 "last_date", "covered_from", "covered_to", "rows", "content_hash")
KNOWN_META = frozenset((*REQUIRED_META, "synthetic", "meta_hash"))  # every key any evbt version has written
_FLOAT_COLUMNS = COLUMNS[:-1]

SCHEMA = pa.schema(
    [("date", pa.timestamp(INDEX_UNIT))]
    + [(c, pa.float64()) for c in ("open", "high", "low", "close", "adj_close", "volume")]
    + [("stale", pa.bool_())]
)


def cache_path(root: Path, sym: str, asked: str | None = None) -> Path:
    """``<root>/<quoted normalised symbol>.parquet`` (``^HSI`` -> ``%5EHSI.parquet``); DataError naming ``asked``
    (the symbol as given) for a name that would leave the folder or hide as a dot file."""
    path = root / (quote(sym, safe="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") + SUFFIX)
    if path.parent != root or path.name.startswith("."):
        raise DataError(f"refusing unsafe cache path for symbol {asked if asked is not None else repr(sym)}")
    return path


def lock_path(root: Path, path: Path) -> Path:
    """The lock file of cache file ``path`` (``<root>/.locks/<file name>.lock``), its folder created."""
    locks = root / ".locks"
    try:
        locks.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create cache folder {locks}: {exc.strerror or exc}") from exc
    return locks / (path.name + ".lock")


class CacheFileError(DataError):
    """A cache file that must not be served (damaged, altered, or not written by evbt)."""

    def __init__(self, message: str, problem: str) -> None:
        super().__init__(message)
        self.problem = problem


def content_hash(frame: pd.DataFrame) -> str:
    """sha256 over the session dates (as days) and every column's values: independent of datetime unit."""
    return hash_columns(frame.index.values, {c: frame[c].to_numpy() for c in COLUMNS})


def hash_columns(dates: np.ndarray, cols: Columns) -> str:
    """``content_hash`` of the dates (``datetime64``, any unit) and the column arrays of a contract frame."""
    h = hashlib.sha256()
    days = dates.astype("datetime64[D]").astype("int64")
    h.update(np.ascontiguousarray(days).tobytes())
    for col in COLUMNS:
        h.update(col.encode())
        h.update(np.ascontiguousarray(cols[col]).tobytes())
    return h.hexdigest()


def meta_hash(meta: dict[str, Any]) -> str:
    """sha256 of the metadata without its own ``meta_hash`` field (canonical JSON)."""
    body = {k: v for k, v in meta.items() if k != "meta_hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def table_from_frame(frame: pd.DataFrame, meta: dict) -> pa.Table:
    return table_from_columns(frame.index.values, {c: frame[c].to_numpy() for c in COLUMNS}, meta)


def _arrow(values: np.ndarray, kind: pa.DataType, length: int | None = None) -> pa.Array:
    """An Arrow array without nulls around a numpy buffer (int64 stamps, float64 values, or bits packed
    little-endian for a bool array of ``length``). ``pa.array`` of a numpy array would import pandas, which a
    `data import` worker does not load."""
    data = np.ascontiguousarray(values)
    return pa.Array.from_buffers(kind, len(data) if length is None else length, [None, pa.py_buffer(data)])


def table_from_columns(dates: np.ndarray, cols: Columns, meta: dict) -> pa.Table:
    """The parquet table of a contract frame's dates and column arrays, with the sealed metadata."""
    stamps = dates.astype(f"datetime64[{INDEX_UNIT}]").view("int64")
    arrays = [_arrow(stamps, SCHEMA.field("date").type)]
    arrays += [_arrow(np.asarray(cols[c], dtype="float64"), pa.float64()) for c in _FLOAT_COLUMNS]
    arrays.append(_arrow(np.packbits(np.asarray(cols["stale"], dtype=bool), bitorder="little"), pa.bool_(),
                         len(stamps)))
    sealed = {**meta, "meta_hash": meta_hash(meta)}
    schema = SCHEMA.with_metadata({META_KEY: json.dumps(sealed, sort_keys=True).encode()})
    return pa.Table.from_arrays(arrays, schema=schema)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    # measured on 2,244-bar files (2026-12-01): uncompressed pages encode in ~0.34 ms and read in ~0.19 ms against
    # LZ4_RAW's ~0.75 ms and ~0.29 ms, for files 36% larger (129 KB against 95 KB). CPU is what `data import`
    # and a sweep's reads wait for (disk is cheap: 65 MB for 500 symbols x 9 years), so no compression. No dictionary
    # pages (random prices never repeat enough to gain) and no column statistics (nothing reads them). Files
    # written compressed by earlier versions read as before (the content hash is over the values).
    pq.write_table(table, sink, compression="none", use_dictionary=False, write_statistics=False)
    return sink.getvalue().to_pybytes()


def _columns_from_table(table: pa.Table) -> tuple[np.ndarray, np.ndarray, Columns]:
    """(dates, rows x FLOAT_COLUMNS block, column arrays: views of the block and ``stale``) straight from the
    Arrow buffers: no pandas look-ups before the checks."""
    dates = table.column("date").to_numpy()
    block = np.empty((table.num_rows, len(_FLOAT_COLUMNS)), dtype="float64", order="F")
    for j, c in enumerate(_FLOAT_COLUMNS):
        block[:, j] = table.column(c).to_numpy()
    cols = {c: block[:, j] for j, c in enumerate(_FLOAT_COLUMNS)}
    cols["stale"] = table.column("stale").to_numpy(zero_copy_only=False)
    return dates, block, cols


def _damaged(path: Path, problem: str) -> CacheFileError:
    return CacheFileError(f"{path}: damaged or altered cache file ({problem}); it was not used. "
                          "Re-import or re-fetch the symbol (`evbt data verify` lists every such file)", problem)


def parse_meta(raw: bytes | None, path: Path) -> dict[str, Any]:
    """The metadata dict of a file, checked for shape (keys, types, dates, its own hash)."""
    if raw is None:
        raise _damaged(path, "no evbt metadata")
    try:
        meta = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _damaged(path, "metadata is not JSON") from None
    if not isinstance(meta, dict):
        raise _damaged(path, "metadata is not a JSON object")
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise _damaged(path, f"metadata lacks {', '.join(missing)}")
    unknown = sorted(k for k in meta if k not in KNOWN_META)  # e.g. a flipped bit renamed "meta_hash"
    if unknown:
        raise _damaged(path, f"metadata has unknown key(s) {', '.join(map(repr, unknown[:3]))}")
    if meta["source"] not in SOURCES:
        raise _damaged(path, f"unknown source {meta['source']!r} in metadata")
    if not isinstance(meta["rows"], int) or isinstance(meta["rows"], bool) or meta["rows"] < 1:
        raise _damaged(path, "metadata rows is not a positive integer")
    for key in ("first_date", "last_date", "covered_from", "covered_to"):
        try:
            dt.date.fromisoformat(str(meta[key]))
        except ValueError:
            raise _damaged(path, f"metadata {key} is not a date") from None
    if "meta_hash" in meta and meta.pop("meta_hash") != meta_hash(meta):
        raise _damaged(path, "metadata hash mismatch")
    return meta


def _check_schema(table: pa.Table, path: Path) -> None:
    if table.schema.equals(SCHEMA, check_metadata=False) and not any(c.null_count for c in table.columns):
        return  # the common case in two calls; anything else is worded below
    got = [(f.name, f.type) for f in table.schema]
    want = [(f.name, f.type) for f in SCHEMA]
    if got != want:
        bad = [f"{n}: {t}" for n, t in got if (n, t) not in want] or [n for n, _ in want if n not in dict(got)]
        raise _damaged(path, f"columns differ from the price schema ({', '.join(map(str, bad[:3]))})")
    if table.num_rows and any(table.column(c).null_count for c in table.column_names):
        raise _damaged(path, "null values")


Checked = tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray]  # metadata, dates, float block, stale


def decode(table: pa.Table, path: Path, symbol: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """(metadata, frame) of a table read from ``path``, or CacheFileError if anything does not check out."""
    meta, dates, block, stale = decode_columns(table, path, symbol)
    return meta, checked_frame(dates, block, stale)


def checked_frame(dates: np.ndarray, block: np.ndarray, stale: np.ndarray) -> pd.DataFrame:
    """The frame of a file's checked arrays (``decode_columns``), built around them (no copy)."""
    import pandas as pd

    return build_frame(pd.DatetimeIndex(dates, name="date", copy=False), block, stale)  # the index never changes


def decode_columns(table: pa.Table, path: Path, symbol: str) -> Checked:
    """(metadata, dates, rows x float columns block, stale) of a table read from ``path``, every check of the
    module doc passed (CacheFileError otherwise); the arrays are the very ones checked and hashed."""
    meta = parse_meta((table.schema.metadata or {}).get(META_KEY), path)
    _check_schema(table, path)
    dates, block, cols = _columns_from_table(table)
    try:
        check_dates(dates, symbol)
        check_columns(dates, cols, symbol)
    except DataError as exc:
        raise _damaged(path, str(exc).removeprefix(f"{symbol}: ")) from None
    if hash_columns(dates, cols) != meta["content_hash"]:
        raise _damaged(path, "content hash mismatch: the bars changed after they were written")
    first, last = dates[[0, -1]].astype("datetime64[D]").astype(str).tolist() if len(dates) else ("", "")
    if (meta["symbol"], meta["rows"], meta["first_date"], meta["last_date"]) != (symbol, len(dates), first, last):
        raise _damaged(path, "metadata (symbol, rows or dates) does not match the bars")
    return meta, dates, block, cols["stale"]


Identity = tuple[int, int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns of one version


def identity(st: os.stat_result) -> Identity:
    """What tells file versions apart: the cache replaces a file by renaming a new one over it (a new inode),
    and writing in place would change size or mtime/ctime."""
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def read_bytes(path: Path) -> tuple[bytes, Identity]:
    """The whole file and the identity of the version read (one open, fstat and read: cheaper than a parquet
    reader opening the path itself)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(), identity(os.fstat(handle.fileno()))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _damaged(path, f"unreadable: {exc.strerror or exc}") from exc


def decode_bytes(data: bytes, path: Path, symbol: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """``decode`` of a file's bytes; every failure (a parquet the reader refuses included) is CacheFileError."""
    meta, dates, block, stale = decode_bytes_columns(data, path, symbol)
    return meta, checked_frame(dates, block, stale)


def decode_bytes_columns(data: bytes, path: Path, symbol: str) -> Checked:
    """``decode_columns`` of a file's bytes (no frame built); every failure is CacheFileError."""
    try:
        # in memory already: no pre-buffering; one small file: no thread pool
        table = pq.ParquetFile(pa.BufferReader(data), pre_buffer=False).read(use_threads=False)
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise _damaged(path, f"unreadable: {exc}") from exc
    try:
        return decode_columns(table, path, symbol)
    except CacheFileError:
        raise
    except Exception as exc:  # any other decoding trouble (e.g. a flipped bit making a date out of range)
        raise _damaged(path, f"{type(exc).__name__}: {exc}") from exc


def read_file(path: Path, symbol: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """Read and check one cache file. FileNotFoundError passes through (the caller decides)."""
    return read_file_version(path, symbol)[:2]


def read_file_version(path: Path, symbol: str) -> tuple[dict[str, Any], pd.DataFrame, Identity]:
    """``read_file`` plus the identity of the version read."""
    data, ident = read_bytes(path)
    return (*decode_bytes(data, path, symbol), ident)


def read_meta_only(path: Path) -> dict[str, Any]:
    """Metadata from the file footer alone (no bars read, so no content check): for listings."""
    try:
        schema = pq.read_schema(path)
    except FileNotFoundError:
        raise
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise _damaged(path, f"unreadable: {exc}") from exc
    return parse_meta((schema.metadata or {}).get(META_KEY), path)
