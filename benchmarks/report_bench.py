"""Speed of writing one large report: build_report + dumps_report (issue #16, scale).

Run: .venv/bin/python benchmarks/report_bench.py REPORT.json [--repeats 5]

REPORT.json is the `--json` output of a run, e.g. the 500-symbol synthetic universe of benchmarks/scale_bench.py:

    cp -r /work/scale/500/cache /tmp/x/cache
    EVBT_CACHE_DIR=/tmp/x/cache .venv/bin/python cli.py --offline run analyst_follow --config /work/scale/500/run.toml \
        --events /work/scale/500/events.csv --replace-events --no-save --json > /tmp/x/big.json

The script loads the TradeRecords/OrderRecords (and the other build_report inputs) back from that file, rebuilds the
report with build_report, writes it with dumps_report and checks the text equals the file byte for byte (the file
was written by `evbt run`, i.e. by the same two calls; the extra newline of `--json` printing is allowed for).
"before" is the code before json_text: the reference copy in tests/test_json_text.py patched into build_report,
timed in the same process, rounds interleaved with "now". Figures are CPU seconds (time.process_time), median
and least of --repeats rounds, beside the standard library's `json.dumps(indent=2, sort_keys=True, ...)` of the
built report alone. No assertion on time: it prints figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's engine (and tests/ helpers)

from engine.analysis.metrics import Metrics
from engine.execution.records import OrderRecord, RunResult, TradeRecord
from engine.reporting import report as report_module
from engine.reporting.report import build_report, dumps_report

ROOT = Path(__file__).resolve().parents[1]


def cpu(steps: dict[str, Callable[[], Any]], repeats: int) -> tuple[dict[str, float], dict[str, float], dict[str, Any]]:
    """Median and least CPU seconds of each step over ``repeats`` rounds, and its last result. The steps run one
    after the other in every round (before and now interleaved), so a change of load on a shared machine falls on
    both."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    out: dict[str, Any] = {}
    for _ in range(repeats):
        for name, fn in steps.items():
            t0 = time.process_time()
            out[name] = fn()
            times[name].append(time.process_time() - t0)
    return ({n: statistics.median(t) for n, t in times.items()}, {n: min(t) for n, t in times.items()}, out)


def inputs(doc: dict[str, Any]) -> dict[str, Any]:
    """build_report's keyword arguments, recovered from a report it built."""
    period = doc["period"]
    index = (pd.date_range(period["start"], period["end"], periods=period["bars"]).normalize()
             if period["bars"] else pd.DatetimeIndex([]))
    equity = pd.Series(1.0, index=index)
    result = RunResult(
        equity=equity, cash=equity, exposure=equity,
        trades=[TradeRecord(**t) for t in doc["trades"]],
        orders=[OrderRecord(**o) for o in doc["orders"]],
        benchmark=None, fx_source=doc["fx_source"], warnings=list(doc["warnings"]),
    )
    return {"run_id": doc["run_id"], "strategy": doc["strategy"], "params": doc["params"], "config": doc["config"],
            "result": result, "metrics": Metrics(**doc["metrics"]), "data": doc["data"]["symbols"],
            "events": doc["events"]}


def reference() -> Any:
    """tests/test_json_text.py, whose to_jsonable_reference/dumps_reference are the code before json_text."""
    return importlib.import_module("tests.test_json_text")


def build_before(ref: Any, kwargs: dict[str, Any]) -> Any:
    """build_report with the old conversion (dataclasses.asdict + the recursive to_jsonable) patched in."""
    def old_record(value: Any) -> Any:
        return ref.to_jsonable_reference(dataclasses.asdict(value))

    saved = report_module.to_jsonable, report_module.dataclass_jsonable
    report_module.to_jsonable = ref.to_jsonable_reference
    report_module.dataclass_jsonable = old_record
    try:
        return build_report(**kwargs)
    finally:
        report_module.to_jsonable, report_module.dataclass_jsonable = saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("report", type=Path, help="a report.json or `evbt run --json` output")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    text = args.report.read_text(encoding="utf-8")
    if text.endswith("}\n\n"):  # `evbt run --json` prints dumps_report's text with click.echo's own newline
        text = text[:-1]
    doc = json.loads(text)
    ref = reference()
    kwargs = inputs(doc)
    old_report = build_before(ref, kwargs)
    report = build_report(**kwargs)
    median, least, out = cpu({
        "load": lambda: inputs(json.loads(text)),
        "old build": lambda: build_before(ref, kwargs),
        "old dumps": lambda: ref.dumps_reference(old_report) + "\n",
        "build": lambda: build_report(**kwargs),
        "dumps": lambda: dumps_report(report),
        "stdlib": lambda: json.dumps(report, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False),
    }, args.repeats)
    print(f"report: {args.report} ({len(text.encode()):,} bytes; {len(doc['trades']):,} trades, "
          f"{len(doc['orders']):,} orders); load avg {os.getloadavg()[0]:.2f}")
    print(f"CPU seconds over {args.repeats} rounds, median (least)")
    print(f"load records (json.loads + dataclasses): {median['load']:.3f} ({least['load']:.3f})")
    print(f"{'':28}{'before':>16}{'now':>16}{'ratio':>8}")
    for name, old, new in (("build_report", ["old build"], ["build"]), ("dumps_report", ["old dumps"], ["dumps"]),
                           ("build_report + dumps_report", ["old build", "old dumps"], ["build", "dumps"])):
        before, now = sum(median[k] for k in old), sum(median[k] for k in new)
        cells = [f"{sum(m[k] for k in keys):.3f} ({sum(least[k] for k in keys):.3f})" for m, keys in
                 ((median, old), (median, new))]
        print(f"{name:28}{cells[0]:>16}{cells[1]:>16}{before / now:7.1f}x")
    print(f"stdlib json.dumps(indent=2) of the built report alone: {median['stdlib']:.3f} ({least['stdlib']:.3f})")
    same = out["dumps"] == text and out["old dumps"] == text
    print(f"byte-identical to the file (before and now): {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
