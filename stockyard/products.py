"""The products schema: the tables the product assets write and the API reads (sql/products_schema.sql)."""

from __future__ import annotations

from importlib import resources

import psycopg

SYNTHETIC = "synthetic"


def ensure_products_schema(conn: psycopg.Connection) -> None:
    ddl = resources.files("stockyard").joinpath("sql/products_schema.sql").read_text()
    # Concurrent first writers race on "create ... if not exists"; a transaction-scoped lock serializes them.
    conn.execute("select pg_advisory_xact_lock(hashtext('stockyard.products_schema'))")
    conn.execute(ddl)


def data_source(conn: psycopg.Connection) -> str:
    """'synthetic' when the sample provider produced the warehouse's stocks, else the providers' names."""
    rows = conn.execute(
        "select distinct case when is_synthetic then %s else provider end from raw.stocks order by 1",
        (SYNTHETIC,),
    ).fetchall()
    return ",".join(row[0] for row in rows) or "unknown"
