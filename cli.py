"""evbt command line: parses options, calls the engine, prints results.

All logic lives in ``engine/`` (``engine.api`` is what the commands call) and ``strategies/``; renderings are in
``engine.reporting``. This module is the one place where domain errors become exit codes: 0 ok, 1 run failed
(DataError/RunError), 2 usage or input error (ConfigError). ``--debug`` re-raises so the traceback is shown.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from engine import api
from engine.api import Settings
from engine.api.command_help import HELP
from engine.errors import EvbtError, EvbtWarning, ExitStatus
from engine.plan.run_options import RUN_OPTIONS, RunOption
from engine.versions import version

__version__ = version("evbt") or "0.0.0+checkout"  # no version: running from a checkout without install

AppContext = Settings  # what every command receives as ``ctx.obj``
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def _show(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    """``data`` as JSON with --json, else its text rendering."""
    if as_json:
        emit_json(data)
    else:
        click.echo(text(data))


def _wrote(path: Path, size: int) -> None:
    from engine.reporting.cli_text import wrote_line

    click.echo(wrote_line(path, size), err=True)


# ---------------------------------------------------------------- shared options (composed decorators)


def _options(*decorators: Decorator) -> Decorator:
    """Several click options as one decorator, listed in help in the order given."""

    def apply(func: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


def _json_option(help: str | None = "Machine-readable output.") -> Decorator:
    return click.option("--json", "as_json", is_flag=True, default=False, help=help)


def _file_option(name: str, dest: str, help: str) -> Decorator:
    return click.option(name, dest, type=click.Path(dir_okay=False, path_type=Path), default=None, help=help)


def _fill_option(help: str) -> Decorator:
    return click.option("--fill", type=click.Choice(["open", "close"]), default="open", show_default=True, help=help)


def _placebo_options(n_help: str, seed_help: str) -> Decorator:
    return _options(click.option("--placebo", "placebo_n", type=int, default=None, metavar="N", help=n_help),
                    click.option("--placebo-seed", type=int, default=None, help=seed_help))


_DATE = click.DateTime(formats=["%Y-%m-%d"])
_HTML_OPTION = _file_option("--html", "html_path", "Also write a self-contained HTML report (charts inline, no "
                            "network needed).")
_PLOT_OPTION = _file_option("--plot", "plot_path", "Also write the charts as one PNG file.")
_RUN_VISUALS = _options(_file_option("--html", "html_path", "Also write an HTML report."),
                        _file_option("--plot", "plot_path", "Also write a PNG chart."))
_EVENT_DATES = _options(click.option("--from", "start", default=None, help="First event date (YYYY-MM-DD)."),
                        click.option("--to", "end", default=None, help="Last event date (YYYY-MM-DD)."))
_EVENT_FILES = _options(
    click.option("--events", "files", multiple=True, type=click.Path(path_type=Path), help="User event CSV."),
    click.option("--replace-events", "--replace", "replace", is_flag=True, default=False,
                 help="Only the --events files, not the curated calendar."))


def _run_option(option: RunOption) -> Decorator:
    """One option of engine.plan.run_options as a click option (unset values are None: not given)."""
    kinds: dict[str, dict[str, Any]] = {
        "flag": {"is_flag": True, "default": None}, "switch": {"default": None},
        "choice": {"type": click.Choice(list(option.choices))}, "pairs": {"multiple": True, "metavar": "KEY=VALUE"},
        "toml": {"type": click.Path(dir_okay=False, path_type=Path)}, "file": {"type": click.Path(dir_okay=False)}}
    return click.option(*option.decls, help=option.help, **kinds.get(option.kind, {}))


_RUN_OPTIONS = _options(*(_run_option(option) for option in RUN_OPTIONS))


@click.group(help=HELP["evbt"], context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="evbt")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), envvar="EVBT_CACHE_DIR", default=None,
              help="Parquet price cache folder (default: ./data_cache in the current folder; env EVBT_CACHE_DIR).")
@click.option("--offline", is_flag=True, default=False, help="Never touch the network (env EVBT_OFFLINE=1).")
@click.option("--sample", is_flag=True, default=False, help="Use the bundled SYNTHETIC sample cache "
              "(data_cache/sample) instead of real data; implies --offline.")
@click.option("--debug", is_flag=True, default=False, help="Show full tracebacks on errors.")
@click.option("--venues", "venues_file", type=click.Path(dir_okay=False, path_type=Path), envvar="EVBT_VENUES",
              default=None, help="CSV of venue rows added to / overriding the built-in table (env EVBT_VENUES).")
@click.option("--strategies-dir", "strategy_dirs", multiple=True, type=click.Path(path_type=Path),
              help="Folder of your own strategy modules (repeatable; also env EVBT_STRATEGIES_PATH).")
@click.pass_context
def cli(ctx: click.Context, cache_dir: Path | None, offline: bool, sample: bool, debug: bool,
        venues_file: Path | None = None, strategy_dirs: tuple[Path, ...] = ()) -> None:
    ctx.obj = api.make_settings(cache_dir, offline, sample, debug, venues_file, strategy_dirs)


# ---------------------------------------------------------------- data commands


def _day(value: Any) -> Any:
    return value.date() if value is not None else None


@cli.group("data", help=HELP["data"])
def data_group() -> None:
    """The price cache (help: engine/api/command_help.py, like every command's)."""


@data_group.command("fetch", help=HELP["data fetch"])
@click.argument("symbols", nargs=-1, required=True)
@click.option("--start", type=_DATE, default=None, help="First date (YYYY-MM-DD); default: full history.")
@click.option("--end", type=_DATE, default=None, help="Last date, inclusive (YYYY-MM-DD); default: today.")
@click.pass_obj
def data_fetch(app: AppContext, symbols: tuple[str, ...], start: Any, end: Any) -> None:
    from engine.reporting.cli_text import fetched_line

    for sym, meta in api.fetch_prices(app, symbols, _day(start), _day(end)):
        click.echo(fetched_line(sym, meta))


@data_group.command("import", help=HELP["data import"])
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--symbol", default=None, help="Symbol for a single file (default: from the file name).")
@click.pass_obj
def data_import(app: AppContext, files: tuple[Path, ...], symbol: str | None) -> None:
    imported = api.import_prices(app, files, symbol)  # parsing starts now, before cli_text imports pandas
    from engine.reporting.cli_text import imported_line

    for item, meta in imported:
        click.echo(imported_line(item.symbol, meta, item.path.name))


@data_group.command("ls", help=HELP["data ls"])
@_json_option()
@click.pass_obj
def data_ls(app: AppContext, as_json: bool) -> None:
    from engine.reporting.cli_text import data_ls_text

    entries = api.cache_entries(app)
    if as_json:
        emit_json(entries)
    elif not entries:
        sample = "evbt --sample data sample" if app.sample else "evbt data sample"
        click.echo(f"cache {app.cache_dir} is empty (try `{sample}` or `evbt data import FILE`)")
    else:
        click.echo(data_ls_text(entries))


@data_group.command("verify", help=HELP["data verify"])
@click.argument("symbols", nargs=-1)
@_json_option()
@click.pass_context
def data_verify(ctx: click.Context, symbols: tuple[str, ...], as_json: bool) -> None:
    from engine.reporting.cli_text import verify_rows, verify_text

    results = api.verify_cache(ctx.obj, symbols)
    _show(verify_rows(results) if as_json else results, as_json, verify_text)
    if any(not r.ok for r in results):
        ctx.exit(ExitStatus.RUN_FAILED)


@data_group.command("rm", help=HELP["data rm"])
@click.argument("symbols", nargs=-1, required=True)
@click.pass_obj
def data_rm(app: AppContext, symbols: tuple[str, ...]) -> None:
    for sym in api.remove_prices(app, symbols):
        click.echo(f"{sym}: removed")


@data_group.command("sample", help=HELP["data sample"])
@click.pass_obj
def data_sample(app: AppContext) -> None:
    from engine.reporting.cli_text import sample_line

    for meta in api.write_sample_data(app):
        click.echo(sample_line(meta))
    click.echo(f"sample written to {app.cache_dir} (synthetic data, for demos and tests only)")


@data_group.command("show", help=HELP["data show"])
@click.argument("symbol")
@click.option("--start", type=_DATE, default=None, help="First date (YYYY-MM-DD).")
@click.option("--end", type=_DATE, default=None, help="Last date, inclusive (YYYY-MM-DD).")
@_json_option()
@click.pass_obj
def data_show(app: AppContext, symbol: str, start: Any, end: Any, as_json: bool) -> None:
    from engine.reporting.cli_text import data_show_text

    sym, summary, meta = api.price_summary(app, symbol, _day(start), _day(end))
    _show(summary, as_json, lambda s: data_show_text(sym, s, meta))


# ---------------------------------------------------------------- events commands


@cli.group("events", help=HELP["events"])
def events_group() -> None:
    """The event calendar."""


@events_group.command("ls", help=HELP["events ls"])
@click.option("--type", "types", multiple=True, help="Only this event type (repeatable).")
@click.option("--symbol", "symbols", multiple=True, help="Only events for this symbol; shows entry sessions.")
@_EVENT_DATES
@_EVENT_FILES
@_fill_option("Entry rule used for the entry sessions shown with --symbol.")
@_json_option()
def events_ls(types: tuple[str, ...], symbols: tuple[str, ...], start: str | None, end: str | None,
              files: tuple[Path, ...], replace: bool, fill: str, as_json: bool) -> None:
    from engine.reporting.cli_text import events_ls_text

    listing = api.list_events(files, replace, types, symbols, start, end, fill)
    _show({k: v for k, v in listing.items() if k != "by_symbol"} if as_json else listing, as_json, events_ls_text)


@events_group.command("validate", help=HELP["events validate"])
@click.argument("file", type=click.Path(path_type=Path))
@_json_option()
def events_validate(file: Path, as_json: bool) -> int:
    events, problems = api.validate_events_file(file)
    if as_json:
        emit_json({"file": str(file), "ok": not problems, "events": len(events), "problems": problems})
    elif problems:
        click.echo("\n".join([*problems, f"error: {len(problems)} problem(s) in {file}"]), err=True)
    else:
        click.echo(f"ok: {len(events)} events")
    return ExitStatus.USAGE if problems else ExitStatus.OK


@events_group.command("fetch-ratings", help=HELP["events fetch-ratings"])
@click.argument("symbols", nargs=-1, required=True)
@click.option("--refresh", is_flag=True, default=False, help="Download again even when cached.")
@click.pass_obj
def events_fetch_ratings(app: AppContext, symbols: tuple[str, ...], refresh: bool) -> None:
    from engine.reporting.cli_text import ratings_line

    for sym, changes, moves in api.fetch_ratings(app, symbols, refresh):
        click.echo(ratings_line(sym, changes, moves))


# ---------------------------------------------------------------- run / demo / strategies / runs / compare


def _one_format(as_json: bool, as_csv: bool) -> None:
    """--json and --csv are two different outputs on stdout: asking for both is a usage error (exit 2)."""
    if as_json and as_csv:
        raise click.UsageError("--json and --csv cannot be used together: --json prints the whole report, --csv "
                               "only the trade list; choose one")


def _print_report(report: Any, as_json: bool, as_csv: bool, saved: Path | None) -> None:
    from engine.reporting.report import dumps_report, render_text, trades_csv

    if as_json:
        click.echo(dumps_report(report))
    elif as_csv:
        click.echo(trades_csv(report), nl=False)
    else:
        click.echo(render_text(report) + (f"\n\nsaved: {saved}" if saved is not None else ""))


@cli.command("run", help=HELP["run"])
@click.argument("strategy")
@_RUN_OPTIONS
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the trade list as CSV.")
@click.option("--no-save", is_flag=True, help="Do not save the run under the runs folder.")
@click.option("--tag", "tags", multiple=True, metavar="LABEL", help="Label the saved run (repeatable).")
@_RUN_VISUALS
@_placebo_options("Also rerun the strategy on N sets of random event dates and rank the real result among them.",
                  "Seed of the random dates (default 0; reproducible).")
@click.pass_obj
def run_cmd(app: AppContext, strategy: str, as_json: bool, as_csv: bool, no_save: bool, tags: tuple[str, ...],
            html_path: Path | None, plot_path: Path | None, placebo_n: int | None, placebo_seed: int | None,
            **options: Any) -> None:
    _one_format(as_json, as_csv)
    with api.long_lived():
        from engine.reporting.report import dumps_report

    config = api.config_from_options(app, strategy, options)
    api.check_placebo(config, placebo_n, placebo_seed)
    api.check_tags(tags)
    api.check_visual_paths(html_path, plot_path)
    with _busy(f"running {strategy}", as_json or as_csv):
        outcome, saved = api.execute_run(app, config, save=not no_save, tags=tags)
    if placebo_n is None or not as_json:  # the report first: a placebo that cannot run still leaves it printed
        _print_report(outcome.report, as_json, as_csv, saved)
    placebo = None
    if placebo_n is not None:
        with _busy(f"placebo test ({placebo_n} sets)", as_json or as_csv):
            placebo = api.placebo_test(app, config, outcome, placebo_n, placebo_seed)
        if as_json:
            click.echo(dumps_report({**outcome.report, "placebo": placebo}))
        else:
            from engine.reporting.placebo_text import render_placebo_text

            click.echo("\n" + render_placebo_text(placebo), nl=False, err=as_csv)
    with _busy("writing the charts"):
        api.write_outcome_visuals(app, outcome, html_path, plot_path, _wrote, warn, placebo=placebo)


@cli.command("demo", help=HELP["demo"])
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def demo_cmd(app: AppContext, as_json: bool) -> None:
    sample_app, wrote_sample = api.prepare_demo(app)
    if wrote_sample:
        click.echo(f"wrote the synthetic sample to {sample_app.cache_dir}", err=True)
    outcome, saved = api.execute_run(sample_app, api.build_run_config(sample_app, "reassurance", (), None, {}))
    _print_report(outcome.report, as_json, False, saved)


@cli.command("strategies", help=HELP["strategies"])
@_json_option(None)
@click.pass_obj
def strategies_cmd(app: AppContext, as_json: bool) -> None:
    from engine.reporting.cli_text import strategies_text

    _show(api.strategy_table(app), as_json, strategies_text)


@cli.group("runs", help=HELP["runs"], invoke_without_command=True)
@click.pass_context
def runs_group(ctx: click.Context) -> None:
    if ctx.invoked_subcommand is None:
        ctx.invoke(runs_ls)


@runs_group.command("ls", help=HELP["runs ls"])
@click.option("--strategy", default=None, help="Only runs of this strategy.")
@click.option("--since", default=None, metavar="DATE", help="Only runs created on or after DATE (YYYY-MM-DD).")
@click.option("--until", default=None, metavar="DATE", help="Only runs created on or before DATE (YYYY-MM-DD).")
@click.option("--tag", default=None, help="Only runs carrying this tag (`evbt run --tag`).")
@_json_option()
def runs_ls(strategy: str | None = None, since: str | None = None, until: str | None = None,
            tag: str | None = None, as_json: bool = False) -> None:
    from engine.reporting.cli_text import runs_ls_rows, runs_ls_text

    summaries, filtered = api.find_saved_runs(strategy, since, until, tag)
    if as_json:
        emit_json(runs_ls_rows(summaries))
    elif not summaries:
        click.echo("no saved runs" + (" match the filters" if filtered else ""))
    else:
        click.echo(runs_ls_text(summaries))


@runs_group.command("rm", help=HELP["runs rm"])
@click.argument("runs", nargs=-1, required=True)
def runs_rm(runs: tuple[str, ...]) -> None:
    for run_id in api.remove_saved_runs(runs):
        click.echo(f"{run_id}: removed")


@runs_group.command("gc", help=HELP["runs gc"])
@click.pass_obj
def runs_gc(app: AppContext) -> None:
    from engine.reporting.cli_text import gc_line

    click.echo(gc_line(api.free_snapshots(app)))


@runs_group.command("show", help=HELP["runs show"])
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="Print report.json.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the trade list as CSV.")
def runs_show(run: str, as_json: bool, as_csv: bool) -> None:
    _one_format(as_json, as_csv)
    _print_report(api.load_any_report(run), as_json, as_csv, None)


