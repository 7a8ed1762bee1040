"""A sweep folder on disk: ``<runs>/sweeps/<sweep_id>/`` with the manifest, atomic parquet chunks of point rows,
summary.json and report.json; its id and its cross-process lock.

Rows are looked up by ``key`` (the point's run id, a function of its values) and never by position.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import hashlib
import io
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from engine.analysis.metrics import Metrics
from engine.atomic import remove_orphan_temps
from engine.errors import DataError
from engine.plan.config import RunConfig
from engine.reporting.report import dumps_report
from engine.saved_runs import default_runs_dir, strategy_slug
from engine.saved_runs.ids import run_inputs
from engine.sweeps.data import SweepData
from engine.sweeps.evaluate import PointResult
from engine.sweeps.tasks import Task
from engine.sweeps.windows import Window

# What a summary ranks and analyses (every metric, the return statistics of the deflated Sharpe, the engine)
SUMMARY_FIELDS = ("key", "window", "engine", "n_returns", "sharpe_daily", "skew", "kurtosis")

ROW_FIELDS: dict[str, str] = {
    "key": "str", "point": "int", "window": "str", "start": "str", "end": "str", "values": "str",
    "params": "str", "config": "str", "engine": "str", "n_returns": "int", "sharpe_daily": "float",
    "skew": "float", "kurtosis": "float",
}


def make_row(task: Task, res: PointResult) -> dict[str, Any]:
    row: dict[str, Any] = {
        "key": task.key, "point": task.point, "window": task.window.label, "start": task.window.start.isoformat(),
        "end": task.window.end.isoformat(), "values": task.values_json, "params": task.params_json,
        "config": task.config_json, "engine": res.engine,
        "n_returns": res.stats.n, "sharpe_daily": res.stats.sharpe_daily, "skew": res.stats.skew,
        "kurtosis": res.stats.kurtosis,
    }
    row.update(res.metrics.to_dict())
    return row


def schema() -> Any:
    import pyarrow as pa

    types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}
    fields = [pa.field(k, types[v]) for k, v in ROW_FIELDS.items()]
    for f in dataclasses.fields(Metrics):
        kind = pa.int64() if "int" in str(f.type) else pa.float64()
        fields.append(pa.field(f.name, kind))
    return pa.schema(fields)


def read_parquet(path: Path, columns: list[str] | None = None) -> Any:
    """``pyarrow.parquet.read_table(path, columns=columns)``: the same table, read by ``ParquetFile`` without the
    dataset layer ``read_table`` goes through (whose first use imports ``pyarrow.dataset``: some 30 ms a sweep).
    Columns the file lacks, or named twice, go to ``read_table`` itself (which refuses the former)."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as handle:
        if columns is None or (len(set(columns)) == len(columns)
                               and set(columns).issubset(handle.schema_arrow.names)):
            return handle.read(columns=columns)
    return pq.read_table(path, columns=columns)


