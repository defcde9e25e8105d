"""/stocks: the universe, search, the largest stocks, one stock and its price history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response

from serving.deps import ApiDep, SymbolPath
from serving.params import MAX_MARKET_CAP, GicsSector, IsoDate, SearchText
from serving.repositories import prices as prices_repository
from serving.repositories import stocks as stocks_repository
from serving.schemas import (
    Adjustment,
    ErrorDetail,
    Interval,
    Prices,
    StockDetail,
    StockPage,
    StockSearch,
    TopStocks,
)
from stockyard.api_cache import CacheNamespace

router = APIRouter(prefix="/stocks", tags=["stocks"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorDetail, "description": "Unknown symbol (named in the message)."}
}
SectorQuery = Annotated[GicsSector | None, Query(description="Only this GICS sector.", examples=["Energy"])]


@router.get("", response_model=StockPage, summary="List stocks, filtered and paginated")
async def list_stocks(
    api: ApiDep,
    sector: SectorQuery = None,
    min_market_cap: Annotated[
        float | None, Query(ge=0, le=MAX_MARKET_CAP, allow_inf_nan=False, description="Smallest market cap.")
    ] = None,
    max_market_cap: Annotated[
        float | None,
        Query(
            ge=0,
            le=MAX_MARKET_CAP,
            allow_inf_nan=False,
            description="Largest market cap; not below min_market_cap.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> Response:
    if min_market_cap is not None and max_market_cap is not None and min_market_cap > max_market_cap:
        raise HTTPException(
            422, f"min_market_cap ({min_market_cap:g}) exceeds max_market_cap ({max_market_cap:g})"
        )

    async def load() -> StockPage:
        async with api.engine.connect() as conn:
            total, items = await stocks_repository.list_stocks(
                conn,
                sector=sector,
                min_market_cap=min_market_cap,
                max_market_cap=max_market_cap,
                limit=limit,
                offset=offset,
            )
        return StockPage(
            as_of=api.as_of,
            data_source=api.state.data_source,
            total=total,
            limit=limit,
            offset=offset,
            items=items,
        )

    return await api.respond(
        CacheNamespace.stocks, f"{sector}|{min_market_cap}|{max_market_cap}|{limit}|{offset}", load
    )


@router.get("/search", response_model=StockSearch, summary="Find stocks by symbol or company name")
async def search_stocks(
    api: ApiDep,
    q: Annotated[
        SearchText,
        Query(
            description="A symbol or its start, or words starting the company's name.", examples=["alid app"]
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    async def load() -> StockSearch:
        async with api.engine.connect() as conn:
            items = await stocks_repository.search_stocks(conn, query=q, limit=limit)
        return StockSearch(as_of=api.as_of, data_source=api.state.data_source, query=q, items=items)

    return await api.respond(CacheNamespace.search, f"{q}|{limit}", load)


@router.get("/top", response_model=TopStocks, summary="The largest stocks by market cap")
async def top_stocks(
    api: ApiDep,
    sector: SectorQuery = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Response:

    async def load() -> TopStocks:
        async with api.engine.connect() as conn:
            items = await stocks_repository.top_stocks(conn, sector=sector, limit=limit)
        return TopStocks(as_of=api.as_of, data_source=api.state.data_source, items=items)

    return await api.respond(CacheNamespace.top, f"{sector}|{limit}", load)


@router.get(
    "/{symbol}", response_model=StockDetail, responses=NOT_FOUND, summary="One stock with its latest price"
)
async def get_stock(symbol: SymbolPath, api: ApiDep) -> Response:
    symbol = api.known_symbol(symbol)

    async def load() -> StockDetail:
        async with api.engine.connect() as conn:
            stock, latest = await stocks_repository.stock_detail(conn, symbol=symbol)
        return StockDetail(
            as_of=api.as_of, data_source=api.state.source_of(symbol), stock=stock, latest_price=latest
        )

    return await api.respond(CacheNamespace.stock, symbol, load)


@router.get(
    "/{symbol}/prices",
    response_model=Prices,
    responses=NOT_FOUND,
    summary="A stock's prices over a date range",
)
async def get_stock_prices(
    symbol: SymbolPath,
    api: ApiDep,
    start: Annotated[IsoDate | None, Query(description="First date (default: a year before end).")] = None,
    end: Annotated[
        IsoDate | None,
        Query(description="Last date (default: the data date, or start if later); not before start."),
    ] = None,
    adjustment: Annotated[
        Adjustment, Query(description="'adjusted' for splits and dividends, or 'raw' as traded.")
    ] = Adjustment.adjusted,
    interval: Annotated[
        Interval, Query(description="Daily bars, or weekly / monthly OHLCV.")
    ] = Interval.daily,
) -> Response:
    symbol = api.known_symbol(symbol)
    start, end = api.date_range(start, end, default_days=365)

    async def load() -> Prices:
        async with api.engine.connect() as conn:
            (series,) = await prices_repository.price_series(
                conn, symbols=[symbol], start=start, end=end, adjustment=adjustment, interval=interval
            )
        return Prices(
            as_of=api.as_of,
            data_source=api.state.source_of(symbol),
            symbol=symbol,
            adjustment=adjustment,
            interval=interval,
            start=start,
            end=end,
            bars=series.bars,
        )

    return await api.respond(CacheNamespace.prices, f"{symbol}|{start}|{end}|{adjustment}|{interval}", load)
