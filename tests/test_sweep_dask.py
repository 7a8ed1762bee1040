"""A sweep on a Dask LocalCluster (2 worker processes, `--cluster local`) stores exactly the rows and ranking of
the same sweep run locally: same keys, every column equal, same summary. Offline (loopback only); the
`cluster` extra is part of the test extras."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

Run = Callable[..., tuple[int, str, str]]
GRID = ("-g", "hold=2..4", "-g", "fill=open,close")  # 6 points, 6 plans


def _sweep(run_cli: Run, runs: Path, monkeypatch: pytest.MonkeyPatch, *extra: str) -> tuple[dict, pd.DataFrame]:
    monkeypatch.setenv("EVBT_RUNS_DIR", str(runs))
    code, out, err = run_cli("--offline", "sweep", "reassurance", "--symbols", "BABA,JD,0700.HK,9988.HK", "--end",
                             "2022-12-30", *GRID, "--json", "--quiet", *extra)
    assert code == 0, err
    summary = json.loads(out)
    folder = Path(summary["saved"])
    rows = pd.concat([pq.read_table(p).to_pandas() for p in sorted((folder / "points").glob("chunk-*.parquet"))])
    return summary, rows.sort_values("key").reset_index(drop=True)


def test_local_cluster_sweep_equals_the_local_sweep(run_cli: Run, sample_cache: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("distributed", reason="the evbt[cluster] extra (Dask) is not installed")
    local, local_rows = _sweep(run_cli, tmp_path / "local", monkeypatch, "--workers", "1")
    dask, dask_rows = _sweep(run_cli, tmp_path / "dask", monkeypatch, "--workers", "2", "--cluster", "local")
    assert local["counts"]["computed"] == dask["counts"]["computed"] == 6
    assert Path(local["saved"]).name == Path(dask["saved"]).name  # the same sweep id
    assert list(local_rows["key"]) == list(dask_rows["key"])
    pd.testing.assert_frame_equal(local_rows, dask_rows, check_exact=True)
    assert local["ranking"] == dask["ranking"]
    assert local["multiple_testing"] == dask["multiple_testing"]
