"""Portfolio analytics as plain functions: value history from transactions, return and risk statistics, and
figures on the holdings (weights, sector exposure, concentration).

Conventions, the same as empyrical's (tests/analytics/test_portfolio.py checks them against it to 1e-6):

- Returns are simple daily returns, r_t = V_t / V_(t-1) - 1, in a Series indexed by unique, increasing dates.
  A NaN is an error, never read as a zero.
- A year has 252 trading days.
- `risk_free_rate` is an annual rate (0.04 for 4%), turned into the daily rate (1 + rate) ** (1 / 252) - 1
  that is subtracted from each daily return. It defaults to 0.
- Annualized return: the compound annual growth rate, (1 + total return) ** (252 / number of days) - 1.
- Annualized volatility: the sample standard deviation (ddof 1) of the daily returns times sqrt(252).
- Sharpe ratio: the mean daily excess return over its sample standard deviation, times sqrt(252).
- Sortino ratio: the mean daily excess return times 252 over the annualized downside deviation
  sqrt(mean(min(r - rf, 0) ** 2)) * sqrt(252), the mean taken over all days, not only the losing ones.
- A ratio whose denominator is zero is NaN (undefined); empyrical gives an infinity there.
- Maximum drawdown, VaR and CVaR are returns, so a loss is negative: a maximum drawdown of -0.2 is a 20% fall.
- Historical VaR at 95%: the 5th percentile of the daily returns, linearly interpolated (numpy's default).
  CVaR at 95%: the mean of the floor((n - 1) * 0.05) + 1 lowest daily returns (empyrical's rule: the worst
  day is always in the tail).
- Beta: cov(r, b) / var(b) (a constant risk-free rate cancels). Alpha is annualized by compounding:
  (1 + mean(r - rf - beta * (b - rf))) ** 252 - 1.

Value history from transactions is self-financing. The portfolio holds `initial_cash` on the first transaction
date; a buy pays quantity x price out of cash and a sale pays it in, at the transaction's own price; holdings
are valued at each date's close, the last close carried over a day without one. The history starts at the
close of the first transaction date, so the gap between that day's trade prices and its close is in the first
value, not in a return. Cash earns nothing and may
not go negative (no borrowing), nor may a holding (no short sales): either is an error naming the date. With
no deposits or withdrawals, the daily returns of the total value are the portfolio's returns. Quantities,
transaction prices and the panel must be in the same units: this module applies no splits or dividends
(with split-adjusted closes, give split-adjusted quantities and prices).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stockyard.analytics._inputs import (
    check_aligned,
    check_dates,
    check_positive_values,
    check_price_panel,
    check_returns,
    check_symbols_known,
    listing,
    require_columns,
    require_finite,
)

TRADING_DAYS_PER_YEAR = 252
TRANSACTION_COLUMNS = ("date", "symbol", "side", "quantity", "price")
SIDES = {"buy": 1.0, "sell": -1.0}
# Share counts and cash below this are float rounding (0.1 + 0.2 - 0.3), not a real short or overdraft.
ROUNDING_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Drawdown:
    """The deepest fall from a running peak. `depth` is a return (-0.2 for 20%); `recovery_date` is the first
    date back at the peak's value, None if it never got back. Without any fall, depth is 0 and the peak and
    trough are the first date."""

    depth: float
    peak_date: pd.Timestamp
    trough_date: pd.Timestamp
    recovery_date: pd.Timestamp | None


@dataclass(frozen=True)
class AlphaBeta:
    alpha: float
    beta: float


@dataclass(frozen=True)
class Concentration:
    """Herfindahl index (sum of squared weights: 1 for a single holding, 1/n for n equal ones), its inverse
    (the effective number of holdings) and the summed weight of the `top_n` largest holdings."""

    herfindahl: float
    effective_holdings: float
    top_n: int
    top_n_weight: float


# --- value history ------------------------------------------------------------------------------------------


def position_history(transactions: pd.DataFrame, prices: pd.DataFrame) -> pd.DataFrame:
    """Shares held of each traded symbol after each date's transactions, from the first transaction date to
    the last date of the panel (dates x symbols).

    `transactions` has columns date, symbol, side ('buy' or 'sell'), quantity (> 0) and price (> 0), one row
    per trade; `prices` is the close panel (dates x symbols). Every transaction date must be a date of the
    panel and every symbol a column of it."""
    trades = _trades(transactions, prices)
    return _positions(trades, prices)


def holding_values(transactions: pd.DataFrame, prices: pd.DataFrame) -> pd.DataFrame:
    """Market value of each holding at each date's close (dates x symbols): shares x close."""
    trades = _trades(transactions, prices)
    return _holding_values(_positions(trades, prices), prices)


