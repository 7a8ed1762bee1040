"""Checked reads of many cache files in a forked reader process, while this process does other work.

``PriceStore.preload(symbols, background=True)`` (a sweep, before it parses its event file). Threads do not
overlap a read with pure-Python work: most of a checked read holds the GIL (parquet's Python wrapper, the
metadata, several dozen small numpy calls), and a thread that released it waits up to the switch interval to
get it back, so 500 reads on threads beside a 0.4 s event parse took longer than both one after the other. A
second process runs truly beside this one.

The child (forked, so it has every module and no state to rebuild) makes for each file, in order, exactly the
checked read of ``engine.prices.read_ahead``: ``cache_file.read_bytes`` (one open, fstat and read: the
version's identity) and ``cache_file.decode_bytes_columns`` (every check, the same errors). It writes the
checked arrays of each good file into an anonymous memory file (``memfd``) made by the parent before the fork,
in the layout pandas keeps (dates int64, the float columns as a (columns, rows) C-ordered block, stale bytes),
sends a small index (symbol, identity, metadata or the check's error, rows, offset) through a pipe, and exits
(``os._exit``: no inherited exit handler runs). The parent maps the memory file privately (copy-on-write: the
arrays are writeable, like those of a read in this process) and builds each frame around views of it, no copy;
the frames equal those of a read here (tests/test_prices_reads.py).

Sharing the rest: when the parent comes for the reads and the child is not done, the parent sets a limit in a
shared control block (the child checks it before each file: it reads the files before the limit, all of them)
and reads the files from the limit on itself, on threads: two cores work until the end. A file the child read
past the limit (it had started it) is read again by the parent; only the parent's read of it is used.

Anything unusual falls back to reading in this process: a file the child could not read (absent, unreadable)
is left out, as a thread's read leaves it out (its load reads again and says why); a child that dies, sends
a broken index or is not done within ``CHILD_WAIT_S`` (+ ``CHILD_WAIT_PER_FILE_S`` a file) of the parent coming
for the reads yields nothing (it is killed; this process reads its share). The child dies with this process
(``die_with_parent``). A reader never collected (an error before the loads) is killed and reaped when it is
closed or garbage-collected.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import select
import signal
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine import collector
from engine.prices.cache_file import CacheFileError, checked_frame, decode_bytes_columns, read_bytes
from engine.prices.read_ahead import AheadRead, read_ahead
from engine.prices.validate import INDEX_UNIT
from engine.sweeps.safety import die_with_parent

MIN_FILES = 32  # below this a fork (~10 ms) costs more than the overlap saves: threads then
# How long the parent waits for the child's index once it comes for the reads: a child that is not done by then
# (a lock inherited held across the fork, a stalled disk) is killed and its share read here, never waited on.
CHILD_WAIT_S = 30.0
CHILD_WAIT_PER_FILE_S = 0.05
STARTED, LIMIT = 0, 1  # the control block: the file the child is on, the file it must not start
_FLOATS = 6  # open, high, low, close, adj_close, volume
IndexRow = tuple[str, Any, Any, Any, int, int]  # symbol, identity, metadata, (message, problem), rows, offset


def supported() -> bool:
    return hasattr(os, "fork") and hasattr(os, "memfd_create")


def _child(syms: Sequence[str], paths: Sequence[Path], memfd: int, out: int, control: np.ndarray) -> None:
    """The reader process: the checked read of each file before ``control[LIMIT]``, in order (``control[STARTED]``
    says which it is on), arrays into ``memfd``, the index into ``out``."""
    offset = 0
    index: list[IndexRow] = []
    for i, (sym, path) in enumerate(zip(syms, paths, strict=True)):
        if i >= control[LIMIT]:
            break
        control[STARTED] = i
        try:
            data, ident = read_bytes(path)
        except (OSError, CacheFileError):
            continue  # absent or unreadable: the load reads again and says so
        try:
            meta, dates, block, stale = decode_bytes_columns(data, path, sym)
        except CacheFileError as exc:
            index.append((sym, ident, None, (str(exc), exc.problem), 0, 0))
            continue
        rows = len(dates)
        for part in (dates.view("int64"), block.T, stale.view(np.uint8)):
            _write_all(memfd, np.ascontiguousarray(part).data.cast("B"))  # memory: never blocks
        index.append((sym, ident, meta, None, rows, offset))
        offset += _padded(rows * (8 + 8 * _FLOATS + 1))
        os.lseek(memfd, offset, os.SEEK_SET)
    _write_all(out, memoryview(json.dumps(index).encode()))  # plain data: no pickle crosses the pipe


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view):]


def _thaw(frozen: list[bool]) -> None:
    if frozen[0]:
        frozen[0] = False
        collector.thaw()


def _padded(n: int) -> int:
    return (n + 7) // 8 * 8


def _reap(pid: int, fds: list[int], frozen: list[bool]) -> None:
    """Stop and reap a reader never collected (idempotent: ``fds`` is emptied), and let the collector visit the
    objects frozen for it again."""
    _thaw(frozen)
    while fds:
        with contextlib.suppress(OSError):
            os.close(fds.pop())
    _kill(pid)


def _kill(pid: int) -> None:
    """Kill and reap the reader process (gone already: nothing to do)."""
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, 0)


class ForkedReads:
    """A reader process started on some symbols' files; ``collect`` shares what is left, waits and gives
    the reads."""

    def __init__(self, syms: Sequence[str], path_for: Callable[[str], Path]) -> None:
        self.symbols = list(dict.fromkeys(syms))
        self._path_for = path_for
        paths = [path_for(s) for s in self.symbols]
        self._shared = mmap.mmap(-1, 16)  # anonymous and shared with the child: STARTED, LIMIT
        self._control = np.frombuffer(self._shared, dtype=np.int64, count=2)
        self._control[:] = (-1, len(self.symbols))
        memfd = os.memfd_create("evbt-read-ahead", os.MFD_CLOEXEC)
        read_end, write_end = os.pipe()
        parent = os.getpid()
        # the collector's passes write into every object they visit: frozen, the objects of now are not visited
        # until the reads are collected, so neither process copies the other's pages (about 5,000 page copies and
        # 0.1 s of the parent's CPU during a 20,000-event parse); not if a caller froze them already
        self._frozen = [collector.freeze()]
        try:
            pid = os.fork()
        except OSError:
            _thaw(self._frozen)
            for fd in (memfd, read_end, write_end):
                os.close(fd)
            raise
        if pid == 0:  # pragma: no cover - the child process (coverage does not follow it)
            code = 0
            try:
                os.close(read_end)
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
                die_with_parent(parent)
                _child(self.symbols, paths, memfd, write_end, self._control)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(write_end)
        self._pid, self._memfd, self._read_end = pid, memfd, read_end
        self._fds = [memfd, read_end]
        self._finalizer = weakref.finalize(self, _reap, pid, self._fds, self._frozen)

    def close(self) -> None:
        """Stop the reader without using its reads (nothing collected)."""
        self._finalizer()

    def collect(self) -> dict[str, AheadRead]:
        """The reads: the child's before the limit set now (half of what it has not started), this process's
        (on threads) from there on, each as a thread's read gives it; this process reads everything if the
        child failed."""
        started = int(self._control[STARTED])
        limit = started + 1 + (len(self.symbols) - started - 1) // 2
        self._control[LIMIT] = limit
        own = read_ahead(self.symbols[limit:], self._path_for)
        theirs = self._child_reads()
        _thaw(self._frozen)
        if theirs is None:
            return {**read_ahead(self.symbols[:limit], self._path_for), **own}
        return {**{s: r for s, r in theirs.items() if s not in own}, **own}

    def _child_reads(self) -> dict[str, AheadRead] | None:
        try:
            chunks = []
            deadline = time.monotonic() + CHILD_WAIT_S + CHILD_WAIT_PER_FILE_S * len(self.symbols)
            poller = select.poll()
            poller.register(self._read_end, select.POLLIN | select.POLLHUP)
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not poller.poll(min(left, 3600.0) * 1000):
                    _kill(self._pid)
                    return None  # stuck: every file of its share is read here
                if not (chunk := os.read(self._read_end, 1 << 20)):
                    break
                chunks.append(chunk)
            _pid, status = os.waitpid(self._pid, 0)
            if status != 0:
                return None
            index: list[IndexRow] = json.loads(b"".join(chunks))
            size = os.fstat(self._memfd).st_size
            shared = mmap.mmap(self._memfd, size, flags=mmap.MAP_PRIVATE,
                               prot=mmap.PROT_READ | mmap.PROT_WRITE) if size else None
        except (OSError, ValueError):
            return None
        finally:
            self._fds.clear()
            for fd in (self._memfd, self._read_end):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._finalizer.detach()
        return {row[0]: _ahead_read(row, shared) for row in index}


def _ahead_read(row: IndexRow, shared: mmap.mmap | None) -> AheadRead:
    _sym, ident_list, meta, error, rows, offset = row
    ident = tuple(ident_list)  # a JSON list: the identity is compared as a tuple
    if error is not None or shared is None:
        message, problem = error if error is not None else ("no data", "no data")
        return AheadRead(ident, None, None, CacheFileError(message, problem))
    stamps = np.frombuffer(shared, dtype=np.int64, count=rows, offset=offset)
    floats = np.frombuffer(shared, dtype=np.float64, count=rows * _FLOATS, offset=offset + 8 * rows)
    stale = np.frombuffer(shared, dtype=np.bool_, count=rows, offset=offset + 8 * rows * (1 + _FLOATS))
    block = floats.reshape(_FLOATS, rows).T  # rows x columns, Fortran-ordered: the layout build_frame keeps
    return AheadRead(ident, meta, checked_frame(stamps.view(f"datetime64[{INDEX_UNIT}]"), block, stale), None)
