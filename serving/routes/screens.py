"""/screens: a user's saved screens, conditions over features and recommendations that the alert_hits asset
runs after each data refresh (its hits pushed over /ws), and that can be run on demand here.

Conditions are data, validated against the known fields and operators (stockyard.screens) and compiled to
SQLAlchemy expressions with bound values: no SQL of a client's reaches the database. Another user's screen
answers 404, as one that does not exist. Every change is audited.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from serving.audit import AuditDep
from serving.auth import CurrentUser, User
from serving.database import within
from serving.deps import ServicesDep
from serving.ratelimit import limit_by_ip
from serving.repositories import watchlists as repository
from serving.schemas import ErrorDetail
from serving.watch_schemas import (
    HitPublic,
    ScreenCreate,
    ScreenFields,
    ScreenMatches,
    ScreenPublic,
    ScreenUpdate,
)
from stockyard import screens as screening

router = APIRouter(prefix="/screens", tags=["screens and alerts"], dependencies=[Depends(limit_by_ip)])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorDetail, "description": "Not signed in."},
    404: {"model": ErrorDetail, "description": "No such screen of yours."},
}
NAME_TAKEN: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorDetail, "description": "You have a screen of that name."}
}
ScreenId = Annotated[int, Path(ge=1, le=2**63 - 1)]
HitLimit = Annotated[int, Query(ge=1, le=500)]


async def _owned(conn: AsyncConnection, user: User, screen_id: int, *, lock: bool = False) -> dict[str, Any]:
    found = await repository.screen(conn, user_id=user.user_id, screen_id=screen_id, lock=lock)
    if found is None:
        raise HTTPException(404, f"no screen {screen_id} of yours")
    return found


def _stored(conditions: list[screening.Condition]) -> list[dict[str, Any]]:
    return [condition.model_dump() for condition in conditions]


@router.get("/fields", response_model=ScreenFields, summary="The fields screen conditions may name")
async def screen_fields() -> ScreenFields:
    return ScreenFields(**screening.field_names())


@router.get("", response_model=list[ScreenPublic], responses=NOT_FOUND, summary="Your screens")
async def list_screens(user: CurrentUser, services: ServicesDep) -> list[ScreenPublic]:
    async with services.engine.connect() as conn:
        return [ScreenPublic(**row) for row in await repository.list_screens(conn, user.user_id)]


@router.post(
    "",
    response_model=ScreenPublic,
    status_code=201,
    responses={**NOT_FOUND, **NAME_TAKEN},
    summary="Save a screen",
)
async def create_screen(body: ScreenCreate, user: CurrentUser, audit: AuditDep) -> ScreenPublic:
    async with audit.write("screen.create") as write:
        try:
            async with write.conn.begin_nested():
                created = await repository.create_screen(
                    write.conn,
                    user_id=user.user_id,
                    name=body.name,
                    conditions=_stored(body.conditions),
                    is_active=body.is_active,
                )
        except IntegrityError:
            raise HTTPException(409, f"you have a screen named {body.name!r} already") from None
        write.target = f"screen:{created['screen_id']}"
        write.detail = {"name": body.name}
    return ScreenPublic(**created)


@router.get("/{screen_id:int}", response_model=ScreenPublic, responses=NOT_FOUND, summary="One screen")
async def get_screen(screen_id: ScreenId, user: CurrentUser, services: ServicesDep) -> ScreenPublic:
    async with services.engine.connect() as conn:
        return ScreenPublic(**await _owned(conn, user, screen_id))


@router.patch(
    "/{screen_id:int}",
    response_model=ScreenPublic,
    responses={**NOT_FOUND, **NAME_TAKEN},
    summary="Change a screen",
)
async def update_screen(
    screen_id: ScreenId, body: ScreenUpdate, user: CurrentUser, audit: AuditDep
) -> ScreenPublic:
    """Only the fields given change."""
    values: dict[str, Any] = body.model_dump(exclude_unset=True, exclude_none=True, exclude={"conditions"})
    if body.conditions is not None:
        values["conditions"] = _stored(body.conditions)
    async with audit.write("screen.update", target=f"screen:{screen_id}") as write:
        found = await _owned(write.conn, user, screen_id, lock=True)
        if not values:
            return ScreenPublic(**found)
        try:
            async with write.conn.begin_nested():
                changed = await repository.change_screen(write.conn, screen_id, **values)
        except IntegrityError:
            raise HTTPException(409, f"you have a screen named {body.name!r} already") from None
        write.detail = {"changed": sorted(values)}
    return ScreenPublic(**changed)


@router.delete("/{screen_id:int}", status_code=204, responses=NOT_FOUND, summary="Delete a screen")
async def delete_screen(screen_id: ScreenId, user: CurrentUser, audit: AuditDep) -> Response:
    """Deletes the screen with its hits."""
    async with audit.write("screen.delete", target=f"screen:{screen_id}") as write:
        await _owned(write.conn, user, screen_id, lock=True)
        await repository.delete_screen(write.conn, screen_id)
    return Response(status_code=204)


@router.get(
    "/{screen_id:int}/matches",
    response_model=ScreenMatches,
    responses=NOT_FOUND,
    summary="Run a screen on the latest data",
)
async def screen_matches(
    screen_id: ScreenId,
    user: CurrentUser,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ScreenMatches:
    """The symbols meeting every condition on the latest data date, by symbol, with the values that met
    them."""

    async def load() -> ScreenMatches:
        async with services.engine.connect() as conn:
            found = await _owned(conn, user, screen_id)
            conditions = screening.ScreenConditions.model_validate({"conditions": found["conditions"]})

            def run(sync: Any) -> ScreenMatches:
                day = screening.latest_data_date(sync)
                if day is None:
                    return ScreenMatches(date=None, total=0, matches=[])
                every = screening.matches(sync, conditions.conditions, day)
                return ScreenMatches(date=day, total=len(every), matches=every[:limit])

            return await conn.run_sync(run)

    return await within(services.settings.request_deadline_seconds, load(), what="screen matches")


@router.get(
    "/{screen_id:int}/hits",
    response_model=list[HitPublic],
    responses=NOT_FOUND,
    summary="What a screen found after each refresh",
)
async def screen_hits(
    screen_id: ScreenId, user: CurrentUser, services: ServicesDep, limit: HitLimit = 100
) -> list[HitPublic]:
    async with services.engine.connect() as conn:
        await _owned(conn, user, screen_id)
        rows = await repository.list_hits(
            conn, user_id=user.user_id, after_id=None, screen_id=screen_id, limit=limit
        )
    return [HitPublic(**row) for row in rows]
