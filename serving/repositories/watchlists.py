"""Watchlists, screens, alerts and hits (app schema), and what the personalized recommendations read: every
read is of one user's rows (another user's id finds nothing), each in one statement."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Select, Text, case, cast, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by, array
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncConnection

from serving.repositories.recommendations import ranked_statement, recommendation_from
from serving.schemas import Recommendation
from serving.tables import dim_stocks, fct_corporate_actions, fct_latest_prices
from stockyard.analytics.ledger import TOLERANCE
from stockyard.db.catalogue import (
    alerts,
    hits,
    portfolios,
    screens,
    transactions,
    watchlist_items,
    watchlists,
)

# --- watchlists ---------------------------------------------------------------------------------------------

_SYMBOLS = (
    func.coalesce(
        select(
            func.array_agg(
                aggregate_order_by(
                    watchlist_items.c.symbol, watchlist_items.c.added_at, watchlist_items.c.symbol
                )
            )
        )
        .where(watchlist_items.c.watchlist_id == watchlists.c.watchlist_id)
        .scalar_subquery(),
        cast(array([]), ARRAY(Text)),
    )
).label("symbols")
_WATCHLIST = (watchlists.c.watchlist_id, watchlists.c.name, _SYMBOLS, watchlists.c.created_at)


def _watchlists_of(user_id: int) -> Select[Any]:
    return select(*_WATCHLIST).where(watchlists.c.user_id == user_id)


async def list_watchlists(conn: AsyncConnection, user_id: int) -> list[dict[str, Any]]:
    statement = _watchlists_of(user_id).order_by(watchlists.c.watchlist_id)
    return [dict(row) for row in (await conn.execute(statement)).mappings()]


async def watchlist(
    conn: AsyncConnection, *, user_id: int, watchlist_id: int, lock: bool = False
) -> dict[str, Any] | None:
    """The user's watchlist, None when it is not the user's; `lock` holds it until the transaction ends."""
    statement = _watchlists_of(user_id).where(watchlists.c.watchlist_id == watchlist_id)
    if lock:
        statement = statement.with_for_update(of=watchlists)
    row = (await conn.execute(statement)).mappings().first()
    return dict(row) if row is not None else None


async def create_watchlist(conn: AsyncConnection, *, user_id: int, name: str) -> int:
    statement = insert(watchlists).values(user_id=user_id, name=name).returning(watchlists.c.watchlist_id)
    return int((await conn.execute(statement)).scalar_one())


async def rename_watchlist(conn: AsyncConnection, watchlist_id: int, name: str) -> None:
    await conn.execute(update(watchlists).where(watchlists.c.watchlist_id == watchlist_id).values(name=name))


async def delete_watchlist(conn: AsyncConnection, watchlist_id: int) -> None:
    await conn.execute(delete(watchlists).where(watchlists.c.watchlist_id == watchlist_id))


async def add_symbols(conn: AsyncConnection, watchlist_id: int, symbols: list[str]) -> None:
    """One statement for any number; a symbol listed already stays where it was."""
    if symbols:
        values = [{"watchlist_id": watchlist_id, "symbol": symbol} for symbol in symbols]
        await conn.execute(upsert(watchlist_items).values(values).on_conflict_do_nothing())


async def remove_symbol(conn: AsyncConnection, watchlist_id: int, symbol: str) -> bool:
    statement = delete(watchlist_items).where(
        watchlist_items.c.watchlist_id == watchlist_id, watchlist_items.c.symbol == symbol
    )
    return (await conn.execute(statement)).rowcount > 0


# --- personalized recommendations ---------------------------------------------------------------------------


async def watched(conn: AsyncConnection, user_id: int) -> dict[str, list[str]]:
    """Symbol -> the names of the user's watchlists holding it."""
    statement = (
        select(watchlist_items.c.symbol, watchlists.c.name)
        .join(watchlists, watchlists.c.watchlist_id == watchlist_items.c.watchlist_id)
        .where(watchlists.c.user_id == user_id)
        .order_by(watchlists.c.watchlist_id)
    )
    found: dict[str, list[str]] = {}
    for row in await conn.execute(statement):
        found.setdefault(row.symbol, []).append(row.name)
    return found


# The product of the ratios of a trade's symbol's splits after its date, up to today: what one share traded
# then is today (stockyard.analytics.ledger: a split applies before the trades of its ex-date).
_SPLITS_SINCE_TRADE = func.coalesce(
    select(func.exp(func.sum(func.ln(fct_corporate_actions.c.split_ratio))))
    .where(
        fct_corporate_actions.c.symbol == transactions.c.symbol,
        fct_corporate_actions.c.ex_date > transactions.c.trade_date,
        fct_corporate_actions.c.ex_date <= func.current_date(),
        fct_corporate_actions.c.split_ratio != 1.0,
    )
    .scalar_subquery(),
    1.0,
)


