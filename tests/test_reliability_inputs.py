"""Unclear messages and environment-dependent behaviour found by the second reliability round (issue 17):
a hung network's message, yfinance's log noise on ratings failures, an online missing benchmark, a relative
``--events`` path saved as given, Ctrl-C's exit status, file modes and symlinks at the writers."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import yfinance
from curl_cffi.requests.exceptions import ConnectionError as CurlConnectionError

import engine.atomic
import engine.prices.yahoo
from engine.errors import DataError

Run = Callable[..., tuple[int, str, str]]
REPO = Path(__file__).resolve().parents[1]
EVENT_HEADER = ("id,date,time,tz,session_hint,market,type,scope,symbols,firm,from_grade,to_grade,description,"
                "source,confidence")


def test_hung_network_message_never_negative(monkeypatch: pytest.MonkeyPatch) -> None:
    """The attempt bound was computed from the time left *before* the previous attempt, so after a hang plus a
    back-off the next bound was negative: "no answer within -4 s"."""
    release = threading.Event()
    monkeypatch.setattr(engine.prices.yahoo, "_download", lambda *a, **k: release.wait(10))
    monkeypatch.setattr(engine.prices.yahoo, "BACKOFF", 0.15)
    try:
        with pytest.raises(DataError) as info:
            engine.prices.yahoo.fetch_history("BABA", None, None, attempt_timeout=0.2, deadline=0.3,
                                              retries=3)
    finally:
        release.set()
    assert "no answer within" in str(info.value) and "within -" not in str(info.value), info.value


_RATINGS_NOISE = """
import logging, sys
import yfinance
class Ticker:
    def __init__(self, symbol):
        pass
    @property
    def upgrades_downgrades(self):
        log = logging.getLogger("yfinance")
        for _ in range(3):
            log.error("Failed to get ticker 'BABA' reason: Invalid Cookie/crumb")
        raise RuntimeError("401 Unauthorized: Invalid Crumb")
yfinance.Ticker = Ticker
import cli
sys.exit(cli.main(["events", "fetch-ratings", "BABA"]))
"""


def test_ratings_failure_is_one_line_without_yfinance_log_noise(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "EVBT_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", _RATINGS_NOISE], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: BABA"), proc.stderr
    assert "Failed to get ticker" not in proc.stderr


def test_online_missing_benchmark_is_a_warning_like_offline(run_cli: Run, sample_cache: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    class Down:
        def __init__(self, symbol: str) -> None:
            pass

        def history(self, **kwargs: object) -> None:
            raise CurlConnectionError("Could not resolve host: query2.finance.yahoo.com")

    monkeypatch.setattr(yfinance, "Ticker", Down)
    monkeypatch.setattr(engine.prices.yahoo, "BACKOFF", 0.001)
    (sample_cache / "KWEB.parquet").unlink()
    code, _, err = run_cli("run", "reassurance", "--symbols", "BABA,JD", "--end", "2022-12-30", "--no-save")
    assert code == 0, err
    assert "warning: benchmark KWEB unavailable" in err
    code, _, err_off = run_cli("--offline", "run", "reassurance", "--symbols", "BABA,JD", "--end", "2022-12-30",
                               "--no-save")
    assert code == 0 and "warning: benchmark KWEB unavailable" in err_off


def test_a_config_files_relative_event_file_is_its_neighbour(run_cli: Run, sample_cache: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """`events = "my.csv"` in a --config file was read from the folder evbt was started in (not found, or another
    my.csv); it is the file beside the config, as the config's author meant, while --events stays relative to
    the current folder."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "my.csv").write_text(f"{EVENT_HEADER}\nmine-1,2022-03-16,14:00,Asia/Hong_Kong,,,official_reassurance,"
                                    "single,BABA,,,,Calm words,https://x.org,high\n")
    (elsewhere / "my.csv").write_text(f"{EVENT_HEADER}\n")  # a decoy where evbt is started
    (project / "run.toml").write_text('symbols = ["BABA", "JD"]\nend = "2022-12-30"\nevents = "my.csv"\n'
                                      "replace_events = true\n")
    monkeypatch.chdir(elsewhere)
    code, out, err = run_cli("--offline", "run", "reassurance", "--config", str(project / "run.toml"), "--json",
                             "--no-save")
    assert code == 0, err
    report = json.loads(out)
    assert report["config"]["events_files"] == [str(project / "my.csv")]
    assert [t["event_id"] for t in report["trades"]] == ["mine-1"]


