"""A frozen reference copy of the planner as it was before the vectorised planner (evbt main at 62fdc34), for
the equal-plan tests: every planned action, skipped order, event used and note of ``engine.plan.planner`` must
equal this slow, obvious build.

Entry sessions come from ``timing.entry_session`` per (event, symbol) and symbols from ``catalog.symbols_for``
(the definitions the engine's memos and tables shortcut); the strategy itself sees a context whose
``entry_session``/``symbols_for`` are those definitions too. Keep this file as it is: it is the yardstick. One
rule has changed since, on purpose, here as in the engine: an equal-sizing group counts only the entries that can
be placed (a signal without a bar to fill at took a share of its event's allotment and left it uninvested).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.events import timing
from engine.events.catalog import Event, symbols_for
from engine.execution.records import OrderRecord
from engine.plan.context import RunContext
from engine.plan.planner import NO_EXITS, Plan, PlannedAction
from strategies.base import Exits, Signal, Strategy


class ReferenceContext:
    """``RunContext`` with entry sessions and symbols computed from their definitions, without memos."""

    def __init__(self, ctx: RunContext) -> None:
        self._ctx = ctx
        self.universe = ctx.universe
        self.fill = ctx.fill

    def __getattr__(self, name: str) -> Any:  # the price views, events, events_of: the context's own
        return getattr(self._ctx, name)

    def symbols_for(self, event: Event) -> list[str]:
        return [s for s in symbols_for(event, self.universe) if s in self._ctx._frames]

    def entry_session(self, event: Event, symbol: str) -> pd.Timestamp | None:
        return pd.Timestamp(timing.entry_session(event, symbol, self.fill)).normalize()


def fill_bars(frame: pd.DataFrame, sessions: Sequence[pd.Timestamp]) -> np.ndarray:
    tradable = np.flatnonzero(~frame["stale"].to_numpy(dtype=bool))
    wanted = np.array([pd.Timestamp(s).to_datetime64() for s in sessions], dtype="datetime64[ns]")
    first = np.searchsorted(frame.index.to_numpy(), wanted, side="left")
    j = tradable.searchsorted(first, side="left")
    out = np.full(len(j), -1, dtype=np.int64)
    found = j < len(tradable)
    out[found] = tradable[j[found]]
    return out


def placement(frame: pd.DataFrame | None, session: pd.Timestamp | None) -> tuple[Any, ...]:
    if frame is None or frame.empty:
        return ("skip", "", "no price data in the run period")
    if session is None:
        return ("skip", "", "no session after the event")
    session = pd.Timestamp(session)
    bar = int(fill_bars(frame, [session])[0])
    if bar < 0:
        return ("skip", str(session.date()), "entry session after the last bar of the run")
    if session < frame.index[0]:
        return ("skip", str(session.date()), "fill session before the symbol's first bar in the run")
    return ("bar", bar, frame.index[bar])


def reference_plan(strategy: Strategy, ctx: RunContext, frames: dict[str, pd.DataFrame]) -> tuple[Plan, dict]:
    """``build_plan_with_exits`` as it was, one (symbol, session) at a time."""
    ref = ReferenceContext(ctx)
    params = strategy.params
    signals: list[Signal] = list(strategy.signals(ref))  # type: ignore[arg-type]
    placements = []
    for sig in signals:
        session = sig.session
        if session is None and sig.event is not None and sig.symbol in frames:
            session = ref.entry_session(sig.event, sig.symbol)
        placements.append(placement(frames.get(sig.symbol), session))
    # the one rule changed since 62fdc34 (2026-12-02): a group's size counts only its entries that can be placed
    group_sizes: dict[str, int] = {}
    for sig, placed in zip(signals, placements, strict=True):
        if sig.group is not None and sig.action == "enter" and placed[0] != "skip":
            group_sizes[sig.group] = group_sizes.get(sig.group, 0) + 1
    actions: dict[str, list[PlannedAction]] = {}
    skipped: list[OrderRecord] = []
    used: list[str] = []
    own_exits: dict[int, Exits] = {}
    for seq, (sig, placed) in enumerate(zip(signals, placements, strict=True)):
        if placed[0] == "skip":
            verb = "buy" if (sig.side == "long") == (sig.action == "enter") else "sell"
            skipped.append(OrderRecord(placed[1], sig.symbol, verb, 0, "skipped", placed[2], sig.event_id))
            continue
        exits = NO_EXITS
        if sig.action == "enter":
            own = own_exits[seq] = sig.exits or NO_EXITS
            exits = own.with_defaults(params)
        group = sig.group
        actions.setdefault(sig.symbol, []).append(PlannedAction(
            symbol=sig.symbol, bar=placed[1], date=placed[2], action=sig.action, side=sig.side, hold=sig.hold,
            event_id=sig.event_id, event_type=sig.event_type, group=group,
            group_size=group_sizes.get(group, 1) if group else 1, weight=sig.weight, seq=seq, exits=exits))
        if sig.event is not None and sig.event.id not in used:
            used.append(sig.event.id)
    seq = len(signals)
    for symbol, symbol_actions in list(actions.items()):
        types = {t for a in symbol_actions if a.action == "enter" for t in a.exits.on_events}
        if not types:
            continue
        for event in ref.events_of(*sorted(types)):
            if symbol not in ref.symbols_for(event):
                continue
            placed = placement(frames.get(symbol), ref.entry_session(event, symbol))
            if placed[0] == "skip":
                continue
            symbol_actions.append(PlannedAction(
                symbol=symbol, bar=placed[1], date=placed[2], action="event_exit", side="long", hold=None,
                event_id=event.id, event_type=event.type, group=None, group_size=1, weight=None, seq=seq))
            seq += 1
    for symbol_actions in actions.values():
        symbol_actions.sort(key=lambda a: (a.bar, a.seq))
    note = strategy.explain() if not signals else None
    return Plan(actions=actions, skipped=skipped, events_used=used, notes=[note] if note else []), own_exits
