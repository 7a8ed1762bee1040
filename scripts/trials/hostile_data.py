"""Trials of what a read serves: bit flips in cache files, imports racing runs, symlinks planted at writers."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scripts.trials.common import (
    _env,
    _prepare_sample,
    _quiet_cli,
    _spawn_driver,
    _wait_ready,
    forget_schedules,
    write_csv,
)

RACE_SYMBOLS = "BABA,JD,0700.HK,9988.HK"
RACE_ARGV = ["--offline", "run", "reassurance", "--symbols", RACE_SYMBOLS, "--end", "2022-12-30", "--json"]


@dataclass
class Outcome:
    """Counts of one kind of trial; ``bad`` must be 0."""

    name: str
    trials: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    bad: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1


# ---------------------------------------------------------------------------- bit flips


def bitflip_trials(trials: int, seed: int, work: Path) -> Outcome:
    """Flip one random bit of a cache file per trial and read it as a run would: the read must raise a
    DataError naming the file (detected) or serve bars and metadata identical to the clean file (the flip hit
    bytes no reader uses); serving anything else is a failure."""
    from engine.errors import DataError
    from engine.prices.store import PriceStore
    from scripts.trials.common import make_frame

    began = time.monotonic()
    root = work / "bitflip"
    shutil.rmtree(root, ignore_errors=True)
    store = PriceStore(root)
    store.write("BABA", make_frame(1200, 5), "csv")
    path = store.path_for("BABA")
    clean = path.read_bytes()
    meta0, frame0 = PriceStore(root).read_checked("BABA")
    rng = random.Random(seed)
    out = Outcome("bit flips")
    for _ in range(trials):
        out.trials += 1
        data = bytearray(clean)
        pos = rng.randrange(len(data))
        data[pos] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
        try:
            meta, frame = PriceStore(root).read_checked("BABA")
        except DataError as exc:
            out.add("detected at read")
            if str(path) not in str(exc):
                out.bad += 1
                out.notes.append(f"byte {pos}: message does not name the file: {exc}")
            continue
        except Exception as exc:
            out.bad += 1
            out.notes.append(f"byte {pos}: {type(exc).__name__}: {exc}")
            continue
        if meta == meta0 and frame.equals(frame0):
            out.add("harmless (identical bars and metadata served)")
        else:
            out.bad += 1
            out.add("altered bars served")
    path.write_bytes(clean)
    out.seconds = time.monotonic() - began
    return out


# ---------------------------------------------------------------------------- imports racing runs


def _race_versions(base: Path) -> tuple[Path, Path]:
    """Two CSV versions of BABA (the sample's bars, and the same bars tilted by up to 6%)."""
    from engine.prices.store import PriceStore

    frame = PriceStore(base / "cache" / "sample").read_all("BABA").drop(columns="stale")
    tilt = frame.copy()
    ramp = 1.0 + 0.06 * np.linspace(0.0, 1.0, len(tilt))
    for col in ("open", "high", "low", "close", "adj_close"):
        tilt[col] = tilt[col] * ramp
    paths = []
    for n, version in enumerate((frame, tilt)):
        path = base / f"v{n}" / "BABA.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_csv(path, version)
        paths.append(path)
    return paths[0], paths[1]


def _run_record(cache: Path, runs: Path) -> tuple[str, str, float, str]:
    """(run id, BABA fingerprint in the saved manifest, final value in the saved report, stdout fingerprint)."""
    with _environ_runs(runs):
        code, text = _quiet_cli("--cache-dir", str(cache), *RACE_ARGV)
    if code != 0:
        raise RuntimeError(f"run exit {code}: {text.strip()[-300:]}")
    doc = json.loads(text[text.index("{"):])
    run_id = doc["run_id"]
    manifest = json.loads((runs / run_id / "manifest.json").read_text())
    report = json.loads((runs / run_id / "report.json").read_text())
    printed = doc["data"]["symbols"]["BABA"]["fingerprint"]
    return run_id, manifest["data"]["BABA"], float(report["metrics"]["final_value"]), printed


@contextlib.contextmanager
def _environ_runs(runs: Path) -> Iterator[None]:
    old = os.environ.get("EVBT_RUNS_DIR")
    os.environ["EVBT_RUNS_DIR"] = str(runs)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("EVBT_RUNS_DIR", None)
        else:
            os.environ["EVBT_RUNS_DIR"] = old


def import_race_trials(trials: int, work: Path) -> Outcome:
    """`evbt run` (in this process, saving its run) while another process flips BABA between two versions
    with `evbt data import` in a loop. Each saved run must be internally consistent: the fingerprint in its
    manifest and report, its run id and its final value all belong to the same version (references: each
    version run alone)."""
    began = time.monotonic()
    base = work / "import-race"
    shutil.rmtree(base, ignore_errors=True)
    _prepare_sample(base / "cache")
    cache = base / "cache" / "sample"
    v0, v1 = _race_versions(base)
    refs: dict[str, tuple[str, float]] = {}
    for n, csv in enumerate((v0, v1)):
        code, text = _quiet_cli("--cache-dir", str(cache), "data", "import", str(csv))
        if code != 0:
            raise RuntimeError(f"import failed: {text}")
        run_id, fp, final, _ = _run_record(cache, base / f"ref-runs-{n}")
        refs[fp] = (run_id, final)
    out = Outcome("imports racing runs")
    flipper = _spawn_driver("flip-import", str(cache), str(v0), str(v1), env=_env())
    try:
        _wait_ready(flipper)
        for trial in range(trials):
            out.trials += 1
            runs = base / "runs"
            try:
                run_id, fp, final, printed = _run_record(cache, runs)
            except RuntimeError as exc:
                out.bad += 1
                out.notes.append(f"trial {trial}: {exc}")
                continue
            ref = refs.get(fp)
            if ref is None or ref != (run_id, final) or printed != fp:
                out.bad += 1
                out.add("mismatched record")
                out.notes.append(f"trial {trial}: run {run_id} final {final:,.2f} recorded fingerprint {fp[:12]}")
            else:
                out.add(f"version {sorted(refs).index(fp)}")
            shutil.rmtree(runs, ignore_errors=True)
    finally:
        flipper.kill()
        flipper.wait()
        if flipper.stdout is not None:
            flipper.stdout.close()
    out.seconds = time.monotonic() - began
    return out


# ---------------------------------------------------------------------------- symlinks planted at writers


@dataclass
class Victims:
    """Files and folders outside the writers' folders that planted symlinks point to."""

    root: Path
    made: list[Path] = field(default_factory=list)

    def file(self) -> Path:
        path = self.root / f"victim-{len(self.made)}.txt"
        path.write_bytes(b"precious")
        self.made.append(path)
        return path

    def folder(self) -> Path:
        path = self.root / f"victim-dir-{len(self.made)}"
        path.mkdir()
        (path / "keep.txt").write_bytes(b"precious")
        self.made.append(path)
        return path

    def touched(self) -> list[str]:
        bad = []
        for path in self.made:
            if path.is_dir():
                if sorted(p.name for p in path.iterdir()) != ["keep.txt"] or \
                        (path / "keep.txt").read_bytes() != b"precious":
                    bad.append(path.name)
            elif not path.is_file() or path.read_bytes() != b"precious":
                bad.append(path.name)
        return bad


GUESS = "0" * 16


@contextlib.contextmanager
def planted_temp_names(victims: Victims) -> Iterator[list[Path]]:
    """Every atomic write finds symlinks to victim files at its temp names: the old predictable
    `.<name>.<pid>.tmp` and the exact random name it is about to try first (as if an attacker guessed it)."""
    import engine.atomic as atomic

    planted: list[Path] = []
    real_create, real_token = atomic._create_exclusive, atomic.secrets.token_hex
    first = {"pending": False}

    def token(n: int) -> str:
        if first["pending"]:
            first["pending"] = False
            return GUESS
        return real_token(n)

    def create(folder: Path, name: str) -> tuple[Path, int]:
        folder.mkdir(parents=True, exist_ok=True)
        for guess in (f".{name}.{os.getpid()}.tmp", f".{name}.{GUESS}.{os.getpid()}.tmp"):
            link = folder / guess
            if not os.path.lexists(link):
                link.symlink_to(victims.file())
                planted.append(link)
        first["pending"] = True
        return real_create(folder, name)

    atomic._create_exclusive, atomic.secrets.token_hex = create, token
    try:
        yield planted
    finally:
        atomic._create_exclusive, atomic.secrets.token_hex = real_create, real_token


def symlink_trials(work: Path, quick: bool = False) -> tuple[list[tuple[str, str, str]], int]:
    """Run every writer with symlinks planted at its temp names and destination; (rows, targets touched).
    ``quick`` (the test suite) leaves out the slow writers (HTML/PNG report, sweep folder)."""
    from engine.events.ratings import ratings_path, write_cached

    base = work / "symlinks"
    shutil.rmtree(base, ignore_errors=True)
    (base / "victims").mkdir(parents=True)
    victims = Victims(base / "victims")
    _prepare_sample(base / "cache")
    cache = base / "cache" / "sample"
    out_dir = base / "out"
    out_dir.mkdir()
    csv = base / "BABA.csv"
    from engine.prices.store import PriceStore

    write_csv(csv, PriceStore(cache).read_all("BABA").drop(columns="stale"))
    runs = base / "runs"
    rows: list[tuple[str, str, str]] = []

    def dest_link(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(path):
            path.unlink()
        path.symlink_to(victims.file())

    def cli(*argv: str) -> str:
        with _environ_runs(runs):
            code, text = _quiet_cli("--cache-dir", str(cache), *argv)
        return f"exit {code}" + ("" if code == 0 else f": {text.strip().splitlines()[-1][:120]}")

    run_args = ["--offline", "run", "reassurance", "--symbols", "BABA,JD", "--end", "2022-12-30"]
    writers: list[tuple[str, Callable[[], str], list[Path]]] = [
        ("cache file (`data import`)", lambda: cli("data", "import", str(csv)), [cache / "BABA.parquet"]),
        ("HTML report and PNG chart (`run --html --plot`)",
         lambda: cli(*run_args, "--no-save", "--html", str(out_dir / "r.html"), "--plot", str(out_dir / "r.png")),
         [out_dir / "r.html", out_dir / "r.png"]),
        ("exchange-schedule cache (`.calendars/*.npz`)",
         lambda: (shutil.rmtree(cache / ".calendars", ignore_errors=True), forget_schedules(),
                  cli(*run_args, "--no-save"))[2], []),
        ("ratings cache", lambda: (write_cached(ratings_path(cache, "BABA"), pd.DataFrame(
            {"date": ["2022-01-03"], "firm": ["X"], "from_grade": ["Hold"], "to_grade": ["Buy"],
             "action": ["up"]})), "written")[1], [ratings_path(cache, "BABA")]),
        ("sweep folder (chunks, manifest, summary, report)",
         lambda: cli("--offline", "sweep", "reassurance", "--symbols", "BABA,JD", "--end", "2022-12-30", "-g",
                     "hold=1..3", "--quiet"), []),
    ]
    if quick:
        writers = [w for w in writers if not w[0].startswith(("HTML", "sweep"))]
    for name, call, dests in writers:
        for d in dests:
            dest_link(d)
        with planted_temp_names(victims) as planted:
            result = call()
        still_links = [d.name for d in dests if d.is_symlink()]
        rows.append((name, f"{len(planted)} temp-name symlinks + {len(dests)} at destinations; {result}; "
                     f"destinations now symlinks: {still_links or 'none'}", "held" if not still_links else "FAILED"))
    # saved run folder: the work folders `.tmp-<id>-<pid>` / `.old-<id>-<pid>` planted as symlinks to a folder
    with _environ_runs(runs):
        code, text = _quiet_cli("--cache-dir", str(cache), *run_args, "--json")
    run_id = json.loads(text[text.index("{"):])["run_id"] if code == 0 else "?"
    for prefix in (".tmp", ".old"):
        (runs / f"{prefix}-{run_id}-{os.getpid()}").symlink_to(victims.folder(), target_is_directory=True)
    result = cli(*run_args)  # saves again: replaces the existing run through the planted names
    rows.append(("saved run (`.tmp-<id>-<pid>` and `.old-<id>-<pid>` planted as folder symlinks)", result,
                 "held" if result == "exit 0" else "FAILED"))
    touched = victims.touched()
    return rows, len(touched)


def flip_import_driver(cache: str, v0: str, v1: str) -> None:
    """Child process: `evbt data import` of BABA, alternating two versions, forever."""
    k = 0
    while True:
        _quiet_cli("--cache-dir", cache, "data", "import", v0 if k % 2 == 0 else v1)
        if k == 0:
            print("ready", flush=True)
        k += 1
