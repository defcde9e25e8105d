"""The FastAPI application: `create_app()` (uvicorn's factory, see `stockyard serve`).

Versioned routes live under /api/v1; the stock routes are also served at their old unversioned paths, marked
deprecated, with `Deprecation` and `Link` headers pointing at their /api/v1 successors.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from serving.cache import MemoryTierMiddleware, ResponseCache
from serving.compression import GzipMiddleware
from serving.database import create_engine, settle_abandoned
from serving.deps import API_PREFIX, Services
from serving.docs import add_docs
from serving.errors import UnexpectedErrorMiddleware, install_error_handlers
from serving.http import HttpBasicsMiddleware
from serving.live import LiveHub
from serving.metrics import exposition
from serving.observability import REQUEST_ID_HEADER, RequestContextMiddleware
from serving.ratelimit import RateLimiter
from serving.routes import (
    admin,
    alerts,
    analysis,
    auth,
    health,
    live,
    me,
    models,
    personal,
    portfolios,
    prices,
    recommendations,
    screens,
    sectors,
    stocks,
    watchlists,
)
from serving.schemas import ErrorDetail
from serving.settings import ApiSettings, get_api_settings
from serving.state import DataState, StateHolder, load_state

# When the unversioned paths were deprecated (RFC 9745: a Unix time after '@').
LEGACY_DEPRECATED_AT = datetime(2026, 11, 27, tzinfo=UTC)
# Replaces FastAPI's default 422 schema: the handler below answers one readable message instead.
BAD_INPUT: dict[int | str, dict[str, object]] = {
    422: {
        "model": ErrorDetail,
        "description": "A parameter is malformed or out of range (the message says which).",
    }
}


BODY_UNREADABLE: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorDetail, "description": "The body cannot be parsed."}
}
RATE_LIMITED: dict[int | str, dict[str, object]] = {
    429: {"model": ErrorDetail, "description": "Too many requests; `Retry-After` says when to try again."}
}
ACCOUNT_ANSWERS: dict[int | str, dict[str, object]] = {
    **BODY_UNREADABLE,
    401: {"model": ErrorDetail, "description": "Not signed in, or a token that is invalid or outdated."},
    **RATE_LIMITED,
}


def _operation_id(route: APIRoute) -> str:
    # The handler's name: stable across releases, and what generated clients call the method.
    return route.name


def _legacy_operation_id(route: APIRoute) -> str:
    return f"legacy_{route.name}"


async def mark_deprecated(request: Request, response: Response) -> None:
    # Percent-encoded: header values are latin-1, a path may be any text.
    successor = API_PREFIX + quote(request.url.path, safe="/")
    if request.url.query:
        successor += f"?{request.url.query}"
    response.headers["Deprecation"] = f"@{int(LEGACY_DEPRECATED_AT.timestamp())}"
    response.headers["Link"] = f'<{successor}>; rel="successor-version"'


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ApiSettings = app.state.settings
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        statement_timeout_ms=settings.db_statement_timeout_ms,
        connect_timeout_seconds=settings.db_connect_timeout_seconds,
        pool_timeout_seconds=settings.db_pool_timeout_seconds,
    )
    cache = ResponseCache(
        redis_url=settings.redis_url,
        prefix=settings.cache_prefix,
        ttl_seconds=settings.cache_ttl_seconds,
        memory_ttl_seconds=settings.memory_cache_ttl_seconds,
        memory_max_bytes=settings.memory_cache_max_bytes,
        redis_timeout_seconds=settings.redis_timeout_seconds,
        redis_retry_seconds=settings.redis_retry_seconds,
        lock_seconds=settings.cache_lock_seconds,
    )

    async def current_state() -> DataState:
        generation, namespace_generations = await cache.generations()
        return await load_state(engine, generation=generation, namespace_generations=namespace_generations)

    state = StateHolder(
        current_state, interval=settings.state_refresh_seconds, deadline=settings.request_deadline_seconds
    )
    await state.start()
    limiter = RateLimiter(
        redis_url=settings.redis_url,
        prefix=settings.cache_prefix,
        per_user=settings.rate_limit_per_user,
        per_ip=settings.rate_limit_per_ip,
        login=settings.rate_limit_login,
        timeout_seconds=settings.redis_timeout_seconds,
    )
    app.state.services = Services(settings=settings, engine=engine, cache=cache, state=state, limiter=limiter)
    app.state.live_hub = LiveHub(redis_url=settings.redis_url, cache_prefix=settings.cache_prefix)
    await app.state.live_hub.start()
    # What the worker holds now (modules, routes, schemas, pools) lives as long as it does: frozen, it is out
    # of the cyclic collector's sight, whose full passes over it stalled every request for 0.1-0.4 s every
    # few thousand requests (bench/api, /health/live p99 330 ms before, 29 ms after, on a loaded machine).
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        # uvicorn has stopped accepting and drained the requests in flight by now.
        await app.state.live_hub.stop()
        await state.stop()
        await settle_abandoned(settings.graceful_shutdown_seconds)
        await cache.close()
        await engine.dispose()


async def _metrics() -> Response:
    content, media_type = exposition()
    return Response(content, media_type=media_type)


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or get_api_settings()
    app = FastAPI(
        title="Stockyard API",
        version="1.0.0",
        summary="Prices, indicators, recommendations, forecasts and backtests of the Stockyard warehouse.",
        description=(
            "Every response says what it is made from: `as_of` (the data date), `data_source` ('synthetic' "
            "for the sample market) and, where a model made the figures, `model_version`. The `X-Cache` "
            f"header says where an answer came from; `{REQUEST_ID_HEADER}` names the request in the logs."
        ),
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        docs_url=None,
        redoc_url=None,
        # The API exports Prometheus metrics; without this FastAPI looks for OpenTelemetry on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    for router in (health.router, sectors.router, models.router):
        app.include_router(router, prefix=API_PREFIX)
    for router in (stocks.router, prices.router, recommendations.router, analysis.router):
        app.include_router(router, prefix=API_PREFIX, responses=BAD_INPUT)
    # The accounts: signed in through /auth, rate-limited (serving.ratelimit), audited (serving.audit).
    for router in (auth.router, me.router, portfolios.router, admin.router):
        app.include_router(router, prefix=API_PREFIX, responses={**BAD_INPUT, **ACCOUNT_ANSWERS})
    # Watchlists, screens and alerts on the accounts, and their live updates (serving.live).
    # Their routes document their own 401 (the fields a screen may use need no account).
    for router in (watchlists.router, personal.router, screens.router, alerts.router, alerts.hits_router):
        app.include_router(
            router, prefix=API_PREFIX, responses={**BAD_INPUT, **BODY_UNREADABLE, **RATE_LIMITED}
        )
    app.include_router(live.router, prefix=API_PREFIX)
    app.include_router(
        stocks.router,
        responses=BAD_INPUT,
        deprecated=True,
        dependencies=[Depends(mark_deprecated)],
        generate_unique_id_function=_legacy_operation_id,
        tags=["legacy"],
    )
    app.add_api_route("/metrics", _metrics, include_in_schema=False)
    add_docs(app)
    install_error_handlers(app)
    # Added innermost first: the request context wraps everything, so it times and logs compression too.
    app.add_middleware(GzipMiddleware)
    # Outside compression: what it answers is compressed already.
    app.add_middleware(MemoryTierMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "HEAD", "POST", "PATCH", "DELETE"],
            allow_headers=["*"],
            expose_headers=[REQUEST_ID_HEADER, "X-Cache", "Deprecation", "Link"],
        )
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(HttpBasicsMiddleware, max_age_seconds=settings.http_max_age_seconds)
    app.add_middleware(RequestContextMiddleware)
    return app