class SweepFolder:
    """``<runs>/sweeps/<sweep_id>/``: manifest, atomic parquet chunks of rows, summary and best report."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.points_dir = self.path / "points"
        self._seq = 0

    def create(self) -> None:
        self.points_dir.mkdir(parents=True, exist_ok=True)
        # leftovers of a killed writer: chunks, manifest/summary/report temp files, and the top reports' temp
        # files (a rerun may keep fewer reports than the killed sweep was writing, so they are not overwritten)
        for folder in (self.points_dir, self.path, self.path / "reports"):
            remove_orphan_temps(folder)

    def chunks(self) -> list[Path]:
        return sorted(self.points_dir.glob("chunk-*.parquet")) if self.points_dir.is_dir() else []

    def _read_chunk(self, chunk: Path, columns: list[str] | None) -> Any:
        """One chunk's table, or None for a damaged chunk: it is set aside (``.damaged``) with a warning, so its
        points count as missing and are computed again instead of failing every later sweep of the folder."""
        import warnings

        import pyarrow as pa

        from engine.errors import EvbtWarning

        try:
            return read_parquet(chunk, columns)
        except (pa.ArrowException, OSError) as exc:
            aside = chunk.with_name(chunk.name + ".damaged")
            with contextlib.suppress(OSError):
                chunk.replace(aside)
            warnings.warn(f"sweep chunk {chunk} is damaged ({type(exc).__name__}); set aside as {aside.name}, "
                          "its points will be computed again", EvbtWarning, stacklevel=3)
            return None

    def keys(self) -> set[str]:
        out: set[str] = set()
        for chunk in self.chunks():
            table = self._read_chunk(chunk, ["key"])
            if table is not None:
                out.update(table.column("key").to_pylist())
        return out

    def write_chunk(self, rows: list[dict[str, Any]]) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from engine.atomic import atomic_write_bytes

        table_schema = schema()
        table = pa.Table.from_pylist([{k: r.get(k) for k in table_schema.names} for r in rows], schema=table_schema)
        buf = io.BytesIO()
        pq.write_table(table, buf)
        self._seq += 1
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.points_dir / f"chunk-{stamp}-{os.getpid()}-{self._seq:05d}.parquet"
        atomic_write_bytes(path, buf.getvalue())
        return path

    def read(self, keys: Iterable[str] | None = None, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Rows (one per key, the latest written), optionally only ``keys``. Each chunk is cut to ``keys``
        and ``columns`` as it is read, so a summary holds only the rows and columns it ranks."""
        import pyarrow as pa
        import pyarrow.compute as pc

        names = list(columns) if columns is not None else None
        if names is not None and "key" not in names:
            names.insert(0, "key")
        wanted = pa.array(sorted(set(keys)), type=pa.string()) if keys is not None else None
        tables = []
        for chunk in self.chunks():
            table = self._read_chunk(chunk, names)
            if table is not None and wanted is not None:
                table = table.filter(pc.is_in(table.column("key"), value_set=wanted))
            if table is not None and table.num_rows:
                tables.append(table)
        if not tables:
            return pd.DataFrame(columns=names or schema().names)
        rows = pa.concat_tables(tables, promote_options="permissive").to_pandas()
        return rows.drop_duplicates("key", keep="last").reset_index(drop=True)

    def read_json(self, name: str) -> dict[str, Any] | None:
        path = self.path / name
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def write_json(self, name: str, doc: Mapping[str, Any]) -> None:
        from engine.atomic import atomic_write_bytes

        atomic_write_bytes(self.path / name, dumps_report(doc).encode("utf-8"))




class StagedWrites:
    """Files written and fsynced on a background thread while the caller goes on, made visible by ``commit``.

    Each file is atomic and durable as ``engine.atomic.atomic_write_bytes`` makes it: its bytes go to a fresh
    temp file beside it, fsynced (``stage_bytes``, on the thread: the writes and fsyncs wait on the disk without
    the interpreter lock); ``commit`` waits for them, renames each temp over its file in the order added
    (``commit_staged``) and fsyncs each folder once, after its last rename. A reader sees the old file or the new
    one; a crash leaves the old file and a temp file (removed by the next ``SweepFolder.create``). The first
    failure (DataError) stops the staging; ``commit`` raises it, and it or ``discard`` removes every temp file
    not renamed."""

    def __init__(self) -> None:
        import queue
        import threading

        self._todo: queue.SimpleQueue[tuple[Path, bytes] | None] = queue.SimpleQueue()
        self._staged: list[tuple[Path, Path]] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._stage, name="evbt-staged-writes", daemon=True)
        self._thread.start()

    def add(self, path: Path, data: bytes) -> None:
        self._todo.put((Path(path), data))

    def _stage(self) -> None:
        from engine.atomic import stage_bytes

        while (item := self._todo.get()) is not None:
            if self._error is None:
                try:
                    self._staged.append((stage_bytes(*item), item[0]))
                except BaseException as exc:  # handed to the caller by commit
                    self._error = exc

    def _join(self) -> None:
        if self._thread.is_alive():
            self._todo.put(None)
            self._thread.join()

    def commit(self) -> None:
        from engine.atomic import commit_staged, sync_folder

        self._join()
        if self._error is not None:
            self.discard()
            raise self._error
        folders: dict[Path, None] = {}
        try:
            while self._staged:
                tmp, path = self._staged[0]
                commit_staged(tmp, path, sync_dir=False)
                self._staged.pop(0)
                folders[path.parent] = None
        finally:
            self.discard()  # the temps after a failed rename (commit_staged removed its own)
            for folder in folders:
                sync_folder(folder)

    def discard(self) -> None:
        """Wait for the thread and remove the temp files not renamed (a no-op after ``commit``)."""
        self._join()
        for tmp, _ in self._staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._staged = []


