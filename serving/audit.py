"""The audit trail: who did what, when, from where, and with what result, for every authentication event and
every write of an account's data. The API's role may only add entries and read them (stockyard.api_role).

A write and its entry commit together (`Audit.write`): there is no change without its entry, nor an entry of
a change that did not happen. A write that fails is recorded on its own, after its transaction rolled back.
Later routes record their writes the same way:

    async with audit.write("watchlist.create") as write:
        watchlist_id = await repository.create(write.conn, ...)
        write.target = f"watchlist:{watchlist_id}"

Client addresses are the connecting peer's, or the client a proxy of STOCKYARD_API_FORWARDED_ALLOW_IPS names.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import structlog
from fastapi import Depends, HTTPException, Request
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from serving.database import read_write
from stockyard.db.catalogue import audit_log

Result = Literal["success", "denied", "failed"]
_USER_AGENT_LIMIT = 300


@dataclass
class Write:
    """The transaction of an audited write, and what its entry will say (set them as the write goes)."""

    conn: AsyncConnection
    target: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    # The user the entry is about when no one is signed in yet (a registration, a sign-in).
    user_id: int | None = None
    # A write may commit what a refusal needs (revoking stolen tokens) and be recorded as refused.
    result: Result = "success"


class Audit:
    def __init__(self, engine: AsyncEngine, request: Request) -> None:
        self._engine = engine
        self._request = request

    def _entry(
        self,
        action: str,
        result: Result,
        target: str | None,
        detail: dict[str, Any] | None,
        user_id: int | None,
    ) -> dict[str, Any]:
        client = self._request.client
        return {
            "user_id": user_id if user_id is not None else getattr(self._request.state, "user_id", None),
            "action": action,
            "target": target,
            "result": result,
            "client_ip": _address(client.host) if client is not None else None,
            "user_agent": (self._request.headers.get("user-agent") or "")[:_USER_AGENT_LIMIT] or None,
            "request_id": structlog.contextvars.get_contextvars().get("request_id"),
            "detail": detail or None,
        }

    async def add(
        self,
        conn: AsyncConnection,
        action: str,
        *,
        result: Result = "success",
        target: str | None = None,
        detail: dict[str, Any] | None = None,
        user_id: int | None = None,
    ) -> None:
        """An entry in the caller's (read-write) transaction."""
        await conn.execute(insert(audit_log).values(self._entry(action, result, target, detail, user_id)))

    async def record(
        self,
        action: str,
        *,
        result: Result,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
        user_id: int | None = None,
    ) -> None:
        """An entry in a transaction of its own: for what failed, or changed nothing."""
        async with read_write(self._engine) as conn:
            await self.add(conn, action, result=result, target=target, detail=detail, user_id=user_id)

    @asynccontextmanager
    async def write(self, action: str, *, target: str | None = None) -> AsyncIterator[Write]:
        """A read-write transaction that commits with a 'success' entry, or rolls back and leaves a
        'denied' (401, 403) or 'failed' entry saying why."""
        write: Write | None = None
        try:
            async with read_write(self._engine) as conn:
                write = Write(conn=conn, target=target)
                yield write
                await self.add(
                    conn,
                    action,
                    result=write.result,
                    target=write.target,
                    detail=write.detail or None,
                    user_id=write.user_id,
                )
        except HTTPException as error:
            await self.record(
                action,
                result="denied" if error.status_code in (401, 403) else "failed",
                target=write.target if write is not None else target,
                detail={"status": error.status_code, "reason": str(error.detail)},
                user_id=write.user_id if write is not None else None,
            )
            raise


def _address(host: str) -> str | None:
    """The peer's IP address; None for what is not one (a unix socket's path, a test client's name)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def audit_of(request: Request) -> Audit:
    return Audit(request.app.state.services.engine, request)


async def audit(request: Request) -> Audit:
    return audit_of(request)


AuditDep = Annotated[Audit, Depends(audit)]
