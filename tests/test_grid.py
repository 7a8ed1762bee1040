"""Grid specs for ``evbt sweep -g KEY=SPEC``: parsing, typing, and bad input (exit 2, nothing written)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.sweeps.grid import parse_grid, split_spec
from strategies.event_hold import EventHoldParams
from strategies.reassurance import ReassuranceParams


def _grid(*specs: str, cls: type = ReassuranceParams, strategy: str = "reassurance"):
    return parse_grid(list(specs), cls, strategy)


def test_ranges_lists_and_strings() -> None:
    assert split_spec("hold=1..5", "1..5") == ["1", "2", "3", "4", "5"]
    assert split_spec("hold=1..30:5", "1..30:5") == ["1", "6", "11", "16", "21", "26"]
    grid = _grid("hold=1..3", "fill=open,close", "size=0.05,0.1", "include_policy_support=true,false")
    assert len(grid) == 3 * 2 * 2 * 2
    points = list(grid.points())
    assert points[0] == {"hold": 1, "fill": "open", "size": 0.05, "include_policy_support": True}
    assert all(isinstance(p["hold"], int) and isinstance(p["size"], float) for p in points)
    assert [a.kind for a in grid.axes] == ["param", "run", "run", "param"]


def test_duplicates_collapse_and_tuple_params_join_with_plus() -> None:
    assert _grid("hold=5,5,6").axes[0].values == (5, 6)
    grid = _grid("firms=JPMorgan,Goldman Sachs+Morgan Stanley", cls=EventHoldParams, strategy="event_hold")
    assert grid.axes[0].values == (("JPMorgan",), ("Goldman Sachs", "Morgan Stanley"))


@pytest.mark.parametrize(("spec", "message"), [
    ("hold=", "zero points"),
    ("hold=,", "zero points"),
    ("hodl=1..5", "did you mean 'hold'"),
    ("hold=5..1", "empty range"),
    ("hold=a..b", "not a number"),
    ("hold=1..5:0", "step must be a positive"),
    ("hold=1.5..3", "not an integer"),
    ("hold=x,y", "not an integer"),
    ("size=abc", "not a number"),
    ("fill=open,noon", "must be one of"),
    ("hold", "expected KEY=SPEC"),
])
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _grid(spec)


def test_repeated_key_and_no_grid() -> None:
    with pytest.raises(ConfigError, match="given twice"):
        _grid("hold=1", "hold=2")
    with pytest.raises(ConfigError, match="at least one -g"):
        _grid()


@pytest.mark.parametrize(("args", "message"), [
    (["-g", "hodl=1..5"], "did you mean 'hold'"),
    (["-g", "hold=9..3"], "empty range"),
    (["-g", "hold=one..3"], "not a number"),
    (["-g", "hold="], "zero points"),
    (["-g", "hold=1..3", "--metric", "sharp"], "did you mean 'sharpe'"),
    (["-g", "hold=1..3", "--walk-forward", "12"], "TRAIN:TEST"),
    (["-g", "hold=1..3", "--split", "2030-01-01"], "--split"),
    (["-g", "hold=1..3", "--split", "2022-01-01", "--walk-forward", "6:3"], "not both"),
    (["-g", "hold=1..3", "--heatmap", "x.png"], "two grid keys"),
    (["-g", "hold=0..3"], "hold must be >= 1"),
    (["-g", "size=0,0.1"], "size must be positive"),
    ([], "at least one -g"),
])
def test_cli_bad_input_exits_2_and_writes_nothing(run_cli, sample_cache: Path, args, message) -> None:
    code, out, err = run_cli("--offline", "sweep", "reassurance", "--symbols", "BABA,0700.HK", "--end",
                             "2022-12-30", "--quiet", *args)
    assert code == 2, (out, err)
    assert message in err
    assert not (Path(os.environ["EVBT_RUNS_DIR"]) / "sweeps").exists()
    assert not Path("x.png").exists()


def test_cli_unknown_strategy(run_cli, sample_cache: Path) -> None:
    code, _, err = run_cli("--offline", "sweep", "reasurance", "-g", "hold=1..3")
    assert code == 2 and "did you mean 'reassurance'" in err
