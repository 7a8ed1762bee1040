"""The few exception types evbt raises; ``cli.py`` maps them to exit codes."""

from __future__ import annotations


class EvbtError(Exception):
    """Base class. ``exit_code`` is what the CLI returns for it."""

    exit_code = 1


class ConfigError(EvbtError):
    """Bad user input: arguments, config files, event files, CSV imports, grid specs (exit code 2)."""

    exit_code = 2


class MissingDataError(ConfigError):
    """Data the run needs is not in the cache and may not be fetched (offline); exit code 2."""


class DataError(EvbtError):
    """The data source failed or cached data is invalid (exit code 1)."""


class RunError(EvbtError):
    """A backtest could not be completed (exit code 1)."""


class EvbtWarning(UserWarning):
    """Something the user must see but that does not stop the command (e.g. stale cache served)."""
