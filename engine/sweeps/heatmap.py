"""The heatmap of a sweep: the metric over two grid keys (best over the other keys), as a PNG.

Cells are placed by the point's VALUES, never by its position in a grid; drawing is engine.reporting.charts'.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ConfigError
from engine.sweeps.grid import Grid


def heatmap_keys_for(grid: Grid, text: str | None) -> tuple[str, str]:
    """The two grid keys of the heatmap (``X,Y``; default: the first two axes)."""
    keys = grid.keys
    if text:
        wanted = [k.strip() for k in text.split(",") if k.strip()]
        if len(wanted) != 2 or wanted[0] == wanted[1]:
            raise ConfigError(f"--heatmap-keys {text!r}: expected two different grid keys X,Y")
        for key in wanted:
            if key not in keys:
                from engine.plan.config import suggest

                raise ConfigError(f"--heatmap-keys: {key!r} is not a grid key{suggest(key, keys)}; "
                                  f"grid keys: {', '.join(keys)}")
        return wanted[0], wanted[1]
    if len(keys) < 2:
        raise ConfigError("--heatmap needs two grid keys (give two -g options)")
    return keys[0], keys[1]


def heatmap_matrix(grid_values: dict[str, list[Any]], ranking: Sequence[dict[str, Any]], keys: tuple[str, str],
                   metric: str, higher_is_better: bool) -> tuple[list[Any], list[Any], np.ndarray]:
    """Best metric value per (x, y) cell over the other grid keys (NaN where undefined), axes in grid order."""
    xs = [_hashable(v) for v in grid_values[keys[0]]]
    ys = [_hashable(v) for v in grid_values[keys[1]]]
    grid = np.full((len(ys), len(xs)), np.nan)
    for entry in ranking:
        value = entry["metrics"].get(metric)
        if value is None:
            continue
        x = xs.index(_hashable(entry["values"][keys[0]]))
        y = ys.index(_hashable(entry["values"][keys[1]]))
        current = grid[y, x]
        if np.isnan(current) or (value > current if higher_is_better else value < current):
            grid[y, x] = value
    return xs, ys, grid


def _hashable(value: Any) -> Any:
    return "+".join(value) if isinstance(value, list) else value


def write_heatmap(path: Path, folder: Path, keys: tuple[str, str], metric: str) -> Path:
    """PNG of the metric over two grid keys (drawn by engine.reporting.charts), written atomically."""
    from engine.atomic import atomic_write_bytes
    from engine.reporting.charts import heatmap_png

    summary = json.loads((Path(folder) / "summary.json").read_text(encoding="utf-8"))
    xs, ys, grid = heatmap_matrix(summary["grid"], summary["ranking"], keys, metric, summary["higher_is_better"])
    title = f"{summary['strategy']}: {metric} (best over other keys)"
    atomic_write_bytes(Path(path), heatmap_png(xs, ys, grid, keys, title, metric))
    return Path(path)
