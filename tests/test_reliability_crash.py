"""Crash and concurrency trials, small versions of scripts/reliability.py (the 200-trial run writes RELIABILITY.md).

Each crash trial SIGKILLs a real process at a random moment while it writes the cache, imports CSVs, saves runs
or runs a backtest; afterwards `evbt data verify` passes and every artefact is complete or absent.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from engine import runs
from scripts import reliability as rel


@pytest.mark.parametrize("kind", rel.KINDS)
def test_sigkill_trials_hold(kind: str, tmp_path: Path) -> None:
    stats = rel.crash_trials(kind, 2, seed=hash(kind) % 1000, work=tmp_path)
    assert stats.trials == 2
    assert stats.failures == [], stats.failures
    assert stats.held == 2


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

    monkeypatch.setattr(runs.os, "replace", racing_replace)
    save(tmp_path / "runs", "reassurance-aaa111")
    monkeypatch.setattr(runs.os, "replace", real_replace)
    assert [s.run_id for s in runs.list_runs(tmp_path / "runs")] == ["reassurance-aaa111"]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["reassurance-aaa111"]
