"""The periods a sweep evaluates every point on: the full period, in/out-of-sample, walk-forward windows."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from engine.errors import ConfigError


@dataclass(frozen=True)
class Window:
    """A period evaluated for every point: full | is | oos | wf<N>-train | wf<N>-test."""

    label: str
    start: dt.date
    end: dt.date


def add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    return dt.date(year, month, 1) if day.day == 1 else dt.date(year, month, min(day.day, 28))


def parse_walk_forward(text: str) -> tuple[int, int]:
    """``TRAIN:TEST`` in months (e.g. ``12:3``)."""
    match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", text or "")
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise ConfigError(f"--walk-forward {text!r}: expected TRAIN:TEST in months, e.g. 12:3")
    return int(match.group(1)), int(match.group(2))


def make_windows(start: dt.date, end: dt.date, split: dt.date | None = None,
                 walk_forward: tuple[int, int] | None = None) -> list[Window]:
    """The periods to evaluate. ``split``: in-sample ``start..split-1``, out-of-sample ``split..end``.
    ``walk_forward`` (TRAIN, TEST months): train ``[s, s+TRAIN)``, test ``[s+TRAIN, s+TRAIN+TEST)``, rolled by
    TEST months while the test window starts before ``end`` (the last test window is cut at ``end``)."""
    if split is not None and walk_forward is not None:
        raise ConfigError("use --split or --walk-forward, not both")
    if split is not None:
        if not start + dt.timedelta(days=1) < split < end:  # both windows need start < end, like `evbt run`
            raise ConfigError(f"--split {split} must be after {start + dt.timedelta(days=1)} and before the end "
                              f"{end} (in-sample {start}..DATE-1, out-of-sample DATE..{end})")
        return [Window("is", start, split - dt.timedelta(days=1)), Window("oos", split, end)]
    if walk_forward is None:
        return [Window("full", start, end)]
    train, test = walk_forward
    windows: list[Window] = []
    n = 0
    while True:
        train_start = add_months(start, n * test)
        test_start = add_months(train_start, train)
        if test_start >= end:
            break
        test_end = min(add_months(test_start, test) - dt.timedelta(days=1), end)
        n += 1
        windows += [Window(f"wf{n}-train", train_start, test_start - dt.timedelta(days=1)),
                    Window(f"wf{n}-test", test_start, test_end)]
    if not windows:
        raise ConfigError(f"--walk-forward {train}:{test}: the period {start}..{end} is too short for one window")
    return windows
