"""/recommendations: a date's ranked list (the latest by default) and one symbol's history."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response

from serving.deps import NO_MODEL_YET, Api, ApiDep, SymbolPath
from serving.params import GicsSector, IsoDate
from serving.repositories import recommendations as repository
from serving.schemas import Action, ErrorDetail, RecommendationHistory, RecommendationList
from stockyard.api_cache import CacheNamespace

router = APIRouter(prefix="/recommendations", tags=["recommendations"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorDetail, "description": "No recommendations for that date or symbol."},
    **NO_MODEL_YET,
}
SectorQuery = Annotated[GicsSector | None, Query(description="Only this GICS sector.", examples=["Energy"])]
ActionQuery = Annotated[Action | None, Query(description="Only this action.")]
LimitQuery = Annotated[int, Query(ge=1, le=1000, description="The best N by rank.")]


async def _ranked_list(
    *,
    day: date,
    sector: str | None,
    action: Action | None,
    limit: int,
    api: Api,
) -> Response:
    latest = api.state.recommendations_date
    if latest is None or day > latest:
        raise HTTPException(404, f"no recommendations for {day}")

    async def load() -> RecommendationList:
        async with api.engine.connect() as conn:
            total, items = await repository.ranked(conn, day=day, sector=sector, action=action, limit=limit)
            if not items and (
                sector is None and action is None or not await repository.has_date(conn, day=day)
            ):
                raise HTTPException(404, f"no recommendations for {day}")
        first = items[0] if items else None
        return RecommendationList(
            as_of=first.data_date if first else api.as_of,
            data_source=api.state.data_source,
            model_name=first.model_name if first else None,
            model_version=first.model_version if first else None,
            date=day,
            total=total,
            items=items,
        )

    return await api.respond(CacheNamespace.recommendations, f"{day}|{sector}|{action}|{limit}", load)


@router.get(
    "", response_model=RecommendationList, responses=NOT_FOUND, summary="The latest ranked recommendations"
)
async def latest_recommendations(
    api: ApiDep,
    sector: SectorQuery = None,
    action: ActionQuery = None,
    limit: LimitQuery = 20,
) -> Response:
    api.promoted_model()
    if api.state.recommendations_date is None:
        raise HTTPException(404, "no recommendations yet: the products have not been materialized")
    return await _ranked_list(
        day=api.state.recommendations_date, sector=sector, action=action, limit=limit, api=api
    )


@router.get(
    "/symbols/{symbol}",
    response_model=RecommendationHistory,
    responses=NOT_FOUND,
    summary="One symbol's recommendation history",
)
async def symbol_recommendation_history(
    symbol: SymbolPath,
    api: ApiDep,
    start: Annotated[IsoDate | None, Query(description="First date.")] = None,
    end: Annotated[IsoDate | None, Query(description="Last date; not before start.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="The newest N.")] = 100,
) -> Response:
    api.promoted_model()
    symbol = api.known_symbol(symbol)
    if start is not None and end is not None and start > end:
        raise HTTPException(422, f"start ({start}) is after end ({end})")

    async def load() -> RecommendationHistory:
        async with api.engine.connect() as conn:
            items = await repository.history(conn, symbol=symbol, start=start, end=end, limit=limit)
        return RecommendationHistory(
            as_of=items[0].data_date if items else api.as_of,
            data_source=api.state.source_of(symbol),
            model_version=items[0].model_version if items else None,
            symbol=symbol,
            items=items,
        )

    return await api.respond(CacheNamespace.recommendation_history, f"{symbol}|{start}|{end}|{limit}", load)


@router.get(
    "/{day}", response_model=RecommendationList, responses=NOT_FOUND, summary="A given date's recommendations"
)
async def recommendations_on(
    day: Annotated[
        IsoDate, Path(description="The recommendation date (YYYY-MM-DD).", examples=["2024-06-28"])
    ],
    api: ApiDep,
    sector: SectorQuery = None,
    action: ActionQuery = None,
    limit: LimitQuery = 20,
) -> Response:
    api.promoted_model()
    return await _ranked_list(day=day, sector=sector, action=action, limit=limit, api=api)
