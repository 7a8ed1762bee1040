"""Disk cost of the data snapshots on the seed data (../shared/data/prices), in a temporary cache and runs folder.

1. import every CSV, run `reassurance` and `analyst_follow` (the runs keep the versions they read);
2. three identical re-imports: the cost must stay 0 (snapshots are hard links, re-linked on identical writes);
3. three re-imports that each revise every series' last close (as a refetch can), each followed by a run.
Prints the cache size and the bytes held by snapshots alone after each step, and checks that the first run
still reruns exactly.

    python benchmarks/snapshot_cost.py
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRICES = ROOT.parent.parent / "shared" / "data" / "prices"
sys.path.insert(0, str(ROOT))


def evbt(*argv: str) -> str:
    import cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(list(argv))
    if code != 0:
        raise SystemExit(f"evbt {' '.join(argv)} exited {code}")
    return out.getvalue()


def revised(folder: Path, step: int) -> list[str]:
    """Copies of the CSVs whose last bar's close and adj close moved by ``step`` basis points."""
    paths = []
    for src in sorted(PRICES.glob("*.csv")):
        lines = src.read_text().splitlines()
        cells = lines[-1].split(",")
        for k in (4, 5):
            cells[k] = f"{float(cells[k]) * (1 + step * 1e-4):.6f}"
        prices = [float(x) for x in cells[1:5]]
        cells[2], cells[3] = f"{max(prices):.6f}", f"{min(prices):.6f}"
        lines[-1] = ",".join(cells)
        dst = folder / src.name
        dst.write_text("\n".join(lines) + "\n")
        paths.append(str(dst))
    return paths


def main() -> None:
    if not PRICES.is_dir():
        raise SystemExit(f"{PRICES} not found")
    from engine.prices.snapshots import SnapshotStore
    from engine.prices.store import PriceStore

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cache = work / "cache"
        os.environ.update(EVBT_CACHE_DIR=str(cache), EVBT_RUNS_DIR=str(work / "runs"), EVBT_OFFLINE="1")
        csvs = [str(p) for p in sorted(PRICES.glob("*.csv"))]
        snaps = SnapshotStore(PriceStore(cache))

        def line(label: str) -> None:
            files = sum(p.stat().st_size for p in cache.glob("*.parquet"))
            print(f"{label:<48} cache files {files:>9,} B   snapshots alone {snaps.disk_cost():>9,} B   "
                  f"versions {len(snaps.versions())}")

        evbt("data", "import", *csvs)
        first = evbt("run", "reassurance", "--json")
        evbt("run", "analyst_follow")
        line("seed data imported, 2 runs")
        for _ in range(3):
            evbt("data", "import", *csvs)
        line("after 3 identical re-imports")
        for step in (1, 2, 3):
            folder = work / f"rev{step}"
            folder.mkdir()
            evbt("data", "import", *revised(folder, step))
            evbt("run", "reassurance")
        line("after 3 revising re-imports, a run after each")
        import json

        print(evbt("rerun", json.loads(first)["run_id"]).strip())


if __name__ == "__main__":
    main()
