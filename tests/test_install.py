"""evbt as an installed tool: a real wheel in a fresh venv, run from another folder, writes nothing inside
site-packages; the default-folder rule; the packaged calendar; `--cluster` without the extra.

The wheel is built offline from a copy of the checkout (`pip wheel --no-deps --no-build-isolation --no-index`,
with the setuptools of the test extra) and installed with `--no-deps` into a fresh venv whose dependencies
come from this environment's site-packages (a .pth line: nothing is downloaded).
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import venv
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

from engine import paths

Run = Callable[..., tuple[int, str, str]]
REPO = Path(__file__).resolve().parents[1]
_IGNORE_ANYWHERE = shutil.ignore_patterns(".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__",
                                         ".hypothesis", ".pytest_cache", ".ruff_cache", ".mypy_cache",
                                         ".import_linter_cache")  # tool caches: another worker may be writing them


def COPY_IGNORE(folder: str, names: list[str]) -> set[str]:
    """Checkout state to leave out of the copy: the top-level data_cache/ and runs/ only (engine/runs is code)."""
    ignored = set(_IGNORE_ANYWHERE(folder, names))
    if Path(folder).resolve() == REPO.resolve():
        ignored |= {"data_cache", "runs"} & set(names)
    return ignored
TIMEOUT_S = 600  # a safety net against a hung subprocess, not a speed check


def _major(dist: str) -> int | None:
    try:
        return int(version(dist).split(".")[0])
    except (PackageNotFoundError, ValueError):
        return None


def _cannot_build_offline() -> str | None:
    """Why the wheel cannot be built and installed without the network here (None: it can)."""
    setuptools_major = _major("setuptools")
    if setuptools_major is None or setuptools_major < 68:
        return "building the wheel offline needs setuptools>=68 in this venv (pip install -e '.[test]' installs it)"
    pip_version = tuple(int(p) for p in version("pip").split(".")[:2] if p.isdigit())
    if pip_version < (22, 3):
        return f"pip {version('pip')} has no --python option (needs pip>=22.3)"
    return None


def _run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=False, **kw)  # type: ignore[call-overload]


def _clean_env(home: Path) -> dict[str, str]:
    """The environment minus evbt's variables and PYTHONPATH (so the default rule and the wheel are what runs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVBT_") and k != "PYTHONPATH"}
    env["HOME"] = str(home)
    return env


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@dataclass(frozen=True)
class Installed:
    wheel: Path
    python: Path
    evbt: Path
    site_packages: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    reason = _cannot_build_offline()
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    shutil.copytree(REPO, src, ignore=COPY_IGNORE)
    build = _run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "--no-index",
                  "-w", str(base / "dist")])
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = (base / "dist").glob("evbt-*.whl")
    venv.create(base / "venv", with_pip=False)
    python = base / "venv" / "bin" / "python"
    purelib = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
                   .stdout.strip())
    # Dependencies from this environment, after the fresh site-packages. Lines of a .pth only extend sys.path:
    # the .pth files of this environment (its editable evbt) are not processed, so only the wheel provides evbt.
    here = [*site.getsitepackages(), sysconfig.get_paths()["purelib"]]
    (purelib / "zz_evbt_test_dependencies.pth").write_text("\n".join(dict.fromkeys(here)) + "\n")
    install = _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    str(wheel)])
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    home = base / "home"
    home.mkdir()
    return Installed(wheel, python, base / "venv" / "bin" / "evbt", purelib, _clean_env(home))


