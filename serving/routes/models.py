"""/models: the champion and challenger of each registered model, as the products recorded them."""

from __future__ import annotations

from fastapi import APIRouter, Response

from serving.deps import NO_MODEL_YET, ApiDep
from serving.repositories import models as repository
from serving.schemas import Models
from stockyard.api_cache import CacheNamespace

router = APIRouter(prefix="/models", tags=["models"])


@router.get(
    "",
    response_model=Models,
    responses=NO_MODEL_YET,
    summary="Champion and challenger of each model, with metrics",
)
async def list_models(api: ApiDep) -> Response:
    api.promoted_model()

    async def load() -> Models:
        async with api.engine.connect() as conn:
            models = await repository.registered_models(conn)
        return Models(
            as_of=api.as_of,
            data_source=api.state.data_source,
            model_version=api.state.recommendations_version,
            models=models,
        )

    return await api.respond(CacheNamespace.models, "", load)
