"""A headless Chromium that cannot reach the network, and the evidence that it did not.

Chromium contacts Google and DuckDuckGo services on start whatever the --disable-* flags say (seen:
accounts.google.com, update.googleapis.com, clients2.google.com, optimizationguide-pa.googleapis.com,
start.duckduckgo.com). So every request is blocked twice:

- ``--proxy-server`` points at :class:`Sink`, a proxy to nowhere on 127.0.0.1: it reads the request line,
  records it and closes the connection (it never connects anywhere);
- ``--host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"``: no host name resolves, so a request that
  bypassed the proxy could not connect either.

``--log-net-log`` writes Chromium's own network log (every socket of the browser, not only the page's), which
:func:`outside_traffic` reads after the browser quit: any TCP connection or sent bytes to a non-loopback address.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import socketserver
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK_DNS = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
QUIET_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1200,900")
INSTALL_HINT = ("headless browser tests need chromium and chromedriver on PATH: the optional system step "
                "`apt-get install chromium chromium-driver` (README, Testing)")


def browser_binaries() -> tuple[str, str] | None:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(5)
        try:
            data = self.request.recv(8192)
        except OSError:
            data = b""
        line = data.split(b"\r\n", 1)[0].decode("latin-1")
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.seen.append(line)  # type: ignore[attr-defined]
        # no answer: the connection is closed, nothing is forwarded


class Sink(socketserver.ThreadingTCPServer):
    """A proxy to nowhere on 127.0.0.1 (random port) that records each request line it is sent."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[str] = []
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def lines(self) -> list[str]:
        with self.lock:
            return list(self.seen)

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


@dataclass
class Browser:
    """A selenium driver for a network-blocked Chromium, its sink and its network log."""

    driver: Any
    sink: Sink
    netlog: Path
    closed: bool = field(default=False)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.driver.quit()  # Chromium finishes the network log on a normal exit
            finally:
                self.sink.stop()


def start_browser(profile: Path, netlog: Path) -> Browser:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binaries = browser_binaries()
    assert binaries is not None, INSTALL_HINT
    chromium, chromedriver = binaries
    sink = Sink()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*QUIET_FLAGS, f"--user-data-dir={profile}", f"--proxy-server={sink.url}", BLOCK_DNS,
                 f"--log-net-log={netlog}", "--net-log-capture-mode=Default"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    except Exception:
        sink.stop()
        raise
    driver.get("about:blank")
    return Browser(driver, sink, netlog)


def _loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def outside_traffic(netlog: Path) -> tuple[list[str], int]:
    """(what went to a non-loopback address, number of TCP connections seen) from a finished Chromium net log.

    A TCP connection attempt to a non-loopback address, or bytes sent on a socket whose peer is not loopback
    (or unknown), is outside traffic. A UDP ``connect()`` without bytes sent is not: Chromium's IPv6
    reachability probe connects a UDP socket to a public address only to learn the local route."""
    log = json.loads(netlog.read_text(encoding="utf-8"))
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    peers: dict[int, set[str]] = {}
    problems: list[str] = []
    tcp = 0
    for event in log["events"]:
        name, params = names.get(event["type"], "?"), event.get("params") or {}
        source = event["source"]["id"]
        address = params.get("address") if name in ("TCP_CONNECT_ATTEMPT", "UDP_CONNECT") else (
            params.get("remote_address") if name == "TCP_CONNECT" else None)
        if address:
            peers.setdefault(source, set()).add(address)
        if name == "TCP_CONNECT_ATTEMPT" and address:
            tcp += 1
            if not _loopback(address):
                problems.append(f"TCP connection to {address}")
    for event in log["events"]:
        name = names.get(event["type"], "?")
        if name in ("SOCKET_BYTES_SENT", "UDP_BYTES_SENT"):
            to = peers.get(event["source"]["id"], set())
            if not to or not all(_loopback(a) for a in to):
                problems.append(f"{name} to {sorted(to) or 'an unknown address'}")
    return problems, tcp