def test_wheel_contains_the_calendar_and_no_checkout_state(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for needed in ("cli.py", "engine/paths.py", "strategies/registry.py", "event_calendar/__init__.py",
                   "event_calendar/events.csv", "event_calendar/closures.csv", "event_calendar/README.md",
                   "engine/market/data/venues.csv", "engine/market/data/lots.csv", "engine/market/data/fees.csv",
                   "engine/market/data/currencies.csv", "engine/market/data/exemptions.csv"):
        assert needed in names, needed
    assert not [n for n in names if n.startswith(("tests/", "data_cache/", "runs/", "benchmarks/", "scripts/"))]


def test_installed_code_is_the_wheel(installed: Installed, tmp_path: Path) -> None:
    code = ("import cli, engine, event_calendar, strategies\n"
            "from engine.paths import calendar_dir\n"
            "for m in (cli, engine, event_calendar, strategies): print(m.__file__)\n"
            "print(calendar_dir())\n")
    proc = _run([str(installed.python), "-c", code], cwd=tmp_path, env=installed.env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split()
    assert len(lines) == 5
    for line in lines:
        assert Path(line).is_relative_to(installed.site_packages), line


def test_demo_from_any_folder_writes_nothing_inside_site_packages(installed: Installed, tmp_path: Path) -> None:
    before = _snapshot(installed.site_packages)
    proc = _run([str(installed.evbt), "demo"], cwd=tmp_path, env=installed.env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "SYNTHETIC" in proc.stdout and "2022-03-16-fsdc-liu-he" in proc.stdout
    after = _snapshot(installed.site_packages)
    assert sorted(set(after) - set(before)) == []
    assert {k for k in before if after.get(k) != before[k]} == set()
    # the documented default rule: the cache and the runs live in the folder evbt was started from
    assert len(list((tmp_path / "data_cache" / "sample").glob("*.parquet"))) >= 8
    assert len([p for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")]) == 1
    version_proc = _run([str(installed.evbt), "--version"], cwd=tmp_path, env=installed.env)
    assert version_proc.returncode == 0 and "0.1.0" in version_proc.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion(installed: Installed, tmp_path: Path, shell: str) -> None:
    """README, "Shell completion": the script click generates, and a completion it answers."""
    source = _run([str(installed.evbt)], cwd=tmp_path, env={**installed.env, "_EVBT_COMPLETE": f"{shell}_source"})
    assert source.returncode == 0 and "_evbt_completion" in source.stdout and "_EVBT_COMPLETE" in source.stdout
    if shell == "bash":
        env = {**installed.env, "_EVBT_COMPLETE": "bash_complete", "COMP_WORDS": "evbt ru", "COMP_CWORD": "1"}
        answer = _run([str(installed.evbt)], cwd=tmp_path, env=env)
        assert answer.returncode == 0 and answer.stdout.split() == ["plain,run", "plain,runs"]


def test_default_folders_follow_the_current_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                      run_cli: Run) -> None:
    monkeypatch.delenv("EVBT_CACHE_DIR")
    monkeypatch.delenv("EVBT_RUNS_DIR")
    monkeypatch.chdir(tmp_path)
    assert paths.default_cache_dir() == tmp_path / "data_cache"
    assert paths.default_runs_dir() == tmp_path / "runs"
    code, out, _ = run_cli("data", "ls")
    assert code == 0 and str(tmp_path / "data_cache") in out
    monkeypatch.setenv("EVBT_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("EVBT_RUNS_DIR", str(tmp_path / "r"))
    assert paths.default_cache_dir() == tmp_path / "c"
    assert paths.default_runs_dir() == tmp_path / "r"
    code, out, _ = run_cli("--cache-dir", str(tmp_path / "opt"), "data", "ls")
    assert code == 0 and str(tmp_path / "opt") in out  # the option beats the variable


def test_calendar_comes_from_the_event_calendar_package() -> None:
    import event_calendar

    folder = paths.calendar_dir()
    assert folder == Path(event_calendar.__file__).parent
    assert (folder / "events.csv").is_file() and (folder / "closures.csv").is_file()


def test_cluster_without_the_extra_is_exit_2_naming_it(run_cli: Run, sample_cache: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # as if `distributed` were not installed: importing it raises ImportError
    monkeypatch.setitem(sys.modules, "distributed", None)
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    code, _, err = run_cli("--offline", "sweep", "reassurance", "--symbols", "BABA", "--end", "2022-12-30",
                           "--quiet", "-g", "hold=1..2", "--cluster", "local")
    assert code == 2, err
    assert "pip install 'evbt[cluster]'" in err and "Traceback" not in err
    sweeps = Path(os.environ["EVBT_RUNS_DIR"]) / "sweeps"
    assert not sweeps.exists() or not [p for p in sweeps.iterdir() if not p.name.startswith(".")]


def test_real_data_folder_comes_from_a_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.conftest import SHARED_DATA_ENV, shared_data_dir

    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path / "elsewhere"))
    assert shared_data_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv(SHARED_DATA_ENV)
    assert shared_data_dir() == REPO.parent / "shared" / "data"
