"""The response cache: a per-worker memory tier in front of Redis.

Both tiers hold answers under one key built from the route's validated parameters (never the raw URL, so
parameters a route does not read cannot make new entries) and the data state's namespace (the data date, the
model versions and the purge generation, serving.state.DataState.cache_namespace), so nothing needs deleting
when the data changes. Each route family's answers are in a CacheNamespace with a purge generation of its
own (stockyard.api_cache), for an admin to clear one alone. Each answer is kept gzip-compressed beside its
plain JSON, compressed once when it is computed: a hit never compresses again. Redis holds the compressed
bytes; the memory tier holds both, capped in bytes.

Stampedes are held off twice: within a worker, concurrent requests for a key share one computation (counted
once, as a miss; the requests that waited on it are `coalesced`); across workers a Redis lock lets one compute
while the others wait for its result. A command on a pooled connection that Redis has closed (an idle
timeout, a restart, CLIENT KILL) is retried once on a new connection; when Redis still fails, the error is
logged, answers come from PostgreSQL (outcome `fallback`) and Redis is left alone for a few seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.lock import Lock
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError, RedisError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.compression import GZIP_MINIMUM_BYTES, accepts_gzip, compress
from serving.metrics import CACHE_LOOKUPS
from stockyard.api_cache import CacheNamespace, generation_key, namespace_generations_key, response_key

if TYPE_CHECKING:
    from serving.state import DataState

logger = logging.getLogger("serving.cache")

# Part of every Redis key, changed with what the values hold, so that workers of two releases sharing a Redis
# (during a rolling deploy) never read each other's values: 2 = gzip-compressed when large enough.
_VALUE_FORMAT = "2"
_GZIP_MAGIC = b"\x1f\x8b"  # how Redis values that are compressed start (JSON never does)
_THREAD_MINIMUM_BYTES = 128 * 1024
# What an entry costs the memory tier beyond its key and bytes (the objects around them), for its byte cap.
_ENTRY_OVERHEAD_BYTES = 200


class Outcome(StrEnum):
    memory_hit = "hit-memory"
    redis_hit = "hit-redis"
    miss = "miss"
    coalesced = "coalesced"
    fallback = "fallback"


class Uncacheable(Exception):
    """Raised by a loader with a response that must not be cached, such as an incomplete one."""

    def __init__(self, content: bytes) -> None:
        super().__init__("response not to be cached")
        self.content = content


@dataclass(frozen=True, slots=True)
class Encoded:
    """One answer as plain JSON and, when it is worth it, gzip-compressed."""

    plain: bytes
    gzipped: bytes | None

    @classmethod
    def of(cls, plain: bytes) -> Encoded:
        return cls(plain, compress(plain) if len(plain) >= GZIP_MINIMUM_BYTES else None)

    @classmethod
    def from_redis(cls, stored: bytes) -> Encoded:
        if stored.startswith(_GZIP_MAGIC):
            return cls(zlib.decompress(stored, wbits=16 + zlib.MAX_WBITS), stored)
        return cls(stored, None)

    def for_redis(self) -> bytes:
        return self.gzipped if self.gzipped is not None else self.plain

    @property
    def size(self) -> int:
        return len(self.plain) + len(self.gzipped or b"") + _ENTRY_OVERHEAD_BYTES


@dataclass(frozen=True, slots=True)
class Answer:
    body: Encoded
    outcome: Outcome
    # False for an answer that must not be kept (Uncacheable): its response says `Cache-Control: no-store`.
    cacheable: bool = True


@dataclass(frozen=True, slots=True)
class Alias:
    """What MemoryTierMiddleware needs to answer a URL again without routing it: the key of its answer (made
    of the validated parameters), the headers its route added (the legacy paths' deprecation) and the route
    itself, for the metrics and logs."""

    key: str
    headers: tuple[tuple[bytes, bytes], ...]
    route: Any
    path_params: dict[str, str]

    @property
    def size(self) -> int:
        return sum(len(name) + len(value) for name, value in self.headers) + _ENTRY_OVERHEAD_BYTES


@dataclass(slots=True)
class AliasSlot:
    """Put in a request's scope by MemoryTierMiddleware; Api.respond fills it when the answer may be kept."""

    key: str | None = None
    headers: tuple[tuple[bytes, bytes], ...] = ()


ALIAS_SLOT = "stockyard.memory_alias"


class MemoryTier:
    """This worker's least recently used answers by key, and the URLs that led to them (aliases), each for
    `ttl_seconds`, together at most `max_bytes`. A URL that differs only in what its route does not read
    adds an alias of a few hundred bytes, never another copy of the answer."""

    def __init__(self, *, max_bytes: int, ttl_seconds: float) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._ttl = ttl_seconds
        self._entries: OrderedDict[str, tuple[float, Encoded | Alias]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Encoded | None:
        found = self._get(key)
        return found if isinstance(found, Encoded) else None

    def alias(self, url: str) -> Alias | None:
        found = self._get(url)
        return found if isinstance(found, Alias) else None

    def put(self, key: str, value: Encoded | Alias) -> None:
        size = len(key) + value.size
        if size > self.max_bytes:
            return
        if key in self._entries:
            self._remove(key)
        while self.bytes + size > self.max_bytes:
            self._remove(next(iter(self._entries)))
        self._entries[key] = (time.monotonic() + self._ttl, value)
        self.bytes += size

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def _get(self, key: str) -> Encoded | Alias | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < time.monotonic():
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return value

    def _remove(self, key: str) -> None:
        _, value = self._entries.pop(key)
        self.bytes -= len(key) + value.size


class ResponseCache:
    def __init__(
        self,
        *,
        redis_url: str,
        prefix: str,
        ttl_seconds: int,
        memory_ttl_seconds: int,
        memory_max_bytes: int,
        redis_timeout_seconds: float,
        redis_retry_seconds: float,
        lock_seconds: float,
    ) -> None:
        self.prefix = prefix
        self._ttl_ms = ttl_seconds * 1000
        self._retry_seconds = redis_retry_seconds
        self._lock_seconds = lock_seconds
        self._redis_down_until = 0.0
        self._computing: dict[str, asyncio.Task[Answer]] = {}
        self.memory = MemoryTier(max_bytes=memory_max_bytes, ttl_seconds=memory_ttl_seconds)
        pool = BlockingConnectionPool.from_url(
            redis_url,
            max_connections=64,
            # Waiting for a free connection of the pool, as for Redis itself.
            timeout=redis_timeout_seconds,
            socket_connect_timeout=redis_timeout_seconds,
            socket_timeout=redis_timeout_seconds,
            # A connection Redis closed fails at once: one retry on a new connection. Not a timeout, though:
            # a hung Redis costs a request one timeout, not two.
            retry=Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
            client_name="stockyard-api",
        )
        self.redis = Redis.from_pool(pool)

    def key(self, state: DataState, namespace: CacheNamespace, params: str) -> str:
        """The key of an answer of the namespace's routes: `params` must be made of the validated parameters
        only."""
        digest = hashlib.blake2b(params.encode(), digest_size=12).hexdigest()
        generation = state.namespace_generations.get(namespace.value, 0)
        return response_key(self.prefix, _VALUE_FORMAT, state.cache_namespace, namespace, generation, digest)

    async def fetch(self, key: str, load: Callable[[], Awaitable[bytes]]) -> Answer:
        """The answer under `key` from memory, from Redis, or made by `load` (then cached), and where it came
        from. Concurrent fetches of one key share one computation."""
        remembered = self.memory.get(key)
        if remembered is not None:
            CACHE_LOOKUPS.labels(Outcome.memory_hit).inc()
            return Answer(remembered, Outcome.memory_hit)
        computing = self._computing.get(key)
        if computing is not None:
            # Shielded: a waiter that goes away must not cancel the computation the others wait for.
            answer = await asyncio.shield(computing)
            CACHE_LOOKUPS.labels(Outcome.coalesced).inc()
            return Answer(answer.body, Outcome.coalesced, answer.cacheable)
        computing = asyncio.create_task(self._fill(key, load), name=key)
        self._computing[key] = computing
        computing.add_done_callback(self._computed)
        return await asyncio.shield(computing)

    def _computed(self, task: asyncio.Task[Answer]) -> None:
        """Counts a computation once, however many requests waited for it (or went away meanwhile)."""
        self._computing.pop(task.get_name(), None)  # the task is named by its key
        if not task.cancelled() and task.exception() is None:
            CACHE_LOOKUPS.labels(task.result().outcome).inc()

    async def _fill(self, key: str, load: Callable[[], Awaitable[bytes]]) -> Answer:
        loaded: Encoded | None = None

        async def compute() -> Encoded:
            nonlocal loaded
            if loaded is None:
                plain = await load()
                # zlib lets go of the GIL: a large answer compresses on another core.
                large = len(plain) >= _THREAD_MINIMUM_BYTES
                loaded = await asyncio.to_thread(Encoded.of, plain) if large else Encoded.of(plain)
            return loaded

        try:
            if not self.redis_available:
                answer = Answer(await compute(), Outcome.fallback)
            else:
                try:
                    answer = await self._through_redis(key, compute)
                except LockError:
                    # The lock was not had in time, or expired while this worker computed: answer anyway.
                    answer = Answer(await compute(), Outcome.miss)
                except RedisError as error:
                    self._mark_redis_down(error)
                    answer = Answer(await compute(), Outcome.fallback)
        except Uncacheable as incomplete:
            return Answer(Encoded.of(incomplete.content), Outcome.miss, cacheable=False)
        self.memory.put(key, answer.body)
        return answer

    async def _through_redis(self, key: str, compute: Callable[[], Awaitable[Encoded]]) -> Answer:
        cached = await self._stored(key)
        if cached is not None:
            return Answer(Encoded.from_redis(cached), Outcome.redis_hit)
        lock = Lock(
            self.redis,
            f"{self.prefix}:lock:{key}",
            timeout=self._lock_seconds,
            sleep=0.01,
            blocking_timeout=self._lock_seconds,
            thread_local=False,
        )
        async with lock:
            # Another worker may have filled it while this one waited for the lock.
            cached = await self._stored(key)
            if cached is not None:
                return Answer(Encoded.from_redis(cached), Outcome.redis_hit)
            body = await compute()
            await self.redis.set(key, body.for_redis(), px=self._ttl_ms)
            return Answer(body, Outcome.miss)

    async def _stored(self, key: str) -> bytes | None:
        # Bytes: the pool does not decode responses.
        return cast(bytes | None, await self.redis.get(key))

    @property
    def redis_available(self) -> bool:
        return time.monotonic() >= self._redis_down_until

    def _mark_redis_down(self, error: RedisError) -> None:
        logger.warning(
            "Redis is unavailable (%s: %s): answering from PostgreSQL for %.0f s",
            type(error).__name__,
            error,
            self._retry_seconds,
        )
        self._redis_down_until = time.monotonic() + self._retry_seconds

    async def ping_redis(self) -> bool:
        try:
            await self.redis.ping()
        except RedisError:
            return False
        self._redis_down_until = 0.0
        return True

    async def generations(self) -> tuple[int, dict[str, int]]:
        """The purge generation and each purged namespace's (stockyard.api_cache.purge_api_cache bumps them);
        0 and none while Redis is down."""
        if not self.redis_available:
            return 0, {}
        try:
            async with self.redis.pipeline(transaction=False) as pipeline:
                pipeline.get(generation_key(self.prefix))
                pipeline.hgetall(namespace_generations_key(self.prefix))
                value, namespaces = await pipeline.execute()
        except RedisError as error:
            self._mark_redis_down(error)
            return 0, {}
        return int(value or 0), {name.decode(): int(count) for name, count in namespaces.items()}

    async def close(self) -> None:
        self.memory.clear()
        await self.redis.aclose()


class MemoryTierMiddleware:
    """Answers a GET from the memory tier before routing, which is most of the cost of a cached answer.

    It knows a URL once a routed request for it was answered with a cacheable answer (Api.respond fills the
    request's AliasSlot): the URL, under the data state's namespace, becomes an alias of the answer's key.
    The answer itself stays keyed on its validated parameters, so junk in a query string costs an alias, and
    everything counts against the tier's byte cap.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services: Any = getattr(scope["app"].state, "services", None) if scope["type"] == "http" else None
        state = services.state.current if services is not None else None
        if state is None or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        memory: MemoryTier = services.cache.memory
        url = f"{state.alias_namespace} {scope['path']}?{scope['query_string'].decode('latin-1')}"
        alias = memory.alias(url)
        body = memory.get(alias.key) if alias is not None else None
        if alias is not None and body is not None:
            CACHE_LOOKUPS.labels(Outcome.memory_hit).inc()
            # What routing would have put in the scope, for the metrics and logs outside.
            scope["route"], scope["path_params"] = alias.route, alias.path_params
            response = EncodedResponse(
                body, gzip=accepts_gzip(scope), headers=[*alias.headers, (b"x-cache", b"hit-memory")]
            )
            await response(scope, receive, send)
            return
        slot = scope[ALIAS_SLOT] = AliasSlot()
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        if status == 200 and slot.key is not None:
            memory.put(
                url,
                Alias(slot.key, slot.headers, scope.get("route"), scope.get("path_params", {})),
            )


class EncodedResponse(Response):
    """A cached answer, gzip-compressed (with the bytes compressed when it was computed) when the client
    accepts it, with `Vary: Accept-Encoding` either way so that a shared cache keeps both."""

    media_type = "application/json"

    def __init__(self, body: Encoded, *, gzip: bool, headers: list[tuple[bytes, bytes]]) -> None:
        compressed = body.gzipped if gzip else None
        self.status_code = 200
        self.background = None
        self.body = compressed if compressed is not None else body.plain
        self.raw_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self.body)).encode()),
            (b"vary", b"Accept-Encoding"),
            *headers,
        ]
        if compressed is not None:
            self.raw_headers.append((b"content-encoding", b"gzip"))
