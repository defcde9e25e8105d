"""gzip: whether a client accepts it, and the middleware for the responses that do not encode themselves.

The cached answers are compressed once, when they are computed (serving.cache.Encoded), and sent as they are
(serving.deps.EncodedResponse); GzipMiddleware compresses the rest when it is big enough: the OpenAPI
document, the docs, /metrics. It is pure ASGI and does nothing for a client that does not accept gzip.
"""

from __future__ import annotations

import gzip

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Smaller bodies go out plain: gzip's framing would outweigh what it saves.
GZIP_MINIMUM_BYTES = 1000
GZIP_LEVEL = 6


def compress(body: bytes) -> bytes:
    # mtime 0: the same body compresses to the same bytes in every worker.
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)


def accepts_gzip(scope: Scope) -> bool:
    """Whether the request's Accept-Encoding lists gzip (or `*`) with a quality above 0."""
    for name, value in scope["headers"]:
        if name != b"accept-encoding":
            continue
        for coding in value.decode("latin-1").lower().split(","):
            token, _, parameters = coding.partition(";")
            if token.strip() not in ("gzip", "*"):
                continue
            quality = parameters.strip()
            if not quality.startswith("q="):
                return True
            try:
                return float(quality[2:]) > 0
            except ValueError:
                return False
    return False


class GzipMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not accepts_gzip(scope):
            await self.app(scope, receive, send)
            return
        held: Message | None = None

        async def send_compressed(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                held = message  # until the body shows whether to compress
                return
            if held is None:
                await send(message)
                return
            start, held = held, None
            headers = start.get("headers", [])
            body = message.get("body", b"")
            if (
                message["type"] == "http.response.body"
                and not message.get("more_body", False)
                and len(body) >= GZIP_MINIMUM_BYTES
                and not any(name == b"content-encoding" for name, _ in headers)
            ):
                message["body"] = compress(body)
                start["headers"] = [
                    *((name, value) for name, value in headers if name != b"content-length"),
                    (b"content-length", str(len(message["body"])).encode()),
                    (b"content-encoding", b"gzip"),
                    (b"vary", b"Accept-Encoding"),
                ]
            await send(start)
            await send(message)

        await self.app(scope, receive, send_compressed)
