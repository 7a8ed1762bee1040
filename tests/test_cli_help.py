"""Every command has help text with an example; --version works; `python cli.py` works from a checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

import cli

ROOT = Path(__file__).resolve().parents[1]


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        if isinstance(command, click.Group):
            out += all_commands(command, path)
        else:
            out.append(path)
    return out


COMMANDS = all_commands(cli.cli)


def test_the_documented_commands_exist() -> None:
    names = {" ".join(c) for c in COMMANDS}
    for expected in ("run", "demo", "compare", "rerun", "runs ls", "runs show", "data fetch", "data import",
                     "data ls", "data verify", "data rm", "events ls", "events validate", "events fetch-ratings"):
        assert expected in names


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_help_has_an_example(run_cli, path: tuple[str, ...]) -> None:
    code, out, _ = run_cli(*path, "--help")
    assert code == 0
    assert "Example" in out, f"`evbt {' '.join(path)} --help` has no example"


def test_version_and_checkout_entry_point() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "cli.py"), "--version"], capture_output=True, text=True,
                            cwd=ROOT, check=False)
    assert result.returncode == 0 and "evbt" in result.stdout


def test_unknown_command_is_usage_error(run_cli) -> None:
    code, _, err = run_cli("nosuchcommand")
    assert code == 2 and "No such command" in err
