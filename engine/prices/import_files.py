"""`data import`: Yahoo CSV files into the price cache, every file checked before any cache file is replaced.

Each file is parsed and validated into checked arrays (``csv_import.read_yahoo_bars``: errors name file, line
and column; no pandas frame is built) and its cache file encoded from them (``writes.encode_checked``). For
many files that step runs in a pool of forked worker processes (one per CPU, at most ``POOL_WORKERS``): it is
CPU work, and two processes use both cores where threads wait for each other's Python. A worker also stages
each file it encoded: a fresh temp file beside the target, written and fsynced (``writes.stage_encoded``, on a
few threads so the fsyncs overlap the parsing), and returns only its name and metadata, so no file's bytes
cross a pipe. The parent replaces the files in input order, each under its symbol's lock, once every file
checked out (``PriceStore.commit_staged``); the error raised is that of the first bad file in input order, as
in a loop, and then every temp file the workers staged is removed (the parent waits for the running tasks and
cancels the others). A killed worker's temps carry its pid: the next write sweeps them as any dead writer's.
Few files (below ``POOL_MIN_FILES``) are done in the process itself (``PriceStore.write_encoded``): forking
costs more than it saves there.

The pool starts as soon as the files are named (``start_import``), before the caller loads anything else: this
module and what a worker runs import numpy and pyarrow but not pandas (nor the store), so the workers are forked
from a small process and parse while the parent goes on importing pandas (about 0.6 s of the command) and
opening the store. ``import_csvs`` is both steps at once.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
import os
import signal
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import ConfigError, DataError, EvbtError, MissingDataError
from engine.market.symbols import listing
from engine.prices.cache_file import cache_path, lock_path
from engine.prices.csv_import import read_yahoo_bars, symbol_from_path
from engine.prices.writes import Encoded, Staged, encode_checked, stage_encoded

if TYPE_CHECKING:
    from engine.prices.store import PriceStore  # imports pandas: not before the pool is forked

POOL_WORKERS = 2
POOL_MIN_FILES = 24
CHUNK = 8  # files per task: few round trips, results still stream in order
STAGE_THREADS = 3  # per worker: a file's write + fsync (~0.8 ms, the GIL released) overlaps the next parse
_ERRORS: dict[str, type[EvbtError]] = {cls.__name__: cls for cls in (ConfigError, MissingDataError, DataError)}


@dataclass(frozen=True)
class ImportedFile:
    """One imported CSV: the symbol it was stored under and the file it came from."""

    symbol: str
    path: Path


def _encode(path: Path, symbol: str | None) -> Encoded:
    item = read_yahoo_bars(path, symbol)  # checked arrays, no frame
    return encode_checked(item.symbol, item.dates, item.cols, "csv", item.adjustment)


def _reported(exc: EvbtError) -> tuple[str, str]:
    """An evbt error as (class name, message), raised again in the parent (exceptions cross the process
    boundary as plain text, never as pickled exception state)."""
    return type(exc).__name__ if type(exc).__name__ in _ERRORS else "DataError", str(exc)


_STAGING: list[ThreadPoolExecutor] = []  # a worker process's staging threads (made on its first task)


def _stage_chunk(jobs: list[tuple[Path, str | None]], root: Path) -> list[Staged | tuple[str, str]]:
    """Worker side: encode each file and stage it (on the worker's staging threads) beside its target in
    ``root``; the staged files in job order, up to and including the first error (the rest are not started)."""
    if not _STAGING:
        _STAGING.append(ThreadPoolExecutor(STAGE_THREADS, thread_name_prefix="evbt-stage"))
    pending: list[Future[Staged] | tuple[str, str]] = []
    for path, symbol in jobs:
        try:
            item = _encode(path, symbol)
            target = cache_path(root, item.symbol)
            pending.append(_STAGING[0].submit(stage_encoded, item, target, lock_path(root, target)))
        except EvbtError as exc:
            pending.append(_reported(exc))
            break
    out: list[Staged | tuple[str, str]] = []
    for entry in pending:
        if isinstance(entry, tuple):
            out.append(entry)
            continue
        try:
            out.append(entry.result())
        except EvbtError as exc:  # e.g. a full disk: stage_bytes left no temp
            out.append(_reported(exc))
    return out


def _worker_init(parent: int) -> None:
    from engine.sweeps.safety import die_with_parent  # same rule as sweep workers: die with the parent

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle (it stops the pool)
    die_with_parent(parent)


def _pooled(jobs: list[tuple[Path, str | None]], root: Path, workers: int) -> Iterator[Staged]:
    """The staged files in input order; the workers are forked and every chunk submitted now (not on the first
    ``next``). If a file fails (or the consumer stops early), the pending chunks are cancelled, the running
    ones awaited, and every temp file the workers staged is removed; the pool is shut down in any case."""
    ctx = mp.get_context("fork")  # the children inherit the imported modules and the venue tables
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(),))
    futures: list[Future[list[Staged | tuple[str, str]]]] = []
    frozen = gc.get_freeze_count() == 0  # the collector leaves the pages shared with the workers alone
    if frozen:
        gc.freeze()
    try:
        for i in range(0, len(jobs), CHUNK):  # the first submit forks the workers
            futures.append(pool.submit(_stage_chunk, jobs[i:i + CHUNK], root))
    except BaseException:
        _discard(pool, futures, frozen)
        raise

    def collect() -> Iterator[Staged]:
        done = False
        try:
            for future in futures:
                for result in future.result():
                    if isinstance(result, tuple):
                        raise _ERRORS[result[0]](result[1])
                    yield result
            done = True
        finally:
            if done:
                pool.shutdown(wait=True)
                if frozen:
                    gc.unfreeze()
            else:
                _discard(pool, futures, frozen)

    return collect()


def _discard(pool: ProcessPoolExecutor, futures: list[Future[list[Staged | tuple[str, str]]]], frozen: bool) -> None:
    """Cancel what has not started, wait for the rest, remove every temp file staged, shut the pool down."""
    for future in futures:
        future.cancel()
    wait([f for f in futures if not f.cancelled()])
    for future in futures:
        if future.cancelled() or future.exception() is not None:
            continue
        for result in future.result():
            if not isinstance(result, tuple):
                with contextlib.suppress(OSError):
                    result.temp.unlink()  # gone already if it was committed
    pool.shutdown(wait=True, cancel_futures=True)
    if frozen:
        gc.unfreeze()


@dataclass
class ImportJob:
    """CSV files being parsed and encoded (and staged, in a pool already started, for many files) into the cache
    folder ``root``; no cache file replaced yet."""

    root: Path
    paths: list[Path]
    encoded: Iterator[Encoded] | None = None  # in this process, as the store stages them
    staged: Iterator[Staged] | None = None  # staged by the pool's workers

    def write(self, store: PriceStore) -> Iterator[tuple[ImportedFile, dict[str, Any]]]:
        """Store every file once all checked out; yields, in input order and once every file is stored, (the
        file, the metadata written). ``store`` must be the one of ``root``."""
        if Path(store.root) != self.root:
            raise ValueError(f"import staged for {self.root}, not {store.root}")
        try:
            if self.staged is not None:
                metas = store.commit_staged(self.staged)
            else:
                assert self.encoded is not None
                metas = store.write_encoded(self.encoded)
        finally:
            for items in (self.staged, self.encoded):
                close = getattr(items, "close", None)
                if close is not None:
                    close()  # a pool whose results were not all taken stops, and its temps are removed
        for path, meta in zip(self.paths, metas, strict=True):
            yield ImportedFile(meta["symbol"], path), meta


def start_import(files: Sequence[Path], root: Path, symbol: str | None = None,
                 workers: int | None = None) -> ImportJob:
    """Check the file names (each must name a symbol, or ``symbol`` overrides that of a single file) and start
    parsing into the cache folder ``root``: in a pool of forked workers for ``POOL_MIN_FILES`` files or more,
    else in this process as the files are stored."""
    paths = [Path(p) for p in files]
    for path in paths:  # a name that is no symbol is refused before any work (also warms the venue tables)
        listing(symbol_from_path(path) if symbol is None else symbol)
    workers = min(POOL_WORKERS, os.cpu_count() or 1) if workers is None else workers
    jobs = [(path, symbol) for path in paths]
    root = Path(root)
    if workers > 1 and len(jobs) >= POOL_MIN_FILES:
        return ImportJob(root, paths, staged=_pooled(jobs, root, workers))
    return ImportJob(root, paths, encoded=(_encode(*job) for job in jobs))


def import_csvs(store: PriceStore, files: Sequence[Path], symbol: str | None = None,
                workers: int | None = None) -> Iterator[tuple[ImportedFile, dict[str, Any]]]:
    """Import the files (``symbol`` overrides the name-derived symbol of a single file); yields, in input order
    and once every file is stored, (the file, the metadata written)."""
    yield from start_import(files, Path(store.root), symbol, workers).write(store)