@cli.command("rerun", help=HELP["rerun"])
@click.argument("run")
@click.option("--current-data", is_flag=True, help="Use today's cache, not the data versions the run read; "
              "list the trades that changed.")
@_json_option(None)
@click.pass_obj
def rerun_cmd(app: AppContext, run: str, current_data: bool, as_json: bool) -> None:
    from engine.reporting.cli_text import rerun_text

    with _busy(f"rerunning {run}", as_json):
        verdict = api.rerun(app, run, current_data=current_data)
    _show(verdict.to_dict() if as_json else verdict, as_json, rerun_text)


@cli.command("compare", help=HELP["compare"])
@click.argument("runs", nargs=-1, required=True)
@_json_option(None)
@_RUN_VISUALS
def compare_cmd(runs: tuple[str, ...], as_json: bool, html_path: Path | None = None,
                plot_path: Path | None = None) -> None:
    from engine.reporting.compare_text import render_compare_text

    api.check_visual_paths(html_path, plot_path)
    comparison = api.compare(runs)
    _show(comparison, as_json, render_compare_text)
    with _busy("writing the charts"):
        api.write_compare_visuals(runs, comparison, html_path, plot_path, _wrote, warn)


# ---------------------------------------------------------------- study and visual reports


@cli.command("report", help=HELP["report"])
@click.argument("run")
@_HTML_OPTION
@_PLOT_OPTION
@click.pass_obj
def report_cmd(app: AppContext, run: str, html_path: Path | None, plot_path: Path | None) -> None:
    api.check_visual_paths(html_path, plot_path)
    if html_path is None and plot_path is None:
        _print_report(api.load_any_report(run), False, False, None)
        return
    with _busy("writing the report"):
        api.write_saved_run_visuals(app, run, html_path, plot_path, _wrote, warn)


