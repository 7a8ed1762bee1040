"""From events and a strategy to a plan: which bar of which symbol each signal enters or exits on.

Everything here depends only on events, calendars and the bar dates (plus, for the ``fade`` rule, closes
strictly before the entry session), never on fills or cash; the fill-bar rule itself is
``engine.plan.fills``. The runner executes the plan bar by bar; sweeps can reuse it across parameter points.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from engine.collector import collector_paused
from engine.execution.records import OrderRecord
from engine.plan.context import RunContext
from engine.plan.fills import Placement, PlacementMemo, fill_bar, fill_bars, place_missing, placement, placements
from engine.plan.rows import actions_from_rows
from engine.plan.signal_checks import checked_signals, plan_notes
from strategies.base import Exits, Signal, SignalRows, Strategy

__all__ = ["Placement", "PlacementMemo", "Plan", "PlannedAction", "RunContext", "build_plan", "build_plan_with_exits",
           "fill_bar", "fill_bars", "placement", "placements"]


NO_EXITS = Exits()


@dataclass(frozen=True)
class PlannedAction:
    """A signal resolved to a bar index of its symbol's price frame (the fill bar)."""

    symbol: str
    bar: int
    date: pd.Timestamp
    action: str  # enter | exit | event_exit (closes positions whose exits.on_events has event_type)
    side: str  # long | short
    hold: int | None
    event_id: str
    event_type: str
    group: str | None
    group_size: int
    weight: float | None
    seq: int  # signal order, for deterministic tie-breaking
    exits: Exits = NO_EXITS  # entries: the signal's exit rules with the run's parameters filled in


@dataclass
class Plan:
    actions: dict[str, list[PlannedAction]]  # symbol -> actions sorted by (bar, seq)
    skipped: list[OrderRecord]
    events_used: list[str]
    notes: list[str] = field(default_factory=list)  # why the strategy produced no signal (Strategy.explain)


def build_plan(strategy: Strategy, ctx: RunContext, frames: dict[str, pd.DataFrame],
               placements: dict[tuple[str, Any], Placement] | None = None) -> Plan:
    """Resolve the strategy's signals to fill bars; signals that cannot be placed become skipped orders.

    ``placements`` memoises the (symbol, session) -> fill bar look-ups, which depend on the calendar and the
    bars but not on strategy parameters: sweeps pass one dict for all their points.
    """
    return build_plan_with_exits(strategy, ctx, frames, placements)[0]


def build_plan_with_exits(strategy: Strategy, ctx: RunContext, frames: dict[str, pd.DataFrame],
                          placements: dict[tuple[str, Any], Placement] | None = None
                          ) -> tuple[Plan, dict[int, Exits]]:
    """``build_plan``, and beside the plan each planned entry's own exit rules (``Signal.exits``, unfilled) by
    its ``seq``: what ``engine.plan.reuse`` needs to fill them again for other guard parameters."""
    with collector_paused():  # some 10 objects per signal that live on: half the build time at 500 symbols
        return _build(strategy, ctx, frames, placements)


def _build(strategy: Strategy, ctx: RunContext, frames: dict[str, pd.DataFrame],
           placements: dict[tuple[str, Any], Placement] | None) -> tuple[Plan, dict[int, Exits]]:
    memo = placements if placements is not None else PlacementMemo()
    if isinstance(ctx, RunContext) and isinstance(memo, PlacementMemo):
        rows = _signal_rows(strategy, ctx)
        built = _build_from_rows(strategy, rows, ctx, frames, memo) if rows is not None else None
        if built is not None:
            return built
    return _build_from_signals(strategy, ctx, frames, memo)


def _build_from_rows(strategy: Strategy, rows: SignalRows, ctx: RunContext, frames: dict[str, pd.DataFrame],
                     memo: PlacementMemo) -> tuple[Plan, dict[int, Exits]] | None:
    """The plan of the strategy's ``SignalRows`` (engine.plan.rows), or None where its signals must be asked."""
    built = actions_from_rows(rows, ctx, frames, memo, strategy.params, NO_EXITS, _new_action)
    if built is None:
        return None
    actions, skipped, used_ids, own_exits = built
    count = len(rows.events)
    if any(kind.exits is not None and kind.exits.on_events for kind in rows.kinds):
        _add_event_exits(ctx, frames, memo, actions, count)
    for symbol_actions in actions.values():
        symbol_actions.sort(key=_BAR)
    notes = plan_notes(strategy, bool(count))
    return Plan(actions=actions, skipped=skipped, events_used=used_ids, notes=notes), own_exits


