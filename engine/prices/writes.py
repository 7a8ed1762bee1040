"""How the store writes: the per-symbol lock, a file's metadata and bytes, and batches of writes (`data import`).

Lock: ``fcntl.flock`` on ``<root>/.locks/<file name>.lock``, the lock files ``filelock`` used before (its Unix
lock is the same ``flock`` on the same files, which it never deletes), so an older evbt and this one exclude each
other. flock conflicts between open file descriptions, so two threads of one process exclude each other too.
Waiting polls every few ms up to the store's timeout, then a DataError names the lock file. Elsewhere (no
``fcntl``) ``filelock`` is used.

A batch (``write_batch``) takes files already checked and encoded (``encode_frame``: on threads for
``write_many``, in worker processes for ``data import``) and stages each, on threads as they arrive, in a fresh
temp file beside its target, written and fsynced (``engine.atomic.stage_bytes``; the fsyncs overlap and the file
system commits them together). Only when every item staged does it replace the files, in input order, each under
its symbol's lock (an ``os.replace``: a reader sees the old file or the new one), then fsyncs the folder once
for all the renames. If any item fails, no file is replaced and every staged temp is removed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from engine.atomic import commit_staged, stage_bytes, sync_folder
from engine.errors import DataError
from engine.market.symbols import listing
from engine.prices.cache_file import hash_columns, parquet_bytes, table_from_columns
from engine.prices.validate import Columns

if TYPE_CHECKING:
    import pandas as pd  # encode_checked (a `data import` worker) needs no pandas

try:
    import fcntl
except ImportError:  # pragma: no cover - not Linux/macOS
    fcntl = None  # type: ignore[assignment]

ItemT = TypeVar("ItemT")  # what write_batch stages: an Encoded file, or one staged already (Staged)
LOCK_POLL = 0.005  # seconds between tries while another process holds a lock


def flock_within(fd: int, timeout: float, busy: str) -> None:
    """An exclusive ``flock`` on ``fd``, tried every LOCK_POLL seconds for ``timeout``; then DataError(``busy``)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise DataError(busy) from None
            time.sleep(LOCK_POLL)


@contextlib.contextmanager
def symbol_lock(lock_file: Path, timeout: float, symbol: str) -> Iterator[None]:
    """Hold the cross-process lock ``lock_file`` (created if absent); a timeout becomes a DataError."""
    if fcntl is None:  # pragma: no cover
        yield from _filelock(lock_file, timeout, symbol)
        return
    try:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise DataError(f"cannot open lock file {lock_file}: {exc.strerror or exc}") from exc
    try:
        flock_within(fd, timeout, f"{symbol}: cache is locked by another evbt process ({lock_file})")
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _filelock(lock_file: Path, timeout: float, symbol: str) -> Iterator[None]:  # pragma: no cover
    from filelock import FileLock, Timeout

    lock = FileLock(lock_file, timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise DataError(f"{symbol}: cache is locked by another evbt process ({lock_file})") from None
    try:
        yield
    finally:
        lock.release()


def file_meta(sym: str, dates: np.ndarray, cols: Columns, source: str, adjustment: str,
              covered: tuple[dt.date | None, dt.date | None]) -> dict:
    """The metadata of a cache file holding these (already checked) bars (see store's module doc)."""
    info = listing(sym)
    first, last = (day.item() for day in dates[[0, -1]].astype("datetime64[D]"))
    return {
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
        "rows": len(dates),
        "content_hash": hash_columns(dates, cols),
    }


def file_bytes(dates: np.ndarray, cols: Columns, meta: dict) -> bytes:
    """The parquet bytes of a cache file (bars and sealed metadata)."""
    return parquet_bytes(table_from_columns(dates, cols, meta))


@dataclass(frozen=True)
class Encoded:
    """One file to write: its symbol, metadata and parquet bytes (picklable: made in worker processes too)."""

    symbol: str
    meta: dict
    payload: bytes


def encode_frame(sym: str, frame: pd.DataFrame, source: str, adjustment: str,
                 covered: tuple[dt.date | None, dt.date | None] = (None, None)) -> Encoded:
    """Check a frame as every write does (``bars.stored_columns``) and encode its cache file."""
    from engine.prices.bars import stored_columns

    dates, cols = stored_columns(frame, sym)
    return encode_checked(sym, dates, cols, source, adjustment, covered)


def encode_checked(sym: str, dates: np.ndarray, cols: Columns, source: str, adjustment: str,
                   covered: tuple[dt.date | None, dt.date | None] = (None, None)) -> Encoded:
    """Encode the cache file of bars that passed every check: ``stored_columns`` output, or the arrays of
    ``validate.checked_bars`` (``csv_import.read_yahoo_bars``), not to be changed in between."""
    meta = file_meta(sym, dates, cols, source, adjustment, covered)
    return Encoded(sym, meta, file_bytes(dates, cols, meta))


@dataclass(frozen=True)
class Staged:
    """An encoded file whose bytes wait in a temp file beside ``path``."""

    symbol: str
    path: Path
    temp: Path
    meta: dict


def ensure_lock_file(lock_file: Path) -> None:
    """Create the lock file if absent (a create costs a journal write: batches do it on their threads)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644))


def write_batch(items: Iterable[ItemT], stage: Callable[[ItemT], Staged], commit: Callable[[Staged], None],
                folder: Path, threads: int) -> list[dict]:
    """Stage every item (``stage``, on up to ``threads`` threads, as ``items`` yields them), then ``commit``
    each in input order and fsync ``folder`` once; the metadata of each item.

    If ``items`` raises or an item fails to stage or commit, nothing more is committed, every temp not
    committed is removed and the error of the first failing item (in input order) is raised."""
    futures: list[Future[Staged]] = []
    staged: list[Staged | None] = []
    committed = 0
    pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="evbt-stage")
    try:
        for item in items:
            futures.append(pool.submit(stage, item))
        staged = [future.result() for future in futures]
        metas = []
        for i, done in enumerate(staged):
            assert done is not None
            commit(done)
            staged[i] = None
            committed += 1
            metas.append(done.meta)
        return metas
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if committed:
            sync_folder(folder)  # the renames survive a power cut
        leftovers = staged if staged else [f.result() for f in futures if not f.cancelled() and not f.exception()]
        for done in leftovers:
            if done is not None:
                with contextlib.suppress(OSError):
                    done.temp.unlink()


def stage_encoded(item: Encoded, path: Path, lock_file: Path) -> Staged:
    """Stage one encoded file beside ``path`` (``engine.atomic.stage_bytes``) and make sure its lock file exists."""
    ensure_lock_file(lock_file)
    return Staged(item.symbol, path, stage_bytes(path, item.payload), item.meta)


def commit_file(item: Staged) -> None:
    """Replace the target with the staged temp (the folder is fsynced by the batch)."""
    commit_staged(item.temp, item.path, sync_dir=False)
