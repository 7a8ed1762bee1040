"""Shared pytest fixtures (others may append their own below)."""

from __future__ import annotations

import gc
import os
import shutil
from collections.abc import Callable, Iterator
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


@pytest.fixture(autouse=True)
def _collector_left_on() -> Iterator[None]:
    """A test that leaves the cyclic garbage collector off fails (and it is turned on again): every later test of
    that xdist worker would otherwise run without it (engine.collector pauses only when it is on)."""
    was = gc.isenabled()
    yield
    if was and not gc.isenabled():
        gc.enable()
        pytest.fail("the test left the garbage collector disabled (gc.disable() without gc.enable())")


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
def _real_cache_masters(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, ...], Path]:
    """Session folders of real prices imported with `evbt data import`, one per symbol set (filled on demand)."""
    return {}


@pytest.fixture
def real_import(shared_prices: Path, cache_dir: Path, _real_cache_masters: dict[tuple[str, ...], Path],
                tmp_path_factory: pytest.TempPathFactory) -> Callable[[list[str]], Path]:
    """``real_import(symbols)``: this test's cache holds exactly what ``evbt data import`` of those real CSVs
    ($EVBT_SHARED_DATA/prices/SYMBOL.csv) writes. The import runs once per symbol set and session (it must exit
    0), into a folder no test writes; each test gets a copy in its own cache folder."""
    import contextlib
    import io

    import cli

    def load(symbols: list[str]) -> Path:
        key = tuple(sorted(symbols))  # the same files in another order write the same cache
        if key not in _real_cache_masters:
            root = tmp_path_factory.mktemp("real_cache")
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                code = cli.main(["--cache-dir", str(root), "data", "import",
                                 *[str(shared_prices / f"{s}.csv") for s in symbols]])
            assert code == 0, out.getvalue()[-2000:]
            _real_cache_masters[key] = root
        shutil.copytree(_real_cache_masters[key], cache_dir, dirs_exist_ok=True)
        return cache_dir

    return load


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


# ---------------------------------------------------------------------------------------------- scheduling
# The suite runs on pytest-xdist workers (`-n auto --dist loadscope`, pyproject.toml), with two rules:
# - tests are handed out one at a time, except that the tests of a module in SHARED_FIXTURE_MODULES (it has a
#   module-scoped fixture) go to one worker together, so the fixture is built once
#   (tests/test_scheduling.py checks that the list is complete);
# - the heaviest work units (CPU seconds, the process's own plus its children's, measured on the 2-core reference
#   machine) are queued first, longest first, so the workers finish together instead of one worker running a long
#   test alone at the end. A whole SHARED_FIXTURE_MODULES module is one unit and may be named here by its path.
# Everything else keeps its file order. xdist's loadscope would put the units with the most tests first
# (--loadscope-reorder, on by default), before this order: the scheduler below turns that off.
# Measure again with `pytest --durations=40` when adding a heavy test.
# (xdist's own `--dist loadgroup` cannot be used: it renames node ids through an attribute pytest 9 no longer reads.)
SHARED_FIXTURE_MODULES = frozenset({"tests/test_html.py", "tests/test_install.py"})
HEAVY_FIRST = (  # CPU seconds measured 2026-12-01 (cold mypy cache for the type checker)
    "tests/test_readme_examples.py::test_every_readme_example_runs",  # 84
    "tests/test_architecture.py::test_type_checker_finds_no_error",  # ~45 cold, 2 with .mypy_cache
    "tests/test_html.py",  # 20 (module fixture: reports on the sample, Chromium)
    "tests/test_reliability_crash.py::test_sigkill_trials_hold[cli-sweep]",  # 16
    "tests/test_reliability_crash.py::test_four_processes_fetch_and_import_same_symbols",  # 15
    "tests/test_install.py",  # 12 (module fixture: wheel and venv)
    "tests/test_replay_reports.py::test_a_key_put_into_a_canonical_text_gives_the_text_of_the_merged_document",
    "tests/test_properties.py::test_clock_cash_and_no_lookahead_across_venues",  # 10
    "tests/test_reliability_crash.py::test_two_sweeps_of_one_grid_into_one_runs_folder",  # 10
    "tests/test_venues.py::test_table_time_zones_match_exchange_calendars",  # 9.5
    "tests/test_sweep_dask.py::test_local_cluster_sweep_equals_the_local_sweep",  # 8.6
    "tests/test_reliability_crash.py::test_two_processes_write_runs_to_one_folder",  # 7.4
    "tests/test_reliability_crash.py::test_sigkill_trials_hold[cli-run]",  # 7.1
    "tests/test_reliability_crash.py::test_sigkill_trials_hold[runs-save]",  # 6.5
    "tests/test_sweep_reuse.py::test_any_sequence_prints_what_fresh_folders_print",  # 6
    "tests/test_sweep.py::test_local_dask_cluster_equals_workers_1",  # 5
    "tests/test_sweep.py::test_process_pool_equals_serial",  # 5
    "tests/test_reliability_crash.py::test_sigkill_trials_hold[cli-import]",  # 5
    "tests/test_replay_equality.py::test_replay_equals_the_reference_on_generated_markets_and_plans",  # 4.6
    "tests/test_json_text.py::test_trade_and_order_dicts_as_before",  # 2 x 4
    "tests/test_placebo.py::test_cli_placebo_text_json_html",  # 4
    "tests/test_json_text.py::test_dumps_report_is_the_reference_text_plus_newline",  # 3.9
    "tests/test_sweep.py::test_killed_sweep_leaves_complete_chunks_and_resumes",  # 3.5
)


def _heavy_rank(nodeid: str) -> int:
    for rank, prefix in enumerate(HEAVY_FIRST):
        if nodeid == prefix or nodeid.startswith((prefix + "::", prefix + "[")):
            return rank
    return len(HEAVY_FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: _heavy_rank(item.nodeid))  # stable: file order within each rank


def _work_unit(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    return module if module in SHARED_FIXTURE_MODULES else nodeid


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """xdist's scope scheduler with our work units (one test, or one SHARED_FIXTURE_MODULES module)."""
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _work_unit(nodeid)

    # loadscope's default reorder sorts the units by their number of tests: the two shared-fixture modules would
    # always start first and HEAVY_FIRST would only begin after them. Keep the collection order (heaviest first).
    config.option.loadscopereorder = False
    return Scheduling(config, log)
