"""Your own strategies from your own files: `evbt run path/to/rule.py`, `--strategies-dir`, EVBT_STRATEGIES_PATH.

Errors in a user module name its file and line: an import error or bad parameters exit 2, an exception in the
rule exits 1 and shows the rule's own traceback frames without --debug.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

Run = Callable[..., tuple[int, str, str]]
SYMBOLS = ("--symbols", "BABA,JD,0700.HK")

RULE = """\
from dataclasses import dataclass

from strategies.base import BaseParams, Signal, Strategy


@dataclass(frozen=True)
class Params(BaseParams):
    hold: int = 3

    def __post_init__(self):
        if self.hold < 1:
            raise ValueError("hold must be >= 1")


class {cls}(Strategy):
    name = "{name}"
    description = "long every reassurance, hold N"
    Params = Params

    def signals(self, ctx):
        for event in ctx.events_of("official_reassurance"):
            for symbol in ctx.symbols_for(event):
                if self.params.hold == 13:
                    raise RuntimeError("unlucky hold")
                yield Signal(symbol=symbol, event=event, hold=self.params.hold)
"""


def _write(folder: Path, stem: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.py"
    path.write_text(textwrap.dedent(text))
    return path


def _rule(folder: Path, stem: str = "my_rule", name: str = "my_rule", cls: str = "MyRule") -> Path:
    return _write(folder, stem, RULE.format(name=name, cls=cls))


def test_run_a_strategy_file_and_rerun_it(run_cli: Run, sample_cache: Path, tmp_path: Path) -> None:
    path = _rule(tmp_path / "rules")
    code, out, err = run_cli("--offline", "run", str(path), *SYMBOLS, "-p", "hold=4", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["strategy"] == str(path.resolve())
    assert report["run_id"].startswith("my-rule-")
    assert report["trades"] and {t["holding_sessions"] for t in report["trades"] if t["exit_date"]} == {4}
    # the same rule as the built-in reassurance: the same trades
    code, out2, err = run_cli("--offline", "run", "reassurance", *SYMBOLS, "-p", "hold=4", "--json")
    assert code == 0, err
    key = ("symbol", "entry_date", "exit_date", "size", "pnl")
    assert [[t[k] for k in key] for t in report["trades"]] == [[t[k] for k in key] for t in json.loads(out2)["trades"]]
    code, out, err = run_cli("--offline", "rerun", report["run_id"])  # the saved config points at the file
    assert code == 0, err
    assert "reproduced exactly" in out


def test_strategies_dir_and_env_path_are_listed_and_runnable(run_cli: Run, sample_cache: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _rule(tmp_path / "a", "first", "first_rule", "First")
    _rule(tmp_path / "b", "second", "second_rule", "Second")
    monkeypatch.setenv("EVBT_STRATEGIES_PATH", str(tmp_path / "b"))
    code, out, err = run_cli("--strategies-dir", str(tmp_path / "a"), "strategies", "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["first_rule"]["file"] == str((tmp_path / "a" / "first.py").resolve())
    assert rows["second_rule"]["params"] == {"stop_loss": None, "take_profit": None, "trailing_stop": None, "hold": 3}
    assert "reassurance" in rows and "file" not in rows["reassurance"]
    code, out, err = run_cli("--offline", "--strategies-dir", str(tmp_path / "a"), "run", "first_rule", *SYMBOLS,
                             "--no-save")
    assert code == 0, err
    assert "Closed trades" in out
    code, _, err = run_cli("--offline", "run", "second_rule", *SYMBOLS, "--no-save")
    assert code == 0, err


def test_unknown_name_and_missing_folder_are_usage_errors(run_cli: Run, tmp_path: Path) -> None:
    _rule(tmp_path / "a", "first", "first_rule", "First")
    code, _, err = run_cli("--strategies-dir", str(tmp_path / "a"), "run", "first_rul")
    assert code == 2 and "did you mean 'first_rule'" in err and "Traceback" not in err
    code, _, err = run_cli("--strategies-dir", str(tmp_path / "nowhere"), "strategies")
    assert code == 2 and "strategies folder" in err and "nowhere" in err
    rule = _rule(tmp_path / "b")  # a file given as the folder: it said "not found"
    code, _, err = run_cli("--strategies-dir", str(rule), "strategies")
    assert code == 2 and f"strategies folder {rule} is a file, not a folder" in err and "not found" not in err


def test_bad_parameter_names_the_file_and_line_exit_2(run_cli: Run, sample_cache: Path, tmp_path: Path) -> None:
    path = _rule(tmp_path)
    code, out, err = run_cli("--offline", "run", str(path), *SYMBOLS, "-p", "hold=0")
    assert code == 2, err
    line = RULE.splitlines().index('            raise ValueError("hold must be >= 1")') + 1
    assert f"hold must be >= 1 ({path.resolve()}, line {line})" in err
    assert "Traceback" not in err and out == ""
    code, _, err = run_cli("--offline", "run", str(path), *SYMBOLS, "-p", "hodl=3")
    assert code == 2 and "did you mean 'hold'" in err


def test_exception_in_the_rule_exits_1_with_its_frame(run_cli: Run, sample_cache: Path, tmp_path: Path) -> None:
    path = _rule(tmp_path)
    code, _, err = run_cli("--offline", "run", str(path), *SYMBOLS, "-p", "hold=13", "--no-save")
    assert code == 1
    line = RULE.splitlines().index('                    raise RuntimeError("unlucky hold")') + 1
    assert "strategy raised RuntimeError: unlucky hold" in err
    assert f'File "{path.resolve()}", line {line}, in signals' in err
    assert "engine/" not in err  # only the user's own frames
    with pytest.raises(RuntimeError, match="unlucky"):  # --debug re-raises (full traceback)
        run_cli("--debug", "--offline", "run", str(path), *SYMBOLS, "-p", "hold=13", "--no-save")


def test_import_errors_name_file_and_line(run_cli: Run, tmp_path: Path) -> None:
    broken = _write(tmp_path / "rules", "broken", "import math\n\nx = math.sqrt(\n")
    code, _, err = run_cli("run", str(broken))
    assert code == 2 and f"{broken.resolve()}, line 3: SyntaxError" in err
    raising = _write(tmp_path / "rules", "raising", "from strategies.base import Strategy\n\nVALUE = 1 / 0\n")
    code, _, err = run_cli("run", str(raising))
    assert code == 2 and f"{raising.resolve()}, line 3: ZeroDivisionError: division by zero" in err
    code, out, err = run_cli("--strategies-dir", str(tmp_path / "rules"), "strategies")
    assert code == 0, err  # the broken modules are listed, the others still work
    assert f"failed to import: {broken.resolve()}, line 3: SyntaxError" in out
    assert "reassurance:" in out


def test_a_file_must_hold_exactly_one_strategy(run_cli: Run, tmp_path: Path) -> None:
    none = _write(tmp_path, "empty", "X = 1\n")
    code, _, err = run_cli("run", str(none))
    assert code == 2 and "exactly one Strategy subclass (found none)" in err
    two = _write(tmp_path, "two", RULE.format(name="a", cls="A") + RULE.format(name="b", cls="B"))
    code, _, err = run_cli("run", str(two))
    assert code == 2 and "found A, B" in err
    code, _, err = run_cli("run", str(tmp_path / "missing.py"))
    assert code == 2 and "not found" in err


def test_a_name_clash_with_a_built_in_is_reported(run_cli: Run, tmp_path: Path) -> None:
    _rule(tmp_path, "clash", "reassurance", "Clash")
    code, out, err = run_cli("--strategies-dir", str(tmp_path), "strategies")
    assert code == 0, err
    assert "strategy name 'reassurance' is already taken by the built-in 'reassurance'" in out


README = Path(__file__).resolve().parents[1] / "README.md"


def _tutorial() -> str:
    text = README.read_text()
    block = text.split("<!-- tutorial:begin -->", 1)[1].split("<!-- tutorial:end -->", 1)[0]
    return block.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_tutorial_runs_as_written(run_cli: Run, sample_cache: Path, tmp_path: Path) -> None:
    code_text = _tutorial()
    assert 10 <= len([line for line in code_text.splitlines() if line.strip()]) <= 20
    path = tmp_path / "below_average.py"
    path.write_text(code_text)
    code, out, err = run_cli("--offline", "run", str(path), *SYMBOLS, "-p", "ma=20", "-p", "hold=30", "--json",
                             "--no-save")
    assert code == 0, err
    trades = json.loads(out)["trades"]
    assert trades
    from engine.prices.store import PriceStore

    store = PriceStore(sample_cache, offline=True)
    for trade in trades:  # recomputed from the cached bars: the last close before the entry is below its average
        bars = store.read_all(trade["symbol"])
        bars = bars[~bars["stale"]]
        before = bars.loc[bars.index < pd.Timestamp(trade["entry_date"]), "close"]
        assert len(before) >= 20
        assert before.iloc[-1] < before.iloc[-20:].mean()
        # the 10% trailing stop: the first close 10% below the best of the entry price and the closes since
        # the entry exits at the next bar's open (unless the 30-session hold ends first)
        after = bars.loc[bars.index >= pd.Timestamp(trade["entry_date"])]
        best, expected = trade["entry_price"], None
        for j in range(len(after) - 1):
            best = max(best, after["close"].iloc[j])
            if after["close"].iloc[j] <= 0.9 * best:
                expected = after.index[j + 1].date().isoformat()
                break
        if trade["exit_reason"] == "trailing_stop":
            assert trade["exit_date"] == expected
        else:
            assert trade["exit_reason"] in ("hold", "open") and (expected is None or expected >= trade["exit_date"])
    assert "trailing_stop" in {t["exit_reason"] for t in trades}


def test_sweep_of_a_user_file_runs_on_the_fast_path_and_equals_evbt_run(run_cli: Run, sample_cache: Path,
                                                                         tmp_path: Path) -> None:
    path = tmp_path / "below_average.py"
    path.write_text(_tutorial())
    period = ("--start", "2021-06-01", "--end", "2022-12-30")
    code, out, err = run_cli("--offline", "sweep", str(path), *SYMBOLS, *period, "-g", "ma=5,20,100", "--quiet",
                             "--json", "--top", "0", "--workers", "1")
    assert code == 0, err
    ranking = json.loads(out)["ranking"]
    assert len(ranking) == 3 and {r["engine"] for r in ranking} == {"fast"}
    assert "warm-up needs 100 sessions before 2021-06-01" in err  # the sample begins 2021-01
    for point in ranking:
        code, out, err = run_cli("--offline", "run", str(path), *SYMBOLS, *period, "-p", f"ma={point['values']['ma']}",
                                 "--json", "--no-save")
        assert code == 0, err
        report = json.loads(out)
        assert report["run_id"] == point["key"]
        assert report["run_id"].startswith("below-average-")
        for name, value in report["metrics"].items():
            got = point["metrics"][name]
            assert (value is None and got is None) or math.isclose(got, value, rel_tol=1e-9, abs_tol=1e-12), name


GARBAGE_RULE = """\
from dataclasses import dataclass

