"""/analysis/{symbol}: indicators, the latest recommendation, the forecast and the backtest context.

The parts are read concurrently, each on its own connection and within its own timeout; a part that fails
or times out is named in `missing` and the rest is returned (and such an incomplete answer is not cached).
Before any model has been promoted, the model's parts are not read and are named `missing` as `no_model`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from fastapi import APIRouter, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from serving.database import WarehouseTimeout, within
from serving.deps import ApiDep, SymbolPath
from serving.repositories import analysis as repository
from serving.schemas import Analysis, ErrorDetail, MissingPart
from stockyard.api_cache import CacheNamespace

router = APIRouter(prefix="/analysis", tags=["analysis"])
logger = logging.getLogger("serving.analysis")

T = TypeVar("T")
Part = Literal["indicators", "recommendation", "forecast", "backtest"]


@router.get(
    "/{symbol}",
    response_model=Analysis,
    responses={404: {"model": ErrorDetail, "description": "Unknown symbol (named in the message)."}},
    summary="A stock's analysis: indicators, recommendation, forecast, backtest",
)
async def get_analysis(symbol: SymbolPath, api: ApiDep) -> Response:
    symbol = api.known_symbol(symbol)
    timeout = api.services.settings.analysis_part_timeout_seconds
    missing: list[MissingPart] = []

    async def part(
        names: tuple[Part, ...], read: Callable[[AsyncConnection], Awaitable[T]], *, from_model: bool
    ) -> T | None:
        if from_model and not api.state.champions:
            missing.extend(MissingPart(part=name, reason="no_model") for name in names)
            return None

        async def attempt() -> T:
            async with api.engine.connect() as conn:
                return await read(conn)

        try:
            return await within(timeout, attempt(), what=f"analysis of {symbol}")
        except WarehouseTimeout:
            logger.warning("analysis of %s: %s timed out after %.2f s", symbol, "/".join(names), timeout)
            missing.extend(MissingPart(part=name, reason="timeout") for name in names)
        except Exception:
            logger.exception("analysis of %s: %s failed", symbol, "/".join(names))
            missing.extend(MissingPart(part=name, reason="error") for name in names)
        return None

    async def load() -> Analysis:
        market, model, forecast = await asyncio.gather(
            part(("indicators",), lambda conn: repository.indicators(conn, symbol=symbol), from_model=False),
            part(
                ("recommendation", "backtest"),
                lambda conn: repository.model_outputs(conn, symbol=symbol),
                from_model=True,
            ),
            part(("forecast",), lambda conn: repository.forecast(conn, symbol=symbol), from_model=True),
        )
        latest_price, indicators = market or (None, None)
        recommendation, backtest = model or (None, None)
        return Analysis(
            as_of=api.as_of,
            data_source=api.state.source_of(symbol),
            model_version=recommendation.model_version if recommendation else None,
            symbol=symbol,
            latest_price=latest_price,
            indicators=indicators,
            recommendation=recommendation,
            forecast=forecast,
            backtest=backtest,
            missing=sorted(missing, key=lambda item: item.part),
        )

    return await api.respond(
        CacheNamespace.analysis,
        symbol,
        load,
        # A part that failed may answer next time; no model stays so until the state (and the key) changes.
        cacheable=lambda analysis: all(part.reason == "no_model" for part in analysis.missing),
    )
