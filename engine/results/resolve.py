"""One resolver for every way to name a result: run id, unique run id prefix, run folder, report file,
sweep id (its best point), ``SWEEP_ID:RANK``, a sweep folder, or the run id of a sweep point whose report
the sweep kept. ``evbt runs show``, ``report``, ``compare`` and ``rerun`` all use ``resolve``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from engine.errors import ConfigError
from engine.reporting.models import Report
from engine.saved_runs import default_runs_dir, load_equity, load_report, resolve_run

SWEEPS = "sweeps"


@dataclass
class Resolved:
    """What a reference names. ``kind``: run | report-file | sweep-point."""

    ref: str
    kind: str
    report: Report
    folder: Path | None = None  # the run folder (runs only)
    sweep: Path | None = None  # the sweep folder (sweep points)

    @property
    def run_id(self) -> str:
        return self.report["run_id"]

    def equity(self) -> pd.DataFrame | None:
        """The saved equity curve (runs only; sweep points keep none)."""
        return load_equity(self.folder) if self.kind == "run" and self.folder is not None else None

    def plain_report(self) -> Report:
        """The report as ``evbt run`` writes it (without the sweep's label)."""
        plain = self.report.copy()
        plain.pop("sweep", None)
        return plain


def _root(runs_dir: Path | None) -> Path:
    return Path(runs_dir) if runs_dir is not None else default_runs_dir()


def find_sweep(ref: str, runs_dir: Path | None = None) -> Path | None:
    """A sweep folder by id, unique id prefix or path (``:RANK`` ignored); None when ``ref`` is not a sweep."""
    name, _, _ = str(ref).partition(":")
    path = Path(name)
    if path.is_dir() and (path / "manifest.json").is_file() and (path / "points").is_dir():
        return path
    root = _root(runs_dir) / SWEEPS
    if not root.is_dir() or not name.startswith("sweep-"):
        return None
    matches = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(name))
    exact = [p for p in matches if p.name == name]
    if exact:
        return exact[0]
    if len(matches) > 1:
        raise ConfigError(f"sweep id prefix {name!r} is ambiguous: {', '.join(p.name for p in matches[:10])}")
    return matches[0] if matches else None


def _json(path: Path) -> Any:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} not found (the sweep did not finish; run it again)") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path} is not a JSON object")
    return doc


def _sweep_point(ref: str, folder: Path) -> Resolved:
    _, _, rank_text = ref.partition(":")
    try:
        rank = int(rank_text or 1)
    except ValueError:
        raise ConfigError(f"{ref}: expected SWEEP_ID:RANK with an integer rank") from None
    summary = _json(folder / "summary.json")
    ranking = summary.get("ranking") or []
    if rank == 1 and (folder / "report.json").is_file():
        return Resolved(ref, "sweep-point", _json(folder / "report.json"), sweep=folder)
    if not ranking:
        raise ConfigError(f"{ref}: the sweep {folder.name} has no ranking (walk-forward: use the sweep id)")
    if not 1 <= rank <= len(ranking):
        raise ConfigError(f"{ref}: rank must be between 1 and {len(ranking)}")
    key = ranking[rank - 1]["key"]
    path = folder / "reports" / f"{key}.json"
    if not path.is_file():
        kept = len(list((folder / "reports").glob("*.json"))) if (folder / "reports").is_dir() else 0
        raise ConfigError(f"{ref}: the sweep kept full reports of its top {kept} points only; run the sweep "
                          f"again with --top {rank} to keep this one")
    report = _json(path)
    report["sweep"] = {"sweep_id": folder.name, "rank": rank, "metric": summary.get("metric")}
    return Resolved(ref, "sweep-point", report, sweep=folder)


def _kept_point(run_id: str, runs_dir: Path | None) -> Resolved | None:
    root = _root(runs_dir) / SWEEPS
    if not root.is_dir() or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", run_id):
        return None
    for path in sorted(root.glob(f"*/reports/{run_id}.json")):
        return Resolved(run_id, "sweep-point", _json(path), sweep=path.parent.parent)
    return None


def resolve(ref: str | Path, runs_dir: Path | None = None) -> Resolved:
    """The result ``ref`` names; ConfigError (exit 2) with what was tried when nothing matches."""
    text = str(ref)
    sweep = find_sweep(text, runs_dir)
    if sweep is not None:
        return _sweep_point(text, sweep)
    path = Path(text)
    if path.is_file():
        return Resolved(text, "report-file", load_report(path))
    try:
        folder = resolve_run(text, runs_dir)
    except ConfigError:
        kept = _kept_point(text, runs_dir)
        if kept is not None:
            return kept
        raise
    return Resolved(text, "run", load_report(folder), folder=folder)
