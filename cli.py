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
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import click

from engine.api import Settings
from engine.errors import EvbtError, EvbtWarning, ExitStatus

try:
    __version__ = version("evbt")
except PackageNotFoundError:  # running from a checkout without install
    __version__ = "0.0.0+checkout"

AppContext = Settings  # what every command receives as ``ctx.obj``


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
    help="Parquet price cache folder (default: ./data_cache in the current folder; env EVBT_CACHE_DIR).",
)
@click.option("--offline", is_flag=True, default=False, help="Never touch the network (env EVBT_OFFLINE=1).")
@click.option(
    "--sample",
    is_flag=True,
    default=False,
    help="Use the bundled SYNTHETIC sample cache (data_cache/sample) instead of real data; implies --offline.",
)
@click.option("--debug", is_flag=True, default=False, help="Show full tracebacks on errors.")
@click.option("--venues", "venues_file", type=click.Path(dir_okay=False, path_type=Path), envvar="EVBT_VENUES",
              default=None, help="CSV of venue rows added to / overriding the built-in table (env EVBT_VENUES).")
@click.option("--strategies-dir", "strategy_dirs", multiple=True, type=click.Path(path_type=Path),
              help="Folder of your own strategy modules (repeatable; also env EVBT_STRATEGIES_PATH).")
@click.pass_context
def cli(ctx: click.Context, cache_dir: Path | None, offline: bool, sample: bool, debug: bool,
        venues_file: Path | None = None, strategy_dirs: tuple[Path, ...] = ()) -> None:
    """evbt: event-driven backtests of dated news on cached daily prices.

    \b
    Example:
      evbt demo                          # synthetic offline sample, seed scenario
      evbt data import prices/BABA.csv   # real data from a Yahoo CSV
      evbt run reassurance -p hold=10    # backtest on the cache
    """
    from engine.market.venues import use_venues_file
    from engine.paths import default_cache_dir

    use_venues_file(venues_file)  # a bad file is an input error before any command runs
    root = cache_dir if cache_dir is not None else default_cache_dir()
    if sample:
        root = root / "sample"
    ctx.obj = Settings(cache_dir=root, offline=offline or sample or _env_flag("EVBT_OFFLINE"), sample=sample,
                       debug=debug, strategy_dirs=tuple(strategy_dirs))


# ---------------------------------------------------------------- data commands (issue 2)

_DATE = click.DateTime(formats=["%Y-%m-%d"])


def _data_store(ctx: click.Context) -> Any:
    return ctx.obj.store()


def _data_day(value: Any) -> Any:
    return value.date() if value is not None else None


@cli.group("data")
def data_group() -> None:
    """Manage the parquet price cache.

    \b
    Example:
      evbt data import prices/BABA.csv prices/HSI.csv
      evbt data ls
    """


@data_group.command("fetch")
@click.argument("symbols", nargs=-1, required=True)
@click.option("--start", type=_DATE, default=None, help="First date (YYYY-MM-DD); default: full history.")
@click.option("--end", type=_DATE, default=None, help="Last date, inclusive (YYYY-MM-DD); default: today.")
@click.pass_context
def data_fetch(ctx: click.Context, symbols: tuple[str, ...], start: Any, end: Any) -> None:
    """Download daily prices from Yahoo Finance into the cache (only the missing part).

    \b
    Example:
      evbt data fetch BABA 700 ^HSI --start 2021-01-01 --end 2022-12-31
    """
    from engine.errors import MissingDataError
    from engine.market.symbols import parse_symbol_list

    syms = parse_symbol_list(list(symbols))
    if ctx.obj.offline:
        raise MissingDataError(
            "data fetch needs the network but evbt is offline (--offline/--sample/EVBT_OFFLINE)"
        )
    store = _data_store(ctx)
    for sym in syms:
        store.update(sym, _data_day(start), _data_day(end), refresh=True)
        meta = store.read_meta(sym)
        span = f"{meta['first_date']} .. {meta['last_date']}"
        click.echo(f"{sym}: {meta['rows']} bars {span} ({meta['source']})")


@data_group.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--symbol", default=None, help="Symbol for a single file (default: from the file name).")
@click.pass_context
def data_import(ctx: click.Context, files: tuple[Path, ...], symbol: str | None) -> None:
    """Import Yahoo Finance CSV files (Date,Open,High,Low,Close,Adj Close,Volume).

    Every file is checked before anything is written. HSI.csv is stored as ^HSI.

    \b
    Example:
      evbt data import prices/BABA.csv prices/0700.HK.csv
      evbt data import tencent.csv --symbol 700
    """
    from engine.errors import ConfigError
    from engine.prices.csv_import import read_yahoo_csvs

    if symbol and len(files) > 1:
        raise ConfigError("--symbol works with one FILE only")
    parsed = read_yahoo_csvs(files, symbol)
    store = _data_store(ctx)
    written = store.write_many([(item.symbol, item.frame, "csv", item.adjustment) for item in parsed])
    for item, meta in zip(parsed, written, strict=True):
        click.echo(f"{item.symbol}: {meta['rows']} bars {meta['first_date']} .. {meta['last_date']} "
                   f"from {item.path.name}")


