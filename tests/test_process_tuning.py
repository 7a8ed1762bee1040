"""The command-line process collects cyclic garbage less often than Python's default (engine.api.settings
COLLECTOR_THRESHOLDS): set by cli.main for every command, not by importing the library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import gc, sys
sys.argv = ["evbt", "--version"]
import cli
before = gc.get_threshold()
try:
    cli.main(["--version"])
finally:
    print(before, gc.get_threshold())
"""


def test_cli_main_raises_the_collector_threshold_and_importing_does_not() -> None:
    from engine.api.settings import COLLECTOR_THRESHOLDS

    # a fresh interpreter's default (this test process may have run cli.main in-process already)
    default = subprocess.run([sys.executable, "-c", "import gc; print(gc.get_threshold())"], capture_output=True,
                             text=True, check=True).stdout.strip()
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
    before, after = out.stdout.strip().splitlines()[-1].split(") (")
    assert before + ")" == default != str(COLLECTOR_THRESHOLDS)  # importing cli changes nothing
    assert "(" + after == str(COLLECTOR_THRESHOLDS)
    assert COLLECTOR_THRESHOLDS[0] > 700  # above Python's default first threshold
