"""The on-disk form of a built exchange schedule (``<cache>/.calendars/*.npz``), never trusted on read.

A schedule file holds three arrays (session dates, open and close instants as datetime64[ns]) and a
``digest``: sha256 over the three arrays' bytes. ``unpack`` returns None (the caller rebuilds the schedule
from exchange-calendars and rewrites the file) when the file is damaged (not a zip, truncated, wrong keys,
``allow_pickle`` never enabled), lacks the digest (written by an older evbt), its digest does not match, or
its arrays break a schedule's shape (equal lengths, sessions strictly ascending midnights, each open before
its close, opens ascending). A file altered *and* re-digested by hand passes: the digest guards against damage
and careless edits, not against someone who can write the cache folder (they could edit the prices too).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

_KEYS = ("sessions", "opens", "closes")
_DAY_NS = 86_400 * 10**9


def _digest(arrays: list[np.ndarray]) -> np.ndarray:
    h = hashlib.sha256()
    for name, values in zip(_KEYS, arrays, strict=True):
        h.update(name.encode())
        h.update(np.ascontiguousarray(values.astype("datetime64[ns]")).view("int64").tobytes())
    return np.frombuffer(h.digest(), dtype=np.uint8)


def pack(sessions: np.ndarray, opens: np.ndarray, closes: np.ndarray) -> bytes:
    """npz bytes of a schedule with its digest."""
    arrays = [np.asarray(a).astype("datetime64[ns]") for a in (sessions, opens, closes)]
    buffer = io.BytesIO()
    np.savez(buffer, **dict(zip(_KEYS, arrays, strict=True)), digest=_digest(arrays))  # type: ignore[arg-type]
    return buffer.getvalue()


def _plausible(sessions: np.ndarray, opens: np.ndarray, closes: np.ndarray) -> bool:
    if not (len(sessions) == len(opens) == len(closes)) or len(sessions) == 0:
        return False
    s, o, c = (a.view("int64") for a in (sessions, opens, closes))
    return bool((np.diff(s) > 0).all() and (s % _DAY_NS == 0).all() and (o < c).all() and (np.diff(o) > 0).all())


def unpack(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(sessions, opens, closes) as datetime64[ns], or None if the file is absent, damaged or altered."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = [data[k] for k in _KEYS]
            digest = data["digest"] if "digest" in data.files else None
    except Exception:  # BadZipFile, EOFError, OSError, KeyError, ValueError...: rebuild
        return None
    if digest is None or any(a.dtype != np.dtype("datetime64[ns]") for a in arrays):
        return None
    if not np.array_equal(digest, _digest(arrays)) or not _plausible(*arrays):
        return None
    return arrays[0], arrays[1], arrays[2]
