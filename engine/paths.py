"""Where evbt's files are: the one rule for default folders, and the packaged event calendar.

Default folders (documented in README.md, "Where files live"):

- price cache: ``--cache-dir`` if given, else ``$EVBT_CACHE_DIR``, else ``./data_cache`` in the current directory;
- saved runs and sweeps: ``$EVBT_RUNS_DIR``, else ``./runs`` in the current directory.

Both are relative to the folder evbt is started from (like git's work tree or a Makefile), never to where the
code is installed: an installed wheel never writes inside ``site-packages``. In a clone, running from its root
keeps everything in the clone (``data_cache/`` and ``runs/`` are git-ignored).

The curated calendar (``event_calendar/events.csv`` and ``closures.csv``) is a package of data files shipped
in the wheel and located with ``importlib.resources``; it is read-only.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from engine.errors import RunError

CACHE_ENV = "EVBT_CACHE_DIR"
RUNS_ENV = "EVBT_RUNS_DIR"
CACHE_FOLDER = "data_cache"
RUNS_FOLDER = "runs"
CALENDAR_PACKAGE = "event_calendar"


def _from_env(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def default_cache_dir() -> Path:
    """``$EVBT_CACHE_DIR`` if set, else ``data_cache/`` under the current directory."""
    return _from_env(CACHE_ENV) or Path.cwd() / CACHE_FOLDER


def default_runs_dir() -> Path:
    """``$EVBT_RUNS_DIR`` if set, else ``runs/`` under the current directory."""
    return _from_env(RUNS_ENV) or Path.cwd() / RUNS_FOLDER


def calendar_dir() -> Path:
    """Folder of the packaged curated calendar (``events.csv``, ``closures.csv``, ``README.md``)."""
    root = resources.files(CALENDAR_PACKAGE)
    if not isinstance(root, Path):  # e.g. imported from a zip: the files are read and hashed by path
        raise RunError(f"the {CALENDAR_PACKAGE} package is not on the file system ({root}); reinstall evbt")
    return root
