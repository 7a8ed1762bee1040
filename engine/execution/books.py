"""The run's market data as arrays, shared by both drivers: one ``Book`` per symbol, the clock, the marks.

Built once per run (or per sweep window) from the trading frames; nothing here depends on parameters.

- prices are kept raw (listing currency) and in the base currency (divided by the bar's FX rate: local units
  per base unit, the last FX quote dated strictly before the session, see ``fx_for``);
- every bar has the UTC instants of its session's open and close (``engine.execution.clock``);
- the equity curve has one point per session date (the union of the books' bar dates), taken at that date's
  last close instant: cash after every fill at or before it, each position marked at its symbol's latest close
  at or before it (``Market.closes_on_points``);
- sizing marks (``Market.sizing_marks``, ``Book.mark``) are the latest close strictly before a fill instant.

Everything per bar is a numpy array (the policy reads the few bars it visits with ``.item``): at 2,000 symbols x
nine years a Python float list per column would cost about 0.5 GB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from engine.execution.agenda import Agenda, PlanActions, build_agenda
from engine.execution.clock import BarInstants, Clock, bar_instants, bar_instants_many
from engine.market.costs import CostModel, Fees, FeeTotal, fee_totals, order_fees
from engine.market.fx import FxRates, as_rates
from engine.market.symbols import Listing, listing
from engine.plan.planner import Plan, PlannedAction

AGENDAS_KEPT = 8


def fx_for(frame: pd.DataFrame, fx_series: FxRates | pd.Series | None, symbol: str) -> np.ndarray:
    """Local units per base unit at each bar of ``symbol`` (``engine.market.fx``: any currency and base, the
    last quote known strictly before the bar's session open; an HKD=X series alone or None = USD base with
    HKD at its quotes or its 7.80 peg)."""
    return _fx_rates(as_rates(fx_series), listing(symbol), symbol, frame.index)


def _fx_rates(rates: FxRates, info: Listing, symbol: str, index: pd.Index) -> np.ndarray:
    if info.currency == rates.base:  # ``FxRates.for_bars`` of a base-currency listing: ones, no calendar read
        return np.ones(len(index))
    return np.asarray(rates.for_bars(symbol, index), dtype=float)


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
    next_tradable: np.ndarray  # bar -> first non-stale bar at or after it (int32)
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

    @property
    def session(self) -> np.ndarray:  # session ordinal of each bar on the exchange calendar (int32)
        return self.instants.session

    def fill_instants(self, fill: str) -> np.ndarray:
        return self.open_at if fill == "open" else self.close_at

    def fill_price(self, i: int, fill: str) -> float:
        return (self.open if fill == "open" else self.close).item(i)

    def exit_bar(self, entry_bar: int, hold: int) -> int:
        """The first tradable bar on or after the session ``hold`` sessions after the entry bar's session
        (len(dates) when there is none in the run)."""
        session = self.instants.session
        return self.tradable_from(int(session.searchsorted(session.item(entry_bar) + hold, side="left")))

    def tradable_from(self, bar: int) -> int:
        n = len(self.next_tradable)
        return self.next_tradable.item(bar) if bar < n else n

    def mark(self, instant: int) -> float:
        """Base-currency mark known strictly before ``instant``: the latest close with a close instant before
        it; before the first close, the first bar's open (only reachable by a position bought at that open)."""
        last = int(self.close_at.searchsorted(instant, side="left")) - 1
        return self.close_base.item(last) if last >= 0 else self.open_base.item(0)

    def fees(self, model: CostModel, i: int, size: float, price_base: float, side: str) -> Fees:
        """Fees of one ``side`` (buy|sell) fill of ``size`` shares at bar ``i`` (base currency), with the
        venue's taxes and levies in force on that bar's date."""
        return order_fees(model, size, price_base, hk=self.hk, fx=self.fx.item(i), side=side, day=self.dates[i],
                          listing=self.listing)

    def fees_on(self, model: CostModel, day: str, fx: float, size: float, price_base: float, side: str) -> Fees:
        """``fees`` of a bar whose ISO date ``day`` and FX rate ``fx`` the caller has already read."""
        return order_fees(model, size, price_base, hk=self.hk, fx=fx, side=side, day=day, listing=self.listing)

    def fee_totals(self, model: CostModel) -> FeeTotal:
        """``fees_on(...).total`` as a function (size, price_base, fx, side, day) -> the same float, without the
        itemised fees (``engine.market.costs.fee_totals``)."""
        return fee_totals(model, self.listing, self.hk)


