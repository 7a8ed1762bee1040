"""From events and a strategy to a plan: which bar of which symbol each signal enters or exits on.

Everything here depends only on events, calendars and the bar dates (plus, for the ``fade`` rule, closes
strictly before the entry session), never on fills or cash. The runner executes the plan bar by bar;
sweeps can reuse it across parameter points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.execution.records import OrderRecord
from engine.plan.context import RunContext
from strategies.base import Exits, Signal, Strategy

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


def fill_bars(frame: pd.DataFrame, sessions: Sequence[pd.Timestamp]) -> np.ndarray:
    """Index of the first non-stale bar dated on or after each session (-1 where there is none)."""
    tradable = np.flatnonzero(~frame["stale"].to_numpy(dtype=bool))
    wanted = np.array([pd.Timestamp(s).to_datetime64() for s in sessions], dtype="datetime64[ns]")
    first = np.searchsorted(frame.index.to_numpy(), wanted, side="left")
    j = tradable.searchsorted(first, side="left")
    out = np.full(len(j), -1, dtype=np.int64)
    found = j < len(tradable)
    out[found] = tradable[j[found]]
    return out


def fill_bar(frame: pd.DataFrame, session: pd.Timestamp) -> int | None:
    """Index of the first non-stale bar dated on or after ``session`` (None if there is none)."""
    bar = int(fill_bars(frame, [pd.Timestamp(session)])[0])
    return bar if bar >= 0 else None


Placement = tuple  # ("bar", index, date) or ("skip", date text, reason)


def placements(frame: pd.DataFrame | None, sessions: Sequence[pd.Timestamp | None]) -> list[Placement]:
    """Where signals for ``sessions`` fill in ``frame``: ("bar", index, date) or ("skip", date text, reason) each.

    The one fill-bar rule of backtests and event studies: the first non-stale bar on or after the session, however
    far (a suspension or an unlisted closure moves the fill to the next bar); a session after the last bar or
    before the frame's first bar (an earlier period, or before the listing) is skipped, never moved forward.
    """
    if frame is None or frame.empty:
        return [("skip", "", "no price data in the run period") for _ in sessions]
    known = [(k, pd.Timestamp(s)) for k, s in enumerate(sessions) if s is not None]
    bars = fill_bars(frame, [s for _, s in known]) if known else np.zeros(0, dtype=int)
    first = frame.index[0]
    dates = frame.index[np.maximum(bars, 0)].tolist() if len(bars) else []  # each fill bar's date, at once
    out: list[Placement] = [("skip", "", "no session after the event")] * len(sessions)
    for (k, session), bar, date in zip(known, bars.tolist(), dates, strict=True):
        if bar < 0:
            out[k] = ("skip", str(session.date()), "entry session after the last bar of the run")
        elif session < first:
            # The fill point is before this symbol's first bar in the run: it belongs to an earlier period (or the
            # listing did not exist yet) and must not be moved forward to the first available bar.
            out[k] = ("skip", str(session.date()), "fill session before the symbol's first bar in the run")
        else:
            out[k] = ("bar", bar, date)
    return out


def placement(frame: pd.DataFrame | None, session: pd.Timestamp | None) -> Placement:
    """``placements`` for one session."""
    return placements(frame, [session])[0]


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
    memo = placements if placements is not None else {}
    params = strategy.params
    signals = list(strategy.signals(ctx))
    group_sizes: dict[str, int] = {}
    for sig in signals:
        if sig.group is not None and sig.action == "enter":
            group_sizes[sig.group] = group_sizes.get(sig.group, 0) + 1
    actions: dict[str, list[PlannedAction]] = {}
    skipped: list[OrderRecord] = []
    used: list[str] = []
    used_set: set[str] = set()  # membership beside the ordered list: a list test made 100k events quadratic
    own_exits: dict[int, Exits] = {}
    found = _placed(signals, ctx, frames, memo)
    filled: dict[Exits, Exits] = {}
    for seq, (sig, placed) in enumerate(zip(signals, found, strict=True)):
        if placed[0] == "skip":
            verb = "buy" if (sig.side == "long") == (sig.action == "enter") else "sell"
            skipped.append(OrderRecord(placed[1], sig.symbol, verb, 0, "skipped", placed[2], sig.event_id))
            continue
        _, bar, date = placed
        exits = NO_EXITS
        if sig.action == "enter":  # the run's guards filled in, once per distinct rule set
            own = own_exits[seq] = sig.exits or NO_EXITS
            exits = filled.get(own) or filled.setdefault(own, own.with_defaults(params))
        event = sig.event
        group = sig.group
        actions.setdefault(sig.symbol, []).append(PlannedAction(
            sig.symbol, bar, date, sig.action, sig.side, sig.hold,
            event.id if event is not None else (sig.label or "none"),
            event.type if event is not None else (sig.label or "none"), group,
            group_sizes.get(group, 1) if group else 1, sig.weight, seq, exits,
        ))  # positional, in PlannedAction's field order: keywords cost a quarter more per action
        if event is not None and event.id not in used_set:
            used_set.add(event.id)
            used.append(event.id)
    _add_event_exits(ctx, frames, memo, actions, len(signals))
    for symbol_actions in actions.values():
        symbol_actions.sort(key=_order)
    note = strategy.explain() if not signals else None
    return Plan(actions=actions, skipped=skipped, events_used=used, notes=[note] if note else []), own_exits


def _order(action: PlannedAction) -> tuple[int, int]:
    return action.bar, action.seq


class PlacementMemo(dict[tuple[str, Any], Placement]):
    """The (symbol, session) -> placement memo of one period's frames and fill, and beside it the placement of
    each (symbol, event id) signal without an explicit session (string keys: no session to derive and hash)."""

    def __init__(self) -> None:
        super().__init__()
        self.by_event: dict[tuple[str, str], Placement] = {}


def _placed(signals: Sequence[Signal], ctx: RunContext, frames: dict[str, pd.DataFrame],
            memo: dict[tuple[str, Any], Placement]) -> list[Placement]:
    """Each signal's placement: its session (explicit, else the event's entry session) through the one rule."""
    by_event = memo.by_event if isinstance(memo, PlacementMemo) else {}
    out: list[Placement | None] = [None] * len(signals)
    todo: list[tuple[int, tuple[str, Any]]] = []
    for n, sig in enumerate(signals):
        event = sig.event
        if sig.session is None and event is not None:
            hit = by_event.get((sig.symbol, event.id))
            if hit is not None:
                out[n] = hit
                continue
        session = sig.session
        if session is None and event is not None and sig.symbol in frames:
            session = ctx.entry_session(event, sig.symbol)
        todo.append((n, (sig.symbol, session)))
    _place_missing(memo, frames, [key for _, key in todo])
    for n, key in todo:
        sig = signals[n]
        out[n] = memo[key]
        if sig.session is None and sig.event is not None:
            by_event[(sig.symbol, sig.event.id)] = memo[key]
    return out  # type: ignore[return-value]


def _place_missing(memo: dict[tuple[str, Any], Placement], frames: dict[str, pd.DataFrame],
                   keys: Sequence[tuple[str, Any]]) -> None:
    """Fill ``memo`` for the (symbol, session) keys it lacks: one vectorised ``placements`` call per symbol."""
    missing: dict[str, list[Any]] = {}
    for key in dict.fromkeys(keys):
        if key not in memo:
            missing.setdefault(key[0], []).append(key[1])
    for symbol, sessions in missing.items():
        for session, placed in zip(sessions, placements(frames.get(symbol), sessions), strict=True):
            memo[(symbol, session)] = placed


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
