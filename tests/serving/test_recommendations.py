"""Recommendations and models, read from the products tables."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.serving.support import MODEL, RECOMMENDED_SYMBOLS, Warehouse

V1 = "/api/v1"


def test_latest_list_is_the_top_n_by_rank_with_provenance(
    client: TestClient, api_warehouse: Warehouse
) -> None:
    body = client.get(f"{V1}/recommendations", params={"limit": 15}).json()
    assert body["date"] == body["as_of"] == str(api_warehouse.latest_date)
    assert (body["model_name"], body["model_version"], body["data_source"]) == (MODEL, "3", "synthetic")
    assert body["total"] == RECOMMENDED_SYMBOLS
    assert [item["rank"] for item in body["items"]] == list(range(1, 16))
    first = body["items"][0]
    assert first["company_name"] and first["sector"]
    assert first["top_contributions"][0] == {
        "feature": "return_21d_rank",
        "value": 0.8,
        "contribution": 0.002,
    }


def test_filters_by_sector_and_action(client: TestClient) -> None:
    body = client.get(
        f"{V1}/recommendations", params={"sector": "Energy", "action": "sell", "limit": 1000}
    ).json()
    assert body["items"] and body["total"] == len(body["items"])
    assert {(item["sector"], item["action"]) for item in body["items"]} == {("Energy", "sell")}
    ranks = [item["rank"] for item in body["items"]]
    assert ranks == sorted(ranks)


def test_a_given_dates_list(client: TestClient, api_warehouse: Warehouse) -> None:
    body = client.get(f"{V1}/recommendations/{api_warehouse.previous_date}", params={"limit": 500}).json()
    assert body["date"] == str(api_warehouse.previous_date) and body["model_version"] == "2"
    assert len(body["items"]) == RECOMMENDED_SYMBOLS


def test_dates_without_recommendations_are_404_and_bad_dates_422(client: TestClient) -> None:
    for day in ("2023-06-01", "2031-01-02"):
        response = client.get(f"{V1}/recommendations/{day}")
        assert response.status_code == 404 and response.json()["detail"] == f"no recommendations for {day}"
    bad = client.get(f"{V1}/recommendations/2023-13-01")
    assert bad.status_code == 422 and bad.json()["detail"].startswith("path.day: '2023-13-01' is not a date")
    impossible = client.get(f"{V1}/recommendations/2023-02-30")
    assert impossible.status_code == 422 and impossible.json()["detail"].startswith(
        "path.day: Input should be a valid date"
    )
    assert client.get(f"{V1}/recommendations", params={"limit": 0}).status_code == 422
    assert client.get(f"{V1}/recommendations", params={"action": "short"}).status_code == 422


def test_symbol_history_is_newest_first(client: TestClient, api_warehouse: Warehouse) -> None:
    symbol = api_warehouse.extra_symbols[3]
    body = client.get(f"{V1}/recommendations/symbols/{symbol}").json()
    assert [item["date"] for item in body["items"]] == [
        str(api_warehouse.latest_date),
        str(api_warehouse.previous_date),
    ]
    assert body["model_version"] == "3"
    only_previous = client.get(
        f"{V1}/recommendations/symbols/{symbol}", params={"end": str(api_warehouse.previous_date)}
    ).json()
    assert [item["model_version"] for item in only_previous["items"]] == ["2"]


def test_models_are_the_champion_and_challenger_with_metrics_and_backtest(
    client: TestClient, api_warehouse: Warehouse
) -> None:
    body = client.get(f"{V1}/models").json()
    models = {model["model_name"]: model for model in body["models"]}
    assert set(models) == {MODEL, "stockyard-prophet"}
    ranker = models[MODEL]
    assert (ranker["champion"]["version"], ranker["challenger"]["version"]) == ("3", "4")
    assert ranker["champion"]["metrics"] == {"rank_ic": 0.031, "hit_rate": 0.52}
    assert ranker["challenger"]["metrics"]["hit_rate"] is None
    assert ranker["champion"]["latest_backtest"]["backtest_id"] == api_warehouse.backtest_id
    assert ranker["champion"]["latest_backtest"]["sharpe"] == 0.67
    assert ranker["challenger"]["latest_backtest"] is None
    assert models["stockyard-prophet"]["challenger"] is None
    assert body["model_version"] == "3"


def test_readiness_reports_data_date_and_champions(client: TestClient, api_warehouse: Warehouse) -> None:
    body = client.get(f"{V1}/health/ready").json()
    assert body == {
        "status": "ready",
        "postgres": True,
        "prices": True,
        "latest_data_date": str(api_warehouse.latest_date),
        "models": True,
        "champion_models": {MODEL: "3", "stockyard-prophet": "1"},
        "recommendations_date": str(api_warehouse.latest_date),
        "redis": True,
    }
    assert client.get(f"{V1}/health/live").json() == {"status": "ok"}
