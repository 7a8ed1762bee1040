"""Sweep crash trials: folder state after a kill, an uninterrupted reference, rerun to completion."""

from __future__ import annotations

import json
import random
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from scripts.trials.common import (
    SWEEP_ARGV,
    SWEEP_ENV,
    SWEEP_POINTS,
    TrialStats,
    _env,
    _environ,
    _kill,
    _prepare_sample,
    _quiet_cli,
    _spawn_cli,
    check_cache,
)


@dataclass
class SweepState:
    """What a sweep folder holds after a kill."""

    state: str  # absent | empty | partial | complete
    keys: list[str]
    problems: list[str]
    temp_files: int


def sweep_state(runs_dir: Path, expected: set[str], allow_duplicates: bool = False) -> SweepState:
    """Every chunk reads back whole (all columns, the sweep schema), keys are grid points, the JSON files parse;
    the folder is absent, empty (created, nothing saved), partial (manifest and complete chunks) or complete."""
    import pyarrow.parquet as pq

    from engine.sweeps import sweep

    root = runs_dir / "sweeps"
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not folders:
        return SweepState("absent", [], [], 0)
    problems = [f"{len(folders)} sweep folders for one grid"] if len(folders) > 1 else []
    folder = folders[0]
    schema = sweep._schema()
    keys: list[str] = []
    for chunk in sorted((folder / "points").glob("chunk-*.parquet")):
        try:
            table = pq.read_table(chunk)
        except Exception as exc:  # reported, not raised: this is what the trial measures
            problems.append(f"{chunk.name}: unreadable ({type(exc).__name__}: {exc})")
            continue
        if not table.schema.equals(schema):
            problems.append(f"{chunk.name}: unexpected schema")
        keys += table.column("key").to_pylist()
    if not allow_duplicates and len(keys) != len(set(keys)):
        problems.append(f"{len(keys) - len(set(keys))} duplicate point rows")
    problems += [f"row for unknown key {k}" for k in sorted(set(keys) - expected)[:3]]
    docs = {}
    for name in ("manifest.json", "summary.json", "report.json"):
        if (folder / name).is_file():
            try:
                docs[name] = json.loads((folder / name).read_text(encoding="utf-8"))
            except ValueError as exc:
                problems.append(f"{name}: unreadable ({exc})")
    if keys and "manifest.json" not in docs:
        problems.append("point chunks without manifest.json")
    if "summary.json" in docs and set(keys) != expected and docs["summary.json"].get("counts", {}).get(
            "points") == len(expected):
        problems.append("summary.json written before every point was saved")
    temps = len([p for p in folder.rglob(".*.tmp")])
    if set(keys) == expected and {"summary.json", "report.json"} <= set(docs):
        state = "complete"
    elif not keys and "manifest.json" not in docs:
        state = "empty"
    else:
        state = "partial"
    return SweepState(state, keys, problems, temps)


@dataclass
class SweepReference:
    """An uninterrupted sweep: summary.json without its computed/reused counts, report.json, the point keys."""

    summary: dict
    report: bytes
    keys: set[str]
    seconds: float = 0.0  # wall time of the timed CLI process
    folder_after: float = 0.0  # seconds until the sweep folder's manifest appeared


def _sweep_docs(runs_dir: Path) -> tuple[dict, bytes]:
    [folder] = [p for p in (runs_dir / "sweeps").iterdir() if p.is_dir()]
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    summary.pop("counts", None)
    return summary, (folder / "report.json").read_bytes()


def reference_sweep(cache: Path, runs_dir: Path, runs: int = 2) -> SweepReference:
    """Run SWEEP_ARGV uninterrupted as a CLI process (twice by default: the first builds the exchange schedule
    cache, the second is timed)."""
    import pyarrow.parquet as pq

    env = _env({"EVBT_CACHE_DIR": str(cache), "EVBT_RUNS_DIR": str(runs_dir), **SWEEP_ENV})
    seconds = folder_after = 0.0
    for _ in range(runs):
        shutil.rmtree(runs_dir, ignore_errors=True)
        began = time.monotonic()
        proc = _spawn_cli(SWEEP_ARGV, env)
        folder_after = 0.0
        while proc.poll() is None:
            if not folder_after and list((runs_dir / "sweeps").glob("*/manifest.json")):
                folder_after = time.monotonic() - began
            time.sleep(0.005)
        seconds = time.monotonic() - began
        if proc.returncode != 0:
            raise RuntimeError(f"reference sweep failed with exit {proc.returncode}")
    summary, report = _sweep_docs(runs_dir)
    keys = {k for p in runs_dir.glob("sweeps/*/points/chunk-*.parquet") for k in pq.read_table(p)["key"].to_pylist()}
    if len(keys) != SWEEP_POINTS:
        raise RuntimeError(f"reference sweep stored {len(keys)} points, expected {SWEEP_POINTS}")
    return SweepReference(summary, report, keys, seconds, folder_after or seconds / 2)


