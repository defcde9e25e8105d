"""What routes depend on: `ApiDep`, one object per request with the app's services, the data state, input
checks against that state, and the cached answer.

One dependency without sub-dependencies on purpose: FastAPI resolves each dependency on every request, and on
a cached answer that resolution is most of the work left.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Path, Request, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from serving.cache import ALIAS_SLOT, EncodedResponse, ResponseCache, Uncacheable
from serving.compression import accepts_gzip
from serving.database import within
from serving.ratelimit import RateLimiter
from serving.schemas import ErrorDetail
from serving.settings import ApiSettings
from serving.state import DataState, StateHolder
from stockyard.api_cache import CacheNamespace

API_PREFIX = "/api/v1"

ModelT = TypeVar("ModelT", bound=BaseModel)
SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,14}$"
SymbolPath = Annotated[
    str, Path(pattern=SYMBOL_PATTERN, description="Ticker symbol (any case).", examples=["ALD"])
]

# The answer of the routes that serve what a model made, before any model has been promoted.
NO_MODEL_YET: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorDetail, "description": "No model has been promoted yet."}
}


@dataclass(frozen=True)
class Services:
    settings: ApiSettings
    engine: AsyncEngine
    cache: ResponseCache
    state: StateHolder
    limiter: RateLimiter


class Api:
    def __init__(
        self, services: Services, state: DataState, as_of: date, request: Request, response: Response
    ) -> None:
        self.services = services
        self.engine = services.engine
        self.state = state
        self.as_of = as_of
        self._request = request
        self._response = response

    def known_symbol(self, symbol: str) -> str:
        symbol = symbol.upper()
        if symbol not in self.state.symbol_sources:
            raise HTTPException(404, f"unknown symbol '{symbol}'")
        return symbol

    def known_symbols(self, value: str, *, limit: int) -> list[str]:
        """A comma list of symbols, upper-cased and de-duplicated in order; 404 names the unknown ones."""
        symbols = list(dict.fromkeys(part.strip().upper() for part in value.split(",") if part.strip()))
        if len(symbols) > limit:
            raise HTTPException(422, f"symbols: at most {limit} symbols per request, got {len(symbols)}")
        unknown = [symbol for symbol in symbols if symbol not in self.state.symbol_sources]
        if unknown:
            raise HTTPException(404, f"unknown symbol{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
        return symbols

    def promoted_model(self) -> None:
        """503 before any model has been promoted: what a model makes is not there yet."""
        if not self.state.champions:
            raise HTTPException(
                503, "no model has been promoted yet: the products have not been materialized"
            )

    def date_range(self, start: date | None, end: date | None, *, default_days: int) -> tuple[date, date]:
        """[start, end] with the defaults: end = the data date (or start, when later: nothing yet), start =
        `default_days` before end. Only an explicit end can be before start, and that is a 422."""
        if end is None:
            end = self.as_of if start is None else max(self.as_of, start)
        start = start or end - timedelta(days=default_days)
        if start > end:
            raise HTTPException(422, f"start ({start}) is after end ({end})")
        return start, end

    async def respond(
        self,
        route: CacheNamespace,
        params: str,
        load: Callable[[], Awaitable[ModelT]],
        *,
        cacheable: Callable[[ModelT], bool] = lambda _: True,
    ) -> Response:
        """The answer from the response cache, or from `load` (then cached), as JSON bytes, gzip-compressed
        when the client accepts it.

        `params` names the answer among the route's: it must be built from the validated parameters only,
        never from the URL, so that what a route does not read cannot make new cache entries. Headers set on
        the injected `Response` (the legacy paths' deprecation) are kept; `X-Cache` says where the answer
        came from (serving.cache.Outcome). `load` has `request_deadline_seconds` to answer
        (serving.database.within).
        """

        async def load_bytes() -> bytes:
            model = await within(self.services.settings.request_deadline_seconds, load(), what=route)
            content = model.model_dump_json().encode()
            if not cacheable(model):
                raise Uncacheable(content)
            return content

        cache: ResponseCache = self.services.cache
        key = cache.key(self.state, route, params)
        answer = await cache.fetch(key, load_bytes)
        headers = [*self._response.raw_headers, (b"x-cache", answer.outcome.encode())]
        if answer.cacheable:
            slot = self._request.scope.get(ALIAS_SLOT)
            if slot is not None:
                slot.key, slot.headers = key, tuple(self._response.raw_headers)
        else:
            headers.append((b"cache-control", b"no-store"))
        return EncodedResponse(answer.body, gzip=accepts_gzip(self._request.scope), headers=headers)


# A coroutine: FastAPI would run a plain function in its thread pool, a cost on every request.
async def api(request: Request, response: Response) -> Api:
    services: Services = request.app.state.services
    state = services.state.current
    if state is None or state.as_of is None:
        raise HTTPException(503, "the warehouse cannot be reached or holds no prices yet")
    return Api(services, state, state.as_of, request, response)


ApiDep = Annotated[Api, Depends(api)]


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
