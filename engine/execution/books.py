"""The run's market data as arrays, shared by both drivers: one ``Book`` per symbol, the clock, the marks.

Built once per run (or per sweep window) from the trading frames; nothing here depends on parameters.

- prices are kept raw (listing currency) and in the base currency (divided by the bar's FX rate: local units
  per base unit, the last FX quote dated strictly before the session, see ``fx_for``);
- every bar has the UTC instants of its session's open and close (``engine.execution.clock``);
- the equity curve has one point per session date (the union of the books' bar dates), taken at that date's
  last close instant: cash after every fill at or before it, each position marked at its symbol's latest close
  at or before it (``close_u``);
- sizing marks (``Market.sizing_marks``) are the latest close strictly before a fill instant.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from engine.execution.clock import BarInstants, Clock, bar_instants
from engine.market.costs import CostModel, Fees, order_fees
from engine.market.fx import FxRates, as_rates
from engine.market.symbols import Listing, listing


def fx_for(frame: pd.DataFrame, fx_series: FxRates | pd.Series | None, symbol: str) -> np.ndarray:
    """Local units per base unit at each bar of ``symbol`` (``engine.market.fx``: any currency and base, the
    last quote known strictly before the bar's session open; an HKD=X series alone or None = USD base with
    HKD at its quotes or its 7.80 peg)."""
    return np.asarray(as_rates(fx_series).for_bars(symbol, frame.index), dtype=float)


@dataclass
class Book:
    """One symbol's bars in the run period."""

    symbol: str
    exchange: str
    index: pd.DatetimeIndex
    dates: Sequence[str]  # ISO session dates (IsoDates: made when read)
    open: np.ndarray  # listing currency
    close: np.ndarray
    stale: np.ndarray
    fx: np.ndarray
    open_base: np.ndarray
    close_base: np.ndarray
    lot_size: int
    hk: bool
    open_l: list[float] = field(default_factory=list)  # python copies: faster scalar access in the policy
    close_l: list[float] = field(default_factory=list)
    fx_l: list[float] = field(default_factory=list)
    stale_l: list[bool] = field(default_factory=list)
    next_tradable: list[int] = field(default_factory=list)  # bar -> first non-stale bar at or after it
    listing: Listing | None = None  # venue, currency and lot facts (picks the dated venue fees)

    @cached_property
    def instants(self) -> BarInstants:
        """Session open/close instants and ordinals (built on first use: calendars are only read when needed)."""
        return bar_instants(self.exchange, self.index)

    @property
    def open_at(self) -> np.ndarray:  # int64 ns UTC
        return self.instants.open_at

    @property
    def close_at(self) -> np.ndarray:
        return self.instants.close_at

    @cached_property
    def session_l(self) -> list[int]:  # session ordinal of each bar on the exchange calendar
        return self.instants.session.tolist()

    def fill_instants(self, fill: str) -> np.ndarray:
        return self.open_at if fill == "open" else self.close_at

    def fill_price(self, i: int, fill: str) -> float:
        return self.open_l[i] if fill == "open" else self.close_l[i]

    def exit_bar(self, entry_bar: int, hold: int) -> int:
        """The first tradable bar on or after the session ``hold`` sessions after the entry bar's session
        (len(dates) when there is none in the run)."""
        target = self.session_l[entry_bar] + hold
        pos = bisect.bisect_left(self.session_l, target)
        return self.tradable_from(pos)

    def tradable_from(self, bar: int) -> int:
        return self.next_tradable[bar] if bar < len(self.next_tradable) else len(self.next_tradable)

    def fees(self, model: CostModel, i: int, size: float, price_base: float, side: str) -> Fees:
        """Fees of one ``side`` (buy|sell) fill of ``size`` shares at bar ``i`` (base currency), with the
        venue's taxes and levies in force on that bar's date."""
        return order_fees(model, size, price_base, hk=self.hk, fx=self.fx_l[i], side=side, day=self.dates[i],
                          listing=self.listing)


