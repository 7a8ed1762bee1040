# ruff: noqa: E501  (help texts are kept verbatim, long lines included)
"""The ``--help`` text of every evbt command, keyed by its command line (``"data fetch"``; ``"evbt"`` is the
group itself); ``cli.py`` attaches them to its commands. Each text is what click prints (a ``\b`` line keeps the
line breaks of the paragraph after it) and ends with an example (tests/test_cli_help.py)."""

HELP: dict[str, str] = {
    "evbt": """evbt: event-driven backtests of dated news on cached daily prices.

    
    Example:
      evbt demo                          # synthetic offline sample, seed scenario
      evbt data import prices/BABA.csv   # real data from a Yahoo CSV
      evbt run reassurance -p hold=10    # backtest on the cache
    """,
    "data": """Manage the parquet price cache.

    
    Example:
      evbt data import prices/BABA.csv prices/HSI.csv
      evbt data ls
    """,
    "data fetch": """Download daily prices from Yahoo Finance into the cache (only the missing part).

    
    Example:
      evbt data fetch BABA 700 ^HSI --start 2021-01-01 --end 2022-12-31
    """,
    "data import": """Import Yahoo Finance CSV files (Date,Open,High,Low,Close,Adj Close,Volume).

    Every file is checked before anything is written. HSI.csv is stored as ^HSI.

    
    Example:
      evbt data import prices/BABA.csv prices/0700.HK.csv
      evbt data import tencent.csv --symbol 700
    """,
    "data ls": """List cached symbols with range, rows, source, fetch time and file size.

    
    Example:
      evbt data ls --json
    """,
    "data verify": """Re-validate cache files; exit 1 if any is damaged or invalid.

    
    Example:
      evbt data verify            # every file
      evbt data verify BABA 700
    """,
    "data rm": """Remove symbols from the cache (nothing is removed if one is not cached).

    
    Example:
      evbt data rm BABA 0700.HK
    """,
    "data sample": """Write the SYNTHETIC offline sample (not real prices) into the cache.

    With the global --sample flag this is data_cache/sample. Real prices of a sample symbol in the cache are
    never replaced: the command then stops (exit 2) and writes nothing.

    
    Example:
      evbt --sample data sample && evbt --sample data ls
    """,
    "data show": """Summarise one symbol's prices: first/last close, return, min/max, rows, stale bars.

    
    Example:
      evbt data show 9988.HK --start 2022-03-01 --end 2022-03-31
    """,
    "events": """The event calendar: list, validate user files, fetch analyst ratings.

    
    Example:
      evbt events ls --type official_reassurance --symbol BABA --symbol 0700.HK
    """,
    "events ls": """List the merged event calendar with the instant each event is known (UTC).

    
    Example:
      evbt events ls --from 2022-03-01 --to 2022-05-31 --symbol BABA --symbol 9988.HK --fill close
    """,
    "events validate": """Check a user event CSV; print every problem with its line number (exit 2 if any).

    
    Example:
      evbt events validate my_events.csv
    """,
    "events fetch-ratings": """Fetch analyst upgrades/downgrades from Yahoo and cache them (cache/ratings/SYMBOL.parquet).

    
    Example:
      evbt events fetch-ratings BABA PDD 0700.HK
    """,
    "run": """Backtest STRATEGY (a name, or your own path/to/rule.py) on cached prices; print metrics and trades.

    
    Examples:
      evbt run reassurance                           # the seed scenario
      evbt run my_rules/below_average.py -p hold=10  # one Strategy subclass in your own file
      evbt run reassurance -p hold=10 --fill close
      evbt run analyst_follow -p firms=JPMorgan --json
      evbt run event_hold -p types=policy_support --symbols BABA,0700.HK
      evbt run reassurance --placebo 1000 --placebo-seed 7 --html run.html
    """,
    "demo": """Run the seed scenario offline on the bundled SYNTHETIC sample (no network needed).

    Writes the sample into <cache-dir>/sample if it is not there, then runs `reassurance`
    on the sample's symbols. The report is labelled SYNTHETIC.

    
    Example:
      evbt demo
    """,
    "strategies": """List strategies (built-ins and your folders') and their parameters with defaults.

    
    Examples:
      evbt strategies
      evbt --strategies-dir ~/rules strategies
    """,
    "runs": """Saved runs (folder: $EVBT_RUNS_DIR, default ./runs). Alone: the list, newest first.

    
    Examples:
      evbt runs                       # = evbt runs ls
      evbt runs ls --strategy reassurance --tag baseline --json
      evbt runs show SWEEP_ID:2
      evbt runs rm RUN && evbt runs gc
    """,
    "runs ls": """List saved runs, newest first.

    
    Example:
      evbt runs ls --since 2026-01-01 --strategy reassurance
    """,
    "runs rm": """Delete saved runs and sweeps (ids or unique prefixes; nothing is removed if one is not found).

    A sweep id removes the whole sweep folder (refused while a sweep runs in it). Their data snapshots are freed
    by `evbt runs gc`.

    
    Example:
      evbt runs rm reassurance-3f2a
      evbt runs rm sweep-reassurance-fb07
    """,
    "runs gc": """Free the data snapshots that no saved run or sweep in the runs folder refers to.

    
    Example:
      evbt runs gc
    """,
    "runs show": """Show a saved run (id, unique id prefix, folder, report.json path, SWEEP_ID or SWEEP_ID:RANK).

    
    Example:
      evbt runs show reassurance-3f2a
    """,
    "rerun": """Run a saved run again and say whether it reproduced exactly, or what changed.

    By default it runs on the data versions the run read (kept in the cache's snapshots), so a later
    `evbt data fetch` or `import` does not change the result. RUN is anything `evbt runs show` accepts.

    
    Examples:
      evbt rerun reassurance-3f2a
      evbt rerun reassurance-3f2a --current-data
    """,
    "compare": """Compare saved runs (ids, prefixes, folders, report.json files, SWEEP_ID or SWEEP_ID:RANK) side by side.

    Metrics with deltas against the first, parameter differences, and which event trades
    one run made and the other did not.

    
    Example:
      evbt compare reassurance-3f2a reassurance-9b1c
    """,
    "report": """Visual report of a saved run (id, unique id prefix, folder or report.json path).

    Without --html/--plot it prints the text report.

    
    Examples:
      evbt report reassurance-3f2a --html report.html
      evbt report runs/reassurance-3f2a --plot equity.png
    """,
    "study": """Event study per event type: abnormal returns, CAR per event, AAR/CAAR with parametric (cross-sectional t,
    BMP, Kolari-Pynnonen) and non-parametric (Corrado rank, generalised sign, Wilcoxon) tests.

    Day 0 is the backtest's fill bar for each event's entry session on the symbol's exchange (no lookahead).
    Sector events also apply to any index or fund named with --symbol. Events whose windows lack data are
    listed as skipped, one line per reason.

    
    Examples:
      evbt study --type official_reassurance
      evbt study --type official_reassurance --symbol ^HSTECH --symbol BABA --sector-benchmark KWEB
      evbt study --type analyst_upgrade --symbol BABA --window -1:5 --model mean --json
      evbt study --type policy_support --html study.html --plot caar.png
    """,
    "sweep": """Backtest STRATEGY over a parameter grid: ranked table, best point, saved sweep folder.

    Points already computed for the same configuration, data and calendar are reused (an interrupted
    sweep continues; a widened grid computes only the new points).

    
    Examples:
      evbt sweep reassurance -g hold=1..30 -g fill=open,close
      evbt sweep reassurance -g hold=1..30:5 -g size=0.02,0.05 --metric total_return --top 5
      evbt sweep reassurance -g hold=1..20 --split 2022-07-01
      evbt sweep reassurance -g hold=1..20 --walk-forward 12:3 --heatmap hold.png
      evbt sweep reassurance -g hold=1..30 --cluster local
    """,
}
