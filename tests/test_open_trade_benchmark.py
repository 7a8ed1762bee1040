"""An open trade's benchmark return covers the trade's own window: the trade is marked at its symbol's last close
(2800.HK's data ends 2022-09-30), so the benchmark's move runs to its close on or before that date, not to the
end of the run (it used to: KWEB to 2023-12-29, +8.5% against the trade's three days). Pinned from the raw
KWEB.csv bars by hand."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., tuple[int, str, str]]

EVENTS = ("id,date,time,tz,session_hint,market,type,scope,symbols,firm,from_grade,to_grade,description,source,"
          "confidence\n"
          "probe,2022-09-27,,Asia/Hong_Kong,,,policy_support,sector,2800.HK FXI,,,,probe,https://example.com/p,high\n")


@pytest.mark.parametrize(("fill", "want"), [
    ("open", 24.639999 / 24.879999 - 1),   # KWEB 2022-09-28 Open -> 2022-09-30 Close
    ("close", 24.639999 / 25.730000 - 1),  # KWEB 2022-09-28 Close -> 2022-09-30 Close
])
def test_open_trade_benchmark_ends_at_the_mark(run_cli: Run, real_import: Callable[[list[str]], Path],
                                               tmp_path: Path, fill: str, want: float) -> None:
    real_import(["2800.HK", "FXI", "KWEB"])
    events = tmp_path / "events.csv"
    events.write_text(EVENTS)
    code, out, err = run_cli("--offline", "run", "event_hold", "-p", "types=policy_support", "-p", "hold=3",
                             "--events", str(events), "--replace-events", "--symbols", "2800.HK,FXI",
                             "--start", "2022-06-01", "--end", "2023-12-31", "--fill", fill, "--json", "--no-save")
    assert code == 0, err
    trades = {t["symbol"]: t for t in json.loads(out)["trades"]}
    hk = trades["2800.HK"]
    assert (hk["entry_date"], hk["exit_reason"], hk["exit_date"]) == ("2022-09-28", "open", None)
    assert hk["exit_price"] == pytest.approx(17.889999)  # 2800.HK.csv 2022-09-30 Close, its last bar
    assert hk["benchmark_return"] == pytest.approx(want, rel=1e-9)
    # a closed trade keeps the window of its own fills
    assert trades["FXI"]["exit_reason"] == "hold"
