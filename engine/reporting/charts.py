"""Charts for the HTML and PNG reports (matplotlib, object API, Agg canvas: no pyplot global state).

Only ``engine.reporting.html_report`` and the CLI's ``--plot``/``--html`` paths import this module; the text and
JSON reports
never do, so they keep working whatever happens to the plotting stack. Every chart is a *panel*: a function
drawing onto one matplotlib Axes. A chart for the HTML report is one panel in its own figure, written as
inline SVG (text kept as text, paths simplified, no timestamp: deterministic and small); ``--plot`` stacks
the same panels into one PNG.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

Panel = Callable[[Any], None]  # draws on a matplotlib Axes

_RC: Any = {
    "svg.fonttype": "none",  # text as <text>, not glyph paths: much smaller
    "svg.hashsalt": "evbt",  # deterministic element ids
    "path.simplify": True,
    "path.simplify_threshold": 0.5,
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 7.5,
    "legend.frameon": False,
    "text.parse_math": False,  # labels come from reports and event files: "$...$" is text, never mathtext
}
WIDTH_IN = 9.0
PANEL_HEIGHT_IN = 2.6
PNG_DPI = 100
COLORS = ("#1f5fa8", "#d9622b", "#2e8b57", "#8e44ad", "#b8860b", "#c0392b", "#17a2b8", "#555555")


@dataclass(frozen=True)
class Marker:
    """A dated point on a price chart (trade entry/exit)."""

    date: pd.Timestamp
    price: float
    kind: str  # "buy" | "sell"


@dataclass(frozen=True)
class PricePanel:
    """One symbol's close prices with event dates (vertical lines) and trade markers."""

    symbol: str
    close: pd.Series
    markers: tuple[Marker, ...] = ()
    events: tuple[pd.Timestamp, ...] = ()
    currency: str = ""


@dataclass(frozen=True)
class CaarPoint:
    """One relative day of the CAAR chart."""

    day: int
    aar: float
    caar: float
    low: float | None
    high: float | None


@dataclass
class ChartSet:
    """Named panels of one report, in display order."""

    panels: list[tuple[str, Panel]] = field(default_factory=list)

    def add(self, title: str, panel: Panel) -> None:
        self.panels.append((title, panel))


# ---------------------------------------------------------------- rendering


def _figure(n_panels: int, height: float = PANEL_HEIGHT_IN) -> tuple[Any, list[Any]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, height * n_panels), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(n_panels, 1, i + 1) for i in range(n_panels)]
    return fig, axes


def _draw(panels: Sequence[Panel], height: float) -> Any:
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig, axes = _figure(len(panels), height)
        for ax, panel in zip(axes, panels, strict=True):
            panel(ax)
    return fig


def svg(panel: Panel, height: float = PANEL_HEIGHT_IN) -> str:
    """One panel as an inline ``<svg>`` element (no XML prolog, no doctype, no creation date)."""
    import matplotlib

    fig = _draw([panel], height)
    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    start = text.find("<svg")
    text = _METADATA.sub("", text[start:] if start >= 0 else text)  # RDF namespace URIs: noise for a report
    return _round_paths(text)


_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)

_PATH_DATA = re.compile(r'(?<= d=")[^"]*')
_NUMBER = re.compile(r"-?\d+\.\d+")


def _round_paths(svg_text: str) -> str:
    """Round path coordinates to 0.1 pt (matplotlib writes 6 decimals): about half the size, same picture."""

    def one(match: re.Match[str]) -> str:
        rounded = _NUMBER.sub(lambda m: f"{float(m.group(0)):.1f}".rstrip("0").rstrip("."), match.group(0))
        return " ".join(rounded.split())

    return _PATH_DATA.sub(one, svg_text)