def value_history(transactions: pd.DataFrame, prices: pd.DataFrame, *, initial_cash: float) -> pd.DataFrame:
    """Columns holdings_value, cash and total_value per date, from the first transaction date to the panel's
    last date. See the module docstring for how cash is handled."""
    if not math.isfinite(initial_cash) or initial_cash < 0:
        raise ValueError(f"initial_cash must be a finite amount >= 0, got {initial_cash}")
    trades = _trades(transactions, prices)
    positions = _positions(trades, prices)
    holdings = _holding_values(positions, prices).sum(axis=1)
    cash_flows = trades.groupby("date")["cash_flow"].sum().reindex(positions.index, fill_value=0.0)
    cash = initial_cash + cash_flows.cumsum()
    overdrawn = cash < -ROUNDING_TOLERANCE * max(initial_cash, 1.0)
    if overdrawn.any():
        day = cash.index[overdrawn.to_numpy()][0]
        raise ValueError(
            f"cash would be {cash[day]:,.2f} on {day.date()}: buys exceed initial_cash "
            f"({initial_cash:,.2f}) plus the proceeds of sales so far; pass a larger initial_cash"
        )
    history = pd.DataFrame({"holdings_value": holdings, "cash": cash.clip(lower=0.0)})
    history["total_value"] = history["holdings_value"] + history["cash"]
    history.index.name = "date"
    return history


def _trades(transactions: pd.DataFrame, prices: pd.DataFrame) -> pd.DataFrame:
    """Validated transactions as date, symbol, shares (sales negative) and cash_flow (buys negative)."""
    require_columns(transactions, TRANSACTION_COLUMNS, "transactions")
    check_price_panel(prices)
    dates = check_dates(transactions["date"], "transactions' date")
    sides = transactions["side"].astype("string").str.strip().str.lower()
    bad_sides = ~sides.isin(list(SIDES)).fillna(False)
    if bad_sides.any():
        bad_values = transactions["side"][bad_sides].unique()
        raise ValueError(f"transactions' side must be 'buy' or 'sell'; got {listing(bad_values)}")
    for column in ("quantity", "price"):
        require_finite(transactions[column], f"transactions' {column}")
        not_positive = transactions[column].astype("float64") <= 0
        if not_positive.any():
            rows = listing(transactions.index[not_positive])
            raise ValueError(f"transactions' {column} must be > 0; not on row(s) {rows}")
    check_symbols_known(transactions["symbol"], prices, "transactions")
    off_panel = ~dates.isin(prices.index)
    if off_panel.any():
        raise ValueError(
            "transaction dates must be dates of the price panel (trading days inside it); these are not: "
            f"{listing(sorted(dates[off_panel].unique()))}"
        )
    shares = transactions["quantity"].astype("float64") * sides.map(SIDES).astype("float64")
    return pd.DataFrame(
        {
            "date": dates,
            "symbol": transactions["symbol"],
            "shares": shares,
            "cash_flow": -shares * transactions["price"].astype("float64"),
        }
    )


def _positions(trades: pd.DataFrame, prices: pd.DataFrame) -> pd.DataFrame:
    dates = prices.index[prices.index >= trades["date"].min()]
    traded = trades.groupby(["date", "symbol"])["shares"].sum().unstack("symbol").fillna(0.0)
    positions = traded.reindex(dates, fill_value=0.0).cumsum()
    short = positions < -ROUNDING_TOLERANCE
    if short.to_numpy().any():
        row, column = _first_true(short)
        raise ValueError(
            f"transactions sell more {positions.columns[column]} than held: the position would be "
            f"{positions.to_numpy()[row, column]:g} shares on {positions.index[row].date()} "
            "(short sales are not supported)"
        )
    positions = positions.where(positions.abs() > ROUNDING_TOLERANCE, 0.0)
    positions.index.name, positions.columns.name = "date", "symbol"
    return positions


def _holding_values(positions: pd.DataFrame, prices: pd.DataFrame) -> pd.DataFrame:
    closes = prices[positions.columns].ffill().loc[positions.index]
    held = positions != 0
    unpriced = held & closes.isna()
    if unpriced.to_numpy().any():
        row, column = _first_true(unpriced)
        raise ValueError(
            f"{positions.columns[column]} is held on {positions.index[row].date()} but has no close on or "
            "before that date"
        )
    return (positions * closes).where(held, 0.0)


