"""Error answers: every one is JSON of one shape (serving.schemas.ErrorDetail), with the request's id.

The id is the one serving.observability.RequestContextMiddleware binds to the logs of the request. Starlette
renders unexpected exceptions in ServerErrorMiddleware, outside every user middleware, where the request
context is already gone (no id in the logs, no `X-Request-ID` header); UnexpectedErrorMiddleware, added inside
the request context, answers them instead.
"""

from __future__ import annotations

import logging

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.database import WarehouseTimeout

logger = logging.getLogger("serving.errors")


def error_response(status_code: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return JSONResponse(
        {"detail": detail, "request_id": request_id}, status_code=status_code, headers=headers
    )


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = [
        f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}" for problem in error.errors()
    ]
    return error_response(422, "; ".join(problems))


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    headers = dict(error.headers or {})
    if error.status_code == 405:
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    allowed = headers.get("Allow")
    if allowed is not None and "GET" in allowed.split(", "):
        # serving.http.HttpBasicsMiddleware answers HEAD wherever GET is.
        headers["Allow"] = f"{allowed}, HEAD"
    return error_response(error.status_code, str(error.detail), headers)


def _allowed_methods(request: Request) -> str:
    """Every method some route answers at the request's path, as the router matches them: Starlette's 405
    names only the first route's, and a resource's GET and POST (or PATCH and DELETE) are separate routes."""
    return ", ".join(
        method
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    )


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    logger.error("database error on %s", request.url.path, exc_info=error)
    return error_response(503, "the warehouse is unavailable; try again shortly")


async def _warehouse_busy(request: Request, error: Exception) -> JSONResponse:
    # The pool had no free connection in time, or the warehouse did not answer by a deadline.
    logger.warning("warehouse busy on %s: %s", request.url.path, error)
    retry_after = request.app.state.settings.retry_after_seconds
    return error_response(
        503, "the warehouse is busy or not answering; try again shortly", {"Retry-After": str(retry_after)}
    )


class UnexpectedErrorMiddleware:
    """A 500 with the JSON error body for an exception no handler took, logged with the request's id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except Exception:
            logger.exception("unexpected error on %s %s", scope["method"], scope["path"])
            if started:
                # Part of the answer is out: the server can only cut the connection.
                raise
            await error_response(500, "internal error; the request id names it in the logs")(
                scope, receive, send
            )


def install_error_handlers(app: FastAPI) -> None:
    """The handlers; the app adds UnexpectedErrorMiddleware inside its request context middleware."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(OSError, _database_error)
    for busy in (PoolTimeout, WarehouseTimeout):
        app.add_exception_handler(busy, _warehouse_busy)
