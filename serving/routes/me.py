"""/me: the signed-in user's account, the export of all of its data, and its deletion (GDPR)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Response
from sqlalchemy import text

from serving import gdpr
from serving.account_schemas import DataExport, UserPublic, UserUpdate
from serving.audit import AuditDep
from serving.auth import CurrentUser, User
from serving.database import read_write
from serving.deps import ServicesDep
from serving.ratelimit import limit_by_ip
from serving.repositories import accounts
from serving.schemas import ErrorDetail
from stockyard.db.catalogue import APP_SCHEMA, users

router = APIRouter(prefix="/me", tags=["account"], dependencies=[Depends(limit_by_ip)])
SIGNED_IN: dict[int | str, dict[str, Any]] = {401: {"model": ErrorDetail, "description": "Not signed in."}}


def public(user: User) -> UserPublic:
    return UserPublic(**{name: getattr(user, name) for name in UserPublic.model_fields})


@router.get("", response_model=UserPublic, responses=SIGNED_IN, summary="Your account")
async def me(user: CurrentUser) -> UserPublic:
    return public(user)


@router.patch("", response_model=UserPublic, responses=SIGNED_IN, summary="Change your display name")
async def update_me(body: UserUpdate, user: CurrentUser, audit: AuditDep) -> UserPublic:
    async with audit.write("account.update", target=f"user:{user.user_id}") as write:
        updated = await accounts.update_user(write.conn, user.user_id, display_name=body.display_name)
    assert updated is not None
    return public(updated)


@router.get("/export", response_model=DataExport, responses=SIGNED_IN, summary="All of your data, as JSON")
async def export_me(user: CurrentUser, services: ServicesDep, audit: AuditDep) -> DataExport:
    """Your account, sign-ins, portfolios, transactions and audit entries: one document (GDPR access)."""
    async with services.engine.connect() as conn:
        data = await gdpr.export(conn, user.user_id)
    await audit.record("account.export", result="success", target=f"user:{user.user_id}")
    return DataExport(exported_at=datetime.now(UTC), user=public(user), data=data)


@router.delete("", status_code=204, responses=SIGNED_IN, summary="Delete your account and all of your data")
async def delete_me(user: CurrentUser, services: ServicesDep, audit: AuditDep) -> Response:
    """Removes every row of yours (GDPR erasure); the audit trail keeps its entries, with you replaced by a
    pseudonym and your addresses removed."""
    async with read_write(services.engine) as conn:
        await audit.add(conn, "account.delete", target=f"user:{user.user_id}")
        await conn.execute(users.delete().where(users.c.user_id == user.user_id))
        await conn.execute(
            text(f"select {APP_SCHEMA}.pseudonymize_audit_log(:user_id)"), {"user_id": user.user_id}
        )
    return Response(status_code=204)