def _first_true(mask: pd.DataFrame) -> tuple[int, int]:
    """(row, column) of the earliest True cell of a dates x symbols mask."""
    rows, columns = np.nonzero(mask.to_numpy())
    return int(rows[0]), int(columns[0])


# --- returns ------------------------------------------------------------------------------------------------


def daily_returns(values: pd.Series) -> pd.Series:
    """Simple daily returns of a value history (from its second date on)."""
    check_positive_values(values, minimum=2)
    returns = values.astype("float64").pct_change().iloc[1:]
    returns.name = "return"
    return returns


def asset_returns(prices: pd.DataFrame) -> pd.DataFrame:
    """Daily returns of each symbol of a price panel; NaN where a close is missing on either day."""
    check_price_panel(prices)
    return prices.pct_change().iloc[1:]


def cumulative_returns(returns: pd.Series) -> pd.Series:
    """Compounded return from the start up to each date."""
    values = check_returns(returns)
    return pd.Series(np.cumprod(1.0 + values) - 1.0, index=returns.index, name="cumulative_return")


def total_return(returns: pd.Series) -> float:
    return float(np.prod(1.0 + check_returns(returns)) - 1.0)


def annual_return(returns: pd.Series) -> float:
    """Compound annual growth rate."""
    values = check_returns(returns)
    years = len(values) / TRADING_DAYS_PER_YEAR
    return float(np.prod(1.0 + values) ** (1.0 / years) - 1.0)


def annual_volatility(returns: pd.Series) -> float:
    values = check_returns(returns, minimum=2)
    return _sample_std(values) * math.sqrt(TRADING_DAYS_PER_YEAR)


def sharpe_ratio(returns: pd.Series, *, risk_free_rate: float = 0.0) -> float:
    excess = check_returns(returns, minimum=2) - daily_risk_free_rate(risk_free_rate)
    return _ratio(float(np.mean(excess)), _sample_std(excess)) * math.sqrt(TRADING_DAYS_PER_YEAR)


def sortino_ratio(returns: pd.Series, *, risk_free_rate: float = 0.0) -> float:
    excess = check_returns(returns, minimum=2) - daily_risk_free_rate(risk_free_rate)
    downside_deviation = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2)) * TRADING_DAYS_PER_YEAR)
    return _ratio(float(np.mean(excess)) * TRADING_DAYS_PER_YEAR, downside_deviation)


def max_drawdown(values: pd.Series) -> Drawdown:
    """The deepest fall of a value history (or an equity curve) from its running peak, with its dates. To use
    returns, pass the value history they compound to, starting from the value before the first return."""
    series = check_positive_values(values)
    running_peak = np.maximum.accumulate(series)
    drawdowns = series / running_peak - 1.0
    trough = int(np.argmin(drawdowns))
    depth = float(drawdowns[trough])
    dates = pd.DatetimeIndex(values.index)
    if depth == 0.0:
        return Drawdown(0.0, dates[0], dates[0], None)
    peak = int(np.flatnonzero(series[: trough + 1] == running_peak[trough])[-1])
    recovered = np.flatnonzero(series[trough + 1 :] >= series[peak])
    recovery = dates[trough + 1 + recovered[0]] if recovered.size else None
    return Drawdown(depth, dates[peak], dates[trough], recovery)


def calmar_ratio(returns: pd.Series) -> float:
    """Annualized return over the absolute maximum drawdown of the returns compounded from 1."""
    values = check_returns(returns)
    wealth = np.concatenate([[1.0], np.cumprod(1.0 + values)])
    depth = float(np.min(wealth / np.maximum.accumulate(wealth) - 1.0))
    return _ratio(annual_return(returns), -depth)


def alpha_beta(returns: pd.Series, benchmark_returns: pd.Series, *, risk_free_rate: float = 0.0) -> AlphaBeta:
    """Beta against the benchmark and the annualized alpha (see the module docstring); both Series must have
    the same dates."""
    values = check_returns(returns, minimum=2)
    benchmark = check_returns(benchmark_returns, "benchmark returns", minimum=2)
    check_aligned(returns, benchmark_returns, "returns and benchmark returns")
    benchmark_deviation = benchmark - benchmark.mean()
    beta = _ratio(float(np.mean(benchmark_deviation * values)), float(np.mean(benchmark_deviation**2)))
    daily_rate = daily_risk_free_rate(risk_free_rate)
    mean_alpha = float(np.mean((values - daily_rate) - beta * (benchmark - daily_rate)))
    return AlphaBeta(alpha=(1.0 + mean_alpha) ** TRADING_DAYS_PER_YEAR - 1.0, beta=beta)


