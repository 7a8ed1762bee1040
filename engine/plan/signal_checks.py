"""What a strategy hands the engine, checked before it is used: ``signals(ctx)`` and ``warmup()``.

A rule of the user's own (``--strategies-dir``, ``evbt run rule.py``) can return anything. Without these checks a
``yield 42`` surfaced as an internal ``AttributeError``, and a ``Signal(hold=-4)`` was executed as a position held
until some unrelated later exit: a wrong result, silently. Every problem here is a ``RunError`` (exit 1, like an
exception raised inside the rule) naming the strategy, its file and the offending value.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Iterable
from typing import Any

from engine.errors import RunError
from strategies.base import Exits, Signal, Strategy

_SIDES = frozenset(("long", "short"))
_ACTIONS = frozenset(("enter", "exit"))


def _who(strategy: Strategy) -> str:
    try:
        where = inspect.getfile(type(strategy))
    except (TypeError, OSError):  # a class without a file (defined in a REPL or a test)
        return f"strategy {strategy.name}"
    return f"strategy {strategy.name} ({where})"


def checked_warmup(strategy: Strategy) -> int:
    """``strategy.warmup()``, which must be a whole number of sessions >= 0."""
    sessions = strategy.warmup()
    if isinstance(sessions, bool) or not isinstance(sessions, numbers.Integral) or sessions < 0:
        raise RunError(f"{_who(strategy)}: warmup() must return a whole number of sessions >= 0, "
                       f"got {sessions!r}")
    return int(sessions)


def _problem(sig: Signal) -> str | None:
    """What is wrong with one signal's fields, or None."""
    if not isinstance(sig.symbol, str) or not sig.symbol:
        return f"symbol must be a symbol string, got {sig.symbol!r}"
    if sig.action not in _ACTIONS:
        return f"action must be 'enter' or 'exit', got {sig.action!r}"
    if sig.side not in _SIDES:
        return f"side must be 'long' or 'short', got {sig.side!r}"
    hold = sig.hold
    if sig.action == "enter" and hold is not None and not (type(hold) is int and hold >= 1) and (
            isinstance(hold, bool) or not isinstance(hold, numbers.Integral) or hold < 1):
        return f"hold must be a whole number of sessions >= 1 (or None: to the end), got {hold!r}"
    weight = sig.weight
    if weight is not None and not (type(weight) is float and 0 < weight < math.inf) and (
            isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not math.isfinite(weight)
            or weight <= 0):
        return f"weight must be a positive fraction of equity (or None: the run's sizing), got {weight!r}"
    if sig.exits is not None and not isinstance(sig.exits, Exits):
        return f"exits must be an Exits(...) or None, got {type(sig.exits).__name__}"
    return None


def checked_signals(strategy: Strategy, produced: Any) -> list[Signal]:
    """``produced`` (what ``strategy.signals(ctx)`` returned) as a list, each item a well-formed ``Signal``."""
    if isinstance(produced, (str, bytes)) or not isinstance(produced, Iterable):
        raise RunError(f"{_who(strategy)}: signals() returned {type(produced).__name__} {produced!r:.60}, not an "
                       f"iterable of Signal (yield Signal(...) objects, or return a list of them)")
    signals = list(produced)  # an exception raised inside the rule passes through (shown with the rule's frames)
    for n, sig in enumerate(signals):
        if not isinstance(sig, Signal):
            raise RunError(f"{_who(strategy)}: signals() item {n + 1} is {type(sig).__name__} {sig!r:.60}, "
                           f"not a Signal (from strategies.base import Signal)")
        problem = _problem(sig)
        if problem is not None:
            event = f", event {sig.event_id}" if sig.event is not None else ""
            raise RunError(f"{_who(strategy)}: signals() item {n + 1} (symbol {sig.symbol!r}{event}): {problem}")
    return signals


def plan_notes(strategy: Strategy, signalled: bool) -> list[str]:
    """The plan's notes: ``strategy.explain()`` when there is no signal, then ``strategy.notes()``; each a string."""
    note = None if signalled else strategy.explain()
    if note is not None and not isinstance(note, str):
        raise RunError(f"{_who(strategy)}: explain() must return a string or None, got {type(note).__name__} "
                       f"{note!r:.60}")
    extra = strategy.notes()
    if isinstance(extra, (str, bytes)) or not isinstance(extra, Iterable):
        raise RunError(f"{_who(strategy)}: notes() must return a list of strings, got {type(extra).__name__} "
                       f"{extra!r:.60}")
    notes = list(extra)
    for n, text in enumerate(notes):
        if not isinstance(text, str):
            raise RunError(f"{_who(strategy)}: notes() item {n + 1} is {type(text).__name__} {text!r:.60}, "
                           "not a string")
    return ([note] if note else []) + notes
