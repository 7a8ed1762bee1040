"""Parameter grids for ``evbt sweep``: ``-g KEY=SPEC`` parsing, validation and expansion into points.

SPEC forms:
- a list: ``0.05,0.1`` or ``open,close`` (values are typed by the key: int, float, bool, str);
- an integer range, both ends included: ``1..30``; with a step: ``1..30:5`` (1, 6, 11, ...);
- for tuple parameters (e.g. ``firms``) one point may hold several items joined with ``+``:
  ``firms=JPMorgan,Goldman Sachs+Morgan Stanley`` is two points.

Keys are the strategy's parameters or one of ``RUN_KEYS`` (run options). Every problem is a ConfigError
(exit code 2) raised before anything runs.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from engine.errors import ConfigError
from engine.plan.config import FILLS, OVERLAPS, SIZINGS, coerce, suggest

# run option -> (type, choices or None)
RUN_KEYS: dict[str, tuple[type, tuple[str, ...] | None]] = {
    "fill": (str, FILLS),
    "sizing": (str, SIZINGS),
    "overlap": (str, OVERLAPS),
    "size": (float, None),
    "cash": (float, None),
    "commission": (float, None),
    "min_commission": (float, None),
    "slippage_bps": (float, None),
    "stamp_duty": (float, None),
}
MAX_POINTS = 1_000_000


@dataclass(frozen=True)
class Axis:
    """One swept key and its values (typed)."""

    key: str
    values: tuple[Any, ...]
    kind: str  # param | run


@dataclass(frozen=True)
class Grid:
    axes: tuple[Axis, ...]

    @property
    def keys(self) -> list[str]:
        return [a.key for a in self.axes]

    def __len__(self) -> int:
        return math.prod(len(a.values) for a in self.axes) if self.axes else 0

    def points(self) -> Iterator[dict[str, Any]]:
        """Every combination, the last axis varying fastest."""
        for combo in itertools.product(*(a.values for a in self.axes)):
            yield dict(zip(self.keys, combo, strict=True))

    def describe(self) -> dict[str, list[Any]]:
        return {a.key: [_plain(v) for v in a.values] for a in self.axes}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _int(text: str, spec: str, what: str) -> int:
    try:
        number = float(text)
    except ValueError:
        raise ConfigError(f"-g {spec}: range {what} {text!r} is not a number") from None
    if not math.isfinite(number) or not number.is_integer():
        raise ConfigError(f"-g {spec}: range {what} {text!r} is not an integer (list fractions: 0.05,0.1)")
    return int(number)


def split_spec(spec: str, raw: str) -> list[str]:
    """The raw value strings of one SPEC (a range is expanded here)."""
    if ".." not in raw:
        return [item for item in (part.strip() for part in raw.split(",")) if item]
    parts = raw.split("..")
    if len(parts) != 2:
        raise ConfigError(f"-g {spec}: a range is START..END or START..END:STEP with integers")
    end, _, step_text = parts[1].partition(":")
    lo = _int(parts[0].strip(), spec, "start")
    hi = _int(end.strip(), spec, "end")
    step = _int(step_text.strip(), spec, "step") if step_text.strip() else 1
    if step <= 0:
        raise ConfigError(f"-g {spec}: range step must be a positive integer")
    if lo > hi:
        raise ConfigError(f"-g {spec}: empty range ({lo} > {hi})")
    if (hi - lo) // step + 1 > MAX_POINTS:
        raise ConfigError(f"-g {spec}: too many values")
    return [str(v) for v in range(lo, hi + 1, step)]


def _typed(key: str, raw: str, hint: Any) -> Any:
    if typing.get_origin(hint) is tuple:
        return tuple(part.strip() for part in raw.split("+") if part.strip())
    return coerce(raw, hint, key)


def _run_value(key: str, raw: str, spec: str) -> Any:
    _kind, choices = RUN_KEYS[key]
    if choices is not None:
        if raw not in choices:
            raise ConfigError(f"-g {spec}: {key} must be one of {', '.join(choices)}; got {raw!r}")
        return raw
    try:
        number = float(raw)
    except ValueError:
        raise ConfigError(f"-g {spec}: {key} value {raw!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise ConfigError(f"-g {spec}: {key} value {raw!r} must be a finite number >= 0")
    return number


def parse_axis(spec: str, params_cls: type, strategy: str) -> Axis:
    key, sep, raw = spec.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"-g {spec!r}: expected KEY=SPEC (e.g. hold=1..30, fill=open,close)")
    hints = typing.get_type_hints(params_cls)
    params = [f.name for f in dataclasses.fields(params_cls)]
    if key in params:
        try:
            values = [_typed(key, item, hints[key]) for item in split_spec(spec, raw)]
        except ConfigError as exc:
            message = str(exc)
            raise ConfigError(message if message.startswith("-g ") else f"-g {spec}: {message}") from None
        kind = "param"
    elif key in RUN_KEYS:
        values = [_run_value(key, item, spec) for item in split_spec(spec, raw)]
        kind = "run"
    else:
        known = params + sorted(RUN_KEYS)
        raise ConfigError(f"-g {spec}: unknown key {key!r} for strategy {strategy}{suggest(key, known)}; "
                          f"keys: {', '.join(known)}")
    unique = list(dict.fromkeys(values))
    if not unique:
        raise ConfigError(f"-g {spec}: no values (the grid would have zero points)")
    return Axis(key=key, values=tuple(unique), kind=kind)


def parse_grid(specs: Sequence[str], params_cls: type, strategy: str) -> Grid:
    """All ``-g`` options as a Grid; zero points, unknown or repeated keys and bad values are ConfigError."""
    if not specs:
        raise ConfigError("a sweep needs at least one -g KEY=SPEC (e.g. -g hold=1..30)")
    axes = [parse_axis(spec, params_cls, strategy) for spec in specs]
    seen: set[str] = set()
    for axis in axes:
        if axis.key in seen:
            raise ConfigError(f"-g {axis.key} given twice; put all its values in one SPEC")
        seen.add(axis.key)
    grid = Grid(tuple(axes))
    if len(grid) > MAX_POINTS:
        raise ConfigError(f"the grid has {len(grid):,} points (limit {MAX_POINTS:,})")
    return grid
