"""Portfolio analytics: the statistics against empyrical-reloaded on the same inputs, the rest by hand."""

from __future__ import annotations

import math

import empyrical
import numpy as np
import pandas as pd
import pytest

from stockyard.analytics import portfolio

TOLERANCE = 1e-6
DATES = pd.bdate_range("2022-01-03", periods=600)


def close(value: float) -> object:
    return pytest.approx(value, abs=TOLERANCE)


@pytest.fixture(params=[37, 250, 600], ids=lambda n: f"{n}_days")
def returns_pair(request) -> tuple[pd.Series, pd.Series]:
    """Fat-tailed daily returns of a portfolio and a benchmark it loads on (beta about 1.2)."""
    rng = np.random.default_rng(request.param)
    days = DATES[: request.param]
    benchmark = rng.standard_t(4, len(days)) * 0.008 + 0.0003
    returns = 1.2 * benchmark + rng.normal(0.0001, 0.006, len(days))
    return pd.Series(returns, index=days), pd.Series(benchmark, index=days)


@pytest.mark.parametrize("risk_free_rate", [0.0, 0.04])
def test_return_and_risk_statistics_match_empyrical(returns_pair, risk_free_rate):
    returns, benchmark = returns_pair
    daily_rate = (1 + risk_free_rate) ** (1 / 252) - 1
    assert portfolio.daily_risk_free_rate(risk_free_rate) == close(daily_rate)

    assert portfolio.cumulative_returns(returns).to_numpy() == pytest.approx(
        empyrical.cum_returns(returns).to_numpy(), abs=TOLERANCE
    )
    assert portfolio.total_return(returns) == close(empyrical.cum_returns_final(returns))
    assert portfolio.annual_return(returns) == close(empyrical.annual_return(returns))
    assert portfolio.annual_volatility(returns) == close(empyrical.annual_volatility(returns))
    assert portfolio.sharpe_ratio(returns, risk_free_rate=risk_free_rate) == close(
        empyrical.sharpe_ratio(returns, risk_free=daily_rate)
    )
    assert portfolio.sortino_ratio(returns, risk_free_rate=risk_free_rate) == close(
        empyrical.sortino_ratio(returns, required_return=daily_rate)
    )
    assert portfolio.calmar_ratio(returns) == close(empyrical.calmar_ratio(returns))
    expected_alpha, expected_beta = empyrical.alpha_beta(returns, benchmark, risk_free=daily_rate)
    fit = portfolio.alpha_beta(returns, benchmark, risk_free_rate=risk_free_rate)
    assert (fit.alpha, fit.beta) == (close(expected_alpha), close(expected_beta))
    assert portfolio.value_at_risk(returns) == close(empyrical.value_at_risk(returns, cutoff=0.05))
    assert portfolio.conditional_value_at_risk(returns) == close(
        empyrical.conditional_value_at_risk(returns, cutoff=0.05)
    )
    assert portfolio.value_at_risk(returns, level=0.99) == close(
        empyrical.value_at_risk(returns, cutoff=0.01)
    )


def test_returns_and_drawdown_of_a_value_history_match_empyrical(returns_pair):
    returns, _ = returns_pair
    # The value before the first return is dated the business day before it.
    values = pd.Series(
        1_000 * np.cumprod(np.r_[1.0, 1.0 + returns.to_numpy()]),
        index=returns.index.insert(0, returns.index[0] - pd.offsets.BDay()),
    )
    assert portfolio.daily_returns(values).to_numpy() == pytest.approx(
        empyrical.simple_returns(values).to_numpy(), abs=TOLERANCE
    )
    assert portfolio.max_drawdown(values).depth == close(empyrical.max_drawdown(returns))


def test_drawdown_dates():
    values = pd.Series([100.0, 110, 110, 99, 88, 95, 110, 120], index=DATES[:8])
    drawdown = portfolio.max_drawdown(values)
    # The fall starts from the last day at the peak and ends back at its value.
    assert drawdown == portfolio.Drawdown(88 / 110 - 1, DATES[2], DATES[4], DATES[6])

    not_recovered = portfolio.max_drawdown(values.iloc[:6])
    assert (not_recovered.depth, not_recovered.recovery_date) == (close(-0.2), None)

    rising = portfolio.max_drawdown(pd.Series([1.0, 2.0, 3.0], index=DATES[:3]))
    assert rising == portfolio.Drawdown(0.0, DATES[0], DATES[0], None)