def test_relative_events_path_saved_absolute_so_rerun_works_elsewhere(run_cli: Run, sample_cache: Path,
                                                                       tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    here = tmp_path / "project"
    here.mkdir()
    (here / "my.csv").write_text(f"{EVENT_HEADER}\nmine-1,2022-03-16,14:00,Asia/Hong_Kong,,,official_reassurance,"
                                 "single,BABA,,,,Calm words,https://x.org,high\n")
    monkeypatch.chdir(here)
    code, out, err = run_cli("--offline", "run", "reassurance", "--symbols", "BABA,JD", "--end", "2022-12-30",
                             "--events", "my.csv", "--json")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    config = json.loads((Path(os.environ["EVBT_RUNS_DIR"]) / run_id / "config.json").read_text())
    files = config.get("events_files") or config["config"]["events_files"]
    assert files == [str(here / "my.csv")]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, err = run_cli("--offline", "rerun", run_id)
    assert code == 0, err


_SLOW_RUN = """
import sys, time
import engine.api as api
def slow(*a, **k):
    print("ready", flush=True)
    time.sleep(60)
for name in dir(api):
    if name in ("run_and_save", "execute_run", "run"):
        setattr(api, name, slow)
import engine.backtest
engine.backtest.run = slow
import cli
sys.exit(cli.main(["--sample", "run", "reassurance", "--symbols", "BABA"]))
"""


def _interactive_sigint() -> None:
    """The child gets SIGINT as from a terminal: default disposition, not blocked. A test worker may have
    inherited an ignored or blocked SIGINT from earlier tests (under pytest-xdist this test timed out in full
    runs, never alone), and a child inherits both across exec."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _ctrl_c(code: str, tmp_path: Path, sample_cache: Path) -> str:
    """Run ``code`` in a child on the sample, send it SIGINT once it prints "ready"; its stderr (exit 130)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "EVBT_CACHE_DIR": str(tmp_path / "c"),
           "EVBT_RUNS_DIR": str(tmp_path / "runs")}
    (tmp_path / "c").mkdir()
    os.symlink(sample_cache, tmp_path / "c" / "sample")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=REPO, preexec_fn=_interactive_sigint)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    return err


def test_ctrl_c_exits_130(tmp_path: Path, sample_cache: Path) -> None:
    err = _ctrl_c(_SLOW_RUN, tmp_path, sample_cache)
    assert err.strip().splitlines()[-1] == "interrupted" and "resume" not in err


_SLOW_SWEEP = """
import sys, time
import engine.api as api
def slow(*a, **k):
    print("ready", flush=True)
    time.sleep(60)
api.run_sweep = slow
import cli
sys.exit(cli.main(["--sample", "sweep", "reassurance", "--symbols", "BABA", "-g", "hold=2,3", "--quiet"]))
"""


def test_ctrl_c_in_a_sweep_says_it_resumes(tmp_path: Path, sample_cache: Path) -> None:
    err = _ctrl_c(_SLOW_SWEEP, tmp_path, sample_cache)
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-2:] == ["the finished batches of points are saved: run the same command again to resume from them",
                          "interrupted"]


# ---------------------------------------------------------------------------- atomic writes in hostile folders


def test_rewrite_keeps_file_mode(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_bytes(b"old")
    target.chmod(0o600)
    engine.atomic.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and stat.S_IMODE(target.stat().st_mode) == 0o600


def test_symlink_at_destination_is_replaced_target_untouched(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    dest = tmp_path / "out" / "report.html"
    dest.parent.mkdir()
    dest.symlink_to(victim)
    engine.atomic.atomic_write_bytes(dest, b"<html>")
    assert victim.read_bytes() == b"precious"
    assert not dest.is_symlink() and dest.read_bytes() == b"<html>"


def test_symlink_planted_at_the_temp_name_is_never_followed(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """An attacker who guesses the temp name (the old one was `.<name>.<pid>.tmp`) plants a symlink there."""
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    dest = tmp_path / "BABA.parquet"
    old_style = tmp_path / f".{dest.name}.{os.getpid()}.tmp"
    old_style.symlink_to(victim)
    tokens = iter(["0" * 16, "1" * 16])
    monkeypatch.setattr(engine.atomic.secrets, "token_hex", lambda n: next(tokens))
    guessed = tmp_path / f".{dest.name}.{'0' * 16}.{os.getpid()}.tmp"
    guessed.symlink_to(victim)
    engine.atomic.atomic_write_bytes(dest, b"data")
    assert victim.read_bytes() == b"precious"
    assert dest.read_bytes() == b"data" and not dest.is_symlink()
    assert guessed.is_symlink() and old_style.is_symlink()  # left alone, never opened


def test_temp_names_are_not_predictable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    real = os.replace

    def spy(src: object, dst: object) -> None:
        seen.append(Path(str(src)).name)
        real(src, dst)

    monkeypatch.setattr(engine.atomic.os, "replace", spy)
    for _ in range(3):
        engine.atomic.atomic_write_bytes(tmp_path / "x.json", b"{}")
    assert len(set(seen)) == 3 and all(n.endswith(f".{os.getpid()}.tmp") for n in seen)
    assert engine.atomic.temp_owner(seen[0]) == os.getpid()
