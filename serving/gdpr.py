"""What the API holds about a person, for the GDPR's access and erasure rights.

Every table with a user's rows registers here how to select them (`register`): the export (`GET /me/export`)
is one statement per registered table, whatever the user holds. Erasure deletes the user: every table that
holds a user's rows references app.users with ON DELETE CASCADE (stockyard.db.catalogue.user_reference), so
the rows go with it, and the audit entries about the user are pseudonymized, not deleted
(app.pseudonymize_audit_log). tests/serving/test_gdpr.py checks both against every app table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection

from stockyard.db.catalogue import (
    alerts,
    audit_log,
    hits,
    portfolios,
    refresh_tokens,
    screens,
    symbol_overrides,
    transactions,
    users,
    watchlist_items,
    watchlists,
)


@dataclass(frozen=True)
class PersonalData:
    name: str
    rows_of: Callable[[int], Select[Any]]


PERSONAL_DATA: list[PersonalData] = []


def register(name: str, rows_of: Callable[[int], Select[Any]]) -> None:
    """Add a table's rows of a user to the export; its rows must go with the user (ON DELETE CASCADE)."""
    PERSONAL_DATA.append(PersonalData(name, rows_of))


def _all_but(table: Any, *left_out: str) -> list[Any]:
    return [column for column in table.columns if column.name not in left_out]


# The password's hash and the refresh tokens' hashes are credentials, not information about the person.
register("user", lambda user_id: select(*_all_but(users, "password_hash")).where(users.c.user_id == user_id))
register(
    "sessions",
    lambda user_id: (
        select(*_all_but(refresh_tokens, "token_hash"))
        .where(refresh_tokens.c.user_id == user_id)
        .order_by(refresh_tokens.c.issued_at)
    ),
)
register(
    "portfolios",
    lambda user_id: (
        select(portfolios).where(portfolios.c.user_id == user_id).order_by(portfolios.c.portfolio_id)
    ),
)
register(
    "transactions",
    lambda user_id: (
        select(transactions)
        .join(portfolios, portfolios.c.portfolio_id == transactions.c.portfolio_id)
        .where(portfolios.c.user_id == user_id)
        .order_by(transactions.c.transaction_id)
    ),
)
# The tracked symbols an admin changed: they stay when it goes, without its id (ON DELETE SET NULL).
register(
    "symbol_overrides",
    lambda user_id: (
        select(symbol_overrides)
        .where(symbol_overrides.c.changed_by == user_id)
        .order_by(symbol_overrides.c.symbol)
    ),
)
register(
    "watchlists",
    lambda user_id: (
        select(watchlists).where(watchlists.c.user_id == user_id).order_by(watchlists.c.watchlist_id)
    ),
)
register(
    "watchlist_items",
    lambda user_id: (
        select(watchlist_items)
        .join(watchlists, watchlists.c.watchlist_id == watchlist_items.c.watchlist_id)
        .where(watchlists.c.user_id == user_id)
        .order_by(watchlist_items.c.watchlist_id, watchlist_items.c.added_at)
    ),
)
register(
    "screens",
    lambda user_id: select(screens).where(screens.c.user_id == user_id).order_by(screens.c.screen_id),
)
register(
    "alerts", lambda user_id: select(alerts).where(alerts.c.user_id == user_id).order_by(alerts.c.alert_id)
)
register("hits", lambda user_id: select(hits).where(hits.c.user_id == user_id).order_by(hits.c.hit_id))
register(
    "audit_log",
    lambda user_id: select(audit_log).where(audit_log.c.user_id == user_id).order_by(audit_log.c.audit_id),
)


async def export(conn: AsyncConnection, user_id: int) -> dict[str, list[dict[str, Any]]]:
    return {
        entry.name: [_plain(dict(row)) for row in (await conn.execute(entry.rows_of(user_id))).mappings()]
        for entry in PERSONAL_DATA
    }


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {key: _json_value(value) for key, value in row.items()}


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if value is not None and not isinstance(value, str | int | float | bool | dict | list):
        return str(value)  # an INET address
    return value
