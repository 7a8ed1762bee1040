"""The plan of a parameter point derived from a planned point that differs from it only in exit parameters.

A strategy declares ``Strategy.exit_params``: ``hold`` when its ``signals`` read it only as the ``hold`` of
every entry signal, and the guards (stop_loss, take_profit, trailing_stop) when its ``signals`` do not read them
(``build_plan`` fills them into each entry's exits). Two points of such a strategy that differ only in declared
parameters get the same signals but for the entries' ``hold``, hence the same fill bars, skipped orders, events
used, notes and order; their plans differ only in each entry's ``hold`` and filled ``exits``. ``PlanTemplate``
keeps one point's plan with each entry's own (unfilled) exit rules; ``derive`` redoes those two fields for
another point, about twenty times cheaper than asking the strategy again.

The declaration is the strategy author's promise (off by default: user strategies plan every point afresh).
What can be checked is: a declared name must be an exit parameter of the strategy's ``Params``, and with
``hold`` declared, every entry of the planned point must hold exactly ``params.hold`` (else no template: the
points are planned afresh).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.plan.planner import Plan, PlannedAction
from strategies.base import Exits, Strategy
from strategies.registry import checked_exit_params


def declared_exit_params(cls: type[Strategy]) -> tuple[str, ...]:
    """``cls.exit_params``, checked (``strategies.registry.checked_exit_params``: a ConfigError names a wrong one)."""
    return checked_exit_params(cls)


@dataclass(frozen=True)
class PlanTemplate:
    """A planned point, with each entry's place in its symbol's actions and the entry signal's own exits."""

    plan: Plan
    declared: tuple[str, ...]
    owns: tuple[Exits, ...]  # the distinct Signal.exits of the entries (NO_EXITS for none)
    entries: dict[str, list[tuple[int, int]]]  # symbol -> (index in plan.actions[symbol], index in owns)

    @classmethod
    def of(cls, plan: Plan, own: dict[int, Exits], params: Any, declared: tuple[str, ...]) -> PlanTemplate | None:
        """The template of ``plan`` (built with ``params``; ``own``: entry seq -> the signal's own exits), or None
        when an entry's hold is not ``params.hold`` although ``hold`` is declared (the declaration is wrong)."""
        hold = getattr(params, "hold", None)
        owns: dict[Exits, int] = {}
        seen: dict[int, int] = {}  # id of an own Exits object -> its number (most entries share one object)

        def number(exits: Exits) -> int:
            at = seen.get(id(exits))
            if at is None:
                at = seen[id(exits)] = owns.setdefault(exits, len(owns))
            return at

        entries: dict[str, list[tuple[int, int]]] = {}
        check_hold = "hold" in declared
        for symbol, actions in plan.actions.items():
            rows = []
            for k, a in enumerate(actions):
                if a.action == "enter":
                    if check_hold and a.hold != hold:
                        return None
                    rows.append((k, number(own[a.seq])))
            if rows:
                entries[symbol] = rows
        return cls(plan, declared, tuple(owns), entries)

    def derive(self, params: Any) -> Plan:
        """The plan of ``params`` (equal to this template's point outside the declared exit parameters)."""
        plan = self.plan
        change_hold = "hold" in self.declared
        hold = getattr(params, "hold", None)
        filled = [own.with_defaults(params) for own in self.owns]
        actions: dict[str, list[PlannedAction]] = {}
        for symbol, old in plan.actions.items():
            new = list(old)  # exits and event exits: the same (frozen) actions
            for k, n in self.entries.get(symbol, ()):
                new[k] = _with_exit_fields(old[k], hold if change_hold else old[k].hold, filled[n])
            actions[symbol] = new
        return Plan(actions=actions, skipped=list(plan.skipped), events_used=list(plan.events_used),
                    notes=list(plan.notes))


class PendingTemplate:
    """``PlanTemplate.of`` deferred to the first point that derives from it: a sweep of one point per template
    (every first point) never pays for it."""

    def __init__(self, plan: Plan, own: dict[int, Exits], params: Any, declared: tuple[str, ...]) -> None:
        self._args = (plan, own, params, declared)

    def resolve(self) -> PlanTemplate | None:
        return PlanTemplate.of(*self._args)


def _with_exit_fields(a: PlannedAction, hold: int | None, exits: Exits) -> PlannedAction:
    """``dataclasses.replace(a, hold=hold, exits=exits)`` without its per-call field look-ups (positional, in
    PlannedAction's field order)."""
    return PlannedAction(a.symbol, a.bar, a.date, a.action, a.side, hold, a.event_id, a.event_type, a.group,
                         a.group_size, a.weight, a.seq, exits)
