"""Bad input is a 422 naming what was wrong, and every error answer, a 500 included, is JSON of one shape with
the request's id in its body and in `X-Request-ID`.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.observability import json_formatter
from stockyard.marketdata.schema import GICS_SECTORS
from tests.serving.support import Warehouse, api_settings

V1 = "/api/v1"


def assert_error(response: httpx.Response, status: int, *fragments: str) -> None:
    """The JSON error shape: `detail` holding every fragment, and the id the response header carries."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"detail", "request_id"}
    assert body["request_id"] == response.headers["X-Request-ID"]
    for fragment in fragments:
        assert fragment in body["detail"]


@pytest.fixture(scope="module")
def failing_client(api_warehouse: Warehouse, redis_url: str) -> Iterator[TestClient]:
    """The app with one more route that fails as a bug would."""
    app = create_app(api_settings(api_warehouse.url, redis_url))

    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/broken", broken, include_in_schema=False)
    with TestClient(app) as test_client:
        yield test_client


@pytest.mark.parametrize("path", ["/stocks/{symbol}/prices", "/prices?symbols={symbol}"])
@pytest.mark.parametrize("end", ["0001-01-01", "1899-12-31", "2200-01-01"])
def test_an_end_outside_the_dates_a_history_can_hold_is_422(
    client: TestClient, api_warehouse: Warehouse, path: str, end: str
) -> None:
    url = V1 + path.format(symbol=api_warehouse.symbols[0])
    assert_error(
        client.get(url, params={"end": end}),
        422,
        f"query.end: '{end}' is not a date written YYYY-MM-DD from 1900-01-01 to 2199-12-31",
    )


def test_the_earliest_end_still_answers(client: TestClient, api_warehouse: Warehouse) -> None:
    response = client.get(f"{V1}/stocks/{api_warehouse.symbols[0]}/prices", params={"end": "1900-01-01"})
    assert response.status_code == 200 and response.json()["bars"] == []


def test_a_start_after_the_data_date_without_end_is_an_empty_answer(
    client: TestClient, api_warehouse: Warehouse
) -> None:
    # Valid by the document (only an explicit end must not be before start), so not a 422.
    later = str(api_warehouse.latest_date.replace(year=api_warehouse.latest_date.year + 1))
    symbol = api_warehouse.symbols[0]
    one = client.get(f"{V1}/stocks/{symbol}/prices", params={"start": later})
    many = client.get(f"{V1}/prices", params={"symbols": symbol, "start": later})
    assert one.status_code == many.status_code == 200
    assert one.json()["bars"] == [] and (one.json()["start"], one.json()["end"]) == (later, later)
    assert many.json()["series"] == [{"symbol": symbol, "bars": []}]


@pytest.mark.parametrize("query", ["al\x00d", "\x00", "al\x1bd", "   ", "a" * 65])
def test_a_search_for_control_characters_or_nothing_is_422_and_logs_no_error(
    client: TestClient, caplog: pytest.LogCaptureFixture, query: str
) -> None:
    with caplog.at_level(logging.INFO):
        response = client.get(f"{V1}/stocks/search", params={"q": query})
    assert_error(
        response, 422, "query.q: give some text of at most 64 characters, without control characters"
    )
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []


