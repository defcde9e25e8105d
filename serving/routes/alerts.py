"""/alerts and /hits: a user's alerts (a close crossing a level, a symbol entering the top N of the day's
recommendations), which the alert_hits asset checks after each data refresh, and everything the user's
screens and alerts found. Another user's alert answers 404, as one that does not exist; every change is
audited. /hits is also how a client catches up on the hits pushed over /ws while it was away."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from serving.audit import AuditDep
from serving.auth import CurrentUser, User
from serving.deps import ServicesDep
from serving.ratelimit import limit_by_ip
from serving.repositories import watchlists as repository
from serving.routes.watchlists import known_symbols
from serving.schemas import ErrorDetail
from serving.watch_schemas import AlertCreate, AlertPublic, AlertUpdate, HitPublic

router = APIRouter(prefix="/alerts", tags=["screens and alerts"], dependencies=[Depends(limit_by_ip)])
hits_router = APIRouter(prefix="/hits", tags=["screens and alerts"], dependencies=[Depends(limit_by_ip)])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorDetail, "description": "Not signed in."},
    404: {"model": ErrorDetail, "description": "No such alert of yours."},
}
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1)]
HitLimit = Annotated[int, Query(ge=1, le=500)]


async def _owned(conn: AsyncConnection, user: User, alert_id: int, *, lock: bool = False) -> dict[str, Any]:
    found = await repository.alert(conn, user_id=user.user_id, alert_id=alert_id, lock=lock)
    if found is None:
        raise HTTPException(404, f"no alert {alert_id} of yours")
    return found


@router.get("", response_model=list[AlertPublic], responses=NOT_FOUND, summary="Your alerts")
async def list_alerts(user: CurrentUser, services: ServicesDep) -> list[AlertPublic]:
    async with services.engine.connect() as conn:
        return [AlertPublic(**row) for row in await repository.list_alerts(conn, user.user_id)]


@router.post("", response_model=AlertPublic, status_code=201, responses=NOT_FOUND, summary="Set an alert")
async def create_alert(
    body: AlertCreate, user: CurrentUser, services: ServicesDep, audit: AuditDep
) -> AlertPublic:
    (symbol,) = known_symbols(services, [body.symbol])
    async with audit.write("alert.create") as write:
        created = await repository.create_alert(
            write.conn,
            user_id=user.user_id,
            kind=body.kind.value,
            symbol=symbol,
            level=body.level,
            top_n=body.top_n,
            is_active=body.is_active,
        )
        write.target = f"alert:{created['alert_id']}"
        write.detail = {"kind": body.kind.value, "symbol": symbol}
    return AlertPublic(**created)


@router.get("/{alert_id}", response_model=AlertPublic, responses=NOT_FOUND, summary="One alert")
async def get_alert(alert_id: AlertId, user: CurrentUser, services: ServicesDep) -> AlertPublic:
    async with services.engine.connect() as conn:
        return AlertPublic(**await _owned(conn, user, alert_id))


@router.patch(
    "/{alert_id}", response_model=AlertPublic, responses=NOT_FOUND, summary="Pause or resume an alert"
)
async def update_alert(
    alert_id: AlertId, body: AlertUpdate, user: CurrentUser, audit: AuditDep
) -> AlertPublic:
    async with audit.write("alert.update", target=f"alert:{alert_id}") as write:
        await _owned(write.conn, user, alert_id, lock=True)
        changed = await repository.change_alert(write.conn, alert_id, is_active=body.is_active)
        write.detail = {"is_active": body.is_active}
    return AlertPublic(**changed)


@router.delete("/{alert_id}", status_code=204, responses=NOT_FOUND, summary="Delete an alert")
async def delete_alert(alert_id: AlertId, user: CurrentUser, audit: AuditDep) -> Response:
    """Deletes the alert with its hits."""
    async with audit.write("alert.delete", target=f"alert:{alert_id}") as write:
        await _owned(write.conn, user, alert_id, lock=True)
        await repository.delete_alert(write.conn, alert_id)
    return Response(status_code=204)


@router.get(
    "/{alert_id}/hits", response_model=list[HitPublic], responses=NOT_FOUND, summary="When an alert went off"
)
async def alert_hits(
    alert_id: AlertId, user: CurrentUser, services: ServicesDep, limit: HitLimit = 100
) -> list[HitPublic]:
    async with services.engine.connect() as conn:
        await _owned(conn, user, alert_id)
        rows = await repository.list_hits(
            conn, user_id=user.user_id, after_id=None, alert_id=alert_id, limit=limit
        )
    return [HitPublic(**row) for row in rows]


@hits_router.get(
    "",
    response_model=list[HitPublic],
    responses={401: {"model": ErrorDetail, "description": "Not signed in."}},
    summary="Your screens' and alerts' hits",
)
async def list_hits(
    user: CurrentUser,
    services: ServicesDep,
    after_id: Annotated[
        int | None,
        Query(ge=0, le=2**63 - 1, description="Only the hits after this one, oldest first (to catch up)."),
    ] = None,
    limit: HitLimit = 100,
) -> list[HitPublic]:
    """The newest first; with `after_id`, those since that hit, oldest first."""
    async with services.engine.connect() as conn:
        rows = await repository.list_hits(conn, user_id=user.user_id, after_id=after_id, limit=limit)
    return [HitPublic(**row) for row in rows]
