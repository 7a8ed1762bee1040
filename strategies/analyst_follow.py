"""analyst_follow: long on upgrades, out on a downgrade or after N sessions; optional short on downgrades."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from strategies.base import BaseParams, Signal, Strategy, StrategyContext
from strategies.event_hold import firm_matches


@dataclass(frozen=True)
class AnalystFollowParams(BaseParams):
    firms: tuple[str, ...] = ()  # empty = every firm
    hold: int = 20
    short_downgrades: bool = False

    def __post_init__(self) -> None:
        if self.hold < 1:
            raise ValueError("hold must be >= 1 session")


class AnalystFollow(Strategy):
    name = "analyst_follow"
    description = "Long on analyst upgrades; exit on a downgrade or after N sessions; optionally short downgrades."
    Params = AnalystFollowParams

    def signals(self, ctx: StrategyContext) -> Iterable[Signal]:
        p: AnalystFollowParams = self.params
        for event in ctx.events_of("analyst_upgrade", "analyst_downgrade"):
            if not firm_matches(event.firm, p.firms):
                continue
            for symbol in ctx.symbols_for(event):
                if event.type == "analyst_upgrade":
                    yield Signal(symbol=symbol, event=event, hold=p.hold, group=event.id)
                else:
                    yield Signal(symbol=symbol, event=event, action="exit", side="long")
                    if p.short_downgrades:
                        yield Signal(symbol=symbol, event=event, side="short", hold=p.hold, group=event.id)
