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


class _Node:
    """The part of an xdist WorkerController the scheduler talks to."""

    shutting_down = False

    def __init__(self, name: str) -> None:
        from types import SimpleNamespace

        self.gateway = SimpleNamespace(id=name)
        self.sent: list[int] = []

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


def test_units_are_handed_out_heaviest_first_not_largest_first() -> None:
    """xdist's loadscope sorts units by their number of tests unless told not to: a module of many light tests
    would then start before the heaviest single test, which would run alone at the end."""
    from types import SimpleNamespace

    from tests.conftest import pytest_xdist_make_scheduler

    config = SimpleNamespace(option=SimpleNamespace(loadscopereorder=True),
                             getvalue=lambda name: ["2*popen"] if name == "tx" else None)
    collection = [HEAVY_FIRST[0], "tests/test_html.py::a", "tests/test_html.py::b", "tests/test_html.py::c",
                  "tests/test_html.py::d", "tests/test_grid.py::x", "tests/test_grid.py::y"]
    scheduler = pytest_xdist_make_scheduler(config, None)  # type: ignore[arg-type]
    nodes = [_Node("gw0"), _Node("gw1")]
    for node in nodes:
        scheduler.add_node(node)
    for node in nodes:
        scheduler.add_node_collection(node, collection)
    scheduler.schedule()
    first = [collection[node.sent[0]] for node in nodes]
    assert first == [HEAVY_FIRST[0], "tests/test_html.py::a"]
