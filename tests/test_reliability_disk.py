"""Disk full and read-only folders, simulated (os.write / os.fsync / mkdir raising ENOSPC or EROFS).

Each must end in a clear one-line error (exit 1: the environment failed, not the input), and no partial file:
the previous cache file is unchanged and no run folder or temp leftover appears. scripts/reliability.py repeats
these on real tiny tmpfs mounts when it may mount.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import engine.atomic
import engine.saved_runs.writer

Run = Callable[..., tuple[int, str, str]]
CSV = "Date,Open,High,Low,Close,Adj Close,Volume\n2022-01-03,1,2,0.5,1.5,1.5,10\n2022-01-04,1,2,0.5,1.6,1.6,10\n"


def _failing(err: int) -> Callable[..., object]:
    def fail(*_: object, **__: object) -> object:
        raise OSError(err, os.strerror(err))
    return fail


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()} if root.exists() else {}


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS, errno.EDQUOT])
@pytest.mark.parametrize("target", ["write", "fsync"])
def test_cache_import_disk_errors(err: int, target: str, run_cli: Run, sample_cache: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    csv = tmp_path / "BABA.csv"  # BABA is in the sample: its file must survive unchanged
    csv.write_text(CSV)
    before = _tree(sample_cache)
    monkeypatch.setattr(engine.atomic.os, target, _failing(err))
    code, out, err_text = run_cli("data", "import", str(csv))
    monkeypatch.undo()
    assert code == 1, (out, err_text)
    lines = err_text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot write") and os.strerror(err) in lines[0]
    assert "internal error" not in err_text
    after = _tree(sample_cache)
    assert {k: v for k, v in after.items() if not k.startswith(".locks")} == \
        {k: v for k, v in before.items() if not k.startswith(".locks")}
    code, out, _ = run_cli("data", "verify")
    assert code == 0, out


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS])
def test_run_save_disk_errors(err: int, run_cli: Run, sample_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs_dir = Path(os.environ["EVBT_RUNS_DIR"])
    monkeypatch.setattr(engine.saved_runs.writer.os, "fsync", _failing(err))
    code, out, err_text = run_cli("--offline", "run", "reassurance", "--symbols", "BABA")
    monkeypatch.undo()
    assert code == 1, (out, err_text)
    last = err_text.strip().splitlines()[-1]
    assert last.startswith("error: cannot save the run") and os.strerror(err) in last
    assert "internal error" not in err_text and "Traceback" not in err_text
    assert [p.name for p in runs_dir.iterdir()] == [] if runs_dir.exists() else True


def test_read_only_runs_folder(run_cli: Run, sample_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs_dir = Path(os.environ["EVBT_RUNS_DIR"])
    monkeypatch.setattr(Path, "mkdir", _failing(errno.EROFS))
    code, _, err_text = run_cli("--offline", "run", "reassurance", "--symbols", "BABA")
    monkeypatch.undo()
    assert code == 1 and "Read-only file system" in err_text and "internal error" not in err_text
    assert not runs_dir.exists() or list(runs_dir.iterdir()) == []


def test_read_only_cache_folder(run_cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv = tmp_path / "BABA.csv"
    csv.write_text(CSV)
    monkeypatch.setattr(Path, "mkdir", _failing(errno.EROFS))
    code, _, err_text = run_cli("data", "import", str(csv))
    monkeypatch.undo()
    assert code == 1 and "Read-only file system" in err_text and "internal error" not in err_text
