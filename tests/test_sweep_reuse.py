"""Sweep points are keyed by their VALUES: reused rows never take another point's label, whatever order, width or
split the sweeps of one runs folder come in; the printed best command reproduces the best point's run id."""

from __future__ import annotations

import json
import os
import re
import shlex
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BASE = ("--offline", "sweep", "reassurance", "--symbols", "BABA,JD,0700.HK,9988.HK", "--end", "2022-12-30",
        "--quiet", "--workers", "1")
RunCli = Callable[..., tuple[int, str, str]]


@pytest.fixture(autouse=True)
def _one_full_report(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the full report of the best point only, not of the top 10. What these tests compare is
    printed from summary.json alone (engine/reporting/cli_text.py `sweep_text`), so the other nine reports add
    ~85% of the CPU time and nothing to any assertion; the best point's report is still written and reused."""
    from engine.sweeps import sweep

    monkeypatch.setattr(sweep, "REPORTS_MAX", 1)


def _tables(out: str) -> str:
    """The printed result without what legitimately differs between a fresh and a reused sweep."""
    keep = [line for line in out.splitlines()
            if not line.startswith(("computed ", "saved: ", "Sweep sweep-"))]
    return "\n".join(keep)


def _sweep(run_cli: RunCli, runs_dir: Path, *args: str) -> str:
    os.environ["EVBT_RUNS_DIR"] = str(runs_dir)
    code, out, err = run_cli(*BASE, *args)
    assert code == 0, err
    return out


def test_reordered_axes_keep_their_labels(run_cli: RunCli, sample_cache: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    _sweep(run_cli, shared, "-g", "hold=1..6", "-g", "fill=open,close")
    reused = _sweep(run_cli, shared, "-g", "fill=close,open", "-g", "hold=1..6")
    fresh = _sweep(run_cli, tmp_path / "fresh", "-g", "fill=close,open", "-g", "hold=1..6")
    assert "computed 0, reused 12" in reused
    assert _tables(reused) == _tables(fresh)
    summary = json.loads(next((shared / "sweeps").glob("*/summary.json")).read_text())
    for entry in summary["ranking"]:  # every stored row's own values are the ones shown next to its key
        row_values = json.loads(_stored_values(shared, entry["key"]))
        assert row_values == entry["values"]


def _stored_values(runs_dir: Path, key: str) -> str:
    import pyarrow.parquet as pq

    for chunk in (runs_dir / "sweeps").glob("*/points/chunk-*.parquet"):
        table = pq.read_table(chunk, columns=["key", "values"]).to_pylist()
        for row in table:
            if row["key"] == key:
                return row["values"]
    raise AssertionError(key)


def test_single_point_after_a_wide_sweep(run_cli: RunCli, sample_cache: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    _sweep(run_cli, shared, "-g", "hold=1..10", "-g", "fill=open,close")
    one = _sweep(run_cli, shared, "-g", "hold=5")  # crashed with IndexError (stored point 8 of a 1-point grid)
    assert _tables(one) == _tables(_sweep(run_cli, tmp_path / "fresh", "-g", "hold=5"))
    assert "Best: hold=5" in one


def _command(out: str) -> list[str]:
    line = next(line.strip() for line in out.splitlines() if line.strip().startswith("evbt "))
    return shlex.split(line)[1:]


def _run_id(run_cli: RunCli, argv: list[str]) -> str:
    code, out, err = run_cli("--offline", *argv, "--json", "--no-save")
    assert code == 0, err
    return json.loads(out)["run_id"]


def test_printed_command_reproduces_the_best_run_id(run_cli: RunCli, sample_cache: Path, tmp_path: Path) -> None:
    out = _sweep(run_cli, tmp_path, "-g", "hold=3,9", "-g", "fill=open,close")
    best_key = re.search(r"\(run id (\S+)\)", out).group(1)
    assert _run_id(run_cli, _command(out)) == best_key
    split = _sweep(run_cli, tmp_path, "-g", "hold=3,9", "--split", "2022-01-01")
    argv = _command(split)
    assert "--end" in argv and argv[argv.index("--end") + 1] == "2021-12-31"  # the in-sample window
    assert _run_id(run_cli, argv) == re.search(r"\(run id (\S+)\)", split).group(1)


def test_split_has_its_own_sweep_id(run_cli: RunCli, sample_cache: Path, tmp_path: Path) -> None:
    plain = _sweep(run_cli, tmp_path, "-g", "hold=2,5")
    split = _sweep(run_cli, tmp_path, "-g", "hold=2,5", "--split", "2022-01-01")
    ids = [re.search(r"Sweep (sweep-\S+):", text).group(1) for text in (plain, split)]
    assert ids[0] != ids[1]
    summary = json.loads((tmp_path / "sweeps" / ids[0] / "summary.json").read_text())
    assert summary["windows"] == ["full"]  # the split did not overwrite the plain sweep's summary


GRIDS = [("-g", "hold=1..4"), ("-g", "hold=4,2"), ("-g", "hold=2..6:2", "-g", "fill=close,open"),
         ("-g", "fill=open,close", "-g", "hold=1..3"), ("-g", "hold=3"), ("-g", "size=0.1,0.05", "-g", "hold=2,3")]
SPLITS = [(), ("--split", "2022-01-01"), ("--metric", "total_return"), ("--walk-forward", "6:6")]


# What a fresh runs folder prints for one (grid, options) pair: a fresh folder has nothing to reuse, so its output
# depends on the pair alone; computed once per pair and compared with every reused sweep of that pair.
_FRESH: dict[tuple[tuple[str, ...], tuple[str, ...]], str] = {}


@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from(GRIDS), st.sampled_from(SPLITS)), min_size=2, max_size=3))
def test_any_sequence_prints_what_fresh_folders_print(run_cli: RunCli, sample_cache: Path,
                                                      sequence: list[tuple[tuple[str, ...], tuple[str, ...]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        shared = Path(tmp) / "shared"
        for n, (grid, extra) in enumerate(sequence):
            got = _sweep(run_cli, shared, *grid, *extra)
            if (grid, extra) not in _FRESH:
                _FRESH[grid, extra] = _tables(_sweep(run_cli, Path(tmp) / f"fresh{n}", *grid, *extra))
            assert _tables(got) == _FRESH[grid, extra], (grid, extra)


def test_walk_forward_steps_past_the_data_are_left_out(run_cli: RunCli, sample_cache: Path) -> None:
    # the sample ends in 2022; the default period runs to 2023-06-30 (was: exit 2, "no symbol ... has prices")
    code, out, err = run_cli("--offline", "sweep", "reassurance", "--symbols", "BABA,JD", "-g", "hold=2,5",
                             "--walk-forward", "12:3", "--quiet", "--workers", "1", "--json")
    assert code == 0, err
    assert "walk-forward:" in err and "step(s) left out, no prices in 2023-01-01..2023-03-31" in err
    steps = json.loads(out)["walk_forward"]
    assert steps and all(s["test"]["start"] < "2023-01-01" for s in steps)
