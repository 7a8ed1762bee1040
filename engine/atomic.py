"""Atomic file writes: a reader sees the old file or the new one, never a torn one.

Protocol: write to a temp file in the destination folder (same file system, so ``os.replace`` is atomic),
fsync the file, ``os.replace`` it over the target, then fsync the folder so the rename itself survives a
power cut. Any ``OSError`` (read-only folder, full disk, permissions) becomes a ``DataError`` and the temp
file is removed, so no partial file is ever left under the final name.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from engine.errors import DataError

# Test hook: seconds to sleep after the temp file is written and before it replaces the target, so a
# crash test can SIGKILL the writer at the worst moment. Never set in normal use.
WRITE_DELAY_ENV = "EVBT_TEST_WRITE_DELAY"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms/file systems cannot open a directory; the rename is still done
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _test_delay() -> None:
    delay = os.environ.get(WRITE_DELAY_ENV)
    if delay:
        time.sleep(float(delay))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically; raise DataError (nothing left behind) on failure."""
    path = Path(path)
    folder = path.parent
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        _test_delay()
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        reason = exc.strerror or str(exc)
        raise DataError(f"cannot write {path}: {reason} (the previous file, if any, is unchanged)") from exc
    _fsync_dir(folder)