def test_undefined_ratios_are_nan():
    flat = pd.Series([0.001] * 10, index=DATES[:10])
    assert math.isnan(portfolio.sharpe_ratio(flat, risk_free_rate=0.0))
    assert math.isnan(portfolio.sortino_ratio(flat))
    assert math.isnan(portfolio.calmar_ratio(flat))


def test_correlation_matrix():
    rng = np.random.default_rng(3)
    returns = pd.DataFrame(rng.normal(0, 0.01, (50, 3)), index=DATES[:50], columns=["A", "B", "C"])
    expected = np.corrcoef(returns.to_numpy(), rowvar=False)
    assert portfolio.correlation_matrix(returns).to_numpy() == pytest.approx(expected, abs=TOLERANCE)


# --- value history ---------------------------------------------------------------------------------------

PRICES = pd.DataFrame(
    {
        "AAA": [10.0, 11.0, 12.0, 12.0, 13.0],
        "BBB": [20.0, 19.0, np.nan, 22.0, 21.0],  # no close on day 2: the last one is carried
        "CCC": [5.0, 5.0, 5.0, 5.0, 5.0],
    },
    index=DATES[:5],
)
TRANSACTIONS = pd.DataFrame(
    {
        "date": [DATES[1], DATES[1], DATES[3], DATES[4]],
        "symbol": ["AAA", "BBB", "AAA", "AAA"],
        "side": ["buy", "buy", "sell", "Buy"],
        "quantity": [10.0, 5.0, 4.0, 1.0],
        "price": [11.0, 19.5, 12.5, 13.0],
    }
)


def test_value_history_by_hand():
    history = portfolio.value_history(TRANSACTIONS, PRICES, initial_cash=500.0)
    assert list(history.index) == list(DATES[1:5])
    # Day 1 buys 10 AAA at 11 and 5 BBB at 19.5; day 3 sells 4 AAA at 12.5; day 4 buys 1 AAA at 13.
    cash = [500 - 110 - 97.5] * 2 + [500 - 110 - 97.5 + 50] + [500 - 110 - 97.5 + 50 - 13]
    holdings = [10 * 11 + 5 * 19, 10 * 12 + 5 * 19, 6 * 12 + 5 * 22, 7 * 13 + 5 * 21]
    assert history["cash"].tolist() == pytest.approx(cash)
    assert history["holdings_value"].tolist() == pytest.approx(holdings)
    assert history["total_value"].tolist() == pytest.approx(
        [c + h for c, h in zip(cash, holdings, strict=True)]
    )

    positions = portfolio.position_history(TRANSACTIONS, PRICES)
    assert positions["AAA"].tolist() == [10, 10, 6, 7]
    assert positions["BBB"].tolist() == [5, 5, 5, 5]


def test_weights_sector_exposure_and_concentration():
    values = portfolio.holding_values(TRANSACTIONS, PRICES).iloc[-1]  # AAA 91, BBB 105
    weights = portfolio.portfolio_weights(pd.concat([values, pd.Series({"CCC": 0.0, "DDD": 54.0})]))
    assert weights.to_dict() == pytest.approx({"AAA": 91 / 250, "BBB": 105 / 250, "DDD": 54 / 250})

    exposure = portfolio.sector_exposure(weights, {"AAA": "Tech", "BBB": "Energy", "DDD": "Tech", "EEE": "X"})
    assert exposure.to_dict() == pytest.approx({"Tech": 145 / 250, "Energy": 105 / 250})
    assert list(exposure.index) == ["Tech", "Energy"]

    figures = portfolio.concentration(weights, top_n=2)
    herfindahl = (91**2 + 105**2 + 54**2) / 250**2
    assert figures.herfindahl == close(herfindahl)
    assert figures.effective_holdings == close(1 / herfindahl)
    assert figures.top_n_weight == close((105 + 91) / 250)