from strategies.base import BaseParams, Signal, Strategy


@dataclass(frozen=True)
class Params(BaseParams):
    hold: int = 3


class Garbage(Strategy):
    name = "garbage"
    Params = Params

    def warmup(self):
        return {warmup}

    def signals(self, ctx):
        {body}
"""

_EACH = """for event in ctx.events_of("official_reassurance"):
            for symbol in ctx.symbols_for(event):
                yield Signal(symbol=symbol, event=event, {field})"""


@pytest.mark.parametrize(("warmup", "body", "expected"), [
    ("0", "yield 42", "signals() item 1 is int 42, not a Signal"),
    ("0", "return 7", "signals() returned int 7, not an iterable of Signal"),
    ("0", "return None", "signals() returned NoneType None, not an iterable of Signal"),
    ("0", _EACH.format(field="hold=-4"), "hold must be a whole number of sessions >= 1 (or None: to the end), got -4"),
    ("0", _EACH.format(field="hold=2.5"), "hold must be a whole number of sessions >= 1 (or None: to the end), "
     "got 2.5"),
    ("0", _EACH.format(field="hold='10'"), "hold must be a whole number of sessions >= 1 (or None: to the end), "
     "got '10'"),
    ("0", _EACH.format(field="side='sideways'"), "side must be 'long' or 'short', got 'sideways'"),
    ("0", _EACH.format(field="action='buy'"), "action must be 'enter' or 'exit', got 'buy'"),
    ("0", _EACH.format(field="weight=-0.5"), "weight must be a positive fraction of equity (or None: the run's "
     "sizing), got -0.5"),
    ("'lots'", "return []", "warmup() must return a whole number of sessions >= 0, got 'lots'"),
    ("-3", "return []", "warmup() must return a whole number of sessions >= 0, got -3"),
])
def test_a_rule_returning_garbage_is_a_clear_run_error(run_cli: Run, sample_cache: Path, tmp_path: Path,
                                                       warmup: str, body: str, expected: str) -> None:
    """What a rule yields or declares is checked: it used to surface as an internal AttributeError/TypeError, and a
    Signal(hold=-4) or hold=2.5 was executed silently (a position held until an unrelated later exit)."""
    path = _write(tmp_path, "garbage", GARBAGE_RULE.format(warmup=warmup, body=body))
    for command in (("run", str(path), "--no-save"), ("sweep", str(path), "-g", "hold=2,3", "--workers", "1")):
        code, out, err = run_cli("--offline", *command, *SYMBOLS)
        assert code == 1, (command, err)
        assert f"error: strategy garbage ({path.resolve()}): " in err, err
        assert expected in err, err
        assert "internal error" not in err and "Traceback" not in err and out == ""


NOTES_RULE = """\
from dataclasses import dataclass

