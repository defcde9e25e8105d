"""/sectors: each sector's size, return and breadth on the data date."""

from __future__ import annotations

from fastapi import APIRouter, Response

from serving.deps import ApiDep
from serving.repositories import stocks as stocks_repository
from serving.schemas import Sectors
from stockyard.api_cache import CacheNamespace

router = APIRouter(prefix="/sectors", tags=["sectors"])


@router.get("", response_model=Sectors, summary="Sector summary on the data date")
async def list_sectors(api: ApiDep) -> Response:
    async def load() -> Sectors:
        async with api.engine.connect() as conn:
            items = await stocks_repository.sectors_on(conn, day=api.as_of)
        return Sectors(as_of=api.as_of, data_source=api.state.data_source, date=api.as_of, items=items)

    return await api.respond(CacheNamespace.sectors, "", load)
