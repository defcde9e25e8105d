"""The admins' added and retired symbols in app.symbol_overrides (the ingestion applies them:
stockyard.universe)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, func, literal, select, union_all
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from serving.tables import dim_stocks
from stockyard.db.catalogue import symbol_overrides


async def list_overrides(conn: AsyncConnection) -> list[dict[str, Any]]:
    statement = select(symbol_overrides).order_by(symbol_overrides.c.symbol)
    return [dict(row) for row in (await conn.execute(statement)).mappings()]


async def set_tracked(
    conn: AsyncConnection, symbol: str, *, tracked: bool, changed_by: int
) -> dict[str, Any]:
    """Add (`tracked`) or retire `symbol`, replacing any earlier override of it."""
    values = {"symbol": symbol, "tracked": tracked, "changed_by": changed_by}
    statement = (
        pg_insert(symbol_overrides)
        .values(values)
        .on_conflict_do_update(
            index_elements=[symbol_overrides.c.symbol],
            set_={"tracked": tracked, "changed_by": changed_by, "changed_at": func.now()},
        )
        .returning(*symbol_overrides.columns)
    )
    return dict((await conn.execute(statement)).mappings().one())


async def is_known(conn: AsyncConnection, symbol: str) -> bool:
    """Whether `symbol` is in the warehouse's universe (marts.dim_stocks) or was added by an admin."""
    listed = union_all(
        select(literal(1)).where(dim_stocks.c.symbol == symbol),
        select(literal(1)).where(symbol_overrides.c.symbol == symbol, symbol_overrides.c.tracked),
    )
    return bool((await conn.execute(select(exists(listed)))).scalar())
