"""The strategy API: a typed Params dataclass and a ``signals(ctx)`` method that turns events into signals.

A strategy author writes which events, which side, and the exit rule::

    @dataclass(frozen=True)
    class Params(BaseParams):
        hold: int = 5

    class MyRule(Strategy):
        name = "my_rule"
        Params = Params

        def signals(self, ctx):
            for event in ctx.events_of("official_reassurance"):
                for symbol in ctx.symbols_for(event):
                    yield Signal(symbol=symbol, event=event, hold=self.params.hold)

The engine decides the fill (first price a trader could get after the event, on the symbol's own exchange),
sizes the order, applies costs and exits after ``hold`` sessions of the symbol's exchange.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    import pandas as pd

    from engine.events.catalog import Event

# The seed scenario's China-internet universe: US ADRs and Hong Kong lines.
CHINA_INTERNET: tuple[str, ...] = (
    "BABA", "JD", "NTES", "BIDU", "TCEHY", "PDD", "BILI",
    "0700.HK", "9988.HK", "3690.HK", "9618.HK", "9999.HK", "9888.HK", "1024.HK",
)  # fmt: skip


# What ``Strategy.exit_params`` may name: the hold and the guards of BaseParams.
EXIT_PARAMS: tuple[str, ...] = ("hold", "stop_loss", "take_profit", "trailing_stop")


@dataclass(frozen=True)
class BaseParams:
    """Exit rules every strategy accepts (fractions; None = off), checked on closes; ``-p trailing_stop=0.1``."""

    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None


@dataclass(frozen=True)
class Exits:
    """Exit rules attached to an entry signal, besides its ``hold``; the first that fires closes the position and
    the trade list names it (``exit_reason``).

    - ``stop_loss``: a close at or below entry x (1 - x) (long; at or above entry x (1 + x) for a short);
    - ``take_profit``: a close at or above entry x (1 + x) (long; mirrored for a short);
    - ``trailing_stop``: a close at or below (1 - x) x the highest of the entry price and the closes since the
      entry (long; for a short: at or above (1 + x) x the lowest);
    - ``on_events``: event types that close the position when one concerns the same symbol after the entry
      (e.g. ``("analyst_downgrade",)``), at that event's no-lookahead fill point (reason ``event:TYPE``).

    Guards are checked on closes from the entry (fill ``close``: from the next close) and a hit exits at the
    symbol's next fill point. A field left None takes the run's parameter of the same name (``-p stop_loss=``).
    On one close, the order of precedence is stop_loss, trailing_stop, take_profit.
    """

    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None
    on_events: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("stop_loss", "trailing_stop"):
            value = getattr(self, name)
            if value is not None and not 0 < value < 1:
                raise ValueError(f"{name} must be a fraction in (0, 1), e.g. 0.1 for 10%; got {value}")
        if self.take_profit is not None and not self.take_profit > 0:
            raise ValueError(f"take_profit must be a positive fraction, e.g. 0.2 for 20%; got {self.take_profit}")

    def with_defaults(self, params: object) -> Exits:
        """These rules, each missing guard taken from the run's parameters (``BaseParams`` fields)."""
        pick = {name: getattr(self, name) if getattr(self, name) is not None else getattr(params, name, None)
                for name in ("stop_loss", "take_profit", "trailing_stop")}
        return Exits(on_events=self.on_events, **pick)


@dataclass(frozen=True)
class Signal:
    """One wish of the strategy: enter (or exit) ``symbol`` because of ``event``.

    - ``hold``: sessions of the symbol's own exchange to hold after the entry bar (None = to the end).
    - ``session``: explicit entry session (tz-naive date); default: the event's no-lookahead entry session.
    - ``group``: signals sharing a group split one allotment when sizing is ``equal``.
    - ``weight``: fraction of equity for this entry, overriding the run's sizing (used by buy_hold).
    - ``exits``: exit rules of the position this entry opens (``Exits``); None = the run's parameters.
    """

    symbol: str
    event: Event | None = None
    side: str = "long"  # long | short
    action: str = "enter"  # enter | exit
    hold: int | None = 5
    session: pd.Timestamp | None = None
    group: str | None = None
    weight: float | None = None
    label: str | None = None  # event id to report when there is no event (e.g. "buy_hold")
    exits: Exits | None = None

    @property
    def event_id(self) -> str:
        if self.event is not None:
            return self.event.id
        return self.label or "none"

    @property
    def event_type(self) -> str:
        return self.event.type if self.event is not None else (self.label or "none")


@dataclass(frozen=True)
class RowKind:
    """What the signals of one kind share in ``SignalRows`` (the ``Signal`` fields besides symbol and event);
    ``group_by_event``: the group is the event's id (else None)."""

    side: str = "long"
    action: str = "enter"
    hold: int | None = 5
    group_by_event: bool = False
    exits: Exits | None = None


