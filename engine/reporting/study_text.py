"""Text report of ``evbt study``: the choices made, then per event-type group the per-day table, every test over the
window, the return decomposition, clustering and the samples; skipped samples one line per reason."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.reporting.formats import num, pct
from engine.reporting.report import render_table


def window_tests(s: Any) -> list[tuple[str, Any]]:
    """(label, TestResult) of every test of the window's CAAR, in display order (KP rows only when clustered)."""
    rows: list[tuple[str, Any]] = [("cross-sectional t", s.caar_t), ("BMP (standardised) t", s.caar_bmp)]
    if s.caar_t_kp is not None:
        rows += [("cross-sectional t, Kolari-Pynnonen", s.caar_t_kp), ("BMP t, Kolari-Pynnonen", s.caar_bmp_kp)]
    rows += [("Corrado rank (cumulated)", s.caar_rank), ("generalised sign (Cowan) on CARs", s.caar_sign),
             ("Wilcoxon signed-rank on CARs", s.caar_wilcoxon)]
    return rows


def test_cells(test: Any) -> list[str]:
    if test is None or test.stat is None:
        return ["n/a", "-", ""]
    name = {"t": f"t, df {test.df}", "normal": "normal", "exact": "exact"}.get(test.method, test.method)
    return [num(test.stat, ".3f"), num(test.p, ".4f"), name]


def clustering_text(cl: Any) -> str:
    if not cl.clustered:
        return "no clustering: no two event windows overlap in calendar time"
    shared = ", ".join(f"{d} x{n}" for d, n in cl.shared_day0) or "none"
    factor = (f"Kolari-Pynnonen factor {num(cl.kp_factor, '.4f')} applied" if cl.kp_factor is not None else
              "Kolari-Pynnonen factor not defined for this correlation: no adjustment")
    return (f"CLUSTERED: {cl.overlapping_pairs} of {cl.pairs} sample pairs have overlapping event windows "
            f"(shared day 0: {shared}); average cross-correlation {cl.mean_correlation:.4f}, {factor}")


def decomposition_text(d: Any, model: str) -> str | None:
    if d is None:
        return None
    parts = [f"constant {pct(d.constant, 3)}"] if model != "raw" else []
    if model in ("market", "two-factor"):
        parts.append(f"market {pct(d.market, 3)}")
    if model == "two-factor":
        parts.append(f"sector beyond the market {pct(d.sector, 3)}")
    parts.append(f"abnormal {pct(d.abnormal, 3)}")
    return f"mean sum of daily returns over the window {pct(d.raw, 3)} = " + " + ".join(parts)


def group_title(group: Any) -> str:
    from engine.analysis.event_study import sign_word

    return f"{' + '.join(group.types)} (expected {sign_word(group.expected_sign)}): {len(group.events)} sample(s)"


def _day_rows(days: Sequence[Any]) -> list[list[str]]:
    return [[str(d.day), str(d.n), pct(d.aar, 3), num(d.aar_t.stat, ".2f"), num(d.aar_rank.stat if d.aar_rank else None,
             ".2f"), pct(d.caar, 3), num(d.caar_t.stat, ".2f"), num(d.caar_t.p, ".4f"), num(d.caar_bmp.stat, ".2f"),
             num(d.caar_bmp_kp.stat if d.caar_bmp_kp else None, ".2f"),
             num(d.caar_rank.stat if d.caar_rank else None, ".2f"), num(d.caar_sign.stat if d.caar_sign else None,
                                                                         ".2f")]
            for d in days]


def render_group(group: Any, result: Any) -> list[str]:
    c = result.config
    lines = ["", "== " + group_title(group) + " =="]
    if not group.days:
        return [*lines, "no sample could be studied"]
    headers = ["day", "N", "AAR", "t", "rank", "CAAR", "t", "p", "BMP", "BMP-KP", "rank", "sign"]
    lines += [render_table(headers, _day_rows(group.days))]
    s = group.summary
    lines += ["", f"CAAR {c.window[0]}:{c.window[1]} = {pct(s.caar, 3)} ({s.positive} of {s.n} CARs positive)"]
    rows = [[label, *test_cells(test)] for label, test in window_tests(s)]
    lines += [render_table(["test", "statistic", "p (two-sided)", "distribution"], rows)]
    if s.band_low is not None:
        lines.append(f"{result.confidence:.0%} band [{pct(s.band_low, 3)}, {pct(s.band_high, 3)}]")
    parts = decomposition_text(group.mean_decomposition, result.model)
    if parts:
        lines.append(parts)
    lines.append(clustering_text(group.clustering))
    ev_rows = [[e.event_id, e.symbol, e.day0, pct(e.car, 3), num(e.car_t, ".2f"), num(e.car_p, ".4f")]
               for e in group.events]
    lines += ["", render_table(["event", "symbol", "day 0", "CAR", "t", "p"], ev_rows)]
    return lines


def render_study_text(result: Any) -> str:
    """Readable study report: choices, warnings, one block per group, skipped samples grouped by reason."""
    lines = ["SYNTHETIC DATA: sample prices, not real market history", ""] if result.synthetic else []
    c = result.config
    lines.append(f"Event study: types {', '.join(c.types) or 'all'}; {len(result.events)} event-symbol sample(s) "
                 f"in {len(result.groups)} group(s), {len(result.skipped)} skipped")
    lines += [f"  {choice}" for choice in result.choices]
    lines += [f"WARNING: {w}" for w in result.warnings]
    for group in result.groups:
        lines += render_group(group, result)
    if result.skipped:
        lines += ["", f"Skipped ({len(result.skipped)})"]
        for g in result.skip_groups:
            more = f", ... ({g.count - len(g.examples)} more)" if g.count > len(g.examples) else ""
            lines.append(f"- {g.count} x {g.reason}")
            lines.append(f"    e.g. {', '.join(g.examples)}{more}")
    return "\n".join(lines) + "\n"
