"""Request ids, JSON logs and request metrics.

One pure ASGI middleware (cheaper per request than Starlette's BaseHTTPMiddleware) gives every request an id
(the caller's `X-Request-ID` when it is sane, else a new one), echoes it in the response, binds it to the
logs of the request, counts and times the request by route template, and writes one access log line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.metrics import LATENCY, REQUESTS

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
access_logger = logging.getLogger("serving.access")

_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.ExtraAdder(),
]


def json_formatter() -> logging.Formatter:
    """One JSON object per line, for every logger (uvicorn's too), with the request id when there is one."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED_PROCESSORS,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )


def log_config(level: str) -> dict[str, Any]:
    """logging.config.dictConfig settings uvicorn applies in every worker."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "serving.observability.json_formatter"}},
        "handlers": {
            "stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}
        },
        "root": {"handlers": ["stdout"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }


def _route_template(scope: Scope) -> str:
    """The matched route's full path template, so metrics get one series per route, not per symbol.

    The route in the scope carries its path without the prefix it was included under (/api/v1 or none):
    the prefix is what the request's path has before the route's path filled with the request's values.
    """
    route = scope.get("route")
    if route is None:
        return "unmatched"
    template = str(route.path)
    try:
        filled = template.format(**scope.get("path_params", {}))
    except (KeyError, IndexError, ValueError):
        return template
    path: str = scope["path"]
    return path[: len(path) - len(filled)] + template if path.endswith(filled) else template


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Metric series by labels: prometheus_client's labels() looks them up more slowly on every request.
        self._requests: dict[tuple[str, str, int], Any] = {}
        self._latency: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                request_id = candidate if _SANE_REQUEST_ID.match(candidate) else ""
                break
        # As random as a uuid4 and as long, without building one.
        request_id = request_id or os.urandom(16).hex()
        id_header = (b"x-request-id", request_id.encode())
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope["method"]
            self._count(route, method, status, elapsed)
            if access_logger.isEnabledFor(logging.INFO):
                write_access_line(
                    {
                        "event": f"{method} {scope['path']} {status}",
                        "status": status,
                        "route": route,
                        "duration_ms": round(elapsed * 1000, 3),
                        "request_id": request_id,
                        # The peer, or the client a trusted proxy named (STOCKYARD_API_FORWARDED_ALLOW_IPS).
                        "client": scope["client"][0] if scope.get("client") else None,
                        "level": "info",
                        "logger": access_logger.name,
                        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                    }
                )
            structlog.contextvars.reset_contextvars(**tokens)

    def _count(self, route: str, method: str, status: int, elapsed: float) -> None:
        requests = self._requests.get((route, method, status))
        if requests is None:
            requests = self._requests[route, method, status] = REQUESTS.labels(route, method, str(status))
        requests.inc()
        latency = self._latency.get((route, method))
        if latency is None:
            latency = self._latency[route, method] = LATENCY.labels(route, method)
        latency.observe(elapsed)


def write_access_line(entry: dict[str, Any]) -> None:
    """One access log line, as json_formatter would write it, straight to standard output: a LogRecord and
    structlog's processors would cost more than the rest of a cached answer. Flushed at once, as logging's
    handler does, so the lines of several workers never interleave."""
    sys.stdout.write(json.dumps(entry) + "\n")
    sys.stdout.flush()
