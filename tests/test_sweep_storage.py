"""A damaged sweep chunk is set aside with a warning and its points recomputed, never an internal ArrowInvalid."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import EvbtWarning
from engine.sweeps.storage import SweepFolder


def test_damaged_chunk_is_set_aside_and_its_points_count_as_missing(tmp_path: Path) -> None:
    folder = SweepFolder(tmp_path / "sweep-x")
    folder.create()
    good = folder.write_chunk([{"key": "a"}, {"key": "b"}])
    bad = folder.write_chunk([{"key": "c"}])
    bad.write_bytes(b"not parquet at all")
    with pytest.warns(EvbtWarning, match="damaged.*computed again"):
        keys = folder.keys()
    assert keys == {"a", "b"}
    assert not bad.exists() and bad.with_name(bad.name + ".damaged").exists() and good.exists()
    assert sorted(folder.read()["key"]) == ["a", "b"]  # the set-aside chunk is no longer read
