"""A portfolio's analytics from its ledger and the market's closes, through stockyard.analytics: the value
history (stockyard.analytics.ledger, time-weighted returns), the return and risk statistics and the figures
on today's holdings (stockyard.analytics.portfolio)."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd

from serving.account_schemas import (
    Concentration,
    DrawdownOut,
    PortfolioAnalytics,
    Statistics,
    ValuePoint,
)
from stockyard.analytics import portfolio as stats
from stockyard.analytics.ledger import Entry, Splits, ValueHistory, split_factors, value_history

TOP_HOLDINGS = 5


def analytics(
    entries: list[Entry],
    closes: pd.DataFrame,
    splits: Splits,
    market: pd.Series,
    sectors: dict[str, str],
    *,
    as_of: date | None,
    data_source: str,
    portfolio_id: int,
    version: int,
) -> PortfolioAnalytics:
    empty = PortfolioAnalytics(
        as_of=as_of,
        data_source=data_source,
        portfolio_id=portfolio_id,
        version=version,
        value_history=[],
        statistics=None,
        correlation=None,
        sector_exposure={},
        concentration=None,
    )
    if not entries or closes.empty:
        return empty
    history = value_history(entries, closes, splits)
    returns = history.time_weighted_returns()
    growth = stats.cumulative_returns(returns) if len(returns) else pd.Series(dtype="float64")
    points = [
        ValuePoint(
            date=day.date(),
            holdings_value=row.holdings_value,
            cash=row.cash,
            total_value=row.total_value,
            flow=row.flow,
            cumulative_return=float(growth.get(day, 0.0)),
        )
        for day, row in zip(
            pd.DatetimeIndex(history.frame.index), history.frame.itertuples(index=False), strict=True
        )
    ]
    latest = (
        history.holding_values.iloc[-1] if len(history.holding_values.columns) else pd.Series(dtype="float64")
    )
    held = latest[latest > 0]
    weights = stats.portfolio_weights(held) if len(held) else None
    return empty.model_copy(
        update={
            "value_history": points,
            "statistics": _statistics(returns, market),
            "correlation": _correlation(history, closes, splits, list(held.index)),
            "sector_exposure": (
                {str(k): float(v) for k, v in stats.sector_exposure(weights, sectors).items()}
                if weights is not None
                else {}
            ),
            "concentration": (
                Concentration(**vars(stats.concentration(weights, top_n=TOP_HOLDINGS)))
                if weights is not None
                else None
            ),
        }
    )


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _statistics(returns: pd.Series, market: pd.Series) -> Statistics | None:
    if len(returns) < 2:
        return None
    wealth = pd.concat(
        [pd.Series([1.0], index=[returns.index[0] - pd.Timedelta(days=1)]), (1.0 + returns).cumprod()]
    )
    drawdown = stats.max_drawdown(wealth)
    common = returns.index.intersection(market.index)
    beta = alpha = None
    if len(common) >= 2:
        relation = stats.alpha_beta(returns.loc[common], market.loc[common])
        beta, alpha = _number(relation.beta), _number(relation.alpha)
    return Statistics(
        days=len(returns),
        total_return=stats.total_return(returns),
        annual_return=stats.annual_return(returns),
        annual_volatility=_number(stats.annual_volatility(returns)),
        sharpe=_number(stats.sharpe_ratio(returns)),
        sortino=_number(stats.sortino_ratio(returns)),
        max_drawdown=DrawdownOut(
            depth=drawdown.depth,
            peak_date=max(drawdown.peak_date, returns.index[0]).date(),
            trough_date=max(drawdown.trough_date, returns.index[0]).date(),
            recovery_date=drawdown.recovery_date.date() if drawdown.recovery_date is not None else None,
        ),
        beta=beta,
        alpha=alpha,
        value_at_risk_95=stats.value_at_risk(returns),
        conditional_value_at_risk_95=stats.conditional_value_at_risk(returns),
    )


def _correlation(
    history: ValueHistory, closes: pd.DataFrame, splits: Splits, held: list[str]
) -> dict[str, dict[str, float | None]] | None:
    if len(held) < 2:
        return None
    dates = pd.DatetimeIndex(history.frame.index)
    # Closes as traded drop on a split's ex-date: times the split factors, their returns are the holdings'.
    window = closes.loc[dates, held] * split_factors(dates, held, splits)
    if len(window) < 3:
        return None
    matrix = stats.correlation_matrix(stats.asset_returns(window))
    return {
        str(row): {str(column): _number(float(value)) for column, value in values.items()}
        for row, values in matrix.iterrows()
    }
