"""event_hold: trade every event of the chosen types at its fill point and hold N sessions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from strategies.base import BaseParams, Signal, Strategy, StrategyContext

if TYPE_CHECKING:
    from engine.events.catalog import Event


@dataclass(frozen=True)
class EventHoldParams(BaseParams):
    types: tuple[str, ...] = ("official_reassurance",)
    symbols: tuple[str, ...] = ()  # empty = every symbol the event concerns within the universe
    firms: tuple[str, ...] = ()  # analyst events only: keep these firms (case-insensitive)
    side: str = "long"
    hold: int = 5

    def __post_init__(self) -> None:
        if self.side not in ("long", "short"):
            raise ValueError("side must be 'long' or 'short'")
        if self.hold < 1:
            raise ValueError("hold must be >= 1 session")


def firm_matches(firm: str | None, firms: tuple[str, ...]) -> bool:
    if not firms:
        return True
    return firm is not None and firm.strip().lower() in {f.strip().lower() for f in firms}


def unknown_firms_note(strategy: str, firms: tuple[str, ...], events: Iterable[Event],
                       types: Sequence[str]) -> str | None:
    """A warning naming each of ``firms`` that no event of ``types`` names (a misspelt firm filters out every event
    silently), with the firms those events do name; None when every firm is found or none is asked for."""
    if not firms:
        return None
    named = sorted({e.firm.strip() for e in events if e.type in types and e.firm and e.firm.strip()}, key=str.lower)
    known = {f.lower() for f in named}
    missing = [f for f in firms if f.strip().lower() not in known]
    if not missing:
        return None
    listed = ", ".join(named[:12]) + (f" and {len(named) - 12} more" if len(named) > 12 else "") if named else "none"
    return (f"{strategy}: firms={','.join(missing)}: no {'/'.join(types)} event of the run names "
            f"{'this firm' if len(missing) == 1 else 'these firms'} (whole name, any case); "
            f"the firms these events name: {listed}")


class EventHold(Strategy):
    name = "event_hold"
    description = "Go long (or short) at the first fill after each matching event; hold N sessions."
    Params = EventHoldParams
    exit_params = ("hold", "stop_loss", "take_profit", "trailing_stop")  # hold: only as the entries' hold

    def signals(self, ctx: StrategyContext) -> Iterable[Signal]:
        p: EventHoldParams = self.params
        self._firms_note = unknown_firms_note(self.name, p.firms, ctx.events_of(*p.types), p.types)
        for event in ctx.events_of(*p.types):
            if not firm_matches(event.firm, p.firms):
                continue
            for symbol in ctx.symbols_for(event):
                if p.symbols and symbol not in p.symbols:
                    continue
                yield Signal(symbol=symbol, event=event, side=p.side, hold=p.hold, group=event.id)

    def notes(self) -> list[str]:
        note = getattr(self, "_firms_note", None)
        return [note] if note else []
