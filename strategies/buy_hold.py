"""buy_hold: the benchmark. Equal weight in every universe symbol from its first bar to the end."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from strategies.base import BaseParams, Signal, Strategy, StrategyContext


@dataclass(frozen=True)
class BuyHoldParams(BaseParams):
    invested: float = 0.98  # fraction of equity split equally across symbols (the rest pays fees)

    def __post_init__(self) -> None:
        if not 0 < self.invested <= 1:
            raise ValueError("invested must be in (0, 1]")


class BuyHold(Strategy):
    name = "buy_hold"
    description = "Buy every universe symbol at its first bar (equal weight) and hold to the end."
    Params = BuyHoldParams
    exit_params = ("stop_loss", "take_profit", "trailing_stop")  # signals read neither

    def signals(self, ctx: StrategyContext) -> Iterable[Signal]:
        p: BuyHoldParams = self.params
        symbols = [s for s in ctx.universe if ctx.first_session(s) is not None]
        for symbol in symbols:
            yield Signal(
                symbol=symbol,
                hold=None,
                session=ctx.first_session(symbol),
                weight=p.invested / len(symbols),
                label="buy_hold",
            )
