"""The response cache: tiers, keys, purge, stampede protection, and answering without Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import httpx
import redis
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.state import DataState
from stockyard.api_cache import purge_api_cache
from tests.serving.conftest import StatementCounter, Warehouse, api_settings

V1 = "/api/v1"
# Nothing listens on port 1 of loopback: connecting is refused at once.
CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"


def purge_and_refresh(client: TestClient) -> int:
    services = client.app.state.services  # type: ignore[attr-defined]
    deleted = purge_api_cache(services.settings.redis_url, prefix=services.settings.cache_prefix)
    client.portal.call(services.state.refresh)  # type: ignore[union-attr]
    return deleted


def test_memory_then_redis_tiers(client: TestClient, api_warehouse: Warehouse, redis_url: str) -> None:
    purge_and_refresh(client)
    path = f"{V1}/stocks/{api_warehouse.symbols[1]}/prices"
    first, again = client.get(path), client.get(path)
    assert (first.headers["X-Cache"], again.headers["X-Cache"]) == ("miss", "hit-memory")
    assert first.content == again.content
    # Another worker: its own memory tier is empty, Redis has the answer.
    other_settings = client.app.state.services.settings  # type: ignore[attr-defined]
    with TestClient(create_app(other_settings)) as other_worker:
        from_redis = other_worker.get(path)
    assert from_redis.headers["X-Cache"] == "hit-redis" and from_redis.content == first.content


def test_keys_carry_the_data_date_and_model_version(client: TestClient, api_warehouse: Warehouse) -> None:
    purge_and_refresh(client)
    client.get(f"{V1}/recommendations")
    settings = client.app.state.services.settings  # type: ignore[attr-defined]
    keys = redis.Redis.from_url(settings.redis_url, decode_responses=True).keys(
        f"{settings.cache_prefix}:r:*"
    )
    assert keys and all(str(api_warehouse.latest_date) in key for key in keys)
    state = DataState(
        as_of=api_warehouse.latest_date,
        symbol_sources={},
        recommendations_date=api_warehouse.latest_date,
        recommendations_version="3",
        champions={"m": "3"},
    )
    namespaces = {
        state.cache_namespace,
        dataclasses.replace(state, as_of=api_warehouse.previous_date).cache_namespace,
        dataclasses.replace(state, recommendations_version="4").cache_namespace,
        dataclasses.replace(state, champions={"m": "4"}).cache_namespace,
        dataclasses.replace(state, generation=1).cache_namespace,
    }
    assert len(namespaces) == 5


def test_purge_makes_cached_answers_unreachable_and_deletes_them(
    client: TestClient, api_warehouse: Warehouse
) -> None:
    purge_and_refresh(client)
    path = f"{V1}/stocks/{api_warehouse.symbols[2]}"
    assert client.get(path).headers["X-Cache"] == "miss"
    assert client.get(path).headers["X-Cache"] == "hit-memory"
    assert purge_and_refresh(client) >= 1
    assert client.get(path).headers["X-Cache"] == "miss"


def test_concurrent_misses_of_one_key_compute_it_once(
    client: TestClient, count_statements: StatementCounter, api_warehouse: Warehouse
) -> None:
    purge_and_refresh(client)
    path = f"{V1}/recommendations"
    app = client.app

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            return await asyncio.gather(*(http.get(path, params={"limit": 100}) for _ in range(25)))

    count_statements.statements.clear()
    responses = client.portal.call(burst)  # type: ignore[union-attr]
    assert {response.status_code for response in responses} == {200}
    assert len({response.content for response in responses}) == 1
    assert len(count_statements.statements) == 1, count_statements.statements


def test_without_redis_answers_come_from_postgres_and_say_so(api_warehouse: Warehouse) -> None:
    settings = api_settings(api_warehouse.url, CLOSED_PORT_REDIS)
    with TestClient(create_app(settings)) as no_redis:
        started = time.perf_counter()
        stock = no_redis.get(f"{V1}/stocks/{api_warehouse.symbols[0]}")
        recommendations = no_redis.get(f"{V1}/recommendations")
        elapsed = time.perf_counter() - started
        ready = no_redis.get(f"{V1}/health/ready")
    assert (stock.status_code, recommendations.status_code) == (200, 200)
    assert stock.headers["X-Cache"] == recommendations.headers["X-Cache"] == "fallback"
    assert stock.json()["stock"]["symbol"] == api_warehouse.symbols[0]
    assert elapsed < 2
    assert ready.status_code == 200
    assert (ready.json()["status"], ready.json()["redis"], ready.json()["postgres"]) == (
        "degraded",
        False,
        True,
    )
