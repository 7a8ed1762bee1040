"""Analyst rating changes from yfinance (``Ticker.upgrades_downgrades``) as analyst events.

Fetched on demand and cached as ``<cache>/ratings/<symbol>.parquet`` (atomic write). Offline, an uncached
symbol raises MissingDataError. Grades are mapped onto one ordered scale so "upgrade" means a move up the
scale whatever the broker's wording; rows whose grades are unknown or do not move (initiations,
reiterations, target-only changes) are skipped, because the engine trades on direction only.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from engine.atomic import atomic_write_bytes
from engine.errors import DataError, MissingDataError
from engine.events.catalog import Event
from engine.market.symbols import normalize_symbol

RATINGS_DIRNAME = "ratings"
RATINGS_TZ = "America/New_York"
RATINGS_COLUMNS = ("date", "firm", "from_grade", "to_grade", "action")
FETCH_TIMEOUT_S = 30.0
FETCH_ATTEMPTS = 3

# Ordered scale: 0 strong sell ... 4 strong buy. Keys are normalised with ``_norm_grade``.
_SCALE: dict[int, tuple[str, ...]] = {
    0: ("strong sell",),
    1: ("sell", "underperform", "underweight", "reduce", "moderate sell", "sector underperform",
        "market underperform"),
    2: ("hold", "neutral", "equal weight", "market perform", "sector perform", "peer perform", "in line",
        "market weight", "sector weight", "perform", "mixed"),
    3: ("buy", "outperform", "overweight", "accumulate", "positive", "moderate buy", "sector outperform",
        "market outperform", "add", "long term buy"),
    4: ("strong buy", "conviction buy", "top pick", "conviction list buy"),
}
GRADE_RANK: dict[str, int] = {g: rank for rank, grades in _SCALE.items() for g in grades}


def _norm_grade(grade: object) -> str:
    text = "" if grade is None or (isinstance(grade, float) and pd.isna(grade)) else str(grade)
    return re.sub(r"\s+", " ", re.sub(r"[-_/]", " ", text.strip().lower())).strip()


def grade_rank(grade: object) -> int | None:
    """Position of a broker grade on the common scale, or None when unknown/empty."""
    return GRADE_RANK.get(_norm_grade(grade))


def classify_change(from_grade: object, to_grade: object) -> str | None:
    """analyst_upgrade / analyst_downgrade, or None when a grade is unknown or the rank does not move."""
    lo, hi = grade_rank(from_grade), grade_rank(to_grade)
    if lo is None or hi is None or lo == hi:
        return None
    return "analyst_upgrade" if hi > lo else "analyst_downgrade"


# ---------------------------------------------------------------- fetch and cache


def ratings_path(cache_dir: Path, symbol: str) -> Path:
    return Path(cache_dir) / RATINGS_DIRNAME / f"{normalize_symbol(symbol)}.parquet"


def normalise_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """yfinance frame (index GradeDate; Firm, ToGrade, FromGrade, Action) -> our columns, sorted by date."""
    if raw is None or raw.empty:
        return _coerce(pd.DataFrame({c: [] for c in RATINGS_COLUMNS}))
    frame = raw.reset_index()
    date_col = "GradeDate" if "GradeDate" in frame.columns else frame.columns[0]
    missing = [c for c in ("Firm", "ToGrade", "FromGrade", "Action") if c not in frame.columns]
    if missing:
        raise DataError(f"unexpected upgrades_downgrades layout: missing column(s) {', '.join(missing)}")
    dates = pd.to_datetime(frame[date_col], utc=True).dt.tz_localize(None).astype("datetime64[us]")
    out = _coerce(pd.DataFrame({
        "date": dates, "firm": frame["Firm"], "from_grade": frame["FromGrade"],
        "to_grade": frame["ToGrade"], "action": frame["Action"],
    }))
    return out.sort_values(["date", "firm"], kind="stable").reset_index(drop=True)


def _coerce(frame: pd.DataFrame) -> pd.DataFrame:
    """One dtype layout for fresh and cached frames: date datetime64[us], text columns pandas str."""
    out = frame.copy()
    out["date"] = pd.to_datetime(out["date"]).astype("datetime64[us]")
    for col in RATINGS_COLUMNS[1:]:
        out[col] = out[col].astype(object).where(out[col].notna(), "").astype(str)
    return out


def _call_with_timeout(fn: Callable[[], Any], timeout_s: float) -> Any:
    """Run ``fn`` in a daemon thread; yfinance ignores its own timeout on a black-holed network."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise TimeoutError(f"no answer within {timeout_s:.0f} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _download(symbol: str, timeout_s: float) -> pd.DataFrame:
    from engine.prices.yahoo import upgrades_downgrades  # the yfinance client (lazy: slow import)

    return _call_with_timeout(lambda: upgrades_downgrades(symbol), timeout_s)


