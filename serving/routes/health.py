"""/health: liveness (the process answers) and readiness (PostgreSQL, Redis, data and models are there)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from serving.deps import ServicesDep
from serving.schemas import Liveness, Readiness

router = APIRouter(prefix="/health", tags=["health"])
logger = logging.getLogger("serving.health")


@router.get("/live", response_model=Liveness, summary="The process is up")
async def liveness() -> Liveness:
    return Liveness()


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "PostgreSQL is unreachable or holds no data."}},
    summary="PostgreSQL, Redis, the latest data date and the champion models",
)
async def readiness(services: ServicesDep) -> JSONResponse:
    try:
        async with services.engine.connect() as conn:
            await conn.execute(text("select 1"))
        postgres = True
    except (SQLAlchemyError, OSError):
        logger.warning("readiness: PostgreSQL is unreachable", exc_info=True)
        postgres = False
    redis = await services.cache.ping_redis()
    state = services.state.current
    has_data = state is not None and state.as_of is not None
    status = "unavailable" if not (postgres and has_data) else "ready" if redis else "degraded"
    body = Readiness(
        status=status,
        postgres=postgres,
        redis=redis,
        latest_data_date=state.as_of if state else None,
        champion_models=state.champions if state else {},
        recommendations_date=state.recommendations_date if state else None,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=503 if status == "unavailable" else 200)
