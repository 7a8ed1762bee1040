"""Run manifests: the reproducibility facts of a run (data fingerprints, calendar hash, package versions, git,
creation time) and the differences between two manifests that can explain a changed rerun."""

from __future__ import annotations

import datetime as dt
import platform
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.versions import version

MANIFEST_VERSION = 1
TRACKED_PACKAGES = ("evbt", "backtrader", "pandas", "numpy", "pyarrow", "yfinance")
GIT_TIMEOUT_S = 5.0  # each command


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape a result (``None`` if not installed)."""
    return {name: version(name) for name in TRACKED_PACKAGES}


def _start_git(args: list[str], cwd: Path) -> subprocess.Popen[str] | None:
    try:
        return subprocess.Popen(["git", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL, text=True)
    except (OSError, subprocess.SubprocessError):
        return None


def _git_output(proc: subprocess.Popen[str] | None) -> str | None:
    """The stripped output of a git command started by ``_start_git`` (None: failed or timed out)."""
    if proc is None:
        return None
    try:
        out, _ = proc.communicate(timeout=GIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    return out.strip() if proc.returncode == 0 else None


def git_revision(repo_dir: Path | None = None) -> dict[str, Any]:
    """``{"revision": sha|None, "dirty": bool|None}`` of the evbt checkout (None outside git).

    The two git commands run at once (each some 7 ms; a sweep and a saved run ask once)."""
    cwd = repo_dir if repo_dir is not None else Path(__file__).resolve().parents[2]
    where = _start_git(["rev-parse", "--show-toplevel", "HEAD"], cwd)
    status = _start_git(["status", "--porcelain", "--untracked-files=no"], cwd)
    lines = (_git_output(where) or "").splitlines()
    changes = _git_output(status)
    # An installed evbt (site-packages) inside some other repository is not a checkout of evbt.
    if len(lines) != 2 or Path(lines[0]).resolve() != cwd.resolve():
        return {"revision": None, "dirty": None}
    return {"revision": lines[1], "dirty": None if changes is None else bool(changes)}


def build_manifest(
    *,
    run_id: str,
    data_fingerprints: Mapping[str, str],
    calendar_hash: str | None,
    created_at: dt.datetime | None = None,
    repo_dir: Path | None = None,
    inputs: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Reproducibility facts of a run: data fingerprints, calendar hash, versions, git, creation time, and
    ``inputs`` (``engine.saved_runs.ids.run_inputs``: a user strategy file's hash, a user venue table's)."""
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
        **({"inputs": dict(sorted(inputs.items()))} if inputs else {}),
    }


def diff_manifests(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Human-readable differences that can explain a changed rerun; empty list = same inputs and code."""
    lines = _diff_data(old.get("data") or {}, new.get("data") or {})
    if old.get("event_calendar_hash") != new.get("event_calendar_hash"):
        lines.append(
            f"event calendar: hash {_short(old.get('event_calendar_hash'))} -> "
            f"{_short(new.get('event_calendar_hash'))}"
        )
    old_in, new_in = old.get("inputs") or {}, new.get("inputs") or {}
    for key, label, absent in (("closures", "closures file", "not recorded"),
                               ("strategy_file", "strategy file", "not recorded"),
                               ("venues", "venue table", "built-in")):
        if old_in.get(key) != new_in.get(key):
            lines.append(f"{label}: {_short(old_in.get(key, absent))} -> {_short(new_in.get(key, absent))}")
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
