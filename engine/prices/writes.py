"""How the store writes: the per-symbol lock, a file's metadata and bytes, and batches of writes (`data import`).

Lock: ``fcntl.flock`` on ``<root>/.locks/<file name>.lock``, the lock files ``filelock`` used before (its Unix
lock is the same ``flock`` on the same files, which it never deletes), so an older evbt and this one exclude each
other. flock conflicts between open file descriptions, so two threads of one process exclude each other too.
Waiting polls every few ms up to the store's timeout, then a DataError names the lock file. Elsewhere (no
``fcntl``) ``filelock`` is used.

A batch (``write_batch``) does the per-file work first, on threads: check, encode, and stage the bytes in a
fresh temp file beside the target, written and fsynced (``engine.atomic.stage_bytes``; the fsyncs overlap, the
file system commits them together). Only when every item staged does it replace the files, in input order, each
under its symbol's lock (an ``os.replace``: a reader sees the old file or the new one), then fsyncs the folder
once for all the renames. If any item fails, no file is replaced and every staged temp is removed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.atomic import commit_staged, stage_bytes, sync_folder
from engine.errors import DataError
from engine.market.symbols import listing
from engine.prices.cache_file import hash_columns, parquet_bytes, table_from_columns
from engine.prices.validate import Columns

try:
    import fcntl
except ImportError:  # pragma: no cover - not Linux/macOS
    fcntl = None  # type: ignore[assignment]

LOCK_POLL = 0.005  # seconds between tries while another process holds a lock


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
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise DataError(f"{symbol}: cache is locked by another evbt process ({lock_file})") from None
                time.sleep(LOCK_POLL)
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
class Staged:
    """One item of a batch, checked and encoded, its bytes in a temp file beside ``path``."""

    symbol: str
    path: Path
    temp: Path
    meta: dict


def write_batch(count: int, stage: Callable[[int], Staged], commit: Callable[[Staged], None], folder: Path,
                threads: int) -> list[dict]:
    """Stage items ``0 .. count-1`` (``stage(i)``, up to ``threads`` at once), then ``commit`` each in input
    order and fsync ``folder`` once; the metadata of each item. On a failure nothing more is committed, every
    temp not committed is removed and the error of the first failing item (in input order) is raised."""
    staged: list[Staged | None] = [None] * count
    committed = 0
    try:
        if threads <= 1 or count <= 1:
            for i in range(count):
                staged[i] = stage(i)
        else:
            with ThreadPoolExecutor(min(threads, count), thread_name_prefix="evbt-write") as pool:
                futures = [pool.submit(stage, i) for i in range(count)]
                try:
                    for i, future in enumerate(futures):
                        staged[i] = future.result()
                finally:  # after a failure: cancel what has not started, keep the temps of what finished
                    for future in futures:
                        future.cancel()
                    for i, future in enumerate(futures):
                        if staged[i] is None and not future.cancelled() and future.exception() is None:
                            staged[i] = future.result()
        metas = []
        for i, item in enumerate(staged):
            assert item is not None
            commit(item)
            staged[i] = None
            committed += 1
            metas.append(item.meta)
        return metas
    finally:
        if committed:
            sync_folder(folder)  # the renames survive a power cut
        for item in staged:
            if item is not None:
                with contextlib.suppress(OSError):
                    item.temp.unlink()


def stage_file(symbol: str, path: Path, dates: np.ndarray, cols: Columns, meta: dict) -> Staged:
    """Encode and stage one file (``engine.atomic.stage_bytes``)."""
    return Staged(symbol, path, stage_bytes(path, file_bytes(dates, cols, meta)), meta)


def commit_file(item: Staged) -> None:
    """Replace the target with the staged temp (the folder is fsynced by the batch)."""
    commit_staged(item.temp, item.path, sync_dir=False)
