"""What every command shares: the cache folder, offline, sample, the user's strategy folders, and the exchange
calendars (schedules built once per process, kept on disk in ``<cache>/.calendars``)."""

from __future__ import annotations

import datetime as dt
import functools
import gc
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from engine.errors import ConfigError

if TYPE_CHECKING:  # engine.market.calendars loads pandas: not at `evbt --help` time
    from engine.market.calendars import Calendars


@functools.cache
def process_calendars() -> Calendars:
    """The process default: every command's Settings shares the schedules built in this process (they do not
    depend on the cache folder); each keeps them on disk in its own cache folder."""
    from engine.market.calendars import Calendars

    return Calendars()


# A command builds tens of thousands of long-lived objects (events, planned actions, records) and frees few:
# with the default first threshold (700) the collector runs every few hundred of them and its older
# generations rescan the growing heap. Cyclic garbage is rare here, so collect less often. 500-symbol
# 1-point sweep, 6 interleaved rounds each: 3.82 -> 3.50 s wall median (benchmarks/scale_bench.py universe).
COLLECTOR_THRESHOLDS = (100_000, 10, 10)


def tune_process() -> None:
    """Process-wide settings of a command-line process (cli.main; not a library caller's process)."""
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


@contextmanager
def long_lived() -> Iterator[None]:
    """Around a command's heavy imports (pandas and the engine's modules: some 100,000 objects that live for the
    process): no collection runs meanwhile, and none walks them after (``engine.collector``). Measured: a 65 ms
    young collection inside the imports of a sweep."""
    from engine.collector import collector_paused

    with collector_paused():
        yield


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    """Options shared by every command."""

    cache_dir: Path
    offline: bool
    sample: bool = False
    debug: bool = False
    strategy_dirs: tuple[Path, ...] = ()  # --strategies-dir (EVBT_STRATEGIES_PATH is read by the registry)

    @cached_property
    def calendars(self) -> Calendars:
        """Exchange schedules of this cache: the process's built schedules, kept in ``<cache>/.calendars``."""
        return process_calendars().at(self.cache_dir / ".calendars")

    def store(self, offline: bool | None = None) -> Any:
        from engine.prices.store import PriceStore

        return PriceStore(self.cache_dir, offline=self.offline if offline is None else offline)

    def as_sample(self) -> Settings:
        """The same settings pointed at the synthetic sample folder (offline)."""
        if self.sample:
            return self
        return replace(self, cache_dir=self.cache_dir / "sample", offline=True, sample=True)

    @contextmanager
    def session(self) -> Iterator[Settings]:
        """Make these settings' calendars the current ones (engine.market.calendars) while a command runs."""
        with self.calendars.activate():
            yield self


P = ParamSpec("P")
R = TypeVar("R")


def in_session(func: Callable[Concatenate[Settings, P], R]) -> Callable[Concatenate[Settings, P], R]:
    """An API call taking Settings first runs with those settings' calendars current (``Settings.session``)."""

    @functools.wraps(func)
    def call(settings: Settings, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with settings.session():
            return func(settings, *args, **kwargs)

    return call


def make_settings(cache_dir: Path | None, offline: bool, sample: bool, debug: bool, venues_file: Path | None,
                  strategy_dirs: Sequence[Path]) -> Settings:
    """The settings of the global options; a bad --venues file is an input error before any command runs."""
    from engine.market.venues import use_venues_file
    from engine.paths import default_cache_dir

    use_venues_file(venues_file)
    root = cache_dir if cache_dir is not None else default_cache_dir()
    if sample:
        root = root / "sample"
    return Settings(cache_dir=root, offline=offline or sample or env_flag("EVBT_OFFLINE"), sample=sample,
                    debug=debug, strategy_dirs=tuple(strategy_dirs))


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


REPO_DIR = Path(__file__).resolve().parents[2]  # the evbt checkout (git revision of a run's manifest)
