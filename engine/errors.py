"""The few exception types evbt raises and the exit statuses ``cli.py`` maps them to."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Process exit statuses of the ``evbt`` command."""

    OK = 0
    RUN_FAILED = 1  # data source, corrupt cache, a run that could not complete, an internal error
    USAGE = 2  # bad option, unknown strategy or parameter, bad date or file, data missing offline
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)


class EvbtError(Exception):
    """Base class. ``exit_code`` is what the CLI returns for it."""

    exit_code = ExitStatus.RUN_FAILED


class ConfigError(EvbtError):
    """Bad user input: arguments, config files, event files, CSV imports, grid specs (exit code 2)."""

    exit_code = ExitStatus.USAGE


class MissingDataError(ConfigError):
    """Data the run needs is not in the cache and may not be fetched (offline); exit code 2."""


class NoBarsInRange(MissingDataError):
    """The cache holds the symbol and covers the asked dates, but it has no bar in them (not listed yet, or its
    data ends before): a run leaves such a symbol out with a warning, as a sweep does."""


class DataError(EvbtError):
    """The data source failed or cached data is invalid (exit code 1)."""


class RunError(EvbtError):
    """A backtest could not be completed (exit code 1)."""


class EvbtWarning(UserWarning):
    """Something the user must see but that does not stop the command (e.g. stale cache served)."""
