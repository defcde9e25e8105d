"""Live updates over Redis pub/sub: the channels, written once here, and what the pipeline publishes on them.

The API's websocket (serving.live) runs one subscriber per worker on `channel_pattern` and fans each message
out to that worker's connections: a user's channel to the user's connections, the broadcast channel to all.
Channels hang off the API cache's prefix, so one setting names both (and tests keep to their own).
Messages are JSON objects with a `type`: 'hit' (stockyard.screens.Hit.message) or 'recommendations.refreshed'.
Pub/sub keeps nothing: a client that was not connected reads its hits from GET /api/v1/hits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from typing import Any

import redis

from stockyard.api_cache import API_CACHE_PREFIX

REFRESHED = "recommendations.refreshed"


def live_prefix(cache_prefix: str = API_CACHE_PREFIX) -> str:
    return f"{cache_prefix}:live"


def user_channel(user_id: int, cache_prefix: str = API_CACHE_PREFIX) -> str:
    return f"{live_prefix(cache_prefix)}:user:{user_id}"


def broadcast_channel(cache_prefix: str = API_CACHE_PREFIX) -> str:
    return f"{live_prefix(cache_prefix)}:all"


def channel_pattern(cache_prefix: str = API_CACHE_PREFIX) -> str:
    return f"{live_prefix(cache_prefix)}:*"


def user_of(channel: str, cache_prefix: str = API_CACHE_PREFIX) -> int | None:
    """The user a channel is of; None for the broadcast channel (or any other)."""
    head = f"{live_prefix(cache_prefix)}:user:"
    rest = channel[len(head) :] if channel.startswith(head) else ""
    return int(rest) if rest.isdigit() else None


def refreshed_message(data_date: date, *, model_version: str | None = None) -> dict[str, Any]:
    return {"type": REFRESHED, "data_date": data_date.isoformat(), "model_version": model_version}


def publish(
    redis_url: str,
    *,
    to_users: Iterable[tuple[int, dict[str, Any]]] = (),
    to_all: Iterable[dict[str, Any]] = (),
    cache_prefix: str = API_CACHE_PREFIX,
) -> int:
    """Publish each (user id, message) on the user's channel and each of `to_all` on the broadcast channel,
    in one round trip; returns how many deliveries the subscribed workers took."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        pipeline = client.pipeline(transaction=False)
        for user_id, message in to_users:
            pipeline.publish(user_channel(user_id, cache_prefix), json.dumps(message))
        for message in to_all:
            pipeline.publish(broadcast_channel(cache_prefix), json.dumps(message))
        return sum(int(received) for received in pipeline.execute())
    finally:
        client.close()
