"""Saved runs: one folder per run under the runs directory, written atomically; list, load, diff.

Layout (docs/report-schema.md): ``<runs>/<run_id>/`` holds config.json, manifest.json, report.json,
equity.parquet and trades.parquet. A run is written into ``<runs>/.tmp-<id>-<pid>/`` and renamed into
place, so a killed process leaves either the complete run or none. Names starting with a dot are never
listed. JSON and parquet only (no pickle).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import warnings
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from engine.atomic import pid_alive
from engine.errors import ConfigError, DataError, EvbtWarning
from engine.execution.records import RunResult, TradeRecord
from engine.paths import default_runs_dir
from engine.reporting.report import dumps_report, to_jsonable, trades_to_frame

MANIFEST_VERSION = 1
RUN_FILES = ("config.json", "manifest.json", "report.json", "equity.parquet", "trades.parquet")
TRACKED_PACKAGES = ("evbt", "backtrader", "pandas", "numpy", "pyarrow", "yfinance")
GIT_TIMEOUT_S = 5.0
_ID_HASH_LEN = 12
_PYARROW_TYPES = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}


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


# ---------------------------------------------------------------- ids and manifests


def strategy_slug(text: str) -> str:
    """The run id prefix of a strategy reference (a user strategy file: its stem, not its folders)."""
    if text.endswith(".py"):
        text = Path(text).stem
    return _slug(text)


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "run"


def make_run_id(
    strategy: str,
    params: Mapping[str, Any],
    config: Mapping[str, Any],
    fingerprints: Mapping[str, str],
    calendar_hash: str | None,
) -> str:
    """``<strategy-slug>-<12 hex>``: sha256 of the canonical JSON of everything that determines the run.

    No date inside: the same configuration on the same data always gets the same id (= the same run).
    """
    payload = {
        "strategy": strategy,
        "params": params,
        "config": config,
        "data": dict(fingerprints),
        "calendar_hash": calendar_hash,
    }
    text = json.dumps(to_jsonable(payload), sort_keys=True, separators=(",", ":"))
    return f"{strategy_slug(strategy)}-{hashlib.sha256(text.encode()).hexdigest()[:_ID_HASH_LEN]}"


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape a result (``None`` if not installed)."""
    out: dict[str, str | None] = {}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def git_revision(repo_dir: Path | None = None) -> dict[str, Any]:
    """``{"revision": sha|None, "dirty": bool|None}`` of the evbt checkout (None outside git)."""
    cwd = repo_dir if repo_dir is not None else Path(__file__).resolve().parent.parent
    top = _git(["rev-parse", "--show-toplevel"], cwd)
    # An installed evbt (site-packages) inside some other repository is not a checkout of evbt.
    rev = _git(["rev-parse", "HEAD"], cwd) if top is not None and Path(top).resolve() == cwd.resolve() else None
    if rev is None:
        return {"revision": None, "dirty": None}
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return {"revision": rev, "dirty": None if status is None else bool(status)}


def build_manifest(
    *,
    run_id: str,
    data_fingerprints: Mapping[str, str],
    calendar_hash: str | None,
    created_at: dt.datetime | None = None,
    repo_dir: Path | None = None,
) -> dict[str, Any]:
    """Reproducibility facts of a run: data fingerprints, calendar hash, versions, git, creation time."""
    created = created_at if created_at is not None else dt.datetime.now(dt.UTC)
    git = git_revision(repo_dir)
    return {
        "manifest_version": MANIFEST_VERSION,
        "run_id": run_id,
        "created_at": created.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "data": {str(k): str(v) for k, v in sorted(data_fingerprints.items())},
        "event_calendar_hash": calendar_hash,
        "packages": package_versions(),
        "python": platform.python_version(),
        "git_revision": git["revision"],
        "git_dirty": git["dirty"],
    }


