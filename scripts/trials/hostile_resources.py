"""Trials of bounded resources and the cluster path: kill-the-parent (orphan pool workers), `--cluster` at a
wrong port / web server / tls address, refused huge grids, and a 100,000-event run."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import os
import random
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scripts.trials.common import REPO, _env, _prepare_sample, _quiet_cli

ORPHAN_ARGV = ["--sample", "sweep", "reassurance", "-g", "hold=1..150", "-g", "fill=open,close", "--workers", "2",
               "--quiet"]


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@dataclass
class OrphanStats:
    trials: int = 0
    workers_seen: int = 0
    orphans: int = 0
    skipped: int = 0  # the sweep ended before its workers were seen
    seconds: float = 0.0


def orphan_trials(trials: int, work: Path, grace: float = 10.0) -> OrphanStats:
    """SIGKILL the main `evbt sweep --workers 2` process once its pool workers exist; count workers still
    alive ``grace`` seconds later (then kill them: they are this script's descendants)."""
    began = time.monotonic()
    base = work / "orphans"
    shutil.rmtree(base, ignore_errors=True)
    _prepare_sample(base / "cache")
    stats = OrphanStats()
    rng = random.Random(11)
    for n in range(trials):
        stats.trials += 1
        env = _env({"EVBT_CACHE_DIR": str(base / "cache"), "EVBT_RUNS_DIR": str(base / f"runs-{n}")})
        proc = subprocess.Popen([sys.executable, "-m", "cli", *ORPHAN_ARGV], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env, cwd=REPO)
        workers: list[int] = []
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            workers = [c for c in _children(proc.pid) if _alive(c)]
            if len(workers) >= 2:
                break
            time.sleep(0.01)
        if len(workers) < 2:
            stats.skipped += 1
            proc.kill()
            proc.wait()
            continue
        time.sleep(rng.uniform(0.0, 0.5))
        workers = [c for c in _children(proc.pid) if _alive(c)] or workers
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stats.workers_seen += len(workers)
        until = time.monotonic() + grace
        while any(_alive(w) for w in workers) and time.monotonic() < until:
            time.sleep(0.05)
        left = [w for w in workers if _alive(w)]
        stats.orphans += len(left)
        for w in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(w, signal.SIGKILL)
    stats.seconds = time.monotonic() - began
    return stats


# ---------------------------------------------------------------------------- --cluster


@contextlib.contextmanager
def _server(kind: str) -> Iterator[int]:
    """A local TCP server on a free port: ``silent`` accepts and never answers; ``http`` is a web server;
    ``garbage`` greets every connection with an HTTP error line."""
    if kind == "http":
        httpd = socketserver.TCPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield httpd.server_address[1]
        finally:
            httpd.shutdown()
            httpd.server_close()
        return
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            held.append(conn)
            if kind == "garbage":
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        sock.close()


def cluster_trials(work: Path, timeout: float = 2.0) -> list[tuple[str, str, str]]:
    """`evbt sweep --cluster ADDR` against things that are not a trusted Dask scheduler: (case, result, held)."""
    base = work / "cluster"
    shutil.rmtree(base, ignore_errors=True)
    _prepare_sample(base / "cache")
    argv = ["--cache-dir", str(base / "cache"), "--sample", "sweep", "reassurance", "-g", "hold=1..3", "--quiet"]
    cases = [("silent TCP port (accepts, never answers)", "silent", None, 1),
             ("a web server's port given as tcp://", "http", None, 1),
             ("a port that greets with an HTTP error line", "garbage", None, 1),
             ("web address http://HOST:PORT", None, "http://127.0.0.1:8787", 2),
             ("tls://HOST:PORT", None, "tls://127.0.0.1:8786", 2)]
    rows = []
    old = os.environ.get("EVBT_SWEEP_CONNECT_TIMEOUT")
    os.environ["EVBT_SWEEP_CONNECT_TIMEOUT"] = str(timeout)
    try:
        for name, kind, address, want in cases:
            with contextlib.ExitStack() as stack:
                if kind is not None:
                    port = stack.enter_context(_server(kind))
                    address = f"tcp://127.0.0.1:{port}"
                began = time.monotonic()
                code, text = _quiet_cli(*argv, "--cluster", str(address))
                seconds = time.monotonic() - began
            message = text.strip().splitlines()[-1] if text.strip() else ""
            ok = code == want and message.startswith("error:") and "internal error" not in message and \
                seconds < timeout + 30
            rows.append((name, f"exit {code} after {seconds:.1f} s (connect timeout {timeout:g} s): "
                         f"`{message[:150]}`", "held" if ok else "FAILED"))
    finally:
        if old is None:
            os.environ.pop("EVBT_SWEEP_CONNECT_TIMEOUT", None)
        else:
            os.environ["EVBT_SWEEP_CONNECT_TIMEOUT"] = old
    return rows


# ---------------------------------------------------------------------------- bounded work


def _timed_cli(argv: list[str], env: dict[str, str]) -> tuple[int, str, float, float, int]:
    """(exit code, last stderr line, wall seconds, CPU seconds, peak RSS in MB) of one CLI process."""
    began = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "cli", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env, cwd=REPO, text=True)
    assert proc.stderr is not None
    err_text = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - began
    lines = [ln for ln in err_text.splitlines() if ln.strip()]
    return (proc.returncode, lines[-1] if lines else "", wall, usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss // 1024)


def grid_refusal(work: Path) -> list[tuple[str, str, str]]:
    """Huge grids are refused before any work, with a memory estimate: (case, result, held)."""
    base = work / "grid"
    shutil.rmtree(base, ignore_errors=True)
    _prepare_sample(base / "cache")
    env = _env({"EVBT_CACHE_DIR": str(base / "cache"), "EVBT_RUNS_DIR": str(base / "runs")})
    rows = []
    for spec in (["-g", "hold=1..1000000"], ["-g", "hold=1..1000", "-g", "size=" + ",".join(
            f"0.{i:03d}" for i in range(1, 201))]):
        code, message, wall, cpu, rss = _timed_cli(["--sample", "sweep", "reassurance", *spec, "--quiet"], env)
        ok = code == 2 and "GB of memory" in message and not (base / "runs" / "sweeps").exists()
        rows.append((f"`evbt sweep {' '.join(spec)[:60]}`", f"exit {code} in {wall:.1f} s ({cpu:.1f} s CPU, peak "
                     f"{rss} MB): `{message[:170]}`", "held" if ok else "FAILED"))
    return rows


EVENT_HEADER = ("id,date,time,tz,session_hint,market,type,scope,symbols,firm,from_grade,to_grade,description,"
                "source,confidence")


def big_events_run(events: int, work: Path, real_prices: Path | None = None) -> tuple[str, str, str]:
    """`evbt run reassurance` with ``events`` random events on the seed universe (real prices when
    ``real_prices`` holds the shared CSVs, else the synthetic sample): (case, result, held)."""
    from strategies.base import CHINA_INTERNET

    base = work / "big-events"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    rng = random.Random(3)
    if real_prices is not None and real_prices.is_dir():
        cache = base / "cache"
        env = _env({"EVBT_CACHE_DIR": str(cache), "EVBT_RUNS_DIR": str(base / "runs")})
        subprocess.run([sys.executable, "-m", "cli", "data", "import", *map(str, sorted(real_prices.glob("*.csv")))],
                       env=env, cwd=REPO, capture_output=True, check=True)
        universe, argv, where = CHINA_INTERNET, ["--offline", "run"], "14-symbol seed universe, real prices"
    else:
        _prepare_sample(base / "cache")
        env = _env({"EVBT_CACHE_DIR": str(base / "cache"), "EVBT_RUNS_DIR": str(base / "runs")})
        universe, argv, where = ("BABA", "JD", "PDD", "0700.HK", "9988.HK", "3690.HK"), ["--sample", "run"], \
            "synthetic sample"
    path = base / "events.csv"
    lines = [EVENT_HEADER]
    for i in range(events):
        day = dt.date(2021, 1, 4) + dt.timedelta(days=rng.randrange(700))
        lines.append(f"big-{i},{day},{rng.randrange(24):02d}:00,Asia/Hong_Kong,,,official_reassurance,single,"
                     f"{rng.choice(universe)},,,,words,https://example.org,high")
    path.write_text("\n".join(lines) + "\n")
    code, message, wall, cpu, rss = _timed_cli([*argv, "reassurance", "--events", str(path), "--no-save"], env)
    return (f"`evbt run reassurance` with {events:,} events ({where})",
            f"exit {code}; {cpu:.0f} s CPU ({wall:.0f} s wall on a shared machine), peak {rss} MB",
            "held" if code == 0 else f"FAILED: {message[:200]}")
