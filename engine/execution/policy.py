"""The execution policy, written once: what happens at each fill instant. Both drivers call it.

The policy is a plain-Python state machine over the run's clock (``engine.execution.clock``): ``run()``
visits, in time order, every tick where a book has an action or a due lot, and decides and books every fill
there (``fills``); the fast path applies them as they are, the backtrader driver submits them to backtrader's
broker cycle by cycle (whose cash must agree). Rules, in order, at one instant:

1. Bars that are placeholders (``stale``) never fill: an exit due on one moves to the next real bar.
2. ``--overlap extend``: an entry signal on a symbol already held on that side restarts the held position's hold
   clock first, so a hold exit due at this same instant is cancelled (no sale and buy-back).
3. Exits: positions whose exit is due (hold clock, stop-loss, trailing stop, take-profit: the entry's
   ``Exits`` with the run's parameters filled in), positions closed by exit signals, and positions whose
   ``Exits.on_events`` names the type of an event placed at this instant (reason ``event:TYPE``), in book
   order. Their proceeds are cash for this instant's entries.
4. Entries, in book order then signal order: overlap (``extend`` restarts the clock, ``ignore`` skips, ``add``
   opens a second position), shorts need ``allow_short``, an opposite position is closed first; the size comes
   from ``engine.execution.sizing`` with the equity known strictly before this instant (cash after every earlier
   fill plus each position at its latest close strictly before the instant); an entry beyond a portfolio limit
   (``--max-positions``, ``--max-gross``, ``--max-weight``; exposure at those same marks) is skipped with the
   limit in its reason; an order whose cost exceeds the cash (after every earlier fill and this instant's exits
   and earlier entries) is refused unless ``allow_margin``.

``hold`` counts sessions of the symbol's exchange: the exit is at the session ``hold`` sessions after the entry
session, or at the next bar if the data has no bar for it. Stop-loss, trailing stop and take-profit are checked on
closes from the entry (fill ``close``: from the next close); a hit exits at the next fill point of that symbol.
"""

from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass, field

import numpy as np

from engine.execution.agenda import Visit
from engine.execution.books import Book, Market
from engine.execution.clock import iso_utc_many
from engine.execution.records import OrderRecord, TradeRecord, fee_items, records_of, round_trip
from engine.execution.sizing import entry_size
from engine.market.costs import Fees, FeeTotal
from engine.plan.config import RunConfig
from engine.plan.planner import NO_EXITS, Plan
from strategies.base import Exits

# Slack of the stop-loss / trailing-stop / take-profit comparisons (returns, as fractions): far above the float
# error of close / entry - 1 (about 1e-16) and far below a price tick's share of a return.
GUARD_SLACK = 1e-12
_NO_ACTIONS: list[int] = []  # a visit of a woken book without planned actions (never changed)
_ENTRY_AT, _EXIT_AT = 23, 24  # positions of entry_at / exit_at in a trade row (TradeRecord's field order)


def _first(row: list[object]) -> int:
    return row[0]  # type: ignore[return-value]


@dataclass(eq=False)
class Lot:
    """One open position opened by one entry (``add`` overlap opens several per symbol)."""

    trade_id: int
    book: int
    side: str
    size: int
    entry_bar: int
    entry_tick: int
    entry_price: float  # raw bar price, listing currency
    fx_entry: float
    entry_exec: float  # base-currency price
    entry_fees: float
    event_id: str
    event_type: str
    hold_bar: int | None  # exit bar of the hold clock (None: no hold exit)
    exits: Exits = NO_EXITS  # the entry's exit rules (stop-loss, take-profit, trailing stop, exit events)
    guard_bar: int | None = None  # exit bar of a stop-loss / trailing-stop / take-profit hit
    guard_reason: str = ""
    entry_fee_items: str = ""  # the entry fill's fees item by item (fee_items)

    @property
    def due(self) -> int | None:
        if self.hold_bar is None:
            return self.guard_bar
        if self.guard_bar is None:
            return self.hold_bar
        return min(self.hold_bar, self.guard_bar)

    @property
    def reason(self) -> str:
        if self.guard_bar is not None and (self.hold_bar is None or self.guard_bar < self.hold_bar):
            return self.guard_reason
        return "hold"


