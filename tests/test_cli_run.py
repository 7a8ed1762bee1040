"""`evbt run/demo/strategies/runs/rerun/compare` via cli.main: exit codes, outputs, no writes on errors."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., tuple[int, str, str]]
SAMPLE_SYMBOLS = "BABA,JD,PDD,0700.HK,9988.HK,3690.HK"


def runs_dir() -> Path:
    return Path(os.environ["EVBT_RUNS_DIR"])


def saved_runs() -> list[str]:
    root = runs_dir()
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) if root.exists() else []


def test_demo_runs_offline_and_labels_synthetic(run_cli: Run) -> None:
    code, out, err = run_cli("demo")
    assert code == 0, err
    assert "SYNTHETIC" in out and "Total return" in out and "2022-03-16-fsdc-liu-he" in out
    assert len(saved_runs()) == 1


def test_run_json_schema_and_saved_run(run_cli: Run, sample_cache: Path) -> None:
    code, out, err = run_cli("--offline", "run", "reassurance", "--symbols", SAMPLE_SYMBOLS, "--json")
    assert code == 0, err
    report = json.loads(out)
    for key in ("run_id", "strategy", "params", "metrics", "trades", "data", "config", "orders"):
        assert key in report
    assert report["data"]["synthetic"] is True
    assert report["params"]["hold"] == 5
    assert saved_runs() == [report["run_id"]]
    folder = runs_dir() / report["run_id"]
    assert {"report.json", "manifest.json", "config.json", "equity.parquet", "trades.parquet"} <= {
        p.name for p in folder.iterdir()}


def test_run_csv_and_params(run_cli: Run, sample_cache: Path) -> None:
    code, out, err = run_cli("--offline", "run", "event_hold", "-p", "hold=3", "-p", "types=official_reassurance",
                             "--symbols", "BABA", "--csv", "--no-save")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows, "the sample has reassurance events on BABA"
    assert list(rows[0])[:6] == ["trade_id", "symbol", "side", "event_id", "event_type", "entry_date"]
    assert {r["symbol"] for r in rows} == {"BABA"} and {r["event_type"] for r in rows} == {"official_reassurance"}
    assert [r["holding_sessions"] for r in rows if r["exit_reason"] == "hold"] == ["3"] * sum(
        r["exit_reason"] == "hold" for r in rows)  # -p hold=3 reached the strategy
    code, out, _ = run_cli("--offline", "run", "event_hold", "-p", "hold=3", "-p", "types=official_reassurance",
                           "--symbols", "BABA", "--json", "--no-save")
    trades = json.loads(out)["trades"]
    assert [(r["event_id"], r["entry_date"], float(r["pnl"])) for r in rows] == [
        (t["event_id"], t["entry_date"], t["pnl"]) for t in trades]  # the CSV is the report's trade list
    assert saved_runs() == []


def test_runs_ls_show_rerun_compare(run_cli: Run, sample_cache: Path) -> None:
    code, out, _ = run_cli("--offline", "run", "reassurance", "--symbols", SAMPLE_SYMBOLS, "--json")
    first = json.loads(out)["run_id"]
    code, out, _ = run_cli("--offline", "run", "reassurance", "--symbols", SAMPLE_SYMBOLS, "-p", "hold=10", "--json")
    second = json.loads(out)["run_id"]
    assert first != second
    code, out, _ = run_cli("runs", "ls")
    assert code == 0 and first in out and second in out
    code, out, _ = run_cli("runs", "ls", "--json")
    assert {r["run_id"] for r in json.loads(out)} == {first, second}
    code, out, _ = run_cli("runs", "show", first[:18])
    assert code == 0 and "Total return" in out
    code, out, _ = run_cli("--offline", "rerun", first)
    assert code == 0 and "reproduced exactly" in out
    code, out, _ = run_cli("compare", first, second)
    assert code == 0 and "Parameters that differ" in out
    assert re.search(r"^hold\s+5\s+10\s*$", out, re.M), out  # the one parameter that differs, both values
    code, out, _ = run_cli("compare", first, second, "--json")
    assert code == 0
    diff = json.loads(out)
    assert [r["run_id"] for r in diff["runs"]] == [first, second]
    assert diff["params"] == {"hold": [5, 10]}


def test_rerun_reports_changed_data(run_cli: Run, sample_cache: Path) -> None:
    from engine.prices.store import PriceStore

    code, out, _ = run_cli("--offline", "run", "reassurance", "--symbols", "BABA", "--json")
    run_id = json.loads(out)["run_id"]
    store = PriceStore(sample_cache)
    frame = store.read_all("BABA")
    frame.loc[frame.index[-1], ["open", "high", "low", "close", "adj_close"]] *= 1.01
    store.write("BABA", frame, source="sample")
    code, out, _ = run_cli("--offline", "rerun", run_id, "--current-data")  # the default reruns on the run's data
    assert code == 0 and "not reproduced" in out and "BABA" in out


def test_strategies_listed(run_cli: Run) -> None:
    code, out, _ = run_cli("strategies")
    assert code == 0
    for name in ("event_hold", "reassurance", "analyst_follow", "fade", "buy_hold"):
        assert name in out
    _code, out, _ = run_cli("strategies", "--json")
    assert {r["name"] for r in json.loads(out)} >= {"fade", "buy_hold"}


@pytest.mark.parametrize(("argv", "message"), [
    (("run", "reasurance"), "did you mean 'reassurance'"),
    (("run", "reassurance", "-p", "hodl=3"), "did you mean 'hold'"),
    (("run", "reassurance", "-p", "hold=abc"), "not an integer"),
    (("run", "reassurance", "-p", "hold"), "expected KEY=VALUE"),
    (("run", "reassurance", "-p", "hold=0"), "hold must be"),
    (("run", "reassurance", "--start", "2022-13-01"), "not a date"),
    (("run", "reassurance", "--start", "2023-01-01", "--end", "2022-01-01"), "must be before"),
    (("run", "reassurance", "--symbols", "../../etc/x"), "invalid symbol"),
    (("run", "reassurance", "--symbols", "NOSUCH"), "NOSUCH"),
    (("run", "reassurance", "--cash", "-5"), "cash must be"),
    (("run", "reassurance", "--commission", "abc"), "not a number"),
    (("run", "reassurance", "--size", "3"), "fraction of equity"),
    (("run", "reassurance", "--fill", "noon"), "noon"),
    (("run", "reassurance", "--events", "/nonexistent/events.csv"), "events.csv"),
    (("runs", "show", "nosuchrun"), "nosuchrun"),
    (("compare", "onlyone"), "compare needs at least two runs"),
])
def test_bad_input_exit_2_nothing_saved(run_cli: Run, sample_cache: Path, argv: tuple[str, ...],
                                        message: str) -> None:
    code, out, err = run_cli("--offline", *argv)
    assert code == 2, (out, err)
    assert message in err
    assert "Traceback" not in err
    assert saved_runs() == []


def test_config_file_unknown_key_and_override(run_cli: Run, sample_cache: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('strategy = "reassurance"\nholdd = 3\n')
    code, _, err = run_cli("--offline", "run", "reassurance", "--config", str(bad))
    assert code == 2 and "unknown key 'holdd'" in err
    good = tmp_path / "good.toml"
    good.write_text('symbols = ["BABA", "JD"]\nfill = "close"\n[params]\nhold = 3\n')
    code, out, err = run_cli("--offline", "run", "reassurance", "--config", str(good), "-p", "hold=4", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["params"]["hold"] == 4 and report["config"]["fill"] == "close"
    assert report["config"]["symbols"] == ["BABA", "JD"]


def test_offline_missing_symbol_names_it(run_cli: Run, sample_cache: Path) -> None:
    code, _, err = run_cli("--offline", "run", "reassurance", "--symbols", "BABA,NTES")
    assert code == 2 and "NTES" in err
    assert saved_runs() == []


def test_run_with_cached_ratings(run_cli: Run, sample_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd
    import yfinance

    class FakeTicker:
        def __init__(self, symbol: str) -> None:
            self.symbol = symbol

        @property
        def upgrades_downgrades(self) -> pd.DataFrame:
            frame = pd.DataFrame({
                "GradeDate": pd.to_datetime(["2022-05-16", "2022-06-15"]),
                "Firm": ["Acme Research", "Acme Research"],
                "ToGrade": ["Overweight", "Underweight"],
                "FromGrade": ["Underweight", "Overweight"],
                "Action": ["up", "down"],
            })
            return frame.set_index("GradeDate")

    monkeypatch.setattr(yfinance, "Ticker", FakeTicker)
    code, _, err = run_cli("events", "fetch-ratings", "BABA")
    assert code == 0, err
    code, out, err = run_cli("--offline", "run", "analyst_follow", "--symbols", "BABA", "--ratings",
                             "-p", "firms=Acme Research", "-p", "hold=40", "--json")
    assert code == 0, err
    trades = json.loads(out)["trades"]
    assert len(trades) == 1 and trades[0]["exit_reason"] == "signal"
    assert trades[0]["entry_date"] == "2022-05-17"  # date-only NY event -> next US open
    code, _, err = run_cli("--offline", "run", "analyst_follow", "--symbols", "JD", "--ratings")
    assert code == 2 and "JD" in err  # offline, no cached ratings: names the symbol


def test_event_hold_symbols_parameter_is_normalised_like_the_universe(run_cli: Run, sample_cache: Path) -> None:
    """`-p symbols=baba,700` matched no universe symbol (BABA, 0700.HK): a run without a trade, silently."""
    base = ("--offline", "run", "event_hold", "--no-save", "--json", "--symbols", "BABA,JD,0700.HK")
    code, out, err = run_cli(*base, "-p", "symbols=baba,700")
    assert code == 0, err
    report = json.loads(out)
    assert report["params"]["symbols"] == ["BABA", "0700.HK"]
    assert report["trades"] and {t["symbol"] for t in report["trades"]} == {"BABA", "0700.HK"}
    code, out2, err = run_cli(*base, "-p", "symbols=BABA,0700.HK")
    assert code == 0, err
    assert json.loads(out2)["run_id"] == report["run_id"]
    code, _, err = run_cli(*base, "-p", "symbols=FOO.ZZ")
    assert code == 2 and "parameter symbols: FOO.ZZ: unknown exchange suffix '.ZZ'" in err
