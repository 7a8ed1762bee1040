"""The fast driver: replays a ``Plan`` through the execution policy without backtrader (parameter sweeps).

The policy (``engine.execution.policy``) decides and books every fill tick by tick in UTC order; this driver
only applies its fills as they are (no broker) and marks the equity curve (``Policy.curve``). The backtrader
driver runs the same policy with backtrader's broker executing the fills; tests compare every trade, order,
equity point and metric of the two to 1e-9. Metrics come from ``engine.analysis.metrics.metrics_from_arrays``,
the implementation ``compute_metrics`` uses. This module imports nothing from backtrader.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.analysis.metrics import Metrics, ReturnStats, daily_returns, metrics_from_arrays, return_stats
from engine.collector import collector_paused
from engine.execution.books import Market, build_market
from engine.execution.policy import Policy
from engine.execution.records import OrderRecord, TradeRecord
from engine.plan.config import RunConfig
from engine.plan.planner import Plan

__all__ = ["FastResult", "Market", "build_market", "fast_metrics", "simulate", "unsupported_reason"]


def unsupported_reason(config: RunConfig) -> str | None:
    """Why ``simulate`` cannot replay this configuration exactly (None = it can: every configuration today)."""
    return None


@dataclass
class FastResult:
    """Plain result of a replay: the same trades/orders/curve ``run_backtest`` returns."""

    trades: list[TradeRecord]
    orders: list[OrderRecord]
    equity: np.ndarray
    cash: np.ndarray
    exposure: np.ndarray
    index: pd.DatetimeIndex

    def curve(self) -> pd.DataFrame:
        frame = pd.DataFrame({"equity": self.equity, "cash": self.cash, "exposure": self.exposure},
                             index=self.index)
        frame.index.name = "date"
        return frame


def simulate(
    market: Market,
    config: RunConfig,
    plan: Plan,
    stop_loss: float | None = None,
    take_profit: float | None = None,
    records: bool = True,
) -> FastResult:
    """Run ``plan`` through the policy, fills applied as decided.

    The cyclic garbage collector is paused meanwhile: a run allocates tens of thousands of small acyclic objects
    (lots, fills, trades), and each full collection would walk every object the sweep holds (events, plans),
    which measured 40% of a 500-symbol point. Nothing is lost: refcounting frees the run's objects, and
    the collector resumes afterwards."""
    with collector_paused():
        policy = Policy(market, config, plan, stop_loss, take_profit, records)
        policy.run()
        policy.finish()
        equity, cash, exposure = policy.curve()
    return FastResult(policy.trades, policy.orders, equity, cash, exposure, market.index)


def fast_metrics(market: Market, result: FastResult, initial_value: float) -> tuple[Metrics, ReturnStats]:
    """Metrics of a replay (the one implementation, with the market's precomputed benchmark and period)."""
    exposure = float(np.mean(result.exposure)) if len(result.exposure) else None
    metrics = metrics_from_arrays(result.equity, market.years, result.trades, exposure, market.bench_aligned,
                                  initial_value)
    values = np.concatenate([[float(initial_value)], result.equity])
    return metrics, return_stats(daily_returns(values))
