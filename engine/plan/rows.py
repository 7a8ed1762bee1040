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
from engine.plan.fills import NO_DATA, NO_SESSION, BarTable, PlacementMemo
from strategies.base import Exits, SignalRows

AFTER_LAST = "entry session after the last bar of the run"
BEFORE_FIRST = "fill session before the symbol's first bar in the run"
NO_FRAME = 4  # a row's status beside BarTable's: no (or an empty) price frame

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
    if not ctx.event_ids_distinct():
        return None  # groups and events used are by id: the scalar path counts them
    sessions = ctx.entry_session_values(events_at, symbols_at)
    if sessions is None:
        return None
    kinds = rows.kinds
    grouped_entry = np.array([k.action == "enter" and k.group_by_event for k in kinds], dtype=bool)[kinds_of]
    owns = [k.exits or no_exits for k in kinds]
    # per kind: the action's fields besides symbol, bar, date and event (entries: the run's guards filled in)
    shape = [(k.action, k.side, k.hold, k.group_by_event, own.with_defaults(params) if k.action == "enter"
              else no_exits) for k, own in zip(kinds, owns, strict=True)]
    table = memo.table(frames)
    if table is None:
        return None
    names = np.array(universe, dtype=object)[symbols_at].tolist()
    rank_of = [table.ranks.get(name, -1) for name in universe]
    ranks = np.array(rank_of, dtype=np.int64)[symbols_at] if n else np.zeros(0, dtype=np.int64)
    status, bars, day_values = table.place(np.maximum(ranks, 0), sessions)
    status = np.where(ranks < 0, NO_FRAME, status)
    placed = status == 0
    # placed grouped entries per event position (0: none, the action's size is then 1): an entry that cannot be
    # placed (no bar to fill at) takes no share of its event's allotment
    sizes = np.bincount(events_at[grouped_entry & placed], minlength=len(events)).tolist()
    dates = memo.dates.setdefault(table.dtype, {})
    days = day_values.tolist()
    new_days = sorted({day for day, ok in zip(days, placed.tolist(), strict=True) if ok} - dates.keys())
    if new_days:  # boxed at once (a Timestamp per bar is 5 times dearer one by one)
        boxed = pd.DatetimeIndex(np.array(new_days, dtype=np.int64).view("datetime64[ns]").astype(table.dtype))
        dates.update(zip(new_days, boxed.tolist(), strict=True))
    actions: dict[str, list[Any]] = {}
    skipped: list[OrderRecord] = []
    own_exits: dict[int, Exits] = {}
    for r, (code, bar, day, k, e, symbol) in enumerate(zip(status.tolist(), bars.tolist(), days, kinds_of.tolist(),
                                                          events_at.tolist(), names, strict=True)):
        event = events[e]
        if code:
            skipped.append(_skip_at(code, sessions[r], symbol, kinds[k], event.id))
            continue
        action, side, hold, grouped, exits = shape[k]
        if action == "enter":
            own_exits[r] = owns[k]
        symbol_actions = actions.get(symbol)
        if symbol_actions is None:
            symbol_actions = actions[symbol] = []
        event_id = event.id
        symbol_actions.append(new({
            "symbol": symbol, "bar": bar, "date": dates[day], "action": action, "side": side, "hold": hold,
            "event_id": event_id, "event_type": event.type, "group": event_id if grouped else None,
            "group_size": sizes[e] or 1 if grouped else 1, "weight": None, "seq": r, "exits": exits}))
    used_rows = np.flatnonzero(placed)
    _, first = np.unique(events_at[used_rows], return_index=True)
    used = [events[k].id for k in events_at[used_rows][np.sort(first)].tolist()]
    return actions, skipped, used, own_exits


def _skip(placed: tuple[Any, ...], symbol: str, kind: Any, event_id: str) -> OrderRecord:
    verb = "buy" if (kind.side == "long") == (kind.action == "enter") else "sell"
    return OrderRecord(placed[1], symbol, verb, 0, "skipped", placed[2], event_id)


def _skip_at(code: int, session: np.datetime64, symbol: str, kind: Any, event_id: str) -> OrderRecord:
    if code == NO_FRAME:
        return _skip(NO_DATA, symbol, kind, event_id)
    if code == BarTable.NO_SESSION:
        return _skip(NO_SESSION, symbol, kind, event_id)
    day = str(pd.Timestamp(session).date())
    return _skip(("skip", day, AFTER_LAST if code == BarTable.AFTER_LAST else BEFORE_FIRST), symbol, kind, event_id)
