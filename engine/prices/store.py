"""PriceStore: the parquet price cache (the only parquet writer for prices).

One file per symbol, ``<root>/<quoted symbol>.parquet`` (``^HSI`` -> ``%5EHSI.parquet``): the file name is
derived from the *normalised* symbol by percent-quoting everything outside ``A-Z 0-9 . -``, never from user
text directly. Metadata (source, fetched_at, adjustment, currency, exchange, first/last date, rows,
content hash, and the covered request range) lives in the parquet schema metadata under ``b"evbt"``.

Writes go through ``engine.atomic`` under a per-symbol cross-process ``filelock`` in ``<root>/.locks/``;
reads take no lock (a file is always replaced atomically).

Coverage rule (decided, pragmatic):
- ``yfinance`` files remember the range that was *requested* (``covered_from``/``covered_to``), so listing
  dates and holidays at the edges do not cause endless re-fetching. A request is covered when
  ``start >= min(first_date, covered_from)`` and ``min(end, today) <= max(last_date, covered_to)``, or no
  exchange session lies between the cached end and the requested end (weekends/holidays).
- When not covered and online: fetch only the missing part(s), re-fetching ``OVERLAP_DAYS`` before the cached
  end (a revised bar is noticed); newer bars replace older ones on overlap. Offline -> MissingDataError.
- ``csv`` and ``sample`` files are authoritative and never extended from the network (mixing a user's file or
  synthetic data with Yahoo bars would be silent corruption): they serve whatever overlaps the request and
  raise MissingDataError only if the symbol is absent or nothing overlaps.
- Network failure while the cache holds older data: serve the cache with an ``EvbtWarning``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock, Timeout

from engine.atomic import atomic_write_bytes
from engine.errors import DataError, EvbtWarning, MissingDataError
from engine.market.symbols import listing, normalize_symbol
from engine.prices.validate import COLUMNS, INDEX_UNIT, validate_prices

META_KEY = b"evbt"
SUFFIX = ".parquet"
OVERLAP_DAYS = 5
SOURCES = ("yfinance", "csv", "sample")
_FLOAT_COLUMNS = COLUMNS[:-1]
_FLOAT_INDEX = pd.Index(_FLOAT_COLUMNS)
Fetcher = Callable[[str, dt.date, dt.date], pd.DataFrame]

_SCHEMA = pa.schema(
    [("date", pa.timestamp(INDEX_UNIT))]
    + [(c, pa.float64()) for c in ("open", "high", "low", "close", "adj_close", "volume")]
    + [("stale", pa.bool_())]
)


def _to_date(value: object | None) -> dt.date | None:
    if value is None:
        return None
    return pd.Timestamp(value).date()


def content_hash(frame: pd.DataFrame) -> str:
    """sha256 over the session dates (as days) and every column's values: independent of datetime unit."""
    h = hashlib.sha256()
    days = frame.index.values.astype("datetime64[D]").astype("int64")
    h.update(np.ascontiguousarray(days).tobytes())
    for col in COLUMNS:
        h.update(col.encode())
        h.update(np.ascontiguousarray(frame[col].to_numpy()).tobytes())
    return h.hexdigest()


def _table_from_frame(frame: pd.DataFrame, meta: dict) -> pa.Table:
    arrays = [pa.array(frame.index.values.astype(f"datetime64[{INDEX_UNIT}]"), type=pa.timestamp(INDEX_UNIT))]
    arrays += [pa.array(frame[c].to_numpy(), type=_SCHEMA.field(c).type) for c in COLUMNS]
    schema = _SCHEMA.with_metadata({META_KEY: json.dumps(meta, sort_keys=True).encode()})
    return pa.Table.from_arrays(arrays, schema=schema)


def _frame_from_table(table: pa.Table) -> pd.DataFrame:
    """Columns straight from Arrow buffers (faster than ``to_pandas`` + ``set_index``)."""
    index = pd.DatetimeIndex(table.column("date").to_numpy(), name="date")
    block = np.column_stack([table.column(c).to_numpy() for c in _FLOAT_COLUMNS])
    frame = pd.DataFrame(block, index=index, columns=_FLOAT_INDEX, copy=False)
    frame["stale"] = table.column("stale").to_numpy(zero_copy_only=False)
    return frame


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="snappy")  # measured: ~30% faster to read than zstd
    return sink.getvalue().to_pybytes()


