"""The websocket's fan-out: one Redis pub/sub subscriber per worker (on stockyard.live's channel pattern),
handing each message to this worker's connections, a user's channel to that user's, the broadcast to all.

A connection costs no Redis connection and no task of its own here, only its place in a dict: a refresh
reaching every client is one message from Redis and one send per connection, sent concurrently. A client
slower than SEND_TIMEOUT_SECONDS is dropped rather than holding the others up. When Redis goes away the
subscriber reconnects with a back-off; what was published meanwhile is lost to the push (GET /hits has it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

import redis.asyncio as aioredis
from fastapi import WebSocket
from redis.exceptions import RedisError

from stockyard.live import channel_pattern, user_of

logger = logging.getLogger("serving.live")
SEND_TIMEOUT_SECONDS = 5.0
RECONNECT_SECONDS = (0.5, 1.0, 2.0, 5.0)


class LiveHub:
    def __init__(self, *, redis_url: str, cache_prefix: str) -> None:
        self._redis_url = redis_url
        self._prefix = cache_prefix
        self._by_user: dict[int, set[WebSocket]] = {}
        self._task: asyncio.Task[None] | None = None
        # Set while the subscription is live: a connection says it is ready only then (no message lost
        # between its sign-in and the subscription).
        self.subscribed = asyncio.Event()

    @property
    def connections(self) -> int:
        return sum(len(sockets) for sockets in self._by_user.values())

    def add(self, user_id: int, websocket: WebSocket) -> None:
        self._by_user.setdefault(user_id, set()).add(websocket)

    def remove(self, user_id: int, websocket: WebSocket) -> None:
        sockets = self._by_user.get(user_id)
        if sockets is not None:
            sockets.discard(websocket)
            if not sockets:
                del self._by_user[user_id]

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="live-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        failures = 0
        while True:
            client = aioredis.Redis.from_url(self._redis_url)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(channel_pattern(self._prefix))
                self.subscribed.set()
                failures = 0
                async for message in pubsub.listen():
                    if message["type"] == "pmessage":
                        await self.dispatch(_text(message["channel"]), _text(message["data"]))
            except (RedisError, OSError) as error:
                self.subscribed.clear()
                pause = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
                failures += 1
                logger.warning("live updates: Redis subscription lost (%s); again in %.1f s", error, pause)
                await asyncio.sleep(pause)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                    await client.aclose()

    async def dispatch(self, channel: str, data: str) -> None:
        """Send `data` to the connections `channel` is for."""
        user_id = user_of(channel, self._prefix)
        if user_id is None:
            targets: Iterable[WebSocket] = [ws for sockets in self._by_user.values() for ws in sockets]
        else:
            targets = list(self._by_user.get(user_id, ()))
        await asyncio.gather(*(self._send(websocket, data) for websocket in targets))

    async def _send(self, websocket: WebSocket, data: str) -> None:
        try:
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                await websocket.send_text(data)
        except Exception as error:  # one client's failure must not stop the others' messages
            logger.info("live updates: dropping a connection that could not take a message: %r", error)
            with contextlib.suppress(Exception):
                await websocket.close(code=1011, reason="could not deliver a message")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
