"""The top-k backtest against a case worked out by hand, its timing, and its errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stockyard.analytics import portfolio
from stockyard.analytics.backtest import run_backtest, save_equity_curve

DATES = pd.bdate_range("2024-03-04", periods=10)
PRICES = pd.DataFrame(
    {
        "A": [10.0, 11, 12, 11, 12, 12, 12, 11, 12, 12],
        "B": [20.0, 21, 20, 22, 22, 26, 26, 25, 26, 26],
        "C": [40.0, 40, 42, 44, 42, 40, 38, 36, 38, 36],
        "D": [50.0, 49, 48, 50, 51, 50, 52, 51, 50, 49],
    },
    index=DATES,
)
# Day 0 ranks A > B > C > D, day 5 C > A > B > D; the scores of the days in between are never traded.
SCORES = pd.DataFrame(
    [(DATES[0], symbol, score) for symbol, score in zip("ABCD", [4.0, 3.0, 2.0, 1.0], strict=True)]
    + [(DATES[day], symbol, 0.0) for day in range(1, 5) for symbol in "ABCD"]
    + [(DATES[5], symbol, score) for symbol, score in zip("ABCD", [3.0, 2.0, 4.0, 1.0], strict=True)],
    columns=["date", "symbol", "score"],
)


def price(symbol: str, day: int) -> float:
    return float(PRICES[symbol].iloc[day])


def test_top_k_with_costs_matches_the_hand_computed_case():
    result = run_backtest(SCORES, PRICES, k=2, rebalance_every=5, cost_bps=10.0)
    cost = 10 / 10_000

    # Day 0: buy A and B from cash (turnover 1), paying 10 bp of the value 1.0.
    after_costs_0 = 1.0 * (1 - cost * 1.0)
    strategy = {day: after_costs_0 / 2 * (price("A", day) / 10 + price("B", day) / 20) for day in range(1, 6)}
    # Day 5, before trading: A is worth 0.4995 * 12/10 = 0.5994, B 0.4995 * 26/20 = 0.64935 of 1.24875.
    weight_a, weight_b = 0.5994 / 1.24875, 0.64935 / 1.24875
    turnover_5 = abs(0.5 - weight_a) + abs(0.0 - weight_b) + abs(0.5 - 0.0)  # keep A, sell B, buy C
    after_costs_5 = strategy[5] * (1 - cost * turnover_5)
    strategy |= {
        day: after_costs_5 / 2 * (price("A", day) / 12 + price("C", day) / 40) for day in range(6, 10)
    }
    # The benchmark holds all four at 1/4 from day 0 and again from day 5, without costs.
    benchmark = {day: sum(price(s, day) / price(s, 0) for s in "ABCD") / 4 for day in range(1, 6)}
    benchmark |= {
        day: benchmark[5] * sum(price(s, day) / price(s, 5) for s in "ABCD") / 4 for day in range(6, 10)
    }

    assert strategy[5] == pytest.approx(1.24875)
    assert turnover_5 == pytest.approx(1.04)
    expected_equity = pd.DataFrame(
        {
            "strategy": [1.0] + [strategy[d] for d in range(1, 10)],
            "benchmark": [1.0] + [benchmark[d] for d in range(1, 10)],
        },
        index=DATES,
    )
    pd.testing.assert_frame_equal(
        result.equity_curve, expected_equity, check_names=False, check_freq=False, rtol=1e-12
    )
    # The first day's return is net of the day-0 costs, the sixth's of the day-5 costs.
    assert result.daily_returns["strategy"].iloc[0] == pytest.approx(strategy[1] - 1.0)
    assert result.daily_returns["strategy"].iloc[5] == pytest.approx(strategy[6] / strategy[5] - 1.0)

    assert result.positions.to_dict("records") == [
        {"rebalance_date": DATES[0], "symbol": "A", "score": 4.0, "weight": 0.5},
        {"rebalance_date": DATES[0], "symbol": "B", "score": 3.0, "weight": 0.5},
        {"rebalance_date": DATES[5], "symbol": "C", "score": 4.0, "weight": 0.5},
        {"rebalance_date": DATES[5], "symbol": "A", "score": 3.0, "weight": 0.5},
    ]
    rebalances = result.rebalances
    assert list(rebalances.index) == [DATES[0], DATES[5]]
    assert rebalances["turnover"].tolist() == pytest.approx([1.0, turnover_5])
    assert rebalances["cost"].tolist() == pytest.approx([cost, cost * turnover_5])
    assert rebalances["strategy_return"].tolist() == pytest.approx(
        [strategy[5] - 1, strategy[9] / strategy[5] - 1]
    )
    assert rebalances["benchmark_return"].tolist() == pytest.approx(
        [benchmark[5] - 1, benchmark[9] / benchmark[5] - 1]
    )

    metrics = result.metrics
    # Period 1: +24.9% against +12.5%; period 2: -5.1% against -3.0%.
    assert metrics.hit_rate == 0.5
    assert metrics.turnover == pytest.approx((1.0 + 1.04) / 2)
    strategy_returns = pd.Series(
        [strategy[1] - 1] + [strategy[d] / strategy[d - 1] - 1 for d in range(2, 10)]
    )
    annual = (strategy[9]) ** (252 / 9) - 1
    assert metrics.annual_return == pytest.approx(annual)
    assert metrics.benchmark_annual_return == pytest.approx(benchmark[9] ** (252 / 9) - 1)
    assert metrics.excess_annual_return == pytest.approx(annual - metrics.benchmark_annual_return)
    assert metrics.annual_volatility == pytest.approx(strategy_returns.std() * 252**0.5)
    assert metrics.sharpe == pytest.approx(strategy_returns.mean() / strategy_returns.std() * 252**0.5)
    peak = max(strategy[d] for d in range(1, 6))
    assert metrics.max_drawdown == pytest.approx(min(strategy[d] for d in range(6, 10)) / peak - 1)
    assert metrics.calmar == pytest.approx(annual / -metrics.max_drawdown)
    assert metrics.sortino == pytest.approx(portfolio.sortino_ratio(result.daily_returns["strategy"]))


def test_scores_of_a_date_only_move_the_returns_after_it():
    base = run_backtest(SCORES, PRICES, k=2, rebalance_every=5)
    # Turn day 5's ranking around: returns up to and including day 5 must not change.
    flipped = SCORES.assign(score=np.where(SCORES["date"] == DATES[5], -SCORES["score"], SCORES["score"]))
    changed = run_backtest(flipped, PRICES, k=2, rebalance_every=5)
    assert base.daily_returns.index[0] == DATES[1]
    pd.testing.assert_frame_equal(base.daily_returns.loc[: DATES[5]], changed.daily_returns.loc[: DATES[5]])
    assert not base.daily_returns.loc[DATES[6] :].equals(changed.daily_returns.loc[DATES[6] :])


def test_backtest_ends_one_period_after_the_last_scores():
    daily = run_backtest(SCORES.loc[SCORES["date"] <= DATES[3]], PRICES, k=2, rebalance_every=2)
    # Rebalances on days 0 and 2; day 4 is past the last scores (day 3), so the backtest ends there.
    assert list(daily.rebalances.index) == [DATES[0], DATES[2]]
    assert daily.equity_curve.index[-1] == DATES[4]


def test_rebalancing_every_day_without_costs_earns_the_mean_of_the_chosen():
    every_day = pd.DataFrame(
        [
            (date, symbol, score)
            for date in DATES[:-1]
            for symbol, score in zip("ABCD", [4, 3, 2, 1], strict=True)
        ],
        columns=["date", "symbol", "score"],
    )
    result = run_backtest(every_day, PRICES, k=2)
    expected = PRICES[["A", "B"]].pct_change().iloc[1:].mean(axis=1)
    np.testing.assert_allclose(result.daily_returns["strategy"], expected, rtol=1e-12)
    # After the buy-in, a day's drift moves the weights off 1/2 and the turnover trades them back.
    growth_a, growth_b = price("A", 1) / price("A", 0), price("B", 1) / price("B", 0)
    drifted_a = growth_a / (growth_a + growth_b)
    assert result.rebalances["turnover"].iloc[:2].tolist() == pytest.approx([1.0, 2 * abs(drifted_a - 0.5)])


def test_ties_go_to_the_alphabetically_first_symbol():
    tied = pd.DataFrame({"date": DATES[0], "symbol": ["D", "C", "B", "A"], "score": [1.0, 2.0, 2.0, 2.0]})
    result = run_backtest(tied, PRICES[["D", "C", "B", "A"]], k=2, rebalance_every=9)
    assert result.positions["symbol"].tolist() == ["A", "B"]


def test_equity_curve_png(tmp_path):
    path = tmp_path / "equity.png"
    save_equity_curve(run_backtest(SCORES, PRICES, k=2, rebalance_every=5, cost_bps=10.0), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("scores", "prices", "options", "message"),
    [
        (SCORES.iloc[0:0], PRICES, {"k": 2}, "scores: no rows"),
        (SCORES, PRICES, {"k": -1}, "k must be at least 1, got -1"),
        (SCORES, PRICES, {"k": 5}, "k=5 exceeds the 4 symbols scored on 2024-03-04"),
        (SCORES, PRICES, {"k": 2, "rebalance_every": 0}, "rebalance_every must be at least 1"),
        (SCORES, PRICES, {"k": 2, "cost_bps": -5.0}, "cost_bps must be"),
        (
            SCORES.assign(symbol=SCORES["symbol"].replace("D", "ZZZ")),
            PRICES,
            {"k": 2},
            "unknown symbols in scores.*ZZZ",
        ),
        (
            SCORES.assign(date=SCORES["date"].replace(DATES[5], pd.Timestamp("2024-03-09"))),
            PRICES,
            {"k": 2},
            "2024-03-09",
        ),
        (SCORES.assign(score=SCORES["score"].replace(3.0, np.nan)), PRICES, {"k": 2}, "score must be finite"),
        (pd.concat([SCORES, SCORES.iloc[:1]]), PRICES, {"k": 2}, "more than one row for a date and symbol"),
        (
            SCORES.loc[SCORES["date"] != DATES[1]],
            PRICES,
            {"k": 2},
            "no scores on the scheduled rebalance date 2024-03-05",
        ),
        (SCORES, PRICES.assign(D=[np.nan] * 10), {"k": 2}, "no close that day to trade at: D"),
        (SCORES, PRICES.iloc[:1], {"k": 2}, "unknown symbols|price panel's last date|panel"),
        (SCORES, PRICES.iloc[::-1], {"k": 2}, "unique and in increasing order"),
    ],
)
def test_bad_input_is_named(scores, prices, options, message):
    with pytest.raises(ValueError, match=message):
        run_backtest(scores, prices, **options)
