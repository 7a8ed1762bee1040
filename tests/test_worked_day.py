"""README "Worked day, 2022-05-18": the seed run's books around the CPPCC readout, on the real data.

The figures were recomputed independently of evbt (a separate script reading the raw Yahoo CSVs, the curated
known-at instants, exchange-calendars sessions, the README's sizing, fee and FX rules, 7.80 peg), fill by fill in
UTC order; they replace the README's older figures (1,030,618.96 / 669,569.73 / 1,015,248.86 ...), which no
version of the fee rules in this repository reproduces any more.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

Run = Callable[..., tuple[int, str, str]]
SEED = ["BABA", "JD", "NTES", "BIDU", "TCEHY", "PDD", "BILI",
        "0700.HK", "9988.HK", "3690.HK", "9618.HK", "9999.HK", "9888.HK", "1024.HK"]


def _equity(run_cli: Run, *options: str) -> tuple[dict, pd.DataFrame]:
    code, out, err = run_cli("--offline", "run", "reassurance", *options, "--json")
    assert code == 0, err
    report = json.loads(out)
    curve = pd.read_parquet(Path(os.environ["EVBT_RUNS_DIR"]) / report["run_id"] / "equity.parquet")
    return report, curve.set_index("date")


def test_worked_day_fill_close(run_cli: Run, real_import: Callable[[list[str]], Path]) -> None:
    real_import([*SEED, "KWEB"])
    report, curve = _equity(run_cli, "--fill", "close")
    entries = {t["symbol"]: t for t in report["trades"] if t["event_id"] == "2022-05-17-cppcc-symposium"}
    assert (entries["BABA"]["entry_at"], entries["BABA"]["size"], entries["BABA"]["entry_price"]) == \
        ("2022-05-17T20:00:00Z", 560, 91.989998)
    assert (entries["0700.HK"]["entry_at"], entries["0700.HK"]["size"], entries["0700.HK"]["entry_price"]) == \
        ("2022-05-18T08:00:00Z", 1000, 365.600006)
    # 05-16: no position, so the equity the 7 ADR entries of the 05-17 US close are sized from
    assert curve.loc["2022-05-16", "equity"] == pytest.approx(1_030_610.72, abs=0.005)
    # 05-17 point (US close): cash after the ADRs; = the equity the HK entries of the 05-18 HK close are sized
    # from (the ADRs at their 05-17 closes)
    assert curve.loc["2022-05-17", "cash"] == pytest.approx(669_561.50, abs=0.005)
    assert curve.loc["2022-05-17", "equity"] == pytest.approx(1_030_069.96, abs=0.005)
    assert curve.loc["2022-05-18", "cash"] == pytest.approx(367_905.00, abs=0.005)
    assert curve.loc["2022-05-18", "equity"] == pytest.approx(1_015_217.01, abs=0.005)


def test_worked_day_fill_open(run_cli: Run, real_import: Callable[[list[str]], Path]) -> None:
    real_import([*SEED, "KWEB"])
    _report, curve = _equity(run_cli)
    # the HK lines enter at the 05-18 HK open, sized from the cash after the ADRs bought at the 05-17 US open
    # plus those ADRs at their 05-17 closes: the 05-17 equity point
    assert curve.loc["2022-05-17", "cash"] == pytest.approx(660_163.65, abs=0.005)
    assert curve.loc["2022-05-17", "equity"] == pytest.approx(1_008_881.87, abs=0.005)
