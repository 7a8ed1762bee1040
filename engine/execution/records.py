"""Plain-data results of a backtest run (no backtrader types escape the runner)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import starmap
from typing import Any, TypeVar

import pandas as pd


@dataclass(frozen=True)
class TradeRecord:
    """One round trip (entry and exit) on one symbol, explainable from the price bars.

    Prices are in the listing's own currency (raw bar open/close, before slippage); ``fx_*`` is the
    local-currency units per one base-currency unit used to convert (1.0 for USD listings in a USD run).
    Money fields (``fees``, ``pnl``, ``entry_value``) are in the run's base currency.
    """

    trade_id: int
    symbol: str
    side: str  # "long" | "short"
    event_id: str
    event_type: str
    entry_date: str  # session date, ISO
    entry_fill: str  # "open" | "close"
    entry_price: float
    exit_date: str | None
    exit_fill: str | None
    exit_price: float | None
    size: int  # shares, always positive; direction is ``side``
    fx_entry: float
    fx_exit: float | None
    entry_fees: float
    exit_fees: float
    fees: float  # entry_fees + exit_fees (commission + slippage + stamp duty)
    entry_value: float  # size * entry_price / fx_entry
    pnl: float  # net of fees, base currency
    ret: float  # pnl / entry_value
    exit_reason: str  # hold | stop_loss | take_profit | signal | end_of_data | open
    holding_sessions: int
    benchmark_return: float | None = None  # benchmark close-to-close return over the same window
    entry_at: str | None = None  # UTC instant of the entry fill (session open/close), ISO 8601
    exit_at: str | None = None  # UTC instant of the exit fill; None while open
    entry_fee_items: str | None = None  # the entry fill's fees item by item, e.g. "commission=10.0000;sec_fee=0"
    exit_fee_items: str | None = None  # the same for the exit fill; None while open


def fee_items(fees: Mapping[str, float]) -> str:
    """Fees of one fill as ``item=amount`` pairs in the base currency (4 decimals), items in a fixed order
    (commission, slippage, stamp duty, then the venue's levies alphabetically), so a trade list shows what
    each fill paid and why."""
    names = tuple(fees)
    order = _ITEM_ORDERS.get(names)
    if order is None:  # the order of one set of items, worked out once (a run has a few)
        first = ("commission", "slippage", "stamp_duty")
        order = _ITEM_ORDERS[names] = tuple([k for k in first if k in fees] + sorted(k for k in fees if k not in first))
    return ";".join([f"{k}={fees[k]:.4f}" for k in order])


_ITEM_ORDERS: dict[tuple[str, ...], tuple[str, ...]] = {}  # the items of some fees, as made -> their order


def round_trip(side: str, size: int, entry_exec: float, exit_exec: float, entry_fees: float,
               exit_fees: float) -> tuple[float, float, float]:
    """(entry value, PnL net of both sides' fees, return) of one lot from base-currency executed prices."""
    sign = 1.0 if side == "long" else -1.0
    entry_value = size * entry_exec
    pnl = sign * size * (exit_exec - entry_exec) - entry_fees - exit_fees
    return entry_value, pnl, (pnl / entry_value if entry_value else 0.0)


@dataclass(frozen=True)
class OrderRecord:
    """Every order the strategy wanted, including the ones that did not fill."""

    date: str
    symbol: str
    action: str  # "buy" | "sell"
    size: int
    status: str  # "filled" | "refused" | "skipped"
    reason: str  # why refused/skipped (e.g. "insufficient cash", "size rounds to 0 lots", "no bar")
    event_id: str | None = None
    price: float | None = None
    fees: float | None = None


@dataclass
class RunResult:
    """What ``engine.execution.backtrader_driver.run_backtest`` returns."""

    equity: pd.Series  # base-currency portfolio value at each bar close (index: tz-naive dates, union of sessions)
    cash: pd.Series  # base-currency cash at each bar close
    exposure: pd.Series  # gross position value / equity at each bar close
    trades: list[TradeRecord]
    orders: list[OrderRecord]
    benchmark: pd.Series | None  # benchmark close prices on the same index (ffilled), or None
    fx_source: str  # "HKD=X series" | "7.80 peg" | "none needed"
    warnings: list[str] = field(default_factory=list)


_R = TypeVar("_R")


def records_of(cls: type[_R], rows: Iterable[Sequence[Any]]) -> list[_R]:
    """``[cls(*row) for row in rows]``: records (``TradeRecord``, ``OrderRecord``) from rows of their field values in
    field order, made in one C-level loop. (Bypassing the frozen ``__init__`` would materialise a ``__dict__``
    per record: more memory, and slower in a large process.)"""
    return list(starmap(cls, rows))