async def holdings(conn: AsyncConnection, user_id: int) -> dict[str, tuple[str, float]]:
    """Symbol -> (sector, value at the latest close) of what the user's portfolios hold (shares bought less
    shares sold after the splits since, across portfolios)."""
    signed = case((transactions.c.kind == "sell", -transactions.c.quantity), else_=transactions.c.quantity)
    shares = (
        select(transactions.c.symbol, func.sum(signed * _SPLITS_SINCE_TRADE).label("held"))
        .join(portfolios, portfolios.c.portfolio_id == transactions.c.portfolio_id)
        .where(portfolios.c.user_id == user_id, transactions.c.kind.in_(("buy", "sell")))
        .group_by(transactions.c.symbol)
        .subquery()
    )
    statement = (
        select(
            shares.c.symbol,
            func.coalesce(dim_stocks.c.sector, "Unknown").label("sector"),
            (shares.c.held * fct_latest_prices.c.close).label("value"),
        )
        .select_from(
            shares.outerjoin(dim_stocks, dim_stocks.c.symbol == shares.c.symbol).outerjoin(
                fct_latest_prices, fct_latest_prices.c.symbol == shares.c.symbol
            )
        )
        # Above float rounding: what a sale of every share leaves.
        .where(shares.c.held > TOLERANCE)
    )
    return {row.symbol: (row.sector, float(row.value or 0.0)) for row in await conn.execute(statement)}


async def day_recommendations(conn: AsyncConnection, day: date) -> list[Recommendation]:
    """Every recommendation of `day`, by rank."""
    rows = (await conn.execute(ranked_statement(day=day, sector=None, action=None, limit=100_000))).mappings()
    return [recommendation_from(row) for row in rows]


# --- screens ------------------------------------------------------------------------------------------------

_SCREEN = [
    screens.c[name] for name in ("screen_id", "name", "conditions", "is_active", "created_at", "updated_at")
]


async def list_screens(conn: AsyncConnection, user_id: int) -> list[dict[str, Any]]:
    statement = select(*_SCREEN).where(screens.c.user_id == user_id).order_by(screens.c.screen_id)
    return [dict(row) for row in (await conn.execute(statement)).mappings()]


async def screen(
    conn: AsyncConnection, *, user_id: int, screen_id: int, lock: bool = False
) -> dict[str, Any] | None:
    statement = select(*_SCREEN).where(screens.c.screen_id == screen_id, screens.c.user_id == user_id)
    if lock:
        statement = statement.with_for_update()
    row = (await conn.execute(statement)).mappings().first()
    return dict(row) if row is not None else None


async def create_screen(conn: AsyncConnection, *, user_id: int, **values: Any) -> dict[str, Any]:
    statement = insert(screens).values(user_id=user_id, **values).returning(*_SCREEN)
    return dict((await conn.execute(statement)).mappings().one())


async def change_screen(conn: AsyncConnection, screen_id: int, **values: Any) -> dict[str, Any]:
    statement = (
        update(screens)
        .where(screens.c.screen_id == screen_id)
        .values(updated_at=func.now(), **values)
        .returning(*_SCREEN)
    )
    return dict((await conn.execute(statement)).mappings().one())


async def delete_screen(conn: AsyncConnection, screen_id: int) -> None:
    await conn.execute(delete(screens).where(screens.c.screen_id == screen_id))


# --- alerts -------------------------------------------------------------------------------------------------

_ALERT = [
    alerts.c[name] for name in ("alert_id", "kind", "symbol", "level", "top_n", "is_active", "created_at")
]


async def list_alerts(conn: AsyncConnection, user_id: int) -> list[dict[str, Any]]:
    statement = select(*_ALERT).where(alerts.c.user_id == user_id).order_by(alerts.c.alert_id)
    return [dict(row) for row in (await conn.execute(statement)).mappings()]


async def alert(
    conn: AsyncConnection, *, user_id: int, alert_id: int, lock: bool = False
) -> dict[str, Any] | None:
    statement = select(*_ALERT).where(alerts.c.alert_id == alert_id, alerts.c.user_id == user_id)
    if lock:
        statement = statement.with_for_update()
    row = (await conn.execute(statement)).mappings().first()
    return dict(row) if row is not None else None


async def create_alert(conn: AsyncConnection, *, user_id: int, **values: Any) -> dict[str, Any]:
    statement = insert(alerts).values(user_id=user_id, **values).returning(*_ALERT)
    return dict((await conn.execute(statement)).mappings().one())


async def change_alert(conn: AsyncConnection, alert_id: int, **values: Any) -> dict[str, Any]:
    statement = update(alerts).where(alerts.c.alert_id == alert_id).values(**values).returning(*_ALERT)
    return dict((await conn.execute(statement)).mappings().one())


async def delete_alert(conn: AsyncConnection, alert_id: int) -> None:
    await conn.execute(delete(alerts).where(alerts.c.alert_id == alert_id))


# --- hits ---------------------------------------------------------------------------------------------------

_HIT = [column for column in hits.columns if column.name != "user_id"]


async def list_hits(
    conn: AsyncConnection,
    *,
    user_id: int,
    after_id: int | None,
    screen_id: int | None = None,
    alert_id: int | None = None,
    limit: int,
) -> list[dict[str, Any]]:
    """The user's hits, newest first (or, after `after_id`, the ones since it, oldest first)."""
    statement = select(*_HIT).where(hits.c.user_id == user_id)
    if screen_id is not None:
        statement = statement.where(hits.c.screen_id == screen_id)
    if alert_id is not None:
        statement = statement.where(hits.c.alert_id == alert_id)
    if after_id is not None:
        statement = statement.where(hits.c.hit_id > after_id).order_by(hits.c.hit_id)
    else:
        statement = statement.order_by(hits.c.hit_id.desc())
    return [dict(row) for row in (await conn.execute(statement.limit(limit))).mappings()]
