"""/analysis/{symbol}: its parts, and what happens when parts time out."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from tests.serving.support import Warehouse, api_settings

V1 = "/api/v1"


def test_analysis_gathers_every_part(client: TestClient, api_warehouse: Warehouse) -> None:
    symbol = api_warehouse.symbols[0]
    body = client.get(f"{V1}/analysis/{symbol}").json()
    assert body["missing"] == []
    assert (body["symbol"], body["as_of"], body["data_source"]) == (
        symbol,
        str(api_warehouse.latest_date),
        "synthetic",
    )
    assert body["latest_price"]["date"] == body["indicators"]["date"] == str(api_warehouse.latest_date)
    assert 0 <= body["indicators"]["rsi_14"] <= 100
    assert body["recommendation"]["date"] == str(api_warehouse.latest_date)
    assert body["model_version"] == body["recommendation"]["model_version"] == "3"
    assert [point["step"] for point in body["forecast"]["points"]] == list(range(1, 22))
    assert body["forecast"]["model_name"] == "stockyard-prophet"
    backtest = body["backtest"]
    assert backtest["backtest"]["backtest_id"] == api_warehouse.backtest_id
    dates = [holding["rebalance_date"] for holding in backtest["holdings"]]
    assert len(dates) == 5 and dates == sorted(dates)


def test_parts_without_data_are_null_not_missing(client: TestClient, api_warehouse: Warehouse) -> None:
    body = client.get(f"{V1}/analysis/{api_warehouse.extra_symbols[0]}").json()
    assert body["missing"] == []
    assert body["latest_price"] is None and body["indicators"] is None and body["forecast"] is None
    # Recommended by the model version that was backtested, but never held.
    assert body["recommendation"]["symbol"] == api_warehouse.extra_symbols[0]
    assert body["backtest"]["holdings"] == []


@pytest.mark.parametrize("timeout", [1e-6])
def test_parts_that_time_out_are_reported_and_the_answer_is_not_cached(
    api_warehouse: Warehouse, redis_url: str, timeout: float
) -> None:
    settings = api_settings(api_warehouse.url, redis_url, analysis_part_timeout_seconds=timeout)
    with TestClient(create_app(settings)) as impatient:
        first = impatient.get(f"{V1}/analysis/{api_warehouse.symbols[0]}")
        second = impatient.get(f"{V1}/analysis/{api_warehouse.symbols[0]}")
    assert first.status_code == 200
    assert first.json()["missing"] == [
        {"part": part, "reason": "timeout"}
        for part in ("backtest", "forecast", "indicators", "recommendation")
    ]
    assert first.json()["symbol"] == api_warehouse.symbols[0] and first.json()["as_of"]
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("miss", "miss")
