"""HTML reports: content, escaping, size, and a real headless Chromium (no console error, no network request,
charts rendered with a size, screenshot). The browser runs with every network request blocked and its own
network log is checked for traffic that left the machine (tests/browser_helpers.py). Browser tests skip, saying
why, when chromium/chromedriver are not installed (an optional system step, README "Testing")."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser_helpers import INSTALL_HINT, Browser, browser_binaries, outside_traffic, start_browser

EVIL = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2"> & \'quoted\''
SYMBOLS = "BABA,JD,0700.HK,9988.HK"
MAX_BYTES = 350_000


def _evil_events(path: Path) -> Path:
    header = ["id", "date", "time", "tz", "session_hint", "market", "type", "scope", "symbols", "firm",
              "from_grade", "to_grade", "description", "source", "confidence"]
    row = ["evil-2022-06-01", "2022-06-01", "", "Asia/Shanghai", "", "", "official_reassurance", "sector",
           "BABA 0700.HK", "", "", "", EVIL, "https://example.com/<b>", "low"]
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerow(row)
    return path


def _cli(*argv: str) -> tuple[int, str]:
    import cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = cli.main(list(argv))
    return code, out.getvalue()


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory, _sample_cache_master: Path) -> dict[str, Path]:
    """run, report, compare and study HTML/PNG files built once on the SYNTHETIC sample."""
    base = tmp_path_factory.mktemp("html_reports")
    cache = base / "cache"
    shutil.copytree(_sample_cache_master, cache)
    events = _evil_events(base / "evil.csv")
    out = {name: base / name for name in ("run.html", "run.png", "report.html", "compare.html", "compare.png",
                                          "study.html", "study.png")}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EVBT_CACHE_DIR", str(cache))
        mp.setenv("EVBT_RUNS_DIR", str(base / "runs"))
        common = ("--offline", "run", "reassurance", "--symbols", SYMBOLS, "--events", str(events))
        code, text = _cli(*common, "--json", "--html", str(out["run.html"]), "--plot", str(out["run.png"]))
        assert code == 0
        first = json.loads(text)["run_id"]
        code, text = _cli(*common, "-p", "hold=10", "--json")
        assert code == 0
        second = json.loads(text)["run_id"]
        assert _cli("report", first, "--html", str(out["report.html"]))[0] == 0
        assert _cli("compare", first, second, "--html", str(out["compare.html"]),
                    "--plot", str(out["compare.png"]))[0] == 0
        assert _cli("--offline", "study", "--type", "official_reassurance", "--events", str(events),
                    "--symbol", "BABA", "--symbol", "0700.HK", "--benchmark", "KWEB", "--estimation", "-120:-10",
                    "--html", str(out["study.html"]), "--plot", str(out["study.png"]))[0] == 0
    return out


# ---------------------------------------------------------------- static checks


@pytest.mark.parametrize("name", ["run.html", "report.html", "compare.html", "study.html"])
def test_self_contained_and_small(reports: dict[str, Path], name: str) -> None:
    text = reports[name].read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert 5_000 < len(text.encode()) < MAX_BYTES
    assert "SYNTHETIC DATA" in text
    assert "<script" not in text.lower()
    assert "<link rel=\"stylesheet\"" not in text and "@import" not in text
    # the only URLs are SVG namespace names and the (escaped) user source, never something to load
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", text, re.I)
    for url in re.findall(r"https?://[^\s\"'<>&]+", text):
        assert url.startswith(("http://www.w3.org/", "https://example.com/")), url
    assert text.count("<svg") >= (1 if name in ("compare.html", "study.html") else 3)


def test_user_text_is_escaped(reports: dict[str, Path]) -> None:
    for name in ("run.html", "report.html", "study.html"):
        text = reports[name].read_text(encoding="utf-8")
        assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in text, name
        assert "&lt;img src=x onerror=&quot;window.pwned=2&quot;&gt;" in text, name
        assert "<img" not in text


def test_run_and_report_html_are_identical(reports: dict[str, Path]) -> None:
    # the saved run renders exactly like the live one (deterministic charts, no clock)
    assert reports["run.html"].read_bytes() == reports["report.html"].read_bytes()


def test_html_sections(reports: dict[str, Path]) -> None:
    run = reports["run.html"].read_text(encoding="utf-8")
    for heading in ("Summary metrics", "Equity and drawdown", "Prices, events and trades", "Trades ("):
        assert heading in run
    assert "Sharpe" in run and "evil-2022-06-01" in run
    compare = reports["compare.html"].read_text(encoding="utf-8")
    assert "Metrics (deltas against [1])" in compare and "Parameters that differ" in compare
    study = reports["study.html"].read_text(encoding="utf-8")
    assert "Cumulative average abnormal return" in study and "Kolari-Pynnonen" in study
    assert "BMP" in study and "Skipped (" in study


@pytest.mark.parametrize("name", ["run.png", "compare.png", "study.png"])
def test_png_files(reports: dict[str, Path], name: str) -> None:
    data = reports[name].read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_plot_only_report(run_cli: Callable[..., tuple[int, str, str]], sample_cache: Path, tmp_path: Path) -> None:
    code, out, err = run_cli("--offline", "run", "reassurance", "--symbols", SYMBOLS, "--json")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    code, _, err = run_cli("report", run_id, "--plot", str(tmp_path / "r.png"))
    assert code == 0, err
    assert "wrote" in err and (tmp_path / "r.png").stat().st_size > 10_000
    code, out, _ = run_cli("report", run_id)  # no --html/--plot: the text report
    assert code == 0 and "Total return" in out
    code, _, err = run_cli("report", "no-such-run", "--html", str(tmp_path / "x.html"))
    assert code == 2 and not (tmp_path / "x.html").exists()


# ---------------------------------------------------------------- headless Chromium


def _browser_or_skip(tmp_path_factory: pytest.TempPathFactory) -> Browser:
    if browser_binaries() is None:
        pytest.skip(INSTALL_HINT)
    pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra: pip install -e '.[test]'")
    base = tmp_path_factory.mktemp("chromium")
    return start_browser(base / "profile", base / "netlog.json")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    chrome = _browser_or_skip(tmp_path_factory)
    try:
        yield chrome.driver
    finally:
        chrome.close()


def _open(driver: Any, path: Path) -> None:
    driver.get_log("browser")  # drop entries from earlier pages
    driver.get_log("performance")
    driver.get(path.resolve().as_uri())


def _requests(driver: Any) -> list[tuple[str, str]]:
    """(document URL, requested URL) of every request in the performance log since the last drain."""
    out = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            params = message["params"]
            out.append((params.get("documentURL", ""), params["request"]["url"]))
    return out


@pytest.mark.parametrize("name", ["run.html", "compare.html", "study.html"])
def test_renders_in_chromium(browser: Any, reports: dict[str, Path], name: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, reports[name])
    assert browser.execute_script("return document.readyState") == "complete"
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    requests = _requests(browser)
    uri = reports[name].resolve().as_uri()
    mine = [url for doc, url in requests if doc == uri]
    assert uri in mine, "the performance log records the page itself"
    assert all(url.startswith(("file:", "data:")) for url in mine), mine
    assert not [url for _, url in requests if url.startswith(("http:", "https:", "ws:", "wss:"))]
    figures = browser.find_elements(By.CSS_SELECTOR, "figure svg")
    assert len(figures) >= (1 if name != "run.html" else 3)
    for svg in figures:
        assert svg.size["width"] > 300 and svg.size["height"] > 100
        drawn = browser.execute_script("return arguments[0].querySelectorAll('path').length", svg)
        assert drawn > 10
    tables = browser.find_elements(By.TAG_NAME, "table")
    assert tables and all(t.size["width"] > 0 for t in tables)
    shot = tmp_path / f"{name}.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5_000


@pytest.mark.parametrize("name", ["run.html", "study.html"])
def test_script_in_event_description_renders_as_text(browser: Any, reports: dict[str, Path], name: str) -> None:
    _open(browser, reports[name])
    assert browser.execute_script("return document.scripts.length") == 0
    assert browser.execute_script("return typeof window.pwned") == "undefined"
    assert browser.execute_script("return document.images.length") == 0
    body = browser.execute_script("return document.body.innerText")
    assert '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">' in body


CANARY = "http://evbt-canary.example/pixel.png"


def test_nothing_left_the_machine(tmp_path_factory: pytest.TempPathFactory, reports: dict[str, Path]) -> None:
    """A browser of its own: a canary page proves the block catches requests; then the reports; then the net log."""
    chrome = _browser_or_skip(tmp_path_factory)
    try:
        driver = chrome.driver
        driver.get_log("performance")  # drain the start page's entries
        driver.get(f"data:text/html,<p>canary</p><img src='{CANARY}'>")
        canary = [m for m in _log_messages(driver) if m.get("method") == "Network.loadingFailed"]
        assert canary, "the canary image request failed in the page"
        page_urls = []
        for name in ("run.html", "compare.html", "study.html"):
            _open(driver, reports[name])
            messages = _log_messages(driver)
            page_urls += [m["params"]["request"]["url"] for m in messages
                          if m.get("method") == "Network.requestWillBeSent"]
            assert not [m for m in messages if m.get("method") == "Network.responseReceived"
                        and m["params"]["response"]["url"].startswith(("http:", "https:", "ws:", "wss:"))]
        assert not [u for u in page_urls if not u.startswith(("file:", "data:", "chrome:"))], page_urls
        seen = chrome.sink.lines()
        assert any("evbt-canary.example" in line for line in seen), seen  # the proxy to nowhere got it
        assert not [line for line in seen if "example.com" in line], seen  # the reports' escaped source URL
    finally:
        chrome.close()
    outside, tcp = outside_traffic(chrome.netlog)
    assert tcp >= 1, "the network log records the canary's connection to the sink"
    assert outside == [], f"traffic left the machine: {outside}; stopped at the sink: {chrome.sink.seen}"


def _log_messages(driver: Any) -> list[dict]:
    return [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]


def test_outside_traffic_reads_the_net_log(tmp_path: Path) -> None:
    """The net-log check itself (no browser): loopback is fine, a public address or unknown bytes are not."""
    types = {"TCP_CONNECT_ATTEMPT": 1, "TCP_CONNECT": 2, "UDP_CONNECT": 3, "SOCKET_BYTES_SENT": 4, "UDP_BYTES_SENT": 5}

    def log(*events: tuple[str, int, dict]) -> Path:
        path = tmp_path / f"net{len(list(tmp_path.iterdir()))}.json"
        path.write_text(json.dumps({"constants": {"logEventTypes": types}, "events": [
            {"type": types[name], "source": {"id": source}, "params": params} for name, source, params in events]}))
        return path

    local = log(("TCP_CONNECT_ATTEMPT", 1, {"address": "127.0.0.1:4000"}), ("SOCKET_BYTES_SENT", 1, {}),
                ("UDP_CONNECT", 2, {"address": "[2001:4860:4860::8888]:443"}))  # a UDP probe without bytes
    assert outside_traffic(local) == ([], 1)
    public = log(("TCP_CONNECT_ATTEMPT", 1, {"address": "93.184.216.34:443"}), ("SOCKET_BYTES_SENT", 1, {}))
    assert outside_traffic(public)[0] == ["TCP connection to 93.184.216.34:443",
                                          "SOCKET_BYTES_SENT to ['93.184.216.34:443']"]
    udp = log(("UDP_CONNECT", 2, {"address": "[2001:4860:4860::8888]:443"}), ("UDP_BYTES_SENT", 2, {}),
              ("SOCKET_BYTES_SENT", 7, {}))
    assert outside_traffic(udp)[0] == ["UDP_BYTES_SENT to ['[2001:4860:4860::8888]:443']",
                                       "SOCKET_BYTES_SENT to an unknown address"]
