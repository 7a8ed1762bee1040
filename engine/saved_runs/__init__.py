"""Saved runs: one folder per run under the runs directory, written atomically; list, load, diff.

``ids`` (run ids), ``manifest`` (reproducibility facts and their diff), ``writer`` (the atomic run folder),
``reader`` (resolve a reference, load documents, list). Names starting with a dot are never listed.
"""

from engine.paths import default_runs_dir
from engine.saved_runs.ids import check_run_id, make_run_id, strategy_slug
from engine.saved_runs.manifest import (
    MANIFEST_VERSION,
    TRACKED_PACKAGES,
    build_manifest,
    diff_manifests,
    git_revision,
    package_versions,
)
from engine.saved_runs.reader import (
    RunSummary,
    list_runs,
    load_config,
    load_equity,
    load_manifest,
    load_report,
    resolve_run,
)
from engine.saved_runs.writer import RUN_FILES, equity_table, recover, save_run, trades_table

__all__ = ["MANIFEST_VERSION", "RUN_FILES", "TRACKED_PACKAGES", "RunSummary", "build_manifest", "check_run_id",
           "default_runs_dir", "diff_manifests", "equity_table", "git_revision", "list_runs", "load_config",
           "load_equity", "load_manifest", "load_report", "make_run_id", "package_versions", "recover",
           "resolve_run", "save_run", "strategy_slug", "trades_table"]
