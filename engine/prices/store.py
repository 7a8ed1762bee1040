"""PriceStore: the parquet price cache (the only parquet writer for prices).

One file per symbol, ``<root>/<quoted symbol>.parquet`` (``^HSI`` -> ``%5EHSI.parquet``): the file name is
derived from the *normalised* symbol by percent-quoting everything outside ``A-Z 0-9 . -``, never from user
text directly. Metadata (source, fetched_at, adjustment, currency, exchange, first/last date, rows,
content hash, and the covered request range) lives in the parquet schema metadata under ``b"evbt"``.

Writes go through ``engine.atomic`` under a per-symbol cross-process lock in ``<root>/.locks/``
(``engine.prices.writes``: ``flock`` on the files ``filelock`` used); reads take no lock (a file is always
replaced atomically). ``write_many`` (``data import``) checks, encodes and stages every file on a few threads
(each temp fsynced; the fsyncs overlap), then replaces them in input order, each under its lock, and fsyncs the
folder once: a bad item means no file is replaced.

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
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

import pandas as pd

from engine.atomic import atomic_write_bytes, remove_orphan_temps, temp_owner
from engine.errors import ConfigError, DataError, EvbtWarning, MissingDataError
from engine.market.symbols import listing, normalize_symbol
from engine.prices.bars import day_text, merge_bars, price_summary, slice_bars, span_text, stored_columns
from engine.prices.cache_file import (
    META_KEY,
    SOURCES,
    SUFFIX,
    Identity,
    cache_path,
    content_hash,
    lock_path,
    read_file_version,
    read_meta_only,
)
from engine.prices.coverage import OVERLAP_DAYS, covered, missing_ranges
from engine.prices.writes import (
    Encoded,
    Staged,
    commit_file,
    encode_frame,
    file_bytes,
    file_meta,
    stage_encoded,
    symbol_lock,
    write_batch,
)

if TYPE_CHECKING:
    from engine.prices.read_ahead import AheadRead
    from engine.prices.read_fork import ForkedReads
    from engine.prices.verify import VerifyResult

__all__ = ["META_KEY", "OVERLAP_DAYS", "SOURCES", "SUFFIX", "PriceStore", "content_hash", "price_summary"]

WRITE_THREADS = 8  # staging is fsync-bound: measured 4 threads ~1.3 ms a file, 16 ~0.8 ms, 1 ~8 ms
Fetcher = Callable[[str, dt.date, dt.date], pd.DataFrame]
WriteItem = tuple[str, pd.DataFrame, str, str]  # symbol, frame, source, adjustment


def _to_date(value: object | None) -> dt.date | None:
    if value is None:
        return None
    return pd.Timestamp(value).date()  # type: ignore[arg-type]




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
        # metadata of the version of each symbol this store last read or wrote: fingerprint()/read_meta()
        # answer from it, so a run records the version it traded even if another process replaced the file
        self._served: dict[str, dict] = {}
        self._served_ids: dict[str, Identity] = {}  # identity of the file version read (not after a write)
        self._ahead: dict[str, AheadRead] = {}  # checked reads done ahead (preload), each served once
        self._background: ForkedReads | None = None  # a reader process still reading ahead (preload)

    # ---------------------------------------------------------------- paths and locks
    def path_for(self, symbol: str) -> Path:
        return cache_path(self.root, normalize_symbol(symbol), repr(symbol))

    def _lock_file(self, symbol: str) -> Path:
        return lock_path(self.root, self.path_for(symbol))

    def scan(self) -> tuple[list[str], list[Path]]:
        """(symbols with a cache file, stray ``*.parquet`` files whose name is not a cache file name)."""
        if not self.root.is_dir():
            return [], []
        symbols: list[str] = []
        strays: list[Path] = []
        for path in sorted(self.root.glob("*" + SUFFIX)):
            if path.name.startswith("."):
                continue
            try:
                sym = normalize_symbol(unquote(path.name[: -len(SUFFIX)]))
                ok = self.path_for(sym) == path
            except (ConfigError, DataError):
                ok = False
            if ok:
                symbols.append(sym)
            else:
                strays.append(path)
        return sorted(symbols), strays

    def symbols(self) -> list[str]:
        """Symbols with a cache file, sorted (stray files with other names are ignored: see ``strays``)."""
        return self.scan()[0]

    def strays(self) -> list[Path]:
        """``*.parquet`` files in the cache folder that no symbol maps to (copies, renamed files)."""
        return self.scan()[1]

    def remove_orphan_temps(self) -> list[tuple[Path, int]]:
        """Delete temp files of killed writers in the cache folder; (path, size) of each removed."""
        sizes = {}
        if self.root.is_dir():
            for tmp in self.root.iterdir():
                if temp_owner(tmp.name) is not None:
                    with contextlib.suppress(OSError):
                        sizes[tmp] = tmp.lstat().st_size
        return [(p, sizes.get(p, 0)) for p in remove_orphan_temps(self.root)]

    def _absent(self, symbol: str) -> MissingDataError:
        return MissingDataError(f"{normalize_symbol(symbol)}: not in the price cache {self.root}")

    def has(self, symbol: str) -> bool:
        return self.path_for(symbol).is_file()

    # ---------------------------------------------------------------- raw read/write
    def read_checked(self, symbol: str) -> tuple[dict, pd.DataFrame]:
        """(metadata, frame) from one read of the file, every check passed (cache_file.decode); remembered
        as the served version. MissingDataError if not cached, DataError if damaged or altered."""
        sym = normalize_symbol(symbol)
        path = self.path_for(sym)
        if self._background is not None:
            self._collect_background()
        ahead = self._ahead.pop(sym, None)
        try:
            meta, frame, ident = (ahead.result() if ahead is not None and ahead.current(path)
                                  else read_file_version(path, sym))
        except FileNotFoundError:
            raise self._absent(sym) from None
        self._served[sym] = meta
        self._served_ids[sym] = ident
        return meta, frame

    def served_identity(self, symbol: str) -> Identity | None:
        """The identity (device, inode, size, mtime, ctime) of the file version this store last read for the
        symbol (None if it wrote it since, or never read it): ``snapshots.keep`` links it without re-reading."""
        return self._served_ids.get(normalize_symbol(symbol))

    def preload(self, symbols: Iterable[str], background: bool = False) -> None:
        """Read and check these symbols' files on a few threads now (``engine.prices.read_ahead``); the next
        read of each is served from that read if the file is still the same version, else read again. Absent
        symbols are skipped (their load says so); a damaged file raises when its symbol is read.

        ``background``: read them in a forked reader process instead (``engine.prices.read_fork``) and return at
        once; the first read of any symbol waits for it. For a caller with pure-Python work to do meanwhile
        (a sweep parses its event file): threads would not overlap that work. Few symbols, or no ``fork``:
        the threads, now."""
        syms = [s for s in dict.fromkeys(normalize_symbol(s) for s in symbols) if s not in self._ahead]
        from engine.prices import read_fork

        if background and len(syms) >= read_fork.MIN_FILES and read_fork.supported():
            self._collect_background()  # one reader at a time
            with contextlib.suppress(OSError):  # no fork now (process limit, memory): the threads below
                self._background = read_fork.ForkedReads(syms, self.path_for)
                return
        from engine.prices.read_ahead import read_ahead

        self._ahead.update(read_ahead(syms, self.path_for))

    def _collect_background(self) -> None:
        """The reads of the background reader, if one runs (waits for it)."""
        reader, self._background = self._background, None
        if reader is not None:
            self._ahead.update(reader.collect())

    def cancel_preload(self) -> None:
        """Stop a background reader whose reads are no longer wanted, and forget every read done ahead."""
        reader, self._background = self._background, None
        if reader is not None:
            reader.close()
        self._ahead.clear()

    def read_meta(self, symbol: str) -> dict:
        """The metadata of a symbol's file (see module doc): of the version this store last served or wrote,
        else from the file footer (shape-checked; the bars are not read, so their hash is not checked)."""
        sym = normalize_symbol(symbol)
        if sym in self._served:
            return dict(self._served[sym])
        try:
            return read_meta_only(self.path_for(sym))
        except FileNotFoundError:
            raise self._absent(sym) from None

    def fingerprint(self, symbol: str) -> str:
        """Content hash of the version this store served (a checked read of the file if none yet)."""
        sym = normalize_symbol(symbol)
        if sym not in self._served:
            self.read_checked(sym)
        return str(self._served[sym]["content_hash"])

    def load_versioned(self, symbol: str, start: object | None = None,
                       end: object | None = None) -> tuple[pd.DataFrame, dict]:
        """``load`` plus the metadata of exactly the file version the bars came from."""
        frame = self.load(symbol, start, end)
        return frame, dict(self._served[normalize_symbol(symbol)])

    def read_all(self, symbol: str) -> pd.DataFrame:
        """Every cached bar of a symbol, no network (checked like every read)."""
        return self.read_checked(symbol)[1]

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

    def write_many(self, items: Sequence[WriteItem], threads: int = WRITE_THREADS) -> Iterator[dict]:
        """``write`` for each (symbol, frame, source, adjustment); the returned iterator writes and yields the
        metadata in input order.

        Same checks, lock and atomic replacement per file: every item is checked and encoded (on up to
        ``threads`` threads) and staged before any file is replaced (``write_encoded``). An unknown source or
        symbol venue is raised here, before any write; temp files of killed writers are swept once for the
        batch. On a failure no file is replaced and the first bad item's error is raised."""
        items = list(items)
        for symbol, _frame, source, _adjustment in items:
            if source not in SOURCES:
                raise ValueError(f"unknown price source {source!r}")
            listing(normalize_symbol(symbol))  # also warms the venue tables before threads read them
        self._sweep_temps(stacklevel=2)

        def encode(item: WriteItem) -> Encoded:
            symbol, frame, source, adjustment = item
            return encode_frame(normalize_symbol(symbol), frame, source, adjustment)

        def run() -> Iterator[dict]:
            with ThreadPoolExecutor(max(1, min(threads, len(items))), thread_name_prefix="evbt-encode") as pool:
                yield from self.write_encoded(pool.map(encode, items), threads, sweep=False)

        return run()

    def write_encoded(self, items: Iterable[Encoded], threads: int = WRITE_THREADS, sweep: bool = True) -> list[dict]:
        """Write files already checked and encoded (``writes.encode_frame``), staged as ``items`` yields them and
        replaced in input order once all staged (the last item of a symbol wins, as in a loop), each under its
        symbol's lock; the folder is fsynced once. If ``items`` raises or an item fails, no file is replaced
        (unless a rename itself failed: those before it stay, each complete) and the error is raised."""
        if sweep:
            self._sweep_temps(stacklevel=2)

        def stage(item: Encoded) -> Staged:
            return stage_encoded(item, self.path_for(item.symbol), self._lock_file(item.symbol))

        def commit(item: Staged) -> None:
            with self._locked(item.symbol):
                commit_file(item)
                self._adopted(item.symbol, item.meta)

        return [dict(meta) for meta in write_batch(items, stage, commit, self.root, threads)]

    def _sweep_temps(self, stacklevel: int) -> None:
        removed = self.remove_orphan_temps()
        if removed:
            warnings.warn(f"removed {len(removed)} temp file(s) that killed evbt writers left in {self.root} "
                          f"({_size(sum(n for _, n in removed))})", EvbtWarning, stacklevel=stacklevel)

    def _locked(self, symbol: str) -> contextlib.AbstractContextManager[None]:
        """Hold the symbol's cross-process lock; a timeout becomes a DataError."""
        return symbol_lock(self._lock_file(symbol), self.lock_timeout, normalize_symbol(symbol))

    def _write_unlocked(
        self,
        symbol: str,
        frame: pd.DataFrame,
        source: str,
        adjustment: str,
        covered: tuple[dt.date | None, dt.date | None],
        sweep: bool = True,
    ) -> dict:
        if source not in SOURCES:
            raise ValueError(f"unknown price source {source!r}")
        sym = normalize_symbol(symbol)
        dates, cols = stored_columns(frame, sym)
        meta = file_meta(sym, dates, cols, source, adjustment, covered)
        if sweep:
            self._sweep_temps(stacklevel=5)
        atomic_write_bytes(self.path_for(sym), file_bytes(dates, cols, meta))
        self._adopted(sym, meta)
        return dict(meta)

    def _adopted(self, sym: str, meta: dict) -> None:
        """After ``sym``'s file was replaced by the version ``meta`` describes: remembered as served."""
        from engine.prices.snapshots import adopt  # a kept version equal to this one is re-linked: no copy

        adopt(self.root, self.path_for(sym), meta)
        self._served[sym] = meta
        self._served_ids.pop(sym, None)

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
    def load(self, symbol: str, start: object | None = None, end: object | None = None) -> pd.DataFrame:
        """Bars with ``start <= date <= end`` (both inclusive, None = open), fetching what is missing."""
        sym = normalize_symbol(symbol)
        lo, hi = _to_date(start), _to_date(end)
        if lo and hi and lo > hi:
            raise MissingDataError(f"{sym}: empty date range {lo} .. {hi}")
        frame = self._ensure(sym, lo, hi)
        return slice_bars(frame, sym, lo, hi)

    def _read_cached(self, sym: str) -> tuple[dict, pd.DataFrame] | None:
        """(metadata, frame) from one checked file read, or None if the symbol is not cached."""
        try:
            return self.read_checked(sym)
        except MissingDataError:
            return None

    def _ensure(self, sym: str, lo: dt.date | None, hi: dt.date | None) -> pd.DataFrame:
        cached = self._read_cached(sym)
        meta = cached[0] if cached else None
        if cached is not None and (cached[0]["source"] != "yfinance" or all(covered(cached[0], lo, hi))):
            return cached[1]
        wanted = f"prices {span_text(lo, hi, 'for')}".rstrip()
        if self.offline and meta is None:
            raise MissingDataError(
                f"{sym}: {wanted} are not in the cache "
                f"({sym} is not in the price cache {self.root}) and evbt is offline; "
                f"run `evbt data fetch {sym}` online or `evbt data import FILE`"
            )
        if self.offline:
            have = f" (cache has {meta['first_date']} .. {meta['last_date']})"  # type: ignore[index]
            raise MissingDataError(
                f"{sym}: {wanted} are not in the cache{have} and evbt is offline; "
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
            raise MissingDataError(f"{sym}: cannot fetch {day_text(start)} .. {day_text(end)}: evbt is offline")
        with self._locked(sym):
            return self._update_unlocked(sym, start, end, refresh)

    def _update_unlocked(
        self, sym: str, start: dt.date | None, end: dt.date | None, refresh: bool
    ) -> pd.DataFrame:
        today = dt.date.today()
        want_end = min(end or today, today)
        cached = self._read_cached(sym)
        meta, old = cached if cached is not None else (None, None)
        if meta is not None and meta["source"] != "yfinance":
            # the download spans at least what the old file held: `--start D` must not drop earlier history
            first = dt.date.fromisoformat(meta["first_date"])
            start = min(start, first) if start is not None else None
            warnings.warn(f"{sym}: replacing {meta['source']} data ({meta['first_date']} .. {meta['last_date']}, "
                          f"{meta['rows']} rows) with a yfinance download from {day_text(start)}", EvbtWarning,
                          stacklevel=3)
            old, meta = None, None
        ranges = missing_ranges(meta, start, want_end, refresh)
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
                f"{meta['first_date']} .. {meta['last_date']}", EvbtWarning, stacklevel=3)  # type: ignore[index]
            return old
        if old is None and not any(len(p) for p in parts):
            raise DataError(f"{sym}: yfinance returned no prices for {day_text(start)} .. {want_end} "
                            "(wrong symbol, possibly delisted, or no trading in the range)")
        merged = merge_bars(old, parts)
        old_from = _to_date(meta["covered_from"]) if meta else None
        known = [d for d in (start, old_from) if d]
        cov_from = min(known) if known and start is not None else None
        cov_to = max(want_end, _to_date(meta["covered_to"])) if meta else want_end  # type: ignore[type-var]
        self._write_unlocked(sym, merged, "yfinance", _YF_ADJUSTMENT, (cov_from, cov_to))
        return self.read_all(sym)

    def _fetch(self, sym: str, start: dt.date | None, end: dt.date) -> pd.DataFrame:
        if self._fetcher is not None:
            return self._fetcher(sym, start, end)  # type: ignore[arg-type]
        from engine.prices.yahoo import fetch_history  # lazy: yfinance import costs ~0.5 s

        return fetch_history(sym, start, end, allow_empty=True)

    # ---------------------------------------------------------------- listing and verify
    def entries(self) -> list[dict]:
        """Metadata of every cached file plus ``size`` and ``status``; never raises for a bad file."""
        from engine.prices.verify import list_entries

        return list_entries(self)

    def verify(self, symbols: list[str] | None = None) -> list[VerifyResult]:
        """Full read checks of every (or the named) file; see ``engine.prices.verify``."""
        from engine.prices.verify import verify_store

        return verify_store(self, symbols)


_YF_ADJUSTMENT = "raw OHLC from yfinance (auto_adjust=False); adj_close dividend/split adjusted"


def _size(n: int) -> str:
    return f"{n / 1024:.1f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"
