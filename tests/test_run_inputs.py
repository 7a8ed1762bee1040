"""A run's id covers what changes its result beyond the configuration, data and calendar: the bytes of a user
strategy file and a user ``--venues`` table. Before, an edited rule or another venues file kept the run id, so the
saved run was replaced by a different result and a sweep reused points computed by the old code or table."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., tuple[int, str, str]]
SYMBOLS = ("--symbols", "BABA,JD,0700.HK", "--start", "2021-01-01", "--end", "2023-06-30")

RULE = """\
from dataclasses import dataclass

from strategies.base import BaseParams, Signal, Strategy


@dataclass(frozen=True)
class Params(BaseParams):
    hold: int = 5


class EveryEvent(Strategy):
    name = "every_event"
    Params = Params

    def signals(self, ctx):
        for event in ctx.events_of("official_reassurance"):
            for symbol in ctx.symbols_for(event):
                if symbol in {wanted}:
                    yield Signal(symbol=symbol, event=event, hold=self.params.hold)
"""

VENUES_HEADER = "key,venue,kind,calendar,currency,price_unit,timezone,default_lot,lot_varies,notes\n"


def _report(out: str) -> dict:
    doc = json.loads(out)
    return doc.get("report", doc)


def test_an_edited_strategy_file_is_a_different_run(run_cli: Run, real_import: Callable[[list[str]], Path],
                                                    tmp_path: Path) -> None:
    real_import(["BABA", "JD", "0700.HK", "KWEB"])
    rule = tmp_path / "every_event.py"
    rule.write_text(RULE.format(wanted='("BABA", "JD", "0700.HK")'))
    code, out, err = run_cli("--offline", "run", str(rule), *SYMBOLS, "--json")
    assert code == 0, err
    first = _report(out)
    rule.write_text(RULE.format(wanted='("BABA",)'))  # now trades one symbol of three
    code, out, err = run_cli("--offline", "run", str(rule), *SYMBOLS, "--json")
    assert code == 0, err
    second = _report(out)
    # independent reason: the edited rule trades BABA only, so the two runs differ
    assert {t["symbol"] for t in second["trades"]} == {"BABA"}
    assert {t["symbol"] for t in first["trades"]} > {"BABA"}
    assert first["run_id"] != second["run_id"]
    runs = Path(__import__("os").environ["EVBT_RUNS_DIR"])
    assert (runs / first["run_id"] / "report.json").is_file()  # the first run was not overwritten


def test_a_sweep_never_reuses_points_of_an_edited_strategy_file(run_cli: Run,
                                                                real_import: Callable[[list[str]], Path],
                                                                tmp_path: Path) -> None:
    real_import(["BABA", "JD", "0700.HK", "KWEB"])
    rule = tmp_path / "every_event.py"
    rule.write_text(RULE.format(wanted='("BABA", "JD", "0700.HK")'))
    code, out, err = run_cli("--offline", "sweep", str(rule), *SYMBOLS, "-g", "hold=3,5", "--workers", "1",
                             "--json")
    assert code == 0, err
    rule.write_text(RULE.format(wanted='("BABA",)'))
    code, out, err = run_cli("--offline", "sweep", str(rule), *SYMBOLS, "-g", "hold=3,5", "--workers", "1",
                             "--json")
    assert code == 0, err
    swept = json.loads(out)
    assert swept["counts"]["reused"] == 0  # both points were computed by the old file: none may be reused
    for row in swept["ranking"]:  # each point must equal `evbt run` of the edited file
        code, out, err = run_cli("--offline", "run", str(rule), *SYMBOLS, "-p", f"hold={row['values']['hold']}",
                                 "--json")
        assert code == 0, err
        ran = _report(out)
        assert {t["symbol"] for t in ran["trades"]} == {"BABA"}
        assert row["key"] == ran["run_id"]
        assert row["metrics"]["trade_count"] == ran["metrics"]["trade_count"]
        assert abs(row["metrics"]["total_return"] - ran["metrics"]["total_return"]) < 1e-9


def test_a_user_venues_file_is_part_of_the_run_id(run_cli: Run, real_import: Callable[[list[str]], Path],
                                                  tmp_path: Path) -> None:
    real_import(["BABA", "JD", "0700.HK", "KWEB"])
    venues = tmp_path / "venues.csv"
    venues.write_text(VENUES_HEADER + "0700.HK,HK,stock,XHKG,HKD,HKD,Asia/Hong_Kong,100000,0,huge lot\n")
    code, out, err = run_cli("--offline", "run", "reassurance", *SYMBOLS, "--json")
    assert code == 0, err
    plain = _report(out)
    code, out, err = run_cli("--offline", "--venues", str(venues), "run", "reassurance", *SYMBOLS, "--json")
    assert code == 0, err
    big = _report(out)
    # a 100,000-share lot of 0700.HK costs far more than 5% of 1,000,000 USD: no 0700.HK trade is possible
    assert any(t["symbol"] == "0700.HK" for t in plain["trades"])
    assert not any(t["symbol"] == "0700.HK" for t in big["trades"])
    assert plain["run_id"] != big["run_id"]


def test_rerun_names_a_changed_venue_table_or_strategy_file(run_cli: Run,
                                                             real_import: Callable[[list[str]], Path],
                                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import(["BABA", "JD", "0700.HK", "KWEB"])
    venues = tmp_path / "venues.csv"
    venues.write_text(VENUES_HEADER + "0700.HK,HK,stock,XHKG,HKD,HKD,Asia/Hong_Kong,100000,0,huge lot\n")
    code, out, err = run_cli("--offline", "--venues", str(venues), "run", "reassurance", *SYMBOLS, "--json")
    assert code == 0, err
    run_id = _report(out)["run_id"]
    code, out, err = run_cli("--offline", "--venues", str(venues), "rerun", run_id)
    assert code == 0, err
    assert "reproduced exactly" in out
    monkeypatch.delenv("EVBT_VENUES")  # in a shell, --venues does not outlive its command
    code, out, err = run_cli("--offline", "rerun", run_id)  # the built-in table: 0700.HK trades now
    assert "not reproduced" in out
    assert "venue table:" in out and "-> built-in" in out

    rule = tmp_path / "every_event.py"
    rule.write_text(RULE.format(wanted='("BABA", "JD", "0700.HK")'))
    code, out, err = run_cli("--offline", "run", str(rule), *SYMBOLS, "--json")
    assert code == 0, err
    run_id = _report(out)["run_id"]
    rule.write_text(RULE.format(wanted='("BABA",)'))
    code, out, err = run_cli("--offline", "rerun", run_id)
    assert "not reproduced" in out
    assert "strategy file:" in out


def test_the_printed_command_of_a_venues_sweep_reproduces_its_run_id(run_cli: Run,
                                                                      real_import: Callable[[list[str]], Path],
                                                                      tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import shlex

    real_import(["BABA", "JD", "0700.HK", "KWEB"])
    venues = tmp_path / "venues.csv"
    venues.write_text(VENUES_HEADER + "0700.HK,HK,stock,XHKG,HKD,HKD,Asia/Hong_Kong,100000,0,huge lot\n")
    code, out, err = run_cli("--offline", "--venues", str(venues), "sweep", "reassurance", *SYMBOLS,
                             "-g", "hold=5,10", "--workers", "1", "--json")
    assert code == 0, err
    best = json.loads(out)["best"]
    monkeypatch.delenv("EVBT_VENUES")  # a fresh shell: only what the printed command says
    argv = shlex.split(best["command"])
    assert argv[0] == "evbt"
    code, out, err = run_cli("--offline", *argv[1:], "--json")
    assert code == 0, err
    ran = _report(out)
    assert not any(t["symbol"] == "0700.HK" for t in ran["trades"])  # the 100,000-share lot is in force
    assert ran["run_id"] == best["key"]


def test_a_venues_sweep_has_its_own_id_and_rerun_of_its_point_names_the_table(
        run_cli: Run, real_import: Callable[[list[str]], Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    real_import(["BABA", "JD", "0700.HK", "KWEB"])
    venues = tmp_path / "venues.csv"
    venues.write_text(VENUES_HEADER + "0700.HK,HK,stock,XHKG,HKD,HKD,Asia/Hong_Kong,100000,0,huge lot\n")
    grid = ("-g", "hold=5,10", "--workers", "1", "--json")
    code, out, err = run_cli("--offline", "--venues", str(venues), "sweep", "reassurance", *SYMBOLS, *grid)
    assert code == 0, err
    with_table = json.loads(out)["sweep_id"]
    monkeypatch.delenv("EVBT_VENUES")
    code, out, err = run_cli("--offline", "sweep", "reassurance", *SYMBOLS, *grid)
    assert code == 0, err
    assert json.loads(out)["sweep_id"] != with_table  # `runs show SWEEP` names one sweep, not the last of two
    code, out, err = run_cli("--offline", "rerun", f"{with_table}:1")  # on the built-in table now
    assert "not reproduced" in out
    assert "venue table:" in out and "-> built-in" in out


def test_rerun_of_a_synthetic_sample_run_reads_the_sample(run_cli: Run, real_import: Callable[[list[str]], Path],
                                                          ) -> None:
    """`evbt demo` then `evbt rerun ID` (no --sample): the run's data versions are the sample's, kept in the sample
    folder; the rerun ran on the real cache (here the real BABA, JD, 0700.HK) and said "not reproduced"."""
    real_import(["BABA", "JD", "0700.HK", "KWEB"])
    code, out, err = run_cli("demo")
    assert code == 0, err
    run_id = next(line.split("/")[-1] for line in out.splitlines() if line.startswith("saved: "))
    code, out, err = run_cli("--offline", "rerun", run_id)
    assert code == 0, err
    assert f"reproduced exactly: {run_id}" in out


def _cli_with_closures(closures: Path, *argv: str) -> tuple[int, str, str]:
    """``evbt ARGV`` in a fresh process whose curated closures file is ``closures`` (nothing memoised)."""
    import subprocess
    import sys

    code = ("import pathlib, sys; import engine.market.calendars as c; c.CLOSURES_PATH = pathlib.Path(sys.argv[1]); "
            "import cli; sys.exit(cli.main(sys.argv[2:]))")
    done = subprocess.run([sys.executable, "-c", code, str(closures), *argv], capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr


def test_a_changed_closures_file_is_a_different_run_and_never_a_reused_point(
        run_cli: Run, real_import: Callable[[list[str]], Path], tmp_path: Path) -> None:
    """The curated extra closures (event_calendar/closures.csv) decide the sessions a trade enters on: a closure
    added on 0700.HK's entry day 2022-03-17 moves that entry; the run id and the sweep's points ignored the file."""
    import engine.market.calendars as calendars

    real_import(["BABA", "JD", "0700.HK", "KWEB"])
    sweep = ("--offline", "sweep", "reassurance", *SYMBOLS, "-g", "hold=5,6", "--workers", "1", "--json")
    code, out, err = run_cli(*sweep)
    assert code == 0, err
    before = {row["values"]["hold"]: row for row in json.loads(out)["ranking"]}
    closures = tmp_path / "closures.csv"
    closures.write_text(calendars.CLOSURES_PATH.read_text(encoding="utf-8")
                        + "XHKG,2022-03-17,test closure\n", encoding="utf-8")
    code, out, err = _cli_with_closures(closures, "--offline", "run", "reassurance", *SYMBOLS, "--json")
    assert code == 0, err
    ran = _report(out)
    entries = [t["entry_date"] for t in ran["trades"] if t["symbol"] == "0700.HK"]
    assert "2022-03-17" not in entries and "2022-03-18" in entries  # the next session
    assert ran["run_id"] != before[5]["key"]
    code, out, err = _cli_with_closures(closures, *sweep)
    assert code == 0, err
    swept = json.loads(out)
    assert swept["counts"]["reused"] == 0
    row = next(r for r in swept["ranking"] if r["values"]["hold"] == 5)
    assert row["key"] == ran["run_id"]
    assert abs(row["metrics"]["total_return"] - ran["metrics"]["total_return"]) < 1e-9


def test_a_cluster_sweep_evaluates_points_on_the_clients_venue_table(
        run_cli: Run, real_import: Callable[[list[str]], Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A Dask worker started without the client's --venues (another machine, or a scheduler started earlier) must
    evaluate the points on the client's table: rows computed on the built-in table were stored under keys that
    name the user's table (different lots, different metrics)."""
    pytest.importorskip("distributed", reason="the evbt[cluster] extra (Dask) is not installed")
    from distributed import LocalCluster

    real_import(["BABA", "JD", "0700.HK", "KWEB"])
    venues = tmp_path / "venues.csv"
    venues.write_text(VENUES_HEADER + "0700.HK,HK,stock,XHKG,HKD,HKD,Asia/Hong_Kong,100000,0,huge lot\n")
    grid = ("sweep", "reassurance", *SYMBOLS, "-g", "hold=5,10", "--json")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:  # started before --venues: its worker has no EVBT_VENUES
        code, out, err = run_cli("--offline", "--venues", str(venues), *grid, "--cluster", cluster.scheduler_address)
    assert code == 0, err
    remote = {row["key"]: row["metrics"] for row in json.loads(out)["ranking"]}
    monkeypatch.setenv("EVBT_RUNS_DIR", str(tmp_path / "runs-local"))
    code, out, err = run_cli("--offline", "--venues", str(venues), *grid, "--workers", "1")
    assert code == 0, err
    local = {row["key"]: row["metrics"] for row in json.loads(out)["ranking"]}
    assert set(remote) == set(local)
    for key, metrics in local.items():
        assert remote[key]["trade_count"] == metrics["trade_count"]
        assert abs(remote[key]["total_return"] - metrics["total_return"]) < 1e-12


def test_a_cluster_worker_with_other_closures_is_refused(run_cli: Run, real_import: Callable[[list[str]], Path],
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's keys name its closures file; a worker with another one would store its rows under them."""
    pytest.importorskip("distributed", reason="the evbt[cluster] extra (Dask) is not installed")
    from distributed import LocalCluster

    import engine.market.calendars as calendars

    real_import(["BABA", "JD", "0700.HK", "KWEB"])
    closures = tmp_path / "closures.csv"
    closures.write_text(calendars.CLOSURES_PATH.read_text(encoding="utf-8")
                        + "XHKG,2022-03-17,test closure\n", encoding="utf-8")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:  # its worker reads the packaged closures file
        monkeypatch.setattr(calendars, "CLOSURES_PATH", closures)
        code, _, err = run_cli("--offline", "sweep", "reassurance", *SYMBOLS, "-g", "hold=5,10", "--json",
                               "--cluster", cluster.scheduler_address)
    assert code == 1, err  # a run error, nothing stored as a point
    assert "internal error" not in err
    assert "closures.csv differs from the client's" in err
