"""The rough edges a new user hit (issue: results you can trust), one regression test each."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.reporting.report import render_text

RunCli = Callable[..., tuple[int, str, str]]
RUN = ("--offline", "run", "reassurance", "--symbols", "BABA,JD,0700.HK", "--end", "2022-12-30")


def test_compare_lists_each_parameter_once(run_cli: RunCli, sample_cache: Path) -> None:
    ids = []
    for hold in ("3", "7"):
        code, out, err = run_cli(*RUN, "-p", f"hold={hold}", "--fill", "close" if hold == "7" else "open", "--json")
        assert code == 0, err
        ids.append(json.loads(out)["run_id"])
    code, out, err = run_cli("compare", *ids)
    assert code == 0, err
    params, config = out.split("Parameters that differ")[1].split("Config that differs")
    assert "hold" in params and "params.hold" not in config and "fill" in config


def test_strategies_print_values_as_typed(run_cli: RunCli) -> None:
    code, out, _ = run_cli("strategies")
    assert code == 0
    assert "types = official_reassurance" in out and "('" not in out and "()" not in out


@pytest.mark.parametrize("command", [("run", "reassurance", "--help"), ("sweep", "reassurance", "--help"),
                                     ("study", "--help"), ("events", "ls", "--help")])
def test_replace_events_is_one_name_everywhere(run_cli: RunCli, command: tuple[str, ...]) -> None:
    code, out, _ = run_cli(*command)
    assert code == 0 and "--replace-events" in out


def test_replace_alias_accepted(run_cli: RunCli, sample_cache: Path, tmp_path: Path) -> None:
    events = tmp_path / "ev.csv"
    events.write_text("id,date,tz,time,session_hint,market,type,scope,symbols,description,source\n"
                      "my-1,2022-03-16,Asia/Shanghai,,,,official_reassurance,single,BABA,test,me\n")
    for flag in ("--replace", "--replace-events"):
        code, out, err = run_cli(*RUN, "--events", str(events), flag, "--json", "--no-save")
        assert code == 0, err
        assert {t["event_id"] for t in json.loads(out)["trades"]} == {"my-1"}
    code, out, err = run_cli("events", "ls", "--events", str(events), "--replace-events")
    assert code == 0 and "1 event(s)" in out, err


def test_sizing_default_in_help(run_cli: RunCli) -> None:
    _code, out, _ = run_cli("run", "x", "--help")
    assert "(default percent)" in " ".join(out.split())


def test_excess_return_says_what_it_is_and_is_exposure_matched() -> None:
    from engine.reporting.report import exposure_matched_excess

    metrics = {"total_return": 0.10, "exposure": 0.2, "benchmark_return": 0.5, "excess_return": -0.4}
    assert exposure_matched_excess(metrics) == pytest.approx(0.10 - 0.2 * 0.5)  # 0.10 - 0.10 = 0
    text = render_text({"run_id": "r", "metrics": metrics, "universe": ["BABA"]})
    assert "Excess return" not in text and "Return minus benchmark" in text
    assert "vs benchmark x exposure" in text and "0.00%" in text.split("vs benchmark x exposure")[1][:40]
    assert exposure_matched_excess({"total_return": 0.1}) is None


def test_long_universe_is_cut_in_the_header() -> None:
    universe = [f"S{i:03d}" for i in range(500)]
    header = render_text({"run_id": "r", "metrics": {}, "universe": universe}).splitlines()[0]
    assert len(header) < 250 and "(500 symbols; all in the JSON report)" in header and "S499" not in header


def test_spinner_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import cli

    assert isinstance(cli._busy("x"), contextlib.nullcontext)  # stderr captured: not a terminal
    monkeypatch.setattr(cli, "_stderr_is_terminal", lambda: True)
    from rich.status import Status

    assert isinstance(cli._busy("x"), Status)
    assert isinstance(cli._busy("x", quiet=True), contextlib.nullcontext)  # --json: never


def test_sample_flag_on_a_cache_without_the_sample(run_cli: RunCli, cache_dir: Path) -> None:
    code, _, err = run_cli("--sample", "run", "reassurance")
    assert code == 2 and "synthetic sample is not in" in err and "evbt demo" in err and "empty universe" not in err


def test_runs_alone_lists(run_cli: RunCli, sample_cache: Path) -> None:
    code, out, err = run_cli("runs")
    assert code == 0 and "no saved runs" in out, err
    run_cli(*RUN)
    code, out, _ = run_cli("runs")
    assert code == 0 and "reassurance-" in out


def test_runs_ls_newest_first_filters_json(run_cli: RunCli, sample_cache: Path) -> None:
    ids = []
    for tag, hold in (("old", "3"), ("new", "4")):
        code, out, err = run_cli(*RUN, "-p", f"hold={hold}", "--tag", tag, "--json")
        ids.append(json.loads(out)["run_id"])
        folder = Path(os.environ["EVBT_RUNS_DIR"]) / ids[-1]
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["created_at"] = f"2026-01-0{len(ids)}T00:00:00+00:00"
        (folder / "manifest.json").write_text(json.dumps(manifest))
    code, out, _ = run_cli("runs", "ls", "--json")
    listed = json.loads(out)
    assert [r["run_id"] for r in listed] == ids[::-1] and listed[0]["tags"] == ["new"]
    code, out, _ = run_cli("runs", "ls", "--tag", "old", "--json")
    assert [r["run_id"] for r in json.loads(out)] == ids[:1]
    code, out, _ = run_cli("runs", "ls", "--since", "2026-01-02", "--json")
    assert [r["run_id"] for r in json.loads(out)] == ids[1:]
    code, out, _ = run_cli("runs", "ls", "--strategy", "fade")
    assert code == 0 and "no saved runs match the filters" in out
    code, _, err = run_cli("runs", "ls", "--since", "yesterday")
    assert code == 2 and "--since" in err


def test_fade_without_trades_says_why(run_cli: RunCli, sample_cache: Path) -> None:
    code, out, err = run_cli("--offline", "run", "fade", "--symbols", "BABA,JD,0700.HK", "--end", "2022-12-30",
                             "--allow-short", "--no-save")
    assert code == 0, err
    assert "Trades (0)" in out and "pair(s) checked; the largest rally over 5 sessions was" in out


def test_reproduce_command_is_shell_quoted(run_cli: RunCli, sample_cache: Path) -> None:
    code, out, err = run_cli("--offline", "sweep", "analyst_follow", "--symbols", "BABA,JD,0700.HK", "--end",
                             "2022-12-30", "-g", "firms=Goldman Sachs", "--quiet", "--workers", "1")
    assert code == 0, err
    line = next(x.strip() for x in out.splitlines() if x.strip().startswith("evbt "))
    argv = shlex.split(line)
    assert "'firms=Goldman Sachs'" in line and "firms=Goldman Sachs" in argv
    best = next(x for x in out.splitlines() if x.startswith("Best: ")).split("(run id ")[1].rstrip(")")
    code, out, err = run_cli("--offline", *argv[1:], "--json", "--no-save")
    assert code == 0, err
    assert json.loads(out)["run_id"] == best
