"""/watchlists: a user's lists of symbols to follow (they come first in GET /me/recommendations).

Another user's watchlist answers 404, as one that does not exist: ids reveal nothing. Every change is
audited (serving.audit); symbols must be known to the warehouse.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from serving.audit import AuditDep
from serving.auth import CurrentUser, User
from serving.deps import SYMBOL_PATTERN, Services, ServicesDep
from serving.ratelimit import limit_by_ip
from serving.repositories import watchlists as repository
from serving.schemas import ErrorDetail
from serving.watch_schemas import MAX_WATCHLIST_SYMBOLS, WatchlistCreate, WatchlistPublic, WatchlistRename

router = APIRouter(prefix="/watchlists", tags=["watchlists"], dependencies=[Depends(limit_by_ip)])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorDetail, "description": "Not signed in."},
    404: {"model": ErrorDetail, "description": "No such watchlist of yours (or symbol on it)."},
}
NAME_TAKEN: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorDetail, "description": "You have a watchlist of that name."}
}
WatchlistId = Annotated[int, Path(ge=1, le=2**63 - 1)]
WatchedSymbol = Annotated[str, Path(pattern=SYMBOL_PATTERN, description="Ticker symbol (any case).")]


def known_symbols(services: Services, symbols: list[str]) -> list[str]:
    """`symbols` upper-cased and de-duplicated in order; 422 naming those the warehouse does not know."""
    state = services.state.current
    if state is None:
        raise HTTPException(503, "the warehouse cannot be reached: the symbols cannot be checked")
    known = state.symbol_sources
    unique = list(dict.fromkeys(symbol.upper() for symbol in symbols))
    unknown = [symbol for symbol in unique if symbol not in known]
    if unknown:
        raise HTTPException(
            422, f"unknown symbol{'s' if len(unknown) > 1 else ''}: {', '.join(unknown[:20])}"
        )
    return unique


async def _owned(
    conn: AsyncConnection, user: User, watchlist_id: int, *, lock: bool = False
) -> dict[str, Any]:
    found = await repository.watchlist(conn, user_id=user.user_id, watchlist_id=watchlist_id, lock=lock)
    if found is None:
        raise HTTPException(404, f"no watchlist {watchlist_id} of yours")
    return found


@router.get("", response_model=list[WatchlistPublic], responses=NOT_FOUND, summary="Your watchlists")
async def list_watchlists(user: CurrentUser, services: ServicesDep) -> list[WatchlistPublic]:
    async with services.engine.connect() as conn:
        return [WatchlistPublic(**row) for row in await repository.list_watchlists(conn, user.user_id)]


@router.post(
    "",
    response_model=WatchlistPublic,
    status_code=201,
    responses={**NOT_FOUND, **NAME_TAKEN},
    summary="Create a watchlist",
)
async def create_watchlist(
    body: WatchlistCreate, user: CurrentUser, services: ServicesDep, audit: AuditDep
) -> WatchlistPublic:
    symbols = known_symbols(services, body.symbols)
    async with audit.write("watchlist.create") as write:
        try:
            async with write.conn.begin_nested():
                watchlist_id = await repository.create_watchlist(
                    write.conn, user_id=user.user_id, name=body.name
                )
        except IntegrityError:
            raise HTTPException(409, f"you have a watchlist named {body.name!r} already") from None
        await repository.add_symbols(write.conn, watchlist_id, symbols)
        write.target = f"watchlist:{watchlist_id}"
        write.detail = {"name": body.name, "symbols": symbols}
        created = await _owned(write.conn, user, watchlist_id)
    return WatchlistPublic(**created)


@router.get("/{watchlist_id}", response_model=WatchlistPublic, responses=NOT_FOUND, summary="One watchlist")
async def get_watchlist(
    watchlist_id: WatchlistId, user: CurrentUser, services: ServicesDep
) -> WatchlistPublic:
    async with services.engine.connect() as conn:
        return WatchlistPublic(**await _owned(conn, user, watchlist_id))


@router.patch(
    "/{watchlist_id}",
    response_model=WatchlistPublic,
    responses={**NOT_FOUND, **NAME_TAKEN},
    summary="Rename a watchlist",
)
async def rename_watchlist(
    watchlist_id: WatchlistId, body: WatchlistRename, user: CurrentUser, audit: AuditDep
) -> WatchlistPublic:
    async with audit.write("watchlist.rename", target=f"watchlist:{watchlist_id}") as write:
        await _owned(write.conn, user, watchlist_id, lock=True)
        try:
            async with write.conn.begin_nested():
                await repository.rename_watchlist(write.conn, watchlist_id, body.name)
        except IntegrityError:
            raise HTTPException(409, f"you have a watchlist named {body.name!r} already") from None
        write.detail = {"name": body.name}
        renamed = await _owned(write.conn, user, watchlist_id)
    return WatchlistPublic(**renamed)


@router.delete("/{watchlist_id}", status_code=204, responses=NOT_FOUND, summary="Delete a watchlist")
async def delete_watchlist(watchlist_id: WatchlistId, user: CurrentUser, audit: AuditDep) -> Response:
    async with audit.write("watchlist.delete", target=f"watchlist:{watchlist_id}") as write:
        await _owned(write.conn, user, watchlist_id, lock=True)
        await repository.delete_watchlist(write.conn, watchlist_id)
    return Response(status_code=204)


@router.put(
    "/{watchlist_id}/symbols/{symbol}",
    response_model=WatchlistPublic,
    responses={
        **NOT_FOUND,
        422: {"model": ErrorDetail, "description": "Unknown symbol, or the list is full."},
    },
    summary="Add a symbol to a watchlist",
)
async def add_watchlist_symbol(
    watchlist_id: WatchlistId,
    symbol: WatchedSymbol,
    user: CurrentUser,
    services: ServicesDep,
    audit: AuditDep,
) -> WatchlistPublic:
    """Adding a symbol listed already changes nothing."""
    (symbol,) = known_symbols(services, [symbol])
    async with audit.write("watchlist.add_symbol", target=f"watchlist:{watchlist_id}") as write:
        found = await _owned(write.conn, user, watchlist_id, lock=True)
        if symbol not in found["symbols"] and len(found["symbols"]) >= MAX_WATCHLIST_SYMBOLS:
            raise HTTPException(422, f"a watchlist holds at most {MAX_WATCHLIST_SYMBOLS} symbols")
        await repository.add_symbols(write.conn, watchlist_id, [symbol])
        write.detail = {"symbol": symbol}
        changed = await _owned(write.conn, user, watchlist_id)
    return WatchlistPublic(**changed)


@router.delete(
    "/{watchlist_id}/symbols/{symbol}",
    response_model=WatchlistPublic,
    responses=NOT_FOUND,
    summary="Remove a symbol from a watchlist",
)
async def remove_watchlist_symbol(
    watchlist_id: WatchlistId, symbol: WatchedSymbol, user: CurrentUser, audit: AuditDep
) -> WatchlistPublic:
    symbol = symbol.upper()
    async with audit.write("watchlist.remove_symbol", target=f"watchlist:{watchlist_id}") as write:
        await _owned(write.conn, user, watchlist_id, lock=True)
        if not await repository.remove_symbol(write.conn, watchlist_id, symbol):
            raise HTTPException(404, f"{symbol} is not on watchlist {watchlist_id}")
        write.detail = {"symbol": symbol}
        changed = await _owned(write.conn, user, watchlist_id)
    return WatchlistPublic(**changed)