def png_bytes(panels: Sequence[Panel], height: float = PANEL_HEIGHT_IN, dpi: int = PNG_DPI) -> bytes:
    """Panels stacked vertically in one PNG (no creation metadata)."""
    import matplotlib

    fig = _draw(panels, height)
    buf = io.BytesIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def write_png(path: Path, charts: ChartSet, height: float = PANEL_HEIGHT_IN) -> int:
    """Write every panel of ``charts`` into one PNG; return its size in bytes."""
    from engine.atomic import atomic_write_bytes

    data = png_bytes([panel for _, panel in charts.panels], height)
    atomic_write_bytes(Path(path), data)
    return len(data)


# ---------------------------------------------------------------- panels


def heatmap_png(xs: Sequence[Any], ys: Sequence[Any], grid: np.ndarray, labels: tuple[str, str], title: str,
                metric: str) -> bytes:
    """PNG of a metric matrix (rows = ys, columns = xs; NaN cells blank), e.g. a sweep over two grid keys."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(4.0, 0.35 * len(xs) + 2), max(3.0, 0.35 * len(ys) + 1.5)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", origin="lower", cmap="viridis")
    ax.set_xticks(range(len(xs)), [str(x) for x in xs], rotation=90 if len(xs) > 12 else 0)
    ax.set_yticks(range(len(ys)), [str(y) for y in ys])
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label=metric)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _dates(index: pd.Index) -> np.ndarray:
    return pd.DatetimeIndex(index).to_numpy(dtype="datetime64[D]")


def _date_axis(ax: Any) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=4, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _money_axis(ax: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))


def _pct_axis(ax: Any) -> None:
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))


def equity_panel(equity: pd.Series, benchmark: pd.Series | None, initial: float | None,
                 benchmark_name: str | None) -> Panel:
    """Equity curve with the benchmark rescaled to the same starting value."""

    def draw(ax: Any) -> None:
        eq = equity.dropna()
        start = initial if initial else (float(eq.iloc[0]) if len(eq) else 1.0)
        ax.plot(_dates(eq.index), eq.to_numpy(), color=COLORS[0], lw=1.2, label="strategy")
        if benchmark is not None:
            bench = benchmark.dropna()
            bench = bench[bench > 0]
            if len(bench):
                scaled = bench / float(bench.iloc[0]) * start
                ax.plot(_dates(scaled.index), scaled.to_numpy(), color=COLORS[1], lw=1.0,
                        label=f"{benchmark_name or 'benchmark'} (rescaled)")
        ax.axhline(start, color="#999999", lw=0.6, ls=":")
        _money_axis(ax)
        ax.set_title("Equity vs benchmark")
        ax.legend(loc="upper left")
        _date_axis(ax)

    return draw


def drawdown_series(equity: pd.Series, initial: float | None) -> pd.Series:
    """equity / running peak - 1, the starting capital counting as the first peak (as engine.analysis.metrics)."""
    eq = equity.dropna().astype(float)
    peak = eq.cummax()
    if initial:
        peak = peak.clip(lower=initial)
    return eq / peak - 1.0


def drawdown_panel(equity: pd.Series, initial: float | None) -> Panel:
    def draw(ax: Any) -> None:
        dd = drawdown_series(equity, initial)
        if len(dd):
            x = _dates(dd.index)
            xs = np.concatenate([x[:1], x, x[-1:]])
            ys = np.concatenate([[0.0], dd.to_numpy(), [0.0]])
            ax.fill(xs, ys, facecolor=COLORS[5] + "59", edgecolor=COLORS[5], lw=0.8)  # one polygon
        ax.set_title("Drawdown")
        _pct_axis(ax)
        _date_axis(ax)

    return draw


def price_panel(panel: PricePanel) -> Panel:
    """Close prices, dotted lines on event dates, triangles at trade entries (up) and exits (down)."""

    def draw(ax: Any) -> None:
        close = panel.close.dropna()
        ax.plot(_dates(close.index), close.to_numpy(), color=COLORS[7], lw=0.9, label="close")
        for i, day in enumerate(panel.events):
            ax.axvline(np.datetime64(pd.Timestamp(day).date(), "D"), color=COLORS[3], lw=0.7, ls=":",
                       label="event" if i == 0 else None)
        for kind, marker, color in (("buy", "^", COLORS[2]), ("sell", "v", COLORS[5])):
            pts = [m for m in panel.markers if m.kind == kind]
            if pts:
                ax.scatter([np.datetime64(m.date.date(), "D") for m in pts], [m.price for m in pts],
                           marker=marker, color=color, s=28, zorder=3, label=kind, edgecolors="none")
        unit = f" ({panel.currency})" if panel.currency else ""
        ax.set_title(f"{panel.symbol}{unit}: close, events, trades")
        ax.legend(loc="best", ncol=4)
        _date_axis(ax)

    return draw


def compare_panel(curves: Mapping[str, pd.Series]) -> Panel:
    """Equity curves of several runs, each divided by its first value (growth of 1)."""

    def draw(ax: Any) -> None:
        for i, (label, curve) in enumerate(curves.items()):
            c = curve.dropna()
            c = c[c > 0]
            if not len(c):
                continue
            ax.plot(_dates(c.index), (c / float(c.iloc[0])).to_numpy(), lw=1.1, color=COLORS[i % len(COLORS)],
                    label=f"[{i + 1}] {label}")
        ax.axhline(1.0, color="#999999", lw=0.6, ls=":")
        ax.set_title("Equity curves (growth of 1)")
        ax.legend(loc="upper left")
        _date_axis(ax)

    return draw


def caar_panel(points: Sequence[CaarPoint], confidence: float, adjusted: bool) -> Panel:
    """CAAR by relative day with its confidence band, and AAR bars."""

    def draw(ax: Any) -> None:
        days = np.array([p.day for p in points])
        caar = np.array([p.caar for p in points])
        ax.bar(days, [p.aar for p in points], color=COLORS[7], alpha=0.35, width=0.7, label="AAR")
        if all(p.low is not None and p.high is not None for p in points) and points:
            band = "Kolari-Pynnonen adjusted " if adjusted else ""
            ax.fill_between(days, [p.low for p in points], [p.high for p in points], color=COLORS[0],
                            alpha=0.18, lw=0, label=f"{confidence:.0%} {band}band")
        ax.plot(days, caar, color=COLORS[0], lw=1.4, marker="o", ms=2.5, label="CAAR")
        ax.axhline(0.0, color="#999999", lw=0.6)
        ax.axvline(0.0, color=COLORS[1], lw=0.8, ls="--", label="day 0")
        ax.set_xlabel("trading days (the symbol's bars) relative to day 0, the fill bar")
        ax.set_title("Cumulative average abnormal return")
        _pct_axis(ax)
        ax.legend(loc="upper left", ncol=4)

    return draw


def placebo_panel(values: Sequence[float], real: float | None, label: str, percent: bool) -> Panel:
    """Histogram of a metric over the placebo sets, the real run's value marked by a vertical line."""

    def draw(ax: Any) -> None:
        data = np.asarray(values, dtype=float)
        bins = int(min(60, max(10, math.sqrt(len(data))))) if len(data) else 10
        ax.hist(data, bins=bins, color=COLORS[7], alpha=0.55, label=f"{len(data)} placebo sets")
        if real is not None and finite(real):
            ax.axvline(float(real), color=COLORS[1], lw=1.6, label=f"real run ({_fmt_metric(real, percent)})")
        ax.set_xlabel(label)
        ax.set_ylabel("placebo sets")
        ax.set_title(f"{label}: real run against random event dates")
        if percent:
            from matplotlib.ticker import PercentFormatter

            ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.legend(loc="upper left")

    return draw


def _fmt_metric(value: float | None, percent: bool) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:.2f}%" if percent else f"{value:.3f}"


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
