"""CPU seconds of ``plan_for`` per sweep point, in one process (what a sweep worker pays per point for its plan).

Usage: python benchmarks/plan_bench.py SCALE_DIR [--grid hold=30..40] [-p short_downgrades=true ...]

SCALE_DIR is a folder written by ``benchmarks/scale_bench.py --keep`` (cache/, events.csv, run.toml). Its cache
is copied to a temporary folder first (the original stays untouched). The first point plans afresh; with a
strategy declaring ``exit_params`` (the built-ins), points differing only in those are derived from it.
Figures are ``time.process_time()`` per point; a point that pays a collector pass shows as an outlier, so the
median of the points after the first is printed beside the mean.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.api.settings import make_settings  # noqa: E402
from engine.plan.config import make_run_config  # noqa: E402
from engine.sweeps.data import load_sweep_data  # noqa: E402
from engine.sweeps.evaluate import SweepCaches, plan_for  # noqa: E402
from engine.sweeps.grid import parse_grid  # noqa: E402
from engine.sweeps.windows import make_windows  # noqa: E402
from strategies.registry import get_strategy  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scale_dir", type=Path)
    parser.add_argument("--strategy", default="analyst_follow")
    parser.add_argument("--grid", default="hold=30..40")
    parser.add_argument("-p", dest="params", action="append", default=[])
    args = parser.parse_args()
    cls = get_strategy(args.strategy)
    grid = parse_grid([args.grid], cls.Params, args.strategy)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        shutil.copytree(args.scale_dir / "cache", cache)
        settings = make_settings(cache, True, False, False, None, ())
        options = {"events": str(args.scale_dir / "events.csv"), "replace_events": True}
        base = make_run_config(args.strategy, tuple(args.params), options, args.scale_dir / "run.toml", (),
                               cls.Params)
        with settings.session():
            windows = make_windows(base.start, base.end)
            data = load_sweep_data(settings.store(), base, windows)
            caches = SweepCaches()
            wctx = caches.context(data, windows[0])
            times = []
            for values in grid.points():
                config = dataclasses.replace(base, params={**base.params, **values})
                params = caches.typed_params(config.strategy, config.params)
                began = time.process_time()
                plan = plan_for(data, wctx, config, params)
                times.append(time.process_time() - began)
    actions = sum(len(a) for a in plan.actions.values())
    print(f"{args.strategy} {args.grid}: {len(data.symbols)} symbols, {len(data.events)} events, "
          f"{actions} actions in the last plan")
    print("plan_for CPU s per point: " + " ".join(f"{t:.3f}" for t in times))
    rest = times[1:] or times
    print(f"first {times[0]:.3f} s; after it: median {statistics.median(rest):.3f} s, "
          f"mean {statistics.fmean(rest):.3f} s")


if __name__ == "__main__":
    main()
