"""HTTP basics of every answer, in one pure ASGI middleware.

- HEAD is answered wherever GET is (health checkers use it): the GET's status and headers, without its body.
- Every answer says `X-Content-Type-Options: nosniff`.
- A cacheable answer, a 200 that went through the response cache (it has `X-Cache`) and was not marked
  `Cache-Control: no-store` there, gets `Cache-Control` with the configured max-age and `Vary:
  Accept-Encoding` (as it is sent compressed or not), added to any `Vary` already there.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_NOSNIFF = (b"x-content-type-options", b"nosniff")
_VARY_ON = b"Accept-Encoding"


def _with_vary(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    values = [value for name, value in headers if name == b"vary"]
    fields = [field.strip() for value in values for field in value.split(b",") if field.strip()]
    if _VARY_ON.lower() not in {field.lower() for field in fields}:
        fields.append(_VARY_ON)
    return [(name, value) for name, value in headers if name != b"vary"] + [(b"vary", b", ".join(fields))]


class HttpBasicsMiddleware:
    def __init__(self, app: ASGIApp, *, max_age_seconds: int) -> None:
        self.app = app
        self._cache_control = (b"cache-control", f"public, max-age={max_age_seconds}".encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"

        async def send_basics(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), _NOSNIFF]
                names = {name for name, _ in headers}
                if message["status"] == 200 and b"x-cache" in names and b"cache-control" not in names:
                    headers = [*_with_vary(headers), self._cache_control]
                message = {**message, "headers": headers}
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        if not head:
            await self.app(scope, receive, send_basics)
            return
        # Routed and cached as the GET it mirrors, in a copy of the scope: the server reads the method from
        # its own (uvicorn expects no body for HEAD, and the whole body for GET).
        as_get = {**scope, "method": "GET"}
        try:
            await self.app(as_get, receive, send_basics)
        finally:
            # The route matched, for the metrics and logs of the request context outside.
            for key in ("route", "path_params"):
                if key in as_get:
                    scope[key] = as_get[key]
