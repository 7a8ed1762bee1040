"""Indicators as vectorised functions of a symbol's OHLCV frame (pandas/numpy, no other dependency).

Each function takes the frame of tradable bars (index = session dates, columns ``open high low close volume``)
and returns a Series aligned with it whose value at bar *i* uses bars *i-n+1 .. i* only (a fixed window,
never a later bar). Strategies do not call them with a session: ``ctx.indicator(...)`` / ``ctx.sma(...)``
compute a Series once per symbol and parameters and read it **as of** a session, i.e. at the last bar strictly
before that session.

Every value depends on a bounded window of bars, never on where the history happens to begin: RSI and ATR use
simple n-bar means (Cutler's RSI, the mean true range) rather than Wilder's recursive smoothing, whose value
changes when the cache holds more history. A value is NaN (read as None) until the window is full.

``WARMUP`` says how many bars before a session each indicator needs for period ``n``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

Indicator = Callable[..., pd.Series]



# Slack of a rule's threshold on a return (fractions): a move of exactly X% is X% although close / close - 1 of
# decimal prices is a few ulps off (22.5 / 25 - 1 = -0.09999999999999998); far below a price tick's share.
THRESHOLD_SLACK = 1e-12

def _period(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"indicator period must be a whole number >= 1, got {n!r}")
    return int(n)


def close(frame: pd.DataFrame) -> pd.Series:
    """The close itself (``ctx.last_close`` reads it as of a session)."""
    return frame["close"]


def sma(frame: pd.DataFrame, n: int, column: str = "close") -> pd.Series:
    """Simple moving average of ``column`` over the last ``n`` bars."""
    return frame[column].rolling(_period(n), min_periods=n).mean()


def rolling_return(frame: pd.DataFrame, n: int) -> pd.Series:
    """Close-to-close simple return over the last ``n`` bars: close[i] / close[i-n] - 1."""
    close = frame["close"]
    return close / close.shift(_period(n)) - 1.0


def volatility(frame: pd.DataFrame, n: int, annualize: bool = False) -> pd.Series:
    """Sample standard deviation of the last ``n`` daily simple close-to-close returns (x sqrt(252) if asked)."""
    returns = frame["close"].pct_change(fill_method=None)
    vol = returns.rolling(_period(n), min_periods=n).std(ddof=1)
    return vol * np.sqrt(252.0) if annualize else vol


def rsi(frame: pd.DataFrame, n: int = 14) -> pd.Series:
    """Relative strength index over the last ``n`` close changes, 0..100 (simple means: Cutler's RSI).

    RSI = 100 * mean gain / (mean gain + mean loss); 50 when the closes did not move.
    """
    change = frame["close"].diff()
    gain = change.clip(lower=0.0).rolling(_period(n), min_periods=n).mean()
    loss = (-change).clip(lower=0.0).rolling(n, min_periods=n).mean()
    total = gain + loss
    out = 100.0 * gain / total.where(total > 0)
    return out.where(total > 0, 50.0).where(total.notna())


def true_range(frame: pd.DataFrame) -> pd.Series:
    """max(high, previous close) - min(low, previous close); the first bar has no previous close (NaN)."""
    prev = frame["close"].shift(1)
    high = frame["high"].where(frame["high"] >= prev, prev)
    low = frame["low"].where(frame["low"] <= prev, prev)
    return (high - low).where(prev.notna())


def atr(frame: pd.DataFrame, n: int = 14) -> pd.Series:
    """Average true range: the mean true range of the last ``n`` bars (in price units)."""
    return true_range(frame).rolling(_period(n), min_periods=n).mean()


def volume_zscore(frame: pd.DataFrame, n: int = 20) -> pd.Series:
    """(volume - mean of the last n volumes) / their sample std, the window including the bar itself.

    NaN when the window's volumes are all equal (std 0)."""
    volume = frame["volume"]
    window = volume.rolling(_period(n), min_periods=n)
    std = window.std(ddof=1)
    return (volume - window.mean()) / std.where(std > 0)


# Bars before a session each indicator needs for period n (the warm-up a strategy declares).
WARMUP: dict[str, Callable[[int], int]] = {
    "sma": lambda n: n,
    "rolling_return": lambda n: n + 1,
    "volatility": lambda n: n + 1,
    "rsi": lambda n: n + 1,
    "atr": lambda n: n + 1,
    "volume_zscore": lambda n: n,
}
