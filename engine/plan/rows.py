"""The planner's columnar path: a strategy's ``SignalRows`` (``Strategy.signal_rows``, built-ins only) to planned
actions, equal to planning the ``Signal`` objects its ``signals`` yields.

Entry sessions come from the context's per-exchange tables (``RunContext.entry_session_values``) and fill bars
from one ``engine.plan.fills.Bars.fill_bars`` call per symbol (the one fill-bar rule); only the actions
themselves are made one by one. Where a columnar answer would not be the scalar one (a symbol without
sessions, an event the calendar cannot place, repeated event ids) ``actions_from_rows`` returns None and the
planner asks ``signals``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from engine.execution.records import OrderRecord
from engine.plan.context import RunContext
from engine.plan.fills import NO_DATA, NO_SESSION, Bars, PlacementMemo
from strategies.base import Exits, SignalRows

AFTER_LAST = "entry session after the last bar of the run"
BEFORE_FIRST = "fill session before the symbol's first bar in the run"

Built = tuple[dict[str, list[Any]], list[OrderRecord], list[str], dict[int, Exits]]


def actions_from_rows(rows: SignalRows, ctx: RunContext, frames: dict[str, pd.DataFrame], memo: PlacementMemo,
                      params: Any, no_exits: Exits, new: Callable[[dict[str, Any]], Any]) -> Built | None:
    """(actions per symbol in seq order, skipped orders, events used, each planned entry's own exits) of
    ``rows``, as the planner builds them from the equal signals; None: plan the signals instead."""
    events_at = np.asarray(rows.events, dtype=np.int64)
    symbols_at = np.asarray(rows.symbols, dtype=np.int64)
    kinds_of = np.asarray(rows.kinds_of, dtype=np.int64)
    n = len(events_at)
    events = ctx.events
    universe = ctx.universe
    distinct = np.unique(events_at).tolist()
    ids = [events[k].id for k in distinct]
    if len(set(ids)) != len(ids) or not all(ids):
        return None  # groups and events used are by id: the scalar path counts them
    sessions = ctx.entry_session_values(events_at, symbols_at)
    if sessions is None:
        return None
    kinds = rows.kinds
    grouped_entry = np.array([k.action == "enter" and k.group_by_event for k in kinds], dtype=bool)[kinds_of]
    group_size = np.bincount(events_at[grouped_entry], minlength=len(events))
    owns = [k.exits or no_exits for k in kinds]
    # per kind: the action's fields besides symbol, bar, date and event (entries: the run's guards filled in)
    shape = [(k.action, k.side, k.hold, k.group_by_event, own.with_defaults(params) if k.action == "enter"
              else no_exits) for k, own in zip(kinds, owns, strict=True)]
    sizes = group_size.tolist()  # grouped entries per event position (0: none, the action's size is then 1)
    actions: dict[str, list[Any]] = {}
    first_row: dict[str, int] = {}
    skipped: list[tuple[int, OrderRecord]] = []
    own_exits: dict[int, Exits] = {}
    placed = np.zeros(n, dtype=bool)
    order = np.argsort(symbols_at, kind="stable")
    sorted_symbols = symbols_at[order]
    starts = np.flatnonzero(np.r_[True, sorted_symbols[1:] != sorted_symbols[:-1]]) if n else np.zeros(0, int)
    ends = [*starts[1:].tolist(), n] if n else []
    kind_list = kinds_of.tolist()
    event_list = events_at.tolist()
    for lo, hi in zip(starts.tolist(), ends, strict=True):
        at = order[lo:hi]
        symbol = universe[int(sorted_symbols[lo])]
        frame = frames.get(symbol)
        wanted = sessions[at]
        if frame is None or frame.empty:
            skipped += [(r, _skip(NO_DATA, symbol, kinds[kind_list[r]], events[event_list[r]].id))
                        for r in at.tolist()]
            continue
        bars = memo.bars.get(symbol)
        if bars is None:
            bars = memo.bars[symbol] = Bars.of(frame)
        found = bars.fill_bars(wanted)
        none = np.isnat(wanted)
        early = wanted < bars.first
        ok = (found >= 0) & ~early & ~none
        placed[at[ok]] = True
        index = bars.index
        values = bars.dates.view(np.int64)
        dates = memo.dates.setdefault(index.dtype, {})
        symbol_actions: list[Any] = []
        day_values = values[np.maximum(found, 0)].tolist()
        new_days = [(value, bar) for value, bar, fine in zip(day_values, found.tolist(), ok.tolist(), strict=True)
                    if fine and value not in dates]
        if new_days:  # boxed at once (a Timestamp per bar is 5 times dearer one by one)
            boxed = index[np.array([bar for _, bar in new_days], dtype=np.int64)].tolist()
            dates.update(zip([value for value, _ in new_days], boxed, strict=True))
        for r, bar, fine, value in zip(at.tolist(), found.tolist(), ok.tolist(), day_values, strict=True):
            k = kind_list[r]
            event = events[event_list[r]]
            if not fine:
                skipped.append((r, _skip_at(sessions[r], bar, symbol, kinds[k], event.id)))
                continue
            date = dates[value]
            action, side, hold, grouped, exits = shape[k]
            if action == "enter":
                own_exits[r] = owns[k]
            group = event.id if grouped else None
            symbol_actions.append(new({
                "symbol": symbol, "bar": bar, "date": date, "action": action, "side": side, "hold": hold,
                "event_id": event.id, "event_type": event.type, "group": group,
                "group_size": sizes[event_list[r]] or 1 if group else 1, "weight": None, "seq": r, "exits": exits}))
        if symbol_actions:
            actions[symbol] = symbol_actions
            first_row[symbol] = symbol_actions[0].seq
    ordered = {s: actions[s] for s in sorted(actions, key=first_row.__getitem__)}
    skipped.sort(key=lambda item: item[0])
    used_rows = np.flatnonzero(placed)
    _, first = np.unique(events_at[used_rows], return_index=True)
    used = [events[k].id for k in events_at[used_rows][np.sort(first)].tolist()]
    return ordered, [record for _, record in skipped], used, own_exits


def _skip(placed: tuple[Any, ...], symbol: str, kind: Any, event_id: str) -> OrderRecord:
    verb = "buy" if (kind.side == "long") == (kind.action == "enter") else "sell"
    return OrderRecord(placed[1], symbol, verb, 0, "skipped", placed[2], event_id)


def _skip_at(session: np.datetime64, bar: int, symbol: str, kind: Any, event_id: str) -> OrderRecord:
    if np.isnat(session):
        return _skip(NO_SESSION, symbol, kind, event_id)
    day = str(pd.Timestamp(session).date())
    return _skip(("skip", day, AFTER_LAST if bar < 0 else BEFORE_FIRST), symbol, kind, event_id)
