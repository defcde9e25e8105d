"""/prices: many symbols' price histories or latest prices in one request (one statement each)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response

from serving.deps import SYMBOL_PATTERN, ApiDep
from serving.params import IsoDate
from serving.repositories import prices as prices_repository
from serving.schemas import Adjustment, BulkLatestPrices, BulkPrices, ErrorDetail, Interval
from stockyard.api_cache import CacheNamespace

router = APIRouter(prefix="/prices", tags=["prices"])

MAX_SYMBOLS = 500
# About 100 symbols over two years of daily bars; more belongs in a bulk export, not one response.
MAX_BARS = 50_000
_BARS_PER_DAY = {Interval.daily: 252 / 365, Interval.weekly: 52 / 365, Interval.monthly: 12 / 365}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorDetail, "description": "Unknown symbols (named in the message)."}
}
SymbolsQuery = Annotated[
    str,
    Query(
        # One symbol at least, each like a path's symbol, comma-separated (spaces around them allowed).
        pattern=rf"^ *{SYMBOL_PATTERN[1:-1]} *(, *{SYMBOL_PATTERN[1:-1]} *)*$",
        max_length=8000,
        description=f"Comma-separated symbols, at most {MAX_SYMBOLS}.",
        examples=["ALD,BLN,ALR"],
    ),
]


@router.get(
    "",
    response_model=BulkPrices,
    responses=NOT_FOUND,
    summary="Price histories of many symbols",
    description=f"At most about {MAX_BARS:,} bars in one answer (symbols times trading days or periods).",
)
async def get_bulk_prices(
    symbols: SymbolsQuery,
    api: ApiDep,
    start: Annotated[IsoDate | None, Query(description="First date (default: 90 days before end).")] = None,
    end: Annotated[
        IsoDate | None,
        Query(description="Last date (default: the data date, or start if later); not before start."),
    ] = None,
    adjustment: Adjustment = Adjustment.adjusted,
    interval: Interval = Interval.daily,
) -> Response:
    wanted = api.known_symbols(symbols, limit=MAX_SYMBOLS)
    start, end = api.date_range(start, end, default_days=90)
    bars = len(wanted) * ((end - start).days + 1) * _BARS_PER_DAY[interval]
    if bars > MAX_BARS:
        raise HTTPException(
            422,
            f"about {bars:,.0f} bars asked for, at most {MAX_BARS:,}: "
            "ask for fewer symbols or a shorter range",
        )

    async def load() -> BulkPrices:
        async with api.engine.connect() as conn:
            series = await prices_repository.price_series(
                conn, symbols=wanted, start=start, end=end, adjustment=adjustment, interval=interval
            )
        return BulkPrices(
            as_of=api.as_of,
            data_source=api.state.data_source,
            adjustment=adjustment,
            interval=interval,
            start=start,
            end=end,
            series=series,
        )

    return await api.respond(
        CacheNamespace.bulk_prices, f"{','.join(wanted)}|{start}|{end}|{adjustment}|{interval}", load
    )


@router.get(
    "/latest", response_model=BulkLatestPrices, responses=NOT_FOUND, summary="Latest prices of many symbols"
)
async def get_bulk_latest_prices(symbols: SymbolsQuery, api: ApiDep) -> Response:
    wanted = api.known_symbols(symbols, limit=MAX_SYMBOLS)

    async def load() -> BulkLatestPrices:
        async with api.engine.connect() as conn:
            items = await prices_repository.latest_prices(conn, symbols=wanted)
        return BulkLatestPrices(as_of=api.as_of, data_source=api.state.data_source, items=items)

    return await api.respond(CacheNamespace.bulk_latest, ",".join(wanted), load)
