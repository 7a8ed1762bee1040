"""``evbt study`` as the command line asks for it: the universe (the sample's part of it with --sample), the
study configuration from the options, and the run on the cache."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from engine.api.events import check_event_types
from engine.api.settings import Settings, cached_subset, in_session, parse_day
from engine.errors import ConfigError

if TYPE_CHECKING:
    from engine.analysis.study_results import StudyResult


def study_universe(settings: Settings, symbols: Sequence[str]) -> list[str]:
    from engine.market.symbols import parse_symbol_list
    from strategies.base import CHINA_INTERNET

    if symbols:
        return parse_symbol_list(list(symbols))
    if settings.sample:
        return list(cached_subset(settings, CHINA_INTERNET))
    return list(CHINA_INTERNET)


@in_session
def study(settings: Settings, types: Sequence[str], symbols: Sequence[str], start: str | None, end: str | None,
          window: str, estimation: str, model: str | None, benchmark: str | None, fill: str, files: Sequence[Path],
          replace_calendar: bool, sector_benchmark: str | None = None, pool: bool = False) -> StudyResult:
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
