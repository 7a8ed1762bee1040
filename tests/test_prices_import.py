"""`data import` starts parsing before pandas loads: the worker path imports no pandas (so the pool can be forked
from a small process), and ``api.import_prices`` starts the pool when called, not on its first item. What the
workers write is pinned elsewhere (tests/test_data_import_path.py: pooled equals in-process, a bad file replaces
nothing); here also that the Arrow arrays built without pandas give the same file as before."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.prices.cache_file import SCHEMA, table_from_columns
from tests.conftest import REPO


def _csv(path: Path, n: int = 30, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    close = 20 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    days = pd.bdate_range("2023-01-02", periods=n)
    rows = [f"{d:%Y-%m-%d},{c:.4f},{c * 1.01:.4f},{c * 0.99:.4f},{c:.4f},{c:.4f},{1000 + i}"
            for i, (d, c) in enumerate(zip(days, close, strict=True))]
    path.write_text("Date,Open,High,Low,Close,Adj Close,Volume\n" + "\n".join(rows) + "\n")
    return path


def test_the_import_worker_path_imports_no_pandas(tmp_path: Path) -> None:
    csv = _csv(tmp_path / "ZQQA.csv")
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from engine.prices.import_files import _encode, start_import
        encoded = _encode(Path({str(csv)!r}), None)
        assert encoded.meta["rows"] == 30 and encoded.payload.startswith(b"PAR1"), encoded.meta
        loaded = sorted(m for m in sys.modules if m == "pandas" or m.startswith("pandas."))
        print("pandas modules:", loaded)
        sys.exit(1 if loaded else 0)
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_import_prices_starts_the_pool_when_called(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.api import data as api_data
    from engine.api.settings import make_settings
    from engine.prices import import_files

    started: list[int] = []
    real = import_files._pooled

    def spy(jobs: list, workers: int) -> object:
        started.append(len(jobs))
        return real(jobs, workers)

    monkeypatch.setattr(import_files, "_pooled", spy)
    paths = [_csv(tmp_path / f"ZQ{chr(65 + i // 26)}{chr(65 + i % 26)}.csv", seed=i)
             for i in range(import_files.POOL_MIN_FILES)]
    settings = make_settings(tmp_path / "cache", False, False, False, None, ())
    items = api_data.import_prices(settings, paths, None)
    assert started == [len(paths)]  # before the first item is asked for
    got = list(items)
    assert [f.symbol for f, _ in got] == [p.stem for p in paths]
    assert all(m["rows"] == 30 for _, m in got)


def test_tables_built_from_buffers_equal_pyarrow_arrays_of_numpy(tmp_path: Path) -> None:
    n = 13  # not a multiple of 8: the packed stale bits end inside a byte
    dates = (np.datetime64("2023-01-02", "D") + np.arange(n)).astype("datetime64[us]")
    rng = np.random.default_rng(3)
    cols = {c: rng.random(n) + 1 for c in ("open", "high", "low", "close", "adj_close", "volume")}
    cols["stale"] = rng.random(n) < 0.4
    got = table_from_columns(dates, cols, {"symbol": "X"})
    want = pa.Table.from_arrays([pa.array(dates, type=pa.timestamp("us"))]
                                + [pa.array(cols[c], type=SCHEMA.field(c).type) for c in SCHEMA.names[1:]],
                                schema=SCHEMA)
    assert got.replace_schema_metadata().equals(want)
    assert got.column("stale").to_pylist() == cols["stale"].tolist()
    sink = tmp_path / "t.parquet"
    pq.write_table(got, sink)
    assert pq.read_table(sink).replace_schema_metadata().equals(want)
