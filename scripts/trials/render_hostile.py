"""The RELIABILITY.md section of the second round (issue 17): integrity, hostile files, bounded resources."""

from __future__ import annotations

from dataclasses import dataclass, field

from scripts.trials.hostile_data import Outcome
from scripts.trials.hostile_resources import OrphanStats

FOUND_II = [
    "a run recorded the fingerprint and run id read at its end, not those of the bars it loaded: a concurrent "
    "`data import` made 10 of 30 runs record the other version (now the store records the version it served)",
    "the content hash was never checked on read: altered bars under old metadata, bars moved off midnight, NaN "
    "closes, text columns and shuffled rows were served (now every read checks schema, metadata, price rules and "
    "hash, and refuses the file naming it); `data ls`/`verify` crashed on non-JSON metadata or missing keys",
    "a bit flip making a bar's date fall outside Python's date range escaped the read checks as an internal "
    "NotImplementedError (found by these bit-flip trials; now a damaged-file error)",
    "a stray `BABA copy.parquet` aborted `data ls`/`verify` (now named and skipped); `data verify ZZZZ` said "
    "DAMAGED for a symbol not cached (now: not cached); temp files of killed writers were never removed (now "
    "the next writer or `verify` removes and reports them)",
    "atomic writes used a predictable temp name opened with create-and-truncate, following a planted symlink "
    "(now random names, O_EXCL|O_NOFOLLOW; the file mode of a rewritten file is kept)",
    "pool workers outlived a SIGKILLed sweep; `--cluster` hung on a silent port (handshake not covered by the "
    "connect timeout), gave MemoryError on a web server and TypeError on tls://",
    "accepted inputs that changed results: stop_loss/take_profit <= 0, event-type typos in `-p types`, "
    "`--symbols ''`, TOML `symbols = []`, event tz `localtime`, CSV date `2022-01-015`, years 1/9999 and "
    "denormal prices; a TOML array nested 100,000 deep was a RecursionError; `-g hold=1..1000000` ran out of "
    "memory; `build_plan` was quadratic in the number of events",
]


@dataclass
class HostileResults:
    bitflips: Outcome
    races: Outcome
    symlinks: tuple[list[tuple[str, str, str]], int]
    orphans: OrphanStats
    cluster: list[tuple[str, str, str]]
    grids: list[tuple[str, str, str]]
    big_run: tuple[str, str, str]
    extra: list[str] = field(default_factory=list)

    def failed(self) -> int:
        rows = [*self.symlinks[0], *self.cluster, *self.grids, self.big_run]
        return (self.bitflips.bad + self.races.bad + self.symlinks[1] + self.orphans.orphans
                + sum(r[2] != "held" for r in rows))


def _counts(out: Outcome) -> str:
    return ", ".join(f"{v} {k}" for k, v in sorted(out.counts.items()))


def render_hostile(h: HostileResults) -> list[str]:
    rows, touched = h.symlinks
    lines = [
        "## Integrity: what a read serves is what was verified",
        "",
        "| trial | trials | outcome | failures | seconds |",
        "|---|---:|---|---:|---:|",
        f"| one random bit flipped in a 1,200-bar cache file, then read as a run reads it | {h.bitflips.trials} | "
        f"{_counts(h.bitflips)} | {h.bitflips.bad} | {h.bitflips.seconds:.0f} |",
        f"| `evbt run` (4 symbols, saved) while another process flips BABA between two versions with "
        f"`evbt data import` in a loop; each saved run's manifest fingerprint, printed fingerprint, run id and "
        f"final value must belong to one version | {h.races.trials} | {_counts(h.races)} | {h.races.bad} | "
        f"{h.races.seconds:.0f} |",
        "",
        "A bit-flip trial fails if anything other than the clean bars and metadata is served: every read checks the "
        "Arrow schema, the metadata (JSON object, required keys, its own hash), every price rule, the stale flags "
        "and the content hash of the bars just read. \"Harmless\" flips hit bytes no reader uses (column "
        "statistics, padding): the bars and metadata served are identical to the clean file's.",
        *(["", "Failures:", *[f"- {n}" for n in (h.bitflips.notes + h.races.notes)[:6]]]
          if h.bitflips.notes or h.races.notes else []),
        "",
        "## Symlinks planted at every writer",
        "",
        f"**{touched} targets touched.** Before each writer runs, symlinks to victim files outside the folder are "
        "planted at its destination and at its temp names: the old predictable `.<name>.<pid>.tmp` and the exact "
        "random name the writer is about to try first (as if guessed). The writer must not follow any of them, must "
        "leave a regular file at the destination, and every victim must keep its bytes.",
        "",
        "| writer | result | held |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
        "## Resources and the cluster path",
        "",
        f"**Kill the parent:** {h.orphans.trials} trials SIGKILLed the main `evbt sweep --workers 2` process once "
        f"its pool workers existed ({h.orphans.workers_seen} workers seen, {h.orphans.skipped} trials where the "
        f"sweep ended first); **{h.orphans.orphans} orphan workers** were alive 10 s later "
        f"({h.orphans.seconds:.0f} s). Workers ask the kernel for SIGKILL when their parent dies "
        "(`prctl(PR_SET_PDEATHSIG)`).",
        "",
        "| case | result | held |",
        "|---|---|---|",
        *[f"| `--cluster`: {a} | {b} | {c} |" for a, b, c in h.cluster],
        *[f"| grid size: {a} | {b} | {c} |" for a, b, c in h.grids],
        f"| {h.big_run[0]} | {h.big_run[1]} | {h.big_run[2]} |",
        "",
        "`--cluster` trusts the scheduler completely: Dask's tcp protocol unpickles what it receives (README).",
        "",
        "## Found and fixed in the second round",
        "",
        *[f"- {item}" for item in FOUND_II + h.extra],
        "",
    ]
    return lines
