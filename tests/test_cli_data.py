"""`evbt data ...` through cli.main (the real error boundary and exit codes)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yfinance

import engine.prices.yahoo
from engine.prices.store import PriceStore

Run = Callable[..., tuple[int, str, str]]
HEADER = "Date,Open,High,Low,Close,Adj Close,Volume\n"
GOOD = HEADER + "2022-03-14,100,105,95,96,95.5,1000\n2022-03-15,96,99,90,92,91.5,0\n2022-03-16,92,92,92,92,92,0\n"


def csv_file(tmp_path: Path, name: str, text: str = GOOD) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_import_ls_show_verify_rm(run_cli: Run, tmp_path: Path, cache_dir: Path) -> None:
    code, out, _ = run_cli("data", "import", csv_file(tmp_path, "HSI.csv"), csv_file(tmp_path, "BABA.csv"))
    assert code == 0 and "^HSI: 3 bars" in out
    code, out, _ = run_cli("data", "ls")
    assert code == 0 and "^HSI" in out and "csv" in out and "BABA" in out
    code, out, _ = run_cli("data", "ls", "--json")
    rows = json.loads(out)
    assert {r["symbol"] for r in rows} == {"BABA", "^HSI"} and all(r["size"] > 0 for r in rows)
    code, out, _ = run_cli("data", "show", "BABA", "--json")
    summary = json.loads(out)
    assert summary["first_close"] == 96.0 and summary["last_close"] == 92.0 and summary["stale_bars"] == 1
    code, out, _ = run_cli("data", "show", "hsi", "--start", "2022-03-15")
    assert code == 0 and "2 bars" in out and "1 stale" in out
    code, out, _ = run_cli("data", "verify")
    assert code == 0 and "0 damaged" in out
    code, out, _ = run_cli("data", "rm", "BABA")
    assert code == 0 and not PriceStore(cache_dir).has("BABA")


def test_import_symbol_override_and_error_nothing_written(run_cli: Run, tmp_path: Path, cache_dir: Path) -> None:
    good = csv_file(tmp_path, "tencent.csv")
    code, _, _ = run_cli("data", "import", good, "--symbol", "700")
    assert code == 0 and PriceStore(cache_dir).has("0700.HK")
    bad = csv_file(tmp_path, "JD.csv", HEADER + "2022-03-14,100,105,95,abc,95.5,1000\n")
    code, _, err = run_cli("data", "import", csv_file(tmp_path, "PDD.csv"), bad)
    assert code == 2
    assert "JD.csv line 2, column Close: 'abc' is not a number" in err
    assert "Traceback" not in err
    assert not PriceStore(cache_dir).has("PDD")  # all files checked before anything is written


def test_import_symbol_with_many_files_is_usage_error(run_cli: Run, tmp_path: Path) -> None:
    code, _, err = run_cli("data", "import", csv_file(tmp_path, "A.csv"), csv_file(tmp_path, "B.csv"),
                           "--symbol", "BABA")
    assert code == 2 and "--symbol works with one FILE" in err


def test_missing_file_and_bad_option_exit_2(run_cli: Run, tmp_path: Path) -> None:
    assert run_cli("data", "import", str(tmp_path / "nope.csv"))[0] == 2
    assert run_cli("data", "show", "BABA", "--start", "03/14/2022")[0] == 2


def test_sample_command_and_ls_label(run_cli: Run, cache_dir: Path) -> None:
    code, out, _ = run_cli("--sample", "data", "sample")
    assert code == 0 and "SYNTHETIC" in out
    assert PriceStore(cache_dir / "sample").read_meta("0700.HK")["source"] == "sample"
    code, out, _ = run_cli("--sample", "data", "ls")
    assert "sample (SYNTHETIC)" in out and "HKD=X" in out
    code, out, _ = run_cli("--sample", "data", "show", "9988.HK", "--start", "2022-03-01", "--end", "2022-03-31")
    assert code == 0 and "SYNTHETIC" in out


def test_sample_is_deterministic(run_cli: Run, cache_dir: Path, tmp_path: Path) -> None:
    run_cli("data", "sample")
    first = PriceStore(cache_dir).fingerprint("BABA")
    run_cli("--cache-dir", str(tmp_path / "other"), "data", "sample")
    assert PriceStore(tmp_path / "other").fingerprint("BABA") == first


def test_sample_never_replaces_real_prices(run_cli: Run, cache_dir: Path, tmp_path: Path) -> None:
    """`evbt data sample` into a cache holding real prices of a sample symbol used to overwrite them with
    SYNTHETIC bars (the README promises the sample is never mixed with real data): now exit 2, nothing written."""
    code, _, err = run_cli("data", "import", csv_file(tmp_path, "BABA.csv"))
    assert code == 0, err
    before = {p.name: p.read_bytes() for p in cache_dir.iterdir() if p.is_file()}
    code, out, err = run_cli("data", "sample")
    assert code == 2, (out, err)
    assert f"error: the cache {cache_dir} holds prices that are not the synthetic sample for BABA;" in err
    assert "evbt --sample data sample" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in cache_dir.iterdir() if p.is_file()} == before
    assert PriceStore(cache_dir).read_meta("BABA")["source"] == "csv"
    # the empty sample folder's hint names the command that fills it, which leaves the real cache alone
    code, out, _ = run_cli("--sample", "data", "ls")
    assert code == 0 and "try `evbt --sample data sample`" in out
    code, out, err = run_cli("--sample", "data", "sample")
    assert code == 0 and "SYNTHETIC" in out, err
    assert PriceStore(cache_dir).read_meta("BABA")["source"] == "csv"
    code, _, err = run_cli("--sample", "data", "sample")  # the sample over itself: fine
    assert code == 0, err


def test_verify_reports_damage_exit_1(run_cli: Run, sample_cache: Path) -> None:
    PriceStore(sample_cache).path_for("JD").write_bytes(b"garbage")
    code, out, _ = run_cli("data", "verify")
    assert code == 1 and "JD: DAMAGED" in out
    code, out, _ = run_cli("data", "verify", "BABA", "--json")
    assert code == 0 and json.loads(out)[0]["ok"] is True
    code, out, _ = run_cli("data", "ls")
    assert "DAMAGED" in out


def test_show_offline_missing_exit_2(run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVBT_OFFLINE", "1")
    code, _, err = run_cli("data", "show", "BABA")
    assert code == 2 and "BABA" in err and "not in the price cache" in err
    # an open end of the asked range is left out of the message (it said "prices for (open) .. (open)")
    assert "error: BABA: prices are not in the cache" in err and "(open)" not in err
    code, _, err = run_cli("data", "show", "BABA", "--start", "2022-01-03")
    assert code == 2 and "error: BABA: prices from 2022-01-03 on are not in the cache" in err, err
    code, _, err = run_cli("data", "show", "BABA", "--end", "2022-01-03")
    assert code == 2 and "error: BABA: prices up to 2022-01-03 are not in the cache" in err, err


def test_show_outside_the_cached_range_names_the_asked_dates(run_cli: Run, sample_cache: Path) -> None:
    code, _, err = run_cli("--offline", "data", "show", "BABA", "--start", "2030-01-01")
    assert code == 2 and "error: BABA: no cached prices from 2030-01-01 on (cache has 20" in err, err
    assert "(open)" not in err


def test_rm_unknown_and_path_symbol_exit_2(run_cli: Run, sample_cache: Path) -> None:
    code, _, err = run_cli("data", "rm", "NTES", "BABA")
    assert code == 2 and "NTES" in err
    assert PriceStore(sample_cache).has("BABA")  # nothing removed
    code, _, err = run_cli("data", "rm", "../../etc/x")
    assert code == 2 and "invalid symbol" in err


def test_fetch_offline_exit_2(run_cli: Run) -> None:
    code, _, err = run_cli("--offline", "data", "fetch", "BABA")
    assert code == 2 and "offline" in err


def test_fetch_with_mocked_yfinance(run_cli: Run, monkeypatch: pytest.MonkeyPatch, cache_dir: Path) -> None:
    from tests.test_data_fetch import FakeMarket, yahoo_frame

    market = FakeMarket(yahoo_frame("2022-01-03", "2022-03-31", tz="Asia/Hong_Kong"))
    monkeypatch.setattr(yfinance, "Ticker", market.ticker)
    code, out, _ = run_cli("data", "fetch", "700", "--start", "2022-01-01", "--end", "2022-02-28")
    assert code == 0 and "0700.HK:" in out and "2022-02-28" in out
    assert market.calls[0]["symbol"] == "0700.HK"


def test_fetch_network_down_exit_1(run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    from curl_cffi.requests.exceptions import DNSError

    from tests.test_data_fetch import FakeMarket, yahoo_frame

    market = FakeMarket(yahoo_frame("2022-01-03", "2022-03-31"), failures=[DNSError("down")] * 10)
    monkeypatch.setattr(yfinance, "Ticker", market.ticker)
    monkeypatch.setattr(engine.prices.yahoo, "BACKOFF", 0.001)
    code, _, err = run_cli("data", "fetch", "BABA", "--start", "2022-01-01", "--end", "2022-02-28")
    assert code == 1 and "download failed" in err and "Traceback" not in err


def test_stale_cache_warning_printed(run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    from curl_cffi.requests.exceptions import DNSError

    from tests.test_data_fetch import FakeMarket, yahoo_frame

    market = FakeMarket(yahoo_frame("2022-01-03", "2022-03-31"))
    monkeypatch.setattr(yfinance, "Ticker", market.ticker)
    monkeypatch.setattr(engine.prices.yahoo, "BACKOFF", 0.001)
    assert run_cli("data", "fetch", "BABA", "--start", "2022-01-03", "--end", "2022-02-28")[0] == 0
    market.failures = [DNSError("down")] * 10
    code, out, err = run_cli("data", "show", "BABA", "--end", "2022-03-31")
    assert code == 0 and "warning: BABA: could not update prices" in err and "BABA" in out


@pytest.mark.parametrize("cmd", ["fetch", "import", "ls", "verify", "rm", "sample", "show"])
def test_every_command_help_has_example(run_cli: Run, cmd: str) -> None:
    code, out, _ = run_cli("data", cmd, "--help")
    assert code == 0 and "Example:" in out
