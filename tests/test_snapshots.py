"""Exact reruns from data snapshots: a run keeps the versions of the price series it read (content-addressed,
hard-linked: unchanged data costs no disk), `evbt rerun` reproduces the report byte for byte after the cache
changed, `--current-data` lists the trades that changed, `runs rm` + `runs gc` free what nobody refers to."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.prices.snapshots import SnapshotStore
from engine.prices.store import PriceStore

RunCli = Callable[..., tuple[int, str, str]]
RUN = ("--offline", "run", "reassurance", "--symbols", "BABA,JD,0700.HK", "--end", "2022-12-30")


def _run(run_cli: RunCli, *extra: str) -> dict:
    code, out, err = run_cli(*RUN, *extra, "--json")
    assert code == 0, err
    return json.loads(out)


def _change(store: PriceStore, symbol: str, factor: float) -> None:
    """A refetch that revised every price of ``symbol`` (what `evbt data fetch` or `import` can do)."""
    frame = store.read_all(symbol)
    for col in ("open", "high", "low", "close", "adj_close"):
        frame[col] = frame[col] * factor
    meta = store.read_meta(symbol)
    store.write(symbol, frame, meta["source"], meta.get("adjustment", ""))


def _rewrite_same(store: PriceStore, symbol: str) -> None:
    meta = store.read_meta(symbol)
    store.write(symbol, store.read_all(symbol), meta["source"], meta.get("adjustment", ""))


def test_rerun_is_exact_after_the_cache_changed(run_cli: RunCli, sample_cache: Path) -> None:
    report = _run(run_cli)
    store = PriceStore(sample_cache)
    _change(store, "BABA", 1.1)
    code, out, err = run_cli("--offline", "rerun", report["run_id"])
    assert code == 0, err
    assert f"reproduced exactly: {report['run_id']}" in out and "data versions it read" in out
    code, out, err = run_cli("--offline", "rerun", report["run_id"], "--current-data")
    assert code == 0, err
    assert "not reproduced" in out and "data BABA: fingerprint" in out
    assert "Trades that changed" in out and "BABA long on" in out and "entry_price" in out


def test_unchanged_data_costs_nothing(run_cli: RunCli, sample_cache: Path) -> None:
    _run(run_cli)
    store = PriceStore(sample_cache)
    snaps = SnapshotStore(store)
    assert len(snaps.versions()) >= 3 and snaps.disk_cost() == 0  # hard links to the cache files
    for _ in range(3):  # three re-imports of identical data: new files, same content
        for symbol in ("BABA", "JD", "0700.HK", "KWEB"):
            _rewrite_same(store, symbol)
    assert snaps.disk_cost() == 0
    size = store.path_for("BABA").stat().st_size
    _change(store, "BABA", 1.2)
    assert snaps.disk_cost() == size  # the old BABA now lives in its snapshot alone


def test_runs_rm_and_gc_free_unreferenced_versions(run_cli: RunCli, sample_cache: Path) -> None:
    report = _run(run_cli)
    store = PriceStore(sample_cache)
    _change(store, "BABA", 0.9)
    kept = _run(run_cli)  # a second run on the new BABA
    snaps = SnapshotStore(store)
    before = len(snaps.versions())
    code, out, err = run_cli("runs", "gc")
    assert code == 0 and "freed 0 data version(s)" in out  # both runs still refer to their versions
    code, out, err = run_cli("runs", "rm", report["run_id"])
    assert code == 0 and f"{report['run_id']}: removed" in out
    code, out, err = run_cli("runs", "gc")
    assert code == 0 and "freed 1 data version(s)" in out, out
    assert len(snaps.versions()) == before - 1 and snaps.disk_cost() == 0
    code, out, err = run_cli("--offline", "rerun", kept["run_id"])
    assert code == 0 and "reproduced exactly" in out
    code, _, err = run_cli("runs", "rm", "nope-123")
    assert code == 2 and "not found" in err


@pytest.mark.parametrize("damage", ["manifest", "manifest missing", "manifest and report"])
def test_gc_never_frees_what_a_damaged_run_folder_may_need(run_cli: RunCli, sample_cache: Path, damage: str) -> None:
    """A run whose manifest.json was damaged counted as referring to nothing: `runs gc` deleted the only copy of the
    data versions it had read (exit 0). Now its report's fingerprints are kept, and a folder telling neither
    stops gc (exit 1) before anything is freed."""
    report = _run(run_cli)
    store = PriceStore(sample_cache)
    _change(store, "BABA", 0.9)  # the version the run read now lives in its snapshot alone
    snaps = SnapshotStore(store)
    before = sorted(p.name for p in snaps.versions())
    folder = Path(os.environ["EVBT_RUNS_DIR"]) / report["run_id"]
    if damage == "manifest missing":
        (folder / "manifest.json").unlink()
    else:
        (folder / "manifest.json").write_text("{garbage")
    if damage == "manifest and report":
        (folder / "report.json").write_text("[]")
    code, out, err = run_cli("runs", "gc")
    if damage == "manifest and report":
        assert code == 1, (out, err)
        assert f"error: cannot tell which data versions {folder} refers to" in err, err
        assert "nothing was freed" in err and "Traceback" not in err
    else:
        assert code == 0 and "freed 0 data version(s)" in out, (out, err)
    assert sorted(p.name for p in snaps.versions()) == before


def test_gc_against_a_missing_runs_folder_frees_nothing(run_cli: RunCli, sample_cache: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A mistyped EVBT_RUNS_DIR (a folder that does not exist, or a file) referred to nothing: `runs gc` freed every
    snapshot, so the runs of the real folder could never be reproduced exactly again."""
    report = _run(run_cli)
    store = PriceStore(sample_cache)
    _change(store, "BABA", 0.9)
    snaps = SnapshotStore(store)
    before = sorted(p.name for p in snaps.versions())
    runs = os.environ["EVBT_RUNS_DIR"]
    (tmp_path / "a file").write_text("x")
    for wrong, what in ((tmp_path / "runz", "does not exist"), (tmp_path / "a file", "is not a folder")):
        monkeypatch.setenv("EVBT_RUNS_DIR", str(wrong))
        code, out, err = run_cli("runs", "gc")
        assert code == 2, (out, err)
        assert f"error: runs folder {wrong} {what}:" in err and "nothing was freed" in err
        assert sorted(p.name for p in snaps.versions()) == before
    code, _, err = run_cli("runs", "ls")  # a file as the runs folder: said "no saved runs"
    assert code == 2 and "is not a folder" in err
    monkeypatch.setenv("EVBT_RUNS_DIR", runs)
    code, out, err = run_cli("--offline", "rerun", report["run_id"])
    assert code == 0 and "reproduced exactly" in out, (out, err)