from strategies.base import BaseParams, Strategy


@dataclass(frozen=True)
class Params(BaseParams):
    hold: int = 3


class Noted(Strategy):
    name = "noted"
    Params = Params

    def signals(self, ctx):
        return []

    def explain(self):
        return {explain}

    def notes(self):
        return {notes}
"""


@pytest.mark.parametrize(("explain", "notes", "expected"), [
    ("None", "'check the firm'", "notes() must return a list of strings, got str 'check the firm'"),
    ("None", "[1]", "notes() item 1 is int 1, not a string"),
    ("5", "[]", "explain() must return a string or None, got int 5"),
])
def test_a_rule_whose_notes_are_not_text_is_a_clear_run_error(run_cli: Run, sample_cache: Path, tmp_path: Path,
                                                              explain: str, notes: str, expected: str) -> None:
    path = _write(tmp_path, "noted", NOTES_RULE.format(explain=explain, notes=notes))
    code, out, err = run_cli("--offline", "run", str(path), "--no-save", *SYMBOLS)
    assert code == 1, err
    assert f"error: strategy noted ({path.resolve()}): {expected}" in err, err
    assert "internal error" not in err and "Traceback" not in err and out == ""


def test_a_rules_notes_are_run_warnings(run_cli: Run, sample_cache: Path, tmp_path: Path) -> None:
    path = _write(tmp_path, "noted", NOTES_RULE.format(explain="'nothing matched'", notes="['mind the gap']"))
    code, out, err = run_cli("--offline", "run", str(path), "--no-save", "--json", *SYMBOLS)
    assert code == 0, err
    warnings = json.loads(out)["warnings"]
    assert warnings[-2:] == ["nothing matched", "mind the gap"]


_NO_DATACLASS = """\
from strategies.base import Strategy


