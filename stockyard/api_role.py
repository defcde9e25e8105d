"""The PostgreSQL role the API connects as; `stockyard serve` sets it up on the warehouse.

The role reads the marts and the products, tables that dbt and the product assets create later included
(default privileges of the warehouse's owner, who creates them). It writes only the accounts of the app
schema (users, their tokens, portfolios and transactions, the admins' tracked symbols, watchlists, screens
and alerts), reads the hits the alert_hits asset writes and the ops records of failed runs, may only add to
and read the audit log (never update or delete it: erasing a user pseudonymizes its entries through the
owner's function app.pseudonymize_audit_log), and cannot create anything nor read the raw, staging and
intermediate layers. Its sessions are read-only by default, so a market-data request cannot write even by
mistake; the account routes open their transactions read-write. They have a statement timeout, whatever
client connects as it.

Roles belong to the whole server, and several warehouses on one server (parallel tests) may set theirs up at
once: every step is idempotent, and the whole set-up runs under one server-wide lock, taken in the
maintenance database (advisory locks are per database), so concurrent set-ups never race on catalog rows.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from sqlalchemy import Table

from stockyard.db.catalogue import (
    APP_SCHEMA,
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

API_ROLE = "stockyard_api"
# The schemas the API reads, and all it may read: ops for the admins' view of failed runs.
API_SCHEMAS = ("marts", "products", "ops")
# The app tables the API changes as it likes, and the one it only appends to.
API_WRITTEN_TABLES = (
    users,
    refresh_tokens,
    portfolios,
    transactions,
    symbol_overrides,
    watchlists,
    watchlist_items,
    screens,
    alerts,
)
API_APPENDED_TABLES = (audit_log,)
# The hits the alert_hits asset (the warehouse's owner) writes: the API only shows them.
API_READ_TABLES = (hits,)
PSEUDONYMIZE_AUDIT_LOG = f"{APP_SCHEMA}.pseudonymize_audit_log(bigint)"


def api_role_url(owner_url: str, role: str, password: str) -> str:
    """`owner_url` (a postgresql:// URL) with `role` and its password as the user."""
    parts = urlsplit(owner_url)
    credentials = quote(role, safe="") + (f":{quote(password, safe='')}" if password else "")
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{credentials}@{host}"))


def maintenance_url(database_url: str) -> str:
    """The URL of the server's `postgres` database, as the user of `database_url`."""
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path="/postgres"))


def ensure_api_role(owner_url: str, *, role: str, password: str, statement_timeout_ms: int) -> None:
    """Create or update `role` and grant it SELECT on API_SCHEMAS of the warehouse at `owner_url`, whose user
    owns (creates) the warehouse's tables."""
    with psycopg.connect(maintenance_url(owner_url), autocommit=True) as server:
        # Held by this session until it closes: the role must be committed before the warehouse's grants.
        server.execute("select pg_advisory_lock(hashtext('stockyard.api_role'))")
        exists = server.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
        server.execute(
            sql.SQL(
                "{verb} role {role} with login nosuperuser nocreatedb nocreaterole noinherit noreplication"
                " nobypassrls password {password}"
            ).format(
                verb=sql.SQL("alter" if exists else "create"),
                role=sql.Identifier(role),
                password=sql.Literal(password or None),
            )
        )
        for setting, value in (
            ("statement_timeout", str(statement_timeout_ms)),
            ("default_transaction_read_only", "on"),
        ):
            server.execute(
                sql.SQL("alter role {} set {} = {}").format(
                    sql.Identifier(role), sql.Identifier(setting), sql.Literal(value)
                )
            )
        with psycopg.connect(owner_url, autocommit=True) as warehouse, warehouse.transaction():
            _grant_reads(warehouse, role)
            _grant_app(warehouse, role)


def _grant_reads(conn: psycopg.Connection, role: str) -> None:
    grantee = sql.Identifier(role)
    (database,) = conn.execute("select current_database()").fetchone()  # type: ignore[misc]
    conn.execute(sql.SQL("grant connect on database {} to {}").format(sql.Identifier(database), grantee))
    for name in API_SCHEMAS:
        schema = sql.Identifier(name)
        # Made here when dbt or the products have not made it yet, so its default privileges can be set.
        conn.execute(sql.SQL("create schema if not exists {}").format(schema))
        conn.execute(sql.SQL("grant usage on schema {} to {}").format(schema, grantee))
        conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(schema, grantee))
        conn.execute(
            sql.SQL("alter default privileges in schema {} grant select on tables to {}").format(
                schema, grantee
            )
        )


def _grant_app(conn: psycopg.Connection, role: str) -> None:
    """The app schema's grants, once the migrations made it (`stockyard serve` upgrades first)."""
    if conn.execute("select to_regnamespace(%s)", (APP_SCHEMA,)).fetchone() == (None,):
        return
    grantee = sql.Identifier(role)

    def tables(*chosen: Table) -> sql.Composable:
        return sql.SQL(", ").join(sql.Identifier(APP_SCHEMA, table.name) for table in chosen)

    conn.execute(sql.SQL("grant usage on schema {} to {}").format(sql.Identifier(APP_SCHEMA), grantee))
    conn.execute(
        sql.SQL("grant select, insert, update, delete on {} to {}").format(
            tables(*API_WRITTEN_TABLES), grantee
        )
    )
    conn.execute(
        sql.SQL("revoke update, delete, truncate on {} from {}").format(tables(*API_APPENDED_TABLES), grantee)
    )
    conn.execute(sql.SQL("grant select, insert on {} to {}").format(tables(*API_APPENDED_TABLES), grantee))
    conn.execute(sql.SQL("grant select on {} to {}").format(tables(*API_READ_TABLES), grantee))
    conn.execute(
        sql.SQL("grant usage on all sequences in schema {} to {}").format(sql.Identifier(APP_SCHEMA), grantee)
    )
    conn.execute(
        sql.SQL("grant execute on function {} to {}").format(sql.SQL(PSEUDONYMIZE_AUDIT_LOG), grantee)
    )
