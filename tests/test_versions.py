"""engine.versions answers as importlib.metadata does (the reference), without importing it on the common path."""

from __future__ import annotations

import importlib.metadata as metadata
import subprocess
import sys
from pathlib import Path

import pytest

from engine.versions import version

ROOT = Path(__file__).resolve().parents[1]


def test_every_installed_distribution_has_importlib_metadatas_version() -> None:
    names = {d.metadata["Name"] for d in metadata.distributions()}
    assert {"evbt", "pandas", "backtrader"} <= names
    assert version("exchange-calendars") == metadata.version("exchange-calendars")
    assert {n: version(n) for n in names} == {n: metadata.version(n) for n in names}
    assert version("PANDAS") == version("pandas") == metadata.version("pandas")  # names are normalised


def test_not_installed_is_none() -> None:
    assert version("no-such-distribution-evbt") is None


def _dist(folder: Path, entry: str, text: str, file: str = "METADATA") -> None:
    info = folder / entry
    info.mkdir(parents=True)
    (info / file).write_text(text, encoding="utf-8")


@pytest.fixture()
def own_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.setattr(sys, "path", [str(first), str(second), *sys.path])
    return first, second


def test_the_first_folder_on_the_path_wins_and_the_header_is_read(own_path: tuple[Path, Path]) -> None:
    first, second = own_path
    # the folder name's version is not what counts: the Version header is (importlib.metadata reads that)
    _dist(first, "Evbt_Probe_Pkg-9.9.dist-info", "Metadata-Version: 2.1\nName: evbt-probe.pkg\nVersion: 1.0rc1\n\n")
    _dist(second, "evbt_probe_pkg-2.0.dist-info", "Metadata-Version: 2.1\nName: evbt-probe-pkg\nVersion: 2.0\n")
    assert version("evbt-probe-pkg") == metadata.version("evbt-probe-pkg") == "1.0rc1"
    assert version("Evbt.Probe_PKG") == metadata.version("Evbt.Probe_PKG")


def test_egg_info_folders_and_files(own_path: tuple[Path, Path]) -> None:
    first, second = own_path
    _dist(first, "evbt_probe_egg.egg-info", "Metadata-Version: 1.1\nName: evbt-probe-egg\nVersion: 3.1\n", "PKG-INFO")
    (second / "evbt_probe_file-4.0.egg-info").write_text("Metadata-Version: 1.1\nName: evbt-probe-file\n"
                                                        "Version: 4.0.post1\n", encoding="utf-8")
    assert version("evbt-probe-egg") == metadata.version("evbt-probe-egg") == "3.1"
    assert version("evbt-probe-file") == metadata.version("evbt-probe-file") == "4.0.post1"


def test_a_header_in_the_body_is_not_the_version(own_path: tuple[Path, Path]) -> None:
    first, _ = own_path
    _dist(first, "evbt_probe_body-1.dist-info", "Metadata-Version: 2.1\nName: evbt-probe-body\n\nVersion: 7\n")
    assert version("evbt-probe-body") is None  # importlib.metadata: None or KeyError, by Python version


def test_a_changed_folder_is_read_again(own_path: tuple[Path, Path]) -> None:
    first, _ = own_path
    assert version("evbt-probe-late") is None
    before = first.stat().st_mtime_ns
    _dist(first, "evbt_probe_late-1.dist-info", "Name: evbt-probe-late\nVersion: 5.5\n")
    assert first.stat().st_mtime_ns != before  # the folder's mtime moved: its index is built again
    assert version("evbt-probe-late") == "5.5"


def test_the_cli_does_not_import_importlib_metadata() -> None:
    probe = "import sys, cli; cli.main(['--version']); print('importlib.metadata' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stdout + out.stderr
