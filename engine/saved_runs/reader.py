"""Reading saved runs: resolve a run reference to its folder, load its documents, list runs newest first."""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from engine.errors import ConfigError, EvbtWarning
from engine.paths import default_runs_dir
from engine.reporting.models import Report, is_synthetic
from engine.saved_runs.writer import recover


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """One line of ``evbt runs``."""

    run_id: str
    strategy: str
    created_at: str | None
    start: str | None
    end: str | None
    total_return: float | None
    sharpe: float | None
    trades: int
    synthetic: bool
    path: Path
    tags: tuple[str, ...] = ()


def _visible_runs(runs_dir: Path) -> list[Path]:
    if not runs_dir.is_dir():
        if runs_dir.exists():  # `runs ls` said "no saved runs"
            raise ConfigError(f"runs folder {runs_dir} is not a folder (EVBT_RUNS_DIR names the folder of saved runs)")
        return []
    recover(runs_dir)
    return sorted(p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "sweeps")


def _parse_json(path: Path, invalid: str) -> Any:
    """The JSON document at ``path``; a missing or unreadable file is a ConfigError (``{path} {invalid}: ...``)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} {invalid}: {exc}") from None


def _read_report_file(path: Path) -> Report:
    doc = _parse_json(path, "is not a valid evbt report file")
    problem = _report_problem(doc)
    if problem:
        raise ConfigError(f"{path} is not a valid evbt report file: {problem}")
    return doc


_OPTIONAL_KINDS: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("config", dict), ("data", dict), ("events", dict), ("params", dict), ("period", dict), ("orders", list),
    ("universe", list), ("warnings", list), ("strategy", str), ("benchmark", (str, type(None))),
    ("fx_source", (str, type(None))))
# numbers the text report formats (a string there was an internal "Unknown format code 'f'")
_TRADE_NUMBERS = ("entry_price", "exit_price", "size", "fees", "entry_fees", "exit_fees", "pnl", "ret",
                  "benchmark_return", "entry_value", "fx_entry", "fx_exit", "holding_sessions")
_ORDER_NUMBERS = ("size", "price", "fees")


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _report_problem(doc: Any) -> str | None:
    """What makes ``doc`` unusable as a report (None: fine). Beside the required keys, the shapes the renderings
    and comparisons read are checked, so a hand-edited or foreign report.json is an input error naming the field,
    not an internal error in the middle of printing it."""
    if not isinstance(doc, dict):
        return "not a JSON object"
    for key, kind in (("schema_version", int), ("run_id", str), ("metrics", dict), ("trades", list)):
        if not isinstance(doc.get(key), kind):
            return f"missing or invalid '{key}'"
    for key, kinds in _OPTIONAL_KINDS:
        if key in doc and not isinstance(doc[key], kinds):
            return f"'{key}' is {type(doc[key]).__name__}, not {getattr(kinds, '__name__', 'text or null')}"
    for name, value in doc["metrics"].items():
        if not _is_number(value):
            return f"metric '{name}' is {value!r}, not a number or null"
    for rows, numbers, label in ((doc["trades"], _TRADE_NUMBERS, "trade"),
                                 (doc.get("orders") or [], _ORDER_NUMBERS, "order")):
        for n, row in enumerate(rows, 1):
            if not isinstance(row, dict):
                return f"{label} {n} is {type(row).__name__}, not an object"
            bad = next((k for k in numbers if not _is_number(row.get(k))), None)
            if bad is not None:
                return f"{label} {n}: '{bad}' is {row[bad]!r}, not a number or null"
    return None


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.endswith(".json") or text in (".", "..")


def resolve_run(run_or_path: str | Path, runs_dir: Path | None = None) -> Path:
    """The run folder for a run id, a unique id prefix, or a run folder path; ConfigError otherwise."""
    candidate = Path(run_or_path)
    if candidate.is_dir():
        if not (candidate / "report.json").is_file():
            raise ConfigError(f"{candidate} is not a run folder (no report.json)")
        return candidate
    if candidate.is_file():
        return candidate.parent
    text = str(run_or_path)
    if isinstance(run_or_path, Path) or _looks_like_path(text):
        raise ConfigError(f"{text} not found")
    root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    runs = _visible_runs(root)
    exact = [p for p in runs if p.name == text]
    if exact:
        return exact[0]
    matches = [p for p in runs if p.name.startswith(text)]
    if not matches:
        raise ConfigError(f"run '{text}' not found in {root} (list them with `evbt runs`)")
    if len(matches) > 1:
        names = ", ".join(p.name for p in matches[:10])
        raise ConfigError(f"run id prefix '{text}' is ambiguous: matches {names}")
    return matches[0]


def load_report(run_or_path: str | Path, runs_dir: Path | None = None) -> Report:
    """A report by run id, unique id prefix, run folder or report.json path (validated)."""
    candidate = Path(run_or_path)
    if candidate.is_file():
        return _read_report_file(candidate)
    return _read_report_file(resolve_run(run_or_path, runs_dir) / "report.json")


def _load_json(folder: Path, name: str) -> dict[str, Any]:
    path = folder / name
    doc = _parse_json(path, "is not valid JSON")
    if not isinstance(doc, dict):
        raise ConfigError(f"{path} is not a JSON object")
    return doc


def load_manifest(run_or_path: str | Path, runs_dir: Path | None = None) -> dict[str, Any]:
    """manifest.json of a run (same lookup rules as ``load_report``)."""
    return _load_json(resolve_run(run_or_path, runs_dir), "manifest.json")


def load_config(run_or_path: str | Path, runs_dir: Path | None = None) -> dict[str, Any]:
    """config.json of a run: ``{"run_id", "strategy", "params", "config"}`` (what ``evbt rerun`` needs)."""
    return _load_json(resolve_run(run_or_path, runs_dir), "config.json")


def load_equity(run_or_path: str | Path, runs_dir: Path | None = None) -> pd.DataFrame:
    """equity.parquet of a run as a frame indexed by date."""
    path = resolve_run(run_or_path, runs_dir) / "equity.parquet"
    if not path.is_file():
        raise ConfigError(f"{path} not found")
    return pq.read_table(path).to_pandas().set_index("date")


def _summary(folder: Path) -> RunSummary:
    report = _read_report_file(folder / "report.json")
    try:
        manifest = _load_json(folder, "manifest.json")
    except ConfigError:
        manifest = {}
    created = manifest.get("created_at")
    metrics = report["metrics"]
    period: Mapping[str, Any] = report.get("period") or {}
    return RunSummary(
        run_id=report["run_id"],
        strategy=str(report.get("strategy")),
        created_at=created,
        start=period.get("start"),
        end=period.get("end"),
        total_return=metrics.get("total_return"),
        sharpe=metrics.get("sharpe"),
        trades=int(metrics.get("trade_count") or 0),
        synthetic=is_synthetic(report),
        path=folder,
        tags=tuple(str(t) for t in manifest.get("tags") or ()),
    )


def list_runs(runs_dir: Path | None = None) -> list[RunSummary]:
    """Complete runs, newest first (by creation time, then id); broken folders are skipped with a warning."""
    root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    out: list[RunSummary] = []
    for folder in _visible_runs(root):
        try:
            out.append(_summary(folder))
        except ConfigError as exc:
            warnings.warn(f"skipping run folder {folder.name}: {exc}", EvbtWarning, stacklevel=2)
    return sorted(out, key=lambda s: (s.created_at or "", s.run_id), reverse=True)