def _sweep_id(run_cli: RunCli, *grid: str) -> str:
    code, out, err = run_cli("--offline", "sweep", "reassurance", "--symbols", "BABA,JD", *grid, "--quiet", "--json",
                             "--workers", "1")
    assert code == 0, err
    return str(json.loads(out)["sweep_id"])


def test_runs_rm_removes_a_sweep_and_gc_then_frees_what_only_it_kept(run_cli: RunCli, sample_cache: Path) -> None:
    """No command removed a sweep (`runs rm SWEEP_ID` said "run not found", later "remove its folder" by hand), so
    the data versions it kept stayed for good."""
    sweep_id = _sweep_id(run_cli, "-g", "hold=2,3")
    sweeps = Path(os.environ["EVBT_RUNS_DIR"]) / "sweeps"
    _change(PriceStore(sample_cache), "JD", 1.05)  # the sweep's JD version now lives in its snapshot alone
    snaps = SnapshotStore.for_store(PriceStore(sample_cache))
    before = {p.stem for p in snaps.versions()}
    code, out, err = run_cli("runs", "rm", f"{sweep_id}:2")  # a point is not removable on its own
    assert code == 2 and f"is a point of sweep {sweep_id}" in err and (sweeps / sweep_id).is_dir()
    code, out, err = run_cli("runs", "rm", sweep_id[:16], "no-such-run")  # every reference resolved first
    assert code == 2 and (sweeps / sweep_id / "manifest.json").is_file(), err
    code, out, err = run_cli("runs", "rm", sweep_id[:16])
    assert code == 0 and out.strip() == f"{sweep_id}: removed", err
    assert not (sweeps / sweep_id).exists()
    assert [p.name for p in sweeps.iterdir()] == [f".{sweep_id}.lock"]  # kept: a waiting sweep locks that file
    code, out, err = run_cli("runs", "gc")
    assert code == 0, err
    assert {p.stem for p in snaps.versions()} < before  # the superseded JD version went with its only sweep


def test_runs_rm_refuses_a_running_sweep(run_cli: RunCli, sample_cache: Path) -> None:
    from engine.sweeps.storage import folder_lock

    sweep_id = _sweep_id(run_cli, "-g", "hold=2,3")
    folder = Path(os.environ["EVBT_RUNS_DIR"]) / "sweeps" / sweep_id
    with folder_lock(folder):  # what a sweep running in that folder holds
        code, _, err = run_cli("runs", "rm", sweep_id)
    assert code == 1, err
    assert f"error: sweep {sweep_id} is running" in err and "nothing was removed" in err
    assert (folder / "manifest.json").is_file() and (folder / "points").is_dir()


def test_rerun_keeps_created_and_tags(run_cli: RunCli, sample_cache: Path) -> None:
    report = _run(run_cli, "--tag", "baseline")
    folder = Path(os.environ["EVBT_RUNS_DIR"]) / report["run_id"]
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["created_at"] = "2020-01-01T00:00:00+00:00"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    code, _out, err = run_cli("--offline", "rerun", report["run_id"])
    assert code == 0, err
    after = json.loads((folder / "manifest.json").read_text())
    assert after["created_at"] == "2020-01-01T00:00:00+00:00" and after["tags"] == ["baseline"]