@data_group.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def data_ls(ctx: click.Context, as_json: bool) -> None:
    """List cached symbols with range, rows, source, fetch time and file size.

    \b
    Example:
      evbt data ls --json
    """
    entries = _data_store(ctx).entries()
    if as_json:
        emit_json(entries)
        return
    if not entries:
        click.echo(f"cache {ctx.obj.cache_dir} is empty (try `evbt data sample` or `evbt data import FILE`)")
        return
    from engine.reporting.cli_text import data_ls_text

    click.echo(data_ls_text(entries))


@data_group.command("verify")
@click.argument("symbols", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def data_verify(ctx: click.Context, symbols: tuple[str, ...], as_json: bool) -> None:
    """Re-validate cache files; exit 1 if any is damaged or invalid.

    \b
    Example:
      evbt data verify            # every file
      evbt data verify BABA 700
    """
    from engine.market.symbols import parse_symbol_list
    from engine.prices.verify import verify_summary

    results = _data_store(ctx).verify(parse_symbol_list(list(symbols)) if symbols else None)
    bad = [r for r in results if not r.ok]
    if as_json:
        emit_json([{"symbol": r.symbol, "path": str(r.path), "ok": r.ok, "status": r.status, "problem": r.problem}
                   for r in results])
    else:
        for r in results:
            click.echo(r.line())
        click.echo(verify_summary(results))
    if bad:
        ctx.exit(ExitStatus.RUN_FAILED)


@data_group.command("rm")
@click.argument("symbols", nargs=-1, required=True)
@click.pass_context
def data_rm(ctx: click.Context, symbols: tuple[str, ...]) -> None:
    """Remove symbols from the cache (nothing is removed if one is not cached).

    \b
    Example:
      evbt data rm BABA 0700.HK
    """
    from engine.errors import MissingDataError
    from engine.market.symbols import parse_symbol_list

    store = _data_store(ctx)
    syms = parse_symbol_list(list(symbols))
    missing = [s for s in syms if not store.has(s)]
    if missing:
        raise MissingDataError(f"not in the cache {ctx.obj.cache_dir}: {', '.join(missing)}")
    for sym in syms:
        store.remove(sym)
        click.echo(f"{sym}: removed")


@data_group.command("sample")
@click.pass_context
def data_sample(ctx: click.Context) -> None:
    """Write the SYNTHETIC offline sample (not real prices) into the cache.

    With the global --sample flag this is data_cache/sample.

    \b
    Example:
      evbt --sample data sample && evbt --sample data ls
    """
    from engine.prices.synthetic import write_sample

    for meta in write_sample(_data_store(ctx)):
        span = f"{meta['first_date']} .. {meta['last_date']}"
        click.echo(f"{meta['symbol']}: {meta['rows']} SYNTHETIC bars {span}")
    click.echo(f"sample written to {ctx.obj.cache_dir} (synthetic data, for demos and tests only)")


@data_group.command("show")
@click.argument("symbol")
@click.option("--start", type=_DATE, default=None, help="First date (YYYY-MM-DD).")
@click.option("--end", type=_DATE, default=None, help="Last date, inclusive (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def data_show(ctx: click.Context, symbol: str, start: Any, end: Any, as_json: bool) -> None:
    """Summarise one symbol's prices: first/last close, return, min/max, rows, stale bars.

    \b
    Example:
      evbt data show 9988.HK --start 2022-03-01 --end 2022-03-31
    """
    from engine.market.symbols import normalize_symbol
    from engine.prices.store import price_summary

    store = _data_store(ctx)
    sym = normalize_symbol(symbol)
    summary = price_summary(store.load(sym, _data_day(start), _data_day(end)), sym)
    meta = store.read_meta(sym)
    summary.update(source=meta["source"], currency=meta["currency"], synthetic=meta["source"] == "sample")
    if as_json:
        emit_json(summary)
        return
    from engine.reporting.cli_text import data_show_text

    click.echo(data_show_text(sym, summary, meta))


# ---------------------------------------------------------------- events commands (issue 3)


@cli.group("events")
def events_group() -> None:
    """The event calendar: list, validate user files, fetch analyst ratings.

    \b
    Example:
      evbt events ls --type official_reassurance --symbol BABA --symbol 0700.HK
    """


@events_group.command("ls")
@click.option("--type", "types", multiple=True, help="Only this event type (repeatable).")
@click.option("--symbol", "symbols", multiple=True, help="Only events for this symbol; shows entry sessions.")
@click.option("--from", "start", default=None, help="First event date (YYYY-MM-DD).")
@click.option("--to", "end", default=None, help="Last event date (YYYY-MM-DD).")
@click.option("--events", "files", multiple=True, type=click.Path(path_type=Path), help="User event CSV.")
@click.option("--replace-events", "--replace", "replace", is_flag=True, default=False,
              help="Only the --events files, not the curated calendar.")
@click.option("--fill", type=click.Choice(["open", "close"]), default="open", show_default=True,
              help="Entry rule used for the entry sessions shown with --symbol.")
@click.option("--json", "as_json", is_flag=True, default=False, help="Machine-readable output.")
def events_ls(types: tuple[str, ...], symbols: tuple[str, ...], start: str | None, end: str | None,
              files: tuple[Path, ...], replace: bool, fill: str, as_json: bool) -> None:
    """List the merged event calendar with the instant each event is known (UTC).

    \b
    Example:
      evbt events ls --from 2022-03-01 --to 2022-05-31 --symbol BABA --symbol 9988.HK --fill close
    """
    from engine.api import list_events
    from engine.reporting.cli_text import events_ls_text

    listing = list_events(files, replace, types, symbols, start, end, fill)
    if as_json:
        emit_json({k: v for k, v in listing.items() if k != "by_symbol"})
        return
    click.echo(events_ls_text(listing))


@events_group.command("validate")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, default=False, help="Machine-readable output.")
@click.pass_context
def events_validate(ctx: click.Context, file: Path, as_json: bool) -> int:
    """Check a user event CSV; print every problem with its line number (exit 2 if any).

    \b
    Example:
      evbt events validate my_events.csv
    """
    from engine.events.catalog import check_events_file

    events, problems = check_events_file(file)
    if as_json:
        emit_json({"file": str(file), "ok": not problems, "events": len(events), "problems": problems})
    elif problems:
        for p in problems:
            click.echo(p, err=True)
        click.echo(f"error: {len(problems)} problem(s) in {file}", err=True)
    else:
        click.echo(f"ok: {len(events)} events")
    return ExitStatus.USAGE if problems else ExitStatus.OK


@events_group.command("fetch-ratings")
@click.argument("symbols", nargs=-1, required=True)
@click.option("--refresh", is_flag=True, default=False, help="Download again even when cached.")
@click.pass_obj
def events_fetch_ratings(app: AppContext, symbols: tuple[str, ...], refresh: bool) -> None:
    """Fetch analyst upgrades/downgrades from Yahoo and cache them (cache/ratings/SYMBOL.parquet).

    \b
    Example:
      evbt events fetch-ratings BABA PDD 0700.HK
    """
    from engine.events.ratings import fetch_ratings, ratings_to_events
    from engine.market.symbols import parse_symbol_list

    for sym in parse_symbol_list(list(symbols)):  # all symbols checked before anything is fetched
        frame = fetch_ratings(sym, app.cache_dir, offline=app.offline, refresh=refresh)
        moves = len(ratings_to_events(sym, frame))
        click.echo(f"{sym}: {len(frame)} rating change(s), {moves} up/downgrade(s) on the grade scale")


# ---------------------------------------------------------------- run / runs / compare (issue 4)


def _run_options(func):
    options = [
        click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
                     help="Strategy parameter (repeatable), e.g. -p hold=10."),
        click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
                     help="TOML run configuration; command-line options override it."),
        click.option("--symbols", help="Universe, comma separated (default: the strategy's universe)."),
        click.option("--start", help="First date, YYYY-MM-DD (default 2021-01-01)."),
        click.option("--end", help="Last date, YYYY-MM-DD (default 2023-06-30)."),
        click.option("--events", "events_file", type=click.Path(dir_okay=False),
                     help="Extra event CSV merged with the curated calendar."),
        click.option("--replace-events", "--replace", "replace_events", is_flag=True, default=None,
                     help="Use only --events, not the curated calendar."),
        click.option("--cash", type=str, help="Starting cash in the base currency (default 1000000)."),
        click.option("--commission", type=str, help="Commission as a fraction of value (default 0.001)."),
        click.option("--min-commission", type=str,
                     help="Minimum commission per order in the base currency (default 0)."),
        click.option("--slippage-bps", type=str, help="Slippage in basis points per fill (default 5)."),
        click.option("--stamp-duty", type=str,
                     help="HK stamp duty rate per side on every date (default: the dated rates of fees.csv)."),
        click.option("--venue-fees/--no-venue-fees", "venue_fees", default=None,
                     help="Charge the venue's dated taxes and levies (default: yes)."),
        click.option("--base-currency", type=str,
                     help="Currency of cash, fees and equity (default USD; e.g. JPY, HKD, GBP, EUR)."),
        click.option("--fill", type=click.Choice(["open", "close"]), help="Fill point (default open)."),
        click.option("--benchmark", help="Benchmark symbol (default KWEB; 'none' to disable)."),
        click.option("--sizing", type=click.Choice(["percent", "cash", "equal"]),
                     help="Position sizing: percent of equity, fixed cash, or equal split per event "
                          "(default percent)."),
        click.option("--size", type=str,
                     help="Fraction of equity (percent/equal; default 0.05) or base-currency amount (cash)."),
        click.option("--overlap", type=click.Choice(["extend", "ignore", "add"]),
                     help="A new signal on a held symbol (default extend)."),
        click.option("--allow-short", is_flag=True, default=None, help="Allow short entries."),
        click.option("--allow-margin", is_flag=True, default=None, help="Allow cash to go negative."),
        click.option("--max-positions", "max_positions", type=str,
                     help="Portfolio limit: open positions at once; entries beyond are skipped (reported)."),
        click.option("--max-gross", "max_gross", type=str,
                     help="Portfolio limit: gross position value / equity after an entry (e.g. 0.5)."),
        click.option("--max-weight", "max_weight", type=str,
                     help="Portfolio limit: one symbol's position value / equity after an entry (e.g. 0.1)."),
        click.option("--ratings", is_flag=True, default=None,
                     help="Merge yfinance analyst rating changes for the universe (see `evbt events fetch-ratings`)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _print_report(report: dict, as_json: bool, as_csv: bool, saved: Path | None) -> None:
    from engine.reporting.report import dumps_report, render_text, trades_csv

    if as_json:
        click.echo(dumps_report(report))
    elif as_csv:
        click.echo(trades_csv(report), nl=False)
    else:
        click.echo(render_text(report))
        if saved is not None:
            click.echo(f"\nsaved: {saved}")


@cli.command("run")
@click.argument("strategy")
@_run_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the trade list as CSV.")
@click.option("--no-save", is_flag=True, help="Do not save the run under the runs folder.")
@click.option("--tag", "tags", multiple=True, metavar="LABEL", help="Label the saved run (repeatable).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write an HTML report.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write a PNG chart.")
@click.option("--placebo", "placebo_n", type=int, default=None, metavar="N",
              help="Also rerun the strategy on N sets of random event dates and rank the real result among them.")
@click.option("--placebo-seed", type=int, default=None, help="Seed of the random dates (default 0; reproducible).")
@click.pass_obj
def run_cmd(app: AppContext, strategy: str, params: tuple[str, ...], config_file: Path | None, as_json: bool,
            as_csv: bool, no_save: bool, tags: tuple[str, ...], events_file: str | None,
            html_path: Path | None = None, plot_path: Path | None = None, placebo_n: int | None = None,
            placebo_seed: int | None = None, **options) -> None:
    """Backtest STRATEGY (a name, or your own path/to/rule.py) on cached prices; print metrics and trades.

    \b
    Examples:
      evbt run reassurance                           # the seed scenario
      evbt run my_rules/below_average.py -p hold=10  # one Strategy subclass in your own file
      evbt run reassurance -p hold=10 --fill close
      evbt run analyst_follow -p firms=JPMorgan --json
      evbt run event_hold -p types=policy_support --symbols BABA,0700.HK
      evbt run reassurance --placebo 1000 --placebo-seed 7 --html run.html
    """
    from engine.api import build_run_config, check_placebo, execute_run, placebo_test, write_outcome_visuals

    options["events"] = events_file
    config = build_run_config(app, strategy, params, config_file, options)
    check_placebo(config, placebo_n, placebo_seed)
    with _busy(f"running {strategy}", as_json or as_csv):
        outcome, saved = execute_run(app, config, save=not no_save, tags=tags)
    if placebo_n is None or not as_json:  # the report first: a placebo that cannot run still leaves it printed
        _print_report(outcome.report, as_json, as_csv, saved)
    placebo = None
    if placebo_n is not None:
        with _busy(f"placebo test ({placebo_n} sets)", as_json or as_csv):
            placebo = placebo_test(app, config, outcome, placebo_n, placebo_seed)
    if placebo is not None and as_json:
        from engine.reporting.report import dumps_report

        click.echo(dumps_report({**outcome.report, "placebo": placebo}))
    if placebo is not None and not as_json:
        from engine.reporting.placebo_text import render_placebo_text

        click.echo("\n" + render_placebo_text(placebo), nl=False, err=as_csv)
    with _busy("writing the charts"):
        write_outcome_visuals(app, outcome, html_path, plot_path, _wrote, warn, placebo=placebo)


@cli.command("demo")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def demo_cmd(app: AppContext, as_json: bool) -> None:
    """Run the seed scenario offline on the bundled SYNTHETIC sample (no network needed).

    Writes the sample into <cache-dir>/sample if it is not there, then runs `reassurance`
    on the sample's symbols. The report is labelled SYNTHETIC.

    \b
    Example:
      evbt demo
    """
    from engine.api import build_run_config, execute_run, prepare_demo

    sample_app, wrote_sample = prepare_demo(app)
    if wrote_sample:
        click.echo(f"wrote the synthetic sample to {sample_app.cache_dir}", err=True)
    config = build_run_config(sample_app, "reassurance", (), None, {})
    outcome, saved = execute_run(sample_app, config)
    _print_report(outcome.report, as_json, False, saved)


@cli.command("strategies")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def strategies_cmd(app: AppContext, as_json: bool) -> None:
    """List strategies (built-ins and your folders') and their parameters with defaults.

    \b
    Examples:
      evbt strategies
      evbt --strategies-dir ~/rules strategies
    """
    from engine.api import strategy_table
    from engine.reporting.cli_text import strategies_text

    rows = strategy_table(app)
    if as_json:
        emit_json(rows)
        return
    click.echo(strategies_text(rows))


@cli.group("runs", invoke_without_command=True)
@click.pass_context
def runs_group(ctx: click.Context) -> None:
    """Saved runs (folder: $EVBT_RUNS_DIR, default ./runs). Alone: the list, newest first.

    \b
    Examples:
      evbt runs                       # = evbt runs ls
      evbt runs ls --strategy reassurance --tag baseline --json
      evbt runs show SWEEP_ID:2
      evbt runs rm RUN && evbt runs gc
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(runs_ls)


@runs_group.command("ls")
@click.option("--strategy", default=None, help="Only runs of this strategy.")
@click.option("--since", default=None, metavar="DATE", help="Only runs created on or after DATE (YYYY-MM-DD).")
@click.option("--until", default=None, metavar="DATE", help="Only runs created on or before DATE (YYYY-MM-DD).")
@click.option("--tag", default=None, help="Only runs carrying this tag (`evbt run --tag`).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def runs_ls(strategy: str | None = None, since: str | None = None, until: str | None = None,
            tag: str | None = None, as_json: bool = False) -> None:
    """List saved runs, newest first.

    \b
    Example:
      evbt runs ls --since 2026-01-01 --strategy reassurance
    """
    from engine.api import parse_day
    from engine.reporting.cli_text import runs_ls_text
    from engine.results.catalog import RunFilter, find_runs, summary_json

    filters = RunFilter(strategy, parse_day(since, "--since"), parse_day(until, "--until"), tag)
    summaries = find_runs(filters)
    if as_json:
        emit_json([summary_json(s) for s in summaries])
        return
    if not summaries:
        click.echo("no saved runs" + (" match the filters" if filters != RunFilter() else ""))
        return
    click.echo(runs_ls_text(summaries))


@runs_group.command("rm")
@click.argument("runs", nargs=-1, required=True)
def runs_rm(runs: tuple[str, ...]) -> None:
    """Delete saved runs (ids or unique prefixes; nothing is removed if one is not found).

    Their data snapshots are freed by `evbt runs gc`.

    \b
    Example:
      evbt runs rm reassurance-3f2a
    """
    from engine.results.catalog import remove_runs

    for run_id in remove_runs(runs):
        click.echo(f"{run_id}: removed")


@runs_group.command("gc")
@click.pass_obj
def runs_gc(app: AppContext) -> None:
    """Free the data snapshots that no saved run or sweep in the runs folder refers to.

    \b
    Example:
      evbt runs gc
    """
    from engine.reporting.cli_text import size_label
    from engine.results.catalog import gc

    result = gc(app.store(offline=True))
    click.echo(f"freed {result.removed} data version(s), {size_label(result.freed_bytes)}; "
               f"{result.kept} kept")


@runs_group.command("show")
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="Print report.json.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the trade list as CSV.")
def runs_show(run: str, as_json: bool, as_csv: bool) -> None:
    """Show a saved run (id, unique id prefix, folder, report.json path, SWEEP_ID or SWEEP_ID:RANK).

    \b
    Example:
      evbt runs show reassurance-3f2a
    """
    from engine.api import load_any_report

    _print_report(load_any_report(run), as_json, as_csv, None)


@cli.command("rerun")
@click.argument("run")
@click.option("--current-data", is_flag=True, help="Use today's cache, not the data versions the run read; "
              "list the trades that changed.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def rerun_cmd(app: AppContext, run: str, current_data: bool, as_json: bool) -> None:
    """Run a saved run again and say whether it reproduced exactly, or what changed.

    By default it runs on the data versions the run read (kept in the cache's snapshots), so a later
    `evbt data fetch` or `import` does not change the result. RUN is anything `evbt runs show` accepts.

    \b
    Examples:
      evbt rerun reassurance-3f2a
      evbt rerun reassurance-3f2a --current-data
    """
    from engine.api import rerun
    from engine.reporting.cli_text import rerun_text

    with _busy(f"rerunning {run}", as_json):
        verdict = rerun(app, run, current_data=current_data)
    if as_json:
        emit_json(verdict.to_dict())
        return
    click.echo(rerun_text(verdict))


@cli.command("compare")
@click.argument("runs", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write an HTML report.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write a PNG chart.")
def compare_cmd(runs: tuple[str, ...], as_json: bool, html_path: Path | None = None,
                plot_path: Path | None = None) -> None:
    """Compare saved runs (ids, prefixes, folders, report.json files, SWEEP_ID or SWEEP_ID:RANK) side by side.

    Metrics with deltas against the first, parameter differences, and which event trades
    one run made and the other did not.

    \b
    Example:
      evbt compare reassurance-3f2a reassurance-9b1c
    """
    from engine.analysis.compare import render_compare_text
    from engine.api import compare, write_compare_visuals

    comparison = compare(runs)
    if as_json:
        emit_json(comparison)
    else:
        click.echo(render_compare_text(comparison))
    with _busy("writing the charts"):
        write_compare_visuals(runs, comparison, html_path, plot_path, _wrote, warn)


# ---- study and visual reports (issue 6)

_HTML_OPTION = click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                            help="Also write a self-contained HTML report (charts inline, no network needed).")
_PLOT_OPTION = click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                            help="Also write the charts as one PNG file.")


def _wrote(path: Path, size: int) -> None:
    click.echo(f"wrote {path} ({size / 1024:.0f} KB)", err=True)


@cli.command("report")
@click.argument("run")
@_HTML_OPTION
@_PLOT_OPTION
@click.pass_obj
def report_cmd(app: AppContext, run: str, html_path: Path | None, plot_path: Path | None) -> None:
    """Visual report of a saved run (id, unique id prefix, folder or report.json path).

    Without --html/--plot it prints the text report.

    \b
    Examples:
      evbt report reassurance-3f2a --html report.html
      evbt report runs/reassurance-3f2a --plot equity.png
    """
    from engine.api import load_any_report, write_saved_run_visuals

    if html_path is None and plot_path is None:
        _print_report(load_any_report(run), False, False, None)
        return
    with _busy("writing the report"):
        write_saved_run_visuals(app, run, html_path, plot_path, _wrote, warn)


@cli.command("study")
@click.option("--type", "types", multiple=True, help="Event type (repeatable; default: all types).")
@click.option("--symbol", "symbols", multiple=True, help="Symbol (repeatable; default: the China-internet universe).")
@click.option("--from", "start", default=None, help="First event date (YYYY-MM-DD).")
@click.option("--to", "end", default=None, help="Last event date (YYYY-MM-DD).")
@click.option("--window", default="-5:10", show_default=True, help="Event window in trading days around day 0.")
@click.option("--estimation", default="-250:-30", show_default=True, help="Estimation window in trading days.")
@click.option("--model", type=click.Choice(["market", "two-factor", "mean", "raw"]), default=None,
              help="Normal-return model: market model on the broad-market benchmark (default), two-factor "
                   "(market + sector; default with --sector-benchmark), constant mean, or raw returns.")
@click.option("--benchmark", default=None,
              help="Market benchmark for every symbol (default: the venue's broad market, ^HSI for HK, SPY for US).")
@click.option("--sector-benchmark", default=None, metavar="SYMBOL",
              help="Sector benchmark (e.g. KWEB) for the two-factor model: separates the sector from the market.")
@click.option("--pool", is_flag=True, default=False,
              help="Pool every event type into one group (default: one group per type).")
@click.option("--fill", type=click.Choice(["open", "close"]), default="open", show_default=True,
              help="Entry rule defining day 0 (as in `evbt run`).")
@click.option("--events", "files", multiple=True, type=click.Path(path_type=Path), help="User event CSV.")
@click.option("--replace-events", "--replace", "replace", is_flag=True, default=False,
              help="Only the --events files, not the curated calendar.")
@click.option("--json", "as_json", is_flag=True, default=False, help="Machine-readable output.")
@_HTML_OPTION
@_PLOT_OPTION
@click.pass_obj
def study_cmd(app: AppContext, types: tuple[str, ...], symbols: tuple[str, ...], start: str | None,
              end: str | None, window: str, estimation: str, model: str | None, benchmark: str | None,
              sector_benchmark: str | None, pool: bool, fill: str, files: tuple[Path, ...], replace: bool,
              as_json: bool, html_path: Path | None, plot_path: Path | None) -> None:
    """Event study per event type: abnormal returns, CAR per event, AAR/CAAR with parametric (cross-sectional t,
    BMP, Kolari-Pynnonen) and non-parametric (Corrado rank, generalised sign, Wilcoxon) tests.

    Day 0 is the backtest's fill bar for each event's entry session on the symbol's exchange (no lookahead).
    Sector events also apply to any index or fund named with --symbol. Events whose windows lack data are
    listed as skipped, one line per reason.

    \b
    Examples:
      evbt study --type official_reassurance
      evbt study --type official_reassurance --symbol ^HSTECH --symbol BABA --sector-benchmark KWEB
      evbt study --type analyst_upgrade --symbol BABA --window -1:5 --model mean --json
      evbt study --type policy_support --html study.html --plot caar.png
    """
    from engine.api import study, write_study_visuals
    from engine.reporting.study_text import render_study_text

    with _busy("event study", as_json):
        result = study(app, types, symbols, start, end, window, estimation, model, benchmark, fill, files, replace,
                       sector_benchmark=sector_benchmark, pool=pool)
    if as_json:
        from engine.reporting.report import dumps_report

        click.echo(dumps_report(result.to_dict()), nl=False)
        for message in result.warnings:
            warn(message)
    else:
        click.echo(render_study_text(result), nl=False)
    write_study_visuals(result, html_path, plot_path, _wrote)


# ---- sweep (issue 5)


def _stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def _busy(label: str, quiet: bool = False) -> Any:
    """A spinner on stderr while a command works (commands can take seconds); nothing when stderr is not a
    terminal or output is machine-readable, so pipes and JSON stay clean."""
    import contextlib

    if quiet or not _stderr_is_terminal():
        return contextlib.nullcontext()
    from rich.console import Console

    return Console(stderr=True).status(label, spinner="dots")


def _sweep_progress(quiet: bool) -> tuple[Any, Any]:
    """A rich progress bar on stderr (None when quiet or stderr is not a terminal) and its closer."""
    if quiet or not sys.stderr.isatty():
        return None, lambda: None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task("points", total=None)
    bar.start()

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return update, bar.stop


@cli.command("sweep")
@click.argument("strategy")
@click.option("-g", "--grid", "grid_specs", multiple=True, metavar="KEY=SPEC",
              help="Swept key: a list (0.05,0.1 / open,close), a range 1..30 or 1..30:5 (repeatable).")
@_run_options
@click.option("--metric", default="sharpe", show_default=True, help="Ranking metric (any report metric).")
@click.option("--top", type=click.IntRange(min=0), default=10, show_default=True, help="Rows shown (0 = all).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Processes (default: CPU count).")
@click.option("--cluster", default=None, metavar="ADDR|local",
              help="Run on a Dask cluster (tcp://host:8786) or a LocalCluster on loopback ('local').")
@click.option("--split", default=None, metavar="DATE", help="In-sample before DATE, out-of-sample from DATE.")
@click.option("--walk-forward", "walk_forward", default=None, metavar="TRAIN:TEST",
              help="Rolling windows in months: choose on TRAIN, report the next TEST months.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary (all metrics) as JSON.")
@click.option("--heatmap", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a PNG heatmap of the metric over two grid keys.")
@click.option("--heatmap-keys", default=None, metavar="X,Y", help="Grid keys of the heatmap (default: first two).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--placebo", "placebo_n", type=int, default=None, metavar="N",
              help="Also rank the top points by a placebo test on N sets of random event dates each.")
@click.option("--placebo-seed", type=int, default=None, help="Seed of the random dates (default 0).")
@click.pass_obj
def sweep_cmd(app: AppContext, strategy: str, grid_specs: tuple[str, ...], params: tuple[str, ...],
              config_file: Path | None, metric: str, top: int, workers: int | None, cluster: str | None,
              split: str | None, walk_forward: str | None, as_json: bool, heatmap: Path | None,
              heatmap_keys: str | None, quiet: bool, events_file: str | None, placebo_n: int | None = None,
              placebo_seed: int | None = None, **options) -> None:
    """Backtest STRATEGY over a parameter grid: ranked table, best point, saved sweep folder.

    Points already computed for the same configuration, data and calendar are reused (an interrupted
    sweep continues; a widened grid computes only the new points).

    \b
    Examples:
      evbt sweep reassurance -g hold=1..30 -g fill=open,close
      evbt sweep reassurance -g hold=1..30:5 -g size=0.02,0.05 --metric total_return --top 5
      evbt sweep reassurance -g hold=1..20 --split 2022-07-01
      evbt sweep reassurance -g hold=1..20 --walk-forward 12:3 --heatmap hold.png
      evbt sweep reassurance -g hold=1..30 --cluster local
    """
    from engine.api import build_run_config, check_sweep_placebo, sweep_placebo
    from engine.plan.config import parse_date
    from engine.prices.store import PriceStore
    from engine.sweeps.grid import parse_grid
    from engine.sweeps.sweep import SweepRequest, check_metric, heatmap_keys_for, parse_walk_forward, run_sweep
    from strategies.registry import get_strategy, resolve

    check_metric(metric)
    strategy = resolve(strategy, app.strategy_dirs)  # a user strategy: the absolute path of its file
    check_sweep_placebo(placebo_n, placebo_seed, split, walk_forward)
    grid = parse_grid(grid_specs, get_strategy(strategy).Params, strategy)
    options["events"] = events_file
    config = build_run_config(app, strategy, params, config_file, options)
    request = SweepRequest(
        strategy=strategy, base=config, grid=grid, metric=metric, top=top,
        workers=workers or min(os.cpu_count() or 1, 8), cluster=cluster,
        split=parse_date(split, "--split") if split else None,
        walk_forward=parse_walk_forward(walk_forward) if walk_forward else None,
        command_prefix="evbt --sample" if app.sample else "evbt",
        default_symbols=build_run_config(app, strategy, (), None, {}).symbols,
    )
    hm_keys = heatmap_keys_for(grid, heatmap_keys) if heatmap is not None else None
    update, stop = _sweep_progress(quiet or as_json)
    try:
        outcome = run_sweep(request, PriceStore(app.cache_dir, offline=app.offline), progress=update)
    finally:
        stop()
    summary = outcome.summary
    if heatmap is not None and hm_keys is not None:
        from engine.sweeps.sweep import write_heatmap

        write_heatmap(heatmap, outcome.path, hm_keys, metric)
    ranked = sweep_placebo(app, request, summary, placebo_n, placebo_seed) if placebo_n is not None else None
    if as_json:
        doc = dict(summary)
        doc["ranking"] = summary["ranking"][: top or None]
        doc.update({"saved": str(outcome.path), "elapsed_s": round(outcome.elapsed, 3)})
        if ranked is not None:
            from engine.reporting.report import to_jsonable

            doc["placebo_ranking"] = to_jsonable([{"point": r.label, "placebo": r.result} for r in ranked])
        emit_json(doc)
        return
    from engine.reporting.cli_text import sweep_text

    click.echo(sweep_text(strategy, outcome, top, heatmap))
    if ranked is not None:
        from engine.reporting.placebo_text import placebo_ranking_text

        click.echo("\n" + placebo_ranking_text(ranked, placebo_n or 0, placebo_seed), nl=False)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, EvbtWarning):
        click.echo(f"warning: {message}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: the single error boundary."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    warnings.showwarning = _show_warning
    warnings.simplefilter("always", EvbtWarning)
    try:
        rv = cli.main(args=argv, prog_name="evbt", standalone_mode=False)
    except click.exceptions.Abort:  # Ctrl-C at a prompt
        click.echo("aborted", err=True)
        return ExitStatus.INTERRUPTED
    except click.ClickException as exc:  # usage errors: bad option, missing argument
        exc.show()
        return ExitStatus.USAGE
    except EvbtError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return ExitStatus.INTERRUPTED
    except Exception as exc:  # a bug: still no traceback unless --debug
        if debug:
            raise
        from strategies.registry import user_error

        if (message := user_error(exc)) is not None:  # raised in the user's own strategy file: show its frames
            click.echo(f"error: {message}", err=True)
            return ExitStatus.RUN_FAILED
        click.echo(f"error: internal error: {type(exc).__name__}: {exc} (rerun with --debug)", err=True)
        return ExitStatus.RUN_FAILED
    # standalone_mode=False returns ctx.exit(code) codes as the result (e.g. `data verify` finding damage)
    return int(rv) if isinstance(rv, int) else ExitStatus.OK


if __name__ == "__main__":
    sys.exit(main())
