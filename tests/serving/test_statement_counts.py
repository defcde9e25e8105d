"""No N+1: the SQL statements a request issues do not grow with the symbols it covers.

Counted on cache misses (a purge and a state refresh before each request make every key new). The data state
(data date, model versions, symbols) is read by each worker in the background, never by a request.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from stockyard.api_cache import purge_api_cache
from tests.serving.support import RECOMMENDED_SYMBOLS, StatementCounter, Warehouse

V1 = "/api/v1"
MAX_STATEMENTS = 3


def statements_of(client: TestClient, counter: StatementCounter, path: str, params: dict[str, Any]) -> int:
    services = client.app.state.services  # type: ignore[attr-defined]
    purge_api_cache(services.settings.redis_url, prefix=services.settings.cache_prefix)
    client.portal.call(services.state.refresh)  # type: ignore[union-attr]
    counter.statements.clear()
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["X-Cache"] == "miss"
    return len(counter.statements)


def test_recommendations_of_500_symbols(
    client: TestClient, count_statements: StatementCounter, api_warehouse: Warehouse
) -> None:
    count = statements_of(client, count_statements, f"{V1}/recommendations", {"limit": RECOMMENDED_SYMBOLS})
    assert 1 <= count <= MAX_STATEMENTS, count_statements.statements
    by_date = statements_of(
        client, count_statements, f"{V1}/recommendations/{api_warehouse.previous_date}", {"limit": 1000}
    )
    assert 1 <= by_date <= MAX_STATEMENTS, count_statements.statements


def test_bulk_prices_take_the_same_statements_for_3_or_30_symbols(
    client: TestClient, count_statements: StatementCounter, api_warehouse: Warehouse
) -> None:
    counts = {
        n: statements_of(
            client,
            count_statements,
            f"{V1}/prices",
            {"symbols": ",".join(api_warehouse.symbols[:n]), "start": "2023-01-01", "interval": "weekly"},
        )
        for n in (3, 30)
    }
    assert 1 <= counts[3] == counts[30] <= MAX_STATEMENTS, counts
    latest = statements_of(
        client,
        count_statements,
        f"{V1}/prices/latest",
        {"symbols": ",".join(api_warehouse.symbols + api_warehouse.extra_symbols)},
    )
    assert 1 <= latest <= MAX_STATEMENTS


def test_analysis(client: TestClient, count_statements: StatementCounter, api_warehouse: Warehouse) -> None:
    count = statements_of(client, count_statements, f"{V1}/analysis/{api_warehouse.symbols[0]}", {})
    assert 1 <= count <= MAX_STATEMENTS, count_statements.statements
