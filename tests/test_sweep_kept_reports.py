"""A sweep's kept reports (reports/KEY.json, and report.json of the best point less its sweep note) are, byte for
byte, the report `evbt run` writes for the same configuration: same trades, orders, curve-derived metrics and
warnings (the fast path and the backtrader engine keep one set of books, ``Policy.curve``)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.plan.config import run_config_from_dict
from engine.reporting.report import dumps_report
from engine.results.reproduce import reproduce_command

RunCli = Callable[..., tuple[int, str, str]]
UNIVERSE = ("--symbols", "BABA,JD,0700.HK,9988.HK", "--end", "2022-12-30")


@pytest.mark.parametrize(("extra", "kept_max"), [
    (("reassurance", "-g", "hold=2,4,6"), None),  # every point kept: evaluated once, with records
    (("reassurance", "-g", "hold=2,4,6"), 2),  # the top 2 kept: evaluated again with records after ranking
    (("event_hold", "-g", "hold=3,5", "--fill", "close", "--max-positions", "2", "--sizing", "equal"), None),
], ids=["open", "open-top2", "close-limits"])
def test_kept_reports_are_the_runs_reports(run_cli: RunCli, sample_cache: Path, extra: tuple[str, ...],
                                           kept_max: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.sweeps import sweep

    if kept_max is not None:
        monkeypatch.setattr(sweep, "REPORTS_MAX", kept_max)
    code, out, err = run_cli("--offline", "sweep", *extra, *UNIVERSE, "--quiet", "--json", "--workers", "1")
    assert code == 0, err
    summary = json.loads(out)
    folder = Path(summary["saved"])
    kept = sorted((folder / "reports").glob("*.json"))
    assert len(kept) == min(len(summary["ranking"]), kept_max or 5)
    for path in kept:
        text = path.read_text(encoding="utf-8")
        report = json.loads(text)
        command = reproduce_command(run_config_from_dict(report["config"]))
        code, out, err = run_cli("--offline", *shlex.split(command)[1:], "--json", "--no-save")
        assert code == 0, err
        assert json.loads(out)["run_id"] == path.stem == report["run_id"]
        assert out == text + "\n", f"{path.name}: the kept report differs from `{command}`"  # echo's newline
        assert report["trades"], "a point without trades would prove little"
    best = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert best.pop("sweep")["sweep_id"] == summary["sweep_id"]
    assert dumps_report(best) == (folder / "reports" / f"{best['run_id']}.json").read_text(encoding="utf-8")


def test_market_warnings_reach_the_kept_report(run_cli: RunCli, sample_cache: Path) -> None:
    """Without HKD=X in the cache `evbt run` records the 7.80 peg in its report's warnings; so must the sweep."""
    code, _out, err = run_cli("--offline", "data", "rm", "HKD=X")
    assert code == 0, err
    code, out, err = run_cli("--offline", "sweep", "reassurance", "-g", "hold=3", *UNIVERSE, "--quiet", "--json",
                             "--workers", "1")
    assert code == 0, err
    report = json.loads((Path(json.loads(out)["saved"]) / "report.json").read_text(encoding="utf-8"))
    assert any("peg of 7.80" in w for w in report["warnings"]), report["warnings"]
    code, run_out, err = run_cli("--offline", "run", "reassurance", "-p", "hold=3", *UNIVERSE, "--json", "--no-save")
    assert code == 0, err
    assert json.loads(run_out)["warnings"] == report["warnings"]


def test_a_curve_backtrader_disagrees_with_fails_the_run(run_cli: RunCli, sample_cache: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The report's curve is the policy's books, but only once backtrader's broker agrees at every point: books
    off by one dollar from one date on are a run failure (exit 1) naming both figures, never a report."""
    from engine.execution.policy import Policy

    honest = Policy.curve

    def off_by_one(self: Policy) -> tuple:
        equity, cash, exposure = honest(self)
        equity, cash = equity.copy(), cash.copy()
        equity[len(equity) // 2:] += 1.0
        cash[len(cash) // 2:] += 1.0
        return equity, cash, exposure

    monkeypatch.setattr(Policy, "curve", off_by_one)
    code, out, err = run_cli("--offline", "run", "reassurance", *UNIVERSE, "--json", "--no-save")
    assert code == 1 and out == ""
    assert "backtrader's broker holds cash" in err and "the policy's books" in err


def test_a_sweep_process_never_imports_backtrader(sample_cache: Path, tmp_path: Path) -> None:
    """Sweeps (kept reports included) run on the fast path only: importing backtrader costs a second per
    process, so nothing on a sweep's way may import it (engine.backtest imports the driver when a run starts)."""
    import os
    import subprocess
    import sys

    script = ("import sys, cli\n"
              f"code = cli.main(['--offline', '--cache-dir', {str(sample_cache)!r}, 'sweep', 'reassurance', '-g',"
              " 'hold=2,4', '--symbols', 'BABA,0700.HK', '--end', '2022-12-30', '--quiet', '--workers', '1'])\n"
              "print(code, 'backtrader' in sys.modules)\n")
    env = dict(os.environ, EVBT_RUNS_DIR=str(tmp_path / "runs"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "0 False", done.stdout + done.stderr


def test_a_small_grid_is_simulated_once_per_point(run_cli: RunCli, sample_cache: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A grid no larger than the kept reports keeps every point's report: each point is replayed once (with
    records), not once for its metrics and again for its report."""
    from engine.execution import fast_driver

    calls: list[bool] = []
    honest = fast_driver.simulate

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(bool(kwargs.get("records", True)))
        return honest(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fast_driver, "simulate", counted)
    code, out, err = run_cli("--offline", "sweep", "reassurance", "-g", "hold=2,4", *UNIVERSE, "--quiet", "--json",
                             "--workers", "1")
    assert code == 0, err
    assert calls == [True, True]
    assert len(list((Path(json.loads(out)["saved"]) / "reports").glob("*.json"))) == 2
