"""The ``evbt run`` command line that reproduces a configuration (shell-quoted, defaults left out)."""

from __future__ import annotations

import dataclasses
import os
import shlex
from typing import Any

from engine.market.venues import ENV_VAR as VENUES_ENV
from engine.plan.config import RunConfig, make_run_config
from strategies.registry import get_strategy

_COSTS = {"commission_pct": "--commission", "min_commission": "--min-commission",
          "slippage_bps": "--slippage-bps", "stamp_duty_rate": "--stamp-duty"}
_PLAIN = {"cash": "--cash", "fill": "--fill", "sizing": "--sizing", "size": "--size", "overlap": "--overlap",
          "start": "--start", "end": "--end", "base_currency": "--base-currency", "max_positions": "--max-positions",
          "max_gross": "--max-gross", "max_weight": "--max-weight"}
_FLAGS = {"allow_short": "--allow-short", "allow_margin": "--allow-margin", "replace_events": "--replace-events",
          "ratings": "--ratings"}


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return str(value)


def reproduce_command(config: RunConfig, prefix: str = "evbt", default_symbols: tuple[str, ...] | None = None) -> str:
    """``evbt run STRATEGY ...`` giving ``config`` (so the same run id on the same data and calendar)."""
    cls = get_strategy(config.strategy)
    symbols = tuple(cls.default_symbols if default_symbols is None else default_symbols)
    default = make_run_config(config.strategy, (), {}, None, symbols or config.symbols, cls.Params)
    parts = shlex.split(prefix)
    venues = os.environ.get(VENUES_ENV, "").strip()
    if venues:  # a user venue table is part of the run id (engine.saved_runs.ids.run_inputs): name it
        parts += ["--venues", venues]
    parts += ["run", config.strategy]
    for key, value in config.params.items():
        if default.params.get(key) != value:
            parts += ["-p", f"{key}={_text(value)}"]
    if config.symbols != default.symbols:
        parts += ["--symbols", ",".join(config.symbols)]
    for name, flag in _PLAIN.items():
        value, base = getattr(config, name), getattr(default, name)
        if value != base:
            parts += [flag, value.isoformat() if hasattr(value, "isoformat") else _text(value)]
    for f in dataclasses.fields(config.costs):
        value = getattr(config.costs, f.name)
        if value == getattr(default.costs, f.name):
            continue
        if f.name == "venue_fees":
            parts.append("--venue-fees" if value else "--no-venue-fees")
        else:
            parts += [_COSTS[f.name], _text(value)]
    if config.benchmark != default.benchmark:
        parts += ["--benchmark", config.benchmark or "none"]
    for path in config.events_files:
        parts += ["--events", path]
    for name, flag in _FLAGS.items():
        if getattr(config, name) and not getattr(default, name):
            parts.append(flag)
    return shlex.join(parts)
