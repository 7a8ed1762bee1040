"""What the policy visits for a plan: its actions grouped by tick, then by book (built with numpy).

A plan's actions are known before the run; the policy only has to visit the ticks where a book has an action on
a real (non-stale) bar, plus the ticks where a held lot falls due (those come up during the run). ``Agenda``
lists the first kind once, in time order: per tick, the books acting there in book order, each with its bar and
its entry and exit actions in plan order. Actions on stale bars are left out: a placeholder bar never fills, and
nothing else happens to a book at a tick where its bar is stale.

Nothing here depends on the run's state, so one agenda serves every run of plans with the same layout (actions
on the same bars, of the same kinds: a sweep over ``hold`` or the sizing) and fill; ``Market.agenda`` keeps the
last few.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from engine.plan.planner import Plan, PlannedAction

if TYPE_CHECKING:
    from engine.execution.books import Market

# one book's visit at one tick: (book, bar, entry actions, exit and event-exit actions), each action by its
# position in ``PlanActions.flat`` (plan order within each list; lists never changed once built)
Visit = tuple[int, int, list[int], list[int]]


@dataclass(frozen=True)
class PlanActions:
    """A plan's actions in book order, then plan order (``flat``), and what the agenda is built from: the
    position where each book's actions start, each action's bar and whether it is an entry. Two plans with the
    same layout (a sweep over ``hold``: the same events on the same bars) have the same agenda."""

    flat: list[PlannedAction]
    segments: list[tuple[int, int, int]]  # (book, first, end) in ``flat``
    bars: np.ndarray
    entry: np.ndarray

    @classmethod
    def of(cls, market: Market, plan: Plan) -> PlanActions:
        flat: list[PlannedAction] = []
        segments: list[tuple[int, int, int]] = []
        for k, book in enumerate(market.books):
            actions = plan.actions.get(book.symbol)
            if actions:
                segments.append((k, len(flat), len(flat) + len(actions)))
                flat.extend(actions)
        n = len(flat)
        bars = np.fromiter([a.bar for a in flat], dtype=np.int64, count=n)
        entry = np.fromiter([a.action == "enter" for a in flat], dtype=bool, count=n)
        return cls(flat, segments, bars, entry)

    def layout(self) -> bytes:
        """The agenda's key: equal for plans whose actions sit on the same bars with the same kinds."""
        return repr(self.segments).encode() + self.bars.tobytes() + self.entry.tobytes()


@dataclass(frozen=True)
class Agenda:
    ticks: list[int]  # ascending: ticks where some book has an action on a real bar
    visits: list[list[Visit]]  # per tick: the books acting there, in book order
    entering: list[bool]  # per tick: some visit has an entry (the sizing equity is needed)
    # per action (its position in ``PlanActions.flat``): its bar's raw fill price, FX rate and ISO date, read
    # for every action at once (an entry reads them from here, not book by book)
    prices: list[float] = field(default_factory=list)
    fxs: list[float] = field(default_factory=list)
    days: list[str] = field(default_factory=list)


def build_agenda(market: Market, actions: PlanActions, fill: str) -> Agenda:
    clock = market.clock(fill)
    n = len(actions.flat)
    if not n:
        return Agenda([], [], [])
    bars = actions.bars
    books = np.empty(n, dtype=np.int64)
    ticks = np.empty(n, dtype=np.int64)
    stale = np.empty(n, dtype=bool)
    for k, lo, hi in actions.segments:
        books[lo:hi] = k
        ticks[lo:hi] = clock.tick_of[k][bars[lo:hi]]
        stale[lo:hi] = market.books[k].stale[bars[lo:hi]]
    keep = np.flatnonzero(~stale)
    order = keep[np.lexsort((books[keep], ticks[keep]))]  # stable: plan order within one (tick, book)
    out_ticks: list[int] = []
    visits: list[list[Visit]] = []
    entering: list[bool] = []
    tick, book = -1, -1
    enters: list[int] = []
    others: list[int] = []
    for j, t, k, bar, entry in zip(order.tolist(), ticks[order].tolist(), books[order].tolist(),
                                   bars[order].tolist(), actions.entry[order].tolist(), strict=True):
        if t != tick:
            tick, book = t, -1
            out_ticks.append(t)
            visits.append([])
            entering.append(False)
        if k != book:
            book = k
            enters, others = [], []
            visits[-1].append((k, bar, enters, others))
        if entry:
            enters.append(j)
            entering[-1] = True
        else:
            others.append(j)
    return Agenda(out_ticks, visits, entering, *_bar_values(market, actions, fill))


def _bar_values(market: Market, actions: PlanActions, fill: str) -> tuple[list[float], list[float], list[str]]:
    """Each action's bar's raw fill price, FX rate and ISO date (``Book.fill_price``, ``Book.fx``,
    ``Book.dates``), gathered with numpy book by book; the dates made once per distinct day."""
    from engine.execution.books import IsoDates, iso_day  # books imports this module
    n, bars = len(actions.flat), actions.bars
    prices, fxs = np.empty(n), np.empty(n)
    numbers = np.empty(n, dtype=np.int64)
    exact = True
    for k, lo, hi in actions.segments:
        book = market.books[k]
        at = bars[lo:hi]
        prices[lo:hi] = (book.open if fill == "open" else book.close)[at]
        fxs[lo:hi] = book.fx[at]
        days = book.dates.day_numbers(at) if isinstance(book.dates, IsoDates) else None
        if days is None:
            exact = False
        else:
            numbers[lo:hi] = days
    if exact:
        distinct, where = np.unique(numbers, return_inverse=True)
        texts = [iso_day(day) for day in distinct.tolist()]
        dates = [texts[w] for w in where.tolist()]
    else:  # some book's dates are not day numbers: each date as the book gives it
        dates = [market.books[k].dates[i] for k, lo, hi in actions.segments for i in bars[lo:hi].tolist()]
    return prices.tolist(), fxs.tolist(), dates