@cli.command("study", help=HELP["study"])
@click.option("--type", "types", multiple=True, help="Event type (repeatable; default: all types).")
@click.option("--symbol", "symbols", multiple=True, help="Symbol (repeatable; default: the China-internet universe).")
@_EVENT_DATES
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
@_fill_option("Entry rule defining day 0 (as in `evbt run`).")
@_EVENT_FILES
@_json_option()
@_HTML_OPTION
@_PLOT_OPTION
@click.pass_obj
def study_cmd(app: AppContext, types: tuple[str, ...], symbols: tuple[str, ...], start: str | None,
              end: str | None, window: str, estimation: str, model: str | None, benchmark: str | None,
              sector_benchmark: str | None, pool: bool, fill: str, files: tuple[Path, ...], replace: bool,
              as_json: bool, html_path: Path | None, plot_path: Path | None) -> None:
    from engine.reporting.report import dumps_report
    from engine.reporting.study_text import render_study_text

    api.check_visual_paths(html_path, plot_path)
    with _busy("event study", as_json):
        result = api.study(app, types, symbols, start, end, window, estimation, model, benchmark, fill, files, replace,
                       sector_benchmark=sector_benchmark, pool=pool)
    click.echo(dumps_report(result.to_dict()) if as_json else render_study_text(result), nl=False)
    for message in result.warnings if as_json else ():
        warn(message)
    api.write_study_visuals(result, html_path, plot_path, _wrote)


