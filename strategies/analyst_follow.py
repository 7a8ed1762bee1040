"""analyst_follow: long on upgrades, out on a downgrade or after N sessions; optional short on downgrades.

With ``below_ma=N`` an upgrade is only followed when the last close before the entry session is below its
N-session moving average (buying the upgrade of a stock that is still in a downtrend).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from strategies import indicators as ind
from strategies.base import BaseParams, RowKind, RowsContext, Signal, SignalRows, Strategy, StrategyContext
from strategies.event_hold import firm_matches, unknown_firms_note

if TYPE_CHECKING:
    import pandas as pd


ANALYST_TYPES = ("analyst_upgrade", "analyst_downgrade")


@dataclass(frozen=True)
class AnalystFollowParams(BaseParams):
    firms: tuple[str, ...] = ()  # empty = every firm
    hold: int = 20
    short_downgrades: bool = False
    below_ma: int = 0  # > 0: enter only if the last close is below its N-session moving average (0 = no filter)

    def __post_init__(self) -> None:
        if self.hold < 1:
            raise ValueError("hold must be >= 1 session")
        if self.below_ma < 0 or self.below_ma == 1:
            raise ValueError("below_ma must be 0 (off) or a moving-average length >= 2 sessions")


class AnalystFollow(Strategy):
    name = "analyst_follow"
    description = ("Long on analyst upgrades (optionally only below the N-session average); exit on a downgrade "
                   "or after N sessions; optionally short downgrades.")
    Params = AnalystFollowParams
    exit_params = ("hold", "stop_loss", "take_profit", "trailing_stop")  # hold: only as the entries' hold

    def warmup(self) -> int:
        return self.params.below_ma

    def _trend_ok(self, ctx: StrategyContext, symbol: str, session: pd.Timestamp) -> bool:
        n = self.params.below_ma
        if n == 0:
            return True
        close = ctx.last_close(symbol, session)
        average = ctx.sma(symbol, session, n)
        return close is not None and average is not None and close < average  # no average yet: no entry

    def signals(self, ctx: StrategyContext) -> Iterable[Signal]:
        p: AnalystFollowParams = self.params
        self._firms_note = unknown_firms_note(self.name, p.firms, ctx.events_of(*ANALYST_TYPES), ANALYST_TYPES)
        for event in ctx.events_of("analyst_upgrade", "analyst_downgrade"):
            if not firm_matches(event.firm, p.firms):
                continue
            for symbol in ctx.symbols_for(event):
                if event.type == "analyst_upgrade":
                    session = ctx.entry_session(event, symbol)
                    if session is not None and self._trend_ok(ctx, symbol, session):
                        yield Signal(symbol=symbol, event=event, hold=p.hold, group=event.id)
                else:
                    yield Signal(symbol=symbol, event=event, action="exit", side="long")
                    if p.short_downgrades:
                        yield Signal(symbol=symbol, event=event, side="short", hold=p.hold, group=event.id)

    def notes(self) -> list[str]:
        note = getattr(self, "_firms_note", None)
        return [note] if note else []

    def signal_rows(self, ctx: RowsContext) -> SignalRows | None:
        """``signals`` as columns (equal to it, row for row; the planner's fast path)."""
        p: AnalystFollowParams = self.params
        pairs = ctx.event_pairs("analyst_upgrade", "analyst_downgrade")
        if pairs is None:
            return None
        events, symbols = pairs
        listed = ctx.events
        self._firms_note = unknown_firms_note(self.name, p.firms, listed, ANALYST_TYPES)
        if p.firms:
            keep = np.array([firm_matches(listed[k].firm, p.firms) for k in events.tolist()], dtype=bool)
            events, symbols = events[keep], symbols[keep]
        types = np.array([event.type for event in listed], dtype=object)  # per event of the run, then per pair
        up = types[events] == "analyst_upgrade"
        sessions = ctx.entry_session_values(events[up], symbols[up])
        if sessions is None:
            return None
        ok = ~np.isnat(sessions)
        if p.below_ma:
            close = ctx.indicator_values(symbols[up], sessions, ind.close)
            average = ctx.indicator_values(symbols[up], sessions, ind.sma, p.below_ma)
            ok &= np.isfinite(close) & np.isfinite(average) & (close < average)
        counts = np.full(len(events), 2 if p.short_downgrades else 1, dtype=np.int64)
        counts[up] = ok
        pair = np.repeat(np.arange(len(events)), counts)  # each pair's signals, in the order signals yields them
        second = np.arange(len(pair)) - (np.cumsum(counts) - counts)[pair] == 1
        kinds_of = np.where(up[pair], 0, np.where(second, 2, 1))
        kinds = (RowKind(hold=p.hold, group_by_event=True), RowKind(action="exit", side="long"),
                 RowKind(side="short", hold=p.hold, group_by_event=True))
        return SignalRows(events[pair], symbols[pair], kinds_of, kinds)
