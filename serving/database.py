"""The async connection pool to the warehouse (SQLAlchemy 2 on psycopg 3)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def async_url(database_url: str) -> str:
    """The psycopg 3 (async) form of a postgresql:// URL."""
    scheme, _, rest = database_url.partition("://")
    return f"postgresql+psycopg://{rest}" if scheme in ("postgresql", "postgres") else database_url


def create_engine(
    database_url: str, *, pool_size: int, max_overflow: int, statement_timeout_ms: int
) -> AsyncEngine:
    return create_async_engine(
        async_url(database_url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        # A connection PostgreSQL dropped (a restart) is replaced on checkout instead of failing a request.
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={
            "options": f"-c statement_timeout={statement_timeout_ms} -c default_transaction_read_only=on",
            "application_name": "stockyard-api",
        },
    )