def _has_session_between(symbol: str, after: dt.date, upto: dt.date) -> bool:
    """True if the symbol's exchange trades on a day in (after, upto]."""
    if upto <= after:
        return False
    exchange = listing(symbol).exchange
    days = pd.bdate_range(after + dt.timedelta(days=1), upto)
    if exchange == "FX" or len(days) == 0:
        return len(days) > 0
    try:
        from engine.market.calendars import calendar_bounds, raw_sessions

        first, last = calendar_bounds(exchange)
        if days[0] < first or days[-1] > last:
            return True  # outside what the calendar knows: assume a session
        sessions, _early = raw_sessions(exchange, days[0], days[-1])
        return len(sessions) > 0
    except Exception:  # calendar trouble must not block data access: assume a session
        return True


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of re-validating one cache file."""

    symbol: str
    path: Path
    ok: bool
    problem: str | None = None


class PriceStore:
    """Per-symbol parquet price cache with incremental yfinance fetch and offline mode."""

    def __init__(
        self,
        root: Path | str,
        offline: bool = False,
        fetcher: Fetcher | None = None,
        lock_timeout: float = 120.0,
    ) -> None:
        self.root = Path(root)
        self.offline = offline
        self._fetcher = fetcher
        self.lock_timeout = lock_timeout

    # ---------------------------------------------------------------- paths and locks
    def path_for(self, symbol: str) -> Path:
        sym = normalize_symbol(symbol)
        path = self.root / (quote(sym, safe="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") + SUFFIX)
        if path.parent != self.root or path.name.startswith("."):
            raise DataError(f"refusing unsafe cache path for symbol {symbol!r}")
        return path

    def _lock(self, symbol: str) -> FileLock:
        locks = self.root / ".locks"
        try:
            locks.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"cannot create cache folder {locks}: {exc.strerror or exc}") from exc
        return FileLock(locks / (self.path_for(symbol).name + ".lock"), timeout=self.lock_timeout)

    def symbols(self) -> list[str]:
        """Symbols with a cache file, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(unquote(p.name[: -len(SUFFIX)]) for p in self.root.glob("*" + SUFFIX)
                      if not p.name.startswith("."))

    def _absent(self, symbol: str) -> MissingDataError:
        return MissingDataError(f"{normalize_symbol(symbol)}: not in the price cache {self.root}")

    def has(self, symbol: str) -> bool:
        return self.path_for(symbol).is_file()

    # ---------------------------------------------------------------- raw read/write
    def _read_table(self, symbol: str) -> pa.Table:
        path = self.path_for(symbol)
        try:
            return pq.ParquetFile(path).read()  # cheaper than pq.read_table's dataset machinery
        except FileNotFoundError:
            raise self._absent(symbol) from None
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"{path}: unreadable cache file ({exc}); run `evbt data verify`") from exc

    def read_meta(self, symbol: str) -> dict:
        """The metadata dict stored with a symbol's file (see module doc)."""
        path = self.path_for(symbol)
        try:
            schema = pq.read_schema(path)
        except FileNotFoundError:
            raise self._absent(symbol) from None
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"{path}: unreadable cache file ({exc}); run `evbt data verify`") from exc
        raw = (schema.metadata or {}).get(META_KEY)
        if raw is None:
            raise DataError(f"{path}: cache file has no evbt metadata; run `evbt data verify`")
        return json.loads(raw)

    def fingerprint(self, symbol: str) -> str:
        return str(self.read_meta(symbol)["content_hash"])

    def read_all(self, symbol: str) -> pd.DataFrame:
        """Every cached bar of a symbol, no network."""
        return _frame_from_table(self._read_table(symbol))

    def write(
        self,
        symbol: str,
        frame: pd.DataFrame,
        source: str,
        adjustment: str = "",
        covered: tuple[dt.date | None, dt.date | None] = (None, None),
    ) -> dict:
        """Validate and atomically replace a symbol's file (takes the symbol lock). Returns the metadata."""
        with self._locked(symbol):
            return self._write_unlocked(symbol, frame, source, adjustment, covered)

    @contextlib.contextmanager
    def _locked(self, symbol: str) -> Iterator[None]:
        """Hold the symbol's cross-process lock; a timeout becomes a DataError."""
        lock = self._lock(symbol)
        try:
            lock.acquire()
        except Timeout:
            raise DataError(f"{symbol}: cache is locked by another evbt process ({lock.lock_file})") from None
        try:
            yield
        finally:
            lock.release()

    def _write_unlocked(
        self,
        symbol: str,
        frame: pd.DataFrame,
        source: str,
        adjustment: str,
        covered: tuple[dt.date | None, dt.date | None],
    ) -> dict:
        if source not in SOURCES:
            raise ValueError(f"unknown price source {source!r}")
        sym = normalize_symbol(symbol)
        clean = validate_prices(frame, sym)
        info = listing(sym)
        first, last = clean.index[0].date(), clean.index[-1].date()
        meta = {
            "symbol": sym,
            "source": source,
            "synthetic": source == "sample",
            "fetched_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
            "adjustment": adjustment,
            "currency": info.currency,
            "exchange": info.exchange,
            "first_date": first.isoformat(),
            "last_date": last.isoformat(),
            "covered_from": min(first, covered[0] or first).isoformat(),
            "covered_to": max(last, covered[1] or last).isoformat(),
            "rows": len(clean),
            "content_hash": content_hash(clean),
        }
        atomic_write_bytes(self.path_for(sym), _parquet_bytes(_table_from_frame(clean, meta)))
        from engine.prices.snapshots import adopt  # a kept version equal to this one is re-linked: no copy

        adopt(self.root, self.path_for(sym), meta)
        return meta

    def remove(self, symbol: str) -> bool:
        """Delete a symbol's file; False if it was not cached."""
        path = self.path_for(symbol)
        with self._locked(symbol):
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise DataError(f"cannot remove {path}: {exc.strerror or exc}") from exc
        return True

    # ---------------------------------------------------------------- coverage and load
    def _covered(self, meta: dict, start: dt.date | None, end: dt.date | None) -> tuple[bool, bool]:
        """(start covered, end covered) for a yfinance file."""
        lo = min(dt.date.fromisoformat(meta["first_date"]), dt.date.fromisoformat(meta["covered_from"]))
        hi = max(dt.date.fromisoformat(meta["last_date"]), dt.date.fromisoformat(meta["covered_to"]))
        start_ok = start is None or start >= lo
        if end is None:
            return start_ok, True
        want = min(end, dt.date.today())
        end_ok = want <= hi or not _has_session_between(meta["symbol"], hi, want)
        return start_ok, end_ok

    def load(self, symbol: str, start: object | None = None, end: object | None = None) -> pd.DataFrame:
        """Bars with ``start <= date <= end`` (both inclusive, None = open), fetching what is missing."""
        sym = normalize_symbol(symbol)
        lo, hi = _to_date(start), _to_date(end)
        if lo and hi and lo > hi:
            raise MissingDataError(f"{sym}: empty date range {lo} .. {hi}")
        frame = self._ensure(sym, lo, hi)
        return _slice(frame, sym, lo, hi)

    def _read_cached(self, sym: str) -> tuple[dict, pd.DataFrame] | None:
        """(metadata, frame) from one file read, or None if the symbol is not cached."""
        try:
            table = self._read_table(sym)
        except MissingDataError:
            return None
        raw = (table.schema.metadata or {}).get(META_KEY)
        if raw is None:
            raise DataError(f"{self.path_for(sym)}: cache file has no evbt metadata; run `evbt data verify`")
        return json.loads(raw), _frame_from_table(table)

    def _ensure(self, sym: str, lo: dt.date | None, hi: dt.date | None) -> pd.DataFrame:
        cached = self._read_cached(sym)
        meta = cached[0] if cached else None
        if cached is not None and (cached[0]["source"] != "yfinance" or all(self._covered(cached[0], lo, hi))):
            return cached[1]
        if self.offline and meta is None:
            raise MissingDataError(
                f"{sym}: prices for {_fmt(lo)} .. {_fmt(hi)} are not in the cache "
                f"({sym} is not in the price cache {self.root}) and evbt is offline; "
                f"run `evbt data fetch {sym}` online or `evbt data import FILE`"
            )
        if self.offline:
            have = f" (cache has {meta['first_date']} .. {meta['last_date']})"
            raise MissingDataError(
                f"{sym}: prices for {_fmt(lo)} .. {_fmt(hi)} are not in the cache{have} and evbt is offline; "
                f"run `evbt data fetch {sym}` online or `evbt data import FILE`"
            )
        return self.update(sym, lo, hi)

    def update(
        self, symbol: str, start: dt.date | None = None, end: dt.date | None = None, *, refresh: bool = False
    ) -> pd.DataFrame:
        """Fetch the missing part of [start, end] from yfinance and merge it into the cache (locked).

        ``refresh`` re-fetches from ``OVERLAP_DAYS`` before the cached end even if the cache covers ``end``.
        A non-yfinance file is replaced by a full fetch (with a warning). On a network failure with cached
        data, the cached data is returned with an ``EvbtWarning``.
        """
        sym = normalize_symbol(symbol)
        if self.offline:
            raise MissingDataError(f"{sym}: cannot fetch {_fmt(start)} .. {_fmt(end)}: evbt is offline")
        with self._locked(sym):
            return self._update_unlocked(sym, start, end, refresh)

    def _update_unlocked(
        self, sym: str, start: dt.date | None, end: dt.date | None, refresh: bool
    ) -> pd.DataFrame:
        today = dt.date.today()
        want_end = min(end or today, today)
        old = self.read_all(sym) if self.has(sym) else None
        meta = self.read_meta(sym) if old is not None else None
        if meta is not None and meta["source"] != "yfinance":
            warnings.warn(f"{sym}: replacing {meta['source']} data with a yfinance download", EvbtWarning,
                          stacklevel=3)
            old, meta = None, None
        ranges = _missing_ranges(self, meta, start, want_end, refresh)
        if not ranges:
            return old if old is not None else self.read_all(sym)
        try:
            parts = [self._fetch(sym, a, b) for a, b in ranges]
            if old is not None and not all(len(p) for p in parts):  # every range overlaps cached bars
                raise DataError("yfinance returned no bars for dates it had served before")
        except DataError as exc:
            if old is None:
                raise
            warnings.warn(
                f"{sym}: could not update prices ({exc}); using cached data "
                f"{meta['first_date']} .. {meta['last_date']}", EvbtWarning, stacklevel=3)
            return old
        if old is None and not any(len(p) for p in parts):
            raise DataError(f"{sym}: yfinance returned no prices for {_fmt(start)} .. {want_end} "
                            "(wrong symbol, possibly delisted, or no trading in the range)")
        merged = _merge(old, parts)
        old_from = _to_date(meta["covered_from"]) if meta else None
        known = [d for d in (start, old_from) if d]
        cov_from = min(known) if known and start is not None else None
        cov_to = max(want_end, _to_date(meta["covered_to"])) if meta else want_end
        self._write_unlocked(sym, merged, "yfinance", _YF_ADJUSTMENT, (cov_from, cov_to))
        return self.read_all(sym)

    def _fetch(self, sym: str, start: dt.date | None, end: dt.date) -> pd.DataFrame:
        if self._fetcher is not None:
            return self._fetcher(sym, start, end)
        from engine.prices.yahoo import fetch_history  # lazy: yfinance import costs ~0.5 s

        return fetch_history(sym, start, end, allow_empty=True)

    # ---------------------------------------------------------------- listing and verify
    def entries(self) -> list[dict]:
        """Metadata of every cached symbol plus file size; unreadable files carry an ``error`` key."""
        out = []
        for sym in self.symbols():
            path = self.path_for(sym)
            try:
                meta = dict(self.read_meta(sym))
            except (DataError, MissingDataError) as exc:
                meta = {"symbol": sym, "error": str(exc)}
            meta["size"] = path.stat().st_size if path.exists() else 0
            out.append(meta)
        return out

    def verify(self, symbols: list[str] | None = None) -> list[VerifyResult]:
        """Re-read and re-validate files: metadata present, hash matches, every price rule holds."""
        return [self._verify_one(s) for s in (symbols if symbols is not None else self.symbols())]

    def _verify_one(self, symbol: str) -> VerifyResult:
        path = self.path_for(symbol)
        sym = normalize_symbol(symbol)
        try:
            meta = self.read_meta(sym)
            frame = self.read_all(sym)
            clean = validate_prices(frame, sym)
        except (DataError, MissingDataError) as exc:
            return VerifyResult(sym, path, False, str(exc))
        except Exception as exc:  # any decoding trouble means a damaged file
            return VerifyResult(sym, path, False, f"{type(exc).__name__}: {exc}")
        if not clean["stale"].equals(frame["stale"]):
            return VerifyResult(sym, path, False, "stale flags do not match the prices")
        if content_hash(clean) != meta.get("content_hash"):
            return VerifyResult(sym, path, False, "content hash mismatch (file altered or damaged)")
        if meta.get("symbol") != sym or meta.get("rows") != len(frame):
            return VerifyResult(sym, path, False, "metadata does not match the data")
        return VerifyResult(sym, path, True)


