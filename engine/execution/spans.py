"""Which bars backtrader has to see: the spans where the plan holds a position, packed into a few feeds.

A **span** of one book is the contiguous range of its bars from the fill that opens a position (net position
0 -> non-zero) to the fill that makes it flat again, both bars included. Fills of one instant are taken
together, so an exit and an opposite entry at the same instant keep one span. A position still open after the
book's last fill runs to the book's last bar: its marks move the equity curve until the run's last session.
Outside its spans a book holds nothing, so its bars cannot change cash, value or exposure.

Spans are packed into **slots**, one backtrader feed each, by interval scheduling in start order: a slot takes
a span only when its previous span closed at an earlier instant (a feed never has two bars at one instant, and
its position is flat when the slot changes symbol); a span still open at the end keeps its slot. The number of
feeds is the largest number of positions open at once, not the number of symbols, and the number of bars the
number of bars held.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

from engine.execution.policy import Fill


@dataclass(frozen=True)
class Span:
    """Bars ``first..last`` (inclusive) of book ``book``; ticks of the opening fill and of the closing fill
    (``end_tick`` None: still open after the book's last bar)."""

    book: int
    first: int
    last: int
    start_tick: int
    end_tick: int | None


def position_spans(fills: Sequence[Fill], bars_per_book: Sequence[int]) -> list[Span]:
    """The spans of every book, from the policy's fills (in the order they were booked: ticks ascending)."""
    by_book: dict[int, list[Fill]] = {}
    for fill in fills:
        by_book.setdefault(fill.book, []).append(fill)
    spans: list[Span] = []
    for book in sorted(by_book):
        position = 0
        opened: tuple[int, int] | None = None  # (bar, tick) of the fill that opened the current span
        group = by_book[book]
        j = 0
        while j < len(group):
            tick, bar = group[j].tick, group[j].bar
            while j < len(group) and group[j].tick == tick:  # one instant: one bar of this book
                position += group[j].signed
                j += 1
            if opened is None:
                opened = (bar, tick)
            if position == 0:
                spans.append(Span(book, opened[0], bar, opened[1], tick))
                opened = None
        if opened is not None:
            spans.append(Span(book, opened[0], bars_per_book[book] - 1, opened[1], None))
    return spans


def pack_slots(spans: Sequence[Span]) -> list[list[Span]]:
    """Spans in slots (each slot's spans in time order): the fewest slots such that a slot's next span opens
    at a later instant than its previous one closed."""
    slots: list[list[Span]] = []
    free: list[tuple[int, int]] = []  # (closing tick, slot) of slots whose last span is closed
    for span in sorted(spans, key=lambda s: (s.start_tick, s.book)):
        if free and free[0][0] < span.start_tick:
            _, slot = heapq.heappop(free)
        else:
            slot = len(slots)
            slots.append([])
        slots[slot].append(span)
        if span.end_tick is not None:
            heapq.heappush(free, (span.end_tick, slot))
    return slots


def whole_books(bars_per_book: Sequence[int], first_ticks: Sequence[int]) -> list[list[Span]]:
    """One slot per book holding every bar of it (what backtrader was fed before spans: the reference)."""
    return [[Span(k, 0, n - 1, first_ticks[k], None)] for k, n in enumerate(bars_per_book) if n]


def value_order(fills: Sequence[Fill], n_books: int) -> list[int]:
    """The order backtrader's broker sums positions in when it is fed every book: the books filled at the
    run's first instant (tick 0) in fill order, then the others in book order. The equity curve sums in this
    order whatever the feeds are, so its floats do not depend on how the books are packed."""
    first = [f.book for f in fills if f.tick == 0]
    return list(dict.fromkeys([*first, *range(n_books)]))
