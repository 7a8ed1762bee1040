"""Run ids: ``<strategy-slug>-<12 hex>`` of everything that determines a run (no date inside)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.reporting.report import to_jsonable

_ID_HASH_LEN = 12


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
    payload["inputs"] = run_inputs(strategy)
    text = json.dumps(to_jsonable(payload), sort_keys=True, separators=(",", ":"))
    return f"{strategy_slug(strategy)}-{hashlib.sha256(text.encode()).hexdigest()[:_ID_HASH_LEN]}"


def run_inputs(strategy: str) -> dict[str, str]:
    """What a run depends on beyond its configuration, data and event calendar: the sha256 of the curated
    closures file (``closures``, ``event_calendar/closures.csv``), of a user strategy file's bytes
    (``strategy_file``) and the fingerprint of the venue table when a user ``--venues`` file is in force
    (``venues``: board lots, currencies, calendars). Without them an edited closures or rule file or another
    venues file gave the same run id: the saved run was overwritten and sweeps reused points of the old inputs."""
    from engine.market.calendars import CLOSURES_PATH

    # the curated extra closures (HK typhoon days...) move entry and exit sessions like an event's date does
    out: dict[str, str] = {"closures": _file_sha256(str(CLOSURES_PATH))}
    if strategy.endswith(".py"):
        out["strategy_file"] = _file_sha256(strategy)
    from engine.market.venues import ENV_VAR, active_venues

    if os.environ.get(ENV_VAR, "").strip():
        out["venues"] = active_venues().fingerprint
    return out


def _file_sha256(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    return _hash_of(path, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=64)
def _hash_of(path: str, mtime_ns: int, size: int) -> str:
    """sha256 of the file's bytes (memoised by path, mtime and size: a sweep asks once per point)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return "missing"


def check_run_id(run_id: Any) -> str:
    """``run_id`` if it is a safe folder name; ConfigError otherwise."""
    from engine.errors import ConfigError

    if not isinstance(run_id, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", run_id):
        raise ConfigError(f"invalid run id {run_id!r}: use letters, digits, '.', '_' and '-'")
    return run_id