def test_rerun_of_a_sweep_point_and_a_report_file(run_cli: RunCli, sample_cache: Path, tmp_path: Path) -> None:
    code, out, err = run_cli("--offline", "sweep", "reassurance", "--symbols", "BABA,JD", "--end", "2022-12-30",
                             "-g", "hold=2,4", "--quiet", "--json")
    assert code == 0, err
    sweep_id = json.loads(out)["sweep_id"]
    _change(PriceStore(sample_cache), "JD", 1.05)
    for ref in (sweep_id, f"{sweep_id}:2"):
        code, out, err = run_cli("--offline", "rerun", ref)
        assert code == 0 and "reproduced exactly" in out, (ref, out, err)
    code, out, _ = run_cli("--offline", "runs", "show", sweep_id, "--json")
    path = tmp_path / "report.json"
    path.write_text(out)
    code, out, err = run_cli("--offline", "rerun", str(path))
    assert code == 0 and "reproduced exactly" in out, err


def _store_with(tmp_path: Path) -> tuple[PriceStore, dict[str, str]]:
    import numpy as np
    import pandas as pd

    def bars(base: float) -> pd.DataFrame:
        close = base + np.arange(20, dtype="float64")
        return pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close,
                             "adj_close": close, "volume": np.full(20, 10.0)},
                            index=pd.bdate_range("2022-01-03", periods=20, name="date"))

    writer = PriceStore(tmp_path)
    for i, sym in enumerate(("BABA", "JD", "PDD")):
        writer.write(sym, bars(100.0 + i), "csv")
    reader = PriceStore(tmp_path, offline=True)
    reader.preload(["BABA", "JD", "PDD"])
    fps = {s: reader.fingerprint(s) for s in ("BABA", "JD", "PDD")}
    writer.write("JD", bars(7.0), "csv")  # replaced after the run read it
    return reader, fps


def test_keep_links_the_versions_read_and_never_a_replacement(tmp_path: Path) -> None:
    """keep() trusts the identity of the version the store read (no footer re-read) only while the file still
    is that version: JD, replaced after the read, is reported lost, and no snapshot holds the new JD."""
    import pytest

    from engine.errors import EvbtWarning

    reader, fps = _store_with(tmp_path)
    snaps = SnapshotStore.for_store(reader)
    with pytest.warns(EvbtWarning, match="data version not kept for JD"):
        assert snaps.keep(fps) == ["JD"]
    assert sorted(p.stem for p in snaps.versions()) == sorted([fps["BABA"], fps["PDD"]])
    for sym in ("BABA", "PDD"):
        assert os.path.samefile(snaps.path(fps[sym]), reader.path_for(sym))  # hard links: free
    with snaps.pinned(fps) as (pinned, missing):
        assert missing == ["JD"] and pinned.fingerprint("BABA") == fps["BABA"]


def test_a_keep_during_gc_waits_and_its_version_survives(tmp_path: Path) -> None:
    """The race: gc reads the runs' references (a new run's manifest not there yet), the run keeps its version,
    then gc removes what the references did not name. gc holds the snapshot lock from the reading to the last
    removal, so the keep waits and its version is there afterwards (without the lock gc removed it)."""
    import threading

    reader, fps = _store_with(tmp_path)
    snaps = SnapshotStore.for_store(reader)
    wanted = {"BABA": fps["BABA"]}
    references_read, keep_started = threading.Event(), threading.Event()

    def references() -> list[str]:  # gc's reading of the runs folder: nothing refers to BABA yet
        references_read.set()
        assert keep_started.wait(5)
        threading.Event().wait(0.2)  # the keep, if it were not excluded, completes in this window
        return []

    def run_saving() -> None:
        assert references_read.wait(5)
        keep_started.set()
        snaps.keep(wanted)

    keeper = threading.Thread(target=run_saving)
    keeper.start()
    snaps.gc(references)
    keeper.join(5)
    assert not keeper.is_alive()
    assert [p.stem for p in snaps.versions()] == [fps["BABA"]]


def test_gc_gives_up_with_a_clear_error_while_a_keep_holds_the_lock(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl

    from engine.errors import DataError
    from engine.prices import snapshots

    reader, fps = _store_with(tmp_path)
    snaps = SnapshotStore.for_store(reader)
    snaps.keep({"BABA": fps["BABA"]})
    monkeypatch.setattr(snapshots, "GC_LOCK_TIMEOUT", 0.05)
    with open(tmp_path / ".locks" / snapshots.LOCK_NAME, "a") as held:  # a run keeping its versions
        fcntl.flock(held, fcntl.LOCK_SH)
        with pytest.raises(DataError, match=r"being kept by another evbt process.*nothing was freed"):
            snaps.gc([])
    assert [p.stem for p in snaps.versions()] == [fps["BABA"]]
    assert snaps.gc([]).removed == 1  # once the keep is done
