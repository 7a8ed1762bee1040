"""The yfinance client: the ONLY module that imports yfinance (price history, analyst rating changes).

``fetch_history(symbol, start, end)`` returns a frame in the price contract (see docs/design.md):
tz-naive midnight session dates in the exchange's own time zone (the index is NOT converted to UTC, which
would move Hong Kong bars to the previous day), columns ``open high low close adj_close volume stale``.

Robustness:
- every call runs in a daemon worker thread with a hard wall-clock bound (``attempt_timeout``), because on a
  black-holed network yfinance can hang 70-130 s whatever its own ``timeout=`` says;
- transient failures (curl_cffi network errors, timeouts, ``YFRateLimitError``) are retried with exponential
  back-off (``sleep`` is injectable for tests) within a total ``deadline``;
- an empty answer or Yahoo's "possibly delisted" becomes a ``DataError`` with a clear message.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from engine.errors import DataError
from engine.market.symbols import listing, normalize_symbol
from engine.prices.validate import validate_prices

ATTEMPT_TIMEOUT = 30.0  # seconds, hard bound per attempt
DEADLINE = 75.0  # seconds, hard bound for all attempts of one call
RETRIES = 3  # attempts after the first
BACKOFF = 1.0  # seconds, doubled after each failure
_RENAME = {"open": "open", "high": "high", "low": "low", "close": "close", "adj close": "adj_close",
           "adj_close": "adj_close", "volume": "volume"}


class _AttemptTimeout(Exception):
    """The worker thread did not answer within the bound."""


class _YahooNetworkError(Exception):
    """yfinance swallowed a network error (logged it and returned an empty frame)."""


_NETWORK_MARKERS = ("curl", "could not resolve", "dnserror", "failed to perform", "timed out", "timeout",
                    "too many requests", "rate limit", "connection")


class _YFLogCapture(logging.Handler):
    """Collects yfinance log messages of the threads evbt is downloading in.

    yfinance logs many network failures and returns an empty frame instead of raising; capturing the log
    lets evbt tell "network down" (retry, then serve the cache) from "no such symbol", and keeps yfinance's
    raw log lines off the user's terminal.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.watched: dict[int, list[str]] = {}
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._guard:
            bucket = self.watched.get(record.thread or 0)
            if bucket is not None:
                bucket.append(record.getMessage())

    def start(self) -> None:
        """Watch the calling thread; the handler sits on yfinance's logger only while some thread is watched."""
        with self._guard:
            if not self.watched:
                logging.getLogger("yfinance").addHandler(self)
            self.watched[threading.get_ident()] = []

    def stop(self) -> list[str]:
        with self._guard:
            messages = self.watched.pop(threading.get_ident(), [])
            if not self.watched:
                logging.getLogger("yfinance").removeHandler(self)
            return messages


_CAPTURE = _YFLogCapture()


def _transient_types() -> tuple[type[BaseException], ...]:
    """Exception classes worth a retry (imported lazily: yfinance/curl_cffi are slow to import)."""
    from curl_cffi import CurlError
    from yfinance.exceptions import YFRateLimitError

    return (CurlError, YFRateLimitError, TimeoutError, ConnectionError, _AttemptTimeout, _YahooNetworkError)


def _run_bounded(func: Callable[[], Any], timeout: float) -> Any:
    """Run ``func`` in a daemon thread; raise _AttemptTimeout if it takes longer than ``timeout``.

    A daemon thread (not a ThreadPoolExecutor, whose workers are joined at interpreter exit) so a hung
    request can never keep the CLI alive.
    """
    box: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)

    def work() -> None:
        try:
            box.put((True, func()))
        except BaseException as exc:
            box.put((False, exc))

    threading.Thread(target=work, name="evbt-yfinance", daemon=True).start()
    try:
        ok, value = box.get(timeout=max(timeout, 0.001))
    except queue.Empty:
        raise _AttemptTimeout(f"no answer within {timeout:.3g} s") from None
    if ok:
        return value
    raise value


def _download(symbol: str, start: dt.date | None, end: dt.date, timeout: float) -> pd.DataFrame:
    import yfinance as yf

    kwargs: dict[str, Any] = {"end": (end + dt.timedelta(days=1)).isoformat(), "auto_adjust": False,
                              "actions": False, "timeout": timeout}
    if start is not None:
        kwargs["start"] = start.isoformat()
    else:
        kwargs["period"] = "max"
        kwargs.pop("end")
    _CAPTURE.start()
    try:
        frame = yf.Ticker(symbol).history(**kwargs)
    finally:
        messages = _CAPTURE.stop()
    if frame is None or len(frame) == 0:
        network = [m for m in messages if any(k in m.lower() for k in _NETWORK_MARKERS)]
        if network:
            raise _YahooNetworkError(network[-1][:300])
    return frame