@dataclass
class Market:
    """Everything about a run period that does not depend on the parameters."""

    index: pd.DatetimeIndex  # equity curve dates: union of the books' bar dates
    books: list[Book]
    bench_aligned: np.ndarray | None  # benchmark close on the index (ffilled, NaN before its first quote)
    years: float  # calendar years between the first and last date (CAGR)
    _clocks: dict[str, Clock] = field(default_factory=dict)
    _marks: dict[str, np.ndarray] = field(default_factory=dict)
    _closes: dict[int, np.ndarray] = field(default_factory=dict)
    _agendas: dict[tuple[str, bytes], Agenda] = field(default_factory=dict)  # (fill, plan layout) -> agenda
    _instants_ready: bool = False
    # book -> group of books with equal bar dates (``build_market`` finds them; empty: every book on its own)
    _date_group: list[int] = field(default_factory=list)
    _lasts: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # id(close_at) -> last close

    @property
    def n_points(self) -> int:
        return len(self.index)

    def bar_instants(self) -> None:
        """Every book's session instants (``Book.instants``), read exchange by exchange in one pass
        (``engine.execution.clock.bar_instants_many``: one calendar look-up per exchange, one copy of the
        arrays for books trading the same days) the first time the market needs them. Books with equal bar
        dates on one exchange are read once (they get the same arrays)."""
        if self._instants_ready:
            return
        groups = self._date_group or range(len(self.books))
        by_exchange: dict[str, dict[int, list[Book]]] = {}
        for book, group in zip(self.books, groups, strict=True):
            if "instants" not in book.__dict__:
                by_exchange.setdefault(book.exchange, {}).setdefault(group, []).append(book)
        for exchange, same in by_exchange.items():
            sets = list(same.values())
            for books, instants in zip(sets, bar_instants_many(exchange, [b[0].index for b in sets]), strict=True):
                for book in books:
                    book.__dict__["instants"] = instants
        self._instants_ready = True

    @cached_property
    def point_at(self) -> np.ndarray:
        """int64 ns: the instant of each equity point (that date's last close over the books with a bar)."""
        self.bar_instants()
        n = len(self.index)
        point_at = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        stamps = self.index.to_numpy()
        applied: dict[int, list[np.ndarray]] = {}  # close instants -> bar stamps already taken in
        taken: dict[tuple[str, int], Book] = {}  # (exchange, date group) -> its first book
        for k, book in enumerate(self.books):
            if self._date_group:  # equal dates at the same instants: the maximum is already taken
                first = taken.setdefault((book.exchange, self._date_group[k]), book)
                if first is not book and first.close_at is book.close_at:
                    continue
            raw = _raw(book.index)
            if stamps.dtype.kind != "M" or raw.dtype.kind != "M":
                np.maximum.at(point_at, self.index.searchsorted(book.index), book.close_at)
                continue
            seen = applied.setdefault(id(book.close_at), [])
            if any(np.array_equal(other, raw) for other in seen):
                continue  # the same bars at the same instants: the maximum is already taken
            seen.append(raw)
            np.maximum.at(point_at, np.searchsorted(stamps, raw.astype(stamps.dtype, copy=False)), book.close_at)
        return np.maximum.accumulate(point_at) if n else point_at

    @cached_property
    def unfinite_books(self) -> frozenset[int]:
        """Books with a NaN or infinite close: their marks reach the curve even where nothing is held (NaN x 0
        is NaN), so the curve visits them whatever the fills."""
        return frozenset(k for k, b in enumerate(self.books) if not np.isfinite(b.close_base).all())

    def clock(self, fill: str) -> Clock:
        if fill not in self._clocks:
            self.bar_instants()
            self._clocks[fill] = Clock.build([b.fill_instants(fill) for b in self.books])
        return self._clocks[fill]

    def closes_on_points(self, k: int) -> np.ndarray:
        """Book ``k``'s latest base-currency close at or before each equity point (0 before its first bar):
        made on first use and kept for the books the runs trade (the curve marks positions with it)."""
        row = self._closes.get(k)
        if row is None:
            book = self.books[k]
            found = self._lasts.get(id(book.close_at))  # books sharing close instants share this
            if found is None:
                last = np.searchsorted(book.close_at, self.point_at, side="right") - 1
                found = self._lasts[id(book.close_at)] = (last >= 0, np.maximum(last, 0))
            row = self._closes[k] = np.where(found[0], book.close_base[found[1]], 0.0)
        return row

    def sizing_marks(self, fill: str) -> np.ndarray:
        """(ticks, books): base-currency mark of each book known strictly before each tick's instant (``Book.mark``
        for every pair, one row per tick: the policy reads the row of the held books at each entry instant).
        Built on first use, per fill."""
        if fill not in self._marks:
            instants = self.clock(fill).instants
            marks = np.empty((len(instants), len(self.books)))
            lasts: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # books sharing close instants share this
            for k, book in enumerate(self.books):
                found = lasts.get(id(book.close_at))
                if found is None:
                    last = np.searchsorted(book.close_at, instants, side="left") - 1
                    found = lasts[id(book.close_at)] = (last >= 0, np.maximum(last, 0))
                marks[:, k] = np.where(found[0], book.close_base[found[1]], book.open_base[0])
            self._marks[fill] = marks
        return self._marks[fill]

    def agenda(self, plan: Plan, fill: str) -> tuple[Agenda, list[PlannedAction]]:
        """The plan's visits (``engine.execution.agenda``) and its actions they point into. Kept for the last
        few layouts: the points of a sweep whose plans put the same kinds of actions on the same bars (``hold``,
        the sizing, limits, costs) share one."""
        actions = PlanActions.of(self, plan)
        key = (fill, actions.layout())
        agenda = self._agendas.get(key)
        if agenda is None:
            while len(self._agendas) >= AGENDAS_KEPT:
                self._agendas.pop(next(iter(self._agendas)))
            agenda = self._agendas[key] = build_agenda(self, actions, fill)
        return agenda, actions.flat


