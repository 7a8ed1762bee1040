"""Hostile files, folders, processes and addresses (issue 17), with the trials of scripts/reliability.py run
for a few iterations (the script runs the full counts into RELIABILITY.md; the `--cluster` CLI trials and the
bit-flip trials run only there: the probe and the read checks are tested directly here and in
test_reliability_integrity.py)."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.errors import ConfigError, RunError
from engine.sweeps.safety import check_cluster_address, probe_scheduler
from scripts.trials import hostile_data, hostile_resources

# what a Dask 2026.8 scheduler sends first on a new tcp:// connection (captured once; read, never unpickled)
DASK_GREETING = (struct.pack("<QQQ", 58, 1, 42) + b"\x83\xabcompression\xc0\xa6python\x93\x03\x0b\x07"
                 b"\xafpickle-protocol\x05" + b"\x00" * 10)


@pytest.fixture
def greeter() -> Iterator[callable]:
    """A one-connection TCP server on a free port that sends ``payload`` (or nothing) and holds the line."""
    servers = []

    def start(payload: bytes | None) -> int:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        stop = threading.Event()

        def serve() -> None:
            conn, _ = sock.accept()
            if payload:
                conn.sendall(payload)
            stop.wait(30)
            conn.close()

        threading.Thread(target=serve, daemon=True).start()
        servers.append((sock, stop))
        return sock.getsockname()[1]

    yield start
    for sock, stop in servers:
        stop.set()
        sock.close()


def test_probe_accepts_a_dask_greeting(greeter) -> None:
    probe_scheduler(f"tcp://127.0.0.1:{greeter(DASK_GREETING)}", timeout=5)


@pytest.mark.parametrize(("payload", "needle"), [(None, "no Dask handshake within 0.5 s"),
                                                 (b"HTTP/1.1 400 Bad Request\r\n\r\n", "not like a Dask"),
                                                 (struct.pack("<Q", 1 << 40), "not like a Dask")])
def test_probe_refuses_silent_or_foreign_ports(greeter, payload: bytes | None, needle: str) -> None:
    with pytest.raises(RunError, match=needle):
        probe_scheduler(f"127.0.0.1:{greeter(payload)}", timeout=0.5)


@pytest.mark.parametrize(("address", "needle"), [("http://127.0.0.1:8787", "web address"),
                                                 ("https://dask.example.org/status", "web address"),
                                                 ("tls://10.0.0.5:8786", "TLS"), ("ucx://h:1", "protocol"),
                                                 ("tcp://h:0", "HOST:PORT"), ("nonsense", "HOST:PORT")])
def test_cluster_addresses_evbt_cannot_use_are_config_errors(address: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        check_cluster_address(address)


def test_killing_the_sweep_leaves_no_orphan_workers(tmp_path: Path) -> None:
    stats = hostile_resources.orphan_trials(1, tmp_path, grace=10.0)
    assert stats.workers_seen >= 2 and stats.orphans == 0, stats


def test_symlinks_planted_at_writers_touch_no_target(tmp_path: Path) -> None:
    rows, touched = hostile_data.symlink_trials(tmp_path, quick=True)
    assert touched == 0 and all(r[2] == "held" for r in rows), rows


def test_imports_racing_runs_record_consistent_versions(tmp_path: Path) -> None:
    out = hostile_data.import_race_trials(2, tmp_path)
    assert out.trials == 2 and out.bad == 0, out.notes
