"""/health: liveness (the process answers) and readiness (each part the API serves from, and whether it is
there: PostgreSQL, the prices, the models, Redis)."""

from __future__ import annotations

import logging

import psycopg
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from serving.database import WarehouseTimeout, probe
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
    responses={503: {"model": Readiness, "description": "PostgreSQL is unreachable or holds no prices."}},
    summary="PostgreSQL, the latest data date, the champion models and Redis",
)
async def readiness(services: ServicesDep) -> JSONResponse:
    settings = services.settings
    try:
        await probe(
            settings.database_url,
            seconds=settings.ready_timeout_seconds,
            connect_timeout_seconds=settings.db_connect_timeout_seconds,
        )
        postgres = True
    except (WarehouseTimeout, psycopg.Error, OSError) as error:
        logger.warning("readiness: PostgreSQL does not answer: %s", error)
        postgres = False
    redis = await services.cache.ping_redis()
    state = services.state.current
    prices = state is not None and state.as_of is not None
    models = state is not None and bool(state.champions)
    if not (postgres and prices):
        status = "unavailable"
    elif redis and models:
        status = "ready"
    else:
        status = "degraded"
    body = Readiness(
        status=status,
        postgres=postgres,
        prices=prices,
        latest_data_date=state.as_of if state else None,
        models=models,
        champion_models=state.champions if state else {},
        recommendations_date=state.recommendations_date if state else None,
        redis=redis,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=503 if status == "unavailable" else 200)