def diff_manifests(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Human-readable differences that can explain a changed rerun; empty list = same inputs and code."""
    lines = _diff_data(old.get("data") or {}, new.get("data") or {})
    if old.get("event_calendar_hash") != new.get("event_calendar_hash"):
        lines.append(
            f"event calendar: hash {_short(old.get('event_calendar_hash'))} -> "
            f"{_short(new.get('event_calendar_hash'))}"
        )
    old_pk, new_pk = old.get("packages") or {}, new.get("packages") or {}
    for name in sorted(set(old_pk) | set(new_pk)):
        if old_pk.get(name) != new_pk.get(name):
            lines.append(f"package {name}: {old_pk.get(name)} -> {new_pk.get(name)}")
    labels = (("python", "python"), ("git_revision", "git revision"), ("git_dirty", "uncommitted changes"))
    for key, label in labels:
        if old.get(key) != new.get(key):
            lines.append(f"{label}: {_short(old.get(key))} -> {_short(new.get(key))}")
    return lines


def _diff_data(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    lines: list[str] = []
    for symbol in sorted(set(old) | set(new)):
        if symbol not in new:
            lines.append(f"data {symbol}: removed (was {_short(old[symbol])})")
        elif symbol not in old:
            lines.append(f"data {symbol}: added ({_short(new[symbol])})")
        elif old[symbol] != new[symbol]:
            lines.append(f"data {symbol}: fingerprint {_short(old[symbol])} -> {_short(new[symbol])}")
    return lines


def _short(value: Any) -> str:
    if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{16,}", value):
        return value[:12]
    return str(value)


# ---------------------------------------------------------------- writing


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _write_parquet(path: Path, table: pa.Table) -> None:
    pq.write_table(table, path)
    _fsync_path(path)


def equity_table(result: RunResult) -> pa.Table:
    """date, equity, cash, exposure, benchmark (float64; benchmark null when there is none)."""
    index = result.equity.index
    frame = pd.DataFrame(
        {
            "equity": result.equity.astype("float64"),
            "cash": result.cash.reindex(index).astype("float64"),
            "exposure": result.exposure.reindex(index).astype("float64"),
            "benchmark": (
                result.benchmark.reindex(index).astype("float64")
                if result.benchmark is not None
                else pd.Series(float("nan"), index=index, dtype="float64")
            ),
        },
        index=index,
    )
    dates = pa.array(pd.DatetimeIndex(index).as_unit("us"), type=pa.timestamp("us"))
    arrays = [dates] + [pa.array(frame[c].to_numpy(), type=pa.float64(), from_pandas=True) for c in frame]
    return pa.Table.from_arrays(arrays, names=["date", *frame.columns])


def _trade_schema() -> pa.Schema:
    fields = []
    for f in dataclasses.fields(TradeRecord):
        base = str(f.type).replace(" | None", "").strip()
        fields.append(pa.field(f.name, _PYARROW_TYPES[base], nullable=True))
    return pa.schema(fields)


def trades_table(trades: list[TradeRecord] | list[dict[str, Any]]) -> pa.Table:
    """Trades with an explicit schema (so an empty trade list still has typed columns)."""
    schema = _trade_schema()
    frame = trades_to_frame(trades)
    arrays = [pa.array(frame[f.name].tolist(), type=f.type, from_pandas=True) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _config_doc(report: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("run_id", "strategy", "params", "config")
    return {key: report.get(key) for key in keys}


def _write_run_files(
    folder: Path, report: Mapping[str, Any], result: RunResult, manifest: Mapping[str, Any]
) -> None:
    _write_text(folder / "config.json", dumps_report(_config_doc(report)))
    _write_text(folder / "manifest.json", dumps_report(manifest))
    _write_parquet(folder / "equity.parquet", equity_table(result))
    _write_parquet(folder / "trades.parquet", trades_table(result.trades))
    _write_text(folder / "report.json", dumps_report(report))  # last: its presence marks a complete folder
    _fsync_path(folder)


def _check_run_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", run_id):
        raise ConfigError(f"invalid run id {run_id!r}: use letters, digits, '.', '_' and '-'")
    return run_id


def save_run(
    runs_dir: Path, report: Mapping[str, Any], result: RunResult, manifest: Mapping[str, Any]
) -> Path:
    """Write the run folder atomically and return its path; an existing run with the id is replaced.

    A full disk or an unwritable runs folder is a DataError (exit 1); no partial run folder is left.
    """
    try:
        return _save_run(runs_dir, report, result, manifest)
    except OSError as exc:
        raise DataError(f"cannot save the run in {runs_dir}: {exc.strerror or exc} (nothing was saved)") from exc


def _save_run(
    runs_dir: Path, report: Mapping[str, Any], result: RunResult, manifest: Mapping[str, Any]
) -> Path:
    run_id = _check_run_id(report.get("run_id"))
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    _recover(runs_dir)
    manifest = _keep_history(runs_dir / run_id, manifest)
    tmp = runs_dir / f".tmp-{run_id}-{os.getpid()}"
    _clear(tmp)
    tmp.mkdir()
    try:
        _write_run_files(tmp, report, result, manifest)
        _swap_into_place(tmp, runs_dir / run_id)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return runs_dir / run_id


def _keep_history(final: Path, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The same run saved again (a rerun) keeps its first ``created_at`` and its tags (new tags are added)."""
    doc = dict(manifest)
    try:
        old = json.loads((final / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return doc
    if not isinstance(old, dict):
        return doc
    if old.get("created_at"):
        doc["created_at"] = old["created_at"]
    tags = [*(old.get("tags") or []), *(doc.get("tags") or [])]
    if tags:
        doc["tags"] = list(dict.fromkeys(str(t) for t in tags))
    return doc


def _clear(path: Path) -> None:
    """Remove a leftover work folder; a symlink planted at its name is removed itself, never followed."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _swap_into_place(tmp: Path, final: Path) -> None:
    """rename(tmp, final); an old folder is first moved aside to a hidden name and then removed."""
    old = final.parent / f".old-{final.name}-{os.getpid()}"
    if final.exists():
        _clear(old)
        with contextlib.suppress(FileNotFoundError):  # a concurrent save may have moved it first
            os.replace(final, old)
    try:
        os.replace(tmp, final)
    except BaseException as exc:
        raced = isinstance(exc, OSError) and exc.errno in (errno.ENOTEMPTY, errno.EEXIST)
        if not (raced and (final / "report.json").is_file()):
            if old.exists() and not final.exists():
                os.replace(old, final)
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # a concurrent save of the same run id (same inputs) won: keep it
    _fsync_path(final.parent)
    shutil.rmtree(old, ignore_errors=True)




def _recover(runs_dir: Path) -> None:
    """Finish what a killed save left: restore a moved-aside old run, drop dead processes' temp folders.

    Folders of other live processes (a save in progress) are left alone.
    """
    if not runs_dir.is_dir():
        return
    for entry in sorted(runs_dir.iterdir()):
        match = re.fullmatch(r"\.(tmp|old)-(.+)-(\d+)", entry.name)
        if not match or not entry.is_dir():
            continue
        pid = int(match.group(3))
        if pid != os.getpid() and pid_alive(pid):
            continue
        kind, run_id = match.group(1), match.group(2)
        with contextlib.suppress(OSError):
            if kind == "old" and not (runs_dir / run_id).exists():
                os.replace(entry, runs_dir / run_id)
            else:
                shutil.rmtree(entry)


# ---------------------------------------------------------------- reading


def _visible_runs(runs_dir: Path) -> list[Path]:
    if not runs_dir.is_dir():
        return []
    _recover(runs_dir)
    return sorted(p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "sweeps")


def _parse_json(path: Path, invalid: str) -> Any:
    """The JSON document at ``path``; a missing or unreadable file is a ConfigError (``{path} {invalid}: ...``)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} {invalid}: {exc}") from None


def _read_report_file(path: Path) -> dict[str, Any]:
    doc = _parse_json(path, "is not a valid evbt report file")
    problem = _report_problem(doc)
    if problem:
        raise ConfigError(f"{path} is not a valid evbt report file: {problem}")
    return doc


def _report_problem(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return "not a JSON object"
    for key, kind in (("schema_version", int), ("run_id", str), ("metrics", dict), ("trades", list)):
        if not isinstance(doc.get(key), kind):
            return f"missing or invalid '{key}'"
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


def load_report(run_or_path: str | Path, runs_dir: Path | None = None) -> dict[str, Any]:
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
    metrics, period = report.get("metrics") or {}, report.get("period") or {}
    return RunSummary(
        run_id=report["run_id"],
        strategy=str(report.get("strategy")),
        created_at=created,
        start=period.get("start"),
        end=period.get("end"),
        total_return=metrics.get("total_return"),
        sharpe=metrics.get("sharpe"),
        trades=int(metrics.get("trade_count") or 0),
        synthetic=bool((report.get("data") or {}).get("synthetic")),
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
