"""capitulation: buy a reassurance only after the symbol fell at least X% over the K sessions before it.

The "uninvestable, then reassured" pattern of March 2022: Chinese internet stocks lost a third of their value
in the week before Vice Premier Liu He's 2022-03-16 statement, then jumped. The fall is measured on closes
strictly before the entry session (close of the last session before it over the close K sessions earlier).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from strategies import indicators as ind
from strategies.base import BaseParams, Signal, Strategy, StrategyContext


@dataclass(frozen=True)
class CapitulationParams(BaseParams):
    fall: float = 0.15  # minimum fall over the lookback, as a positive fraction (0.15 = down 15% or more)
    lookback: int = 5  # sessions before the entry session
    hold: int = 5
    types: tuple[str, ...] = ("official_reassurance",)

    def __post_init__(self) -> None:
        if not 0 < self.fall < 1:
            raise ValueError("fall must be a fraction in (0, 1), e.g. 0.15 for a 15% fall")
        if self.lookback < 1 or self.hold < 1:
            raise ValueError("lookback and hold must be >= 1 session")


class Capitulation(Strategy):
    name = "capitulation"
    description = "Long on a reassurance only after the symbol fell >= X% over the K sessions before it; hold N."
    Params = CapitulationParams
    exit_params = ("hold", "stop_loss", "take_profit", "trailing_stop")  # hold: only as the entries' hold

    def warmup(self) -> int:
        return self.params.lookback + 1

    def signals(self, ctx: StrategyContext) -> Iterable[Signal]:
        p: CapitulationParams = self.params
        self._checked = 0
        self._deepest: tuple[float, str, str] | None = None  # (change, symbol, event id)
        for event in ctx.events_of(*p.types):
            for symbol in ctx.symbols_for(event):
                session = ctx.entry_session(event, symbol)
                change = ctx.rolling_return(symbol, session, p.lookback)
                if change is None:
                    continue
                self._checked += 1
                if self._deepest is None or change < self._deepest[0]:
                    self._deepest = (change, symbol, event.id)
                if change <= -p.fall + ind.THRESHOLD_SLACK:
                    yield Signal(symbol=symbol, event=event, hold=p.hold, group=event.id)

    def explain(self) -> str | None:
        p: CapitulationParams = self.params
        deepest = getattr(self, "_deepest", None)
        if deepest is None:
            return (f"capitulation: no signal: no {'/'.join(p.types)} event had {p.lookback + 1} closes before its "
                    "entry for a symbol of the universe")
        return (f"capitulation: no signal: {self._checked} (event, symbol) pair(s) checked; the deepest fall over "
                f"{p.lookback} sessions was {deepest[0]:.2%} ({deepest[1]} before {deepest[2]}), short of "
                f"fall={p.fall:g}")