@pytest.mark.parametrize(
    ("path", "params", "fragment"),
    [
        ("/stocks/{symbol}/prices", {"start": "0"}, "query.start: '0' is not a date"),
        ("/stocks/{symbol}/prices", {"start": "20230105"}, "query.start: '20230105' is not a date"),
        ("/stocks/{symbol}/prices", {"end": "2023-W05-1"}, "query.end: '2023-W05-1' is not a date"),
        ("/stocks/{symbol}/prices", {"start": "1700000000"}, "query.start: '1700000000' is not a date"),
        ("/prices", {"symbols": "{symbol}", "start": "0"}, "query.start: '0' is not a date"),
        ("/recommendations/symbols/{symbol}", {"end": "0"}, "query.end: '0' is not a date"),
        ("/recommendations/0", {}, "path.day: '0' is not a date"),
        ("/stocks", {"max_market_cap": "1e400"}, "query.max_market_cap: Input should be a finite number"),
        ("/stocks", {"min_market_cap": "nan"}, "query.min_market_cap: Input should be a finite number"),
        (
            "/stocks",
            {"max_market_cap": "1e16"},
            "query.max_market_cap: Input should be less than or equal to",
        ),
        ("/stocks", {"sector": "Telecommunication Services"}, "unknown sector 'Telecommunication Services'"),
        ("/recommendations", {"sector": "energy"}, "query.sector: unknown sector 'energy'"),
        ("/prices/latest", {"symbols": ","}, "query.symbols: String should match pattern"),
    ],
)
def test_lax_input_is_422_naming_the_parameter(
    client: TestClient, api_warehouse: Warehouse, path: str, params: dict[str, str], fragment: str
) -> None:
    symbol = api_warehouse.symbols[0]
    response = client.get(
        V1 + path.format(symbol=symbol),
        params={name: value.format(symbol=symbol) for name, value in params.items()},
    )
    assert_error(response, 422, fragment)


def test_the_openapi_document_declares_what_the_handlers_enforce(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    def parameter(path: str, name: str) -> dict[str, object]:
        (found,) = [item for item in paths[V1 + path]["get"]["parameters"] if item["name"] == name]
        return found

    def schema(path: str, name: str) -> dict[str, object]:
        declared = parameter(path, name)["schema"]
        assert isinstance(declared, dict)
        # Optional parameters are `anyOf` the type and null.
        return next((item for item in declared.get("anyOf", [declared]) if item.get("type") != "null"), {})

    for path in ("/stocks", "/stocks/top", "/recommendations", "/recommendations/{day}"):
        assert schema(path, "sector")["enum"] == list(GICS_SECTORS)
    for path in ("/stocks/{symbol}/prices", "/prices", "/recommendations/symbols/{symbol}"):
        for name in ("start", "end"):
            assert schema(path, name)["format"] == "date" and "pattern" in schema(path, name)
        assert "not before start" in str(parameter(path, "end")["description"])
    assert "pattern" in schema("/recommendations/{day}", "day")
    for name in ("min_market_cap", "max_market_cap"):
        assert schema("/stocks", name)["maximum"] == 1e15 and schema("/stocks", name)["minimum"] == 0
    assert "pattern" in schema("/stocks/search", "q")


def test_error_answers_are_json_with_the_request_id(client: TestClient, api_warehouse: Warehouse) -> None:
    assert_error(client.get(f"{V1}/stocks/NOPE"), 404, "unknown symbol 'NOPE'")
    assert_error(client.get(f"{V1}/nowhere"), 404, "Not Found")
    assert_error(client.get(f"{V1}/stocks", params={"limit": 0}), 422, "query.limit")
    not_allowed = client.post(f"{V1}/stocks")
    assert_error(not_allowed, 405, "Method Not Allowed")
    assert not_allowed.headers["Allow"] == "GET, HEAD"
    # The caller's own id is the one given back.
    named = client.get(f"{V1}/stocks/NOPE", headers={"X-Request-ID": "caller-42"})
    assert named.headers["X-Request-ID"] == named.json()["request_id"] == "caller-42"


def test_an_unexpected_error_is_a_json_500_logged_with_the_request_id(failing_client: TestClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    errors = logging.getLogger("serving.errors")
    errors.addHandler(handler)
    try:
        response = failing_client.get("/broken", headers={"X-Request-ID": "bug-1"})
    finally:
        errors.removeHandler(handler)
    assert_error(response, 500, "internal error")
    assert response.json()["request_id"] == "bug-1"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    (line,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert line["request_id"] == "bug-1" and line["level"] == "error"
    assert "RuntimeError: a bug" in line["exception"]
