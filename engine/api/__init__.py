"""What the command line calls: one function per user-facing action, plain data in and out.

``cli.py`` parses options into these calls and prints what they return; nothing here imports click or
prints. Settings that every command shares (cache folder, offline, sample, calendars) travel in ``Settings``;
a call that takes them runs with their exchange calendars current (``settings.in_session``).

``settings`` (Settings, the process calendars), ``data`` (price cache), ``events`` (calendar listing,
validation, ratings), ``runs`` (run, placebo, demo, rerun, references, compare, strategies, saved runs),
``sweeps`` (check, run, heatmap, placebo ranking), ``study``, ``visuals`` (HTML/PNG).
"""

from engine.api.data import (
    cache_entries,
    fetch_prices,
    import_prices,
    price_summary,
    remove_prices,
    verify_cache,
    write_sample_data,
)
from engine.api.events import check_event_types, fetch_ratings, list_events, validate_events_file
from engine.api.runs import (
    build_run_config,
    check_placebo,
    check_tags,
    compare,
    config_from_options,
    execute_run,
    find_saved_runs,
    free_snapshots,
    load_any_report,
    placebo_test,
    prepare_demo,
    remove_saved_runs,
    rerun,
    strategy_table,
)
from engine.api.settings import (
    Settings,
    cached_subset,
    long_lived,
    make_settings,
    parse_day,
    process_calendars,
    tune_process,
)
from engine.api.study import study, study_universe
from engine.api.sweeps import (
    MAX_SWEEP_PLACEBO_POINTS,
    SweepJob,
    check_sweep_placebo,
    finish_sweep,
    prepare_sweep,
    run_sweep,
    sweep_placebo,
)
from engine.api.visuals import (
    Wrote,
    check_visual_paths,
    write_compare_visuals,
    write_outcome_visuals,
    write_run_visuals,
    write_saved_run_visuals,
    write_study_visuals,
)

__all__ = [
    "MAX_SWEEP_PLACEBO_POINTS",
    "Settings",
    "SweepJob",
    "Wrote",
    "build_run_config",
    "cache_entries",
    "cached_subset",
    "check_event_types",
    "check_placebo",
    "check_sweep_placebo",
    "check_tags",
    "check_visual_paths",
    "compare",
    "config_from_options",
    "execute_run",
    "fetch_prices",
    "fetch_ratings",
    "find_saved_runs",
    "finish_sweep",
    "free_snapshots",
    "import_prices",
    "list_events",
    "load_any_report",
    "long_lived",
    "make_settings",
    "parse_day",
    "placebo_test",
    "prepare_demo",
    "prepare_sweep",
    "price_summary",
    "process_calendars",
    "remove_prices",
    "remove_saved_runs",
    "rerun",
    "run_sweep",
    "strategy_table",
    "study",
    "study_universe",
    "sweep_placebo",
    "tune_process",
    "validate_events_file",
    "verify_cache",
    "write_compare_visuals",
    "write_outcome_visuals",
    "write_run_visuals",
    "write_sample_data",
    "write_saved_run_visuals",
    "write_study_visuals",
]
