"""What the command line calls: one function per user-facing action, plain data in and out.

``cli.py`` parses options into these calls and prints what they return; nothing here imports click or
prints. Settings that every command shares (cache folder, offline, sample) travel in ``Settings``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.errors import ConfigError, EvbtError


@dataclass(frozen=True)
class Settings:
    """Options shared by every command."""

    cache_dir: Path
    offline: bool
    sample: bool = False
    debug: bool = False
    strategy_dirs: tuple[Path, ...] = ()  # --strategies-dir (EVBT_STRATEGIES_PATH is read by the registry)

    def store(self, offline: bool | None = None) -> Any:
        from engine.prices.store import PriceStore

        return PriceStore(self.cache_dir, offline=self.offline if offline is None else offline)

    def as_sample(self) -> Settings:
        """The same settings pointed at the synthetic sample folder (offline)."""
        if self.sample:
            return self
        return replace(self, cache_dir=self.cache_dir / "sample", offline=True, sample=True)


def parse_day(value: str | None, flag: str) -> dt.date | None:
    """An optional YYYY-MM-DD option value; a bad one is a ConfigError naming the option."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"{flag}: bad date {value!r} (expected YYYY-MM-DD)") from None


def cached_subset(settings: Settings, symbols: Sequence[str]) -> tuple[str, ...]:
    """``symbols`` that the settings' cache holds, in order (the sample holds only part of a universe)."""
    cached = set(settings.store(offline=True).symbols())
    return tuple(s for s in symbols if s in cached)


# ---------------------------------------------------------------------------------------------- runs


def build_run_config(settings: Settings, strategy: str, params: Sequence[str], config_file: Path | None,
                     options: dict[str, Any]) -> Any:
    """The RunConfig of ``evbt run STRATEGY`` from -p pairs, a TOML file and command-line options."""
    from engine.plan.config import make_run_config
    from strategies.registry import get_strategy, resolve

    strategy = resolve(strategy, settings.strategy_dirs)  # a user strategy: the absolute path of its file
    cls = get_strategy(strategy)
    defaults = cls.default_symbols
    if settings.sample and options.get("symbols") is None:
        defaults = cached_subset(settings, defaults)
        if not defaults:
            raise ConfigError(f"the synthetic sample is not in {settings.cache_dir} (--sample uses the sample "
                              "folder of the cache dir, here from --cache-dir/EVBT_CACHE_DIR): run "
                              "`evbt --sample data sample` or `evbt demo` first")
    try:
        return make_run_config(strategy, tuple(params), options, config_file, defaults, cls.Params)
    except EvbtError as exc:  # name the config file as the place to look (values may also come from options)
        if config_file is None or str(config_file) in str(exc):
            raise
        raise type(exc)(f"{exc} (in {config_file} or the command-line options)") from None


def execute_run(settings: Settings, config: Any, save: bool = True,
                tags: Sequence[str] = ()) -> tuple[Any, Path | None]:
    """Run a backtest on the cache; save it (with the data versions it read) unless ``save`` is false."""
    from engine import backtest
    from engine.results.catalog import save_outcome

    store = settings.store()
    outcome = backtest.run(config, store)
    path = None
    if save:
        path = save_outcome(outcome, store, tags=tags, repo_dir=Path(__file__).resolve().parent.parent)
    return outcome, path


def _placebo_requested(n: int | None, seed: int | None) -> bool:
    """Whether ``--placebo N`` was given, with N in range (``--placebo-seed`` alone is an error)."""
    from engine.analysis.placebo import MAX_PLACEBO

    if n is None:
        if seed is not None:
            raise ConfigError("--placebo-seed needs --placebo N")
        return False
    if not 1 <= n <= MAX_PLACEBO:
        raise ConfigError(f"--placebo: expected 1..{MAX_PLACEBO} placebo sets, got {n}")
    return True


