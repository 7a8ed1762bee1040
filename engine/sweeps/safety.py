"""Safety of the sweep back ends: pool workers that die with their parent, and a checked ``--cluster`` path.

Pool workers: a SIGKILL of the main sweep process used to leave its forked workers alive for good. Each
worker asks the kernel for SIGKILL when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG)`` through ctypes);
elsewhere, or if prctl is unavailable, a daemon thread polls the parent pid once a second. Either way a
worker whose parent is already gone when it starts exits at once.

``--cluster``: Dask's ``tcp://`` protocol unpickles what it receives, so a scheduler (and its workers) can run
any code in this process and this process can run code on them: use only clusters you trust (README). Before
Dask connects, the address is checked (``tcp://HOST:PORT`` or ``HOST:PORT``; web addresses and ``tls://``
are refused with a clear message) and the scheduler's greeting is read with a bound: a Dask scheduler sends
its handshake as soon as a connection opens, so a wrong port that accepts connections and stays silent, or
answers something else, fails within the timeout instead of hanging (Dask's own connect timeout does not
cover the handshake). The probe reads bytes only; it never unpickles.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import struct
import threading
import time

from engine.errors import ConfigError, RunError

_PR_SET_PDEATHSIG = 1
MAX_GREETING = 1 << 20  # a Dask handshake is ~100 bytes; anything claiming more is not one


# ---------------------------------------------------------------------------------------------- pool workers


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(1.0)


def die_with_parent(parent: int) -> None:
    """Process pool initializer: this worker is killed when process ``parent`` dies."""
    armed = False
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        armed = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGKILL)
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent,), name="evbt-parent-watch", daemon=True).start()


# ---------------------------------------------------------------------------------------------- --cluster


def check_cluster_address(address: str) -> tuple[str, int]:
    """(host, port) of a ``--cluster`` scheduler address; ConfigError for what evbt cannot use safely."""
    text = address.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "tcp", text
    scheme = scheme.lower()
    if scheme in ("http", "https"):
        raise ConfigError(f"--cluster {address!r} is a web address (the Dask dashboard?); give the scheduler's "
                          "tcp://HOST:PORT (port 8786 by default)")
    if scheme == "tls":
        raise ConfigError(f"--cluster {address!r}: TLS clusters need certificates that evbt does not configure; "
                          "reach a trusted tcp:// scheduler through an SSH tunnel instead")
    if scheme != "tcp":
        raise ConfigError(f"--cluster {address!r}: unsupported protocol {scheme!r} (expected tcp://HOST:PORT "
                          "or 'local')")
    host, colon, port_text = rest.rstrip("/").rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"--cluster {address!r}: expected tcp://HOST:PORT (e.g. tcp://10.0.0.5:8786) or 'local'")
    return host, int(port_text)


def _recv_exactly(sock: socket.socket, n: int, deadline: float) -> bytes:
    data = b""
    while len(data) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed the connection")
        data += chunk
    return data


def probe_scheduler(address: str, timeout: float) -> None:
    """Connect and read the scheduler's greeting within ``timeout`` seconds; RunError if it is not a Dask
    scheduler's handshake (silent port, other protocol, closed connection, unreachable host)."""
    host, port = check_cluster_address(address)
    deadline = time.monotonic() + timeout
    where = f"the Dask cluster at {address}"
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            total = struct.unpack("<Q", _recv_exactly(sock, 8, deadline))[0]
            if not 16 <= total <= MAX_GREETING:
                raise RunError(f"{where} answered, but not like a Dask scheduler (is it the right port?)")
            body = _recv_exactly(sock, total, deadline)
    except TimeoutError:
        raise RunError(f"{where} gave no Dask handshake within {timeout:g} s (wrong port, or not a Dask "
                       "scheduler)") from None
    except OSError as exc:
        raise RunError(f"cannot reach {where}: {exc.strerror or exc}") from None
    if b"pickle-protocol" not in body and b"compression" not in body:
        raise RunError(f"{where} answered, but not like a Dask scheduler (is it the right port?)")
