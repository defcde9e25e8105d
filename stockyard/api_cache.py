"""The API's Redis cache as seen from outside the API: the key layout and the purge a materialization calls.

Cache keys carry the data date and the model version, so a new materialization already makes old entries
unreachable; purging also bumps a generation number that every key includes (the API's workers pick it up
within their state refresh, which reaches their in-memory tier too) and frees the old entries' memory.
Plain redis-py: Dagster calls this without importing the API.
"""

from __future__ import annotations

import redis

API_CACHE_PREFIX = "stockyard:api"


def generation_key(prefix: str = API_CACHE_PREFIX) -> str:
    return f"{prefix}:generation"


def purge_api_cache(redis_url: str, *, prefix: str = API_CACHE_PREFIX) -> int:
    """Make every cached API response unreachable and delete them; returns how many keys were deleted."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        client.incr(generation_key(prefix))
        deleted = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}:r:*", count=1000):
            batch.append(key)
            if len(batch) == 1000:
                deleted += int(client.unlink(*batch))
                batch.clear()
        if batch:
            deleted += int(client.unlink(*batch))
        return deleted
    finally:
        client.close()
