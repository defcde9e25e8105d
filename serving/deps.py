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

from serving.cache import ResponseCache, Uncacheable
from serving.database import within
from serving.schemas import ErrorDetail
from serving.settings import ApiSettings
from serving.state import DataState, StateHolder

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


class Api:
    def __init__(self, services: Services, state: DataState, as_of: date, response: Response) -> None:
        self.services = services
        self.engine = services.engine
        self.state = state
        self.as_of = as_of
        self._response = response

    def known_symbol(self, symbol: str) -> str:
        symbol = symbol.upper()
        if symbol not in self.state.symbol_sources:
            raise HTTPException(404, f"unknown symbol '{symbol}'")
        return symbol

    def known_symbols(self, value: str, *, limit: int) -> list[str]:
        """A comma list of symbols, upper-cased and de-duplicated in order; 404 names the unknown ones."""
        symbols = list(dict.fromkeys(part.strip().upper() for part in value.split(",") if part.strip()))
        if not symbols:
            raise HTTPException(422, "symbols: give at least one symbol")
        if len(symbols) > limit:
            raise HTTPException(422, f"symbols: at most {limit} symbols per request, got {len(symbols)}")
        unknown = [symbol for symbol in symbols if symbol not in self.state.symbol_sources]
        if unknown:
            raise HTTPException(404, f"unknown symbol{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
        return symbols

    def known_sector(self, sector: str | None) -> str | None:
        if sector is not None and sector not in self.state.sectors:
            known = ", ".join(sorted(self.state.sectors))
            raise HTTPException(422, f"unknown sector '{sector}'; known: {known}")
        return sector

    def promoted_model(self) -> None:
        """503 before any model has been promoted: what a model makes is not there yet."""
        if not self.state.champions:
            raise HTTPException(
                503, "no model has been promoted yet: the products have not been materialized"
            )

    def date_range(self, start: date | None, end: date | None, *, default_days: int) -> tuple[date, date]:
        """[start, end] with the defaults: end = the data date, start = `default_days` before end."""
        end = end or self.as_of
        start = start or end - timedelta(days=default_days)
        if start > end:
            raise HTTPException(422, f"start ({start}) is after end ({end})")
        return start, end

    async def respond(
        self,
        route: str,
        params: str,
        load: Callable[[], Awaitable[ModelT]],
        *,
        cacheable: Callable[[ModelT], bool] = lambda _: True,
    ) -> Response:
        """The answer from the response cache, or from `load` (then cached), as JSON bytes.

        `load` has `request_deadline_seconds` to answer (serving.database.within). Headers set on the injected
        `Response` (the legacy paths' deprecation) are kept; `X-Cache` says where the answer came from:
        hit-redis, miss, or fallback when Redis is unavailable (hit-memory comes from
        serving.cache.MemoryTierMiddleware, in front of the routes).
        """

        async def load_bytes() -> bytes:
            model = await within(self.services.settings.request_deadline_seconds, load(), what=route)
            content = model.model_dump_json().encode()
            if not cacheable(model):
                raise Uncacheable(content)
            return content

        cache: ResponseCache = self.services.cache
        answer = await cache.fetch(cache.key(self.state.cache_namespace, route, params), load_bytes)
        response = Response(content=answer.content, media_type="application/json")
        response.headers.update(self._response.headers)
        response.headers["X-Cache"] = answer.outcome
        if not answer.cacheable:
            response.headers["Cache-Control"] = "no-store"
        return response


# A coroutine: FastAPI would run a plain function in its thread pool, a cost on every request.
async def api(request: Request, response: Response) -> Api:
    services: Services = request.app.state.services
    state = services.state.current
    if state is None or state.as_of is None:
        raise HTTPException(503, "the warehouse cannot be reached or holds no prices yet")
    return Api(services, state, state.as_of, response)


ApiDep = Annotated[Api, Depends(api)]


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
