"""Installed distributions' versions, without importing ``importlib.metadata`` on the common path.

``importlib.metadata`` costs every process that imports it about 50 ms (it loads the ``email`` package and
``zipfile``) and each lookup a few more; evbt asks for versions in every command (``--version``, the schedule
cache key, every saved run's and sweep's manifest). ``version`` finds the same distribution that
``importlib.metadata.version`` finds: the first ``*.dist-info`` / ``*.egg-info`` entry of that normalised name in
``sys.path`` order (a folder's entries in directory order, as its ``Lookup`` indexes them), and reads the
``Version`` header of its ``METADATA`` (or ``PKG-INFO``). Anything else (a zip archive on the path, another
finder that lists distributions, an entry it cannot read, no match) is answered by ``importlib.metadata``
itself, so its answers stay the reference (tests/test_versions.py compares
every installed distribution).
"""

from __future__ import annotations

import functools
import os
import re
import sys
from pathlib import Path

_SEPARATORS = re.compile(r"[-_.]+")
_INFO_SUFFIXES = (".dist-info", ".egg-info")


def _normalise(name: str) -> str:
    return _SEPARATORS.sub("-", name).lower().replace("-", "_")


def version(name: str) -> str | None:
    """The installed version of distribution ``name``; None if it is not installed or its metadata has no
    ``Version`` header (importlib.metadata itself raises KeyError there on some Python versions)."""
    found = _fast_version(name)
    if found is not None:
        return found
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as metadata_version

    try:
        return metadata_version(name)
    except (PackageNotFoundError, KeyError):
        return None


def _fast_version(name: str) -> str | None:
    if not _plain_finders():
        return None
    wanted = _normalise(name)
    for entry in sys.path:
        folder = entry or "."
        if not isinstance(entry, str) or os.path.isfile(folder):
            return None  # a zip archive on the path: importlib.metadata reads those
        try:
            mtime = os.stat(folder).st_mtime_ns
        except OSError:
            continue  # absent or unreadable: importlib.metadata finds nothing there either
        found = _index(folder, mtime).get(wanted)
        if found is not None:
            return _read_version(Path(folder) / found) if found else None
    return None


@functools.lru_cache(maxsize=64)
def _index(folder: str, mtime: int) -> dict[str, str]:
    """Normalised distribution name -> its first info entry in the folder ("" for an egg: importlib.metadata's
    legacy lookup answers those); rebuilt when the folder changes (its mtime, as importlib.metadata does)."""
    out: dict[str, str] = {}
    try:
        children = os.listdir(folder)
    except OSError:
        return out
    for child in children:
        low = child.lower()
        if low.endswith(_INFO_SUFFIXES):
            out.setdefault(_normalise(low.rpartition(".")[0].partition("-")[0]), child)
        elif low.endswith(".egg"):
            out.setdefault(low.partition("-")[0].replace("-", "_"), "")
    return out


def _read_version(info: Path) -> str | None:
    """The ``Version`` header of a distribution's metadata (None: let importlib.metadata answer)."""
    candidates = [info / "METADATA", info / "PKG-INFO"] if info.is_dir() else [info]
    for path in candidates:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if not text:
            continue
        for line in text.splitlines():
            if not line.strip():
                break  # the end of the headers
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() == "version":
                return value.strip() or None
        return None
    return None


@functools.cache
def _plain_finders_of(finders: tuple[object, ...]) -> bool:
    from importlib.machinery import PathFinder

    return all(f is PathFinder or not hasattr(f, "find_distributions") for f in finders)


def _plain_finders() -> bool:
    """Whether only the standard path finder lists distributions (else importlib.metadata asks every finder)."""
    return _plain_finders_of(tuple(sys.meta_path))
