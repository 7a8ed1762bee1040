"""The `evbt run` command a sweep prints for its best point gives back the point's whole configuration (so the
same run id): every run option that can differ from the default is spelled out, none is dropped."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shlex

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
