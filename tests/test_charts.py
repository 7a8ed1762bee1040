"""Charts: the text/JSON paths never import matplotlib; SVG output is deterministic and inert; PNG is valid."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_text_and_json_reports_do_not_import_matplotlib() -> None:
    code = (
        "import sys\n"
        "import engine.reporting.report, engine.analysis.metrics, engine.backtest\n"
        "import engine.analysis.event_study, engine.analysis.compare, engine.saved_runs, cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'PIL', 'engine.reporting.charts'))\n"
        "bad += [m for m in ('engine.reporting.charts', 'engine.reporting.html_report') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _curve(n: int = 300, seed: int = 1) -> pd.Series:
    idx = pd.bdate_range("2021-01-01", periods=n)
    rng = np.random.default_rng(seed)
    return pd.Series(1e6 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), index=idx)


def test_svg_is_deterministic_small_and_inert() -> None:
    from engine.reporting import charts

    panel = charts.equity_panel(_curve(), _curve(seed=2) / 10, 1e6, "KWEB")
    first, second = charts.svg(panel), charts.svg(panel)
    assert first == second
    assert first.startswith("<svg") and first.rstrip().endswith("</svg>")
    assert "<script" not in first and "<?xml" not in first and "DOCTYPE" not in first
    assert len(first) < 60_000
    # only namespace URIs, never a resource to fetch
    for token in first.split('"'):
        if token.startswith("http"):
            assert token.startswith("http://www.w3.org/"), token


def test_svg_text_is_escaped() -> None:
    from engine.reporting import charts

    text = charts.svg(charts.compare_panel({"<script>alert(1)</script>": _curve(), "b&c": _curve(seed=3)}))
    assert "<script>" not in text
    assert "&lt;script&gt;" in text and "b&amp;c" in text


def test_png_is_valid(tmp_path: Path) -> None:
    from engine.reporting import charts

    chart_set = charts.ChartSet()
    chart_set.add("equity", charts.equity_panel(_curve(), None, None, None))
    chart_set.add("dd", charts.drawdown_panel(_curve(), 1e6))
    points = [charts.CaarPoint(d, 0.001 * d, 0.002 * d, 0.002 * d - 0.01, 0.002 * d + 0.01) for d in range(-3, 6)]
    chart_set.add("caar", charts.caar_panel(points, 0.95, adjusted=True))
    out = tmp_path / "c.png"
    size = charts.write_png(out, chart_set)
    data = out.read_bytes()
    assert size == len(data) > 5_000
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width == int(charts.WIDTH_IN * charts.PNG_DPI)
    assert height == pytest.approx(3 * charts.PANEL_HEIGHT_IN * charts.PNG_DPI, abs=2)


def test_drawdown_matches_metrics() -> None:
    from engine.analysis.metrics import max_drawdown, value_path
    from engine.reporting.charts import drawdown_series

    curve = _curve(seed=5)
    dd = drawdown_series(curve, 1e6)
    assert float(dd.min()) == pytest.approx(max_drawdown(value_path(curve, 1e6)))
    # by hand: start capital 100 is the first peak
    hand = drawdown_series(pd.Series([90.0, 120.0, 60.0, 130.0], index=pd.bdate_range("2022-01-03", periods=4)),
                           100.0)
    assert list(hand) == pytest.approx([-0.1, 0.0, -0.5, 0.0])


def test_dollar_signs_in_labels_are_text_not_mathtext(tmp_path: Path) -> None:
    """A crafted run id like "$\\frac{$" crashed matplotlib's mathtext parser while writing --plot/--html."""
    import pandas as pd

    from engine.reporting.charts import ChartSet, compare_panel, write_png

    days = pd.date_range("2022-01-03", periods=5, freq="B")
    curve = pd.Series([100.0, 101.0, 99.0, 102.0, 103.0], index=days)
    charts = ChartSet()
    charts.add("Equity $\\frac{$", compare_panel({"run-$\\frac{$": curve, "$x^$": curve * 1.01}))
    out = tmp_path / "dollars.png"
    assert write_png(out, charts) > 0 and out.stat().st_size > 0


def test_caar_chart_counts_days_from_day_0_not_from_the_entry_session() -> None:
    """Event time counts the symbol's bars from day 0, the fill bar, which a suspension moves past the entry session
    (README, Event study): the x axis said 'relative to the entry session'."""
    from matplotlib.figure import Figure

    from engine.reporting import charts

    points = [charts.CaarPoint(d, 0.001, 0.001 * (d + 4), None, None) for d in range(-3, 3)]
    ax = Figure().add_subplot()
    charts.caar_panel(points, 0.95, adjusted=False)(ax)
    assert "entry session" not in ax.get_xlabel()
    assert ax.get_xlabel() == "trading days (the symbol's bars) relative to day 0, the fill bar"
