"""Rate limits of the account, portfolio and admin routes, counted in Redis (the `limits` library's moving
window) so that every worker shares them: per client address on every such route, per user once signed in,
and a stricter one on signing in, per address and per account name. Past a limit: 429 with `Retry-After`.

When Redis does not answer, requests are let through (and the error logged): the limits protect the API, an
outage of theirs must not take it down.
"""

from __future__ import annotations

import logging
import math
import time

from fastapi import HTTPException, Request
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

logger = logging.getLogger("serving.ratelimit")


class RateLimiter:
    def __init__(
        self,
        *,
        redis_url: str,
        prefix: str,
        per_user: str,
        per_ip: str,
        login: str,
        timeout_seconds: float,
    ) -> None:
        self._storage = RedisStorage(
            f"async+{redis_url}",
            implementation="redispy",
            key_prefix=f"{prefix}:limits",
            wrap_exceptions=True,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
        )
        self._limiter = MovingWindowRateLimiter(self._storage)
        self.per_user: RateLimitItem = parse(per_user)
        self.per_ip: RateLimitItem = parse(per_ip)
        self.login: RateLimitItem = parse(login)

    async def limit_ip(self, request: Request) -> None:
        await self._hit(self.per_ip, "ip", _client(request))

    async def limit_user(self, user_id: int) -> None:
        await self._hit(self.per_user, "user", str(user_id))

    async def limit_login(self, request: Request, username: str) -> None:
        await self._hit(self.login, "login-ip", _client(request))
        await self._hit(self.login, "login-name", username.strip().lower())

    async def _hit(self, item: RateLimitItem, *identifiers: str) -> None:
        try:
            if await self._limiter.hit(item, *identifiers):
                return
            reset_at, _ = await self._limiter.get_window_stats(item, *identifiers)
        except StorageError as error:
            logger.warning("rate limits unavailable, letting the request through: %s", error)
            return
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise HTTPException(
            429,
            f"too many requests: at most {item} per {identifiers[0]}; try again in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


async def limit_by_ip(request: Request) -> None:
    """A router dependency: the per-address limit."""
    await request.app.state.services.limiter.limit_ip(request)
