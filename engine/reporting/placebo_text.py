"""Text of a placebo test (``evbt run ... --placebo N``): where the real result falls among random event dates."""

from __future__ import annotations

from typing import Any

from engine.reporting.report import render_table

LABELS = {"total_return": ("total return", "pct"), "sharpe": ("Sharpe", "ratio")}
SIGNIFICANCE = 0.05


def _value(value: float | None, kind: str) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:.2f}%" if kind == "pct" else f"{value:.3f}"


def placebo_rows(result: Any) -> list[list[str]]:
    rows = []
    for r in result.ranks:
        label, kind = LABELS.get(r.metric, (r.metric, "ratio"))
        rows.append([label, _value(r.real, kind), _value(r.placebo_mean, kind), _value(r.placebo_median, kind),
                     "n/a" if r.percentile is None else f"{r.percentile:.1f}",
                     "n/a" if r.p_value is None else f"{r.p_value:.4f}", str(r.valid)])
    return rows


PLACEBO_HEADERS = ["metric", "real", "placebo mean", "placebo median", "percentile", "p (placebo >= real)", "sets"]


def setup_line(result: Any) -> str:
    return (f"Placebo test: {result.n} sets of random event dates (seed {result.seed}); each of the "
            f"{len(result.templates)} run-period event(s) of the traded types moved to a random session of its "
            f"exchange, same symbols and time of day, outside {result.exclusion_sessions} session(s) of every real "
            f"entry; fast path, {result.elapsed_s:.1f} s")


def bootstrap_line(result: Any) -> str:
    b = result.bootstrap
    if b is None:
        return "Mean trade return: fewer than 2 closed trades, no bootstrap interval"
    return (f"Mean closed-trade return {b.mean * 100:.3f}%, {b.confidence:.0%} bootstrap interval "
            f"[{b.low * 100:.3f}%, {b.high * 100:.3f}%] ({b.trades} trades, {b.resamples} resamples)")


def verdict_line(result: Any) -> str:
    r = result.rank("total_return")
    if r is None or r.p_value is None:
        return "Verdict: undefined (no valid placebo set)"
    share = 100.0 - (r.percentile or 0.0)
    if r.p_value < SIGNIFICANCE:
        return (f"Verdict: only {share:.1f}% of random-date sets did as well or better on total return "
                f"(p = {r.p_value:.4f} < {SIGNIFICANCE}): the event timing adds something")
    return (f"Verdict: {share:.1f}% of random-date sets did as well or better on total return "
            f"(p = {r.p_value:.4f}): no evidence that the event dates matter")


def render_placebo_text(result: Any) -> str:
    lines = [setup_line(result), render_table(PLACEBO_HEADERS, placebo_rows(result)), bootstrap_line(result),
             verdict_line(result)]
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines) + "\n"


def placebo_ranking_text(rows: Any, n: int, seed: int | None) -> str:
    """The sweep's top points ranked by the placebo p-value of their total return."""
    table_rows = []
    for k, row in enumerate(rows, start=1):
        total, sharpe = row.result.rank("total_return"), row.result.rank("sharpe")
        table_rows.append([str(k), row.label, _value(total.real, "pct"), f"{total.percentile:.1f}"
                           if total.percentile is not None else "n/a",
                           f"{total.p_value:.4f}" if total.p_value is not None else "n/a",
                           f"{sharpe.p_value:.4f}" if sharpe.p_value is not None else "n/a"])
    head = (f"Placebo ranking of the top {len(rows)} point(s): {n} sets of random event dates each "
            f"(seed {seed or 0}), lowest total-return p-value first")
    return head + "\n" + render_table(["rank", "point", "total return", "percentile", "p (total return)",
                                       "p (Sharpe)"], table_rows) + "\n"
