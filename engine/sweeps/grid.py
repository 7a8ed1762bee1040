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
# Refused before any work: a sweep holds a task (configuration, run key, JSON texts: 1.8 KB measured with
# tracemalloc) and later a result row and summary entry for every point; `-g hold=1..1000000` took 100 s of
# set-up and went past 6 GB. So about 6 KB per evaluation, and a limit that keeps a sweep near 0.6 GB.
MAX_POINTS = 100_000
BYTES_PER_POINT = 6 * 1024


def memory_estimate(points: int) -> str:
    """Human text for the memory ``points`` evaluations would need (e.g. ``about 5.7 GB``)."""
    size = points * BYTES_PER_POINT
    return f"about {size / 2**30:.1f} GB" if size >= 2**30 else f"about {size / 2**20:.0f} MB"


def check_size(points: int, what: str) -> None:
    """ConfigError (before any work) if ``points`` exceeds MAX_POINTS, with a memory estimate."""
    if points > MAX_POINTS:
        raise ConfigError(f"{what} has {points:,} points: {memory_estimate(points)} of memory for its tasks and "
                          f"results (~{BYTES_PER_POINT // 1024} KB per point); the limit is {MAX_POINTS:,} points "
                          "(use a step, e.g. 1..1000:10, or split the sweep)")


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
    check_size((hi - lo) // step + 1, f"-g {spec}")
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
    check_size(len(grid), "the grid")
    return grid


def check_not_also_set(grid: Grid, params: Sequence[str], options: dict[str, Any]) -> None:
    """A swept key given again as ``-p KEY=VALUE`` or as its run option (``--fill close`` beside ``-g fill=...``) is
    a ConfigError: the grid's values win, so the other value was silently ignored. (A ``--config`` file may set a
    swept key: the command line overrides it, as for every option.)"""
    given = {pair.split("=", 1)[0].strip() for pair in params if "=" in pair}
    for axis in grid.axes:
        key = axis.key
        if axis.kind == "param" and key in given:
            raise ConfigError(f"-g {key} sweeps {key}, so -p {key}=... would be ignored: give its values in -g only")
        if axis.kind == "run" and options.get(key) is not None:
            option = "--" + key.replace("_", "-")
            raise ConfigError(f"-g {key} sweeps {key}, so {option} would be ignored: give its values in -g only")
