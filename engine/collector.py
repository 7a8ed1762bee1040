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
            gc.enable()