_ONES: dict[int, np.ndarray] = {}  # length -> read-only ones (the FX rates of base-currency books, shared)


def _ones(n: int) -> np.ndarray:
    ones = _ONES.get(n)
    if ones is None:
        ones = _ONES[n] = np.broadcast_to(np.float64(1.0), (n,))
    return ones


def _next_tradable(stale: np.ndarray) -> np.ndarray:
    """bar -> the first non-stale bar at or after it (len(stale) where there is none), int32."""
    n = len(stale)
    if not stale.any():
        return np.arange(n, dtype=np.int32)
    own = np.where(np.asarray(stale, dtype=bool), n, np.arange(n, dtype=np.int32))
    return np.minimum.accumulate(own[::-1])[::-1].astype(np.int32) if n else np.zeros(0, dtype=np.int32)


_ISO_DAYS: dict[int, str] = {}  # day number since 1970-01-01 -> YYYY-MM-DD (a few thousand distinct days)
_PER_DAY = {"D": 1, "h": 24, "m": 1440, "s": 86_400, "ms": 86_400_000, "us": 86_400_000_000,
            "ns": 86_400_000_000_000}
_NAT = np.iinfo(np.int64).min


def iso_day(day: int) -> str:
    """YYYY-MM-DD of a day number since 1970-01-01 (made once per process)."""
    text = _ISO_DAYS.get(day)
    if text is None:
        text = _ISO_DAYS[day] = str(np.datetime64(day, "D"))
    return text


class IsoDates(Sequence[str]):
    """The ISO session dates (YYYY-MM-DD) of a book's bars, each made when read (not kept: a long sweep reads the
    dates of its fills only, and keeping them would grow with every point). The text of each day number is
    made once per process (``_ISO_DAYS``)."""

    def __init__(self, index: pd.DatetimeIndex) -> None:
        self._stamps = _raw(index)  # the index's own datetime64 values (no copy)
        self._ints: np.ndarray | None = None
        self._per_day = 0
        if self._stamps.dtype.kind == "M":
            unit, count = np.datetime_data(self._stamps.dtype)
            if unit in _PER_DAY and _PER_DAY[unit] % count == 0:
                self._per_day = _PER_DAY[unit] // count
                self._ints = self._stamps.view(np.int64)  # a view: no copy

    def __len__(self) -> int:
        return len(self._stamps)

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        ints = self._ints
        if ints is None or type(i) is not int:
            return str(self._stamps[i].astype("datetime64[D]"))
        value = ints.item(i)
        if value == _NAT:
            return "NaT"
        return iso_day(value // self._per_day)  # floor, as the cast to datetime64[D] rounds

    def day_numbers(self, bars: np.ndarray) -> np.ndarray | None:
        """The day numbers (``iso_day``) of the dates at ``bars`` (None where some date is not one: NaT, or a
        unit finer than a day does not divide)."""
        if self._ints is None:
            return None
        values = self._ints[bars]
        return None if (values == _NAT).any() else values // self._per_day

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, Sequence) else NotImplemented

    __hash__ = None  # type: ignore[assignment]


_BOOK_COLUMNS = (("open", np.dtype(np.float64)), ("close", np.dtype(np.float64)), ("stale", np.dtype(np.bool_)))