@dataclass(frozen=True)
class Fill:
    """One executed order: ``signed`` shares of book ``book`` at bar ``bar`` (tick ``tick``)."""

    tick: int
    book: int
    bar: int
    signed: int
    price: float  # raw, listing currency
    price_base: float
    fees: Fees
    kind: str  # entry | exit

    @property
    def cash_delta(self) -> float:
        return -self.signed * self.price_base - self.fees.total


@dataclass
class Policy:
    market: Market
    config: RunConfig
    plan: Plan
    stop_loss: float | None = None
    take_profit: float | None = None
    records: bool = True
    cash: float = 0.0
    trades: list[TradeRecord] = field(default_factory=list)
    orders: list[OrderRecord] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)

    def __post_init__(self) -> None:
        n_books = len(self.market.books)
        self.fill = self.config.fill
        self.clock = self.market.clock(self.fill)
        self.cash = float(self.config.cash)
        self.lots: list[list[Lot]] = [[] for _ in range(n_books)]
        self._open = 0  # lots open, over every book
        self._pos = [0.0] * n_books  # net shares per book
        self._rank: dict[int, int] = {}  # book -> order of its first fill
        self._held: list[int] = []  # books with a non-zero position, in ``_rank`` order
        self._agenda, self._actions = self.market.agenda(self.plan, self.fill)
        self._books = self.market.books
        self._fill_px = [b.open if self.fill == "open" else b.close for b in self._books]  # raw fill prices
        self._symbols = [b.symbol for b in self._books]  # what an entry reads of its book, in one place each
        self._lot_sizes = [b.lot_size for b in self._books]
        self._marks: np.ndarray | None = None  # Market.sizing_marks, read on the first entry
        self._fee_totals: list[FeeTotal | None] = [None] * n_books  # Book.fee_totals, made on a book's first refusal
        # records as rows (``OrderRecord`` / ``TradeRecord`` field order), made into records by ``finish``;
        # a trade row holds its UTC instants as int ns until then (converted in one pass)
        self._order_rows: list[tuple[object, ...]] = []
        self._trade_rows: list[list[object]] = []
        # ticks where a lot falls due (the agenda has the plan's actions): tick -> {book: bar}
        self._heap: list[int] = []
        self._due: dict[int, dict[int, int]] = {}
        self._now = -1  # the tick being processed
        self._next_id = 1
        cfg = self.config
        self._limits = cfg.max_positions is not None or cfg.max_weight is not None or cfg.max_gross is not None

    @property
    def pos(self) -> dict[int, float]:
        """Net position of every book traded so far, in the order of their first fill."""
        return {k: self._pos[k] for k in self._rank}

    # ------------------------------------------------------------------ driving

    def run(self) -> None:
        """Process every tick where something can happen, in time order (the fast path): the agenda's ticks and
        the ticks where a lot falls due."""
        agenda = self._agenda
        ticks, visits, entering = agenda.ticks, agenda.visits, agenda.entering
        heap, due = self._heap, self._due
        a, n = 0, len(ticks)
        while a < n or heap:
            if heap and (a >= n or heap[0] < ticks[a]):
                t = heapq.heappop(heap)
                self._now = t
                self._process(t, (), due.pop(t), False)
                continue
            t = ticks[a]
            woken = None
            if heap and heap[0] == t:
                heapq.heappop(heap)
                woken = due.pop(t)
            self._now = t
            self._process(t, visits[a], woken, entering[a])
            a += 1

    def sizing_equity(self, t: int) -> float:
        """Cash plus each held position at its mark strictly before tick ``t``, summed in the order the books
        were first traded."""
        if not self._held:
            return self.cash + 0
        if self._marks is None:
            self._marks = self.market.sizing_marks(self.fill)
        marks = self._marks[t]
        pos = self._pos
        return self.cash + sum([pos[k] * marks.item(k) for k in self._held])

    # ------------------------------------------------------------------ one instant

    def _wake(self, k: int, bar: int) -> None:
        """Visit book ``k`` at the tick of its bar ``bar`` (a lot's due exit there); a tick already processed
        is not visited again (the lot waits for the book's next visit)."""
        tick = self.clock.tick_of[k].item(bar)
        if tick <= self._now:
            return
        woken = self._due.get(tick)
        if woken is None:
            heapq.heappush(self._heap, tick)
            self._due[tick] = {k: bar}
        else:
            woken[k] = bar

    def _process(self, t: int, planned: list[Visit] | tuple[()], woken: dict[int, int] | None,
                 entering: bool) -> None:
        # Only the books with an action (the agenda) or a due lot (woken) at this tick can fill at it.
        books = self.market.books
        if woken:
            merged = {v[0]: v for v in planned}
            for k, i in woken.items():
                if k not in merged and not books[k].stale.item(i):
                    merged[k] = (k, i, _NO_ACTIONS, _NO_ACTIONS)
            visits: list[Visit] | tuple[()] = [merged[k] for k in sorted(merged)]
        else:
            visits = planned
        if not visits:
            return
        equity = self.sizing_equity(t) if entering else 0.0  # before this instant's fills
        plan = self._actions
        if self.config.overlap == "extend":
            for k, i, enters, _ in visits:
                lots = self.lots[k]
                if lots:
                    for j in enters:
                        action = plan[j]
                        for lot in lots:
                            if lot.side == action.side:
                                self._restart(lot, i, action.hold)
        for k, i, _, others in visits:
            lots = self.lots[k]
            if not lots:
                continue
            for lot in list(lots):
                due = lot.due
                if lot.entry_tick < t and due is not None and due <= i:
                    self._exit(lot, i, t, lot.reason)
            for j in others:
                action = plan[j]
                if action.action == "exit":
                    for lot in list(lots):
                        if lot.entry_tick < t and lot.side == action.side:
                            self._exit(lot, i, t, "signal")
                elif action.action == "event_exit":  # a later event the position's exit rules name
                    for lot in list(lots):
                        if lot.entry_tick < t and action.event_type in lot.exits.on_events:
                            self._exit(lot, i, t, f"event:{action.event_type}")
        if entering:
            for k, i, enters, _ in visits:
                for j in enters:
                    self._enter(k, j, i, t, equity)

    def _restart(self, lot: Lot, i: int, hold: int | None) -> None:
        book = self.market.books[lot.book]
        lot.hold_bar = None if hold is None else book.exit_bar(i, hold)
        self._schedule(lot)

    def _schedule(self, lot: Lot) -> None:
        due = lot.due
        if due is not None and due < len(self.clock.tick_of[lot.book]):
            self._wake(lot.book, due)

    def _enter(self, k: int, j: int, i: int, t: int, equity: float) -> None:
        """Entry action ``j`` (its position in the plan's actions) of book ``k`` at its bar ``i``, tick ``t``."""
        cfg = self.config
        action = self._actions[j]
        side = action.side
        long = side == "long"
        verb = "buy" if long else "sell"
        lots = self.lots[k]
        if lots and cfg.overlap != "add" and any(lot.side == side for lot in lots):
            if cfg.overlap == "extend":
                for lot in [lot for lot in lots if lot.side == side]:
                    self._restart(lot, i, action.hold)
                reason = "already held: hold clock restarted (overlap=extend)"
            else:
                reason = "already held (overlap=ignore)"
            self._order(k, i, verb, 0, "skipped", reason, action.event_id)
            return
        if not long and not cfg.allow_short:
            self._order(k, i, verb, 0, "refused", "shorts not allowed (use --allow-short)", action.event_id)
            return
        if lots:
            for lot in [lot for lot in lots if lot.side != side and lot.entry_tick < t]:
                self._exit(lot, i, t, "signal")
        agenda = self._agenda  # the action's bar's price, FX rate and date (book.fill_price(i), .fx, .dates)
        price = agenda.prices[j]
        fx = agenda.fxs[j]
        price_base = price / fx
        lot_size = self._lot_sizes[k]
        target, size = entry_size(cfg, action, equity, price_base, lot_size)
        records = self.records
        if size <= 0:
            if records:
                self._order(k, i, verb, 0, "skipped", f"target {target:.2f} is below one board lot ({lot_size})",
                            action.event_id)
            return
        if self._limits:
            limit = self._limit_reason(k, size * price_base, equity, t)
            if limit is not None:
                self._order(k, i, verb, size, "skipped", limit, action.event_id)
                return
        signed = size if long else -size
        if long and not cfg.allow_margin and self.cash + -signed * price_base < 0:
            # refused whatever its fees (they are >= 0, and rounding is monotone: cash + (cost - fees) < 0 too);
            # only the refusal's text needs them, and only their total
            if records:
                day = agenda.days[j]
                fee_total = self._fee_totals[k]
                if fee_total is None:
                    fee_total = self._fee_totals[k] = self._books[k].fee_totals(cfg.costs)
                delta = -signed * price_base - fee_total(size, price_base, fx, verb, day)
                self._order_rows.append((day, self._symbols[k], verb, size, "refused",
                                         f"insufficient cash ({self.cash:.2f} available, {-delta:.2f} needed)",
                                         action.event_id, None, None))
            return
        book = self._books[k]
        day = agenda.days[j]
        fees = book.fees_on(cfg.costs, day, fx, size, price_base, verb)
        total = fees.total
        delta = -signed * price_base - total
        if long and self.cash + delta < 0 and not cfg.allow_margin:
            if records:
                self._order_rows.append((day, book.symbol, verb, size, "refused",
                                         f"insufficient cash ({self.cash:.2f} available, {-delta:.2f} needed)",
                                         action.event_id, None, None))
            return
        lot = Lot(
            trade_id=self._next_id, book=k, side=side, size=size, entry_bar=i, entry_tick=t,
            entry_price=price, fx_entry=fx, entry_exec=price_base, entry_fees=total,
            entry_fee_items=fee_items(fees) if records else "",
            event_id=action.event_id, event_type=action.event_type,
            hold_bar=None if action.hold is None else book.exit_bar(i, action.hold), exits=action.exits,
        )
        self._next_id += 1
        self._arm_guard(book, lot)
        lots.append(lot)
        self._open += 1
        self._book_fill(Fill(t, k, i, signed, price, price_base, fees, "entry"))
        if records:
            self._order_rows.append((day, book.symbol, verb, size, "filled", "entry", action.event_id, price, total))
        self._schedule(lot)

    def _exit(self, lot: Lot, i: int, t: int, reason: str) -> None:
        k = lot.book
        book = self._books[k]
        price = self._fill_px[k].item(i)
        fx = book.fx.item(i)
        price_base = price / fx
        verb = "sell" if lot.side == "long" else "buy"
        day = book.dates[i]
        fees = book.fees_on(self.config.costs, day, fx, lot.size, price_base, verb)
        total = fees.total
        signed = -lot.size if lot.side == "long" else lot.size
        self._book_fill(Fill(t, k, i, signed, price, price_base, fees, "exit"))
        records = self.records
        if records:
            self._order_rows.append((day, book.symbol, verb, lot.size, "filled", "exit", lot.event_id, price, total))
        self.lots[k].remove(lot)
        self._open -= 1
        self._trade(lot, i, price, price_base, total, reason, fee_items(fees) if records else None)

    def _book_fill(self, fill: Fill) -> None:
        self.cash += fill.cash_delta
        k = fill.book
        self._rank.setdefault(k, len(self._rank))
        was = self._pos[k]
        size = self._pos[k] = was + fill.signed
        if not was and size:
            bisect.insort(self._held, k, key=self._rank.__getitem__)
        elif was and not size:
            self._held.remove(k)
        self.fills.append(fill)

    def _arm_guard(self, book: Book, lot: Lot) -> None:
        """The first close that hits the stop-loss, trailing stop or take-profit (that order of precedence on
        one close); the exit is at the next bar's fill point."""
        rules = lot.exits
        stop = rules.stop_loss if rules.stop_loss is not None else self.stop_loss
        take = rules.take_profit if rules.take_profit is not None else self.take_profit
        trail = rules.trailing_stop
        if stop is None and take is None and trail is None:
            return
        first = lot.entry_bar + (1 if self.fill == "close" else 0)
        closes = book.close[first:]
        long = lot.side == "long"
        move = closes / lot.entry_price - 1.0
        ret = move if long else -move
        hits: list[tuple[str, np.ndarray]] = []
        # a close exactly at a threshold hits it: 22.5 / 25 - 1 is -0.09999999999999998 in floats, not -0.1
        if stop is not None:
            hits.append(("stop_loss", ret <= -stop + GUARD_SLACK))
        if trail is not None:  # against the best close since the entry (the entry price to begin with)
            if long:
                peak = np.maximum.accumulate(np.maximum(closes, lot.entry_price))
                hits.append(("trailing_stop", closes / peak - 1.0 <= -trail + GUARD_SLACK))
            else:
                trough = np.minimum.accumulate(np.minimum(closes, lot.entry_price))
                hits.append(("trailing_stop", closes / trough - 1.0 >= trail - GUARD_SLACK))
        if take is not None:
            hits.append(("take_profit", ret >= take - GUARD_SLACK))
        firsts = [(int(np.argmax(mask)), rank, name) for rank, (name, mask) in enumerate(hits) if mask.any()]
        if not firsts:
            return
        offset, _, name = min(firsts)
        bar = book.tradable_from(first + offset + 1)
        if bar < len(book.dates):
            lot.guard_bar = bar
            lot.guard_reason = name

    def _limit_reason(self, k: int, value: float, equity: float, t: int) -> str | None:
        """Why an entry of ``value`` (base currency) in book ``k`` breaks a portfolio limit (None = it does not).
        Exposure is measured with the sizing marks (latest closes strictly before the instant) and the sizing
        equity, after this instant's earlier fills."""
        cfg = self.config
        if cfg.max_positions is not None and self._open >= cfg.max_positions:
            return f"max open positions reached ({self._open} open, --max-positions {cfg.max_positions})"
        if cfg.max_weight is None and cfg.max_gross is None:
            return None
        if equity <= 0:
            return "exposure limits: equity is not positive"
        marks = self.market.sizing_marks(self.fill)[t]
        if cfg.max_weight is not None:
            weight = (abs(self._pos[k]) * marks.item(k) + value) / equity
            if weight > cfg.max_weight + 1e-12:
                return f"weight {weight:.2%} would exceed --max-weight {cfg.max_weight:.2%}"
        if cfg.max_gross is not None:
            # every book traded so far, in rank order (flat ones add 0.0 and are skipped, unless a mark of some
            # book is NaN or infinite: 0 x NaN is NaN, as summing them all gives)
            books = self._rank if self.market.unfinite_books else self._held
            pos = self._pos
            gross = (sum([abs(pos[b]) * marks.item(b) for b in books]) + value) / equity
            if gross > cfg.max_gross + 1e-12:
                return f"gross exposure {gross:.2%} would exceed --max-gross {cfg.max_gross:.2%}"
        return None

    # ------------------------------------------------------------------ records

    def _order(self, k: int, i: int, verb: str, size: int, status: str, reason: str, event_id: str | None,
               price: float | None = None, fees: float | None = None) -> None:
        """An order of book ``k`` at its bar ``i`` (kept with ``records``)."""
        if self.records:
            book = self._books[k]
            self._order_rows.append((book.dates[i], book.symbol, verb, size, status, reason, event_id, price, fees))

    def _trade(self, lot: Lot, i: int, price: float, exec_price: float, exit_fees: float,
               reason: str, exit_fee_items: str | None = None) -> None:
        """The trade row of a closed (or, reason ``open``, still open) lot. Without ``records`` (sweep
        points: metrics only) the UTC instants and fee items are left out (None and "")."""
        book = self._books[lot.book]
        entry_value, pnl, ret = round_trip(lot.side, lot.size, lot.entry_exec, exec_price, lot.entry_fees,
                                           exit_fees)
        is_open = reason == "open"
        session = book.session
        records = self.records
        fill = self.fill
        # field order of TradeRecord; entry_at/exit_at as int ns (made text in ``finish``)
        self._trade_rows.append([
            lot.trade_id, book.symbol, lot.side, lot.event_id, lot.event_type, book.dates[lot.entry_bar], fill,
            lot.entry_price, None if is_open else book.dates[i], None if is_open else fill, price, lot.size,
            lot.fx_entry, book.fx.item(i), lot.entry_fees, exit_fees, lot.entry_fees + exit_fees, entry_value, pnl,
            ret, reason, session.item(i) - session.item(lot.entry_bar), None,
            self.clock.instants.item(lot.entry_tick) if records else None,
            None if is_open or not records else book.fill_instants(fill).item(i),
            lot.entry_fee_items, exit_fee_items,
        ])

    def finish(self) -> None:
        """Positions still open are marked at their symbol's last close (open trades); the records are made
        from their rows (trades in trade id order, orders in the order they were decided)."""
        for k, lots in enumerate(self.lots):
            if not lots:
                continue
            book = self._books[k]
            last = len(book.dates) - 1
            for lot in lots:
                price = book.close.item(last)
                self._trade(lot, last, price, price / book.fx.item(last), 0.0, "open")
        rows = sorted(self._trade_rows, key=_first)
        if self.records:  # the UTC instants as ISO text, in one pass over all of them
            at = [row[_ENTRY_AT] for row in rows] + [row[_EXIT_AT] for row in rows if row[_EXIT_AT] is not None]
            text = iter(iso_utc_many(np.array(at, dtype=np.int64)))
            for row in rows:
                row[_ENTRY_AT] = next(text)
            for row in rows:
                if row[_EXIT_AT] is not None:
                    row[_EXIT_AT] = next(text)
        self.trades.extend(records_of(TradeRecord, rows))
        self.orders.extend(records_of(OrderRecord, self._order_rows))
        self._trade_rows, self._order_rows = [], []

    def curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(equity, cash, exposure) at each equity point: fills at or before the point's instant, positions at
        their latest close at or before it.

        Book by book, in book order (no books x points matrix): each traded book's position path times its
        closes is added to the running totals, which is the column sum of the full matrix term for term (a
        book never traded adds exactly 0.0 and is skipped, unless a close of it is not finite: NaN x 0 is
        NaN, as in the full sum)."""
        market = self.market
        n = market.n_points
        d_cash = np.zeros(n)
        by_book: dict[int, list[tuple[int, int]]] = {}
        if self.fills:
            instants = self.clock.instants[[f.tick for f in self.fills]]
            points = np.searchsorted(market.point_at, instants, side="left")
            for f, p in zip(self.fills, points.tolist(), strict=True):
                d_cash[p] += f.cash_delta
                by_book.setdefault(f.book, []).append((p, f.signed))
        cash = self.config.cash + np.cumsum(d_cash)
        held = np.zeros(n)
        gross = np.zeros(n)
        for k in sorted(by_book.keys() | market.unfinite_books):
            moves = by_book.get(k, [])
            # before the book's first fill it holds nothing; after a last fill that leaves it flat, nothing
            # again: those points add exactly 0.0 (unless a close is not finite: then every point)
            first, end = 0, n
            if moves and k not in market.unfinite_books:
                first = moves[0][0]
                if sum(signed for _, signed in moves) == 0:
                    end = moves[-1][0]
            d_pos = np.zeros(end - first)
            for p, signed in moves:
                if p < end:
                    d_pos[p - first] += signed
            marked = np.cumsum(d_pos) * market.closes_on_points(k)[first:end]
            held[first:end] += marked
            gross[first:end] += np.abs(marked)
        equity = cash + held
        with np.errstate(divide="ignore", invalid="ignore"):
            exposure = np.where(equity != 0, gross / np.where(equity != 0, equity, 1.0), 0.0)
        return equity, cash, exposure
