"""Result models of the event study (what ``evbt study`` prints, as plain frozen dataclasses)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.analysis.abnormal_returns import Decomposition
from engine.analysis.distributions import CONFIDENCE
from engine.analysis.event_tests import Clustering, DayStat

SKIP_KINDS = {  # one line per kind in the report when the reasons differ only in their dates and counts
    "history": "not enough history before day 0 for the estimation window",
    "data_end": "the price data ends inside the event window",
    "fill_bar": "no fill bar for the entry session (the backtest's placement rule)",
    "benchmark": "a benchmark is not in the price cache",
    "benchmark_gap": "a benchmark has no prices for part of a window",
    "no_data": "no price data for the symbol",
    "entry": "no entry session in the exchange calendar",
    "prices": "missing or invalid prices in a window",
    "collinear": "the model cannot be estimated (collinear regressors or zero residual variance)",
    "own_benchmark": "the symbol is its own benchmark",
}

@dataclass(frozen=True)
class EventResult:
    """One (event, symbol) sample."""

    event_id: str
    symbol: str
    event_type: str
    event_date: str
    description: str
    entry_session: str
    day0: str
    day0_gap_days: int  # calendar days from the entry session to day 0 (0 when a bar is on it)
    window_start: str
    window_end: str
    benchmark: str | None
    sector_benchmark: str | None
    params: tuple[float, ...]  # (a, b) | (a, b, c) | (mean,) | ()
    sigma: float
    dof: int
    ar: tuple[float, ...]
    car: float
    car_se: float
    car_t: float | None
    car_p: float | None
    decomposition: Decomposition | None = None


@dataclass(frozen=True)
class SkippedEvent:
    """An (event, symbol) pair that could not be studied, and why (``kind`` groups the reasons)."""

    event_id: str
    symbol: str
    reason: str
    kind: str = "other"


@dataclass(frozen=True)
class SkipGroup:
    """Skipped samples sharing a reason: one line of the report."""

    kind: str
    reason: str  # the common reason, or the first one when the details differ
    count: int
    examples: tuple[str, ...]  # "event_id symbol" of the first few


@dataclass(frozen=True)
class GroupResult:
    """The study of one event type (or of the pooled types)."""

    types: tuple[str, ...]
    expected_sign: int  # +1 bullish, -1 bearish, 0 none or mixed
    events: tuple[EventResult, ...]
    days: tuple[DayStat, ...]
    clustering: Clustering
    mean_decomposition: Decomposition | None

    @property
    def summary(self) -> DayStat | None:
        """Statistics over the whole event window (the last day's cumulative values)."""
        return self.days[-1] if self.days else None


@dataclass(frozen=True)
class StudyResult:
    """Everything ``evbt study`` prints (``to_dict`` gives the JSON document)."""

    config: Any  # engine.analysis.event_study.StudyConfig
    model: str
    groups: tuple[GroupResult, ...]
    skipped: tuple[SkippedEvent, ...]
    choices: tuple[str, ...]  # every methodological choice, one sentence each
    warnings: tuple[str, ...] = ()
    confidence: float = CONFIDENCE
    synthetic: bool = False
    benchmarks: tuple[str, ...] = field(default_factory=tuple)

    @property
    def events(self) -> tuple[EventResult, ...]:
        return tuple(e for g in self.groups for e in g.events)

    @property
    def skip_groups(self) -> tuple[SkipGroup, ...]:
        return group_skips(self.skipped)

    def to_dict(self) -> dict[str, Any]:
        from engine.reporting.report import to_jsonable

        doc = to_jsonable(self)
        for g_doc, group in zip(doc["groups"], self.groups, strict=True):
            g_doc["summary"] = to_jsonable(group.summary)
        doc["skip_summary"] = to_jsonable(self.skip_groups)
        return doc


def group_skips(skipped: Sequence[SkippedEvent], examples: int = 3) -> tuple[SkipGroup, ...]:
    """One entry per (kind, reason); reasons of one kind that differ only in details share one entry."""
    by_kind: dict[str, list[SkippedEvent]] = {}
    for s in skipped:
        by_kind.setdefault(s.kind, []).append(s)
    out = []
    for kind, items in by_kind.items():
        reasons = {s.reason for s in items}
        reason = items[0].reason if len(reasons) == 1 else SKIP_KINDS.get(kind, items[0].reason)
        out.append(SkipGroup(kind, reason, len(items), tuple(f"{s.event_id} {s.symbol}" for s in items[:examples])))
    return tuple(sorted(out, key=lambda g: (-g.count, g.kind)))
