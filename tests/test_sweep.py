"""``evbt sweep`` end to end on the synthetic sample: output, saved folder, resumability, split and
walk-forward, runs show / compare, heatmap, process pool, Dask LocalCluster, a killed sweep."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from engine.sweeps import sweep

BASE = ("--offline", "sweep", "reassurance", "--symbols", "BABA,JD,0700.HK,9988.HK", "--end", "2022-12-30")
ROOT = Path(__file__).resolve().parents[1]


def _sweep(run_cli, *args: str) -> dict:
    code, out, err = run_cli(*BASE, "--quiet", "--json", *args)
    assert code == 0, err
    return json.loads(out)


def _sweep_dirs() -> list[Path]:
    root = Path(os.environ["EVBT_RUNS_DIR"]) / "sweeps"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _row_count(folder: Path) -> int:
    return sum(pq.read_metadata(p).num_rows for p in (folder / "points").glob("chunk-*.parquet"))


def test_text_output_and_saved_folder(run_cli, sample_cache: Path) -> None:
    code, out, err = run_cli(*BASE, "--quiet", "-g", "hold=2..6:2", "-g", "fill=open,close", "--top", "3")
    assert code == 0, err
    assert "6 point(s) x 1 window(s), metric sharpe" in out and "computed 6, reused 0" in out
    assert "rank  hold  fill" in out and "Best: hold=" in out and "evbt run reassurance -p hold=" in out
    assert "6 points tried; deflated Sharpe ratio of the best point" in out
    [folder] = _sweep_dirs()
    assert {p.name for p in folder.iterdir()} >= {"manifest.json", "summary.json", "report.json", "points"}
    assert _row_count(folder) == 6
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["kind"] == "sweep" and manifest["grid"] == {"hold": [2, 4, 6], "fill": ["open", "close"]}
    assert not err.strip()  # no progress bar when not a terminal / --quiet
    code, out, err = run_cli("runs", "ls")
    assert code == 0 and "no saved runs" in out and not err  # the sweeps folder is not a run


def test_allow_margin_points_run_on_the_fast_path(run_cli, sample_cache: Path) -> None:
    code, out, err = run_cli(*BASE, "--quiet", "-g", "hold=2,4", "--allow-margin", "--top", "2")
    assert code == 0, err
    assert "computed 2, reused 0" in out and "via backtrader" not in out


def test_json_has_all_metrics_ranked(run_cli, sample_cache: Path) -> None:
    doc = _sweep(run_cli, "-g", "hold=1..8", "--metric", "total_return", "--top", "0")
    ranking = doc["ranking"]
    assert len(ranking) == 8 and doc["counts"]["computed"] == 8
    values = [r["metrics"]["total_return"] for r in ranking]
    assert values == sorted(values, reverse=True)
    assert set(ranking[0]["metrics"]) >= {"sharpe", "sortino", "max_drawdown", "cagr", "alpha", "beta", "exposure"}
    assert doc["best"] == ranking[0] and ranking[0]["engine"] == "fast"
    dd = _sweep(run_cli, "-g", "hold=1..8", "--metric", "max_drawdown_duration", "--top", "0")
    durations = [r["metrics"]["max_drawdown_duration"] for r in dd["ranking"]]
    assert durations == sorted(durations) and dd["counts"]["computed"] == 0  # lower is better; all reused


def test_best_point_equals_evbt_run(run_cli, sample_cache: Path) -> None:
    doc = _sweep(run_cli, "-g", "hold=3,9", "-g", "size=0.05,0.2")
    best = doc["best"]
    code, out, err = run_cli(*BASE[:1], "run", "reassurance", *BASE[3:], "-p", f"hold={best['values']['hold']}",
                             "--size", str(best["values"]["size"]), "--json", "--no-save")
    assert code == 0, err
    report = json.loads(out)
    assert report["run_id"] == best["key"]  # a sweep point's key is the run id of the same `evbt run`
    for name, value in report["metrics"].items():
        got = best["metrics"][name]
        assert (value is None and got is None) or math.isclose(got, value, rel_tol=1e-9, abs_tol=1e-12), name


def test_resume_and_widened_grid(run_cli, sample_cache: Path) -> None:
    first = _sweep(run_cli, "-g", "hold=1..4", "-g", "fill=open,close")
    assert first["counts"] == {"points": 8, "evaluations": 8, "computed": 8, "reused": 0}
    again = _sweep(run_cli, "-g", "hold=1..4", "-g", "fill=open,close")
    assert again["counts"]["computed"] == 0 and again["counts"]["reused"] == 8
    assert again["ranking"] == first["ranking"]
    wider = _sweep(run_cli, "-g", "hold=1..6", "-g", "fill=open,close")
    assert wider["counts"]["computed"] == 4 and wider["counts"]["reused"] == 8
    [folder] = _sweep_dirs()
    assert _row_count(folder) == 12


def test_split_reports_in_and_out_of_sample(run_cli, sample_cache: Path) -> None:
    doc = _sweep(run_cli, "-g", "hold=2,5,10", "--split", "2022-01-01", "--top", "0")
    assert doc["windows"] == ["is", "oos"] and doc["counts"]["evaluations"] == 6
    for entry in doc["ranking"]:
        assert "oos_metrics" in entry and entry["oos_key"] != entry["key"]
    code, out, _ = run_cli(*BASE, "--quiet", "-g", "hold=2,5,10", "--split", "2022-01-01")
    assert code == 0 and "IS Sharpe" in out and "OOS Sharpe" in out and "computed 0, reused 6" in out
    # the out-of-sample row is the run `evbt run --start 2022-01-01` would make
    best = doc["ranking"][0]
    code, out, _ = run_cli("--offline", "run", "reassurance", "--symbols", "BABA,JD,0700.HK,9988.HK", "--start",
                           "2022-01-01", "--end", "2022-12-30", "-p", f"hold={best['values']['hold']}", "--json",
                           "--no-save")
    report = json.loads(out)
    assert report["run_id"] == best["oos_key"]
    assert math.isclose(report["metrics"]["final_value"], best["oos_metrics"]["final_value"], rel_tol=1e-9)


def test_walk_forward(run_cli, sample_cache: Path) -> None:
    doc = _sweep(run_cli, "-g", "hold=2,5,10", "--walk-forward", "6:3")
    steps = doc["walk_forward"]
    assert [s["train"]["start"] for s in steps] == ["2021-01-01", "2021-04-01", "2021-07-01", "2021-10-01",
                                                    "2022-01-01", "2022-04-01"]
    assert steps[0]["test"] == {"label": "wf1-test", "start": "2021-07-01", "end": "2021-09-30"}
    assert steps[-1]["test"]["end"] == "2022-12-30"
    for step in steps:
        assert step["values"]["hold"] in (2, 5, 10) and step["test_key"]
    assert doc["walk_forward_summary"]["steps"] == len(steps)
    measured = [s["test_metric"] for s in steps if s["test_metric"] is not None]
    assert doc["walk_forward_summary"]["test_metric_steps"] == len(measured)
    assert doc["walk_forward_summary"]["mean_test_metric"] == pytest.approx(sum(measured) / len(measured))
    code, out, _ = run_cli(*BASE, "--quiet", "-g", "hold=2,5,10", "--walk-forward", "6:3")
    assert code == 0 and "Walk-forward: 6 step(s)" in out and "computed 0" in out


def _walk_forward_summary(test_metrics: list[float | None], counted: bool = True) -> dict:
    steps = [{"train": {"start": "2021-01-01", "end": "2021-06-30"}, "test": {"start": "2021-07-01", "end": "x"},
              "values": {"hold": 5}, "train_metric": 0.5, "test_metric": m} for m in test_metrics]
    defined = [m for m in test_metrics if m is not None]
    wf = {"steps": len(steps), "mean_test_metric": sum(defined) / len(defined) if defined else None,
          "chained_test_return": 0.0}
    if counted:
        wf["test_metric_steps"] = len(defined)
    return {"metric": "sharpe", "walk_forward": steps, "walk_forward_summary": wf}


def test_walk_forward_text_says_how_many_test_windows_the_mean_covers() -> None:
    from engine.reporting.cli_text import walk_forward_text

    text = walk_forward_text(_walk_forward_summary([1.0, None, 2.0]))  # type: ignore[arg-type]
    assert "mean out-of-sample sharpe 1.500 over 2 of 3 test windows;" in text
    old = walk_forward_text(_walk_forward_summary([1.0, None, 2.0], counted=False))  # type: ignore[arg-type]
    assert "mean out-of-sample sharpe 1.500 over 2 of 3 test windows;" in old  # a summary saved before the count
    every = walk_forward_text(_walk_forward_summary([1.0, 2.0]))  # type: ignore[arg-type]
    assert "mean out-of-sample sharpe 1.500; chained" in every


def test_runs_show_and_compare_read_sweeps(run_cli, sample_cache: Path, tmp_path: Path) -> None:
    doc = _sweep(run_cli, "-g", "hold=2..5")
    sweep_id = doc["sweep_id"]
    code, out, err = run_cli("runs", "show", sweep_id, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["run_id"] == doc["best"]["key"] and report["sweep"]["sweep_id"] == sweep_id
    assert report["trades"]
    code, out, err = run_cli("runs", "show", f"{sweep_id}:2")
    assert code == 0 and doc["ranking"][1]["key"] in out
    code, _, err = run_cli("runs", "show", f"{sweep_id}:99")
    assert code == 2 and "rank must be between" in err
    code, out, err = run_cli("--offline", "run", "reassurance", *BASE[3:])
    assert code == 0, err
    run_path = out.strip().splitlines()[-1].removeprefix("saved: ")
    folder = _sweep_dirs()[0]
    code, out, err = run_cli("compare", str(folder), run_path)
    assert code == 0, err
    assert "Comparing 2 runs" in out and doc["best"]["key"] in out


def test_heatmap_png(run_cli, sample_cache: Path, tmp_path: Path) -> None:
    target = tmp_path / "heat.png"
    code, _, err = run_cli(*BASE, "--quiet", "-g", "hold=1..3", "-g", "fill=open,close", "-g", "size=0.05,0.1",
                             "--heatmap", str(target), "--heatmap-keys", "hold,fill")
    assert code == 0, err
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((_sweep_dirs()[0] / "summary.json").read_text())
    xs, ys, grid = sweep.heatmap_matrix(summary["grid"], summary["ranking"], ("hold", "fill"), "sharpe", True)
    assert xs == [1, 2, 3] and ys == ["open", "close"] and grid.shape == (2, 3)


def test_process_pool_equals_serial(run_cli, sample_cache: Path, monkeypatch: pytest.MonkeyPatch,
                                    tmp_path: Path) -> None:
    serial = _sweep(run_cli, "-g", "hold=1..12", "--workers", "1", "--top", "0")
    monkeypatch.setenv("EVBT_RUNS_DIR", str(tmp_path / "runs2"))
    pooled = _sweep(run_cli, "-g", "hold=1..12", "--workers", "2", "--top", "0")
    assert pooled["counts"]["computed"] == 12
    assert pooled["ranking"] == serial["ranking"]


def test_local_dask_cluster_equals_workers_1(run_cli, sample_cache: Path, monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="--cluster needs the cluster extra: pip install -e '.[cluster]'")
    local = _sweep(run_cli, "-g", "hold=1..6", "--workers", "1", "--top", "0")
    monkeypatch.setenv("EVBT_RUNS_DIR", str(tmp_path / "runs_dask"))
    dask = _sweep(run_cli, "-g", "hold=1..6", "--cluster", "local", "--workers", "1", "--top", "0")
    assert dask["counts"]["computed"] == 6
    assert dask["ranking"] == local["ranking"]


def test_unreachable_cluster_exits_1_and_writes_nothing(run_cli, sample_cache: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("distributed", reason="--cluster needs the cluster extra: pip install -e '.[cluster]'")
    monkeypatch.setenv(sweep.CONNECT_TIMEOUT_ENV, "0.5")
    code, _, err = run_cli(*BASE, "--quiet", "-g", "hold=1..3", "--cluster", "tcp://127.0.0.1:9")
    assert code == 1 and "cannot reach the Dask cluster" in err
    assert _sweep_dirs() == []


def test_killed_sweep_leaves_complete_chunks_and_resumes(run_cli, sample_cache: Path) -> None:
    args = [*BASE, "--quiet", "--workers", "1", "-g", "hold=1..40", "-g", "fill=open,close"]
    env = dict(os.environ, EVBT_SWEEP_CHUNK_ROWS="4", EVBT_TEST_WRITE_DELAY="0.3")
    proc = subprocess.Popen([sys.executable, "-c", "import sys, cli; sys.exit(cli.main(sys.argv[1:]))", *args],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            folders = _sweep_dirs()
            if folders and len(list((folders[0] / "points").glob("chunk-*.parquet"))) >= 2:
                break
            time.sleep(0.05)
        time.sleep(0.15)  # likely inside the next chunk's write
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    [folder] = _sweep_dirs()
    done = _row_count(folder)  # every visible chunk is complete and readable
    assert 0 < done < 80
    code, out, err = run_cli(*args, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["counts"]["computed"] == 80 - done and doc["counts"]["reused"] == done
    keys = [k for p in (folder / "points").glob("chunk-*.parquet") for k in pq.read_table(p)["key"].to_pylist()]
    assert len(keys) == len(set(keys)) == 80
    assert not list((folder / "points").glob(".*.tmp"))


def test_normal_cdf_and_inverse_against_the_standard_library() -> None:
    from statistics import NormalDist

    ref = NormalDist()
    assert math.isclose(sweep.norm_ppf(0.975), 1.959963984540054, rel_tol=1e-12)
    for p in (1e-12, 1e-6, 0.001, 0.02, 0.02425, 0.1, 0.3, 0.5, 0.7, 0.9, 0.97575, 0.999, 1 - 1e-9):
        assert math.isclose(sweep.norm_ppf(p), ref.inv_cdf(p), rel_tol=1e-9, abs_tol=1e-12), p
        assert math.isclose(sweep.norm_cdf(sweep.norm_ppf(p)), p, rel_tol=1e-9), p
    for x in (-8.0, -2.5, -1.0, 0.0, 0.3, 1.96, 4.0):
        assert math.isclose(sweep.norm_cdf(x), ref.cdf(x), rel_tol=1e-12, abs_tol=1e-15)
    assert math.isclose(sweep.norm_cdf(-8.0), 6.220960574271784e-16, rel_tol=1e-9)  # erfc keeps the tail
    with pytest.raises(ValueError):
        sweep.norm_ppf(1.0)


def test_deflated_sharpe_by_hand() -> None:
    from statistics import NormalDist

    nd = NormalDist()
    trials = [0.0, 0.05, 0.1, 0.02]
    sr, t, skew, kurt = 0.1, 252, -0.5, 5.0
    var = sum((s - sum(trials) / 4) ** 2 for s in trials) / 3
    gamma = 0.5772156649015329
    sr0 = math.sqrt(var) * ((1 - gamma) * nd.inv_cdf(1 - 1 / 4) + gamma * nd.inv_cdf(1 - 1 / (4 * math.e)))
    z = (sr - sr0) * math.sqrt(t - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    got = sweep.deflated_sharpe(sr, trials, t, skew, kurt)
    assert got is not None and got.trials == 4
    assert math.isclose(got.expected_max_sharpe, sr0, rel_tol=1e-9)
    assert math.isclose(got.dsr, nd.cdf(z), rel_tol=1e-9)
    one = sweep.deflated_sharpe(0.05, [0.05], 500, 0.0, 3.0)  # a single trial: the probabilistic Sharpe ratio
    assert one is not None and math.isclose(one.dsr, nd.cdf(0.05 * math.sqrt(499) / math.sqrt(1 + 0.5 * 0.0025)))


def test_compare_accepts_sweep_ids_and_ranks(run_cli, sample_cache: Path) -> None:
    doc = _sweep(run_cli, "-g", "hold=2..5")
    sweep_id = doc["sweep_id"]
    code, out, err = run_cli("compare", sweep_id, f"{sweep_id}:3", "--json")
    assert code == 0, err
    ids = [r["run_id"] for r in json.loads(out)["runs"]]
    assert ids == [doc["ranking"][0]["key"], doc["ranking"][2]["key"]]
    code, out, err = run_cli("compare", f"{sweep_id}:2", f"{sweep_id[:12]}:1")  # a unique prefix works too
    assert code == 0, err
    assert "Comparing 2 runs" in out and doc["ranking"][1]["key"] in out
    code, _, err = run_cli("compare", sweep_id, f"{sweep_id}:99")
    assert code == 2 and "rank must be between" in err


def test_compare_html_with_a_sweep_point_leaves_it_out_of_the_charts(run_cli, sample_cache: Path,
                                                                      tmp_path: Path) -> None:
    doc = _sweep(run_cli, "-g", "hold=2..3")
    code, out, err = run_cli("--offline", "run", "reassurance", "--symbols", "BABA,JD", "--json")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    page = tmp_path / "cmp.html"
    code, _, err = run_cli("compare", run_id, doc["sweep_id"], "--html", str(page))
    assert code == 0, err
    assert "no saved equity curve" in err and page.stat().st_size > 0
