"""The response cache: tiers, keys, purge, stampede protection, and answering without Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

import serving.cache
from serving.app import create_app
from serving.cache import Encoded, MemoryTier, ResponseCache
from serving.state import DataState
from stockyard.api_cache import CacheNamespace, purge_api_cache
from tests.serving.support import StatementCounter, Warehouse, api_settings, new_admin

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


def test_parameters_a_route_does_not_read_share_its_cached_answer(
    client: TestClient, api_warehouse: Warehouse
) -> None:
    purge_and_refresh(client)
    memory: MemoryTier = client.app.state.services.cache.memory  # type: ignore[attr-defined]
    path = f"{V1}/recommendations"
    first = client.get(path, params={"limit": 500, "v": 0})
    assert first.headers["X-Cache"] == "miss"
    held = memory.bytes
    junk = [client.get(path, params={"limit": 500, "v": number}) for number in range(1, 21)]
    assert {response.headers["X-Cache"] for response in junk} == {"hit-memory"}
    assert all(response.content == first.content for response in junk)
    # Each junk URL costs an alias of a few hundred bytes, never another copy of the answer.
    assert len(first.content) > 50_000 and memory.bytes - held < 20 * 1000


def test_the_memory_tier_is_capped_in_bytes(api_warehouse: Warehouse, redis_url: str) -> None:
    settings = api_settings(api_warehouse.url, redis_url, memory_cache_max_bytes="100KB")
    with TestClient(create_app(settings)) as small:
        memory: MemoryTier = small.app.state.services.cache.memory  # type: ignore[attr-defined]
        paths = [f"{V1}/stocks/{symbol}/prices" for symbol in api_warehouse.symbols[:10]]
        sizes = [len(small.get(path).content) for path in paths]
        # The least recently used went first; the latest is still there.
        assert small.get(paths[0]).headers["X-Cache"] == "hit-redis"
        assert small.get(paths[-1]).headers["X-Cache"] == "hit-memory"
        assert sum(sizes) > 200_000 and 0 < memory.bytes <= 100_000


def test_memory_tier_evicts_the_least_recently_used_and_expires() -> None:
    tier = MemoryTier(max_bytes=2500, ttl_seconds=0.2)
    answers = {key: Encoded(b"x" * 500, None) for key in "abcd"}
    for key in "abc":
        tier.put(key, answers[key])
    assert tier.get("a") is answers["a"]  # now the most recently used
    tier.put("d", answers["d"])
    assert [tier.get(key) is not None for key in "abcd"] == [True, False, True, True]
    assert tier.bytes == 3 * (1 + answers["a"].size) <= tier.max_bytes
    tier.put("huge", Encoded(b"x" * 5000, None))
    assert tier.get("huge") is None and len(tier) == 3
    time.sleep(0.25)
    assert tier.get("a") is None and tier.bytes == 2 * (1 + answers["a"].size)


def test_cached_answers_are_compressed_once(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    purge_and_refresh(client)
    path = f"{V1}/recommendations"
    compressed: list[int] = []
    compress = serving.cache.compress

    def counted(body: bytes) -> bytes:
        compressed.append(len(body))
        return compress(body)

    monkeypatch.setattr(serving.cache, "compress", counted)
    answers = [
        client.get(path, params={"limit": 200}, headers={"Accept-Encoding": encoding})
        for encoding in ("gzip", "identity", "gzip, deflate", "br;q=1, gzip;q=0.5", "gzip;q=0")
    ]
    assert len(compressed) == 1
    encodings = [answer.headers.get("Content-Encoding") for answer in answers]
    assert encodings == ["gzip", None, "gzip", "gzip", None]
    assert all(answer.headers["Vary"].startswith("Accept-Encoding") for answer in answers)
    assert len({answer.content for answer in answers}) == 1  # httpx decodes gzip
    assert int(answers[0].headers["Content-Length"]) < len(answers[1].content) / 3


def cache_lookups(outcome: str) -> float:
    return REGISTRY.get_sample_value("stockyard_api_cache_lookups_total", {"outcome": outcome}) or 0.0


def test_concurrent_waiters_count_one_miss(client: TestClient, api_warehouse: Warehouse) -> None:
    purge_and_refresh(client)
    app = client.app
    before = {outcome: cache_lookups(outcome) for outcome in ("miss", "coalesced", "hit-memory")}

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            return await asyncio.gather(
                *(http.get(f"{V1}/recommendations", params={"limit": 300}) for _ in range(50))
            )

    responses = client.portal.call(burst)  # type: ignore[union-attr]
    counted = {outcome: cache_lookups(outcome) - before[outcome] for outcome in before}
    assert {response.status_code for response in responses} == {200}
    assert counted["miss"] == 1 and sum(counted.values()) == 50, counted
    outcomes = [response.headers["X-Cache"] for response in responses]
    assert outcomes.count("miss") == 1 and set(outcomes) <= {"miss", "coalesced", "hit-memory"}


def test_a_connection_redis_closed_is_retried_on_a_new_one(
    api_warehouse: Warehouse, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(create_app(api_settings(api_warehouse.url, redis_url))) as worker:
        cache: ResponseCache = worker.app.state.services.cache  # type: ignore[attr-defined]
        assert worker.get(f"{V1}/stocks/{api_warehouse.symbols[3]}").headers["X-Cache"] == "miss"
        # The pool's one connection, as the requests left it: Redis closes it (an idle timeout would too).
        connection = worker.portal.call(cache.redis.client_id)  # type: ignore[union-attr]
        with redis.Redis.from_url(redis_url) as admin:
            assert admin.client_kill_filter(_id=connection) == 1
        with caplog.at_level(logging.WARNING, logger="serving.cache"):
            after = worker.get(f"{V1}/stocks/{api_warehouse.symbols[4]}")
        assert after.headers["X-Cache"] == "miss" and cache.redis_available
        assert not caplog.records


def test_the_redis_warning_says_why(api_warehouse: Warehouse, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(api_settings(api_warehouse.url, CLOSED_PORT_REDIS))
    with caplog.at_level(logging.WARNING, logger="serving.cache"), TestClient(app) as no_redis:
        assert no_redis.get(f"{V1}/stocks/{api_warehouse.symbols[0]}").headers["X-Cache"] == "fallback"
    warnings = [record.getMessage() for record in caplog.records if record.name == "serving.cache"]
    why = "ConnectionError: Error 111 connecting to 127.0.0.1:1"
    assert warnings and all(why in warning for warning in warnings)


def test_an_admin_clears_one_namespace_and_the_others_stay(
    accounts_client: TestClient, api_warehouse: Warehouse
) -> None:
    _, admin = new_admin(accounts_client, api_warehouse.url, "cache")
    settings = accounts_client.app.state.services.settings  # type: ignore[attr-defined]
    stock, sectors = f"{V1}/stocks/{api_warehouse.symbols[2]}", f"{V1}/sectors"
    for path in (stock, sectors):
        accounts_client.get(path)
        assert accounts_client.get(path).headers["X-Cache"] == "hit-memory"
    store = redis.Redis.from_url(settings.redis_url, decode_responses=True)

    def keys(namespace: CacheNamespace) -> list[str]:
        found = store.keys(f"{settings.cache_prefix}:r:*")
        return [key for key in found if key.rsplit(":", 3)[1] == namespace]

    assert keys(CacheNamespace.stock) and keys(CacheNamespace.sectors)

    purge = f"{V1}/admin/cache/purge"
    cleared = accounts_client.post(purge, params={"namespace": "stock"}, headers=admin)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json() == {"namespace": "stock", "deleted_keys": 1}
    assert not keys(CacheNamespace.stock) and keys(CacheNamespace.sectors)
    # This worker's memory tier no longer answers the namespace; the others' answers are still there.
    assert accounts_client.get(stock).headers["X-Cache"] == "miss"
    assert accounts_client.get(sectors).headers["X-Cache"] == "hit-memory"

    unknown = accounts_client.post(purge, params={"namespace": "nope"}, headers=admin)
    assert unknown.status_code == 422 and "namespace" in unknown.json()["detail"]
    everything = accounts_client.post(purge, headers=admin).json()
    assert everything["namespace"] is None and everything["deleted_keys"] >= 2
    assert not keys(CacheNamespace.stock) and not keys(CacheNamespace.sectors)
