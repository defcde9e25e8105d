"""Reads of the stock universe (marts.dim_stocks) with its latest prices and sector aggregates."""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import ColumnElement, Select, case, func, literal, or_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from serving.schemas import LatestPrice, Sector, Stock, StockMatch
from serving.tables import dim_stocks, fct_latest_prices, fct_sector_daily

STOCK_COLUMNS = (
    dim_stocks.c.symbol,
    dim_stocks.c.company_name,
    dim_stocks.c.sector,
    dim_stocks.c.industry,
    dim_stocks.c.market_cap,
    dim_stocks.c.currency,
    dim_stocks.c.exchange,
    dim_stocks.c.first_date,
    dim_stocks.c.last_date,
)
LATEST_PRICE_COLUMNS = (
    fct_latest_prices.c.date,
    fct_latest_prices.c.close,
    fct_latest_prices.c.adj_close,
    fct_latest_prices.c.volume,
    fct_latest_prices.c.change_1d,
    fct_latest_prices.c.return_1d,
)
# The expression the name search matches against (an expression index on it serves the search).
NAME_DOCUMENT = func.to_tsvector("simple", func.coalesce(dim_stocks.c.company_name, ""))


def stock_from(row: RowMapping) -> Stock:
    return Stock.model_validate({column.name: row[column.name] for column in STOCK_COLUMNS})


def _filters(
    *, sector: str | None, min_market_cap: float | None, max_market_cap: float | None
) -> list[ColumnElement[bool]]:
    conditions = []
    if sector is not None:
        conditions.append(dim_stocks.c.sector == sector)
    if min_market_cap is not None:
        conditions.append(dim_stocks.c.market_cap >= min_market_cap)
    if max_market_cap is not None:
        conditions.append(dim_stocks.c.market_cap <= max_market_cap)
    return conditions


async def list_stocks(
    conn: AsyncConnection,
    *,
    sector: str | None,
    min_market_cap: float | None,
    max_market_cap: float | None,
    limit: int,
    offset: int,
) -> tuple[int, list[Stock]]:
    """(stocks matching the filters in all, the page of them in symbol order)."""
    conditions = _filters(sector=sector, min_market_cap=min_market_cap, max_market_cap=max_market_cap)
    total = await conn.scalar(select(func.count()).select_from(dim_stocks).where(*conditions))
    page = select(*STOCK_COLUMNS).where(*conditions).order_by(dim_stocks.c.symbol).limit(limit).offset(offset)
    rows = (await conn.execute(page)).mappings()
    return int(total or 0), [stock_from(row) for row in rows]


def search_statement(query: str, *, limit: int) -> Select[tuple[object, ...]]:
    """Symbols equal to or starting with the query first, then names with words starting with its words."""
    symbol = query.strip().upper()
    # Prefix matching on each word of the name: 'alid app' finds 'Alida Apparel Co.'.
    words = re.findall(r"\w+", query.lower())
    prefix_query = " & ".join(f"{word}:*" for word in words)
    symbol_prefix = dim_stocks.c.symbol.startswith(symbol, autoescape=True)
    matches = [symbol_prefix]
    if prefix_query:
        matches.append(NAME_DOCUMENT.bool_op("@@")(func.to_tsquery("simple", prefix_query)))
    match = case(
        (dim_stocks.c.symbol == symbol, literal("symbol")),
        (symbol_prefix, literal("symbol_prefix")),
        else_=literal("name"),
    )
    order = case((dim_stocks.c.symbol == symbol, 0), (symbol_prefix, 1), else_=2)
    return (
        select(*STOCK_COLUMNS, match.label("match"))
        .where(or_(*matches))
        .order_by(order, dim_stocks.c.market_cap.desc().nulls_last(), dim_stocks.c.symbol)
        .limit(limit)
    )


async def search_stocks(conn: AsyncConnection, *, query: str, limit: int) -> list[StockMatch]:
    rows = (await conn.execute(search_statement(query, limit=limit))).mappings()
    return [StockMatch(**stock_from(row).model_dump(), match=row["match"]) for row in rows]


async def top_stocks(conn: AsyncConnection, *, sector: str | None, limit: int) -> list[Stock]:
    statement = select(*STOCK_COLUMNS).where(dim_stocks.c.market_cap.is_not(None))
    if sector is not None:
        statement = statement.where(dim_stocks.c.sector == sector)
    statement = statement.order_by(dim_stocks.c.market_cap.desc(), dim_stocks.c.symbol).limit(limit)
    return [stock_from(row) for row in (await conn.execute(statement)).mappings()]


async def stock_detail(conn: AsyncConnection, *, symbol: str) -> tuple[Stock, LatestPrice | None]:
    statement = (
        select(*STOCK_COLUMNS, *(column.label(f"latest_{column.name}") for column in LATEST_PRICE_COLUMNS))
        .select_from(
            dim_stocks.outerjoin(fct_latest_prices, fct_latest_prices.c.symbol == dim_stocks.c.symbol)
        )
        .where(dim_stocks.c.symbol == symbol)
    )
    row = (await conn.execute(statement)).mappings().one()
    latest = None
    if row["latest_date"] is not None:
        latest = LatestPrice.model_validate(
            {column.name: row[f"latest_{column.name}"] for column in LATEST_PRICE_COLUMNS}
        )
    return stock_from(row), latest


async def sectors_on(conn: AsyncConnection, *, day: date) -> list[Sector]:
    statement = (
        select(
            fct_sector_daily.c.sector,
            fct_sector_daily.c.symbols_count,
            fct_sector_daily.c.total_market_cap,
            fct_sector_daily.c.mean_return_1d,
            fct_sector_daily.c.advancers_share,
        )
        .where(fct_sector_daily.c.date == day)
        .order_by(fct_sector_daily.c.sector)
    )
    return [Sector.model_validate(dict(row)) for row in (await conn.execute(statement)).mappings()]
