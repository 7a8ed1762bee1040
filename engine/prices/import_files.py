"""`data import`: Yahoo CSV files into the price cache, every file checked before any cache file is replaced.

Each file is parsed and validated into checked arrays (``csv_import.read_yahoo_bars``: errors name file, line
and column; no pandas frame is built) and its cache file encoded from them (``writes.encode_checked``). For
many files that step runs in a pool of forked worker processes (one per CPU, at most ``POOL_WORKERS``): it is
CPU work, and two processes use both cores where threads wait for each other's Python. Workers only compute:
they return the encoded bytes and never touch the cache, so a killed worker leaves nothing behind. The parent
stages the files as the results arrive, in input order, and replaces them all once every file checked out
(``PriceStore.write_encoded``); the error raised is that of the first bad file in input order, as in a loop.
Few files (below ``POOL_MIN_FILES``) are done in the process itself: forking costs more than it saves there.

The pool starts as soon as the files are named (``start_import``), before the caller loads anything else: this
module and what a worker runs import numpy and pyarrow but not pandas (nor the store), so the workers are forked
from a small process and parse while the parent goes on importing pandas (about 0.6 s of the command) and
opening the store. ``import_csvs`` is both steps at once.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import collector
from engine.errors import ConfigError, DataError, EvbtError, MissingDataError
from engine.market.symbols import listing
from engine.prices.csv_import import read_yahoo_bars, symbol_from_path
from engine.prices.writes import Encoded, encode_checked

if TYPE_CHECKING:
    from engine.prices.store import PriceStore  # imports pandas: not before the pool is forked

POOL_WORKERS = 2
POOL_MIN_FILES = 24
CHUNK = 8  # files per task: few round trips, results still stream in order
_ERRORS: dict[str, type[EvbtError]] = {cls.__name__: cls for cls in (ConfigError, MissingDataError, DataError)}


@dataclass(frozen=True)
class ImportedFile:
    """One imported CSV: the symbol it was stored under and the file it came from."""

    symbol: str
    path: Path


def _encode(path: Path, symbol: str | None) -> Encoded:
    item = read_yahoo_bars(path, symbol)  # checked arrays, no frame
    return encode_checked(item.symbol, item.dates, item.cols, "csv", item.adjustment)


def _encode_reported(job: tuple[Path, str | None]) -> Encoded | tuple[str, str]:
    """Worker side of ``_encode``: an evbt error comes back as (class name, message), raised again in the parent
    (exceptions cross the process boundary as plain text, never as pickled exception state)."""
    try:
        return _encode(*job)
    except EvbtError as exc:
        return type(exc).__name__ if type(exc).__name__ in _ERRORS else "DataError", str(exc)


def _worker_init(parent: int) -> None:
    from engine.sweeps.safety import die_with_parent  # same rule as sweep workers: die with the parent

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle (it stops the pool)
    die_with_parent(parent)


def _pooled(jobs: list[tuple[Path, str | None]], workers: int) -> Iterator[Encoded]:
    """The encoded files in input order; the workers are forked and every job submitted now (not on the first
    ``next``), and the pool is shut down when the iterator ends, fails or is closed."""
    ctx = mp.get_context("fork")  # the children inherit the imported modules and the venue tables
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(),))
    frozen = collector.freeze()  # the collector leaves the pages shared with the workers alone
    try:
        results = pool.map(_encode_reported, jobs, chunksize=CHUNK)  # submits every chunk: forks the workers
    except BaseException:
        _stop(pool, frozen)
        raise

    def collect() -> Iterator[Encoded]:
        try:
            for result in results:
                if isinstance(result, tuple):
                    raise _ERRORS[result[0]](result[1])
                yield result
        finally:
            _stop(pool, frozen)

    return collect()


def _stop(pool: ProcessPoolExecutor, frozen: bool) -> None:
    pool.shutdown(wait=True, cancel_futures=True)
    if frozen:
        collector.thaw()


@dataclass
class ImportJob:
    """CSV files being parsed and encoded (in a pool already started, for many files), not yet stored."""

    paths: list[Path]
    encoded: Iterator[Encoded]

    def write(self, store: PriceStore) -> Iterator[tuple[ImportedFile, dict[str, Any]]]:
        """Store every file once all checked out (``PriceStore.write_encoded``); yields, in input order and once
        every file is stored, (the file, the metadata written)."""
        try:
            metas = store.write_encoded(self.encoded)
        finally:
            close = getattr(self.encoded, "close", None)
            if close is not None:
                close()  # a pool whose results were not all taken is shut down
        for path, meta in zip(self.paths, metas, strict=True):
            yield ImportedFile(meta["symbol"], path), meta


def start_import(files: Sequence[Path], symbol: str | None = None, workers: int | None = None) -> ImportJob:
    """Check the file names (each must name a symbol, or ``symbol`` overrides that of a single file) and start
    parsing: in a pool of forked workers for ``POOL_MIN_FILES`` files or more, else in this process as the
    files are stored."""
    paths = [Path(p) for p in files]
    for path in paths:  # a name that is no symbol is refused before any work (also warms the venue tables)
        listing(symbol_from_path(path) if symbol is None else symbol)
    workers = min(POOL_WORKERS, os.cpu_count() or 1) if workers is None else workers
    jobs = [(path, symbol) for path in paths]
    if workers > 1 and len(jobs) >= POOL_MIN_FILES:
        return ImportJob(paths, _pooled(jobs, workers))
    return ImportJob(paths, (_encode(*job) for job in jobs))


def import_csvs(store: PriceStore, files: Sequence[Path], symbol: str | None = None,
                workers: int | None = None) -> Iterator[tuple[ImportedFile, dict[str, Any]]]:
    """Import the files (``symbol`` overrides the name-derived symbol of a single file); yields, in input order
    and once every file is stored, (the file, the metadata written)."""
    yield from start_import(files, symbol, workers).write(store)
