"""uvicorn's httptools protocol with a ceiling on a request's line and headers (`stockyard serve` uses it).

httptools buffers a header of any size before the app sees it, so the ceiling is kept where the bytes arrive:
once a request's head passes STOCKYARD_API_MAX_REQUEST_HEAD_BYTES, it is refused with 431 and the connection
closed, having held at most that much and one read more.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from serving.settings import get_api_settings

logger = logging.getLogger("serving.protocol")


class BoundedHeadHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_limit = int(get_api_settings().max_request_head_bytes)
        # Bytes received since the last request's headers were complete: the next request's head so far.
        self._head_bytes = 0
        self._reading_head = True

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            self._head_bytes += len(data)
            if self._head_bytes > self._head_limit:
                self._refuse_head()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head = True

    def _refuse_head(self) -> None:
        detail = f"the request line and headers exceed {self._head_limit} bytes"
        logger.warning("refused a request from %s: %s", self.client, detail)
        body = json.dumps({"detail": detail}).encode()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        self.transport.close()
