"""event_hold: trade every event of the chosen types at its fill point and hold N sessions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from strategies.base import BaseParams, Signal, Strategy, StrategyContext


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


class EventHold(Strategy):
    name = "event_hold"
    description = "Go long (or short) at the first fill after each matching event; hold N sessions."
    Params = EventHoldParams
    exit_params = ("hold", "stop_loss", "take_profit", "trailing_stop")  # hold: only as the entries' hold

    def signals(self, ctx: StrategyContext) -> Iterable[Signal]:
        p: EventHoldParams = self.params
        for event in ctx.events_of(*p.types):
            if not firm_matches(event.firm, p.firms):
                continue
            for symbol in ctx.symbols_for(event):
                if p.symbols and symbol not in p.symbols:
                    continue
                yield Signal(symbol=symbol, event=event, side=p.side, hold=p.hold, group=event.id)
