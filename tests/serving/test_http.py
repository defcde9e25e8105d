"""HTTP basics: HEAD wherever GET is, nosniff on every answer, Cache-Control and Vary on cacheable ones, CORS
only for the configured origins, and /docs served without another site.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from serving.app import create_app
from serving.http import HttpBasicsMiddleware
from serving.settings import ApiSettings
from tests.serving.support import Warehouse, api_settings

V1 = "/api/v1"
# What differs between two answers to the same request whatever their method.
PER_ANSWER_HEADERS = {"x-request-id", "x-cache", "date"}


def test_head_answers_every_get_route_with_its_headers_and_no_body(
    client: TestClient, api_warehouse: Warehouse
) -> None:
    values = {"symbol": api_warehouse.symbols[0], "day": str(api_warehouse.latest_date)}
    paths = [
        path.format(**values)
        for path, operations in client.get("/openapi.json").json()["paths"].items()
        # The signed-in routes (those that may answer 401) answer anonymous GET and HEAD alike with 401.
        if "get" in operations and "401" not in operations["get"]["responses"]
    ]
    assert len(paths) >= 15
    # The required parameters (of /prices and /stocks/search); the other routes ignore them.
    params = {"symbols": api_warehouse.symbols[0], "q": "a"}
    for path in [*paths, "/docs", "/openapi.json"]:
        get = client.get(path, params=params)
        head = client.head(path, params=params)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b"", path
        assert {name: value for name, value in head.headers.items() if name not in PER_ANSWER_HEADERS} == {
            name: value for name, value in get.headers.items() if name not in PER_ANSWER_HEADERS
        }, path
    # Counted under its route, as HEAD.
    metrics = client.get("/metrics").text
    assert (
        f'stockyard_api_requests_total{{method="HEAD",route="{V1}/stocks/{{symbol}}",status="200"}}'
        in metrics
    )


def test_every_answer_says_nosniff(client: TestClient, api_warehouse: Warehouse) -> None:
    for path in (
        f"{V1}/stocks/{api_warehouse.symbols[0]}",
        f"{V1}/stocks/NOPE",
        f"{V1}/stocks?limit=0",
        "/docs",
    ):
        assert client.get(path).headers["X-Content-Type-Options"] == "nosniff", path


def test_cacheable_answers_say_how_long_and_on_what_they_vary(client: TestClient) -> None:
    first = client.get(f"{V1}/stocks/top", params={"limit": 3})
    again = client.get(f"{V1}/stocks/top", params={"limit": 3})
    assert again.headers["X-Cache"] == "hit-memory"
    for response in (first, again):
        assert response.headers["Cache-Control"] == "public, max-age=60"
        assert response.headers["Vary"] == "Accept-Encoding"
    # Answers that are not the same for everyone or for long say nothing of the kind.
    for response in (client.get(f"{V1}/health/ready"), client.get(f"{V1}/stocks/NOPE")):
        assert "Cache-Control" not in response.headers and "Vary" not in response.headers


async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
    """A cacheable answer that already varies on something."""
    headers = [(b"content-type", b"application/json"), (b"x-cache", b"miss"), (b"vary", b"Origin")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}"})


def test_vary_is_added_to_rather_than_replaced() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    middleware = HttpBasicsMiddleware(_answer, max_age_seconds=5)
    asyncio.run(middleware({"type": "http", "method": "GET", "headers": []}, receive, send))
    headers = sent[0]["headers"]
    assert [value for name, value in headers if name == b"vary"] == [b"Origin, Accept-Encoding"]
    assert (b"cache-control", b"public, max-age=5") in headers


@pytest.fixture(scope="module")
def cors_client(api_warehouse: Warehouse, redis_url: str) -> Iterator[TestClient]:
    app = create_app(api_settings(api_warehouse.url, redis_url, cors_origins=["https://app.example"]))
    with TestClient(app) as test_client:
        yield test_client


def test_cors_allows_only_the_configured_origins(client: TestClient, cors_client: TestClient) -> None:
    assert ApiSettings(database_url="postgresql://x", redis_url="redis://x").cors_origins == []
    asked = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}
    # None by default: no CORS headers, and a preflight is a method this API does not answer.
    assert "Access-Control-Allow-Origin" not in client.get(f"{V1}/stocks", headers=asked).headers
    assert client.options(f"{V1}/stocks", headers=asked).status_code == 405
    allowed = cors_client.get(f"{V1}/stocks", headers={"Origin": "https://app.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "X-Cache" in allowed.headers["Access-Control-Expose-Headers"]
    assert {field.strip() for field in allowed.headers["Vary"].split(",")} == {"Origin", "Accept-Encoding"}
    assert cors_client.options(f"{V1}/stocks", headers=asked).status_code == 200
    other = cors_client.get(f"{V1}/stocks", headers={"Origin": "https://elsewhere.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_cors_origins_are_read_as_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKYARD_API_CORS_ORIGINS", "https://a.example, https://b.example")
    settings = ApiSettings(database_url="postgresql://x", redis_url="redis://x")
    assert settings.cors_origins == ["https://a.example", "https://b.example"]


def test_docs_load_nothing_from_another_site(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    references = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert len(references) == 3
    assert not [reference for reference in references if not reference.startswith("/")]
    assert not re.search(r"https?://", page.text)
    for reference in references:
        asset = client.get(reference)
        assert asset.status_code == 200 and asset.content, reference
    assert client.get("/redoc").status_code == 404
