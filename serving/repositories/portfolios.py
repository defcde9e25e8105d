"""Portfolios and their transactions (app schema), and the market data their positions and analytics need,
each in one statement whatever the number of holdings."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from serving.repositories.prices import any_of
from serving.tables import dim_stocks, fct_corporate_actions, fct_daily_prices, fct_latest_prices
from stockyard.analytics.ledger import Entry, Splits
from stockyard.db.catalogue import portfolios, transactions

PORTFOLIO_COLUMNS = [
    portfolios.c[name] for name in ("portfolio_id", "name", "version", "created_at", "updated_at")
]
TRANSACTION_COLUMNS = [column for column in transactions.columns if column.name != "portfolio_id"]


async def list_portfolios(conn: AsyncConnection, user_id: int) -> list[dict[str, Any]]:
    statement = (
        select(*PORTFOLIO_COLUMNS).where(portfolios.c.user_id == user_id).order_by(portfolios.c.portfolio_id)
    )
    return [dict(row) for row in (await conn.execute(statement)).mappings()]


async def portfolio(
    conn: AsyncConnection, *, user_id: int, portfolio_id: int, lock: bool = False
) -> dict[str, Any] | None:
    """The user's portfolio (None when it is not the user's: other users' ids do not show); `lock` holds it
    until the transaction ends, so that changes of one portfolio are checked one after the other."""
    statement = select(*PORTFOLIO_COLUMNS).where(
        portfolios.c.portfolio_id == portfolio_id, portfolios.c.user_id == user_id
    )
    if lock:
        statement = statement.with_for_update()
    row = (await conn.execute(statement)).mappings().first()
    return dict(row) if row is not None else None


async def create_portfolio(conn: AsyncConnection, *, user_id: int, name: str) -> dict[str, Any]:
    statement = insert(portfolios).values(user_id=user_id, name=name).returning(*PORTFOLIO_COLUMNS)
    return dict((await conn.execute(statement)).mappings().one())


async def change_portfolio(conn: AsyncConnection, portfolio_id: int, **values: object) -> dict[str, Any]:
    """Applies `values` and bumps the version (the analytics' cache key)."""
    statement = (
        update(portfolios)
        .where(portfolios.c.portfolio_id == portfolio_id)
        .values(version=portfolios.c.version + 1, updated_at=func.now(), **values)
        .returning(*PORTFOLIO_COLUMNS)
    )
    return dict((await conn.execute(statement)).mappings().one())


async def delete_portfolio(conn: AsyncConnection, portfolio_id: int) -> None:
    await conn.execute(delete(portfolios).where(portfolios.c.portfolio_id == portfolio_id))


async def list_transactions(conn: AsyncConnection, portfolio_id: int) -> list[dict[str, Any]]:
    statement = (
        select(*TRANSACTION_COLUMNS)
        .where(transactions.c.portfolio_id == portfolio_id)
        .order_by(transactions.c.trade_date, transactions.c.transaction_id)
    )
    return [dict(row) for row in (await conn.execute(statement)).mappings()]


async def add_transactions(
    conn: AsyncConnection, portfolio_id: int, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One statement for any number of rows."""
    values = [{**row, "portfolio_id": portfolio_id} for row in rows]
    statement = insert(transactions).values(values).returning(*TRANSACTION_COLUMNS)
    return [dict(row) for row in (await conn.execute(statement)).mappings()]


async def delete_transaction(conn: AsyncConnection, *, portfolio_id: int, transaction_id: int) -> bool:
    statement = delete(transactions).where(
        transactions.c.portfolio_id == portfolio_id, transactions.c.transaction_id == transaction_id
    )
    return bool((await conn.execute(statement)).rowcount)


def entries(rows: list[dict[str, Any]]) -> list[Entry]:
    return [
        Entry(
            kind=row["kind"],
            trade_date=row["trade_date"],
            symbol=row["symbol"],
            quantity=row["quantity"],
            price=row["price"],
            amount=row["amount"],
            fees=row["fees"],
            reference=row.get("reference") or f"transaction {row.get('transaction_id')}",
        )
        for row in rows
    ]


async def splits(conn: AsyncConnection, symbols: list[str]) -> Splits:
    """The splits of each symbol that has any: (ex-date, new shares per old share), by ex-date."""
    if not symbols:
        # A ledger of cash alone.
        return {}
    statement = (
        select(
            fct_corporate_actions.c.symbol,
            fct_corporate_actions.c.ex_date,
            fct_corporate_actions.c.split_ratio,
        )
        .where(fct_corporate_actions.c.symbol == any_of(symbols), fct_corporate_actions.c.split_ratio != 1.0)
        .order_by(fct_corporate_actions.c.symbol, fct_corporate_actions.c.ex_date)
    )
    found: dict[str, list[tuple[date, float]]] = {}
    for row in await conn.execute(statement):
        found.setdefault(row.symbol, []).append((row.ex_date, row.split_ratio))
    return found


async def latest_closes(conn: AsyncConnection, symbols: list[str]) -> dict[str, tuple[date, float]]:
    """The latest close (as traded) of each symbol that has one."""
    statement = select(fct_latest_prices.c.symbol, fct_latest_prices.c.date, fct_latest_prices.c.close).where(
        fct_latest_prices.c.symbol == any_of(symbols)
    )
    return {row.symbol: (row.date, row.close) for row in await conn.execute(statement)}


async def close_panel(conn: AsyncConnection, symbols: list[str], *, start: date, end: date) -> pd.DataFrame:
    """Raw closes, dates x symbols, over [start, end] (the market's trading dates)."""
    statement = select(fct_daily_prices.c.date, fct_daily_prices.c.symbol, fct_daily_prices.c.close).where(
        fct_daily_prices.c.symbol == any_of(symbols), fct_daily_prices.c.date.between(start, end)
    )
    rows = (await conn.execute(statement)).all()
    frame = pd.DataFrame(rows, columns=["date", "symbol", "close"])
    panel = frame.pivot(index="date", columns="symbol", values="close").reindex(columns=symbols)
    panel.index = pd.DatetimeIndex(panel.index)
    return panel.sort_index()


async def market_returns(conn: AsyncConnection, *, start: date, end: date) -> pd.Series:
    """The equal-weight market's daily return (the mean of every symbol's), over [start, end]."""
    statement = (
        select(fct_daily_prices.c.date, func.avg(fct_daily_prices.c.return_1d).label("market"))
        .where(fct_daily_prices.c.date.between(start, end), fct_daily_prices.c.return_1d.is_not(None))
        .group_by(fct_daily_prices.c.date)
        .order_by(fct_daily_prices.c.date)
    )
    rows = (await conn.execute(statement)).all()
    return pd.Series(
        [row.market for row in rows], index=pd.DatetimeIndex([row.date for row in rows]), dtype="float64"
    )


async def sectors(conn: AsyncConnection, symbols: list[str]) -> dict[str, str]:
    statement = select(dim_stocks.c.symbol, dim_stocks.c.sector).where(dim_stocks.c.symbol == any_of(symbols))
    return {row.symbol: row.sector or "Unknown" for row in await conn.execute(statement)}
