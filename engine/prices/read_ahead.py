"""Checked reads of many cache files on threads, ahead of the loads that use them (``PriceStore.preload``).

A sweep or run loads every symbol of its universe one after the other; most of a checked read is parquet
decoding, hashing and numpy work that releases the GIL, so a few threads read the files meanwhile. Each read
is the full checked read (``cache_file.decode_bytes``: every check, the same errors) and remembers the
identity of the version it read (device, inode, size, mtime, ctime: the cache replaces files by renaming new
ones over them). The store serves a read-ahead result once, to the first read of that symbol, and only if the
file still has that identity; otherwise (replaced or removed meanwhile) it reads the file again. A damaged file
read ahead raises its error when (and only when) that symbol is read, as a read in a loop would.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from engine.prices.cache_file import CacheFileError, Identity, decode_bytes, identity, read_bytes

READ_THREADS = 2  # 2 cores: the reads' Python parts take turns on the GIL, so more threads gain nothing


@dataclass(frozen=True)
class AheadRead:
    """One file read ahead: the version's identity and its checked (metadata, frame), or the check's error."""

    identity: Identity
    meta: dict[str, Any] | None
    frame: pd.DataFrame | None
    error: CacheFileError | None

    def current(self, path: Path) -> bool:
        """Whether ``path`` still is the version that was read."""
        try:
            return identity(os.stat(path)) == self.identity
        except OSError:
            return False

    def result(self) -> tuple[dict[str, Any], pd.DataFrame, Identity]:
        """(metadata, frame, identity) as ``cache_file.read_file_version`` gives them, or the read's error."""
        if self.error is not None:
            raise CacheFileError(str(self.error), self.error.problem)
        assert self.meta is not None and self.frame is not None
        return self.meta, self.frame, self.identity


def _read(path: Path, symbol: str) -> AheadRead | None:
    try:
        data, ident = read_bytes(path)
    except FileNotFoundError:
        return None  # not cached: the load says so itself
    except CacheFileError:
        return None  # unreadable: the load reads again and raises
    try:
        meta, frame = decode_bytes(data, path, symbol)
    except CacheFileError as exc:
        return AheadRead(ident, None, None, exc)
    return AheadRead(ident, meta, frame, None)


def read_ahead(symbols: Iterable[str], path_for: Callable[[str], Path],
               threads: int = READ_THREADS) -> dict[str, AheadRead]:
    """Checked reads of the (normalised) symbols' files, on up to ``threads`` threads."""
    syms = list(dict.fromkeys(symbols))
    paths = [path_for(s) for s in syms]
    if threads <= 1 or len(syms) <= 1:
        results = [_read(p, s) for p, s in zip(paths, syms, strict=True)]
    else:
        with ThreadPoolExecutor(min(threads, len(syms)), thread_name_prefix="evbt-read") as pool:
            results = list(pool.map(_read, paths, syms))
    return {s: r for s, r in zip(syms, results, strict=True) if r is not None}