@dataclass(frozen=True)
class SignalRows:
    """Signals as columns: row ``k`` is ``Signal(symbol=ctx.universe[symbols[k]], event=ctx.events[events[k]],
    side/action/hold/exits of kinds[kinds_of[k]], group=event id if that kind groups by event)``, in the order
    ``signals(ctx)`` yields them. Built-in strategies return it from ``Strategy.signal_rows`` (their fast path,
    equal to their ``signals``); the arrays are integer numpy arrays of one length."""

    events: Any
    symbols: Any
    kinds_of: Any
    kinds: tuple[RowKind, ...]


class StrategyContext(Protocol):
    """What the engine gives a strategy: events of the run's period, the universe, and as-of price views.

    Every price view reads tradable bars (stale placeholders left out) dated **strictly before** ``session``:
    a rule deciding on an entry session cannot see that session's bar or any later one. Views return None
    when there is no such bar or the indicator's window is not full (see ``Strategy.warmup``).
    """

    universe: tuple[str, ...]
    fill: str

    @property
    def events(self) -> Sequence[Event]: ...

    def events_of(self, *types: str) -> list[Event]: ...

    def symbols_for(self, event: Event) -> list[str]: ...

    def entry_session(self, event: Event, symbol: str) -> pd.Timestamp | None: ...

    def first_session(self, symbol: str) -> pd.Timestamp | None:
        """The symbol's first tradable bar on or after the run's start."""
        ...

    def history(self, symbol: str, session: pd.Timestamp | None, bars: int | None = None) -> pd.DataFrame | None:
        """OHLCV bars before ``session`` (the last ``bars`` of them), a copy."""
        ...

    def last_close(self, symbol: str, session: pd.Timestamp | None) -> float | None: ...

    def indicator(self, symbol: str, session: pd.Timestamp | None, func: Callable[..., pd.Series], *args: Any,
                  **kwargs: Any) -> float | None:
        """A vectorised ``func(frame, *args) -> Series`` (memoised per symbol and arguments) as of ``session``."""
        ...

    def sma(self, symbol: str, session: pd.Timestamp | None, n: int) -> float | None: ...

    def rsi(self, symbol: str, session: pd.Timestamp | None, n: int = 14) -> float | None: ...

    def atr(self, symbol: str, session: pd.Timestamp | None, n: int = 14) -> float | None: ...

    def rolling_return(self, symbol: str, session: pd.Timestamp | None, n: int) -> float | None: ...

    def volatility(self, symbol: str, session: pd.Timestamp | None, n: int,
                   annualize: bool = False) -> float | None: ...

    def volume_zscore(self, symbol: str, session: pd.Timestamp | None, n: int = 20) -> float | None: ...

    def trailing_return(self, symbol: str, session: pd.Timestamp | None, sessions: int) -> float | None: ...


class RowsContext(StrategyContext, Protocol):
    """The engine context's columnar views, for ``Strategy.signal_rows`` (events and symbols by position in
    ``events`` and ``universe``; sessions as datetime64[ns], NaT for none). Each returns None where the
    columnar answer would not be the scalar one's (the engine then asks ``signals``)."""

    def event_pairs(self, *types: str) -> tuple[Any, Any] | None:
        """(event positions, symbol positions): ``for e in events_of(*types): for s in symbols_for(e)``."""
        ...

    def entry_session_values(self, events: Any, symbols: Any) -> Any | None:
        """``entry_session`` of each (event, symbol) pair, as datetime64[ns]."""
        ...

    def indicator_values(self, symbols: Any, sessions: Any, func: Callable[..., pd.Series],
                         *args: Any) -> Any:
        """``indicator`` of each (symbol, session) pair as a float array (NaN where it is None)."""
        ...


class Strategy:
    """Base class. Subclasses set ``name``, ``Params`` (a frozen dataclass) and implement ``signals``."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Params: ClassVar[type] = BaseParams
    default_symbols: ClassVar[tuple[str, ...]] = CHINA_INTERNET
    # Parameters that only shape exits, so sweeps may plan points differing only in them from one set of
    # signals: ``hold`` when ``signals`` reads it only as the ``hold`` of every entry signal, and the guards
    # (stop_loss, take_profit, trailing_stop) when ``signals`` does not read them at all (the engine fills them
    # into each entry's exits). Leave it empty (the default) unless that is true: every point then plans afresh.
    exit_params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: BaseParams | None = None) -> None:
        self.params: Any = params if params is not None else self.Params()  # an instance of ``Params``

    def warmup(self) -> int:
        """Sessions of history the rule reads before the run's first session (e.g. 50 for a 50-session average).

        The run loads that many tradable bars before its start (never traded) and warns, naming the symbol,
        when the data does not have them."""
        return 0

    def signals(self, ctx: StrategyContext) -> Iterable[Signal]:
        raise NotImplementedError

    def signal_rows(self, ctx: RowsContext) -> SignalRows | None:
        """Optional fast path: ``signals(ctx)`` as columns (``SignalRows``), or None to let the engine ask
        ``signals``. Built-ins only; strategy authors write ``signals``."""
        return None

    def explain(self) -> str | None:
        """After ``signals``: why it produced no signal, when the rule can tell (shown with the run's warnings)."""
        return None

    def notes(self) -> list[str]:
        """After ``signals``: warnings about the parameters given, with or without signals (shown with the run's
        warnings), e.g. a firm no event of the run names."""
        return []
