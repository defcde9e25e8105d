"""/me/recommendations: the day's recommendations re-ranked for the signed-in user (serving.personalize), in
three statements whatever the user holds: the day's recommendations, the user's watchlists, the holdings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from serving.auth import CurrentUser
from serving.database import within
from serving.deps import ServicesDep
from serving.personalize import personalize, sector_exposure
from serving.ratelimit import limit_by_ip
from serving.repositories import watchlists as repository
from serving.schemas import ErrorDetail
from serving.watch_schemas import PersonalRecommendations

router = APIRouter(prefix="/me/recommendations", tags=["watchlists"], dependencies=[Depends(limit_by_ip)])
SIGNED_IN: dict[int | str, dict[str, Any]] = {401: {"model": ErrorDetail, "description": "Not signed in."}}


@router.get(
    "",
    response_model=PersonalRecommendations,
    responses=SIGNED_IN,
    summary="The day's recommendations for you",
)
async def my_recommendations(
    user: CurrentUser,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=100, description="How many to list.")] = 20,
) -> PersonalRecommendations:
    """Your watchlists' symbols first, by rank; then the best of the rest, diversified by sector against your
    portfolios' holdings (a sector you are heavy in gives way to the next best of another). Each says why."""
    state = services.state.current
    day = state.recommendations_date if state is not None else None

    async def load() -> PersonalRecommendations:
        async with services.engine.connect() as conn:
            watched = await repository.watched(conn, user.user_id)
            holdings = await repository.holdings(conn, user.user_id)
            ranked = await repository.day_recommendations(conn, day) if day is not None else []
        return PersonalRecommendations(
            date=day,
            sector_exposure=sector_exposure(holdings),
            items=personalize(ranked, watched=watched, holdings=holdings, limit=limit),
        )

    return await within(services.settings.request_deadline_seconds, load(), what="personal recommendations")
