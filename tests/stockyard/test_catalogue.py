"""What the code restates of stockyard.db.catalogue agrees with it."""

from __future__ import annotations

import dataclasses

from stockyard.analytics.backtest import BacktestMetrics
from stockyard.db.catalogue import BACKTEST_METRICS, backtests


def test_the_backtest_metrics_are_the_backtests_metric_columns_in_order() -> None:
    assert tuple(field.name for field in dataclasses.fields(BacktestMetrics)) == BACKTEST_METRICS
    assert set(BACKTEST_METRICS) <= set(backtests.columns.keys())
