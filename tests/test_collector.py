"""engine.collector: a pause resumes the collector, moves what the paused work kept to the oldest generation
without a scan, still lets cyclic garbage made inside be collected, and leaves other callers' frozen objects
frozen."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from engine import collector
from engine.collector import collector_paused


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def _in_generation(obj: object, generation: int) -> bool:
    return any(o is obj for o in gc.get_objects(generation=generation))


@pytest.fixture()
def collector_on() -> Iterator[None]:
    was, thresholds = gc.isenabled(), gc.get_threshold()
    gc.enable()
    gc.set_threshold(10**6, 10, 10)  # no automatic collection during a test moves objects on its own
    yield
    gc.set_threshold(*thresholds)
    if was:  # as it was, whatever the test did (a test that leaves it off would slow every later one)
        gc.enable()
    else:
        gc.disable()


def test_pause_resumes_and_survivors_skip_the_young_generations(collector_on: None) -> None:
    with collector_paused():
        assert not gc.isenabled()
        kept = [Node() for _ in range(1000)]
    assert gc.isenabled()
    # with a plain disable/enable they would still sit in generation 0, to be walked by the next allocation's
    # young collection (and again by a middle one): the defect the promotion removes
    assert not _in_generation(kept[0], 0)
    assert _in_generation(kept[-1], 2)
    assert gc.get_count()[0] < 100


def test_cyclic_garbage_made_in_a_pause_is_still_collected(collector_on: None) -> None:
    with collector_paused():
        a, b = Node(), Node()
        a.other, b.other = b, a
        ids = {id(a), id(b)}
        del a, b
    assert gc.collect() >= 2
    assert not any(id(o) in ids and isinstance(o, Node) for o in gc.get_objects())


def test_other_callers_frozen_objects_stay_frozen(collector_on: None, monkeypatch: pytest.MonkeyPatch) -> None:
    held = Node()
    unfrozen: list[bool] = []
    real_unfreeze = gc.unfreeze
    gc.freeze()
    try:
        # not gc.get_freeze_count() before and after: it drops when another thread of the process (an xdist
        # worker's) frees a frozen object meanwhile (seen in a full run: 340966 -> 340964)
        monkeypatch.setattr(gc, "unfreeze", lambda: unfrozen.append(True) or real_unfreeze())
        with collector_paused():
            Node()
        assert unfrozen == []  # unfreezing would release the freezer's objects
        assert gc.get_freeze_count() > 0 and not _in_generation(held, 2)
    finally:
        real_unfreeze()


def test_nested_pause_keeps_the_collector_off_until_the_outer_one_ends(collector_on: None) -> None:
    with collector_paused():
        with collector_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_pause_with_the_collector_off_leaves_it_off(collector_on: None) -> None:
    gc.disable()
    with collector_paused():
        kept = Node()
    assert not gc.isenabled()
    assert _in_generation(kept, 0)  # nothing moved: this caller did not pause it


def test_a_freeze_evbt_holds_is_known_without_walking_the_frozen_objects(collector_on: None,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    assert collector.freeze()
    try:
        def walk() -> int:
            raise AssertionError("gc.get_freeze_count walks every frozen object (26 ms for 350,000)")

        monkeypatch.setattr(gc, "get_freeze_count", walk)
        assert collector.frozen()
        assert not collector.freeze()  # held already: nothing to do, nothing to thaw
        with collector_paused():  # a pause inside a fork's freeze (every point of a forked sweep worker)
            kept = Node()
        assert _in_generation(kept, 0)  # not promoted: that would have unfrozen the held objects
        monkeypatch.undo()
    finally:
        collector.thaw()
    assert gc.get_freeze_count() == 0 and not collector.frozen()


def test_someone_elses_freeze_is_seen_and_left_alone(collector_on: None) -> None:
    gc.freeze()
    try:
        assert collector.frozen()
        assert not collector.freeze()  # their freeze: evbt neither takes it over nor thaws it
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
