"""`evbt events ...` through the CLI error boundary (cli.main returns the exit code)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yfinance

import cli
from engine.events.catalog import COLUMNS

HEADER = ",".join(COLUMNS)
ROW = "u-1,2022-06-01,10:00,Asia/Hong_Kong,,,policy_support,sector,,,,,Test event,https://example.org/a,high\n"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_ls_json_with_entry_sessions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "events", "ls", "--symbol", "BABA", "--symbol", "700", "--from", "2022-05-17",
                       "--to", "2022-05-17", "--type", "official_reassurance", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["count"] == 1 and len(data["calendar_hash"]) == 64
    (event,) = data["events"]
    assert event["id"] == "2022-05-17-cppcc-symposium"
    assert event["known_at"] == "2022-05-17T11:00:00+00:00"
    assert event["entry"] == {"BABA": "2022-05-17", "0700.HK": "2022-05-18"}


def test_ls_text_fill_close(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "events", "ls", "--symbol", "9988.HK", "--from", "2022-03-16", "--to",
                       "2022-03-16", "--fill", "close")
    assert code == 0
    assert "2022-03-16-fsdc-liu-he" in out and "9988.HK->2022-03-16" in out


def test_ls_with_user_file_replace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    user = tmp_path / "mine.csv"
    user.write_text(HEADER + "\n" + ROW, encoding="utf-8")
    code, out, _ = run(capsys, "events", "ls", "--events", str(user), "--replace", "--json")
    assert code == 0 and [e["id"] for e in json.loads(out)["events"]] == ["u-1"]
    code, out, _ = run(capsys, "events", "ls", "--events", str(user), "--json")
    assert code == 0 and json.loads(out)["count"] == 82


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["events", "ls", "--type", "nonsense"], "unknown event type"),
        (["events", "ls", "--from", "2022-02-30"], "--from: bad date"),
        (["events", "ls", "--symbol", "../etc"], "invalid symbol"),
        (["events", "ls", "--replace"], "--replace needs"),
        (["events", "ls", "--fill", "vwap"], "vwap"),
    ],
)
def test_ls_bad_input_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], needle: str) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2 and needle in err


def test_validate_ok_and_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "\n" + ROW, encoding="utf-8")
    code, out, _ = run(capsys, "events", "validate", str(good))
    assert code == 0 and out.strip() == "ok: 1 events"
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "\n" + ROW + ROW.replace("Asia/Hong_Kong", "Asia/Nowhere"), encoding="utf-8")
    code, _, err = run(capsys, "events", "validate", str(bad))
    assert code == 2
    assert "bad.csv:3: duplicate id 'u-1'" in err and "bad.csv:3: unknown time zone 'Asia/Nowhere'" in err
    code, out, _ = run(capsys, "events", "validate", str(bad), "--json")
    data = json.loads(out)
    assert code == 2 and data["ok"] is False and len(data["problems"]) == 2


def test_validate_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "events", "validate", str(tmp_path / "none.csv"))
    assert code == 2 and "not found" in err


def test_fetch_ratings_offline_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--cache-dir", str(tmp_path), "--offline", "events", "fetch-ratings", "BABA")
    assert code == 2 and "not cached" in err
    assert list(tmp_path.iterdir()) == []


def test_fetch_ratings_bad_symbol_fetches_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yfinance, "Ticker", lambda s: pytest.fail("must not fetch"))
    code, _, err = run(capsys, "--cache-dir", str(tmp_path), "events", "fetch-ratings", "BABA", "a/b")
    assert code == 2 and "invalid symbol" in err
    assert list(tmp_path.iterdir()) == []


def test_fetch_ratings_online(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    class Fake:
        def __init__(self, symbol: str) -> None:
            pass

        upgrades_downgrades = pd.DataFrame(
            {"Firm": ["JPMorgan"], "ToGrade": ["Overweight"], "FromGrade": ["Underweight"], "Action": ["up"]},
            index=pd.Index([pd.Timestamp("2022-05-16")], name="GradeDate"),
        )

    monkeypatch.setattr(yfinance, "Ticker", Fake)
    code, out, _ = run(capsys, "--cache-dir", str(tmp_path), "events", "fetch-ratings", "PDD")
    assert code == 0 and "PDD: 1 rating change(s), 1 up/downgrade(s)" in out
    assert (tmp_path / "ratings" / "PDD.parquet").exists()