class Params:
    hold = 5


class NotDataclass(Strategy):
    name = "not_dataclass"
    Params = Params

    def signals(self, ctx):
        return []
"""
_NO_SIGNALS = """\
from strategies.base import Strategy


class NoSignals(Strategy):
    name = "no_signals"
"""
_EXITS_AT_IMPORT = """\
import sys

sys.exit(3)
"""
_UNRESOLVED_TYPE = """\
from __future__ import annotations

from dataclasses import dataclass

from strategies.base import BaseParams, Strategy


@dataclass(frozen=True)
class Params(BaseParams):
    hold: int = 5
    mode: Undefined = None


class Unresolved(Strategy):
    name = "unresolved"
    Params = Params

    def signals(self, ctx):
        return []
"""


@pytest.mark.parametrize(("text", "expected"), [
    (_NO_DATACLASS, "NotDataclass.Params must be a @dataclass(frozen=True) subclass of strategies.base.BaseParams, "
                    "got 'Params' (not a dataclass)"),
    (_NO_SIGNALS, "NoSignals defines no signals(self, ctx) method"),
    (_EXITS_AT_IMPORT, "line 3: SystemExit: 3"),
    (_UNRESOLVED_TYPE, "Unresolved.Params has a type annotation that cannot be resolved (NameError: name "
                       "'Undefined' is not defined)"),
])
def test_a_malformed_strategy_file_is_an_input_error_naming_it(run_cli: Run, sample_cache: Path, tmp_path: Path,
                                                               text: str, expected: str) -> None:
    """Each used to end as `internal error: TypeError/NotImplementedError` when the run reached it, or (sys.exit in
    the file) evbt exited with the file's own code and no message, `evbt strategies` of its folder included."""
    path = _write(tmp_path / "rules", "malformed", text)
    _rule(tmp_path / "rules", "fine", "fine_rule", "Fine")
    code, out, err = run_cli("--offline", "run", str(path), *SYMBOLS, "--no-save")
    assert code == 2, (code, out, err)
    assert str(path) in err and expected in err, err
    assert "internal error" not in err and "Traceback" not in err and out == ""
    code, out, err = run_cli("--strategies-dir", str(tmp_path / "rules"), "strategies")
    assert code == 0, err
    assert f"failed to import: {path}" in out and expected in out and "fine_rule" in out


