"""Typed models of the documents that cross the engine / reporting / CLI boundaries.

They are ``TypedDict``s: at run time each document stays the plain JSON-ready dict it always was (so
``report.json`` and every ``--json`` output are unchanged byte for byte); the type checker sees which keys
exist and which are always there. A key marked ``Required`` (or a ``total=True`` model) is present in every
document of that kind, so readers index it; the others may be absent and are read with ``.get``.

- ``Report``: report.json of one run (docs/report-schema.md), built by ``engine.reporting.report.build_report``.
  A report read back from a file is checked for its ``Required`` keys only (``engine.saved_runs.reader``).
- ``Comparison``: ``evbt compare`` (``engine.analysis.compare.compare_reports``).
- ``SweepSummary``: a sweep's summary.json and ``evbt sweep --json`` (``engine.sweeps.summary.summarise``).
- ``EventListing`` and ``StrategyRow``: ``evbt events ls`` and ``evbt strategies`` (``engine.api``).
Study results are frozen dataclasses (``engine.analysis.study_results``), not dicts.
"""

# no `from __future__ import annotations`: Required/NotRequired must be seen at run time (__required_keys__)
from typing import Any, NotRequired, Required, TypedDict

MetricsDoc = dict[str, Any]  # metric name -> number or None (engine.analysis.metrics.Metrics.to_dict())
TradeDoc = dict[str, Any]  # the fields of engine.execution.records.TradeRecord, JSON-ready
OrderDoc = dict[str, Any]  # the fields of engine.execution.records.OrderRecord, JSON-ready


# ---------------------------------------------------------------------------------------------- report.json


class Period(TypedDict):
    start: str | None
    end: str | None
    bars: int


class SymbolData(TypedDict):
    """One symbol's data version in a report (engine.reporting.report.DATA_KEYS)."""

    source: Any
    first_date: Any
    last_date: Any
    rows: Any
    fingerprint: Any
    currency: Any
    exchange: Any
    adjustment: Any


class DataSection(TypedDict):
    synthetic: bool
    symbols: dict[str, SymbolData]


class SweepLabel(TypedDict, total=False):
    """Added to a sweep point's report: in the sweep folder's report.json (the best point) and by the resolver
    for ``SWEEP_ID:RANK``."""

    sweep_id: Required[str]
    metric: str
    points_tried: int
    note: str
    rank: int


class Report(TypedDict, total=False):
    """report.json of one run; ``build_report`` writes every key except ``sweep``."""

    schema_version: Required[int]
    run_id: Required[str]
    metrics: Required[MetricsDoc]
    trades: Required[list[TradeDoc]]
    strategy: str
    params: dict[str, Any]
    config: dict[str, Any]
    period: Period
    universe: list[str]
    benchmark: str | None
    orders: list[OrderDoc]
    data: DataSection
    events: dict[str, Any]  # calendar_hash, count, used, used_ids
    fx_source: str | None
    warnings: list[str]
    sweep: SweepLabel


# ---------------------------------------------------------------------------------------------- compare


class CompareRun(TypedDict):
    run_id: Any
    strategy: Any
    start: Any
    end: Any
    synthetic: bool
    base_currency: str  # what its money figures are in (USD for reports without the key)


class MetricRow(TypedDict):
    name: str
    values: list[Any]
    deltas: list[float | None]  # value - first value (None for the first run and non-numbers)


class TradeRow(TypedDict):
    """The trades of one (event_id, symbol) in each run (several trades on one key summed)."""

    event_id: str
    symbol: str
    present: list[bool]
    count: list[int]
    pnl: list[float | None]
    ret: list[float | None]
    pnl_delta: list[float | None]


class TradeDiff(TypedDict):
    only_some: list[TradeRow]
    common: list[TradeRow]


class Comparison(TypedDict):
    runs: list[CompareRun]
    metrics: list[MetricRow]
    params: dict[str, list[Any]]  # dotted key -> value per run, only keys that differ
    config: dict[str, list[Any]]
    trades: TradeDiff
    warnings: list[str]  # e.g. runs in different base currencies: their money deltas mean nothing


# ---------------------------------------------------------------------------------------------- sweeps


class RankedPoint(TypedDict):
    point: int
    values: dict[str, Any]
    key: str  # the run id of the same `evbt run`
    engine: str  # fast | backtrader
    metrics: MetricsDoc
    oos_key: NotRequired[str]
    oos_metrics: NotRequired[MetricsDoc]
    command: NotRequired[str]  # the best point's shell-quoted `evbt run` command


class MultipleTesting(TypedDict, total=False):
    points_tried: Required[int]
    deflated_sharpe: dict[str, Any] | None
    note: str


class WindowSpan(TypedDict):
    label: str
    start: str
    end: str


class WalkForwardStep(TypedDict):
    train: WindowSpan
    test: WindowSpan
    chosen_point: int
    values: dict[str, Any]
    train_metric: float | None
    train_key: str
    test_metric: float | None
    test_total_return: float | None
    test_key: str | None
    multiple_testing: MultipleTesting


class WalkForwardSummary(TypedDict):
    steps: int
    mean_test_metric: float | None  # over the steps whose test window has the metric (test_metric_steps of them)
    test_metric_steps: NotRequired[int]  # absent in summaries written before it was added
    chained_test_return: float | None


class SweepCounts(TypedDict):
    points: int
    evaluations: int
    computed: int
    reused: int


class SweepSummary(TypedDict):
    sweep_id: str
    strategy: str
    metric: str
    higher_is_better: bool
    grid: dict[str, list[Any]]
    windows: list[str]
    ranking: list[RankedPoint]  # empty for walk-forward
    best: RankedPoint | None
    multiple_testing: MultipleTesting
    walk_forward: NotRequired[list[WalkForwardStep]]
    walk_forward_summary: NotRequired[WalkForwardSummary]
    counts: NotRequired[SweepCounts]  # added by run_sweep once the points are computed


# ---------------------------------------------------------------------------------------------- commands


class EventListing(TypedDict):
    count: int
    fill: str
    calendar_hash: str
    events: list[dict[str, Any]]  # event_to_dict rows + known_at (+ entry per symbol with --symbol)
    by_symbol: bool


class StrategyRow(TypedDict, total=False):
    name: Required[str | None]  # None for a user module that failed to import
    description: str
    params: dict[str, Any]
    file: str
    broken: str
    error: str


def is_synthetic(report: Report) -> bool:
    """Whether any data a report read is the synthetic sample."""
    data = report.get("data")
    return bool(data and data["synthetic"])