def rerun_sweep(cache: Path, runs_dir: Path, done: int, reference: SweepReference,
                allow_duplicates: bool = False) -> list[str]:
    """Run the sweep to completion in ``runs_dir``: exactly the missing points are computed, no temp files are
    left, every point is stored once, and the results equal the uninterrupted reference sweep."""
    with _environ({"EVBT_RUNS_DIR": str(runs_dir), "EVBT_SWEEP_CHUNK_ROWS": SWEEP_ENV["EVBT_SWEEP_CHUNK_ROWS"]}):
        code, text = _quiet_cli("--cache-dir", str(cache), *SWEEP_ARGV)
    if code != 0:
        return [f"rerun exit {code}: {text.strip()[-300:]}"]
    problems = []
    counts = json.loads(text[text.index("{"):])["counts"]
    if counts["computed"] != SWEEP_POINTS - done or counts["reused"] != done:
        problems.append(f"rerun computed {counts['computed']} and reused {counts['reused']} with {done} of "
                        f"{SWEEP_POINTS} points saved")
    after = sweep_state(runs_dir, reference.keys, allow_duplicates)
    problems += [f"after rerun: {p}" for p in after.problems]
    if after.state != "complete" or len(set(after.keys)) != SWEEP_POINTS:
        problems.append(f"after rerun: folder {after.state} with {len(set(after.keys))} distinct points")
    if after.temp_files:
        names = sorted(str(t.relative_to(runs_dir)) for t in (runs_dir / "sweeps").rglob(".*.tmp"))
        problems.append(f"after rerun: {after.temp_files} temp files left in the sweep folder: {names[:3]}")
    summary, report = _sweep_docs(runs_dir)
    if summary != reference.summary:
        problems.append("summary differs from the uninterrupted sweep")
    if report != reference.report:
        problems.append("best-point report.json differs from the uninterrupted sweep")
    return problems


def sweep_crash_trials(trials: int, seed: int, work: Path) -> TrialStats:
    """SIGKILL `evbt sweep` at random moments (85% of them after its folder appeared, i.e. while it writes
    chunks, the summary or the report); each trial starts from an empty runs folder or resumes the previous
    trial's leftovers (half each). After the kill the folder is checked, then a copy is rerun to completion."""
    rng = random.Random(seed)
    began = time.monotonic()
    base = work / "cli-sweep"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    cache, runs_dir, verify = base / "cache", base / "runs", base / "verify"
    _prepare_sample(cache)
    reference = reference_sweep(cache, base / "reference")
    stats = TrialStats("cli-sweep", f"`evbt sweep` of {SWEEP_POINTS} points (4-row chunks, 30 ms write delay), "
                       "killed mostly while writing chunks; fresh or resuming the last kill's folder")
    env = _env({"EVBT_CACHE_DIR": str(cache), "EVBT_RUNS_DIR": str(runs_dir), **SWEEP_ENV})
    for trial in range(trials):
        stats.trials += 1
        if trial == 0 or rng.random() < 0.5:
            shutil.rmtree(runs_dir, ignore_errors=True)
        proc = _spawn_cli(SWEEP_ARGV, env)
        started = time.monotonic()
        if rng.random() < 0.15:
            time.sleep(rng.uniform(0.2, reference.folder_after))
        else:
            while proc.poll() is None and not list((runs_dir / "sweeps").glob("*/manifest.json")) and \
                    time.monotonic() - started < 60:
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, max(reference.seconds - reference.folder_after, 0.1) * 1.05))
        _kill(proc, stats)
        state = sweep_state(runs_dir, reference.keys)
        stats.states[state.state] = stats.states.get(state.state, 0) + 1
        stats.orphan_temp_files = max(stats.orphan_temp_files, state.temp_files)
        problems = list(state.problems)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from engine import saved_runs as runs

            runs.list_runs(runs_dir)
        problems += [f"runs ls warning: {w.message}" for w in caught]
        problems += check_cache(cache / "sample", None, set())
        if not problems:
            shutil.rmtree(verify, ignore_errors=True)
            if runs_dir.is_dir():
                shutil.copytree(runs_dir, verify)
            problems += rerun_sweep(cache, verify, len(set(state.keys)), reference)
        if problems:
            stats.failures.append(f"trial {trial} ({state.state}, {len(state.keys)} rows): " + "; ".join(problems))
        else:
            stats.held += 1
    stats.seconds = time.monotonic() - began
    return stats
