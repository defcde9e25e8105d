"""A hung PostgreSQL (a proxy that stops forwarding, tests/serving/hung_proxy.py) and a pool with no free
connection: every request ends by its deadline, with a 503 and Retry-After when the warehouse did not
answer."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from tests.serving.hung_proxy import HungProxy, hung_proxy
from tests.serving.support import Warehouse, api_settings

V1 = "/api/v1"
DEADLINES = {
    "request_deadline_seconds": 1.0,
    "analysis_part_timeout_seconds": 0.5,
    "ready_timeout_seconds": 0.5,
    "db_pool_timeout_seconds": 0.3,
    "db_connect_timeout_seconds": 2,
    "retry_after_seconds": 7,
}
# Far beyond every deadline above: a request that waits on the hung server instead ends only then.
HANG_SECONDS = 12
# What a loaded 2-core machine may add to a deadline.
SLACK_SECONDS = 1.5
BUSY = "the warehouse is busy or not answering; try again shortly"


@pytest.fixture
def proxy(api_warehouse: Warehouse) -> Iterator[HungProxy]:
    with hung_proxy(api_warehouse.api_url) as proxy:
        yield proxy


@pytest.fixture
def through_proxy(proxy: HungProxy, redis_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings(proxy.url, redis_url, **DEADLINES))) as client:
        yield client
        # The abandoned work unwinds before the app stops.
        proxy.resume()


def timed(client: TestClient, path: str) -> tuple[float, object]:
    started = time.monotonic()
    response = client.get(V1 + path)
    return time.monotonic() - started, response


def test_an_uncached_request_answers_503_by_its_deadline(
    through_proxy: TestClient, proxy: HungProxy, api_warehouse: Warehouse
) -> None:
    proxy.pause(seconds=HANG_SECONDS)
    elapsed, response = timed(through_proxy, f"/stocks/{api_warehouse.symbols[0]}/prices?start=2023-02-01")
    assert elapsed < DEADLINES["request_deadline_seconds"] + SLACK_SECONDS
    assert (response.status_code, response.json()["detail"]) == (503, BUSY)  # type: ignore[attr-defined]
    assert response.headers["Retry-After"] == "7"  # type: ignore[attr-defined]


def test_analysis_answers_by_its_parts_timeout(
    through_proxy: TestClient, proxy: HungProxy, api_warehouse: Warehouse
) -> None:
    proxy.pause(seconds=HANG_SECONDS)
    elapsed, response = timed(through_proxy, f"/analysis/{api_warehouse.symbols[1]}")
    assert elapsed < DEADLINES["analysis_part_timeout_seconds"] + SLACK_SECONDS
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert {part["reason"] for part in response.json()["missing"]} == {"timeout"}  # type: ignore[attr-defined]


def test_readiness_says_unavailable_by_its_timeout(through_proxy: TestClient, proxy: HungProxy) -> None:
    proxy.pause(seconds=HANG_SECONDS)
    elapsed, response = timed(through_proxy, "/health/ready")
    assert elapsed < DEADLINES["ready_timeout_seconds"] + SLACK_SECONDS
    assert response.status_code == 503  # type: ignore[attr-defined]
    assert (response.json()["status"], response.json()["postgres"]) == ("unavailable", False)  # type: ignore[attr-defined]


def test_readiness_opens_a_new_connection(
    through_proxy: TestClient, proxy: HungProxy, api_warehouse: Warehouse
) -> None:
    # A hung postmaster: the pool's connections still answer, a new connection does not.
    proxy.pause_new(seconds=HANG_SECONDS)
    pooled = through_proxy.get(f"{V1}/stocks/{api_warehouse.symbols[2]}/prices?start=2023-03-01")
    elapsed, response = timed(through_proxy, "/health/ready")
    assert pooled.status_code == 200
    assert elapsed < DEADLINES["ready_timeout_seconds"] + SLACK_SECONDS
    assert (response.status_code, response.json()["postgres"]) == (503, False)  # type: ignore[attr-defined]


def test_a_pool_without_a_free_connection_answers_503_with_retry_after(
    api_warehouse: Warehouse, redis_url: str
) -> None:
    settings = api_settings(api_warehouse.api_url, redis_url, db_pool_size=1, db_max_overflow=0, **DEADLINES)
    with TestClient(create_app(settings)) as client:
        engine = client.app.state.services.engine  # type: ignore[attr-defined]
        # The pool's only connection, taken on the app's event loop.
        held = client.portal.call(engine.connect().start)
        try:
            elapsed, response = timed(client, f"/stocks/{api_warehouse.symbols[3]}/prices?start=2023-04-01")
        finally:
            client.portal.call(held.close)
    assert elapsed < DEADLINES["db_pool_timeout_seconds"] + SLACK_SECONDS
    assert (response.status_code, response.json()["detail"]) == (503, BUSY)  # type: ignore[attr-defined]
    assert response.headers["Retry-After"] == "7"  # type: ignore[attr-defined]
