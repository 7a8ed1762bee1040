"""Runs as the command line asks for them: configure, run and save, placebo tests, demo, rerun, saved-run
references, compare, the strategy table and the saved-runs catalogue."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.api.settings import REPO_DIR, Settings, cached_subset, in_session, parse_day
from engine.errors import ConfigError, EvbtError
from engine.reporting.models import Comparison, Report, StrategyRow

if TYPE_CHECKING:  # the engine modules load pandas: imported where they are called
    from engine.analysis.placebo import PlaceboResult
    from engine.backtest import Outcome
    from engine.prices.snapshots import GcResult
    from engine.results.rerun import RerunOutcome
    from engine.saved_runs import RunSummary


def build_run_config(settings: Settings, strategy: str, params: Sequence[str], config_file: Path | None,
                     options: dict[str, Any], swept: tuple[str, ...] = ()) -> Any:
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
        return make_run_config(strategy, tuple(params), options, config_file, defaults, cls.Params, swept=swept)
    except EvbtError as exc:  # name the config file as the place to look (values may also come from options)
        if config_file is None or str(config_file) in str(exc):
            raise
        raise type(exc)(f"{exc} (in {config_file} or the command-line options)") from None


def config_from_options(settings: Settings, strategy: str, options: dict[str, Any],
                        swept: tuple[str, ...] = ()) -> Any:
    """``build_run_config`` of the run options as the CLI collects them (``params`` and ``config_file`` among
    the option values)."""
    options = dict(options)
    params, config_file = options.pop("params", ()), options.pop("config_file", None)
    return build_run_config(settings, strategy, params, config_file, options, swept)


@in_session
def execute_run(settings: Settings, config: Any, save: bool = True,
                tags: Sequence[str] = ()) -> tuple[Outcome, Path | None]:
    """Run a backtest on the cache; save it (with the data versions it read) unless ``save`` is false."""
    from engine import backtest
    from engine.results.catalog import save_outcome

    store = settings.store()
    outcome = backtest.run(config, store)
    path = None
    if save:
        path = save_outcome(outcome, store, tags=tags, repo_dir=REPO_DIR)
    return outcome, path


def check_tags(tags: Sequence[str]) -> None:
    """``--tag`` labels, checked before the run: an empty one, or one with a comma, a line break or another
    control character, was saved as given and broke the `runs ls` table (tags are listed joined by commas)."""
    for tag in tags:
        if not tag.strip() or "," in tag or any(ord(c) < 32 or ord(c) == 127 for c in tag):
            raise ConfigError(f"--tag {tag!r}: a label must be non-empty text on one line without commas "
                              f"(e.g. --tag baseline); give several with several --tag options")


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


@in_session
def placebo_test(settings: Settings, config: Any, outcome: Outcome, n: int, seed: int | None,
                 workers: int | None = None) -> PlaceboResult:
    """Rank the run among ``n`` sets of random event dates (engine.analysis.placebo); the bootstrap resamples
    the run's own closed trades."""
    from engine.analysis.placebo import run_placebo

    returns = [t.ret for t in outcome.result.trades if t.exit_reason != "open"]
    if workers is None:  # EVBT_PLACEBO_WORKERS (benchmarks) or the CPU count, like sweeps
        env = os.environ.get("EVBT_PLACEBO_WORKERS", "")
        workers = int(env) if env.isdigit() and int(env) > 0 else min(os.cpu_count() or 1, 8)
    return run_placebo(config, settings.store(), n, seed=seed or 0, trade_returns=returns, workers=workers)


def prepare_demo(settings: Settings) -> tuple[Settings, bool]:
    """Settings for the demo (the sample folder) and whether the sample had to be written first."""
    from engine.prices.synthetic import SAMPLE_SYMBOLS, write_sample

    sample = settings.as_sample()
    store = sample.store(offline=True)
    missing = any(not store.has(s) for s in SAMPLE_SYMBOLS)
    if missing:
        write_sample(store)
    return sample, missing


def rerun(settings: Settings, run: str, current_data: bool = False) -> RerunOutcome:
    """Run a saved result again on the data versions it read (or today's cache with ``current_data``); say
    whether the report is byte-identical, else which inputs and which trades changed.

    A run on the SYNTHETIC sample (``evbt demo``, ``--sample``) is rerun on the sample folder when its data
    versions are kept there (more of them than in the cache itself): without ``--sample`` it ran on the real
    cache and was "not reproduced"."""
    from engine.reporting.models import is_synthetic
    from engine.results.resolve import resolve

    target = resolve(run)
    report = target.plain_report()
    if not settings.sample and is_synthetic(report):
        sample = settings.as_sample()
        if _kept_count(sample, report) > _kept_count(settings, report):  # its versions are in the sample folder
            settings = sample
    return _rerun(settings, target, current_data)


def _kept_count(settings: Settings, report: Any) -> int:
    """How many of the data versions a report read the settings' cache keeps (as snapshots)."""
    from engine.prices.snapshots import SnapshotStore
    from engine.results.rerun import fingerprints_of

    snapshots = SnapshotStore.for_store(settings.store(offline=True))
    return sum(1 for digest in fingerprints_of(report).values() if snapshots.has(digest))


@in_session
def _rerun(settings: Settings, target: Any, current_data: bool) -> RerunOutcome:
    from engine.results.rerun import rerun as rerun_target

    return rerun_target(target, settings.store(), current_data=current_data, repo_dir=REPO_DIR)


def load_any_report(reference: str) -> Report:
    """The report a reference names: run id or prefix, run folder, report file, SWEEP_ID, SWEEP_ID:RANK."""
    from engine.results.resolve import resolve

    return resolve(reference).report


def compare(references: Sequence[str]) -> Comparison:
    from engine.analysis.compare import compare_reports

    if len(references) < 2:
        raise ConfigError("compare needs at least two runs")
    return compare_reports([load_any_report(r) for r in references])


def strategy_table(settings: Settings | None = None) -> list[StrategyRow]:
    """Every strategy (built-ins and the user folders') with its description, parameter defaults (JSON-ready
    values), its file for a user strategy, and the user modules that failed to import (``broken`` rows)."""
    from strategies.registry import discover

    found = discover(settings.strategy_dirs if settings is not None else ())
    rows: list[StrategyRow] = []
    for name, cls in found.classes.items():
        params = {f.name: list(f.default) if isinstance(f.default, tuple) else f.default
                  for f in dataclasses.fields(cls.Params)}
        row: StrategyRow = {"name": name, "description": cls.description, "params": params}
        if name in found.files:
            row["file"] = found.files[name]
        rows.append(row)
    rows.extend({"name": None, "broken": where, "error": error} for where, error in found.broken.items())
    return rows


# ---------------------------------------------------------------------------------------------- saved runs


def find_saved_runs(strategy: str | None, since: str | None, until: str | None,
                    tag: str | None) -> tuple[list[RunSummary], bool]:
    """Saved runs matching the filters, newest first, and whether any filter was given."""
    from engine.results.catalog import RunFilter, find_runs

    filters = RunFilter(strategy, parse_day(since, "--since"), parse_day(until, "--until"), tag)
    return find_runs(filters), filters != RunFilter()


def remove_saved_runs(references: Sequence[str]) -> list[str]:
    from engine.results.catalog import remove_runs

    return remove_runs(references)


def free_snapshots(settings: Settings) -> GcResult:
    """``evbt runs gc``: drop the data snapshots no saved run or sweep refers to."""
    from engine.results.catalog import gc

    return gc(settings.store(offline=True))