def _columns(frame: pd.DataFrame, wanted: Sequence[tuple[str, np.dtype]]) -> list[np.ndarray]:
    """``frame[name].to_numpy(dtype=dtype)`` of each wanted column: the same values (a read-only view, as pandas
    gives), read from the frame's blocks where a column is a row of a plain numpy block of that dtype (a price
    frame: one float block and the stale flags). ``frame[name]`` builds a Series per column: about 0.1 ms, 0.15 s
    for the three columns of 500 symbols. Any other layout takes the public path."""
    try:
        mgr = frame._mgr
        blocks, blknos, blklocs = mgr.blocks, mgr.blknos, mgr.blklocs
        names = frame.columns.tolist()
    except AttributeError:  # another pandas' internals
        return [frame[name].to_numpy(dtype=dtype) for name, dtype in wanted]
    out = []
    for name, dtype in wanted:
        values = None
        if names.count(name) == 1:
            pos = names.index(name)
            block = blocks[blknos[pos]].values
            if type(block) is np.ndarray and block.ndim == 2 and block.dtype == dtype:
                values = block[blklocs[pos]]  # a view of the block's row (what Series.to_numpy gives)
                values.flags.writeable = False
        out.append(frame[name].to_numpy(dtype=dtype) if values is None else values)
    return out


def make_book(symbol: str, frame: pd.DataFrame, fx_series: FxRates | pd.Series | None,
              rates: FxRates | None = None) -> Book:
    info = listing(symbol)
    index = frame.index if type(frame.index) is pd.DatetimeIndex else pd.DatetimeIndex(frame.index)
    rates = rates if rates is not None else as_rates(fx_series)
    open_, close, stale = _columns(frame, _BOOK_COLUMNS)
    n = len(index)
    # a base-currency listing (or rates all 1.0): x / 1.0 is x, so the base prices are the raw arrays
    fx = _ones(n) if n and info.currency == rates.base else _fx_rates(rates, info, symbol, index)
    if fx is _ONES.get(n) or (len(fx) and bool((fx == 1.0).all())):
        fx = _ones(len(fx))
        open_base, close_base = open_, close
    else:
        open_base, close_base = open_ / fx, close / fx
    return Book(
        symbol=symbol, exchange=info.exchange, index=index, dates=IsoDates(index), open=open_,
        close=close, stale=stale, fx=fx, open_base=open_base, close_base=close_base, lot_size=info.lot_size,
        hk=info.is_hk, next_tradable=_next_tradable(stale), listing=info,
    )


def _raw(index: pd.DatetimeIndex) -> np.ndarray:
    """``index.to_numpy()``, without its overhead for a plain tz-naive index (its own datetime64 array)."""
    return index.values if type(index) is pd.DatetimeIndex and index.tz is None else index.to_numpy()


def _union_dates(books: Sequence[Book]) -> tuple[pd.DatetimeIndex, list[int]]:
    """The union of the books' dates, sorted (numpy on the raw values: no Timestamp objects per bar; books with
    the same dates are taken once), and each book's group of books with equal dates."""
    distinct: dict[tuple[int, object, object], list[tuple[np.ndarray, int]]] = {}
    groups: list[int] = []
    arrays: list[np.ndarray] = []
    for book in books:
        raw = _raw(book.index)
        same = distinct.setdefault((len(raw), raw[0], raw[-1]) if len(raw) else (0, None, None), [])
        group = next((g for other, g in same if other.dtype == raw.dtype and np.array_equal(other, raw)), None)
        if group is None:
            group = len(arrays)
            same.append((raw, group))
            arrays.append(raw)
        groups.append(group)
    return (pd.DatetimeIndex(np.unique(np.concatenate(arrays))) if arrays else pd.DatetimeIndex([])), groups


def build_market(
    frames: dict[str, pd.DataFrame],
    symbols: Sequence[str],
    fx_series: FxRates | pd.Series | None,
    bench_close: pd.Series | None,
) -> Market:
    """Arrays for ``symbols`` (in this order: the order fills of one instant are decided in)."""
    used = [s for s in symbols if s in frames and not frames[s].empty]
    rates = as_rates(fx_series)
    books = [make_book(s, frames[s], fx_series, rates) for s in used]
    index, groups = _union_dates(books)
    n = len(index)
    aligned = None
    if bench_close is not None and len(bench_close):
        from engine.analysis.metrics import align_benchmark

        series = align_benchmark(bench_close, index)
        aligned = None if series is None else series.to_numpy(dtype=float)
    years = (index[-1] - index[0]).days / 365.25 if n else 0.0
    return Market(index=index, books=books, bench_aligned=aligned, years=years, _date_group=groups)
