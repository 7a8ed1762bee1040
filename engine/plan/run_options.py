"""The command-line options of a run configuration (``evbt run`` and ``evbt sweep`` share them), as plain data:
cli.py declares one click option per entry; ``make_run_config`` reads the values by their ``dest`` names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunOption:
    """``decls``: option names and the value's name; ``kind``: text, flag (unset = None), switch (--x/--no-x),
    choice (one of ``choices``), pairs (-p KEY=VALUE, repeatable), toml (a TOML file), file (a path)."""

    decls: tuple[str, ...]
    help: str
    kind: str = "text"
    choices: tuple[str, ...] = ()


RUN_OPTIONS: tuple[RunOption, ...] = (
    RunOption(("-p", "--param", "params"), "Strategy parameter (repeatable), e.g. -p hold=10.", "pairs"),
    RunOption(("--config", "config_file"), "TOML run configuration; command-line options override it.", "toml"),
    RunOption(("--symbols",), "Universe, comma separated (default: the strategy's universe)."),
    RunOption(("--start",), "First date, YYYY-MM-DD (default 2021-01-01)."),
    RunOption(("--end",), "Last date, YYYY-MM-DD (default 2023-06-30)."),
    RunOption(("--events",), "Extra event CSV merged with the curated calendar.", "file"),
    RunOption(("--replace-events", "--replace", "replace_events"), "Use only --events, not the curated calendar.",
              "flag"),
    RunOption(("--cash",), "Starting cash in the base currency (default 1000000)."),
    RunOption(("--commission",), "Commission as a fraction of value (default 0.001)."),
    RunOption(("--min-commission",), "Minimum commission per order in the base currency (default 0)."),
    RunOption(("--slippage-bps",), "Slippage in basis points per fill (default 5)."),
    RunOption(("--stamp-duty",), "HK stamp duty rate per side on every date (default: the dated rates of fees.csv)."),
    RunOption(("--venue-fees/--no-venue-fees", "venue_fees"), "Charge the venue's dated taxes and levies (default: "
              "yes).", "switch"),
    RunOption(("--base-currency",), "Currency of cash, fees and equity (default USD; e.g. JPY, HKD, GBP, EUR)."),
    RunOption(("--fill",), "Fill point (default open).", "choice", ("open", "close")),
    RunOption(("--benchmark",), "Benchmark symbol (default KWEB; 'none' to disable)."),
    RunOption(("--sizing",), "Position sizing: percent of equity, fixed cash, or equal split per event (default "
              "percent).", "choice", ("percent", "cash", "equal")),
    RunOption(("--size",), "Fraction of equity (percent/equal; default 0.05) or base-currency amount (cash)."),
    RunOption(("--overlap",), "A new signal on a held symbol (default extend).", "choice", ("extend", "ignore", "add")),
    RunOption(("--allow-short",), "Allow short entries.", "flag"),
    RunOption(("--allow-margin",), "Allow cash to go negative.", "flag"),
    RunOption(("--max-positions",), "Portfolio limit: open positions at once; entries beyond are skipped (reported)."),
    RunOption(("--max-gross",), "Portfolio limit: gross position value / equity after an entry (e.g. 0.5)."),
    RunOption(("--max-weight",), "Portfolio limit: one symbol's position value / equity after an entry (e.g. 0.1)."),
    RunOption(("--ratings",), "Merge yfinance analyst rating changes for the universe (see `evbt events "
              "fetch-ratings`).", "flag"),
)
