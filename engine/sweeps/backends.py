"""Where a sweep's tasks run: inline, a forked process pool, or a Dask cluster. Each yields rows per batch.

A batch is evaluated by a ``Worker`` (the shipped data plus that process's caches). The pool hands the
parent's worker to each forked child through the pool initializer (the child keeps it for its lifetime), so no
state is shared through module globals of the parent process.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from engine.errors import ConfigError, EvbtWarning, RunError
from engine.sweeps.data import SweepData
from engine.sweeps.evaluate import PointResult, SweepCaches, evaluate
from engine.sweeps.storage import make_row
from engine.sweeps.tasks import Task

CONNECT_TIMEOUT_ENV = "EVBT_SWEEP_CONNECT_TIMEOUT"  # seconds to reach a Dask scheduler (default 5)


class Worker:
    """The data of a sweep and one process's caches; pickles with empty caches (rebuilt where it lands)."""

    def __init__(self, data: SweepData, caches: SweepCaches | None = None) -> None:
        self.data = data
        self.caches = caches or SweepCaches()
        self.venues = _venues_in_force()  # the user venue table's bytes (None: the built-in table)
        self.closures = _closures_digest()  # the curated closures this process evaluates points with
        self.client_closures: str | None = None  # the client's, on a worker that received this object
        # points whose full report will be kept anyway (a grid no larger than the kept reports, run inline):
        # evaluated once with records, the result held for the report instead of a second evaluation
        self.records_for: set[str] = set()
        self.kept: dict[str, PointResult] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"data": self.data, "caches": self.caches, "venues": self.venues, "closures": self.closures}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a Dask worker has its own environment: the client's venue table (board lots, currencies) must be the
        # one in force where the points are evaluated, or rows computed on the built-in table were stored under
        # keys that name the user's table
        _use_venues(state.get("venues"))
        self.__init__(state["data"], state["caches"])  # type: ignore[misc]
        self.client_closures = state.get("closures")

    def run_batch(self, batch: Sequence[Task]) -> list[dict[str, Any]]:
        if self.client_closures is not None and self.client_closures != self.closures:
            # another closures file moves entry sessions: its rows would be stored under the client's keys
            raise RunError("a sweep worker's event_calendar/closures.csv differs from the client's (sha256 "
                           f"{self.closures[:12]} there, {self.client_closures[:12]} here): install the same evbt "
                           "(and calendar files) on every worker")
        rows = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EvbtWarning)
            for task in batch:
                records = task.key in self.records_for
                res = evaluate(self.data, task.window, task.config, records=records, caches=self.caches)
                if records:
                    self.kept[task.key] = res
                rows.append(make_row(task, res))
        return rows


def _closures_digest() -> str:
    from engine.saved_runs.ids import run_inputs

    return run_inputs("")["closures"]


def _venues_in_force() -> bytes | None:
    from engine.market.venues import ENV_VAR

    path = os.environ.get(ENV_VAR, "").strip()
    return Path(path).read_bytes() if path else None


def _use_venues(content: bytes | None) -> None:
    """Make ``content`` (a user venues file's bytes; None: none) the venue table of this process."""
    from engine.market.venues import use_venues_file

    if _venues_in_force_or_none() == content:
        return
    if content is None:
        use_venues_file(None)
        return
    digest = hashlib.sha256(content).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"evbt-venues-{digest}.csv"
    if not (path.is_file() and path.read_bytes() == content):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(content)
        os.replace(tmp, path)
    use_venues_file(path)


def _venues_in_force_or_none() -> bytes | None:
    try:
        return _venues_in_force()
    except OSError:  # a path that does not exist here
        return b""


def run_batch(data: SweepData | Worker, batch: Sequence[Task]) -> list[dict[str, Any]]:
    """Evaluate a batch of tasks (inline or on a Dask worker) and return their rows."""
    worker = data if isinstance(data, Worker) else Worker(data)
    return worker.run_batch(batch)


class _ChildState:
    """Set once in each forked pool child by the initializer (the child's own memory, never the parent's)."""

    worker: Worker | None = None


def _child_init(worker: Worker, parent: int) -> None:
    from engine.sweeps.safety import die_with_parent  # no orphan workers when the main process is SIGKILLed

    die_with_parent(parent)
    _ChildState.worker = worker


def _child_batch(batch: Sequence[Task]) -> list[dict[str, Any]]:
    assert _ChildState.worker is not None, "pool child started without its worker"
    return _ChildState.worker.run_batch(batch)


def batches(items: list[Task], workers: int) -> list[list[Task]]:
    if not items:
        return []
    size = max(8, min(200, math.ceil(len(items) / max(workers * 4, 1))))
    return [items[i:i + size] for i in range(0, len(items), size)]


def execute_serial(worker: Worker, parts: list[list[Task]]) -> Iterator[list[dict]]:
    for batch in parts:
        yield worker.run_batch(batch)


def execute_processes(worker: Worker, parts: list[list[Task]], workers: int) -> Iterator[list[dict]]:
    """Fork-based process pool: children inherit the data and the warmed window contexts (copy-on-write)."""
    import concurrent.futures as cf
    import multiprocessing as mp

    ctx = mp.get_context("fork")  # fork: initargs are inherited, not pickled
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_child_init,
                                initargs=(worker, os.getpid())) as pool:
        pending = {pool.submit(_child_batch, batch) for batch in parts}
        try:
            for future in cf.as_completed(pending):
                pending.discard(future)  # a finished batch's rows are not kept once handed on
                yield future.result()
        finally:
            for future in pending:
                future.cancel()


class DaskBackend:
    """``--cluster ADDR`` (an existing scheduler) or ``--cluster local`` (a LocalCluster on loopback)."""

    def __init__(self, address: str, workers: int, timeout: float | None = None) -> None:
        timeout = timeout if timeout is not None else float(os.environ.get(CONNECT_TIMEOUT_ENV) or 5.0)
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:  # an optional extra: a usage error, before anything is written
            raise ConfigError("--cluster needs the 'cluster' extra (Dask distributed): "
                              "pip install 'evbt[cluster]'") from None
        self.cluster = None
        try:
            if address == "local":
                self.cluster = LocalCluster(n_workers=max(workers, 1), threads_per_worker=1, processes=True,
                                            dashboard_address="127.0.0.1:0", host="127.0.0.1")
                self.client = Client(self.cluster, timeout=timeout)
            else:
                from engine.sweeps.safety import probe_scheduler  # bounded handshake; web and tls refused

                probe_scheduler(address, timeout)
                self.client = Client(address, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise RunError(f"cannot reach the Dask cluster at {address}: {exc}") from None
        except ValueError as exc:  # a malformed address (e.g. no port): bad input, not an internal error
            self.close()
            raise ConfigError(f"--cluster {address!r}: {exc} (expected tcp://HOST:PORT or 'local')") from None

    def run(self, worker: Worker, parts: list[list[Task]]) -> Iterator[list[dict]]:
        from dask.distributed import as_completed

        # one Worker object per cluster worker (deserialised once): its caches live across that worker's tasks
        shipped = self.client.scatter(Worker(worker.data), broadcast=True)
        done = as_completed([self.client.submit(run_batch, shipped, batch, pure=False) for batch in parts])
        for future in done:
            rows = future.result()
            future.release()  # the cluster frees the batch's rows once they are here
            yield rows

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if getattr(self, "client", None) is not None:
                self.client.close()
        with contextlib.suppress(Exception):
            if self.cluster is not None:
                self.cluster.close()