@dataclass
class Market:
    """Everything about a run period that does not depend on the parameters."""

    index: pd.DatetimeIndex  # equity curve dates: union of the books' bar dates
    books: list[Book]
    bench_aligned: np.ndarray | None  # benchmark close on the index (ffilled, NaN before its first quote)
    years: float  # calendar years between the first and last date (CAGR)
    _clocks: dict[str, tuple[Clock, np.ndarray]] = field(default_factory=dict)

    @property
    def n_points(self) -> int:
        return len(self.index)

    @cached_property
    def point_at(self) -> np.ndarray:
        """int64 ns: the instant of each equity point (that date's last close over the books with a bar)."""
        n = len(self.index)
        point_at = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        for book in self.books:
            np.maximum.at(point_at, self.index.searchsorted(book.index), book.close_at)
        return np.maximum.accumulate(point_at) if n else point_at

    @cached_property
    def close_u(self) -> np.ndarray:
        """(books, points): latest base-currency close at or before each point (0 before the book's first bar)."""
        out = np.zeros((len(self.books), len(self.index)))
        for k, book in enumerate(self.books):
            last = np.searchsorted(book.close_at, self.point_at, side="right") - 1
            out[k] = np.where(last >= 0, book.close_base[np.maximum(last, 0)], 0.0)
        return out

    def clock(self, fill: str) -> Clock:
        return self._clock(fill)[0]

    def sizing_marks(self, fill: str) -> np.ndarray:
        """(books, ticks): base-currency mark of each book known strictly before each tick's instant: its latest
        close with a close instant < the tick; before its first close, its first bar's open (only reachable by a
        position bought at that open)."""
        return self._clock(fill)[1]

    def _clock(self, fill: str) -> tuple[Clock, np.ndarray]:
        if fill not in self._clocks:
            clock = Clock.build([b.fill_instants(fill) for b in self.books])
            marks = np.zeros((len(self.books), len(clock.instants)))
            for k, book in enumerate(self.books):
                last = np.searchsorted(book.close_at, clock.instants, side="left") - 1
                marks[k] = np.where(last >= 0, book.close_base[np.maximum(last, 0)], book.open_base[0])
            self._clocks[fill] = (clock, marks)
        return self._clocks[fill]


def _next_tradable(stale: np.ndarray) -> list[int]:
    """bar -> the first non-stale bar at or after it (len(stale) where there is none)."""
    n = len(stale)
    own = np.where(np.asarray(stale, dtype=bool), n, np.arange(n))
    return np.minimum.accumulate(own[::-1])[::-1].tolist() if n else []


class IsoDates(Sequence[str]):
    """The ISO session dates (YYYY-MM-DD) of a book's bars, each made when first read: a run reads the dates of
    its fills only, so a 500-symbol universe does not build a million strings."""

    def __init__(self, index: pd.DatetimeIndex) -> None:
        self._days = index.to_numpy(dtype="datetime64[D]")
        self._made: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._days)

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        text = self._made.get(i)
        if text is None:
            text = self._made[i] = str(self._days[i])
        return text

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, Sequence) else NotImplemented

    __hash__ = None  # type: ignore[assignment]


def make_book(symbol: str, frame: pd.DataFrame, fx_series: FxRates | pd.Series | None) -> Book:
    info = listing(symbol)
    fx = fx_for(frame, fx_series, symbol)
    index = pd.DatetimeIndex(frame.index)
    open_ = frame["open"].to_numpy(dtype=float)
    close = frame["close"].to_numpy(dtype=float)
    stale = frame["stale"].to_numpy(dtype=bool)
    return Book(
        symbol=symbol, exchange=info.exchange, index=index, dates=IsoDates(index), open=open_,
        close=close, stale=stale, fx=fx, open_base=open_ / fx, close_base=close / fx, lot_size=info.lot_size,
        hk=info.is_hk, open_l=open_.tolist(), close_l=close.tolist(), fx_l=fx.tolist(), stale_l=stale.tolist(),
        next_tradable=_next_tradable(stale), listing=info,
    )


def build_market(
    frames: dict[str, pd.DataFrame],
    symbols: Sequence[str],
    fx_series: FxRates | pd.Series | None,
    bench_close: pd.Series | None,
) -> Market:
    """Arrays for ``symbols`` (in this order: the order fills of one instant are decided in)."""
    used = [s for s in symbols if s in frames and not frames[s].empty]
    books = [make_book(s, frames[s], fx_series) for s in used]
    # the union of the books' dates, sorted (numpy on the raw values: no Timestamp objects per bar)
    index = pd.DatetimeIndex(np.unique(np.concatenate([b.index.to_numpy() for b in books]))) if books \
        else pd.DatetimeIndex([])
    n = len(index)
    aligned = None
    if bench_close is not None and len(bench_close):
        from engine.analysis.metrics import align_benchmark

        series = align_benchmark(bench_close, index)
        aligned = None if series is None else series.to_numpy(dtype=float)
    years = (index[-1] - index[0]).days / 365.25 if n else 0.0
    return Market(index=index, books=books, bench_aligned=aligned, years=years)
