"""Every command example in README.md's ```sh blocks runs, in order, in one fresh cache and runs folder, offline.

Data: the real CSVs of ../shared/data ($EVBT_SHARED_DATA) when present, else the synthetic sample (every
command then gets ``--sample``). Commands that cannot run here are replaced by their offline equivalent or
skipped, each announced (``REPLACED`` / ``SKIPPED``); any other non-zero exit fails unless the README line
announces it with a ``# exit N`` comment. Run ids in the README (``strategy-<12 hex>``) stand for the newest
saved run of that strategy.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUP = ("python3.11", "python", "pip", "pipx", ".venv/bin/pip", ".venv/bin/ruff", "ruff", ".venv/bin/python",
         "pytest")
SHELL_SETUP = ("eval", "_EVBT_COMPLETE=")  # shell completion set-up (the completion test covers the script)
SKIPPED = {("events", "fetch-ratings"): "needs the network (Yahoo analyst ratings)"}
REPLACED = {("data", "fetch"): "needs the network: replaced by importing the CSV files",
            ("data", "import"): "the README's files are the user's: replaced by importing the CSV files"}
RUN_ID = re.compile(r"^([a-z0-9-]+)-[0-9a-f]{12}$")  # a run id as evbt writes it: analyst-follow-8e1d0c5b2a97


def readme_commands(text: str) -> list[tuple[list[str], int]]:
    """(argv after `evbt`, expected exit) for each evbt command of the ```sh blocks, in order."""
    out: list[tuple[list[str], int]] = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            code, _, comment = line.partition(" #")
            expected = int(m.group(1)) if (m := re.search(r"exit (\d+)", comment)) else 0
            for part in code.split("&&"):
                argv = shlex.split(part, comments=True)
                if not argv or argv[0] in SETUP or argv[0].startswith(SHELL_SETUP):
                    continue
                assert argv[0] in ("evbt", ".venv/bin/evbt"), f"README command not understood: {part!r}"
                out.append((argv[1:], expected))
    return out


def test_readme_parser_sees_every_example() -> None:
    commands = readme_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert [c[0][:1] for c in commands][:1] == [["demo"]]
    assert sum(c[0][:1] == ["sweep"] for c in commands) >= 5 and any(c[0][:1] == ["compare"] for c in commands)


def _newest_run(prefix: str) -> str:
    """The newest saved run whose id has this prefix (the strategy's name, hyphenated: evbt's run ids)."""
    from engine.saved_runs import list_runs

    runs = [s for s in list_runs() if s.run_id.rsplit("-", 1)[0] == prefix]
    assert runs, f"the README compares a {prefix}-... run, but no earlier example saved one"
    return runs[0].run_id


def _write_tutorial(folder: Path) -> None:
    """The strategy tutorial's file, as the README's examples use it: ./below_average.py and in ./rules."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    code = text.split("<!-- tutorial:begin -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    (folder / "below_average.py").write_text(code)
    (folder / "rules").mkdir()
    (folder / "rules" / "below_average.py").write_text(code)


def test_every_readme_example_runs(run_cli: Callable[..., tuple[int, str, str]], tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVBT_OFFLINE", "1")
    _write_tutorial(tmp_path)
    from conftest import shared_data_dir

    prices = shared_data_dir() / "prices"
    real = prices.is_dir()
    csvs = sorted(glob.glob(str(prices / "*.csv")))
    prefix = [] if real else ["--sample"]
    notes: list[str] = []
    for argv, expected in readme_commands((ROOT / "README.md").read_text(encoding="utf-8")):
        head = tuple(argv[:2])
        if head in SKIPPED:
            notes.append(f"SKIPPED evbt {' '.join(argv)}: {SKIPPED[head]}")
            continue
        if head in REPLACED:
            notes.append(f"REPLACED evbt {' '.join(argv)}: {REPLACED[head]}")
            argv = ["data", "import", *csvs] if real else ["data", "sample"]
        argv = [_newest_run(m.group(1)) if (m := RUN_ID.match(a)) else a for a in argv]
        code, out, err = run_cli(*prefix, *argv)
        assert code == expected, f"evbt {' '.join(argv)} exited {code}: {err.strip()[-500:]}"
        if "--json" in argv:
            json.loads(out)
    with capsys.disabled():
        print("\n" + "\n".join(notes))
    assert os.path.isfile("run.html") and os.path.isfile("hold_fill.png")
