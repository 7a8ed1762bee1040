"""HTML and PNG reports of a run, a saved run, a comparison and a study (engine.reporting.html_report and
charts); prices for the charts come from the cache only, never the network."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.api.settings import Settings, in_session
from engine.errors import ConfigError, EvbtError
from engine.reporting.models import Comparison, Report

if TYPE_CHECKING:
    from engine.analysis.study_results import StudyResult

Wrote = Callable[[Path, int], None]


def check_visual_paths(html_path: Path | None, plot_path: Path | None) -> None:
    """``--html`` and ``--plot`` naming one file: the PNG overwrote the HTML report, silently (checked before any
    work is done)."""
    if html_path is not None and plot_path is not None and html_path.resolve() == plot_path.resolve():
        raise ConfigError(f"--html and --plot name the same file {html_path}: the PNG would overwrite the HTML "
                          f"report; give two different files")


def _run_calendar(report: Report, warn: Callable[[str], None]) -> list[Any]:
    """The run's calendar (for event dates and descriptions on charts); empty if it cannot be loaded."""
    from engine.events.catalog import load_calendar

    config = report.get("config") or {}
    try:
        return load_calendar([Path(p) for p in config.get("events_files") or []],
                             replace=bool(config.get("replace_events")))
    except EvbtError as exc:
        warn(f"event calendar unavailable for the charts: {exc}")
        return []


@in_session
def write_run_visuals(settings: Settings, report: Report, equity: Any, html_path: Path | None,
                      plot_path: Path | None, wrote: Wrote, warn: Callable[[str], None], placebo: Any = None) -> None:
    """HTML and/or PNG of one run; prices for the charts come from the cache only (never the network)."""
    if html_path is None and plot_path is None:
        return
    from engine.reporting import html_report as html

    events = _run_calendar(report, warn)
    panels, notes = html.price_panels(report, settings.store(offline=True), events)
    if html_path is not None:
        wrote(html_path, html.write_html(html_path, html.run_document(report, equity, panels, events, notes,
                                                                        placebo=placebo)))
    if plot_path is not None:
        from engine.reporting.charts import write_png

        wrote(plot_path, write_png(plot_path, html.run_charts(report, equity, panels, placebo=placebo)))


def write_outcome_visuals(settings: Settings, outcome: Any, html_path: Path | None, plot_path: Path | None,
                          wrote: Wrote, warn: Callable[[str], None], placebo: Any = None) -> None:
    if html_path is None and plot_path is None:
        return
    from engine.reporting.html_report import equity_frame

    write_run_visuals(settings, outcome.report, equity_frame(outcome.result), html_path, plot_path, wrote, warn,
                      placebo=placebo)


def write_saved_run_visuals(settings: Settings, run: str, html_path: Path | None, plot_path: Path | None,
                            wrote: Wrote, warn: Callable[[str], None]) -> None:
    from engine.results.resolve import resolve

    target = resolve(run)
    equity = target.equity()
    if equity is None:
        raise ConfigError(f"{run}: a sweep point or report file has no saved equity curve to chart "
                          "(run it with `evbt run` to get one)")
    write_run_visuals(settings, target.report, equity, html_path, plot_path, wrote, warn)


def write_compare_visuals(references: Sequence[str], comparison: Comparison, html_path: Path | None,
                          plot_path: Path | None, wrote: Wrote, warn: Callable[[str], None]) -> None:
    if html_path is None and plot_path is None:
        return
    from engine.reporting import html_report as html
    from engine.results.resolve import resolve

    curves = {}
    for reference, info in zip(references, comparison["runs"], strict=True):
        equity = resolve(reference).equity()
        if equity is None:  # sweep points keep metrics and trades, not equity curves
            warn(f"{reference}: a sweep point has no saved equity curve; left out of the charts")
            continue
        curves[str(info["run_id"])] = equity["equity"]
    if html_path is not None:
        wrote(html_path, html.write_html(html_path, html.compare_document(comparison, curves)))
    if plot_path is not None:
        from engine.reporting.charts import write_png

        wrote(plot_path, write_png(plot_path, html.compare_charts(curves), height=3.2))


def write_study_visuals(result: StudyResult, html_path: Path | None, plot_path: Path | None, wrote: Wrote) -> None:
    if html_path is None and plot_path is None:
        return
    if not result.events:
        raise ConfigError("nothing to chart: every event was skipped")
    from engine.reporting import html_report as html

    if html_path is not None:
        wrote(html_path, html.write_html(html_path, html.study_document(result)))
    if plot_path is not None:
        from engine.reporting.charts import write_png

        wrote(plot_path, write_png(plot_path, html.study_charts(result), height=3.2))
