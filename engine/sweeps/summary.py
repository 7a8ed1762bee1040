"""A sweep's summary (JSON-ready): ranking, best point, out-of-sample and walk-forward analysis, and the
multiple-testing note. Stored rows are joined to THIS sweep's grid by key: a row's point number and values come
from the current grid, never from the sweep that happened to compute it."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.reporting.models import MultipleTesting, RankedPoint, SweepSummary, WalkForwardStep
from engine.reporting.report import to_jsonable
from engine.sweeps.grid import Grid
from engine.sweeps.stats import METRICS, better, deflated_sharpe, rank_points
from engine.sweeps.tasks import Task
from engine.sweeps.windows import Window


def window_rows(rows: pd.DataFrame, tasks: Sequence[Task], window: Window) -> pd.DataFrame:
    """The stored rows of ``window``'s tasks in grid order, each with the task's point number (a join on the
    key columns: no per-row Python objects)."""
    order = pd.DataFrame([(t.key, t.point) for t in tasks if t.window == window], columns=["key", "point"])
    joined = order.merge(rows.drop(columns=["point"], errors="ignore"), on="key", how="inner", sort=False)
    return joined.reset_index(drop=True)


def summarise(metric: str, grid: Grid, rows: pd.DataFrame, tasks: Sequence[Task], windows: Sequence[Window],
              sweep_id: str, strategy: str) -> SweepSummary:
    """Ranking, best point, out-of-sample analysis and the multiple-testing note."""
    values = list(grid.points())
    labels = [w.label for w in windows]
    per_window = {w.label: window_rows(rows, tasks, w) for w in windows}
    main = "is" if "is" in labels else ("full" if "full" in labels else None)
    doc: dict[str, Any] = {"sweep_id": sweep_id, "strategy": strategy, "metric": metric,
                           "higher_is_better": better(metric), "grid": grid.describe(), "windows": labels}
    if main is not None:
        ranked = rank_points(per_window[main], metric) if len(per_window[main]) else per_window[main]
        oos = {int(r["point"]): r for r in per_window["oos"].to_dict("records")} if "oos" in per_window else {}
        doc["ranking"] = [point_doc(r, values, oos) for r in ranked.to_dict("records")]
        doc["best"] = doc["ranking"][0] if doc["ranking"] else None
        doc["multiple_testing"] = multiple_testing(ranked, len(grid))
    else:
        doc.update(walk_forward(per_window, windows, values, metric, len(grid)))
    return doc  # type: ignore[return-value]  # every SweepSummary key is set above


def point_doc(row: Mapping[Any, Any], values: list[dict[str, Any]],
              oos: Mapping[int, Mapping[Any, Any]]) -> RankedPoint:
    point = int(row["point"])
    out: RankedPoint = {"point": point, "values": to_jsonable(values[point]), "key": row["key"],
                           "engine": row["engine"], "metrics": {m: clean(row.get(m)) for m in METRICS}}
    match = oos.get(point)
    if match is not None:
        out["oos_key"] = match["key"]
        out["oos_metrics"] = {m: clean(match.get(m)) for m in METRICS}
    return out


def clean(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return number if math.isfinite(number) else None


def multiple_testing(ranked: pd.DataFrame, points: int) -> MultipleTesting:
    doc: MultipleTesting = {"points_tried": points, "deflated_sharpe": None,
                           "note": f"{points} points tried: the best of many is flattered by luck."}
    if ranked.empty:
        return doc
    best = ranked.iloc[0]
    sharpe, n = clean(best.get("sharpe_daily")), int(best.get("n_returns") or 0)
    skew, kurt = clean(best.get("skew")), clean(best.get("kurtosis"))
    if sharpe is None or skew is None or kurt is None:
        return doc
    result = deflated_sharpe(sharpe, [clean(v) for v in ranked["sharpe_daily"]], n, skew, kurt)
    if result is not None:
        doc["deflated_sharpe"] = dataclasses.asdict(result)
        doc["note"] = (f"{points} points tried; deflated Sharpe ratio of the best point = {result.dsr:.3f} "
                       f"(probability its true Sharpe beats the best-of-{result.trials} luck threshold "
                       f"{result.expected_max_sharpe * math.sqrt(252):.2f} annualised)")
    return doc


def walk_forward(per_window: dict[str, pd.DataFrame], windows: Sequence[Window], values: list[dict[str, Any]],
                 metric: str, points: int) -> dict[str, Any]:
    steps: list[WalkForwardStep] = []
    labels = [w.label for w in windows]
    for w in windows:
        if not w.label.endswith("-train"):
            continue
        test_label = w.label.replace("-train", "-test")
        test = next(x for x in windows if x.label == test_label)
        if per_window[w.label].empty:
            continue
        ranked = rank_points(per_window[w.label], metric)
        best = ranked.iloc[0]
        point = int(best["point"])
        test_rows = per_window[test_label]
        match = test_rows[test_rows["point"] == point] if len(test_rows) else test_rows
        test_row = match.iloc[0] if len(match) else None
        steps.append({
            "train": {"label": w.label, "start": w.start.isoformat(), "end": w.end.isoformat()},
            "test": {"label": test_label, "start": test.start.isoformat(), "end": test.end.isoformat()},
            "chosen_point": point, "values": to_jsonable(values[point]), "train_metric": clean(best.get(metric)),
            "train_key": best["key"],
            "test_metric": None if test_row is None else clean(test_row.get(metric)),
            "test_total_return": None if test_row is None else clean(test_row.get("total_return")),
            "test_key": None if test_row is None else test_row["key"],
            "multiple_testing": multiple_testing(ranked, points),
        })
    oos = [s["test_metric"] for s in steps if s["test_metric"] is not None]
    growth = 1.0
    for s in steps:
        growth *= 1.0 + (s["test_total_return"] or 0.0)
    return {"walk_forward": steps, "windows": labels,
            "walk_forward_summary": {"steps": len(steps), "mean_test_metric": float(np.mean(oos)) if oos else None,
                                     "test_metric_steps": len(oos),
                                     "chained_test_return": growth - 1.0 if steps else None},
            "best": None, "ranking": [], "multiple_testing": {"points_tried": points}}