def check_placebo(config: Any, n: int | None, seed: int | None) -> None:
    """Refuse a placebo request the fast path cannot serve before the real run starts."""
    from engine.execution.fast_driver import unsupported_reason

    if not _placebo_requested(n, seed):
        return
    reason = unsupported_reason(config)
    if reason is not None:
        raise ConfigError(f"--placebo runs on the fast path, which does not cover {reason}")


def placebo_test(settings: Settings, config: Any, outcome: Any, n: int, seed: int | None,
                 workers: int | None = None) -> Any:
    """Rank the run among ``n`` sets of random event dates (engine.analysis.placebo); the bootstrap resamples
    the run's own closed trades."""
    import os

    from engine.analysis.placebo import run_placebo

    returns = [t.ret for t in outcome.result.trades if t.exit_reason != "open"]
    if workers is None:  # EVBT_PLACEBO_WORKERS (benchmarks) or the CPU count, like sweeps
        env = os.environ.get("EVBT_PLACEBO_WORKERS", "")
        workers = int(env) if env.isdigit() and int(env) > 0 else min(os.cpu_count() or 1, 8)
    return run_placebo(config, settings.store(), n, seed=seed or 0, trade_returns=returns, workers=workers)


MAX_SWEEP_PLACEBO_POINTS = 20


def check_sweep_placebo(n: int | None, seed: int | None, split: str | None, walk_forward: str | None) -> None:
    """``evbt sweep --placebo N``: refuse what it cannot rank before the sweep starts."""
    if not _placebo_requested(n, seed):
        return
    if split or walk_forward:
        raise ConfigError("--placebo ranks points over the whole period: not with --split or --walk-forward")


def sweep_placebo(settings: Settings, request: Any, summary: dict[str, Any], n: int, seed: int | None) -> list[Any]:
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


def prepare_demo(settings: Settings) -> tuple[Settings, bool]:
    """Settings for the demo (the sample folder) and whether the sample had to be written first."""
    from engine.prices.synthetic import SAMPLE_SYMBOLS, write_sample

    sample = settings.as_sample()
    store = sample.store(offline=True)
    missing = any(not store.has(s) for s in SAMPLE_SYMBOLS)
    if missing:
        write_sample(store)
    return sample, missing


def rerun(settings: Settings, run: str, current_data: bool = False) -> Any:
    """Run a saved result again on the data versions it read (or today's cache with ``current_data``); say
    whether the report is byte-identical, else which inputs and which trades changed."""
    from engine.results.rerun import rerun as rerun_target
    from engine.results.resolve import resolve

    return rerun_target(resolve(run), settings.store(), current_data=current_data,
                        repo_dir=Path(__file__).resolve().parent.parent)


def load_any_report(reference: str) -> dict[str, Any]:
    """The report a reference names: run id or prefix, run folder, report file, SWEEP_ID, SWEEP_ID:RANK."""
    from engine.results.resolve import resolve

    return resolve(reference).report


def compare(references: Sequence[str]) -> dict[str, Any]:
    from engine.analysis.compare import compare_reports

    if len(references) < 2:
        raise ConfigError("compare needs at least two runs")
    return compare_reports([load_any_report(r) for r in references])


def strategy_table(settings: Settings | None = None) -> list[dict[str, Any]]:
    """Every strategy (built-ins and the user folders') with its description, parameter defaults (JSON-ready
    values), its file for a user strategy, and the user modules that failed to import (``broken`` rows)."""
    import dataclasses

    from strategies.registry import discover

    found = discover(settings.strategy_dirs if settings is not None else ())
    rows: list[dict[str, Any]] = []
    for name, cls in found.classes.items():
        params = {f.name: list(f.default) if isinstance(f.default, tuple) else f.default
                  for f in dataclasses.fields(cls.Params)}
        row = {"name": name, "description": cls.description, "params": params}
        if name in found.files:
            row["file"] = found.files[name]
        rows.append(row)
    rows.extend({"name": None, "broken": where, "error": error} for where, error in found.broken.items())
    return rows


# ---------------------------------------------------------------------------------------------- events


