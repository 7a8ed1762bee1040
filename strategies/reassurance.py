"""reassurance: buy the China-internet universe on official reassurance, hold N sessions (the seed scenario)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from strategies.base import BaseParams, Signal, Strategy, StrategyContext


@dataclass(frozen=True)
class ReassuranceParams(BaseParams):
    hold: int = 5
    include_policy_support: bool = False

    def __post_init__(self) -> None:
        if self.hold < 1:
            raise ValueError("hold must be >= 1 session")


class Reassurance(Strategy):
    name = "reassurance"
    description = "Long every universe symbol an official reassurance concerns (optionally policy support)."
    Params = ReassuranceParams
    exit_params = ("hold", "stop_loss", "take_profit", "trailing_stop")  # hold: only as the entries' hold

    def signals(self, ctx: StrategyContext) -> Iterable[Signal]:
        p: ReassuranceParams = self.params
        types = ("official_reassurance", "policy_support") if p.include_policy_support else ("official_reassurance",)
        for event in ctx.events_of(*types):
            for symbol in ctx.symbols_for(event):
                yield Signal(symbol=symbol, event=event, hold=p.hold, group=event.id)
