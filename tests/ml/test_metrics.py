"""Metrics against values worked out by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ml.metrics import (
    CROSS_SECTIONAL_METRICS,
    cross_sectional_metrics,
    daily_ic,
    forecast_metrics,
    long_short_returns,
    mean_standard_error,
)

# Three dates of four symbols; the targets are excess returns (they sum to zero each date).
# Date 1: prediction ranks 1 2 3 4 against target ranks 1 3 2 4: Spearman 1 - 6 * 2 / (4 * 15) = 0.8, and
#   the targets are evenly spaced, so Pearson is 0.8 too.
# Date 2: perfectly wrong: -1 both ways.
# Date 3: perfectly ranked (Spearman 1), but the prediction 10 is far out: Pearson 28 / sqrt(50 * 20).
PREDICTIONS = pd.DataFrame(
    {
        "date": pd.to_datetime(["2024-01-02"] * 4 + ["2024-01-03"] * 4 + ["2024-01-04"] * 4),
        "symbol": ["A", "B", "C", "D"] * 3,
        "prediction": [1, 2, 3, 4, 4, 3, 2, 1, 1, 2, 3, 10],
        "target": [-0.015, 0.005, -0.005, 0.015] + [-0.015, -0.005, 0.005, 0.015] * 2,
    }
)
PEARSON = [0.8, -1.0, 28 / math.sqrt(1000)]
SPEARMAN = [0.8, -1.0, 1.0]


def test_daily_ic_pearson_and_spearman() -> None:
    assert daily_ic(PREDICTIONS, rank=False).to_list() == pytest.approx(PEARSON)
    assert daily_ic(PREDICTIONS, rank=True).to_list() == pytest.approx(SPEARMAN)


def test_daily_ic_of_constant_predictions_is_zero_and_single_symbol_dates_have_none() -> None:
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-02"] * 3 + ["2024-01-03"]),
            "prediction": [0.5, 0.5, 0.5, 1.0],
            "target": [0.01, -0.02, 0.01, 0.03],
        }
    )
    assert daily_ic(frame, rank=True).to_dict() == {pd.Timestamp("2024-01-02"): 0.0}


def test_rank_ic_averages_tied_ranks() -> None:
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-02"] * 4),
            "prediction": [1, 1, 2, 3],
            "target": [1.0, 2.0, 3.0, 4.0],
        }
    )
    # Ranks 1.5 1.5 3 4 against 1 2 3 4: Pearson of the ranks.
    x, y = [-1.0, -1.0, 0.5, 1.5], [-1.5, -0.5, 0.5, 1.5]
    covariance = sum(a * b for a, b in zip(x, y, strict=True))
    expected = covariance / math.sqrt(sum(a * a for a in x) * sum(b * b for b in y))
    assert daily_ic(frame, rank=True).iloc[0] == pytest.approx(expected)


def test_long_short_takes_at_least_one_symbol_per_side() -> None:
    result = long_short_returns(PREDICTIONS)
    assert result["top"].to_list() == pytest.approx([0.015, -0.015, 0.015])
    assert result["bottom"].to_list() == pytest.approx([-0.015, 0.015, -0.015])
    assert result["long_short"].to_list() == pytest.approx([0.03, -0.03, 0.03])


def test_deciles_of_twenty_symbols_take_two_each() -> None:
    frame = pd.DataFrame(
        {"date": pd.Timestamp("2024-01-02"), "prediction": range(20), "target": [float(i) for i in range(20)]}
    )
    result = long_short_returns(frame).iloc[0]
    assert (result["top"], result["bottom"], result["long_short"]) == (18.5, 0.5, 18.0)


def test_newey_west_standard_error() -> None:
    # Deviations from the mean 0.26667: 0.53333, -1.26667, 0.73333. gamma0 = 2.42667 / 3 = 0.80889,
    # gamma1 = (0.53333 * -1.26667 - 1.26667 * 0.73333) / 3 = -0.53481, Bartlett weight 1/2:
    # variance 0.80889 - 0.53481 = 0.27407, standard error sqrt(0.27407 / 3).
    assert mean_standard_error(pd.Series(SPEARMAN), lags=1) == pytest.approx(
        math.sqrt(0.274074 / 3), rel=1e-4
    )
    # Without lags it is the plain standard error with the population variance.
    assert mean_standard_error(pd.Series(SPEARMAN), lags=0) == pytest.approx(
        math.sqrt(0.808889 / 3), rel=1e-4
    )


def test_cross_sectional_metrics() -> None:
    metrics = cross_sectional_metrics(PREDICTIONS, horizon=5)
    assert list(metrics) == list(CROSS_SECTIONAL_METRICS)
    rank_std = math.sqrt(2.426667 / 2)
    ls_std = math.sqrt((0.02**2 + 0.04**2 + 0.02**2) / 2)
    assert metrics == pytest.approx(
        {
            "ic": sum(PEARSON) / 3,
            "rank_ic": 0.8 / 3,
            "icir": (sum(PEARSON) / 3) / pd.Series(PEARSON).std(),
            "rank_icir": (0.8 / 3) / rank_std,
            "rank_ic_tstat": (0.8 / 3) / mean_standard_error(pd.Series(SPEARMAN), lags=5),
            # Prediction above the date's mean prediction vs positive target: 2 of 4, 0 of 4, 3 of 4.
            "hit_rate": 5 / 12,
            "top_decile_return": 0.005,
            "long_short_return": 0.01,
            "long_short_sharpe": 0.01 / ls_std * math.sqrt(252 / 5),
        },
        rel=1e-5,
    )


def test_forecast_metrics() -> None:
    forecasts = pd.DataFrame(
        {
            "actual": [100.0, 200.0],
            "yhat": [110.0, 190.0],
            "yhat_lower": [95.0, 195.0],
            "yhat_upper": [120.0, 199.0],
        }
    )
    # |10| / 100 and |10| / 200; both errors 10; only the first actual is inside its interval.
    assert forecast_metrics(forecasts) == pytest.approx(
        {"mape": 0.075, "rmse": 10.0, "interval_coverage": 0.5}
    )
