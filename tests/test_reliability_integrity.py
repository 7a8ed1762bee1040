"""What a read serves is what was verified: altered, damaged, hostile or stray cache files (issue 17).

Each case builds the altered file the way a careless tool or an attacker would (bars changed under the old
metadata, or changed with the hashes recomputed so only the price rules can catch it) and asserts the read
refuses it with a DataError naming the file, `data ls` and `data verify` never crash, and nothing is served.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.errors import DataError
from engine.prices import cache_file
from engine.prices.store import PriceStore
from scripts.trials.common import forget_schedules

Run = Callable[..., tuple[int, str, str]]


def bars(periods: int = 30, start: str = "2022-01-03") -> pd.DataFrame:
    idx = pd.bdate_range(start, periods=periods, name="date")
    close = 100.0 + np.arange(periods, dtype="float64")
    return pd.DataFrame({"open": close - 0.5, "high": close + 1, "low": close - 1, "close": close,
                         "adj_close": close, "volume": np.full(periods, 1000.0)}, index=idx)


def rewrite(path: Path, change: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
            meta_change: Callable[[dict], dict] | None = None, rehash: bool = False,
            raw_meta: bytes | None = None) -> None:
    """Rewrite a cache file with changed bars/metadata (hashes recomputed when ``rehash``)."""
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[cache_file.META_KEY])
    frame = table.to_pandas()
    if change is not None:
        frame = change(frame)
    if meta_change is not None:
        meta = meta_change(meta)
    if rehash:
        view = frame.set_index("date")
        meta["content_hash"] = cache_file.content_hash(view)
        meta.pop("meta_hash", None)
        meta["meta_hash"] = cache_file.meta_hash(meta)
    out = pa.Table.from_pandas(frame, preserve_index=False)
    blob = raw_meta if raw_meta is not None else json.dumps(meta).encode()
    pq.write_table(out.replace_schema_metadata({cache_file.META_KEY: blob}), path)


def _bump(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[5, ["open", "high", "low", "close", "adj_close"]] *= 1.01
    return frame


def _off_midnight(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[3, "date"] = frame.loc[3, "date"] + pd.Timedelta(hours=9)
    return frame


def _nan_close(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[7, "close"] = np.nan
    return frame


def _text_close(frame: pd.DataFrame) -> pd.DataFrame:
    frame["close"] = frame["close"].map(lambda v: f"{v:.2f}")
    return frame


def _shuffled(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sample(frac=1.0, random_state=3).reset_index(drop=True)


ALTERED = {
    "bars changed, metadata kept": dict(change=_bump),
    "bar moved off midnight (hashes recomputed)": dict(change=_off_midnight, rehash=True),
    "NaN close inside the period (hashes recomputed)": dict(change=_nan_close, rehash=True),
    "close stored as text": dict(change=_text_close),
    "rows shuffled (hashes recomputed)": dict(change=_shuffled, rehash=True),
    "metadata not JSON": dict(raw_meta=b"{not json"),
    "metadata lacks keys": dict(meta_change=lambda m: {k: v for k, v in m.items() if k not in ("rows", "source")}),
    "metadata rows wrong (hashes recomputed)": dict(meta_change=lambda m: {**m, "rows": 29}, rehash=True),
    "fetched_at altered": dict(meta_change=lambda m: {**m, "fetched_at": "2001-01-01T00:00:00Z"}),
    "meta_hash key renamed by a flipped bit": dict(meta_change=lambda m: {"muta_hash" if k == "meta_hash" else k: v
                                                                          for k, v in m.items()}),
}


@pytest.mark.parametrize("case", list(ALTERED))
def test_altered_file_is_refused_at_read_and_reported(case: str, tmp_path: Path) -> None:
    store = PriceStore(tmp_path)
    store.write("BABA", bars(), "csv")
    path = store.path_for("BABA")
    rewrite(path, **ALTERED[case])
    for read in (lambda s: s.load("BABA"), lambda s: s.read_all("BABA"), lambda s: s.fingerprint("BABA")):
        with pytest.raises(DataError) as info:
            read(PriceStore(tmp_path))
        assert str(path) in str(info.value) and "damaged or altered" in str(info.value)
    (result,) = PriceStore(tmp_path).verify()
    assert not result.ok and result.status == "damaged"
    entries = PriceStore(tmp_path).entries()  # `data ls` never raises
    assert [e["symbol"] for e in entries] == ["BABA"]


def test_cli_ls_verify_and_run_on_altered_files(run_cli: Run, sample_cache: Path) -> None:
    rewrite(sample_cache / "BABA.parquet", raw_meta=b"\x00garbage")
    rewrite(sample_cache / "JD.parquet", change=_text_close)
    rewrite(sample_cache / "PDD.parquet", change=_bump)
    code, out, err = run_cli("--offline", "data", "ls")
    assert code == 0 and "Traceback" not in err, err
    assert "BABA" in out and "DAMAGED" in out
    code, out, err = run_cli("--offline", "data", "verify")
    assert code == 1 and "internal error" not in err, err
    assert "BABA: DAMAGED: metadata is not JSON" in out and "JD: DAMAGED: columns differ" in out
    assert "PDD: DAMAGED: content hash mismatch" in out
    code, out, err = run_cli("--offline", "run", "reassurance", "--symbols", "PDD", "--no-save")
    assert code == 1 and "PDD.parquet: damaged or altered cache file" in err and "internal" not in err, err


def test_stray_file_named_and_skipped_and_absent_symbol_not_damaged(run_cli: Run, sample_cache: Path) -> None:
    (sample_cache / "BABA copy.parquet").write_bytes((sample_cache / "BABA.parquet").read_bytes())
    code, out, err = run_cli("--offline", "data", "ls")
    assert code == 0 and "BABA copy.parquet" in out and "SKIPPED" in out, err
    code, out, err = run_cli("--offline", "data", "verify")
    assert code == 0, out + err
    assert "BABA copy.parquet: skipped (not a cache file name; ignored)" in out and "BABA: ok" in out
    code, out, err = run_cli("--offline", "data", "verify", "ZZZZ")
    assert code == 1 and "ZZZZ: not cached" in out and "DAMAGED" not in out, out + err


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_orphan_temps_of_killed_writers_removed_by_next_writer_and_verify(tmp_path: Path) -> None:
    store = PriceStore(tmp_path)
    store.write("BABA", bars(), "csv")
    dead = _dead_pid()
    orphans = [tmp_path / f".BABA.parquet.{dead}.tmp", tmp_path / f".JD.parquet.abcd.{dead}.tmp"]
    for p in orphans:
        p.write_bytes(b"x" * 2048)
    live = tmp_path / f".JD.parquet.ffff.{os.getpid()}.tmp"  # a writer still running: kept
    live.write_bytes(b"y")
    results = store.verify()
    removed = sorted(r.path.name for r in results if r.status == "removed")
    assert removed == sorted(p.name for p in orphans) and live.exists()
    assert "2.0 KB" in next(r.line() for r in results if r.status == "removed")
    orphans[0].write_bytes(b"z")
    with pytest.warns(Warning, match="removed 1 temp file"):
        store.write("JD", bars(), "csv")
    assert not orphans[0].exists() and live.exists()


def test_random_bit_flips_are_detected_or_harmless(tmp_path: Path) -> None:
    """Flip one random bit of a cache file, 40 times: the read raises DataError or serves exactly the clean
    bars and metadata (a flip in bytes no reader uses); nothing altered is ever served."""
    store = PriceStore(tmp_path)
    store.write("BABA", bars(200), "csv")
    path = store.path_for("BABA")
    clean = path.read_bytes()
    meta0, frame0 = PriceStore(tmp_path).read_checked("BABA")
    rng = random.Random(17)
    served_altered = []
    for _ in range(40):
        data = bytearray(clean)
        pos = rng.randrange(len(data))
        data[pos] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
        try:
            meta, frame = PriceStore(tmp_path).read_checked("BABA")
        except DataError:
            continue
        if meta != meta0 or not frame.equals(frame0):
            served_altered.append(pos)
    assert served_altered == []


def test_run_records_the_version_it_read_even_if_the_file_changes(sample_cache: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A concurrent `data import` replaces BABA between the price load and the end of the run: the run's
    fingerprint and run id are those of the bars it traded (was: the new file's)."""
    from engine import backtest
    from engine.plan.config import make_run_config

    def config():
        return make_run_config("reassurance", [], {"symbols": "BABA,JD", "start": "2021-03-01",
                                                   "end": "2022-12-01"})

    store = PriceStore(sample_cache, offline=True)
    v1 = store.fingerprint("BABA")
    clean = backtest.run(config(), PriceStore(sample_cache, offline=True))
    other = PriceStore(sample_cache).read_all("BABA").drop(columns="stale") * 1.02
    original = PriceStore.load

    def load_then_replace(self: PriceStore, symbol: str, *args: object) -> pd.DataFrame:
        frame = original(self, symbol, *args)
        if symbol == "BABA":
            PriceStore(sample_cache).write("BABA", other, "csv")  # another process, another store
        return frame

    monkeypatch.setattr(PriceStore, "load", load_then_replace)
    raced = backtest.run(config(), PriceStore(sample_cache, offline=True))
    assert PriceStore(sample_cache).fingerprint("BABA") != v1  # the file really changed
    assert raced.fingerprints["BABA"] == v1
    assert raced.report["data"]["symbols"]["BABA"]["fingerprint"] == v1
    assert raced.report["run_id"] == clean.report["run_id"]
    assert raced.report["metrics"] == clean.report["metrics"]


