"""fade: sell the news. After a reassurance that follows a rally of at least X% over K sessions, short or exit."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from strategies import indicators as ind
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
    exit_params = ("hold", "stop_loss", "take_profit", "trailing_stop")  # hold: only as the entries' hold

    def warmup(self) -> int:
        return self.params.lookback + 1  # lookback returns need lookback + 1 closes

    def signals(self, ctx: StrategyContext) -> Iterable[Signal]:
        p: FadeParams = self.params
        self._checked = 0
        self._largest: tuple[float, str, str] | None = None  # (rally, symbol, event id)
        for event in ctx.events_of(*p.types):
            for symbol in ctx.symbols_for(event):
                session = ctx.entry_session(event, symbol)
                if session is None:
                    continue
                rally = ctx.rolling_return(symbol, session, p.lookback)
                if rally is None:
                    continue
                self._checked += 1
                if self._largest is None or rally > self._largest[0]:
                    self._largest = (rally, symbol, event.id)
                if rally < p.rally - ind.THRESHOLD_SLACK:
                    continue
                if p.action == "short":
                    yield Signal(symbol=symbol, event=event, side="short", hold=p.hold, group=event.id)
                else:
                    yield Signal(symbol=symbol, event=event, action="exit", side="long")

    def explain(self) -> str | None:
        p: FadeParams = self.params
        checked = getattr(self, "_checked", 0)
        largest = getattr(self, "_largest", None)
        if not checked or largest is None:
            return (f"fade: no signal: no {'/'.join(p.types)} event had {p.lookback} sessions of closes before "
                    "its entry for a symbol of the universe")
        return (f"fade: no signal: {checked} (event, symbol) pair(s) checked; the largest rally over {p.lookback} "
                f"sessions was {largest[0]:.2%} ({largest[1]} before {largest[2]}), below rally={p.rally:g}")
