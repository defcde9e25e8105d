"""The parts of a stock's analysis, one statement each, so they can run concurrently on their own connections.

indicators: the latest price with the features of that date; model: the latest recommendation with the
backtest of the model version that made it and the stock's holdings in it; forecast: the latest forecast.
"""

from __future__ import annotations

from sqlalchemy import Select, and_, func, literal_column, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from serving.repositories.models import BACKTEST_COLUMNS, backtest_from, latest_backtest
from serving.repositories.recommendations import latest_for_symbol_statement, recommendation_from
from serving.repositories.stocks import LATEST_PRICE_COLUMNS
from serving.schemas import (
    BacktestContext,
    Forecast,
    ForecastPoint,
    Holding,
    Indicators,
    LatestPrice,
    Recommendation,
)
from serving.tables import (
    INDICATOR_COLUMNS,
    backtest_positions,
    fct_latest_prices,
    fct_stock_features,
    forecasts,
)


def indicators_statement(symbol: str) -> Select[tuple[object, ...]]:
    features = fct_stock_features
    return (
        select(
            *LATEST_PRICE_COLUMNS,
            features.c.date.label("features_date"),
            *(features.c[name].label(f"f_{name}") for name in INDICATOR_COLUMNS),
        )
        .select_from(
            fct_latest_prices.outerjoin(
                features,
                and_(
                    features.c.symbol == fct_latest_prices.c.symbol,
                    features.c.date == fct_latest_prices.c.date,
                ),
            )
        )
        .where(fct_latest_prices.c.symbol == symbol)
    )


async def indicators(conn: AsyncConnection, *, symbol: str) -> tuple[LatestPrice | None, Indicators | None]:
    row = (await conn.execute(indicators_statement(symbol))).mappings().one_or_none()
    if row is None:
        return None, None
    price = LatestPrice.model_validate({column.name: row[column.name] for column in LATEST_PRICE_COLUMNS})
    if row["features_date"] is None:
        return price, None
    values = {name: row[f"f_{name}"] for name in INDICATOR_COLUMNS}
    return price, Indicators(date=row["features_date"], **values)


def model_statement(symbol: str) -> Select[tuple[object, ...]]:
    recommendation = latest_for_symbol_statement(symbol).lateral("recommendation")
    backtest = latest_backtest(recommendation.c.model_name, recommendation.c.model_version).lateral(
        "backtest"
    )
    holdings = (
        select(
            func.jsonb_agg(
                func.jsonb_build_object(
                    "rebalance_date",
                    backtest_positions.c.rebalance_date,
                    "weight",
                    backtest_positions.c.weight,
                )
            ).label("holdings")
        )
        .where(
            backtest_positions.c.symbol == symbol, backtest_positions.c.backtest_id == backtest.c.backtest_id
        )
        .lateral("holdings")
    )
    return select(
        *recommendation.c,
        *(backtest.c[column.name].label(f"bt_{column.name}") for column in BACKTEST_COLUMNS),
        holdings.c.holdings,
    ).select_from(
        select(literal_column("1").label("one"))
        .subquery("one")
        .outerjoin(recommendation, true())
        .outerjoin(backtest, true())
        .outerjoin(holdings, true())
    )


async def model_outputs(
    conn: AsyncConnection, *, symbol: str
) -> tuple[Recommendation | None, BacktestContext | None]:
    row = (await conn.execute(model_statement(symbol))).mappings().one()
    if row["symbol"] is None:
        return None, None
    recommendation = recommendation_from(row)
    backtest = backtest_from(row, prefix="bt_")
    if backtest is None:
        return recommendation, None
    holdings = sorted(
        (Holding.model_validate(item) for item in row["holdings"] or []), key=lambda item: item.rebalance_date
    )
    return recommendation, BacktestContext(backtest=backtest, holdings=holdings)


def forecast_statement(symbol: str) -> Select[tuple[object, ...]]:
    latest = select(func.max(forecasts.c.data_date)).where(forecasts.c.symbol == symbol).scalar_subquery()
    return (
        select(forecasts)
        .where(forecasts.c.symbol == symbol, forecasts.c.data_date == latest)
        .order_by(forecasts.c.step)
    )


async def forecast(conn: AsyncConnection, *, symbol: str) -> Forecast | None:
    rows = list((await conn.execute(forecast_statement(symbol))).mappings())
    if not rows:
        return None
    first = rows[0]
    return Forecast(
        model_name=first["model_name"],
        model_version=first["model_version"],
        data_date=first["data_date"],
        interval_width=first["interval_width"],
        points=[
            ForecastPoint(
                date=row["target_date"],
                step=row["step"],
                predicted_close=row["predicted_close"],
                lower_close=row["lower_close"],
                upper_close=row["upper_close"],
            )
            for row in rows
        ],
    )
