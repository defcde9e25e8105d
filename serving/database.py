"""The async connection pool to the warehouse (SQLAlchemy 2 on psycopg 3), and the deadlines on it.

A hung server (stopped, or its host gone silent) answers nothing and closes nothing, so only the client can
end a wait: a connect timeout for new connections, the pool's timeout for a free one, and `within` for any
work. Cancelling a psycopg query is itself slow on a hung server (psycopg asks the server to cancel it and
waits up to 10 s), so `within` answers at its deadline and leaves that clean-up to finish in the background.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

T = TypeVar("T")
APPLICATION_NAME = "stockyard-api"
# Work given up on at its deadline, still unwinding: held here so it is not collected half-way.
_abandoned: set[asyncio.Future[Any]] = set()


class WarehouseTimeout(Exception):
    """The warehouse did not answer in time: the API answers 503 with Retry-After."""


def async_url(database_url: str) -> str:
    """The psycopg 3 (async) form of a postgresql:// URL."""
    scheme, _, rest = database_url.partition("://")
    return f"postgresql+psycopg://{rest}" if scheme in ("postgresql", "postgres") else database_url


def create_engine(
    database_url: str,
    *,
    pool_size: int,
    max_overflow: int,
    statement_timeout_ms: int,
    connect_timeout_seconds: int,
    pool_timeout_seconds: float,
) -> AsyncEngine:
    return create_async_engine(
        async_url(database_url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout_seconds,
        # A connection PostgreSQL dropped (a restart) is replaced on checkout instead of failing a request.
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={
            "options": f"-c statement_timeout={statement_timeout_ms} -c default_transaction_read_only=on",
            "application_name": APPLICATION_NAME,
            "connect_timeout": connect_timeout_seconds,
        },
    )


@asynccontextmanager
async def read_write(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction that may write (the sessions are read-only by default; the role's grants say what it may
    write): committed when the block ends, rolled back when it raises."""
    async with engine.begin() as conn:
        await conn.execute(text("set transaction read write"))
        yield conn


async def within(seconds: float, work: Awaitable[T], *, what: str) -> T:
    """The result of `work`, or WarehouseTimeout after `seconds` (`work` is then cancelled, not awaited)."""
    task: asyncio.Future[T] = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        _abandon(task)
        raise
    if done:
        return task.result()
    _abandon(task)
    raise WarehouseTimeout(f"{what}: the warehouse did not answer within {seconds:g} s")


def _abandon(task: asyncio.Future[Any]) -> None:
    task.cancel()
    _abandoned.add(task)
    task.add_done_callback(_forget)


def _forget(task: asyncio.Future[Any]) -> None:
    _abandoned.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved


async def settle_abandoned(seconds: float) -> None:
    """Wait up to `seconds` for this event loop's abandoned work to unwind (on shutdown)."""
    loop = asyncio.get_running_loop()
    pending = [task for task in _abandoned if task.get_loop() is loop]
    if pending:
        await asyncio.wait(pending, timeout=seconds)


async def probe(database_url: str, *, seconds: float, connect_timeout_seconds: int) -> None:
    """Open a new connection (not one of the pool, which may hide a server that takes no new ones) and run a
    statement on it, within `seconds`; raises WarehouseTimeout or psycopg.Error."""

    async def attempt() -> None:
        async with await psycopg.AsyncConnection.connect(
            database_url, application_name=APPLICATION_NAME, connect_timeout=connect_timeout_seconds
        ) as conn:
            await conn.execute("select 1")

    await within(seconds, attempt(), what="readiness")