# ---------------------------------------------------------------- sweep


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


@cli.command("sweep", help=HELP["sweep"])
@click.argument("strategy")
@click.option("-g", "--grid", "grid_specs", multiple=True, metavar="KEY=SPEC",
              help="Swept key: a list (0.05,0.1 / open,close), a range 1..30 or 1..30:5 (repeatable).")
@_RUN_OPTIONS
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
@_placebo_options("Also rank the top points by a placebo test on N sets of random event dates each.",
                  "Seed of the random dates (default 0).")
@click.pass_obj
def sweep_cmd(app: AppContext, strategy: str, grid_specs: tuple[str, ...], metric: str, top: int,
              workers: int | None, cluster: str | None, split: str | None, walk_forward: str | None, as_json: bool,
              heatmap: Path | None, heatmap_keys: str | None, quiet: bool, placebo_n: int | None,
              placebo_seed: int | None, **options: Any) -> None:
    with api.long_lived():
        from engine.reporting.cli_text import sweep_json, sweep_text

    job = api.prepare_sweep(app, strategy, grid_specs, options, metric=metric, top=top, workers=workers,
                            cluster=cluster, split=split, walk_forward=walk_forward, heatmap=heatmap,
                            heatmap_keys=heatmap_keys, placebo_n=placebo_n, placebo_seed=placebo_seed)
    update, stop = _sweep_progress(quiet or as_json)
    try:
        outcome = api.run_sweep(app, job, update)
    except KeyboardInterrupt:
        stop()
        click.echo("the finished batches of points are saved: run the same command again to resume from them",
                   err=True)
        raise
    finally:
        stop()
    ranked = api.finish_sweep(app, job, outcome)
    if as_json:
        emit_json(sweep_json(outcome, top, ranked))
        return
    click.echo(sweep_text(job.request.strategy, outcome, top, heatmap))
    if ranked is not None:
        from engine.reporting.placebo_text import placebo_ranking_text

        click.echo("\n" + placebo_ranking_text(ranked, placebo_n or 0, placebo_seed), nl=False)


# ---------------------------------------------------------------- the error boundary


def _show_warning(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    if issubclass(category, EvbtWarning):
        click.echo(f"warning: {message}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: the single error boundary."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    warnings.showwarning = _show_warning
    warnings.simplefilter("always", EvbtWarning)
    api.tune_process()
    try:
        rv = cli.main(args=argv, prog_name="evbt", standalone_mode=False)
    except click.exceptions.Abort:  # Ctrl-C (click turns a KeyboardInterrupt into Abort)
        click.echo("interrupted", err=True)
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
    except SystemExit as exc:  # sys.exit() inside a user strategy: not evbt's exit code, and no message
        from strategies.registry import user_error

        if debug or (message := user_error(exc)) is None:
            raise
        click.echo(f"error: {message}", err=True)
        return ExitStatus.RUN_FAILED
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