def list_events(files: Sequence[Path], replace_calendar: bool, types: Sequence[str], symbols: Sequence[str],
                start: str | None, end: str | None, fill: str) -> dict[str, Any]:
    """The merged calendar filtered, with each event's known-at instant and, per symbol, its entry session."""
    from engine.events.catalog import calendar_hash, event_to_dict, filter_events, load_calendar, symbols_for
    from engine.events.timing import entry_session, known_at
    from engine.market.symbols import parse_symbol_list

    syms = parse_symbol_list(list(symbols))
    events = filter_events(load_calendar(list(files), replace=replace_calendar), types=types, symbols=syms,
                           start=parse_day(start, "--from"), end=parse_day(end, "--to"))
    rows = []
    for ev in events:
        row = event_to_dict(ev)
        row["known_at"] = known_at(ev).isoformat()
        if syms:
            row["entry"] = {s: entry_session(ev, s, fill).date().isoformat() for s in symbols_for(ev, syms)}
        rows.append(row)
    return {"count": len(rows), "fill": fill, "calendar_hash": calendar_hash(events), "events": rows,
            "by_symbol": bool(syms)}


def check_event_types(types: Sequence[str]) -> None:
    from engine.events.catalog import EVENT_TYPES

    bad = sorted(set(types) - set(EVENT_TYPES))
    if bad:
        raise ConfigError(f"unknown event type(s) {', '.join(bad)} (expected: {', '.join(EVENT_TYPES)})")


# ---------------------------------------------------------------------------------------------- study


def study_universe(settings: Settings, symbols: Sequence[str]) -> list[str]:
    from engine.market.symbols import parse_symbol_list
    from strategies.base import CHINA_INTERNET

    if symbols:
        return parse_symbol_list(list(symbols))
    if settings.sample:
        return list(cached_subset(settings, CHINA_INTERNET))
    return list(CHINA_INTERNET)


def study(settings: Settings, types: Sequence[str], symbols: Sequence[str], start: str | None, end: str | None,
          window: str, estimation: str, model: str | None, benchmark: str | None, fill: str, files: Sequence[Path],
          replace_calendar: bool, sector_benchmark: str | None = None, pool: bool = False) -> Any:
    """Run an event study on the cache; raises ConfigError when no event matches."""
    from engine.analysis.event_study import StudyConfig, parse_window, run_study
    from engine.events.catalog import load_calendar
    from engine.market.symbols import normalize_symbol

    check_event_types(types)
    universe = study_universe(settings, symbols)
    config = StudyConfig(
        types=tuple(types), symbols=tuple(universe) if symbols else (),
        start=parse_day(start, "--from"), end=parse_day(end, "--to"),
        window=parse_window(window, "--window"), estimation=parse_window(estimation, "--estimation"),
        model=model, benchmark=normalize_symbol(benchmark) if benchmark else None,
        sector_benchmark=normalize_symbol(sector_benchmark) if sector_benchmark else None, fill=fill, pool=pool,
    )
    events = load_calendar(list(files), replace=replace_calendar)
    result = run_study(config, settings.store(), events, universe)
    if not result.events and not result.skipped:
        raise ConfigError("no event matches the filters for the chosen symbols")
    return result


# ---------------------------------------------------------------------------------------------- visuals

Wrote = Callable[[Path, int], None]


def _run_calendar(report: dict[str, Any], warn: Callable[[str], None]) -> list[Any]:
    """The run's calendar (for event dates and descriptions on charts); empty if it cannot be loaded."""
    from engine.events.catalog import load_calendar

    config = report.get("config") or {}
    try:
        return load_calendar([Path(p) for p in config.get("events_files") or []],
                             replace=bool(config.get("replace_events")))
    except EvbtError as exc:
        warn(f"event calendar unavailable for the charts: {exc}")
        return []


def write_run_visuals(settings: Settings, report: dict[str, Any], equity: Any, html_path: Path | None,
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


def write_compare_visuals(references: Sequence[str], comparison: dict[str, Any], html_path: Path | None,
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


def write_study_visuals(result: Any, html_path: Path | None, plot_path: Path | None, wrote: Wrote) -> None:
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
