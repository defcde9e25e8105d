"""The response cache: a per-worker in-memory tier in front of Redis, both through cashews.

Redis holds each answer's JSON bytes under a key with the data date, the model versions and the purge
generation (serving.state.DataState.cache_namespace), so nothing needs deleting when the data changes. The
memory tier (MemoryTierMiddleware) keeps whole responses under the same namespace and answers repeats before
routing, which is most of the cost of a cached answer. Stampedes are held off twice: within a worker,
concurrent misses of a key share one computation (`thunder_protection`); across workers a Redis lock lets one
compute while the others wait for its result. When Redis fails, answers come from PostgreSQL (outcome
`fallback`) and Redis is left alone for a few seconds before it is tried again.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cashews import Cache, CacheBackendInteractionError, thunder_protection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.metrics import CACHE_LOOKUPS
from stockyard.api_cache import generation_key

logger = logging.getLogger("serving.cache")


class Outcome(StrEnum):
    memory_hit = "hit-memory"
    redis_hit = "hit-redis"
    miss = "miss"
    fallback = "fallback"


class Uncacheable(Exception):
    """Raised by a loader with a response that must not be cached, such as an incomplete one."""

    def __init__(self, content: bytes) -> None:
        super().__init__("response not to be cached")
        self.content = content


@dataclass(frozen=True, slots=True)
class Answer:
    content: bytes
    outcome: Outcome
    # False for an answer that must not be kept (Uncacheable): its response says `Cache-Control: no-store`.
    cacheable: bool = True


@dataclass(frozen=True, slots=True)
class StoredResponse:
    # An object rather than bytes: cashews hands objects back from memory as they are, without decoding.
    headers: list[tuple[bytes, bytes]]
    body: bytes
    route: Any
    path_params: dict[str, str]


class ResponseCache:
    def __init__(
        self,
        *,
        redis_url: str,
        prefix: str,
        ttl_seconds: int,
        memory_ttl_seconds: int,
        memory_size: int,
        redis_timeout_seconds: float,
        redis_retry_seconds: float,
        lock_seconds: float,
    ) -> None:
        self.prefix = prefix
        self._ttl_ms = ttl_seconds * 1000
        self._memory_ttl = memory_ttl_seconds
        self._retry_seconds = redis_retry_seconds
        self._lock_seconds = lock_seconds
        self._redis_down_until = 0.0
        self.memory = Cache(name="api-memory")
        self.memory.setup(f"mem://?size={memory_size}&check_interval=5")
        self.redis = Cache(name="api-redis")
        self.redis.setup(
            redis_url,
            # Errors raise, so the API knows to answer uncached and to say so.
            suppress=False,
            socket_connect_timeout=redis_timeout_seconds,
            socket_timeout=redis_timeout_seconds,
            wait_for_connection_timeout=redis_timeout_seconds,
            max_connections=64,
            client_name="stockyard-api",
        )

    def key(self, namespace: str, route: str, params: str) -> str:
        digest = hashlib.blake2b(params.encode(), digest_size=12).hexdigest()
        return f"{self.prefix}:r:{namespace}:{route}:{digest}"

    async def recall(self, key: str) -> StoredResponse | None:
        """A whole response from this worker's memory tier (see MemoryTierMiddleware)."""
        stored = await self.memory.get(key)
        return stored if isinstance(stored, StoredResponse) else None

    async def remember(self, key: str, response: StoredResponse) -> None:
        await self.memory.set(key, response, expire=self._memory_ttl)

    async def fetch(self, key: str, load: Callable[[], Awaitable[bytes]]) -> Answer:
        """The bytes Redis has under `key`, or those `load` makes (then cached), and where they came from."""
        answer = await self._fill(key=key, load=load)
        CACHE_LOOKUPS.labels(answer.outcome).inc()
        return answer

    @thunder_protection(key="{key}")
    async def _fill(self, *, key: str, load: Callable[[], Awaitable[bytes]]) -> Answer:
        loaded: bytes | None = None
        try:
            if not self.redis_available:
                return Answer(await load(), Outcome.fallback)
            try:
                cached = await self.redis.get_raw(key)
                if cached is not None:
                    return Answer(cached, Outcome.redis_hit)
                async with self.redis.lock(
                    f"{self.prefix}:lock:{key}", expire=self._lock_seconds, check_interval=0.01
                ):
                    # Another worker may have filled it while this one waited for the lock.
                    cached = await self.redis.get_raw(key)
                    if cached is not None:
                        return Answer(cached, Outcome.redis_hit)
                    loaded = await load()
                    await self.redis.set_raw(key, loaded, px=self._ttl_ms)
                    return Answer(loaded, Outcome.miss)
            except CacheBackendInteractionError:
                self._mark_redis_down()
                return Answer(loaded if loaded is not None else await load(), Outcome.fallback)
        except Uncacheable as incomplete:
            return Answer(incomplete.content, Outcome.miss, cacheable=False)

    @property
    def redis_available(self) -> bool:
        return time.monotonic() >= self._redis_down_until

    def _mark_redis_down(self) -> None:
        logger.warning("Redis is unavailable: answering from PostgreSQL for %.0f s", self._retry_seconds)
        self._redis_down_until = time.monotonic() + self._retry_seconds

    async def ping_redis(self) -> bool:
        try:
            await self.redis.ping()
        except CacheBackendInteractionError:
            return False
        self._redis_down_until = 0.0
        return True

    async def generation(self) -> int:
        """The purge generation (stockyard.api_cache.purge_api_cache bumps it); 0 while Redis is down."""
        if not self.redis_available:
            return 0
        try:
            value = await self.redis.get_raw(generation_key(self.prefix))
        except CacheBackendInteractionError:
            self._mark_redis_down()
            return 0
        return int(value or 0)

    async def close(self) -> None:
        await self.memory.close()
        await self.redis.close()


class MemoryTierMiddleware:
    """The per-worker memory tier, in front of routing: a repeated GET is answered from memory without
    resolving its route, dependencies and parameters again.

    A response is kept when it is a 200 that went through the response cache (it has `X-Cache`) and may be
    stored; the key holds the data state's namespace and the request's path and query, so, like the Redis
    keys, it changes with the data date, the model versions and each purge.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services: Any = getattr(scope["app"].state, "services", None) if scope["type"] == "http" else None
        state = services.state.current if services is not None else None
        if state is None or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        cache: ResponseCache = services.cache
        query = scope["query_string"].decode("latin-1")
        key = f"{cache.prefix}:m:{state.cache_namespace}:{scope['path']}?{query}"
        stored = await cache.recall(key)
        if stored is not None:
            CACHE_LOOKUPS.labels(Outcome.memory_hit).inc()
            # What routing would have put in the scope, for the metrics and logs outside.
            scope["route"], scope["path_params"] = stored.route, stored.path_params
            # A copy: middleware outside (GZip) edits the headers of the message in place.
            await send({"type": "http.response.start", "status": 200, "headers": list(stored.headers)})
            await send({"type": "http.response.body", "body": stored.body})
            return

        status = 0
        headers: list[tuple[bytes, bytes]] = []
        body = bytearray()

        async def keep(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status, headers = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, keep)
        names = {name for name, _ in headers}
        if status == 200 and b"x-cache" in names and b"cache-control" not in names:
            hit = [(name, b"hit-memory" if name == b"x-cache" else value) for name, value in headers]
            stored = StoredResponse(
                headers=hit,
                body=bytes(body),
                route=scope.get("route"),
                path_params=scope.get("path_params", {}),
            )
            await cache.remember(key, stored)
