"""The parallel schedule of the suite (tests/conftest.py, "scheduling"): module-scoped fixtures stay on one worker,
and the heavy-first list names tests that exist."""

from __future__ import annotations

import pytest

from tests.conftest import HEAVY_FIRST, SHARED_FIXTURE_MODULES, _heavy_rank, _work_unit


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def test_scheduling_keeps_module_fixtures_on_one_worker(request: pytest.FixtureRequest) -> None:
    """Every collected test that uses a module-, class- or package-scoped fixture is in a module that xdist hands
    out as one unit (else each worker would build the fixture again, or a module fixture would be torn down and
    rebuilt between its tests)."""
    missing = set()
    for item in request.session.items:
        info = getattr(item, "_fixtureinfo", None)
        defs = info.name2fixturedefs.values() if info is not None else ()
        shared = any(d and d[-1].scope in ("module", "class", "package") for d in defs)
        if shared and _work_unit(item.nodeid) != _module(item):
            missing.add(_module(item))
    assert not missing, f"add {sorted(missing)} to SHARED_FIXTURE_MODULES in tests/conftest.py"


def test_work_units() -> None:
    assert _work_unit("tests/test_html.py::test_png_files[run.png]") == "tests/test_html.py"
    assert _work_unit("tests/test_grid.py::test_x[a::b]") == "tests/test_grid.py::test_x[a::b]"
    assert "tests/test_html.py" in SHARED_FIXTURE_MODULES


def test_heavy_first_names_collected_tests(request: pytest.FixtureRequest) -> None:
    """A renamed heavy test would silently lose its early place in the queue."""
    modules = {_module(item) for item in request.session.items}
    ranks = {_heavy_rank(item.nodeid) for item in request.session.items}
    stale = [p for rank, p in enumerate(HEAVY_FIRST) if p.split("::", 1)[0] in modules and rank not in ranks]
    assert not stale, f"HEAVY_FIRST names tests that were not collected: {stale}"
    assert _heavy_rank("tests/test_sweep.py::test_local_dask_cluster_equals_workers_1") < len(HEAVY_FIRST)
    assert _heavy_rank("tests/test_sweep.py::test_local_dask_cluster_equals_workers_10") == len(HEAVY_FIRST)
