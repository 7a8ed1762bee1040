"""The cyclic garbage collector paused around work that makes many long-lived, acyclic objects.

Planning, the event file parse and a replay each allocate tens of thousands of small objects that live on (or
are freed by reference counting) and form no cycles; every collection those allocations trigger would only
rescan the whole heap (a sweep's frames and events). Measured: a third to a half of each of those phases at
500 symbols. Nothing is lost: the collector resumes afterwards.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_held = False  # whether evbt code holds every object frozen in this process (``freeze``; inherited by forks)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the collector (if on) and resume it after, whatever happens; only the caller that paused it
    resumes it (nested or concurrent pauses keep it off until the outermost one ends)."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            promote_survivors()
            gc.enable()


def promote_survivors() -> None:
    """Move every object the collector tracks into its oldest generation, without a scan.

    The pause does not stop the count of new objects: on resume the next allocation would start a young
    collection that walks everything the paused work made and kept (measured 0.1 s after a 500-symbol plan),
    and a middle one later walks it again. ``gc.freeze`` + ``gc.unfreeze`` moves them straight to the oldest
    generation (and zeroes the count); garbage cycles among them are still collected, by the next full
    collection. Not while objects are frozen (``freeze``): unfreezing would release them."""
    if not frozen():
        gc.freeze()
        gc.unfreeze()


def frozen() -> bool:
    """Whether objects are frozen in this process. ``gc.get_freeze_count`` walks every frozen object (26 ms for
    350,000: a sweep's forked worker holds the parent's heap frozen, and asked at every pause of every point):
    asked only when evbt holds no freeze, where it is an empty list unless someone else froze objects."""
    return _held or gc.get_freeze_count() > 0


def freeze() -> bool:
    """Freeze every tracked object, for a fork: the collector's passes write into every object they visit, so
    frozen ones stay shared copy-on-write with the child. Nothing is done if objects are frozen already; True if
    this call froze them (its caller then calls ``thaw`` when the fork no longer shares them)."""
    global _held
    if frozen():
        return False
    gc.freeze()
    _held = True
    return True


def thaw() -> None:
    """Undo a ``freeze`` that returned True: the frozen objects go back to the oldest generation."""
    global _held
    _held = False
    gc.unfreeze()
