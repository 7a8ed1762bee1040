"""fade: sell the news. After a reassurance that follows a rally of at least X% over K sessions, short or exit."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from strategies.base import BaseParams, Signal, Strategy, StrategyContext


@dataclass(frozen=True)
class FadeParams(BaseParams):
    rally: float = 0.10  # minimum return over the lookback, as a fraction
    lookback: int = 5  # sessions before the entry session (closes strictly before it: no lookahead)
    hold: int = 5
    action: str = "short"  # short (needs --allow-short) | exit (close longs only)
    types: tuple[str, ...] = ("official_reassurance",)

    def __post_init__(self) -> None:
        if self.action not in ("short", "exit"):
            raise ValueError("action must be 'short' or 'exit'")
        if self.lookback < 1 or self.hold < 1:
            raise ValueError("lookback and hold must be >= 1 session")


class Fade(Strategy):
    name = "fade"
    description = "After a reassurance that follows a rally of >= X% over K sessions, short (or exit) for N sessions."
    Params = FadeParams

    def signals(self, ctx: StrategyContext) -> Iterable[Signal]:
        p: FadeParams = self.params
        for event in ctx.events_of(*p.types):
            for symbol in ctx.symbols_for(event):
                session = ctx.entry_session(event, symbol)
                if session is None:
                    continue
                rally = ctx.trailing_return(symbol, session, p.lookback)
                if rally is None or rally < p.rally:
                    continue
                if p.action == "short":
                    yield Signal(symbol=symbol, event=event, side="short", hold=p.hold, group=event.id)
                else:
                    yield Signal(symbol=symbol, event=event, action="exit", side="long")
