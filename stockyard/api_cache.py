"""The API's Redis cache as seen from outside the API: the key layout and the purges.

Cache keys carry the data date and the model version, so a new materialization already makes old entries
unreachable; purging also bumps a generation number that every key includes (the API's workers pick it up
within their state refresh, which reaches their in-memory tier too) and frees the old entries' memory. A
namespace (one route family: `stock`, `prices`, ...) has a generation of its own, which its keys include too,
so it can be purged alone. Plain redis-py: Dagster calls this without importing the API.
"""

from __future__ import annotations

from enum import StrEnum

import redis

API_CACHE_PREFIX = "stockyard:api"


class CacheNamespace(StrEnum):
    """The route families whose answers the API caches, each under keys of its own."""

    stocks = "stocks"
    search = "search"
    top = "top"
    stock = "stock"
    prices = "prices"
    bulk_prices = "bulk-prices"
    bulk_latest = "bulk-latest"
    recommendations = "recommendations"
    recommendation_history = "recommendation-history"
    analysis = "analysis"
    sectors = "sectors"
    models = "models"
    portfolio_analytics = "portfolio-analytics"


def generation_key(prefix: str = API_CACHE_PREFIX) -> str:
    return f"{prefix}:generation"


def namespace_generations_key(prefix: str = API_CACHE_PREFIX) -> str:
    """A hash: namespace -> its purge generation (absent: 0)."""
    return f"{prefix}:generation:namespaces"


def response_key(
    prefix: str, value_format: str, state: str, namespace: str, generation: int, digest: str
) -> str:
    """The key of a cached answer; the namespace and its generation are the last but one and two parts."""
    return f"{prefix}:r:{value_format}:{state}:{namespace}:{generation}:{digest}"


def purge_api_cache(
    redis_url: str, *, prefix: str = API_CACHE_PREFIX, namespace: CacheNamespace | None = None
) -> int:
    """Make every cached API response (or those of one namespace) unreachable and delete them; returns how
    many keys were deleted."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        if namespace is None:
            client.incr(generation_key(prefix))
            pattern = f"{prefix}:r:*"
        else:
            client.hincrby(namespace_generations_key(prefix), namespace.value, 1)
            pattern = f"{prefix}:r:*:{namespace.value}:*"
        deleted = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=1000):
            # The pattern's `*` spans colons: only keys whose namespace part is exactly this one.
            if namespace is not None and key.rsplit(b":", 3)[1].decode() != namespace.value:
                continue
            batch.append(key)
            if len(batch) == 1000:
                deleted += int(client.unlink(*batch))
                batch.clear()
        if batch:
            deleted += int(client.unlink(*batch))
        return deleted
    finally:
        client.close()
