"""Content-addressed data versions: the price files saved runs refer to, kept so a rerun is exact.

``<cache>/.snapshots/<content_hash>.parquet`` is a complete cache file (bars and metadata) whose content hash
is its name. A snapshot is a HARD LINK to the cache file when it is taken, so a version that is still the
cache's current one costs no disk space; the cache replaces files atomically (new inode), so the old version
lives on in its snapshot alone when ``data fetch``/``import`` changes a symbol. When a write brings back
content a snapshot already holds (a re-import of the same CSV), the snapshot is re-linked to the new file
(``adopt``) and again costs nothing. Where hard links are not possible the file is copied.

``pinned`` serves a set of versions as a read-only, offline ``PriceStore`` (a temporary folder of links), which
is what ``evbt rerun`` runs on. ``gc`` removes the versions no saved run or sweep refers to.

``keep`` and ``gc`` exclude each other with ``flock`` on ``<cache>/.locks/snapshots.lock`` (keep shared, gc
exclusive, from reading the runs' references to the last removal): without it a gc that read the references
before a run saved its manifest could remove the version that run kept a moment later.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from engine.atomic import pid_alive
from engine.errors import EvbtWarning
from engine.prices.cache_file import Identity, identity
from engine.prices.store import META_KEY, PriceStore
from engine.prices.writes import flock_within

try:
    import fcntl
except ImportError:  # pragma: no cover - not Linux/macOS: keep and gc are not coordinated
    fcntl = None  # type: ignore[assignment]

SNAPSHOT_DIR = ".snapshots"
LOCK_NAME = "snapshots.lock"  # in <cache>/.locks/, beside the price files' locks
GC_LOCK_TIMEOUT = 60.0  # seconds gc waits for runs keeping their versions
REPORT_META = ("source", "first_date", "last_date", "rows", "adjustment", "content_hash", "symbol")
_HASH_CHARS = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class GcResult:
    removed: int
    freed_bytes: int
    kept: int


def _meta(path: Path) -> dict[str, Any] | None:
    try:
        raw = (pq.read_schema(path).metadata or {}).get(META_KEY)
        return json.loads(raw) if raw else None
    except (OSError, ValueError, Exception):  # a damaged file is not a usable snapshot
        return None




def _link_or_copy(src: Path, dst: Path) -> None:
    """``dst`` = ``src`` as a hard link (free) or a copy; atomic (temp name, then replace)."""
    from engine.atomic import temp_name

    tmp = dst.parent / temp_name(dst.name)  # random: a symlink planted at a guessable name is never followed
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _is_version(path: Path, ident: Identity, ctime: bool) -> bool:
    """Whether ``path`` is the file version ``ident`` (cache_file.identity) names. ``ctime=False`` for a new hard
    link to it (linking changes the inode's ctime, nothing else): same device, inode, size and mtime."""
    try:
        now = identity(os.stat(path))
    except OSError:
        return False
    return now == ident if ctime else now[:4] == ident[:4]


def _same_inode(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def adopt(cache_root: Path, path: Path, meta: Mapping[str, Any]) -> None:
    """Hook after the cache wrote ``path``: a snapshot holding the same version is re-linked to it (free)."""
    snap = Path(cache_root) / SNAPSHOT_DIR / f"{meta.get('content_hash')}.parquet"
    if not snap.is_file() or _same_inode(snap, path):
        return
    old = _meta(snap)
    if old is None or any(old.get(k) != meta.get(k) for k in REPORT_META):
        return  # same bars, other labels (e.g. source): keep the version the runs saw
    with contextlib.suppress(OSError):
        _link_or_copy(path, snap)


class SnapshotStore:
    """The snapshots of one price cache."""

    def __init__(self, store: PriceStore) -> None:
        self.store = store
        self.root = store.root / SNAPSHOT_DIR

    @classmethod
    def for_store(cls, store: PriceStore) -> SnapshotStore:
        return cls(store)

    def path(self, content_hash: str) -> Path:
        if not content_hash or not set(content_hash) <= _HASH_CHARS:
            raise ValueError(f"not a content hash: {content_hash!r}")
        return self.root / f"{content_hash}.parquet"

    def has(self, content_hash: str) -> bool:
        try:
            return self.path(content_hash).is_file()
        except ValueError:
            return False

    @contextlib.contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        """``flock`` on the snapshot lock: shared (keep: runs keep concurrently) or exclusive (gc, which waits at
        most GC_LOCK_TIMEOUT). A cache where the lock file cannot be made (read-only) is not locked: nothing can be
        kept there either."""
        lock_dir = self.store.root / ".locks"
        try:
            if fcntl is None:  # pragma: no cover
                raise OSError("no flock")
            lock_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC,
                         0o644)
        except OSError:
            yield
            return
        try:
            if exclusive:
                flock_within(fd, GC_LOCK_TIMEOUT, f"data versions are being kept by another evbt process "
                                                  f"({lock_dir / LOCK_NAME}); nothing was freed: try again")
            else:
                fcntl.flock(fd, fcntl.LOCK_SH)  # a gc holds it for moments
            yield
        finally:
            os.close(fd)

    def keep(self, fingerprints: Mapping[str, str]) -> list[str]:
        """Snapshot the current cache file of each symbol whose content is the given hash; returns the symbols
        that could not be kept (the file changed meanwhile, or the folder is not writable), with a warning."""
        with self._locked(exclusive=False):
            return self._keep(fingerprints)

    def _keep(self, fingerprints: Mapping[str, str]) -> list[str]:
        lost: list[str] = []
        linked = self._linked_versions()
        for symbol, digest in sorted(fingerprints.items()):
            if self._kept_as_read(symbol, digest, linked):
                continue
            try:
                target = self.path(digest)
            except ValueError:
                lost.append(symbol)
                continue
            source = self.store.path_for(symbol)
            served = self._served(symbol, digest)
            if target.is_file():
                meta = served[0] if served and _is_version(source, served[1], ctime=True) else _meta(source)
                if meta is not None and meta.get("content_hash") == digest:
                    adopt(self.store.root, source, meta)
                continue
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                _link_or_copy(source, target)
            except OSError:
                lost.append(symbol)
                continue
            if served and _is_version(target, served[1], ctime=False):  # a link to the very version read
                continue
            meta = _meta(target)
            if meta is None or meta.get("content_hash") != digest:  # replaced since the run read it
                with contextlib.suppress(OSError):
                    target.unlink()
                lost.append(symbol)
        if lost:
            warnings.warn(f"data version not kept for {', '.join(lost)} (the cache changed during the run or "
                          f"{self.root} is not writable): `evbt rerun` will use the current cache for them",
                          EvbtWarning, stacklevel=2)
        return lost

    def _linked_versions(self) -> dict[str, tuple[int, int]]:
        """(device, inode) of each regular file in the snapshot folder, by name: one listing instead of a few
        ``stat`` calls a symbol (the entries' inode numbers come with the listing)."""
        try:
            device = os.stat(self.root).st_dev
            with os.scandir(self.root) as entries:
                return {e.name: (device, e.inode()) for e in entries
                        if e.name.endswith(".parquet") and e.is_file(follow_symlinks=False)}
        except OSError:
            return {}

    def _kept_as_read(self, symbol: str, digest: str, linked: Mapping[str, tuple[int, int]]) -> bool:
        """Whether the snapshot of ``digest`` is already a hard link to the very file version the store read for
        ``symbol``, and the cache still holds that version: then ``keep`` has nothing to do for it (the snapshot
        exists, and ``adopt`` would find it linked to the cache file). Any other case takes the full path."""
        if not digest or not _HASH_CHARS.issuperset(digest):
            return False
        at = linked.get(f"{digest}.parquet")
        served = self._served(symbol, digest) if at is not None else None
        if served is None or at != served[1][:2]:
            return False
        return _is_version(self.store.path_for(symbol), served[1], ctime=True)

    def _served(self, symbol: str, digest: str) -> tuple[dict[str, Any], Identity] | None:
        """(metadata, identity) of the version the store read for ``symbol`` if its content hash is ``digest``."""
        ident = self.store.served_identity(symbol)
        meta = self.store.read_meta(symbol) if ident is not None else None
        return (meta, ident) if meta is not None and meta.get("content_hash") == digest else None  # type: ignore[return-value]

    @contextlib.contextmanager
    def pinned(self, fingerprints: Mapping[str, str]) -> Iterator[tuple[PriceStore, list[str]]]:
        """An offline PriceStore serving exactly these versions, and the symbols without a snapshot.

        Exchange schedules and analyst ratings are shared with the real cache (they are not price data)."""
        try:  # beside the snapshots (hard links); a read-only cache: the system temp folder (copies)
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".pin-{os.getpid()}-", dir=self.root))
        except OSError:
            tmp = Path(tempfile.mkdtemp(prefix=f".pin-{os.getpid()}-"))
        missing: list[str] = []
        try:
            pinned = PriceStore(tmp, offline=True)
            for symbol, digest in sorted(fingerprints.items()):
                if not self.has(digest):
                    missing.append(symbol)
                    continue
                _link_or_copy(self.path(digest), pinned.path_for(symbol))
            for name in (".calendars", "ratings"):
                real = self.store.root / name
                if real.exists():
                    (tmp / name).symlink_to(real.resolve(), target_is_directory=True)
            yield pinned, missing
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def versions(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.glob("*.parquet") if not p.name.startswith("."))

    def disk_cost(self) -> int:
        """Bytes held only by snapshots (files still linked from the cache cost nothing)."""
        total = 0
        for path in self.versions():
            st = path.stat()
            if st.st_nlink <= 1:
                total += st.st_size
        return total

    def gc(self, referenced: Iterable[str] | Callable[[], Iterable[str]]) -> GcResult:
        """Remove every version no saved run or sweep refers to (and leftovers of killed processes).

        ``referenced`` may be a function reading the references: it is then called under the lock, so no run can
        keep a version between the reading and the removals."""
        with self._locked(exclusive=True):
            return self._gc(set(referenced() if callable(referenced) else referenced))

    def _gc(self, keep: set[str]) -> GcResult:
        removed = freed = 0
        for path in self.versions():
            if path.stem in keep:
                continue
            st = path.stat()
            freed += st.st_size if st.st_nlink <= 1 else 0
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
        for tmp in self.root.glob(".*") if self.root.is_dir() else []:
            pid = tmp.name.split("-")[1] if tmp.name.startswith(".pin-") else tmp.name.rsplit(".", 2)[-2]
            if pid.isdigit() and not pid_alive(int(pid)):  # leftovers of killed processes only
                with contextlib.suppress(OSError):
                    shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
        return GcResult(removed, freed, len(self.versions()))
