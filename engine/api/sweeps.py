"""``evbt sweep`` as the command line asks for it: check and build the request, run it with the settings'
calendars, then the heatmap and the placebo ranking of the top points."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.api.runs import _placebo_requested, config_from_options
from engine.api.settings import Settings, in_session
from engine.errors import ConfigError
from engine.reporting.models import SweepSummary

if TYPE_CHECKING:
    from engine.analysis.placebo import PlaceboRow
    from engine.sweeps.sweep import SweepOutcome

MAX_SWEEP_PLACEBO_POINTS = 20


@dataclass(frozen=True)
class SweepJob:
    """A checked ``evbt sweep``: the request and what to do with its outcome."""

    request: Any  # engine.sweeps.sweep.SweepRequest
    heatmap: Path | None = None
    heatmap_keys: tuple[str, str] | None = None
    placebo_n: int | None = None
    placebo_seed: int | None = None


def check_sweep_placebo(n: int | None, seed: int | None, split: str | None, walk_forward: str | None) -> None:
    """``evbt sweep --placebo N``: refuse what it cannot rank before the sweep starts."""
    if not _placebo_requested(n, seed):
        return
    if split or walk_forward:
        raise ConfigError("--placebo ranks points over the whole period: not with --split or --walk-forward")


def prepare_sweep(settings: Settings, strategy: str, grid_specs: Sequence[str], options: dict[str, Any], *,
                  metric: str, top: int, workers: int | None, cluster: str | None, split: str | None,
                  walk_forward: str | None, heatmap: Path | None = None, heatmap_keys: str | None = None,
                  placebo_n: int | None = None, placebo_seed: int | None = None) -> SweepJob:
    """Every input checked (metric, strategy, placebo, grid, run options, split, walk-forward, heatmap keys)
    before anything is computed or written."""
    from engine.api.runs import build_run_config
    from engine.plan.config import parse_date
    from engine.sweeps.grid import check_not_also_set, parse_grid
    from engine.sweeps.sweep import SweepRequest, check_metric, heatmap_keys_for, parse_walk_forward
    from strategies.registry import get_strategy, resolve

    check_metric(metric)
    if heatmap_keys is not None and heatmap is None:  # was silently ignored: no heatmap was written
        raise ConfigError(f"--heatmap-keys {heatmap_keys} chooses the axes of a heatmap: add --heatmap FILE.png")
    strategy = resolve(strategy, settings.strategy_dirs)  # a user strategy: the absolute path of its file
    check_sweep_placebo(placebo_n, placebo_seed, split, walk_forward)
    grid = parse_grid(grid_specs, get_strategy(strategy).Params, strategy)
    check_not_also_set(grid, options.get("params") or (), options)
    config = config_from_options(settings, strategy, options, swept=tuple(grid.keys))
    request = SweepRequest(
        strategy=strategy, base=config, grid=grid, metric=metric, top=top,
        workers=workers or min(os.cpu_count() or 1, 8), cluster=cluster,
        split=parse_date(split, "--split") if split else None,
        walk_forward=parse_walk_forward(walk_forward) if walk_forward else None,
        command_prefix="evbt --sample" if settings.sample else "evbt",
        default_symbols=build_run_config(settings, strategy, (), None, {}).symbols,
    )
    keys = heatmap_keys_for(grid, heatmap_keys) if heatmap is not None else None
    return SweepJob(request, heatmap, keys, placebo_n, placebo_seed)


@in_session
def run_sweep(settings: Settings, job: SweepJob, progress: Callable[[int, int], None] | None = None) -> SweepOutcome:
    """Compute the missing points and summarise the grid (engine.sweeps.sweep.run_sweep)."""
    from engine.sweeps.sweep import run_sweep as run

    return run(job.request, settings.store(), progress=progress)


@in_session
def finish_sweep(settings: Settings, job: SweepJob, outcome: SweepOutcome) -> list[PlaceboRow] | None:
    """The heatmap (if asked for) and the placebo ranking of the top points (None without --placebo)."""
    if job.heatmap is not None and job.heatmap_keys is not None:
        from engine.sweeps.sweep import write_heatmap

        write_heatmap(job.heatmap, outcome.path, job.heatmap_keys, job.request.metric)
    if job.placebo_n is None:
        return None
    return sweep_placebo(settings, job.request, outcome.summary, job.placebo_n, job.placebo_seed)


@in_session
def sweep_placebo(settings: Settings, request: Any, summary: SweepSummary, n: int,
                  seed: int | None) -> list[PlaceboRow]:
    """Placebo tests of the sweep's top points (``--top``, at most MAX_SWEEP_PLACEBO_POINTS), ranked by their
    total-return p-value (engine.analysis.placebo.rank_by_placebo)."""
    from engine.analysis.placebo import rank_by_placebo
    from engine.execution.fast_driver import unsupported_reason
    from engine.sweeps.sweep import point_config
    from strategies.registry import get_strategy

    params_cls = get_strategy(request.strategy).Params
    count = min(request.top or MAX_SWEEP_PLACEBO_POINTS, MAX_SWEEP_PLACEBO_POINTS)
    configs = []
    for entry in summary["ranking"][:count]:
        config = point_config(request.base, entry["values"], request.grid, params_cls)
        if unsupported_reason(config) is not None:
            raise ConfigError(f"--placebo runs on the fast path, which does not cover {unsupported_reason(config)}")
        configs.append((" ".join(f"{k}={v}" for k, v in entry["values"].items()), config))
    return rank_by_placebo(settings.store(), configs, n, seed=seed or 0, workers=request.workers)
