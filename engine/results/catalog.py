"""The runs folder as a catalogue: save a run with its data versions, list with filters, remove, and free the
data snapshots nobody refers to."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import ConfigError, DataError
from engine.prices.snapshots import GcResult, SnapshotStore
from engine.prices.store import PriceStore
from engine.saved_runs import RunSummary, build_manifest, default_runs_dir, list_runs, resolve_run, save_run
from engine.saved_runs.ids import run_inputs

SWEEPS = "sweeps"


def save_outcome(outcome: Any, store: PriceStore, runs_dir: Path | None = None, tags: Sequence[str] = (),
                 repo_dir: Path | None = None) -> Path:
    """Save a finished ``engine.backtest.Outcome`` and keep the data versions it read (for exact reruns)."""
    manifest = build_manifest(run_id=outcome.report["run_id"], data_fingerprints=outcome.fingerprints,
                              calendar_hash=outcome.calendar_hash, repo_dir=repo_dir,
                              inputs=run_inputs(outcome.config.strategy))
    if tags:
        manifest["tags"] = list(dict.fromkeys(tags))
    path = save_run(runs_dir or default_runs_dir(), outcome.report, outcome.result, manifest)
    SnapshotStore.for_store(store).keep(outcome.fingerprints)
    return path


@dataclass(frozen=True)
class RunFilter:
    strategy: str | None = None
    since: dt.date | None = None  # created on or after
    until: dt.date | None = None  # created on or before
    tag: str | None = None


def _created_day(summary: RunSummary) -> dt.date | None:
    try:
        return dt.datetime.fromisoformat(summary.created_at or "").date()
    except ValueError:
        return None


def _is_strategy(summary: RunSummary, wanted: str) -> bool:
    """``--strategy`` matches a built-in's name, and a user rule by its file: its runs keep the file's absolute
    path as their strategy (`--strategy my_rule` matched none of them), so the file's path or its name with or
    without ``.py`` (``my_rule`` for ``rules/my_rule.py``) match too."""
    if summary.strategy == wanted:
        return True
    if not summary.strategy.endswith(".py"):
        return False
    file = Path(summary.strategy)
    return wanted.removesuffix(".py") == file.stem or Path(wanted).expanduser().resolve() == file


def find_runs(filters: RunFilter = RunFilter(), runs_dir: Path | None = None) -> list[RunSummary]:
    """Saved runs, newest first, that pass every given filter."""
    out = []
    for s in list_runs(runs_dir):
        day = _created_day(s)
        if filters.strategy and not _is_strategy(s, filters.strategy):
            continue
        if filters.tag and filters.tag not in s.tags:
            continue
        if filters.since and (day is None or day < filters.since):
            continue
        if filters.until and (day is None or day > filters.until):
            continue
        out.append(s)
    return out


def summary_json(s: RunSummary) -> dict[str, Any]:
    return {"run_id": s.run_id, "strategy": s.strategy, "created_at": s.created_at, "start": s.start,
            "end": s.end, "total_return": s.total_return, "sharpe": s.sharpe, "trades": s.trades,
            "synthetic": s.synthetic, "tags": list(s.tags), "path": str(s.path)}


def remove_runs(refs: Sequence[str], runs_dir: Path | None = None) -> list[str]:
    """Delete saved runs and sweeps (every reference is resolved before anything is removed); returns their ids.

    A sweep (``sweep-...``, its folder under ``<runs>/sweeps/``) is removed whole, unless a sweep is running in it;
    a sweep point (``sweep-...:N``) is not a thing of its own and is refused."""
    from engine.results.resolve import find_sweep
    from engine.sweeps.storage import remove_sweep_folder

    targets: list[tuple[str, Path]] = []
    for ref in refs:
        sweep = find_sweep(ref, runs_dir) if str(ref).startswith("sweep-") else None
        if sweep is not None:
            if ":" in str(ref):
                raise ConfigError(f"{ref} is a point of sweep {sweep.name}, not something to remove on its own: "
                                  f"`evbt runs rm {sweep.name}` removes the whole sweep")
            targets.append(("sweep", sweep))
            continue
        folder = resolve_run(ref, runs_dir)
        if not (folder / "report.json").is_file() or folder.parent.name == SWEEPS:
            raise ConfigError(f"{folder} is not a saved run folder")
        targets.append(("run", folder))
    removed = []
    for kind, folder in dict.fromkeys(targets):
        if kind == "sweep":
            remove_sweep_folder(folder)
        else:
            try:
                shutil.rmtree(folder)
            except OSError as exc:
                raise DataError(f"cannot remove {folder}: {exc.strerror or exc}") from exc
        removed.append(folder.name)
    return removed


def referenced_versions(runs_dir: Path | None = None) -> set[str]:
    """Content hashes that saved runs and sweeps refer to (their manifests' data fingerprints)."""
    root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    folders = [*root.glob("*/"), *root.glob(f"{SWEEPS}/*/")] if root.is_dir() else []
    out: set[str] = set()
    for folder in folders:
        if folder.name.startswith(".") or (folder.name == SWEEPS and folder.parent == root):
            continue
        out.update(_folder_versions(folder))
    # a kill between the rename of a run folder and its hidden old copy: keep what either refers to
    for path in root.glob(".*/manifest.json") if root.is_dir() else []:
        try:
            out.update(str(v) for v in (json.loads(path.read_text(encoding="utf-8")).get("data") or {}).values())
        except (OSError, ValueError):
            continue
    return out


def _folder_versions(folder: Path) -> set[str]:
    """The data versions one run or sweep folder refers to: its manifest's fingerprints, else (a run folder) its
    report's, which are what `evbt rerun` reads. A folder with neither file refers to nothing (a sweep killed
    before its manifest). When a manifest or report exists but neither gives the fingerprints, gc cannot know what
    the folder needs: DataError, so nothing is freed (a damaged manifest used to count as "refers to nothing", and
    gc deleted the only copy of the data versions its run had read)."""
    problems: list[str] = []
    manifest, report = folder / "manifest.json", folder / "report.json"
    if not manifest.is_file() and not report.is_file():
        return set()
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        data = doc.get("data") if isinstance(doc, dict) else None
        if isinstance(data, dict):
            return {str(v) for v in data.values()}
        problems.append(f"{manifest.name} has no 'data' fingerprints")
    except (OSError, ValueError) as exc:
        problems.append(f"{manifest.name}: {exc.strerror if isinstance(exc, OSError) else exc}")
    try:
        doc = json.loads(report.read_text(encoding="utf-8"))
        symbols = ((doc.get("data") or {}).get("symbols") if isinstance(doc, dict) else None) or {}
        found = {str(info["fingerprint"]) for info in symbols.values()
                 if isinstance(info, dict) and info.get("fingerprint")} if isinstance(symbols, dict) else set()
        if found:
            return found
        problems.append(f"{report.name} lists no data fingerprints")
    except (OSError, ValueError, AttributeError) as exc:
        problems.append(f"{report.name}: {exc.strerror if isinstance(exc, OSError) else exc}")
    raise DataError(f"cannot tell which data versions {folder} refers to ({'; '.join(problems)}); nothing was "
                    f"freed: repair that folder or delete it (`evbt runs rm {folder.name}` for a run), then run "
                    f"`evbt runs gc` again")


def gc(store: PriceStore, runs_dir: Path | None = None) -> GcResult:
    """Free the data snapshots of ``store`` that no saved run or sweep in ``runs_dir`` refers to.

    A runs folder that does not exist (a mistyped ``EVBT_RUNS_DIR``, another working folder) or is not a folder
    refers to nothing, so every snapshot would go: with snapshots to free that is a ConfigError, nothing freed."""
    root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    snapshots = SnapshotStore.for_store(store)
    if not root.is_dir() and snapshots.versions():
        what = "is not a folder" if root.exists() else "does not exist"
        raise ConfigError(f"runs folder {root} {what}: `evbt runs gc` frees the data versions no run or sweep of "
                          f"that folder refers to, so it would free all {len(snapshots.versions())}; nothing was "
                          f"freed (set EVBT_RUNS_DIR to the folder holding your runs, or run evbt from the folder "
                          f"holding runs/)")
    return snapshots.gc(lambda: referenced_versions(root))  # read under the snapshot lock (no keep in between)
