#!/usr/bin/env python
"""Reliability trials for evbt: crashes (SIGKILL at random points), concurrency, disk full / read-only folders.

Writes RELIABILITY.md with what was tried, how many times and what held. Refresh it with::

    python scripts/reliability.py                 # 240 crash trials (40 per kind), about 6-9 minutes on 2 cores
    python scripts/reliability.py --trials 20     # quick look (does not write RELIABILITY.md unless --out)

The test suite imports this module and runs the same trials with a handful of iterations
(tests/test_reliability_crash.py), so the script and the tests cannot drift apart.

Crash trial kinds (each trial starts a fresh process and SIGKILLs it at a random moment):
- ``cache-write``: a process rewriting 4 cache files in a loop (two known versions each), killed while writing;
- ``cache-fetch``: ``PriceStore.update(refresh=True)`` with a fake fetcher serving revised bars, in a loop;
- ``cli-import``: ``evbt data import`` of 12 Yahoo CSV files (alternating two versions), killed at a random
  time within its real duration;
- ``runs-save``: ``engine.saved_runs.save_run`` of two runs in a loop (new folders and replacement of existing ones);
- ``cli-run``: ``evbt run`` on the synthetic sample, killed at a random time within its real duration;
- ``cli-sweep``: ``evbt sweep`` (80 points, 4-row chunks) killed at a random moment, mostly while it writes chunks,
  from an empty runs folder or resuming the folder the previous kill left.
After every trial: ``evbt data verify`` passes, every cache file is a complete known version, every visible run
folder is complete (all five files, readable), no run that existed before the trial is lost, and no
temporary leftovers remain once the runs folder has been listed (recovery). After a sweep trial: every chunk
parquet file reads back whole, the sweep folder is absent, empty, partial (resumable) or complete, and a rerun on
a copy computes exactly the missing points, leaves no temp files and gives a summary and best-point report
identical to an uninterrupted sweep.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from scripts.trials.common import KINDS  # noqa: E402
from scripts.trials.concurrency import concurrent_fetch_import, concurrent_runs, concurrent_sweeps  # noqa: E402
from scripts.trials.crash import crash_trials  # noqa: E402
from scripts.trials.disk import disk_trials  # noqa: E402
from scripts.trials.drivers import DRIVERS  # noqa: E402
from scripts.trials.hostile_data import bitflip_trials, import_race_trials, symlink_trials  # noqa: E402
from scripts.trials.hostile_resources import (  # noqa: E402
    big_events_run,
    cluster_trials,
    grid_refusal,
    orphan_trials,
)
from scripts.trials.render import _catalogue_counts, render  # noqa: E402
from scripts.trials.render_hostile import HostileResults  # noqa: E402

__all__ = ["KINDS", "concurrent_fetch_import", "concurrent_runs", "concurrent_sweeps", "crash_trials", "disk_trials",
           "main"]


def run_hostile(args: argparse.Namespace, work: Path) -> HostileResults:
    """The second round (issue 17): bit flips, import races, planted symlinks, orphans, cluster, bounded work."""
    scale = max(args.trials / 240, 0.05)
    flips = bitflip_trials(max(10, round(200 * scale)), args.seed, work)
    print(f"bit flips: {flips.counts}, {flips.bad} bad", flush=True)
    races = import_race_trials(max(3, round(100 * scale)), work)
    print(f"import races: {races.counts}, {races.bad} bad", flush=True)
    links = symlink_trials(work)
    print(f"symlinks: {links[1]} targets touched", flush=True)
    orphans = orphan_trials(max(1, round(10 * scale)), work)
    print(f"orphans: {orphans}", flush=True)
    cluster = cluster_trials(work)
    grids = grid_refusal(work)
    shared = [p / "data" / "prices" for p in (REPO.parent / "shared", REPO.parent.parent / "shared")]
    big = big_events_run(args.events, work, next((p for p in shared if p.is_dir()), None))
    for row in [*cluster, *grids, big]:
        print(" | ".join(row), flush=True)
    return HostileResults(flips, races, links, orphans, cluster, grids, big)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=240, help="total crash trials, split across the kinds")
    parser.add_argument("--seed", type=int, default=20260316)
    parser.add_argument("--out", type=Path, default=None, help="report path (default RELIABILITY.md when "
                                                                "--trials >= 200)")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp folder)")
    parser.add_argument("--events", type=int, default=100_000, help="events in the bounded large run")
    parser.add_argument("--driver", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.driver:
        DRIVERS[args.driver[0]](*args.driver[1:])
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="evbt-reliability-"))
    per_kind = max(1, -(-args.trials // len(KINDS)))
    stats = []
    for i, kind in enumerate(KINDS):
        s = crash_trials(kind, per_kind, args.seed + i, work)
        print(f"{kind}: {s.held}/{s.trials} held ({s.killed_while_running} killed while running) in "
              f"{s.seconds:.0f} s", flush=True)
        for f in s.failures[:3]:
            print(f"  {f}", flush=True)
        stats.append(s)
    conc = [concurrent_fetch_import(work), concurrent_runs(work), concurrent_sweeps(work)]
    for c in conc:
        print(f"{c.name}: exit codes {c.exit_codes}, problems {c.problems or 'none'}", flush=True)
    disk = disk_trials(work)
    for row in disk:
        print(" | ".join(row), flush=True)
    hostile = run_hostile(args, work)
    out = args.out or (REPO / "RELIABILITY.md" if args.trials >= 200 else None)
    if out is not None:
        out.write_text(render(stats, conc, disk, _catalogue_counts(), args.seed, hostile))
        print(f"wrote {out}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    failed = sum(len(s.failures) for s in stats) + sum(bool(c.problems) for c in conc) + \
        sum(r[2] == "FAILED" for r in disk) + hostile.failed()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