def upgrades_downgrades(symbol: str) -> pd.DataFrame:
    """yfinance's analyst rating changes of ``symbol`` (raw frame; engine.events.ratings normalises it)."""
    import yfinance as yf

    _CAPTURE.start()  # yfinance logs "Cookie/crumb" failures before raising: keep them off the terminal
    try:
        return yf.Ticker(symbol).upgrades_downgrades
    finally:
        _CAPTURE.stop()


def _is_missing_ticker(exc: BaseException) -> bool:
    try:
        from yfinance.exceptions import YFTickerMissingError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, YFTickerMissingError)


def fetch_history(
    symbol: str,
    start: dt.date | None,
    end: dt.date | None,
    *,
    retries: int = RETRIES,
    attempt_timeout: float = ATTEMPT_TIMEOUT,
    deadline: float = DEADLINE,
    sleep: Callable[[float], None] = time.sleep,
    allow_empty: bool = False,
) -> pd.DataFrame:
    """Daily bars for ``start <= date <= end`` (inclusive; ``start=None`` = full history).

    Raises DataError on failure (after retries for transient errors) or, unless ``allow_empty``, when
    Yahoo returns no rows.
    """
    sym = normalize_symbol(symbol)
    last = end or dt.date.today()
    transient = _transient_types()
    began = time.monotonic()
    delay = BACKOFF
    for attempt in range(retries + 1):
        remaining = deadline - (time.monotonic() - began)
        try:
            raw = _run_bounded(lambda: _download(sym, start, last, attempt_timeout),
                               max(min(attempt_timeout, remaining), 0.001))
            break
        except transient as exc:
            left = deadline - (time.monotonic() - began)  # after this attempt, not before it (was: "-4 s")
            if attempt >= retries or left - delay <= 0:
                raise DataError(f"{sym}: download failed after {attempt + 1} attempt(s): "
                                f"{type(exc).__name__}: {exc}") from exc
            sleep(delay)
            delay *= 2
        except Exception as exc:
            if _is_missing_ticker(exc):
                raise DataError(f"{sym}: Yahoo has no prices ({exc}); check the symbol") from exc
            raise DataError(f"{sym}: download failed: {type(exc).__name__}: {exc}") from exc
    frame = normalize_history(raw, sym)
    if len(frame) == 0 and not allow_empty:
        raise DataError(f"{sym}: Yahoo returned no prices for {start or 'start of history'} .. {last} "
                        "(wrong symbol, possibly delisted, or no trading in that range)")
    return frame


def _flatten_columns(raw: pd.DataFrame) -> pd.DataFrame:
    """yfinance may return two-level columns (field, ticker): keep the field level."""
    if isinstance(raw.columns, pd.MultiIndex):
        fields = {"open", "high", "low", "close", "adj close", "volume"}
        for level in range(raw.columns.nlevels):
            names = [str(v).lower() for v in raw.columns.get_level_values(level)]
            if fields & set(names):
                raw = raw.copy()
                raw.columns = raw.columns.get_level_values(level)
                break
    return raw


def normalize_history(raw: pd.DataFrame | None, symbol: str) -> pd.DataFrame:
    """yfinance frame -> contract frame (validated). Empty input gives an empty contract frame."""
    if raw is None or len(raw) == 0:
        empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in
                              ("open", "high", "low", "close", "adj_close", "volume")},
                             index=pd.DatetimeIndex([], name="date"))
        empty["stale"] = pd.Series(dtype="bool")
        return empty
    raw = _flatten_columns(raw)
    frame = raw.rename(columns=lambda c: _RENAME.get(str(c).strip().lower(), str(c)))
    if "adj_close" not in frame.columns and "close" in frame.columns:
        frame = frame.assign(adj_close=frame["close"])
    missing = [c for c in ("open", "high", "low", "close", "volume") if c not in frame.columns]
    if missing:
        raise DataError(f"{symbol}: yfinance answer lacks column(s) {', '.join(missing)}")
    frame = frame[["open", "high", "low", "close", "adj_close", "volume"]]
    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:
        # The session date is the wall-clock date in the exchange's own zone. Yahoo normally answers in that
        # zone already; an index in another zone (e.g. UTC, which puts a HK midnight on the previous day) is
        # converted to it first. FX pairs have no exchange zone and keep the zone Yahoo gave.
        venue = listing(symbol)
        if venue.exchange != "FX":
            index = index.tz_convert(venue.timezone)
        index = index.tz_localize(None)
    frame = frame.set_axis(index.normalize().rename("date"), axis=0)
    frame = frame.dropna(subset=["open", "high", "low", "close"], how="all")
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    return validate_prices(frame, symbol)