def value_at_risk(returns: pd.Series, *, level: float = 0.95) -> float:
    """Historical VaR: the (1 - level) quantile of daily returns, negative for a loss."""
    values = check_returns(returns)
    return float(np.percentile(values, 100.0 * _tail_probability(level)))


def conditional_value_at_risk(returns: pd.Series, *, level: float = 0.95) -> float:
    """Historical CVaR (expected shortfall): the mean of the floor((n - 1) * (1 - level)) + 1 worst returns
    (the worst day always included)."""
    values = check_returns(returns)
    last_in_tail = int((len(values) - 1) * _tail_probability(level))
    return float(np.mean(np.partition(values, last_in_tail)[: last_in_tail + 1]))


def correlation_matrix(returns: pd.DataFrame, *, min_periods: int = 2) -> pd.DataFrame:
    """Pearson correlations of the columns' daily returns over the days both have (NaN for a pair with fewer
    than `min_periods` common days)."""
    if not isinstance(returns, pd.DataFrame) or returns.shape[1] < 2 or len(returns) < 2:
        raise ValueError("returns must be a pandas DataFrame with at least two dates and two symbols")
    if min_periods < 2:
        raise ValueError(f"min_periods must be at least 2, got {min_periods}")
    return returns.astype("float64").corr(min_periods=min_periods)


def daily_risk_free_rate(annual_rate: float) -> float:
    if not math.isfinite(annual_rate) or annual_rate <= -1:
        raise ValueError(f"risk_free_rate must be a finite annual rate above -1, got {annual_rate}")
    return float((1.0 + annual_rate) ** (1.0 / TRADING_DAYS_PER_YEAR) - 1.0)


def _tail_probability(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1 (0.95 for 95%), got {level}")
    # Rounded so that level 0.95 gives exactly the tail 0.05, not 0.050000000000000044.
    return round(1.0 - level, 12)


def _sample_std(values: np.ndarray) -> float:
    # Equal values can leave a residue of about 1e-19 around their floating-point mean: their spread is 0.
    return 0.0 if np.ptp(values) == 0 else float(np.std(values, ddof=1))


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator != 0.0 else math.nan


# --- holdings -----------------------------------------------------------------------------------------------


def portfolio_weights(values: pd.Series) -> pd.Series:
    """Each holding's share of the holdings' total value (cash excluded), for the non-zero holdings; `values`
    is, e.g., a row of `holding_values`."""
    if not isinstance(values, pd.Series) or values.empty:
        raise ValueError("holding values must be a non-empty pandas Series indexed by symbol")
    require_finite(values, "holding values")
    if (values < 0).any():
        raise ValueError(
            f"holding values must be >= 0 (no short positions); not for {listing(values.index[values < 0])}"
        )
    held = values[values > 0].astype("float64")
    if held.empty:
        raise ValueError("holding values are all zero: there are no holdings to weigh")
    weights = held / held.sum()
    weights.name = "weight"
    return weights


def sector_exposure(weights: pd.Series, sectors: Mapping[str, str] | pd.Series) -> pd.Series:
    """Summed weight per sector, largest first; `sectors` maps each symbol to its sector."""
    _check_weights(weights)
    sector_of = (
        pd.Series(sectors, dtype="string") if isinstance(sectors, Mapping) else sectors.astype("string")
    )
    missing = weights.index.difference(sector_of.dropna().index)
    if len(missing):
        raise ValueError(f"symbols without a sector: {listing(missing)}")
    exposure = weights.groupby(sector_of.reindex(weights.index).to_numpy()).sum().sort_values(ascending=False)
    exposure.index.name, exposure.name = "sector", "weight"
    return exposure


def concentration(weights: pd.Series, *, top_n: int = 5) -> Concentration:
    _check_weights(weights)
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, got {top_n}")
    herfindahl = float((weights**2).sum())
    return Concentration(
        herfindahl=herfindahl,
        effective_holdings=1.0 / herfindahl,
        top_n=top_n,
        top_n_weight=float(weights.nlargest(top_n).sum()),
    )


def _check_weights(weights: pd.Series) -> None:
    if not isinstance(weights, pd.Series) or weights.empty:
        raise ValueError("weights must be a non-empty pandas Series indexed by symbol")
    require_finite(weights, "weights")
    if (weights < 0).any():
        raise ValueError(f"weights must be >= 0; not for {listing(weights.index[weights < 0])}")
    if not math.isclose(float(weights.sum()), 1.0, abs_tol=1e-9):
        raise ValueError(
            f"weights must sum to 1, not {float(weights.sum()):g}: normalize with portfolio_weights"
        )