def _is_no_data(exc: Exception) -> bool:
    """yfinance raises YFDataException('No upgrade/downgrade history ...') for symbols without history."""
    return "no upgrade/downgrade history" in str(exc).lower()


def fetch_ratings(
    symbol: str,
    cache_dir: Path,
    offline: bool = False,
    refresh: bool = False,
    attempts: int = FETCH_ATTEMPTS,
    timeout_s: float = FETCH_TIMEOUT_S,
    backoff_s: float = 1.0,
) -> pd.DataFrame:
    """Rating changes of ``symbol``: from the cache, else (online) from yfinance and then cached.

    ``refresh`` re-downloads even when cached. Transient errors are retried ``attempts`` times with
    growing back-off; if they persist, cached data is served when present, else DataError.
    """
    sym = normalize_symbol(symbol)
    path = ratings_path(cache_dir, sym)
    cached = read_cached(path) if path.exists() else None
    if cached is not None and not refresh:
        return cached
    if offline:
        if cached is not None:
            return cached
        raise MissingDataError(f"{sym}: analyst ratings not cached ({path}); offline mode forbids fetching")
    last: Exception | None = None
    for attempt in range(max(1, attempts)):
        try:
            frame = normalise_frame(_download(sym, timeout_s))
            break
        except DataError:
            raise
        except Exception as exc:  # curl_cffi / yfinance errors are not a stable hierarchy
            if _is_no_data(exc):
                frame = normalise_frame(pd.DataFrame())
                break
            last = exc
            if attempt + 1 < attempts:
                time.sleep(backoff_s * (2**attempt))
    else:
        if cached is not None:
            return cached
        raise DataError(f"{sym}: fetching analyst ratings failed after {attempts} attempt(s): {last}")
    write_cached(path, frame)
    return frame


def write_cached(path: Path, frame: pd.DataFrame) -> None:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())


def read_cached(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # a damaged cache file is a data problem, not a crash
        raise DataError(f"cannot read cached ratings {path}: {exc}") from None
    if list(frame.columns) != list(RATINGS_COLUMNS):
        raise DataError(f"cached ratings {path} have unexpected columns {list(frame.columns)}")
    return _coerce(frame)


# ---------------------------------------------------------------- rows -> events


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def _date_time(stamp: pd.Timestamp) -> tuple[dt.date, dt.time | None]:
    """yfinance gives a UTC epoch; midnight means a date only (taken as a New York date)."""
    ts = pd.Timestamp(stamp)
    if ts.time() == dt.time(0):
        return ts.date(), None
    local = ts.tz_localize("UTC").tz_convert(RATINGS_TZ)
    return local.date(), local.time().replace(microsecond=0)


def ratings_to_events(symbol: str, frame: pd.DataFrame) -> list[Event]:
    """Analyst events for the rows that move on the grade scale; other rows are skipped."""
    sym = normalize_symbol(symbol)
    events: list[Event] = []
    seen: set[str] = set()
    for row in frame.itertuples(index=False):
        kind = classify_change(row.from_grade, row.to_grade)
        if kind is None:
            continue
        day, at = _date_time(row.date)  # type: ignore[arg-type]
        firm = str(row.firm).strip() or "unknown"
        direction = "up" if kind == "analyst_upgrade" else "down"
        base = f"{day.isoformat()}-yf-{_slug(firm)}-{_slug(sym)}-{direction}"
        eid, n = base, 2
        while eid in seen:
            eid, n = f"{base}-{n}", n + 1
        seen.add(eid)
        events.append(Event(
            id=eid, date=day, tz=RATINGS_TZ, time=at, session_hint=None, market=None, type=kind,
            scope="single", symbols=(sym,),
            description=f"{firm}: {row.from_grade} -> {row.to_grade} (yfinance upgrades_downgrades)",
            source=f"https://finance.yahoo.com/quote/{sym}/analysis", firm=firm,
            from_grade=str(row.from_grade), to_grade=str(row.to_grade), confidence="medium",
        ))
    return events


def rating_events(symbols: Iterable[str], cache_dir: Path, offline: bool = False) -> list[Event]:
    """Fetch (or read cached) ratings for each symbol and return their analyst events."""
    out: list[Event] = []
    for sym in symbols:
        out += ratings_to_events(sym, fetch_ratings(sym, cache_dir, offline=offline))
    return out