def test_sys_exit_inside_the_rule_is_a_run_error_with_its_frame(run_cli: Run, sample_cache: Path,
                                                                tmp_path: Path) -> None:
    """`raise SystemExit(5)` in signals ended evbt with exit 5 and no message."""
    path = _write(tmp_path, "exits", GARBAGE_RULE.format(warmup="0", body="raise SystemExit(5)"))
    for command in (("run", str(path), "--no-save"), ("sweep", str(path), "-g", "hold=2,3", "--workers", "1")):
        code, out, err = run_cli("--offline", *command, *SYMBOLS)
        assert code == 1 and out == "", (command, code, err)
        assert "error: strategy raised SystemExit: 5" in err and f'File "{path.resolve()}", line ' in err, err


def test_runs_ls_filters_a_user_rule_by_its_name(run_cli: Run, sample_cache: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A user rule's runs keep its file's path as their strategy: `runs ls --strategy my_rule` matched none."""
    path = _rule(tmp_path / "rules")
    code, out, err = run_cli("--offline", "run", str(path), *SYMBOLS, "--json")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    code, out, err = run_cli("--offline", "run", "reassurance", *SYMBOLS, "--json")
    assert code == 0, err
    monkeypatch.chdir(tmp_path / "rules")
    for wanted in ("my_rule", "my_rule.py", str(path)):
        code, out, err = run_cli("runs", "ls", "--strategy", wanted, "--json")
        assert code == 0, err
        assert [r["run_id"] for r in json.loads(out)] == [run_id], wanted
