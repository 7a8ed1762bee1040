"""What the policy visits for a plan: its actions grouped by tick, then by book (built with numpy).

A plan's actions are known before the run; the policy only has to visit the ticks where a book has an action on
a real (non-stale) bar, plus the ticks where a held lot falls due (those come up during the run). ``Agenda``
lists the first kind once, in time order: per tick, the books acting there in book order, each with its bar and
its entry and exit actions in plan order. Actions on stale bars are left out: a placeholder bar never fills, and
nothing else happens to a book at a tick where its bar is stale.

Nothing here depends on the run's state, so one agenda serves every run of the same plan and fill
(``Market.agenda`` keeps the last few).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engine.plan.planner import Plan, PlannedAction

if TYPE_CHECKING:
    from engine.execution.books import Market

# one book's visit at one tick: (book, bar, entry actions, exit and event-exit actions), actions in plan order
# (lists, never changed once built)
Visit = tuple[int, int, list[PlannedAction], list[PlannedAction]]


@dataclass(frozen=True)
class Agenda:
    ticks: list[int]  # ascending: ticks where some book has an action on a real bar
    visits: list[list[Visit]]  # per tick: the books acting there, in book order
    entering: list[bool]  # per tick: some visit has an entry (the sizing equity is needed)


def build_agenda(market: Market, plan: Plan, fill: str) -> Agenda:
    clock = market.clock(fill)
    flat: list[PlannedAction] = []
    segments: list[tuple[int, int, int]] = []  # (book, first, end) in ``flat``
    for k, book in enumerate(market.books):
        actions = plan.actions.get(book.symbol)
        if actions:
            segments.append((k, len(flat), len(flat) + len(actions)))
            flat.extend(actions)
    if not flat:
        return Agenda([], [], [])
    n = len(flat)
    bars = np.fromiter((a.bar for a in flat), dtype=np.int64, count=n)
    books = np.empty(n, dtype=np.int64)
    ticks = np.empty(n, dtype=np.int64)
    stale = np.empty(n, dtype=bool)
    for k, lo, hi in segments:
        books[lo:hi] = k
        ticks[lo:hi] = clock.tick_of[k][bars[lo:hi]]
        stale[lo:hi] = market.books[k].stale[bars[lo:hi]]
    keep = np.flatnonzero(~stale)
    order = keep[np.lexsort((books[keep], ticks[keep]))]  # stable: plan order within one (tick, book)
    out_ticks: list[int] = []
    visits: list[list[Visit]] = []
    entering: list[bool] = []
    tick, book = -1, -1
    enters: list[PlannedAction] = []
    others: list[PlannedAction] = []
    for j, t, k, bar in zip(order.tolist(), ticks[order].tolist(), books[order].tolist(), bars[order].tolist(),
                            strict=True):
        if t != tick:
            tick, book = t, -1
            out_ticks.append(t)
            visits.append([])
            entering.append(False)
        if k != book:
            book = k
            enters, others = [], []
            visits[-1].append((k, bar, enters, others))
        action = flat[j]
        if action.action == "enter":
            enters.append(action)
            entering[-1] = True
        else:
            others.append(action)
    return Agenda(out_ticks, visits, entering)
