"""evbt command line: parses options, calls the engine, prints results.

All logic lives in ``engine/`` and ``strategies/``. This module is the one place where domain errors
become exit codes: 0 ok, 1 run failed (DataError/RunError), 2 usage or input error (ConfigError).
``--debug`` re-raises so the traceback is shown.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import click

from engine.errors import EvbtError, EvbtWarning

try:
    __version__ = version("evbt")
except PackageNotFoundError:  # running from a checkout without install
    __version__ = "0.0.0+checkout"

DEFAULT_CACHE_DIR = Path(__file__).resolve().parent / "data_cache"


@dataclass
class AppContext:
    """Options shared by every command (set on the group)."""

    cache_dir: Path
    offline: bool
    debug: bool
    sample: bool


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="evbt")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="EVBT_CACHE_DIR",
    default=None,
    help="Parquet price cache folder (default: data_cache/ in the checkout; env EVBT_CACHE_DIR).",
)
@click.option("--offline", is_flag=True, default=False, help="Never touch the network (env EVBT_OFFLINE=1).")
@click.option(
    "--sample",
    is_flag=True,
    default=False,
    help="Use the bundled SYNTHETIC sample cache (data_cache/sample) instead of real data; implies --offline.",
)
@click.option("--debug", is_flag=True, default=False, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, cache_dir: Path | None, offline: bool, sample: bool, debug: bool) -> None:
    """evbt: event-driven backtests of dated news on cached daily prices.

    \b
    Example:
      evbt demo                          # synthetic offline sample, seed scenario
      evbt data import prices/BABA.csv   # real data from a Yahoo CSV
      evbt run reassurance -p hold=10    # backtest on the cache
    """
    root = cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR
    if sample:
        root = root / "sample"
    ctx.obj = AppContext(
        cache_dir=root,
        offline=offline or sample or _env_flag("EVBT_OFFLINE"),
        debug=debug,
        sample=sample,
    )


# ---------------------------------------------------------------- data commands (issue 2)

# ---------------------------------------------------------------- events commands (issue 3)

# ---------------------------------------------------------------- run / runs / compare (issue 4)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    if issubclass(category, EvbtWarning):
        click.echo(f"warning: {message}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: the single error boundary."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    warnings.showwarning = _show_warning
    warnings.simplefilter("always", EvbtWarning)
    try:
        rv = cli.main(args=argv, prog_name="evbt", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:  # usage errors: bad option, missing argument
        exc.show()
        return 2
    except EvbtError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except Exception as exc:  # a bug: still no traceback unless --debug
        if debug:
            raise
        click.echo(f"error: internal error: {type(exc).__name__}: {exc} (rerun with --debug)", err=True)
        return 1
    # standalone_mode=False returns ctx.exit(code) codes as the result (e.g. `data verify` finding damage)
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
