"""HTML reports: content, escaping, size, and a real headless Chromium (no console error, no network request,
charts rendered with a size, screenshot). Browser tests skip when chromium/chromedriver are not installed
(.ci/run installs them)."""

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

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
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


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("chromium / chromium-driver not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1200,900",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.get("about:blank")
    try:
        yield driver
    finally:
        driver.quit()


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
