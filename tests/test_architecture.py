"""The module boundaries of docs/design.md, checked: import-linter contracts and the CLI's own imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_import_contracts_hold() -> None:
    out = subprocess.run([str(BIN / "lint-imports"), "--config", str(ROOT / ".importlinter")], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_cli_reaches_third_party_libraries_only_through_the_engine() -> None:
    heavy = {"backtrader", "yfinance", "exchange_calendars", "matplotlib", "pyarrow", "pandas", "numpy",
             "distributed"}
    assert not _imported(ROOT / "cli.py") & heavy


def test_the_import_check_sees_a_planted_violation(tmp_path: Path) -> None:
    """The contract runner must be able to fail: a copy of the tree with backtrader imported in metrics breaks it."""
    import shutil

    for name in ("engine", "strategies"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    metrics = tmp_path / "engine" / "analysis" / "metrics.py"
    metrics.write_text(metrics.read_text() + "\nimport backtrader  # planted\n")
    out = subprocess.run([str(BIN / "lint-imports"), "--config", str(tmp_path / ".importlinter")], cwd=tmp_path,
                         capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path), "PATH": str(BIN)})
    assert out.returncode != 0
    assert "backtrader is imported only by the backtrader driver BROKEN" in out.stdout


def test_type_checker_finds_no_error() -> None:
    """mypy over cli.py, engine/ and strategies/ (mypy.ini) reports nothing."""
    out = subprocess.run([str(BIN / "mypy"), "--config-file", str(ROOT / "mypy.ini")], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "Success: no issues found" in out.stdout
