"""Operations: metrics, request ids in JSON logs, GZip, the collector's pauses."""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.serving.support import Warehouse

V1 = "/api/v1"


@pytest.fixture
def access_log(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The access log's JSON lines on standard output, with the access logger at info as `stockyard serve`
    sets it."""
    access = logging.getLogger("serving.access")
    level = access.level
    access.setLevel(logging.INFO)
    capsys.readouterr()
    try:
        yield lambda: [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    finally:
        access.setLevel(level)


def test_request_id_is_echoed_or_made_and_in_the_json_log(
    client: TestClient, api_warehouse: Warehouse, access_log: Callable[[], list[dict[str, Any]]]
) -> None:
    given = client.get(f"{V1}/stocks/{api_warehouse.symbols[0]}", headers={"X-Request-ID": "abc-123"})
    made = client.get(f"{V1}/health/live")
    insane = client.get(f"{V1}/health/live", headers={"X-Request-ID": "<script>"})
    assert given.headers["X-Request-ID"] == "abc-123"
    assert len(made.headers["X-Request-ID"]) == 32
    assert insane.headers["X-Request-ID"] != "<script>"
    lines = access_log()
    first = lines[0]
    assert first["request_id"] == "abc-123" and first["status"] == 200
    assert first["route"] == f"{V1}/stocks/{{symbol}}" and first["duration_ms"] > 0
    assert first["level"] == "info" and first["logger"] == "serving.access" and "timestamp" in first
    assert lines[1]["request_id"] == made.headers["X-Request-ID"]


def test_metrics_count_requests_by_route_and_cache_outcomes(
    client: TestClient, api_warehouse: Warehouse
) -> None:
    client.get(f"{V1}/stocks/{api_warehouse.symbols[0]}")
    client.get(f"{V1}/stocks/{api_warehouse.symbols[0]}")
    client.get(f"{V1}/stocks/NOPE")
    text = client.get("/metrics").text
    assert f'stockyard_api_requests_total{{method="GET",route="{V1}/stocks/{{symbol}}",status="200"}}' in text
    assert f'stockyard_api_requests_total{{method="GET",route="{V1}/stocks/{{symbol}}",status="404"}}' in text
    assert "stockyard_api_request_duration_seconds_bucket" in text
    assert 'stockyard_api_cache_lookups_total{outcome="hit-memory"}' in text
    assert 'stockyard_api_cache_lookups_total{outcome="miss"}' in text


def test_gzip(client: TestClient) -> None:
    response = client.get(f"{V1}/stocks", params={"limit": 200}, headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert len(response.json()["items"]) == 200
    # The memory tier answers the repeats: compressed for one caller, plain for another.
    again = client.get(f"{V1}/stocks", params={"limit": 200}, headers={"Accept-Encoding": "gzip"})
    plain = client.get(f"{V1}/stocks", params={"limit": 200}, headers={"Accept-Encoding": "identity"})
    assert again.headers["X-Cache"] == plain.headers["X-Cache"] == "hit-memory"
    assert again.headers["Content-Encoding"] == "gzip" and "Content-Encoding" not in plain.headers
    assert again.json() == plain.json() == response.json()


def test_a_started_worker_keeps_its_long_lived_objects_out_of_the_collector(client: TestClient) -> None:
    # Full collections over the worker's modules and schemas were the API's worst tail latency (bench/api).
    assert gc.get_freeze_count() > 10_000
