"""Grid points as tasks: one (point, window) each, keyed by the run id ``evbt run`` gives the same inputs.

A task's ``key`` depends only on the point's VALUES (and the window, data and calendar), never on its position
in the grid: stored rows are matched to a grid by key, so reordering or widening a grid reuses them exactly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.errors import ConfigError
from engine.plan.config import RunConfig, params_to_dict
from engine.reporting.report import to_jsonable
from engine.saved_runs import strategy_slug
from engine.saved_runs.ids import run_inputs
from engine.sweeps.data import SweepData
from engine.sweeps.evaluate import SweepCaches
from engine.sweeps.grid import Grid
from engine.sweeps.windows import Window

COST_FIELDS = {"commission": "commission_pct", "min_commission": "min_commission",
               "slippage_bps": "slippage_bps", "stamp_duty": "stamp_duty_rate"}


@dataclass(frozen=True)
class Task:
    """One (point, window) to evaluate; ``key`` is the equivalent run id; ``point`` is the position in THIS
    sweep's grid (display order only)."""

    point: int
    window: Window
    config: RunConfig
    key: str
    params_json: str = ""
    values_json: str = ""

    @property
    def config_json(self) -> str:
        """The stored configuration, built when the row is written: held per task, its universe list alone
        would cost 16 KB a point at 2,000 symbols (and ship with every batch)."""
        return json.dumps(self.config.to_dict(), sort_keys=True)


def point_config(base: RunConfig, values: dict[str, Any], grid: Grid, params_cls: type | None = None,
                 caches: SweepCaches | None = None) -> RunConfig:
    """The base configuration with one grid point's values applied (validated like ``evbt run``)."""
    caches = caches or SweepCaches()
    kinds = {a.key: a.kind for a in grid.axes}
    params = dict(base.params)
    run: dict[str, Any] = {}
    costs: dict[str, float] = {}
    for key, value in values.items():
        if kinds[key] == "param":
            params[key] = value
        elif key in COST_FIELDS:
            costs[COST_FIELDS[key]] = float(value)
        else:
            run[key] = value
    typed = params_to_dict(caches.typed_params(base.strategy, params))
    try:
        cost_model = dataclasses.replace(base.costs, **costs) if costs else base.costs  # type: ignore[arg-type]
        config = dataclasses.replace(base, params=typed, costs=cost_model, **run)
    except ValueError as exc:
        raise ConfigError(f"grid point {values}: {exc}") from None
    if config.sizing == "cash" and config.size < 1:  # -g sizing=cash,percent with the default size 0.05: $0.05
        raise ConfigError(f"grid point {values}: sizing cash buys a fixed base-currency amount per entry, and size "
                          f"{config.size:g} is less than 1 {config.base_currency} (a fraction of equity is the size "
                          "of percent or equal sizing): sweep the amount beside the sizing (-g sizing=cash "
                          "-g size=20000) or give --size AMOUNT")
    return config


def config_dict(base_dict: dict[str, Any], cfg: RunConfig) -> dict[str, Any]:
    """``cfg.to_dict()`` computed from the base configuration's dict (only swept fields differ; tested)."""
    out = dict(base_dict)
    out["params"] = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.params.items()}
    out["costs"] = {f.name: getattr(cfg.costs, f.name) for f in dataclasses.fields(cfg.costs)}
    for name in ("cash", "fill", "sizing", "size", "overlap"):
        out[name] = getattr(cfg, name)
    out["start"], out["end"] = cfg.start.isoformat(), cfg.end.isoformat()
    return out


def run_key(strategy: str, params: dict[str, Any], config: dict[str, Any], fingerprints: dict[str, str],
            calendar_hash: str) -> str:
    """``engine.saved_runs.make_run_id`` for inputs that are already plain JSON (tests check they agree)."""
    payload: dict[str, Any] = {"strategy": strategy, "params": params, "config": config, "data": fingerprints,
                               "calendar_hash": calendar_hash}
    payload["inputs"] = run_inputs(strategy)
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return f"{strategy_slug(strategy)}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def values_json(values: dict[str, Any]) -> str:
    return json.dumps(to_jsonable(values), sort_keys=True)


def build_tasks(base: RunConfig, grid: Grid, windows: Sequence[Window], data: SweepData,
                caches: SweepCaches | None = None) -> list[Task]:
    caches = caches or SweepCaches()
    fps = {w: caches.context(data, w).fingerprints for w in windows}
    base_dict = base.to_dict()
    tasks: list[Task] = []
    for n, values in enumerate(grid.points()):
        config = point_config(base, values, grid, caches=caches)
        vjson = values_json(values)
        for window in windows:
            cfg = dataclasses.replace(config, start=window.start, end=window.end)
            cdict = config_dict(base_dict, cfg)
            key = run_key(cfg.strategy, cdict["params"], cdict, fps[window], data.calendar_hash)
            tasks.append(Task(n, window, cfg, key, json.dumps(cdict["params"], sort_keys=True), vjson))
    return tasks