_YF_ADJUSTMENT = "raw OHLC from yfinance (auto_adjust=False); adj_close dividend/split adjusted"


def _fmt(day: dt.date | None) -> str:
    return day.isoformat() if day else "(open)"


def _missing_ranges(
    store: PriceStore, meta: dict | None, start: dt.date | None, end: dt.date, refresh: bool
) -> list[tuple[dt.date | None, dt.date]]:
    """The date ranges to download: the whole request on a miss, else the uncovered edges."""
    if meta is None:
        return [(start, end)]
    start_ok, end_ok = store._covered(meta, start, end)
    ranges: list[tuple[dt.date | None, dt.date]] = []
    overlap = dt.timedelta(days=OVERLAP_DAYS)
    first, last = dt.date.fromisoformat(meta["first_date"]), dt.date.fromisoformat(meta["last_date"])
    if not start_ok:
        ranges.append((start, first + overlap))
    if not end_ok or refresh:
        ranges.append((last - overlap, end))
    return ranges


def _merge(old: pd.DataFrame | None, parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate old and new bars; on a duplicate date the newest download wins."""
    frames = [f for f in ([old] if old is not None else []) + parts if f is not None and len(f)]
    if not frames:
        raise DataError("no price bars to store")
    merged = pd.concat([f[COLUMNS[:-1]].astype("float64").set_axis(
        f.index.as_unit(INDEX_UNIT), axis=0) for f in frames])
    merged = merged[~merged.index.duplicated(keep="last")].sort_index()
    merged.index.name = "date"
    return merged


def _slice(frame: pd.DataFrame, sym: str, lo: dt.date | None, hi: dt.date | None) -> pd.DataFrame:
    """Inclusive date slice by binary search on the sorted index (no boolean masks)."""
    index = frame.index
    a = 0 if lo is None else int(index.searchsorted(pd.Timestamp(lo), side="left"))
    b = len(index) if hi is None else int(index.searchsorted(pd.Timestamp(hi), side="right"))
    out = frame if (a, b) == (0, len(index)) else frame.iloc[a:b]
    if len(out) == 0:
        first, last = frame.index[0].date(), frame.index[-1].date()
        raise MissingDataError(
            f"{sym}: no cached prices in {_fmt(lo)} .. {_fmt(hi)} (cache has {first} .. {last})"
        )
    return out


def price_summary(frame: pd.DataFrame, symbol: str) -> dict:
    """Close-based summary for ``evbt data show``."""
    close = frame["close"]
    first, last = float(close.iloc[0]), float(close.iloc[-1])
    return {
        "symbol": symbol,
        "first_date": frame.index[0].date().isoformat(),
        "last_date": frame.index[-1].date().isoformat(),
        "rows": len(frame),
        "first_close": first,
        "last_close": last,
        "return": last / first - 1.0,
        "min_close": float(close.min()),
        "min_date": close.idxmin().date().isoformat(),
        "max_close": float(close.max()),
        "max_date": close.idxmax().date().isoformat(),
        "stale_bars": int(frame["stale"].sum()),
    }
