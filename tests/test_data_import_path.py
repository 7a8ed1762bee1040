"""The `data import` write path: batch writes equal one-by-one writes, failures leave a sound cache, and the
command loads none of the heavy libraries it does not use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.errors import DataError, EvbtWarning
from engine.prices.store import PriceStore
from engine.prices.validate import validate_prices

REPO = Path(__file__).resolve().parents[1]


def bars(n: int = 30, start: str = "2022-01-03", base: float = 100.0, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = base * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    frame = pd.DataFrame({"open": close, "high": close * 1.01, "low": close * 0.99, "close": close,
                          "adj_close": close, "volume": rng.integers(0, 1000, n).astype(float)},
                         index=pd.bdate_range(start, periods=n, name="date"))
    frame.iloc[3, :4] = frame.iloc[3]["close"]
    frame.iloc[3, 5] = 0.0  # a stale bar
    return frame


def contents(store: PriceStore, symbol: str) -> tuple[dict, pd.DataFrame]:
    meta, frame = store.read_checked(symbol)
    return {k: v for k, v in meta.items() if k != "fetched_at"}, frame


def test_write_many_equals_writing_one_by_one_and_the_last_of_a_symbol_wins(tmp_path: Path) -> None:
    items = [("BABA", bars(seed=1), "csv", "a"), ("0700.HK", validate_prices(bars(seed=2), "0700.HK"), "csv", "b"),
             ("JD", bars(seed=3), "csv", "c"), ("BABA", bars(seed=4, base=50), "csv", "d"),
             ("^HSI", bars(seed=5), "csv", "e")]
    one, many = PriceStore(tmp_path / "one"), PriceStore(tmp_path / "many")
    metas_one = [one.write(*item) for item in items]
    metas_many = list(many.write_many(items, threads=4))
    assert [m["symbol"] for m in metas_many] == ["BABA", "0700.HK", "JD", "BABA", "^HSI"]
    strip = [{k: v for k, v in m.items() if k != "fetched_at"} for m in (*metas_one, *metas_many)]
    assert strip[:5] == strip[5:]
    assert many.symbols() == one.symbols() == ["0700.HK", "BABA", "JD", "^HSI"]
    for sym in one.symbols():
        meta_one, frame_one = contents(one, sym)
        meta_many, frame_many = contents(many, sym)
        assert meta_one == meta_many
        pd.testing.assert_frame_equal(frame_one, frame_many, check_exact=True)
    assert contents(many, "BABA")[0]["adjustment"] == "d"  # the later BABA item replaced the earlier one
    assert contents(many, "BABA")[1]["stale"].tolist() == validate_prices(bars(seed=4, base=50), "B")["stale"].tolist()


def test_a_checked_frame_with_wrong_stale_flags_is_recomputed_not_stored_as_given(tmp_path: Path) -> None:
    frame = validate_prices(bars(), "BABA")
    flipped = frame.copy()
    flipped.iloc[3, flipped.columns.get_loc("stale")] = False
    flipped.iloc[4, flipped.columns.get_loc("stale")] = True
    store = PriceStore(tmp_path)
    list(store.write_many([("BABA", flipped, "csv", "")]))
    assert store.read_all("BABA")["stale"].tolist() == frame["stale"].tolist()


def test_a_failed_batch_raises_the_first_bad_item_and_replaces_no_file(tmp_path: Path) -> None:
    bad = bars(seed=9)
    bad.iloc[5, bad.columns.get_loc("high")] = 1.0  # high below open and close
    items = [(f"ZA{chr(65 + i)}", bars(seed=i), "csv", "") for i in range(6)]
    items[3] = ("ZBAD", bad, "csv", "")
    store = PriceStore(tmp_path)
    old = store.write("ZAA", bars(seed=42), "csv", "old")  # a file the failed batch must leave as it was
    before = store.path_for("ZAA").read_bytes()
    with pytest.raises(DataError, match=r"ZBAD: invalid price bar on .*high < max\(open, close\)"):
        list(store.write_many(items, threads=3))
    assert store.symbols() == ["ZAA"]  # every item is checked and staged before any file is replaced
    assert store.path_for("ZAA").read_bytes() == before
    assert PriceStore(tmp_path).read_meta("ZAA")["content_hash"] == old["content_hash"]
    assert all(r.ok for r in store.verify())
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_batch_failing_at_a_rename_keeps_the_files_replaced_before_it_sound(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.atomic

    real = engine.atomic.os.replace
    calls = []

    def replace(src: object, dst: object) -> None:
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(engine.atomic.os, "replace", replace)
    store = PriceStore(tmp_path)
    with pytest.raises(DataError, match=r"cannot write .*ZAC\.parquet: No space left on device"):
        list(store.write_many([(f"ZA{c}", bars(seed=i), "csv", "") for i, c in enumerate("ABCDE")], threads=3))
    monkeypatch.undo()
    assert store.symbols() == ["ZAA", "ZAB"]
    assert all(r.ok for r in PriceStore(tmp_path).verify())
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_unknown_source_or_venue_is_refused_before_any_write(tmp_path: Path) -> None:
    store = PriceStore(tmp_path)
    with pytest.raises(ValueError, match="unknown price source"):
        store.write_many([("BABA", bars(), "csv", ""), ("JD", bars(), "web", "")])
    assert store.symbols() == []


def test_orphan_temps_are_swept_once_per_batch_with_one_warning(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / f".BABA.parquet.abcd.{proc.pid}.tmp").write_bytes(b"x" * 100)
    store = PriceStore(tmp_path)
    with pytest.warns(EvbtWarning, match="removed 1 temp file"):
        written = store.write_many([("BABA", bars(), "csv", ""), ("JD", bars(), "csv", "")])
    assert len(list(written)) == 2
    assert not list(tmp_path.glob(".*.tmp"))


def test_data_import_loads_no_heavy_library_it_does_not_use(tmp_path: Path) -> None:
    csv = tmp_path / "BABA.csv"
    csv.write_text("Date,Open,High,Low,Close,Adj Close,Volume\n2022-03-14,100,105,95,96,95.5,1000\n")
    probe = ("import sys, cli\n"
             "code = cli.main(['--offline', 'data', 'import', sys.argv[1]])\n"
             "heavy = ('backtrader', 'matplotlib', 'exchange_calendars', 'yfinance', 'curl_cffi', 'scipy', "
             "'distributed', 'rich')\n"
             "print('LOADED', sorted({m.split('.')[0] for m in sys.modules} & set(heavy)), code)\n")
    env = dict(os.environ, EVBT_CACHE_DIR=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-c", probe, str(csv)], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    assert "LOADED [] 0" in out.stdout, out.stdout + out.stderr


def _csvs(folder: Path, n: int) -> list[Path]:
    folder.mkdir(exist_ok=True)
    paths = []
    for i in range(n):
        frame = bars(40, seed=100 + i)
        lines = ["Date,Open,High,Low,Close,Adj Close,Volume"] + [
            f"{d:%Y-%m-%d},{r.open:.4f},{r.high:.4f},{r.low:.4f},{r.close:.4f},{r.adj_close:.4f},{int(r.volume)}"
            for d, r in frame.iterrows()]
        paths.append(folder / f"ZI{i:02d}.csv")
        paths[-1].write_text("\n".join(lines) + "\n")
    return paths


def test_import_in_worker_processes_stores_what_the_in_process_import_stores(tmp_path: Path) -> None:
    from engine.prices.import_files import POOL_MIN_FILES, import_csvs

    paths = _csvs(tmp_path / "csv", POOL_MIN_FILES + 6)
    pooled, alone = PriceStore(tmp_path / "pooled"), PriceStore(tmp_path / "alone")
    got = list(import_csvs(pooled, paths, workers=2))
    want = list(import_csvs(alone, paths, workers=1))
    assert [(f.symbol, f.path) for f, _ in got] == [(f.symbol, f.path) for f, _ in want] == \
        [(p.stem, p) for p in paths]
    strip = [{k: v for k, v in m.items() if k != "fetched_at"} for _, m in (*got, *want)]
    assert strip[:len(paths)] == strip[len(paths):]
    for path in paths:
        meta_p, frame_p = contents(PriceStore(tmp_path / "pooled"), path.stem)
        meta_a, frame_a = contents(PriceStore(tmp_path / "alone"), path.stem)
        assert meta_p == meta_a
        pd.testing.assert_frame_equal(frame_p, frame_a, check_exact=True)


def test_import_raises_the_first_bad_file_in_input_order_and_replaces_nothing(tmp_path: Path) -> None:
    from engine.errors import ConfigError
    from engine.prices.import_files import POOL_MIN_FILES, import_csvs

    paths = _csvs(tmp_path / "csv", POOL_MIN_FILES + 6)
    paths[12].write_text("Date,Open,High,Low,Close,Adj Close,Volume\n2022-03-14,1,1,1,x,1,1\n")
    paths[20].write_text("nothing here\n")
    store = PriceStore(tmp_path / "cache")
    store.write(paths[0].stem, bars(seed=42), "csv", "old")
    before = store.path_for(paths[0].stem).read_bytes()
    with pytest.raises(ConfigError, match=r"^ZI12.csv line 2, column Close: 'x' is not a number"):
        list(import_csvs(store, paths, workers=2))
    assert store.symbols() == [paths[0].stem] and store.path_for(paths[0].stem).read_bytes() == before
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.endswith(".tmp")]
