"""Shared pytest fixtures (others may append their own below)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA_ENV = "EVBT_SHARED_DATA"  # real prices and events for integration tests; default ../shared/data


def shared_data_dir() -> Path:
    """``$EVBT_SHARED_DATA`` if set, else ``shared/data`` beside the repository (``../shared/data``)."""
    value = os.environ.get(SHARED_DATA_ENV, "").strip()
    return Path(value).expanduser() if value else REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _evbt_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own cache and runs folder and starts online (EVBT_OFFLINE unset)."""
    base = tmp_path_factory.mktemp("evbt_env")
    monkeypatch.setenv("EVBT_CACHE_DIR", str(base / "cache"))
    monkeypatch.setenv("EVBT_RUNS_DIR", str(base / "runs"))
    monkeypatch.delenv("EVBT_OFFLINE", raising=False)
    # the built-in venue table unless a test sets its own; set-then-delete makes teardown remove any value a
    # test's `--venues` left in the environment (engine.market.venues.use_venues_file exports it)
    monkeypatch.setenv("EVBT_VENUES", "")
    monkeypatch.delenv("EVBT_VENUES")


@pytest.fixture
def cache_dir() -> Path:
    """The per-test cache folder (EVBT_CACHE_DIR)."""
    return Path(os.environ["EVBT_CACHE_DIR"])


@pytest.fixture
def shared_data() -> Path:
    """Real prices and events ($EVBT_SHARED_DATA, default ../shared/data); skips when the folder is absent."""
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real data folder {path} not present (set {SHARED_DATA_ENV} to point elsewhere)")
    return path


@pytest.fixture
def shared_prices(shared_data: Path) -> Path:
    path = shared_data / "prices"
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture(scope="session")
def _sample_cache_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine.prices.store import PriceStore
    from engine.prices.synthetic import write_sample

    root = tmp_path_factory.mktemp("sample_cache")
    write_sample(PriceStore(root))
    return root


@pytest.fixture
def sample_cache(_sample_cache_master: Path, cache_dir: Path) -> Path:
    """The SYNTHETIC sample written into this test's cache folder (copied from a session build)."""
    shutil.copytree(_sample_cache_master, cache_dir, dirs_exist_ok=True)
    return cache_dir


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Call ``cli.main(argv)`` (the real error boundary) and return (exit code, stdout, stderr)."""
    import cli

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run
