"""No process-wide state left behind by library calls (handlers on third-party loggers)."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd
import pytest
import yfinance

from engine.prices.yahoo import fetch_history


class _Ticker:
    def __init__(self, symbol: str) -> None:
        self.symbol = symbol

    def history(self, **kwargs: object) -> pd.DataFrame:
        logging.getLogger("yfinance").error("noise the capture must see while it is installed")
        days = pd.bdate_range("2022-01-03", "2022-01-07")
        close = np.arange(len(days), dtype=float) + 10
        return pd.DataFrame({"Open": close, "High": close + 1, "Low": close - 1, "Close": close,
                             "Adj Close": close, "Volume": np.full(len(days), 1e5)},
                            index=pd.DatetimeIndex([d.tz_localize("America/New_York") for d in days], name="Date"))


def test_fetch_leaves_no_handler_on_the_yfinance_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yfinance, "Ticker", _Ticker)
    logger = logging.getLogger("yfinance")
    before = list(logger.handlers)
    frame = fetch_history("BABA", dt.date(2022, 1, 3), dt.date(2022, 1, 7))
    assert len(frame) == 5
    assert logger.handlers == before