def _damage_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _damage_shift_opens(path: Path) -> None:
    """A valid npz whose opens moved a day later (results would change): rewritten without care for digests."""
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["opens"] = arrays["opens"] + np.timedelta64(1, "D")
    arrays["closes"] = arrays["closes"] + np.timedelta64(1, "D")
    arrays.pop("digest", None)
    with path.open("wb") as fh:
        np.savez(fh, **arrays)


@pytest.mark.parametrize("damage", [_damage_truncate, _damage_shift_opens], ids=["truncated", "altered"])
def test_schedule_cache_damaged_or_altered_is_rebuilt_never_trusted(damage: Callable[[Path], None],
                                                                    run_cli: Run, sample_cache: Path) -> None:
    """A damaged `.calendars/*.npz` made every run fail with `internal error: BadZipFile`; an altered one
    changed results (988,430 -> 992,532) under the same run id."""
    argv = ("--offline", "run", "reassurance", "--symbols", "BABA,JD,0700.HK,9988.HK", "--end", "2022-12-30",
            "--json", "--no-save")
    forget_schedules()
    code, clean, err = run_cli(*argv)
    assert code == 0, err
    files = sorted(sample_cache.rglob(".calendars/*.npz"))
    assert files, "the run keeps its exchange schedules in the cache"
    for path in files:
        damage(path)
    forget_schedules()
    code, again, err = run_cli(*argv)
    assert code == 0 and "internal error" not in err, err
    assert json.loads(again)["run_id"] == json.loads(clean)["run_id"]
    assert json.loads(again)["metrics"] == json.loads(clean)["metrics"]
    forget_schedules()
    code, third, _ = run_cli(*argv)  # the rebuilt files are the right ones
    assert code == 0 and json.loads(third)["metrics"] == json.loads(clean)["metrics"]

