"""Saved runs: atomic save, listing, lookup by id/prefix/path, manifests and their diff."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from engine import saved_runs as runs
from engine.analysis.metrics import compute_metrics
from engine.errors import ConfigError, DataError
from engine.execution.records import OrderRecord, RunResult, TradeRecord
from engine.reporting.report import build_report, dumps_report

DATES = pd.to_datetime(["2022-03-14", "2022-03-15", "2022-03-16"])


def make_result(pnl: float = 10.0) -> RunResult:
    trade = TradeRecord(
        trade_id=1, symbol="BABA", side="long", event_id="ev1", event_type="policy_support",
        entry_date="2022-03-15", entry_fill="open", entry_price=100.0, exit_date="2022-03-16",
        exit_fill="close", exit_price=101.0, size=10, fx_entry=1.0, fx_exit=1.0, entry_fees=0.5,
        exit_fees=0.5, fees=1.0, entry_value=1000.0, pnl=pnl, ret=pnl / 1000.0, exit_reason="hold",
        holding_sessions=1,
    )
    return RunResult(
        equity=pd.Series([1000.0, 1005.0, 1000.0 + pnl], index=DATES),
        cash=pd.Series([1000.0, 0.0, 1000.0 + pnl], index=DATES),
        exposure=pd.Series([0.0, 1.0, 0.0], index=DATES),
        trades=[trade],
        orders=[OrderRecord("2022-03-15", "BABA", "buy", 10, "filled", "", "ev1", 100.0, 0.5)],
        benchmark=None,
        fx_source="none needed",
    )


def make_run(run_id: str, pnl: float = 10.0) -> tuple[dict[str, Any], RunResult]:
    result = make_result(pnl)
    report = build_report(
        run_id=run_id, strategy="reassurance", params={"hold": 1}, config={"symbols": ["BABA"]},
        result=result,
        metrics=compute_metrics(result.equity, result.trades, result.exposure, None, 1000.0),
        data={"BABA": {"source": "sample", "fingerprint": "f" * 64}},
        events={"calendar_hash": "c1", "count": 1},
    )
    return report, result


def manifest(run_id: str, created: str = "2026-01-02T03:04:05") -> dict[str, Any]:
    return runs.build_manifest(
        run_id=run_id, data_fingerprints={"BABA": "f" * 64}, calendar_hash="c1",
        created_at=dt.datetime.fromisoformat(created).replace(tzinfo=dt.UTC),
    )


def save(root: Path, run_id: str, pnl: float = 10.0, created: str = "2026-01-02T03:04:05") -> Path:
    report, result = make_run(run_id, pnl)
    return runs.save_run(root, report, result, manifest(run_id, created))


def test_save_writes_complete_folder(tmp_path: Path) -> None:
    folder = save(tmp_path, "reassurance-aaa111")
    assert folder == tmp_path / "reassurance-aaa111"
    assert sorted(p.name for p in folder.iterdir()) == sorted(runs.RUN_FILES)
    report, _ = make_run("reassurance-aaa111")
    assert (folder / "report.json").read_text() == dumps_report(report)
    config = json.loads((folder / "config.json").read_text())
    assert config == {"run_id": "reassurance-aaa111", "strategy": "reassurance", "params": {"hold": 1},
                      "config": {"symbols": ["BABA"]}}
    equity = pq.read_table(folder / "equity.parquet").to_pandas()
    assert list(equity.columns) == ["date", "equity", "cash", "exposure", "benchmark"]
    assert equity["equity"].tolist() == [1000.0, 1005.0, 1010.0]
    trades = pq.read_table(folder / "trades.parquet")
    assert trades.num_rows == 1 and trades.column("pnl").to_pylist() == [10.0]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_empty_trades_parquet_is_typed(tmp_path: Path) -> None:
    table = runs.trades_table([])
    assert table.num_rows == 0
    assert str(table.schema.field("pnl").type) == "double"
    assert str(table.schema.field("exit_date").type) == "string"


def test_save_overwrites_same_id(tmp_path: Path) -> None:
    save(tmp_path, "reassurance-aaa111", pnl=10.0)
    save(tmp_path, "reassurance-aaa111", pnl=-20.0)
    assert runs.load_report("reassurance-aaa111", tmp_path)["metrics"]["pnl"] == -20.0
    assert [p.name for p in tmp_path.iterdir()] == ["reassurance-aaa111"]


def test_crash_mid_save_leaves_no_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(path: Path, table: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(runs.writer, "_write_parquet", boom)
    with pytest.raises(DataError, match="disk full"):
        save(tmp_path, "reassurance-aaa111")
    assert runs.list_runs(tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def test_crash_mid_overwrite_keeps_old_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save(tmp_path, "reassurance-aaa111", pnl=10.0)
    real_write_text = runs.writer._write_text

    def fail_on_report(path: Path, text: str) -> None:
        if path.name == "report.json":
            raise KeyboardInterrupt
        real_write_text(path, text)

    monkeypatch.setattr(runs.writer, "_write_text", fail_on_report)
    with pytest.raises(KeyboardInterrupt):
        save(tmp_path, "reassurance-aaa111", pnl=-20.0)
    assert [s.run_id for s in runs.list_runs(tmp_path)] == ["reassurance-aaa111"]
    assert runs.load_report("reassurance-aaa111", tmp_path)["metrics"]["pnl"] == 10.0


def test_killed_process_leftovers_are_hidden_and_recovered(tmp_path: Path) -> None:
    save(tmp_path, "reassurance-aaa111")
    dead_pid = 2**22 + 12345  # above pid_max: never a live process
    # a killed save: a half-written temp folder, and an old run moved aside just before the final rename
    (tmp_path / f".tmp-reassurance-bbb222-{dead_pid}").mkdir()
    os.replace(tmp_path / "reassurance-aaa111", tmp_path / f".old-reassurance-aaa111-{dead_pid}")
    listed = runs.list_runs(tmp_path)
    assert [s.run_id for s in listed] == ["reassurance-aaa111"]  # old run restored
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reassurance-aaa111"]


def test_list_runs_summary_and_order(tmp_path: Path) -> None:
    save(tmp_path, "reassurance-bbb222", pnl=-10.0, created="2026-01-03T00:00:00")
    save(tmp_path, "reassurance-aaa111", pnl=10.0, created="2026-01-02T00:00:00")
    (tmp_path / "junk").mkdir()
    with pytest.warns(UserWarning, match="junk"):
        listed = runs.list_runs(tmp_path)
    assert [s.run_id for s in listed] == ["reassurance-bbb222", "reassurance-aaa111"]  # newest first
    first = listed[1]
    assert first.strategy == "reassurance" and first.created_at == "2026-01-02T00:00:00+00:00"
    assert (first.start, first.end, first.trades, first.synthetic) == ("2022-03-14", "2022-03-16", 1, True)
    assert first.total_return == pytest.approx(0.01)
    assert runs.list_runs(tmp_path / "missing") == []


def test_load_by_id_prefix_folder_and_file(tmp_path: Path) -> None:
    folder = save(tmp_path, "reassurance-aaa111")
    save(tmp_path, "reassurance-aab222")
    assert runs.load_report("reassurance-aaa111", tmp_path)["run_id"] == "reassurance-aaa111"
    assert runs.load_report("reassurance-aaa", tmp_path)["run_id"] == "reassurance-aaa111"
    assert runs.load_report(folder)["run_id"] == "reassurance-aaa111"
    assert runs.load_report(str(folder / "report.json"))["run_id"] == "reassurance-aaa111"
    assert runs.load_manifest("reassurance-aab", tmp_path)["run_id"] == "reassurance-aab222"
    assert runs.load_config("reassurance-aab", tmp_path)["params"] == {"hold": 1}
    assert list(runs.load_equity("reassurance-aab", tmp_path)["equity"]) == [1000.0, 1005.0, 1010.0]


def test_load_errors(tmp_path: Path) -> None:
    save(tmp_path, "reassurance-aaa111")
    save(tmp_path, "reassurance-aab222")
    with pytest.raises(ConfigError, match=r"ambiguous.*reassurance-aaa111, reassurance-aab222"):
        runs.load_report("reassurance-aa", tmp_path)
    with pytest.raises(ConfigError, match="not found"):
        runs.load_report("nope", tmp_path)
    with pytest.raises(ConfigError, match="not found"):
        runs.load_report(str(tmp_path / "missing" / "report.json"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    with pytest.raises(ConfigError, match="not a valid evbt report file"):
        runs.load_report(bad)
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not a valid evbt report file"):
        runs.load_report(bad)
    (tmp_path / "empty-folder").mkdir()
    with pytest.raises(ConfigError, match="not a run folder"):
        runs.load_report(tmp_path / "empty-folder")


def test_invalid_run_id_rejected(tmp_path: Path) -> None:
    report, result = make_run("../escape")
    with pytest.raises(ConfigError, match="invalid run id"):
        runs.save_run(tmp_path, report, result, manifest("x"))


def test_run_id_deterministic() -> None:
    a = runs.make_run_id("Reassurance v2", {"hold": 2, "stop": 0.1}, {"cash": 1e5}, {"BABA": "f1"}, "c1")
    b = runs.make_run_id("Reassurance v2", {"stop": 0.1, "hold": 2}, {"cash": 1e5}, {"BABA": "f1"}, "c1")
    assert a == b and a.startswith("reassurance-v2-") and len(a) == len("reassurance-v2-") + 12
    assert runs.make_run_id("Reassurance v2", {"hold": 3}, {"cash": 1e5}, {"BABA": "f1"}, "c1") != a
    params = {"hold": 2, "stop": 0.1}
    assert runs.make_run_id("Reassurance v2", params, {"cash": 1e5}, {"BABA": "f2"}, "c1") != a
    assert runs.make_run_id("Reassurance v2", params, {"cash": 1e5}, {"BABA": "f1"}, None) != a


def test_default_runs_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EVBT_RUNS_DIR", str(tmp_path / "r"))
    assert runs.default_runs_dir() == tmp_path / "r"
    monkeypatch.delenv("EVBT_RUNS_DIR")
    monkeypatch.chdir(tmp_path)
    assert runs.default_runs_dir() == tmp_path / "runs"


def test_manifest_contents() -> None:
    m = manifest("r1")
    assert m["created_at"] == "2026-01-02T03:04:05+00:00"
    assert m["data"] == {"BABA": "f" * 64} and m["event_calendar_hash"] == "c1"
    assert set(m["packages"]) == {"evbt", "backtrader", "pandas", "numpy", "pyarrow", "yfinance"}
    assert m["packages"]["pandas"] == pd.__version__
    assert m["git_revision"] is None or len(m["git_revision"]) == 40


def test_git_revision_outside_a_repo(tmp_path: Path) -> None:
    assert runs.git_revision(tmp_path) == {"revision": None, "dirty": None}


def _git_init(folder: Path) -> tuple[str, dict[str, str]]:
    """A new git repository in ``folder``: (git executable, environment with a committer); skips without git."""
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run([git, "init", "-q", str(folder)], check=True, env=env)
    return git, env


def test_git_revision_of_a_folder_inside_another_repository(tmp_path: Path) -> None:
    """An installed evbt under a project's .venv must not report that project's revision as its own."""
    git, env = _git_init(tmp_path)
    subprocess.run([git, "-C", str(tmp_path), "commit", "-q", "--allow-empty", "-m", "x"], check=True, env=env)
    site = tmp_path / ".venv" / "lib" / "site-packages"
    site.mkdir(parents=True)
    assert runs.git_revision(site) == {"revision": None, "dirty": None}
    assert len(runs.git_revision(tmp_path)["revision"]) == 40  # the repository's own root still reports it


def test_git_revision_says_whether_tracked_files_changed(tmp_path: Path) -> None:
    git, env = _git_init(tmp_path)
    (tmp_path / "a.txt").write_text("one\n")
    subprocess.run([git, "-C", str(tmp_path), "add", "a.txt"], check=True, env=env)
    subprocess.run([git, "-C", str(tmp_path), "commit", "-q", "-m", "x"], check=True, env=env)
    head = subprocess.run([git, "-C", str(tmp_path), "rev-parse", "HEAD"], check=True, env=env, capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / "untracked.txt").write_text("not tracked: not dirty\n")
    assert runs.git_revision(tmp_path) == {"revision": head, "dirty": False}
    (tmp_path / "a.txt").write_text("two\n")
    assert runs.git_revision(tmp_path) == {"revision": head, "dirty": True}


def test_diff_manifests() -> None:
    old = manifest("r1")
    assert runs.diff_manifests(old, old) == []
    new = json.loads(json.dumps(old))
    new["data"] = {"BABA": "e" * 64, "JD": "d" * 64}
    new["event_calendar_hash"] = "c2"
    new["packages"]["pandas"] = "9.9.9"
    new["git_revision"] = "1" * 40
    lines = runs.diff_manifests(old, new)
    assert f"data BABA: fingerprint {'f' * 12} -> {'e' * 12}" in lines
    assert f"data JD: added ({'d' * 12})" in lines
    assert "event calendar: hash c1 -> c2" in lines
    assert f"package pandas: {pd.__version__} -> 9.9.9" in lines
    assert any(line.startswith("git revision:") for line in lines)
    assert "data JD: removed" in runs.diff_manifests(new, old)[1]


@pytest.mark.parametrize(("extra", "expected"), [
    ({"metrics": {"sharpe": "abc"}}, "metric 'sharpe' is 'abc', not a number or null"),
    ({"trades": [1, 2]}, "trade 1 is int, not an object"),
    ({"trades": [{"entry_price": "1"}]}, "trade 1: 'entry_price' is '1', not a number or null"),
    ({"orders": [{"size": [5]}]}, "order 1: 'size' is [5], not a number or null"),
    ({"config": []}, "'config' is list, not dict"),
])
def test_a_malformed_report_file_is_an_input_error(run_cli: Any, tmp_path: Path, extra: dict, expected: str) -> None:
    """A hand-edited or foreign report.json given by path: `runs show` and `compare` ended in `internal error:
    ValueError: Unknown format code 'f'` / `AttributeError: 'int' object has no attribute 'get'`."""
    good = {"schema_version": 1, "run_id": "x-000000000000", "metrics": {"sharpe": 0.5}, "trades": []}
    (tmp_path / "good.json").write_text(json.dumps(good))
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**good, **extra}))
    for argv in (("runs", "show", str(path)), ("compare", str(tmp_path / "good.json"), str(path))):
        code, out, err = run_cli(*argv)
        assert code == 2, (argv, code, err)
        assert f"error: {path} is not a valid evbt report file: {expected}" in err, err
        assert "internal error" not in err and out == ""
