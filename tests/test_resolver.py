"""One resolver for every reference kind (run id, prefix, folder, report file, SWEEP_ID, SWEEP_ID:RANK, a kept
sweep point's run id), used alike by `runs show`, `report`, `compare` and `rerun`; saved sweep reports are as
complete as a run's."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.results.resolve import resolve

RunCli = Callable[..., tuple[int, str, str]]
SWEEP = ("--offline", "sweep", "reassurance", "--symbols", "BABA,JD,0700.HK", "--end", "2022-12-30", "--quiet")


@pytest.fixture
def swept(run_cli: RunCli, sample_cache: Path) -> dict:
    code, out, err = run_cli(*SWEEP, "-g", "hold=2,4,6", "--json")
    assert code == 0, err
    return json.loads(out)


def test_sweep_point_reports_are_complete(run_cli: RunCli, swept: dict) -> None:
    sweep_id = swept["sweep_id"]
    for ref in (sweep_id, f"{sweep_id}:2", swept["ranking"][2]["key"]):
        code, out, err = run_cli("runs", "show", ref, "--json")
        assert code == 0, err
        report = json.loads(out)
        assert report["data"]["synthetic"] is True  # the sample's label survives
        for info in report["data"]["symbols"].values():
            assert info["source"] == "sample" and info["rows"] and info["first_date"] and info["last_date"]
        assert report["fx_source"] == "HKD=X series"
        metrics = report["metrics"]
        assert len(report["trades"]) == metrics["trade_count"] + metrics["open_trade_count"] > 0
        code, text, _ = run_cli("runs", "show", ref)
        assert "(None bars)" not in text and "FX: None" not in text and "(no trades)" not in text
        assert f"Trades ({len(report['trades'])})" in text and "SYNTHETIC DATA" in text


def test_report_and_compare_accept_every_kind(run_cli: RunCli, swept: dict, tmp_path: Path) -> None:
    sweep_id = swept["sweep_id"]
    code, out, err = run_cli("--offline", "run", "reassurance", "--symbols", "BABA,JD,0700.HK", "--end",
                             "2022-12-30", "--json")
    run_id = json.loads(out)["run_id"]
    path = tmp_path / "r.json"
    path.write_text(out)
    for ref in (sweep_id, f"{sweep_id}:3", run_id, run_id[:16], str(path)):
        code, out, err = run_cli("report", ref)
        assert code == 0 and "Run " in out, (ref, err)
    code, out, err = run_cli("compare", run_id, sweep_id, f"{sweep_id}:2", str(path))
    assert code == 0, err
    code, out, err = run_cli("runs", "show", f"{sweep_id}:9")
    assert code == 2 and "rank must be between 1 and 3" in err


def test_resolve_kinds(swept: dict, run_cli: RunCli) -> None:
    sweep_id = swept["sweep_id"]
    assert resolve(sweep_id).kind == "sweep-point"
    assert resolve(f"{sweep_id}:2").run_id == swept["ranking"][1]["key"]
    assert resolve(swept["ranking"][0]["key"]).run_id == swept["ranking"][0]["key"]
    with pytest.raises(ConfigError, match="not found"):
        resolve("reassurance-000000000000")
    with pytest.raises(ConfigError, match="integer rank"):
        resolve(f"{sweep_id}:x")
    assert Path(os.environ["EVBT_RUNS_DIR"], "sweeps", sweep_id, "reports").is_dir()