def sweeps_dir(runs_dir: Path | None = None) -> Path:
    return (Path(runs_dir) if runs_dir is not None else default_runs_dir()) / "sweeps"


def make_sweep_id(base: RunConfig, data: SweepData, windows: Sequence[Window] = ()) -> str:
    """Scope of the reusable points: strategy, universe, period, benchmark, events, data and calendar; a split
    or walk-forward sweep (windows other than the full period) has its own id, so it never overwrites the
    summary of the plain sweep."""
    scope: dict[str, Any] = {
        "strategy": base.strategy, "symbols": list(base.symbols), "start": base.start.isoformat(),
        "end": base.end.isoformat(), "benchmark": base.benchmark, "events": list(base.events_files),
        "replace_events": base.replace_events, "data": data.fingerprints, "calendar": data.calendar_hash}
    scope["inputs"] = run_inputs(base.strategy)  # closures, a user strategy file, a user venue table: as run ids
    labels = [w.label for w in windows]
    if labels and labels != ["full"]:
        scope["windows"] = [[w.label, w.start.isoformat(), w.end.isoformat()] for w in windows]
    digest = hashlib.sha256(json.dumps(scope, sort_keys=True).encode()).hexdigest()[:12]
    return f"sweep-{strategy_slug(base.strategy)}-{digest}"


def remove_sweep_folder(path: Path) -> None:
    """Delete the sweep folder ``path`` unless a sweep holds its lock (DataError, nothing removed). It is renamed to
    a hidden name first (readers and gc skip hidden folders), then deleted; the hidden lock file beside it stays."""
    import shutil

    lock_file = path.parent / f".{path.name}.lock"
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not Linux/macOS
        fcntl = None  # type: ignore[assignment]
    fd = None
    try:
        if fcntl is not None and lock_file.exists():
            fd = os.open(lock_file, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DataError(f"sweep {path.name} is running (its folder {path} is locked): nothing was removed; "
                                f"stop it or let it finish first") from None
        hidden = path.parent / f".rm-{path.name}-{os.getpid()}"
        try:
            os.rename(path, hidden)
        except OSError as exc:
            raise DataError(f"cannot remove {path}: {exc.strerror or exc}") from exc
        shutil.rmtree(hidden, ignore_errors=True)  # the lock file stays: a sweep waiting on it must lock that file
    except OSError as exc:
        raise DataError(f"cannot remove {path}: {exc.strerror or exc}") from exc
    finally:
        if fd is not None:
            os.close(fd)


@contextlib.contextmanager
def folder_lock(path: Path) -> Iterator[None]:
    """Cross-process lock for one sweep folder (a hidden lock file beside it in <runs>/sweeps/), waited for as
    long as another sweep holds it: ``fcntl.flock`` on the file, the lock ``filelock`` takes on Unix (so this
    and an evbt that used filelock exclude each other) without its import (some 40 ms a sweep); ``filelock``
    where there is no ``fcntl`` or the file system has no ``flock``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {path.parent}: {exc.strerror or exc}") from exc
    lock_file = path.parent / f".{path.name}.lock"
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not Linux/macOS
        fcntl = None  # type: ignore[assignment]
    if fcntl is not None:
        try:
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise DataError(f"cannot open lock file {lock_file}: {exc.strerror or exc}") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # waits (interruptible: Ctrl-C raises here)
            except OSError as exc:
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    raise DataError(f"cannot lock {lock_file}: {exc.strerror or exc}") from exc
            else:
                try:
                    yield
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                return
        finally:
            os.close(fd)
    from filelock import FileLock  # pragma: no cover - no flock here

    with FileLock(lock_file):  # pragma: no cover
        yield