# --- bad input -------------------------------------------------------------------------------------------


def _transactions(**changes: list[object]) -> pd.DataFrame:
    return TRANSACTIONS.assign(**changes)


@pytest.mark.parametrize(
    ("transactions", "initial_cash", "message"),
    [
        (TRANSACTIONS.iloc[0:0], 500.0, "transactions: no rows"),
        (TRANSACTIONS.drop(columns="side"), 500.0, "transactions: missing column\\(s\\) side"),
        (
            _transactions(symbol=["AAA", "ZZZ", "AAA", "QQQ"]),
            500.0,
            "unknown symbols in transactions.*QQQ, ZZZ",
        ),
        (_transactions(date=[DATES[1], DATES[1], DATES[3], pd.Timestamp("2030-01-01")]), 500.0, "2030-01-01"),
        (
            _transactions(side=["buy", "buy", "short", "buy"]),
            500.0,
            "side must be 'buy' or 'sell'; got short",
        ),
        (_transactions(quantity=[10.0, -5.0, 4.0, 1.0]), 500.0, "quantity must be > 0"),
        (_transactions(price=[11.0, np.nan, 12.5, 13.0]), 500.0, "price must be finite"),
        (_transactions(quantity=[10.0, 5.0, 11.0, 1.0]), 500.0, "sell more AAA than held.*-1 shares"),
        (TRANSACTIONS, 200.0, "cash would be -7.50 on 2022-01-04"),
        (TRANSACTIONS, -1.0, "initial_cash must be"),
    ],
)
def test_bad_transactions_are_named(transactions, initial_cash, message):
    with pytest.raises(ValueError, match=message):
        portfolio.value_history(transactions, PRICES, initial_cash=initial_cash)


def test_holding_without_any_close_is_an_error():
    prices = PRICES.assign(CCC=[np.nan, np.nan, 5.0, 5.0, 5.0])
    buy = pd.DataFrame(
        {"date": [DATES[1]], "symbol": ["CCC"], "side": ["buy"], "quantity": [1], "price": [5.0]}
    )
    with pytest.raises(ValueError, match="CCC is held on 2022-01-04 but has no close"):
        portfolio.value_history(buy, prices, initial_cash=10.0)


def test_bad_returns_are_named():
    returns = pd.Series([0.01, -0.02, 0.005], index=DATES[:3])
    with pytest.raises(ValueError, match="returns need at least 1 value"):
        portfolio.annual_return(returns.iloc[0:0])
    with pytest.raises(ValueError, match="need at least 2"):
        portfolio.sharpe_ratio(returns.iloc[:1])
    with pytest.raises(ValueError, match="NaN or infinite on 2022-01-04"):
        portfolio.annual_volatility(returns.where(returns > -0.01))
    with pytest.raises(ValueError, match="not aligned: 1 date.* only in the first \\(2022-01-05\\)"):
        portfolio.alpha_beta(returns, returns.iloc[:2])
    with pytest.raises(ValueError, match="unique dates in increasing order"):
        portfolio.total_return(returns.iloc[::-1])
    with pytest.raises(ValueError, match="level must be between 0 and 1"):
        portfolio.value_at_risk(returns, level=95)
    with pytest.raises(ValueError, match="values must be positive"):
        portfolio.max_drawdown(pd.Series([1.0, 0.0], index=DATES[:2]))


def test_bad_weights_are_named():
    with pytest.raises(ValueError, match="must sum to 1, not 0.8"):
        portfolio.concentration(pd.Series({"A": 0.5, "B": 0.3}))
    with pytest.raises(ValueError, match="symbols without a sector: B"):
        portfolio.sector_exposure(pd.Series({"A": 0.5, "B": 0.5}), {"A": "Tech"})
    with pytest.raises(ValueError, match="top_n must be at least 1"):
        portfolio.concentration(pd.Series({"A": 1.0}), top_n=0)
    with pytest.raises(ValueError, match="all zero"):
        portfolio.portfolio_weights(pd.Series({"A": 0.0}))
