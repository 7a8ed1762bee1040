"""The `evbt run` command a sweep prints for its best point gives back the point's whole configuration (so the
same run id): every run option that can differ from the default is spelled out, none is dropped."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

import cli
from engine.market.costs import CostModel
from engine.plan.config import RunConfig, make_run_config
from engine.plan.run_options import RUN_OPTIONS
from engine.results.reproduce import reproduce_command
from strategies.registry import get_strategy

# a value unlike the default for every field a run option sets (params and events are covered by other tests)
NON_DEFAULT = {
    "symbols": ("BABA", "0700.HK"), "start": dt.date(2021, 3, 1), "end": dt.date(2022, 9, 30), "cash": 250000.0,
    "fill": "close", "benchmark": "none", "sizing": "equal", "size": 0.2, "overlap": "add",
    "allow_short": True, "allow_margin": True, "replace_events": True, "ratings": True, "base_currency": "HKD",
    "max_positions": 3, "max_gross": 0.5, "max_weight": 0.1,
    "costs": CostModel(commission_pct=0.002, min_commission=1.5, slippage_bps=7.0, stamp_duty_rate=0.001,
                       venue_fees=False),
}


def _parsed(command: str) -> RunConfig:
    """The configuration `evbt run` builds from the printed command line (click parses it as the CLI does)."""
    argv = shlex.split(command)
    assert argv[:2] == ["evbt", "run"]
    ctx = cli.run_cmd.make_context("run", argv[2:])
    options = {o.decls[-1].lstrip("-").replace("-", "_") if len(o.decls) == 1 else o.decls[-1]: None
               for o in RUN_OPTIONS}
    options.update({k: v for k, v in ctx.params.items() if k in options})
    params, config_file = options.pop("params") or (), options.pop("config_file")
    strategy = ctx.params["strategy"]
    cls = get_strategy(strategy)
    return make_run_config(strategy, tuple(params), options, config_file, tuple(cls.default_symbols), cls.Params)


def _default() -> RunConfig:
    cls = get_strategy("reassurance")
    return make_run_config("reassurance", ("hold=7",), {}, None, tuple(cls.default_symbols), cls.Params)


@pytest.mark.parametrize("field", sorted(NON_DEFAULT))
def test_each_option_survives_the_printed_command(field: str) -> None:
    base = _default()
    config = dataclasses.replace(base, **{field: NON_DEFAULT[field]})
    if field == "benchmark":
        config = dataclasses.replace(config, benchmark=None)
    assert config != base
    command = reproduce_command(config)
    assert _parsed(command) == config, command


def test_all_options_at_once() -> None:
    values = dict(NON_DEFAULT, benchmark=None)
    config = dataclasses.replace(_default(), **values)
    command = reproduce_command(config)
    assert "--max-positions 3" in command and "--no-venue-fees" in command and "--base-currency HKD" in command
    assert _parsed(command) == config


def test_a_symbol_without_bars_in_the_period_is_left_out_by_run_as_by_sweep(
        run_cli: Callable[..., tuple[int, str, str]], sample_cache: Path) -> None:
    """A cached symbol with no bar in the period (listed later, or its data ends before) is left out with a
    warning by `evbt sweep`; `evbt run` stopped with exit 2 ("no cached prices in ..."), so the command a sweep
    printed for its best point did not run, let alone reproduce the printed run id."""
    import json

    from engine.prices.store import PriceStore

    store = PriceStore(sample_cache)
    late = store.read_all("JD").loc["2022-06-01":]  # a listing that starts after the period below
    store.write("LATE", late, "csv", "raw OHLC")
    period = ("--symbols", "BABA,LATE", "--end", "2022-03-31")
    code, out, err = run_cli("--offline", "sweep", "reassurance", *period, "-g", "hold=2,3", "--quiet", "--json",
                             "--workers", "1")
    assert code == 0, err
    best = json.loads(out)["ranking"][0]
    assert "LATE: no price bars between 2021-01-01 and 2022-03-31; left out" in err
    argv = shlex.split(best["command"])
    assert argv[:2] == ["evbt", "run"]
    code, out, err = run_cli("--offline", *argv[1:], "--json", "--no-save")
    assert code == 0, err
    assert "LATE: no price bars between 2021-01-01 and 2022-03-31; left out" in err
    assert json.loads(out)["run_id"] == best["key"]
    # a symbol the cache does not hold at all is still an error naming it
    code, _, err = run_cli("--offline", "run", "reassurance", "--symbols", "BABA,NOSUCH", "--no-save")
    assert code == 2 and "NOSUCH" in err and "not in the cache" in err


def test_sweep_offline_on_a_partial_cache_errors_as_run_does(run_cli: Callable[..., tuple[int, str, str]],
                                                             sample_cache: Path) -> None:
    """A fetched (yfinance) file that does not cover a sweep's period offline: `evbt run` stops naming the symbol
    and dates; `evbt sweep` left it out with a false "no price bars between ..." warning and swept the rest. Its
    history pad before the first window is not required (as a run's warm-up): a period the file covers sweeps
    and the best point's run id is `evbt run`'s."""
    import json

    from engine.prices.store import PriceStore

    store = PriceStore(sample_cache)
    store.write("JD", store.read_all("JD").loc["2022-01-01":], "yfinance", "raw OHLC")
    code, out, err = run_cli("--offline", "sweep", "reassurance", "--symbols", "BABA,JD", "--end", "2022-06-30",
                             "-g", "hold=1,2", "--quiet", "--workers", "1")
    assert code == 2, (out, err)
    assert "error: JD: prices for 2021-01-01 .. 2022-06-30 are not in the cache" in err
    assert "left out" not in err
    period = ("--symbols", "BABA,JD", "--start", "2022-01-18", "--end", "2022-06-30")
    code, out, err = run_cli("--offline", "sweep", "reassurance", *period, "-g", "hold=1,2", "--quiet", "--json",
                             "--workers", "1")
    assert code == 0, err
    best = json.loads(out)["ranking"][0]
    code, out, err = run_cli("--offline", *shlex.split(best["command"])[1:], "--json", "--no-save")
    assert code == 0, err
    assert json.loads(out)["run_id"] == best["key"]
