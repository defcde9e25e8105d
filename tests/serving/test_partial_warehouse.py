"""A warehouse with the marts built and no products yet (ingestion and dbt ran, no model was promoted): the
API serves the market and says, per endpoint and in readiness, that the models are not there yet."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from serving.app import create_app
from serving.database import async_url
from serving.state import StateHolder, load_state
from tests.serving.support import (
    BuiltMarts,
    MartsOnlyWarehouse,
    api_settings,
    copy_of,
    with_api_role,
)

V1 = "/api/v1"
NO_MODEL = "no model has been promoted yet: the products have not been materialized"


@pytest.fixture(scope="module")
def marts_only(marts_only_warehouse: MartsOnlyWarehouse, redis_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings(marts_only_warehouse.api_url, redis_url))) as client:
        yield client


def test_the_market_is_served(marts_only: TestClient, marts_only_warehouse: MartsOnlyWarehouse) -> None:
    symbol = marts_only_warehouse.symbols[0]
    latest = str(marts_only_warehouse.latest_date)
    for path in (
        "/stocks",
        "/stocks/search?q=A",
        "/stocks/top",
        f"/stocks/{symbol}",
        f"/stocks/{symbol}/prices",
        f"/prices?symbols={symbol}",
        f"/prices/latest?symbols={symbol}",
        "/sectors",
    ):
        response = marts_only.get(V1 + path)
        assert response.status_code == 200, (path, response.text)
        assert response.json()["as_of"] == latest
    assert marts_only.get(f"{V1}/stocks/{symbol}").json()["latest_price"]["date"] == latest


def test_the_model_endpoints_say_no_model_has_been_promoted(
    marts_only: TestClient, marts_only_warehouse: MartsOnlyWarehouse
) -> None:
    symbol = marts_only_warehouse.symbols[0]
    for path in (
        "/recommendations",
        f"/recommendations/{marts_only_warehouse.latest_date}",
        f"/recommendations/symbols/{symbol}",
        "/models",
    ):
        response = marts_only.get(V1 + path)
        assert (response.status_code, response.json()["detail"]) == (503, NO_MODEL), path


def test_analysis_has_the_indicators_and_names_the_model_parts(
    marts_only: TestClient, marts_only_warehouse: MartsOnlyWarehouse
) -> None:
    first = marts_only.get(f"{V1}/analysis/{marts_only_warehouse.symbols[0]}")
    body = first.json()
    assert first.status_code == 200
    assert body["indicators"]["date"] == body["latest_price"]["date"] == str(marts_only_warehouse.latest_date)
    assert body["recommendation"] is None and body["forecast"] is None and body["backtest"] is None
    assert body["missing"] == [
        {"part": part, "reason": "no_model"} for part in ("backtest", "forecast", "recommendation")
    ]
    # Complete for what there is: kept, until a promotion changes the state and with it the key.
    second = marts_only.get(f"{V1}/analysis/{marts_only_warehouse.symbols[0]}")
    assert second.headers["X-Cache"].startswith("hit")


def test_readiness_reports_each_part(
    marts_only: TestClient, marts_only_warehouse: MartsOnlyWarehouse
) -> None:
    ready = marts_only.get(f"{V1}/health/ready")
    assert (ready.status_code, ready.json()) == (
        200,
        {
            "status": "degraded",
            "postgres": True,
            "prices": True,
            "latest_data_date": str(marts_only_warehouse.latest_date),
            "models": False,
            "champion_models": {},
            "recommendations_date": None,
            "redis": True,
        },
    )


def test_products_half_made_do_not_take_the_market_down(built_marts: BuiltMarts, redis_url: str) -> None:
    # A products schema without products.model_versions: the products cannot be read, the marts can.
    with copy_of(built_marts.url) as url:
        with psycopg.connect(url) as conn:
            conn.execute("drop table products.model_versions")
        with TestClient(create_app(api_settings(with_api_role(url), redis_url))) as client:
            stock = client.get(f"{V1}/stocks/{built_marts.symbols[0]}")
            ready = client.get(f"{V1}/health/ready").json()
            recommendations = client.get(f"{V1}/recommendations")
    assert stock.status_code == 200 and stock.json()["as_of"] == str(built_marts.dates[0])
    assert (ready["status"], ready["prices"], ready["models"]) == ("degraded", True, False)
    assert (recommendations.status_code, recommendations.json()["detail"]) == (503, NO_MODEL)


def test_a_warehouse_not_built_yet_is_logged_once_without_a_traceback(
    empty_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """What `make run` shows while its first run builds the marts: one line, then one when they are there."""

    async def refreshes() -> None:
        engine = create_async_engine(async_url(empty_database_url))
        state = StateHolder(
            lambda: load_state(engine, generation=0, namespace_generations={}), interval=60, deadline=10
        )
        try:
            for _ in range(3):
                assert await state.refresh() is None
            async with engine.begin() as conn:
                await conn.execute(text("create schema marts"))
                await conn.execute(
                    text(
                        "create table marts.dim_stocks (symbol text, last_date date, is_synthetic boolean,"
                        " provider text)"
                    )
                )
            assert await state.refresh() is not None
        finally:
            await engine.dispose()

    with caplog.at_level(logging.INFO, logger="serving.state"):
        asyncio.run(refreshes())
    records = [(record.levelname, record.getMessage(), bool(record.exc_info)) for record in caplog.records]
    assert records == [
        (
            "WARNING",
            'the warehouse\'s tables are not built yet (relation "marts.dim_stocks" does not exist): '
            "waiting for a run",
            False,
        ),
        ("INFO", "the data state is readable again", False),
    ]
