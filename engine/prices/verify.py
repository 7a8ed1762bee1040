"""``evbt data ls`` / ``evbt data verify`` over a price cache folder: never crash on a bad file.

Every file gets the same checks as a read (``engine.prices.cache_file.decode``). Stray ``*.parquet`` files that
no symbol maps to (``BABA copy.parquet``) are named and skipped; a symbol asked for but not cached is reported
as not cached (not as damaged); temp files left by killed writers are removed and reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import DataError, MissingDataError
from engine.market.symbols import normalize_symbol
from engine.prices.cache_file import read_meta_only

if TYPE_CHECKING:
    from engine.prices.store import PriceStore


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of re-validating one cache file.

    ``status``: ``ok``; ``damaged`` (never served); ``absent`` (asked for, not cached); ``skipped`` (a file
    in the cache folder that is not a cache file name, e.g. ``BABA copy.parquet``: ignored everywhere);
    ``removed`` (a temp file a killed writer left behind, deleted now).
    """

    symbol: str
    path: Path
    ok: bool
    problem: str | None = None
    status: str = ""

    def line(self) -> str:
        """One line for ``evbt data verify``."""
        status = self.status or ("ok" if self.ok else "damaged")
        if status == "ok":
            return f"{self.symbol}: ok"
        if status == "absent":
            return f"{self.symbol}: not cached ({self.path.parent})"
        if status == "skipped":
            return f"{self.path.name}: skipped ({self.problem})"
        if status == "removed":
            return f"{self.path.name}: removed ({self.problem})"
        return f"{self.symbol}: DAMAGED: {self.problem}"


def verify_summary(results: list[VerifyResult]) -> str:
    """Closing line of ``evbt data verify``."""
    count = {k: sum(1 for r in results if (r.status or ("ok" if r.ok else "damaged")) == k)
             for k in ("ok", "damaged", "absent", "skipped", "removed")}
    checked = count["ok"] + count["damaged"]
    text = f"{checked} file(s) checked, {count['damaged']} damaged"
    extra = [f"{count['absent']} not cached" if count["absent"] else "",
             f"{count['skipped']} stray file(s) skipped" if count["skipped"] else "",
             f"{count['removed']} orphan temp file(s) removed" if count["removed"] else ""]
    return ", ".join([text, *[e for e in extra if e]])


def list_entries(store: PriceStore) -> list[dict]:
    """Metadata of every cached symbol plus file size and ``status`` (ok / damaged / skipped); damaged
    and stray files carry an ``error`` key. Never raises for a bad file."""
    symbols, strays = store.scan()
    out = []
    for sym in symbols:
        path = store.path_for(sym)
        try:
            meta = {**read_meta_only(path), "status": "ok"}
        except (OSError, DataError) as exc:
            meta = {"symbol": sym, "status": "damaged", "error": str(exc)}
        meta.pop("meta_hash", None)
        meta["size"] = _file_size(path)
        out.append(meta)
    for path in strays:
        out.append({"symbol": path.name, "status": "skipped", "size": _file_size(path),
                    "error": f"{path.name} is not a cache file name (no symbol maps to it); ignored"})
    return out


def verify_store(store: PriceStore, symbols: list[str] | None = None) -> list[VerifyResult]:
    """Re-read every file with the full read checks; report stray files and absent symbols, and remove
    (and report) temp files that killed writers left behind."""
    removed = [VerifyResult(p.name, p, True, f"temp file of a killed writer, {_size(n)}", "removed")
               for p, n in store.remove_orphan_temps()]
    if symbols is None:
        names, strays = store.scan()
        skipped = [VerifyResult(p.name, p, True, "not a cache file name; ignored", "skipped") for p in strays]
        return [*removed, *(_verify_one(store, s) for s in names), *skipped]
    return [*removed, *(_verify_one(store, s) for s in symbols)]


def _verify_one(store: PriceStore, symbol: str) -> VerifyResult:
    sym = normalize_symbol(symbol)
    path = store.path_for(sym)
    try:
        store.read_checked(sym)
    except MissingDataError:
        return VerifyResult(sym, path, False, "not cached", "absent")
    except DataError as exc:
        return VerifyResult(sym, path, False, getattr(exc, "problem", None) or str(exc), "damaged")
    except Exception as exc:  # any other decoding trouble also means a damaged file
        return VerifyResult(sym, path, False, f"{type(exc).__name__}: {exc}", "damaged")
    return VerifyResult(sym, path, True, None, "ok")


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _size(n: int) -> str:
    return f"{n / 1024:.1f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"
