"""Writing a run folder atomically: ``<runs>/<run_id>/`` holds config.json, manifest.json, report.json,
equity.parquet and trades.parquet (docs/report-schema.md).

A run is written into ``<runs>/.tmp-<id>-<pid>/`` and renamed into place, so a killed process leaves either the
complete run or none; ``recover`` finishes what a killed save left. JSON and parquet only (no pickle).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from engine.atomic import pid_alive
from engine.errors import DataError
from engine.execution.records import RunResult, TradeRecord
from engine.reporting.models import Report
from engine.reporting.report import dumps_report, trades_to_frame
from engine.saved_runs.ids import check_run_id

RUN_FILES = ("config.json", "manifest.json", "report.json", "equity.parquet", "trades.parquet")
_PYARROW_TYPES = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}


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


def _config_doc(report: Report) -> dict[str, Any]:
    keys = ("run_id", "strategy", "params", "config")
    return {key: report.get(key) for key in keys}


def _write_run_files(
    folder: Path, report: Report, result: RunResult, manifest: Mapping[str, Any]
) -> None:
    _write_text(folder / "config.json", dumps_report(_config_doc(report)))
    _write_text(folder / "manifest.json", dumps_report(manifest))
    _write_parquet(folder / "equity.parquet", equity_table(result))
    _write_parquet(folder / "trades.parquet", trades_table(result.trades))
    _write_text(folder / "report.json", dumps_report(report))  # last: its presence marks a complete folder
    _fsync_path(folder)


def save_run(
    runs_dir: Path, report: Report, result: RunResult, manifest: Mapping[str, Any]
) -> Path:
    """Write the run folder atomically and return its path; an existing run with the id is replaced.

    A full disk or an unwritable runs folder is a DataError (exit 1); no partial run folder is left.
    """
    try:
        return _save_run(runs_dir, report, result, manifest)
    except OSError as exc:
        raise DataError(f"cannot save the run in {runs_dir}: {exc.strerror or exc} (nothing was saved)") from exc


def _save_run(
    runs_dir: Path, report: Report, result: RunResult, manifest: Mapping[str, Any]
) -> Path:
    run_id = check_run_id(report["run_id"])
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    recover(runs_dir)
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


def recover(runs_dir: Path) -> None:
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