def _build_from_signals(strategy: Strategy, ctx: RunContext, frames: dict[str, pd.DataFrame],
                        memo: dict[tuple[str, Any], Placement]) -> tuple[Plan, dict[int, Exits]]:
    params = strategy.params
    signals = checked_signals(strategy, strategy.signals(ctx))
    actions: dict[str, list[PlannedAction]] = {}
    skipped: list[OrderRecord] = []
    used: dict[str, None] = {}  # event ids in first-use order (a dict: a list test made 100k events quadratic)
    own_exits: dict[int, Exits] = {}
    found = _placed(signals, ctx, frames, memo)
    group_sizes: dict[str, int] = {}  # placed entries of each group: one that cannot be placed takes no share
    for sig, placed in zip(signals, found, strict=True):
        if sig.group is not None and sig.action == "enter" and placed[0] != "skip":
            group_sizes[sig.group] = group_sizes.get(sig.group, 0) + 1
    filled: dict[Exits, Exits] = {}
    new = _new_action
    for seq, (sig, placed) in enumerate(zip(signals, found, strict=True)):
        if placed[0] == "skip":
            verb = "buy" if (sig.side == "long") == (sig.action == "enter") else "sell"
            skipped.append(OrderRecord(placed[1], sig.symbol, verb, 0, "skipped", placed[2], sig.event_id))
            continue
        exits = NO_EXITS
        action = sig.action
        if action == "enter":  # the run's guards filled in, once per distinct rule set
            own = own_exits[seq] = sig.exits or NO_EXITS
            exits = filled.get(own) or filled.setdefault(own, own.with_defaults(params))
        event = sig.event
        group = sig.group
        symbol = sig.symbol
        if event is not None:
            event_id, event_type = event.id, event.type
            used[event_id] = None
        else:
            event_id = event_type = sig.label or "none"
        symbol_actions = actions.get(symbol)
        if symbol_actions is None:
            symbol_actions = actions[symbol] = []
        symbol_actions.append(new({
            "symbol": symbol, "bar": placed[1], "date": placed[2], "action": action, "side": sig.side,
            "hold": sig.hold, "event_id": event_id, "event_type": event_type, "group": group,
            "group_size": group_sizes.get(group, 1) if group else 1, "weight": sig.weight, "seq": seq,
            "exits": exits}))
    _add_event_exits(ctx, frames, memo, actions, len(signals))
    for symbol_actions in actions.values():
        # appended in increasing seq: a stable sort by bar is the (bar, seq) order
        symbol_actions.sort(key=_BAR)
    notes = plan_notes(strategy, bool(signals))
    return Plan(actions=actions, skipped=skipped, events_used=list(used), notes=notes), own_exits


_BAR = operator.attrgetter("bar")


def _signal_rows(strategy: Strategy, ctx: RunContext) -> SignalRows | None:
    """``strategy.signal_rows(ctx)`` when it stands for this strategy's ``signals``: defined by the strategy's own
    class (a subclass of a built-in may change ``signals`` or a helper it calls: it plans through ``signals``),
    and not bypassed by an instance's own ``signals``."""
    own = vars(strategy)
    if "signal_rows" not in own and ("signals" in own or "signal_rows" not in vars(type(strategy))):
        return None
    return strategy.signal_rows(ctx)


def _new_action(values: dict[str, Any]) -> PlannedAction:
    """``PlannedAction(**values)`` (every field given) at a third of the cost: a frozen dataclass's ``__init__``
    sets its 13 fields one ``object.__setattr__`` at a time; this sets the instance dictionary once."""
    action = object.__new__(PlannedAction)
    object.__setattr__(action, "__dict__", values)
    return action


def _placed(signals: Sequence[Signal], ctx: RunContext, frames: dict[str, pd.DataFrame],
            memo: dict[tuple[str, Any], Placement]) -> list[Placement]:
    """Each signal's placement: its session (explicit, else the event's entry session) through the one rule."""
    by_event = memo.by_event if isinstance(memo, PlacementMemo) else {}
    out: list[Placement | None] = [None] * len(signals)
    todo: list[tuple[int, tuple[str, Any]]] = []
    missing: dict[str, dict[Any, None]] = {}
    entry_session = ctx.entry_session
    for n, sig in enumerate(signals):
        event = sig.event
        session = sig.session
        symbol = sig.symbol
        if session is None and event is not None:
            hit = by_event.get((symbol, event.id))
            if hit is not None:
                out[n] = hit
                continue
            if symbol in frames:
                session = entry_session(event, symbol)
        key = (symbol, session)
        hit = memo.get(key)
        if hit is not None:
            out[n] = hit
            if sig.session is None and event is not None:
                by_event[(symbol, event.id)] = hit
            continue
        todo.append((n, key))
        wanted = missing.get(symbol)
        if wanted is None:
            wanted = missing[symbol] = {}
        wanted[session] = None
    if todo:
        place_missing(memo, frames, {symbol: list(sessions) for symbol, sessions in missing.items()})
        for n, key in todo:
            sig = signals[n]
            hit = out[n] = memo[key]
            if sig.session is None and sig.event is not None:
                by_event[(key[0], sig.event.id)] = hit
    return out  # type: ignore[return-value]


def _place_missing(memo: dict[tuple[str, Any], Placement], frames: dict[str, pd.DataFrame],
                   keys: Sequence[tuple[str, Any]]) -> None:
    """Fill ``memo`` for the (symbol, session) keys it lacks: one vectorised placement per symbol."""
    missing: dict[str, list[Any]] = {}
    for key in dict.fromkeys(keys):
        if key not in memo:
            missing.setdefault(key[0], []).append(key[1])
    place_missing(memo, frames, missing)


def _add_event_exits(ctx: RunContext, frames: dict[str, pd.DataFrame], memo: dict[tuple[str, Any], Placement],
                     actions: dict[str, list[PlannedAction]], seq: int) -> None:
    """For every symbol with entries that exit on later events (``Exits.on_events``): an ``event_exit`` action at
    the fill bar of each such event concerning the symbol (the policy closes the positions opened before it)."""
    for symbol, symbol_actions in list(actions.items()):
        types = {t for a in symbol_actions if a.action == "enter" for t in a.exits.on_events}
        if not types:
            continue
        concerned = [e for e in ctx.events_of(*sorted(types)) if symbol in ctx.symbols_for(e)]
        keys = [(symbol, ctx.entry_session(event, symbol)) for event in concerned]
        _place_missing(memo, frames, keys)
        for event, key in zip(concerned, keys, strict=True):
            placed = memo[key]
            if placed[0] == "skip":
                continue
            symbol_actions.append(PlannedAction(
                symbol=symbol, bar=placed[1], date=placed[2], action="event_exit", side="long", hold=None,
                event_id=event.id, event_type=event.type, group=None, group_size=1, weight=None, seq=seq,
            ))
            seq += 1
