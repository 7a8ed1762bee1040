"""Crash and concurrency trials, small versions of scripts/reliability.py (the 200-trial run writes RELIABILITY.md).

Each crash trial SIGKILLs a real process at a random moment while it writes the cache, imports CSVs, saves runs,
runs a backtest or writes a sweep folder; afterwards `evbt data verify` passes and every artefact is complete or
absent (a sweep folder may also be partial: then a rerun computes exactly the missing points and equals an
uninterrupted sweep).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from engine import saved_runs as runs
from scripts import reliability as rel


@pytest.mark.parametrize("kind", rel.KINDS)
def test_sigkill_trials_hold(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trials = 5 if kind == "cli-sweep" else 2
    if kind == "cli-sweep":
        # The killed sweeps are CLI processes and write every top report as usual. Each trial's in-process rerun
        # to completion is compared with the uninterrupted sweep by its points, summary.json and report.json
        # (the best point's report) only, so it keeps that one report instead of recomputing ten with
        # records.
        from engine.sweeps import sweep

        monkeypatch.setattr(sweep, "REPORTS_MAX", 1)
    stats = rel.crash_trials(kind, trials, seed=sum(map(ord, kind)), work=tmp_path)
    assert stats.trials == trials
    assert stats.failures == [], stats.failures
    assert stats.held == trials


def test_two_sweeps_of_one_grid_into_one_runs_folder(tmp_path: Path) -> None:
    result = rel.concurrent_sweeps(tmp_path, processes=2)
    assert result.problems == [], result.problems
    assert result.exit_codes == [0, 0]


def test_next_sweep_removes_temp_files_of_a_killed_sweep(tmp_path: Path) -> None:
    """A sweep killed while replacing a chunk or summary.json leaves a hidden temp file; the next sweep of the
    folder removes it (only when its writer is dead)."""
    import subprocess
    import sys

    from engine.sweeps.sweep import SweepFolder

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = SweepFolder(tmp_path / "sweep-x")
    folder.points_dir.mkdir(parents=True)
    (folder.path / "reports").mkdir()
    # reports/: a top report the killed sweep was writing; a rerun that keeps fewer reports never rewrites it
    left = [folder.path / f".summary.json.{dead.pid}.tmp", folder.points_dir / f".chunk-1.parquet.{dead.pid}.tmp",
            folder.path / "reports" / f".reassurance-e72095bf7018.json.2189d7d743a2c6c4.{dead.pid}.tmp"]
    alive = folder.path / f".report.json.{os.getpid()}.tmp"  # a writer still running: kept
    for path in [*left, alive]:
        path.write_bytes(b"partial")
    folder.create()
    assert not any(p.exists() for p in left)
    assert alive.exists()


def test_four_processes_fetch_and_import_same_symbols(tmp_path: Path) -> None:
    result = rel.concurrent_fetch_import(tmp_path, processes=4, rounds=1)
    assert result.problems == [], result.problems
    assert result.exit_codes == [0, 0, 0, 0]


def test_two_processes_write_runs_to_one_folder(tmp_path: Path) -> None:
    result = rel.concurrent_runs(tmp_path, processes=2, holds="3,4")
    assert result.problems == [], result.problems
    assert result.exit_codes == [0, 0]


def test_same_run_id_saved_concurrently_keeps_one_complete_run(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process renames the same run id into place between our existence check and our rename."""
    from tests.test_runs import save

    save(tmp_path / "other", "reassurance-aaa111")
    real_replace = os.replace

    def racing_replace(src: os.PathLike, dst: os.PathLike) -> None:
        if Path(src).name.startswith(".tmp-") and not Path(dst).exists():
            shutil.copytree(tmp_path / "other" / "reassurance-aaa111", dst)  # the other process won
        if Path(src).name.startswith(".tmp-") and Path(dst).exists():
            raise OSError(errno.ENOTEMPTY, os.strerror(errno.ENOTEMPTY))
        real_replace(src, dst)

    monkeypatch.setattr(runs.writer.os, "replace", racing_replace)
    save(tmp_path / "runs", "reassurance-aaa111")
    monkeypatch.setattr(runs.writer.os, "replace", real_replace)
    assert [s.run_id for s in runs.list_runs(tmp_path / "runs")] == ["reassurance-aaa111"]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["reassurance-aaa111"]
