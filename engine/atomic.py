"""Atomic file writes: a reader sees the old file or the new one, never a torn one.

Protocol: create a temp file in the destination folder (same file system, so ``os.replace`` is atomic),
write and fsync it, ``os.replace`` it over the target, then fsync the folder so the rename itself survives a
power cut. Any ``OSError`` (read-only folder, full disk, permissions) becomes a ``DataError`` and the temp
file is removed, so no partial file is ever left under the final name.

Hostile folders: the temp name is ``.<name>.<random>.<pid>.tmp`` (unpredictable; the pid lets cleanup code
tell a dead writer's leftover from a live one) and it is created with ``O_CREAT | O_EXCL | O_NOFOLLOW``, so a
file or symlink planted there is never opened, truncated or followed (the write retries under a new name).
A symlink planted at the destination is replaced by the new file; its target is never touched. Rewriting an
existing regular file keeps its permission bits (a 0600 file stays 0600).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import time
from pathlib import Path

from engine.errors import DataError

# Test hook: seconds to sleep after the temp file is written and before it replaces the target, so a
# crash test can SIGKILL the writer at the worst moment. Never set in normal use.
WRITE_DELAY_ENV = "EVBT_TEST_WRITE_DELAY"
NEW_FILE_MODE = 0o644  # before the umask
_ATTEMPTS = 16
_TEMP_RE = re.compile(r"^\..+\.(\d+)\.tmp$")


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


def temp_name(name: str) -> str:
    """A fresh temp file name for destination ``name``: hidden, random, ending in ``.<pid>.tmp``."""
    return f".{name}.{secrets.token_hex(8)}.{os.getpid()}.tmp"


def temp_owner(name: str) -> int | None:
    """The pid of the writer that created temp file ``name`` (None if it is not an evbt temp name)."""
    match = _TEMP_RE.match(name)
    return int(match.group(1)) if match else None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (ours included): temp files of live writers are never cleaned up."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_orphan_temps(folder: Path) -> list[Path]:
    """Delete temp files in ``folder`` whose writer is no longer running; return what was removed.

    Only names this module creates (``.<name>...<pid>.tmp``, regular files, not symlinks) are considered.
    """
    removed: list[Path] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in sorted(names):
        pid = temp_owner(name)
        if pid is None or pid_alive(pid):
            continue
        path = Path(folder) / name
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(path).st_mode):
                path.unlink()
                removed.append(path)
    return removed


def _existing_mode(path: Path) -> int | None:
    """Permission bits of ``path`` if it is a regular file (not a symlink), else None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else None


def _create_exclusive(folder: Path, name: str) -> tuple[Path, int]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_ATTEMPTS):
        tmp = folder / temp_name(name)
        try:
            return tmp, os.open(tmp, flags, NEW_FILE_MODE)
        except FileExistsError:  # something (maybe a planted symlink) holds this name: never touch it
            continue
    raise OSError(errno.EEXIST, f"no free temp file name after {_ATTEMPTS} attempts")


def _write_error(path: Path, exc: OSError) -> DataError:
    reason = exc.strerror or str(exc)
    return DataError(f"cannot write {path}: {reason} (the previous file, if any, is unchanged)")


def stage_bytes(path: Path, data: bytes) -> Path:
    """The first half of an atomic write: ``data`` in a fresh temp file beside ``path``, written and fsynced
    (mode of the old file kept); returns the temp path for ``commit_staged``. DataError (nothing left) on failure."""
    path = Path(path)
    folder = path.parent
    tmp: Path | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        mode = _existing_mode(path)
        tmp, fd = _create_exclusive(folder, path.name)
        try:
            if mode is not None:
                os.fchmod(fd, mode)
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise _write_error(path, exc) from exc
    return tmp


def commit_staged(tmp: Path, path: Path, *, sync_dir: bool = True) -> None:
    """The second half: ``os.replace`` the staged temp over ``path``, then fsync the folder (a batch of renames
    into one folder may pass ``sync_dir=False`` and call ``sync_folder`` once after the last). DataError (temp
    removed, previous file unchanged) on failure."""
    path = Path(path)
    try:
        _test_delay()
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise _write_error(path, exc) from exc
    if sync_dir:
        _fsync_dir(path.parent)


def sync_folder(folder: Path) -> None:
    """fsync a folder, so the renames into it survive a power cut (best effort where folders cannot be opened)."""
    _fsync_dir(Path(folder))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically; raise DataError (nothing left behind) on failure."""
    commit_staged(stage_bytes(path, data), path)
