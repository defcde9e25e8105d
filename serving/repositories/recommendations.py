"""Reads of products.recommendations, joined to the stocks' names and sectors in the same statement."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Select, func, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from serving.schemas import Action, Recommendation
from serving.tables import dim_stocks, recommendations

_COLUMNS = (
    recommendations.c.date,
    recommendations.c.symbol,
    dim_stocks.c.company_name,
    dim_stocks.c.sector,
    recommendations.c.rank,
    recommendations.c.score,
    recommendations.c.percentile,
    recommendations.c.expected_excess_return,
    recommendations.c.confidence,
    recommendations.c.action,
    recommendations.c.top_contributions,
    recommendations.c.model_name,
    recommendations.c.model_version,
    recommendations.c.data_date,
)
_WITH_STOCKS = recommendations.outerjoin(dim_stocks, dim_stocks.c.symbol == recommendations.c.symbol)


def recommendation_from(row: RowMapping) -> Recommendation:
    return Recommendation.model_validate({column.name: row[column.name] for column in _COLUMNS})


def ranked_statement(
    *, day: date, sector: str | None, action: Action | None, limit: int
) -> Select[tuple[object, ...]]:
    """The date's best `limit` (by rank) among those matching the filters, with how many match in all."""
    statement = (
        select(*_COLUMNS, func.count().over().label("total"))
        .select_from(_WITH_STOCKS)
        .where(recommendations.c.date == day)
    )
    if sector is not None:
        statement = statement.where(dim_stocks.c.sector == sector)
    if action is not None:
        statement = statement.where(recommendations.c.action == action.value)
    return statement.order_by(recommendations.c.rank).limit(limit)


async def ranked(
    conn: AsyncConnection, *, day: date, sector: str | None, action: Action | None, limit: int
) -> tuple[int, list[Recommendation]]:
    rows = (
        await conn.execute(ranked_statement(day=day, sector=sector, action=action, limit=limit))
    ).mappings()
    items = [(row["total"], recommendation_from(row)) for row in rows]
    return (items[0][0] if items else 0), [item for _, item in items]


def history_statement(
    *, symbol: str, start: date | None, end: date | None, limit: int
) -> Select[tuple[object, ...]]:
    statement = select(*_COLUMNS).select_from(_WITH_STOCKS).where(recommendations.c.symbol == symbol)
    if start is not None:
        statement = statement.where(recommendations.c.date >= start)
    if end is not None:
        statement = statement.where(recommendations.c.date <= end)
    return statement.order_by(recommendations.c.date.desc()).limit(limit)


async def history(
    conn: AsyncConnection, *, symbol: str, start: date | None, end: date | None, limit: int
) -> list[Recommendation]:
    rows = (
        await conn.execute(history_statement(symbol=symbol, start=start, end=end, limit=limit))
    ).mappings()
    return [recommendation_from(row) for row in rows]


def latest_for_symbol_statement(symbol: str) -> Select[tuple[object, ...]]:
    return history_statement(symbol=symbol, start=None, end=None, limit=1)


async def has_date(conn: AsyncConnection, *, day: date) -> bool:
    statement = select(recommendations.c.date).where(recommendations.c.date == day).limit(1)
    return (await conn.scalar(statement)) is not None
