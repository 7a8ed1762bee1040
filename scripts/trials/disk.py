"""Disk full and read-only folders on real tiny tmpfs mounts (needs root; skipped otherwise)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from scripts.trials.common import REPO, _env, _prepare_sample, _variant, write_csv


def _mount_tmpfs(path: Path, size: str, read_only: bool = False) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    return subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True,
                          check=False).returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True, check=False)


def disk_trials(work: Path) -> list[tuple[str, str, str]]:
    """Real full/read-only file systems (tiny tmpfs mounts; needs root). Returns (case, result, held?)."""
    base = work / "disk"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    csv = base / "BABA.csv"
    write_csv(csv, _variant("BABA", 0))
    sample = base / "cache"
    _prepare_sample(sample)
    mnt = base / "mnt"
    results: list[tuple[str, str, str]] = []
    cases = [
        ("import into a full cache (32 KB tmpfs)", "32k", False, "import"),
        ("import into a read-only cache folder", "1m", True, "import"),
        ("save a run into a full runs folder (12 KB tmpfs)", "12k", False, "run"),
        ("save a run into a read-only runs folder", "1m", True, "run"),
    ]
    for name, size, ro, what in cases:
        if not _mount_tmpfs(mnt, size, ro):
            results.append((name, "skipped: cannot mount a tmpfs here (needs root)", "n/a"))
            continue
        try:
            if what == "import":
                proc = subprocess.run([sys.executable, "-m", "cli", "--cache-dir", str(mnt / "cache"), "data",
                                       "import", str(csv)], capture_output=True, text=True, env=_env(), cwd=REPO,
                                      check=False)
                leftovers = [p.name for p in (mnt / "cache").glob("*")] if (mnt / "cache").is_dir() else []
                partial = [n for n in leftovers if n != ".locks"]
            else:
                proc = subprocess.run([sys.executable, "-m", "cli", "--cache-dir", str(sample), "--sample", "run",
                                       "reassurance"], capture_output=True, text=True,
                                      env=_env({"EVBT_RUNS_DIR": str(mnt / "runs")}), cwd=REPO, check=False)
                partial = [p.name for p in (mnt / "runs").iterdir()] if (mnt / "runs").is_dir() else []
            message = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
            ok = proc.returncode == 1 and message.startswith("error:") and "internal error" not in message \
                and "Traceback" not in proc.stderr and not partial
            results.append((name, f"exit {proc.returncode}: `{message[:160]}`; left: {partial or 'nothing'}",
                            "held" if ok else "FAILED"))
        finally:
            _umount(mnt)
    return results
