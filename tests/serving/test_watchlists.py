"""Watchlists, personalized recommendations, screens and alerts through the API: ownership (another user's
ids answer 404), conditions that cannot become SQL, the screens' answers against the warehouse, the audit
trail and the GDPR export and erasure of the new tables."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from serving.personalize import personalize
from serving.schemas import Recommendation
from tests.serving.support import V1, Warehouse, new_account

WATCHED_TABLES = ("watchlists", "screens", "alerts", "hits")


@pytest.fixture(scope="module")
def validator(accounts_client: TestClient) -> dict[str, str]:
    """One account for the refused screens: none of them may be stored."""
    return new_account(accounts_client, "validator")[1]


def test_a_watchlist_is_its_owners_alone(accounts_client: TestClient, api_warehouse: Warehouse) -> None:
    client = accounts_client
    _, owner = new_account(client, "watcher")
    _, other = new_account(client, "snoop")
    first, second = api_warehouse.symbols[:2]
    created = client.post(
        f"{V1}/watchlists", json={"name": "Tech", "symbols": [first.lower(), first]}, headers=owner
    )
    assert created.status_code == 201, created.text
    watchlist = created.json()
    assert watchlist["symbols"] == [first]
    path = f"{V1}/watchlists/{watchlist['watchlist_id']}"

    assert client.put(f"{path}/symbols/{second}", headers=owner).json()["symbols"] == [first, second]
    for method, url, body in (
        ("GET", path, None),
        ("PATCH", path, {"name": "Mine now"}),
        ("DELETE", path, None),
        ("PUT", f"{path}/symbols/{second}", None),
        ("DELETE", f"{path}/symbols/{first}", None),
    ):
        response = client.request(method, url, json=body, headers=other)
        assert response.status_code == 404, (method, url, response.text)
    assert client.get(f"{V1}/watchlists", headers=other).json() == []
    assert client.get(path, headers=owner).json()["symbols"] == [first, second]

    unknown = client.put(f"{path}/symbols/NOSUCH", headers=owner)
    assert unknown.status_code == 422 and "NOSUCH" in unknown.json()["detail"]
    assert client.post(f"{V1}/watchlists", json={"name": "Tech"}, headers=owner).status_code == 409
    assert client.delete(f"{path}/symbols/{first}", headers=owner).json()["symbols"] == [second]
    assert client.delete(path, headers=owner).status_code == 204
    assert client.get(path, headers=owner).status_code == 404


def test_screens_and_alerts_are_their_owners_alone(
    accounts_client: TestClient, api_warehouse: Warehouse
) -> None:
    client = accounts_client
    _, owner = new_account(client, "screener")
    _, other = new_account(client, "peeker")
    screen = client.post(
        f"{V1}/screens",
        json={"name": "Oversold", "conditions": [{"field": "rsi_14", "op": "<", "value": 30}]},
        headers=owner,
    ).json()
    alert = client.post(
        f"{V1}/alerts",
        json={"kind": "price_above", "symbol": api_warehouse.symbols[0], "level": 100},
        headers=owner,
    ).json()
    for base, item in (
        (f"{V1}/screens/{screen['screen_id']}", {"name": "x"}),
        (f"{V1}/alerts/{alert['alert_id']}", {"is_active": False}),
    ):
        for method, url, body in (
            ("GET", base, None),
            ("PATCH", base, item),
            ("DELETE", base, None),
            ("GET", f"{base}/hits", None),
        ):
            response = client.request(method, url, json=body, headers=other)
            assert response.status_code == 404, (method, url, response.text)
    assert client.get(f"{V1}/screens/{screen['screen_id']}/matches", headers=other).status_code == 404
    assert client.get(f"{V1}/screens", headers=other).json() == []
    assert client.get(f"{V1}/alerts", headers=other).json() == []
    assert client.get(f"{V1}/screens/{screen['screen_id']}", headers=owner).json()["name"] == "Oversold"
    assert client.get(f"{V1}/alerts/{alert['alert_id']}", headers=owner).json()["is_active"] is True


@pytest.mark.parametrize(
    ("condition", "complaint"),
    [
        ({"field": "rsi_14; drop table app.users", "op": "<", "value": 30}, "unknown field"),
        ({"field": "pg_sleep(10)", "op": "=", "value": 1}, "unknown field"),
        ({"field": "rsi_14", "op": "like", "value": 30}, "op"),
        ({"field": "rsi_14", "op": "<", "value": "30 or 1=1"}, "is a number"),
        ({"field": "rsi_14", "op": "in", "value": [1, 2]}, "valid string"),
        ({"field": "sector", "op": "<", "value": "Energy"}, "is text"),
        ({"field": "action", "op": "=", "value": "short"}, "the actions are"),
        ({"field": "sector", "op": "in", "value": "Energy"}, "list of text"),
        ({"field": "rsi_14", "op": "<", "value": 30, "sql": "true"}, "Extra inputs"),
    ],
)
def test_conditions_are_validated_data(
    accounts_client: TestClient, validator: dict[str, str], condition: dict[str, object], complaint: str
) -> None:
    headers = validator
    response = accounts_client.post(
        f"{V1}/screens", json={"name": "Bad", "conditions": [condition]}, headers=headers
    )
    assert response.status_code == 422, response.text
    assert complaint in response.json()["detail"]
    assert accounts_client.get(f"{V1}/screens", headers=headers).json() == []


def test_a_screen_runs_on_the_latest_data(accounts_client: TestClient, api_warehouse: Warehouse) -> None:
    client = accounts_client
    _, headers = new_account(client, "runner")
    conditions = [
        {"field": "rsi_14", "op": "<", "value": 55},
        {"field": "action", "op": "in", "value": ["buy", "hold"]},
        {"field": "sector", "op": "!=", "value": "x' or '1'='1"},
    ]
    screen = client.post(f"{V1}/screens", json={"name": "Calm", "conditions": conditions}, headers=headers)
    assert screen.status_code == 201, screen.text
    answer = client.get(f"{V1}/screens/{screen.json()['screen_id']}/matches", headers=headers).json()

    with psycopg.connect(api_warehouse.url) as conn:
        expected = [
            row[0]
            for row in conn.execute(
                "select f.symbol from marts.fct_stock_features f"
                " join products.recommendations r on r.symbol = f.symbol and r.date = f.date"
                " join marts.dim_stocks s on s.symbol = f.symbol"
                " where f.date = %s and f.rsi_14 < 55 and r.action in ('buy', 'hold')"
                " order by f.symbol",
                (api_warehouse.latest_date,),
            )
        ]
    assert answer["date"] == api_warehouse.latest_date.isoformat()
    assert [match["symbol"] for match in answer["matches"]] == expected
    assert answer["total"] == len(expected) > 0
    assert all(m["rsi_14"] < 55 and m["action"] in ("buy", "hold") for m in answer["matches"])

    # A text value is a bound parameter: the quote trick matches no sector, and filters nothing out here.
    injected = client.post(
        f"{V1}/screens",
        json={"name": "Quote", "conditions": [{"field": "sector", "op": "=", "value": "x' or '1'='1"}]},
        headers=headers,
    ).json()
    assert client.get(f"{V1}/screens/{injected['screen_id']}/matches", headers=headers).json()["total"] == 0


def test_recommendations_for_a_user_put_the_watchlist_first_and_diversify(
    accounts_client: TestClient, api_warehouse: Warehouse
) -> None:
    client = accounts_client
    _, headers = new_account(client, "personal")
    everything = client.get(f"{V1}/recommendations", params={"limit": 500}).json()["items"]
    watched = everything[-1]["symbol"]  # the worst-ranked: first only because it is watched
    client.post(f"{V1}/watchlists", json={"name": "Mine", "symbols": [watched]}, headers=headers)

    answer = client.get(f"{V1}/me/recommendations", params={"limit": 10}, headers=headers)
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert [item["symbol"] for item in items][0] == watched
    assert items[0]["on_watchlist"] and "'Mine'" in items[0]["reason"]
    assert len(items) == 10
    assert all(item["action"] != "sell" for item in items[1:])
    assert all(item["reason"] for item in items)


def _recommendation(symbol: str, rank: int, sector: str) -> Recommendation:
    percentile = 1 - (rank - 1) / 100
    return Recommendation.model_validate(
        {
            "date": "2024-06-28",
            "symbol": symbol,
            "company_name": None,
            "sector": sector,
            "rank": rank,
            "score": percentile,
            "percentile": percentile,
            "expected_excess_return": 0.01,
            "confidence": 0.5,
            "action": "buy",
            "top_contributions": [],
            "model_name": "m",
            "model_version": "1",
            "data_date": "2024-06-28",
        }
    )


def test_a_sector_the_user_is_heavy_in_gives_way() -> None:
    ranked = [
        _recommendation("T1", 1, "Information Technology"),
        _recommendation("T2", 2, "Information Technology"),
        _recommendation("E1", 3, "Energy"),
        _recommendation("T3", 4, "Information Technology"),
        _recommendation("H1", 5, "Health Care"),
    ]
    without = personalize(ranked, watched={}, holdings={}, limit=3)
    holding_tech = personalize(
        ranked, watched={}, holdings={"T9": ("Information Technology", 1000.0)}, limit=3
    )
    assert [item.symbol for item in without] == ["T1", "E1", "H1"]
    assert [item.symbol for item in holding_tech] == ["E1", "H1", "T1"]
    assert "Information Technology is 100% of your holdings" in holding_tech[2].reason


def test_writes_are_audited_and_gdpr_covers_the_new_tables(
    accounts_client: TestClient, api_warehouse: Warehouse
) -> None:
    client = accounts_client
    user_id, headers = new_account(client, "gdpr-watch")
    symbol = api_warehouse.symbols[0]
    watchlist = client.post(
        f"{V1}/watchlists", json={"name": "W", "symbols": [symbol]}, headers=headers
    ).json()
    screen = client.post(
        f"{V1}/screens",
        json={"name": "S", "conditions": [{"field": "symbol", "op": "=", "value": symbol}]},
        headers=headers,
    ).json()
    alert = client.post(
        f"{V1}/alerts", json={"kind": "enters_top", "symbol": symbol, "top_n": 5}, headers=headers
    ).json()
    client.patch(f"{V1}/alerts/{alert['alert_id']}", json={"is_active": False}, headers=headers)
    client.patch(f"{V1}/screens/{screen['screen_id']}", json={"is_active": False}, headers=headers)
    client.patch(f"{V1}/watchlists/{watchlist['watchlist_id']}", json={"name": "W2"}, headers=headers)
    assert client.post(f"{V1}/watchlists", json={"name": "W2"}, headers=headers).status_code == 409
    with psycopg.connect(api_warehouse.url) as conn:
        conn.execute(
            "insert into app.hits (user_id, screen_id, data_date, symbol, detail)"
            " values (%s, %s, %s, %s, '{}')",
            (user_id, screen["screen_id"], api_warehouse.latest_date, symbol),
        )
        entries = conn.execute(
            "select action, target, result from app.audit_log where user_id = %s order by audit_id",
            (user_id,),
        ).fetchall()
    assert [entry for entry in entries if not entry[0].startswith("auth.")] == [
        ("watchlist.create", f"watchlist:{watchlist['watchlist_id']}", "success"),
        ("screen.create", f"screen:{screen['screen_id']}", "success"),
        ("alert.create", f"alert:{alert['alert_id']}", "success"),
        ("alert.update", f"alert:{alert['alert_id']}", "success"),
        ("screen.update", f"screen:{screen['screen_id']}", "success"),
        ("watchlist.rename", f"watchlist:{watchlist['watchlist_id']}", "success"),
        ("watchlist.create", None, "failed"),
    ]

    exported = client.get(f"{V1}/me/export", headers=headers).json()["data"]
    assert [row["name"] for row in exported["watchlists"]] == ["W2"]
    assert [row["symbol"] for row in exported["watchlist_items"]] == [symbol]
    assert [row["screen_id"] for row in exported["screens"]] == [screen["screen_id"]]
    assert [row["alert_id"] for row in exported["alerts"]] == [alert["alert_id"]]
    assert [row["symbol"] for row in exported["hits"]] == [symbol]

    assert client.delete(f"{V1}/me", headers=headers).status_code == 204
    with psycopg.connect(api_warehouse.url) as conn:
        for table in WATCHED_TABLES:
            left = conn.execute(f"select count(*) from app.{table} where user_id = %s", (user_id,)).fetchone()
            assert left == (0,), table
        assert conn.execute(
            "select count(*) from app.watchlist_items where watchlist_id = %s", (watchlist["watchlist_id"],)
        ).fetchone() == (0,)
