"""The websocket /api/v1/ws: refusals of missing, invalid, expired and revoked tokens (audited), the close at
the token's expiry, and hits found by the alert_hits asset reaching their owner's connection through Redis,
on two apps (two workers) sharing the channels."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import jwt
import psycopg
import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession

from orchestration.products.alerts import alert_hits
from orchestration.resources import ApiCacheResource, WarehouseResource
from serving.app import create_app
from serving.auth import User, issue_access_token
from serving.routes import live
from stockyard.live import publish, refreshed_message
from tests.serving.support import V1, Warehouse, api_settings, new_account

WS = f"{V1}/ws"


def _user(warehouse: Warehouse, user_id: int) -> User:
    with psycopg.connect(warehouse.url) as conn:
        row = conn.execute(
            "select user_id, email, display_name, role, is_active, password_changed_at, created_at"
            " from app.users where user_id = %s",
            (user_id,),
        ).fetchone()
    assert row is not None
    return User(*row)


def _token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def _connect(ws: WebSocketTestSession, token: str) -> dict[str, Any]:
    ws.send_text(json.dumps({"type": "auth", "token": token}))
    return ws.receive_json()


def _closed(ws: WebSocketTestSession) -> tuple[int, str]:
    message = ws.receive()
    assert message["type"] == "websocket.close", message
    return message["code"], message.get("reason", "")


def test_the_websocket_refuses_what_is_not_a_valid_token(
    accounts_client: TestClient, api_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = accounts_client
    settings = client.app.state.settings  # type: ignore[attr-defined]
    user_id, headers = new_account(client, "ws-refused")
    user = _user(api_warehouse, user_id)
    expired = issue_access_token(settings, user, now=datetime.now(UTC) - timedelta(hours=2))
    forged = jwt.encode(
        jwt.decode(_token_of(headers), options={"verify_signature": False}), "not-the-secret" * 4, "HS256"
    )
    attempts = {
        "missing token": json.dumps({"type": "auth"}),
        "not json": "Bearer " + _token_of(headers),
        "bad signature": json.dumps({"type": "auth", "token": forged}),
        "expired": json.dumps({"type": "auth", "token": expired}),
    }
    for what, first in attempts.items():
        with client.websocket_connect(WS) as ws:
            ws.send_text(first)
            code, reason = _closed(ws)
        assert code == live.REFUSED, what
        assert reason, what

    # Revoked: the password changed after the token was issued.
    with psycopg.connect(api_warehouse.url) as conn:
        conn.execute(
            "update app.users set password_changed_at = now() + interval '1 second' where user_id = %s",
            (user_id,),
        )
    with client.websocket_connect(WS) as ws:
        ws.send_text(json.dumps({"type": "auth", "token": _token_of(headers)}))
        assert _closed(ws) == (live.REFUSED, "the access token is no longer valid: sign in again")

    monkeypatch.setattr(live, "AUTH_SECONDS", 0.2)
    with client.websocket_connect(WS) as ws:
        assert _closed(ws)[0] == live.REFUSED

    with psycopg.connect(api_warehouse.url) as conn:
        reasons = {
            row[0]
            for row in conn.execute(
                "select detail->>'reason' from app.audit_log where action = 'auth.websocket'"
                " and result = 'denied'"
            )
        }
    assert {
        "invalid access token: Signature verification failed",
        "invalid access token: Signature has expired",
        "the access token is no longer valid: sign in again",
        "no auth message within 0.2 s",
    } <= reasons


def test_the_websocket_closes_when_the_token_expires_unless_renewed(
    accounts_client: TestClient, api_warehouse: Warehouse, redis_url: str
) -> None:
    client = accounts_client
    settings = client.app.state.settings  # type: ignore[attr-defined]
    user_id, _ = new_account(client, "ws-expiry")
    lifetime = timedelta(minutes=settings.access_token_minutes)
    token = issue_access_token(
        settings, _user(api_warehouse, user_id), now=datetime.now(UTC) - lifetime + timedelta(seconds=2)
    )
    with client.websocket_connect(WS) as ws:
        ready = _connect(ws, token)
        assert ready["type"] == "ready" and ready["user_id"] == user_id and ready["live"] is True
        code, reason = _closed(ws)
    assert code == live.REFUSED and "expired" in reason
    assert datetime.now(UTC).timestamp() >= ready["expires_at"]

    # A newer token of the same user, sent before the expiry, keeps the connection open past it.
    renewal = issue_access_token(settings, _user(api_warehouse, user_id))
    token = issue_access_token(
        settings, _user(api_warehouse, user_id), now=datetime.now(UTC) - lifetime + timedelta(seconds=2)
    )
    with client.websocket_connect(WS) as ws:
        assert _connect(ws, token)["type"] == "ready"
        ws.send_text(json.dumps({"type": "auth", "token": renewal}))
        time.sleep(3)
        message = refreshed_message(api_warehouse.latest_date, model_version="renewed")
        publish(redis_url, to_all=[message], cache_prefix=settings.cache_prefix)
        assert ws.receive_json() == message


def _firing_alerts(warehouse: Warehouse) -> tuple[dict[str, Any], dict[str, Any]]:
    """An enters_top alert and a price alert that the latest date sets off."""
    with psycopg.connect(warehouse.url) as conn:
        entering = conn.execute(
            "select today.symbol, today.rank from products.recommendations today"
            " join products.recommendations before on before.symbol = today.symbol and before.date = %s"
            " where today.date = %s and before.rank > today.rank and today.symbol = any(%s)"
            " order by today.symbol limit 1",
            (warehouse.previous_date, warehouse.latest_date, warehouse.symbols),
        ).fetchone()
        moved = conn.execute(
            "select today.symbol, before.close, today.close from marts.fct_daily_prices today"
            " join marts.fct_daily_prices before on before.symbol = today.symbol and before.date = %s"
            " where today.date = %s and today.close <> before.close order by today.symbol limit 1",
            (warehouse.previous_date, warehouse.latest_date),
        ).fetchone()
    assert entering is not None and moved is not None
    symbol, before, today = moved
    return (
        {"kind": "enters_top", "symbol": entering[0], "top_n": entering[1]},
        {
            "kind": "price_above" if today > before else "price_below",
            "symbol": symbol,
            "level": (before + today) / 2,
        },
    )


def test_a_hit_of_the_daily_refresh_reaches_its_owner_on_any_worker(
    accounts_client: TestClient, api_warehouse: Warehouse, redis_url: str
) -> None:
    client = accounts_client
    prefix = client.app.state.settings.cache_prefix  # type: ignore[attr-defined]
    _, owner = new_account(client, "ws-owner")
    _, bystander = new_account(client, "ws-bystander")
    symbol = api_warehouse.symbols[3]
    screen = client.post(
        f"{V1}/screens",
        json={"name": "Just one", "conditions": [{"field": "symbol", "op": "=", "value": symbol.lower()}]},
        headers=owner,
    ).json()
    entering, crossing = _firing_alerts(api_warehouse)
    alerts = [client.post(f"{V1}/alerts", json=body, headers=owner).json() for body in (entering, crossing)]

    # A second app on the same Redis channels: another worker.
    other_worker = TestClient(create_app(api_settings(api_warehouse.api_url, redis_url, cache_prefix=prefix)))
    with (
        other_worker,
        client.websocket_connect(WS) as owner_ws,
        other_worker.websocket_connect(WS) as bystander_ws,
    ):
        assert _connect(owner_ws, _token_of(owner))["live"] is True
        assert _connect(bystander_ws, _token_of(bystander))["live"] is True
        result = dg.materialize(
            [alert_hits],
            resources={
                "warehouse_db": WarehouseResource(database_url=api_warehouse.url),
                "api_cache": ApiCacheResource(redis_url=redis_url, prefix=prefix),
            },
        )
        assert result.success
        owner_messages = [owner_ws.receive_json() for _ in range(4)]
        assert bystander_ws.receive_json()["type"] == "recommendations.refreshed"

    hits = [message for message in owner_messages if message["type"] == "hit"]
    assert owner_messages[-1] == refreshed_message(api_warehouse.latest_date, model_version="3")
    assert {(hit["source"], hit.get("screen_id") or hit.get("alert_id"), hit["symbol"]) for hit in hits} == {
        ("screen", screen["screen_id"], symbol),
        ("alert", alerts[0]["alert_id"], entering["symbol"]),
        ("alert", alerts[1]["alert_id"], crossing["symbol"]),
    }
    assert all(hit["data_date"] == api_warehouse.latest_date.isoformat() for hit in hits)
    stored = client.get(f"{V1}/hits", headers=owner).json()
    assert sorted(hit["hit_id"] for hit in stored) == sorted(hit["hit_id"] for hit in hits)
    assert client.get(f"{V1}/hits", headers=bystander).json() == []

    # The same date evaluated again stores and pushes no hit twice.
    again = dg.materialize(
        [alert_hits],
        resources={
            "warehouse_db": WarehouseResource(database_url=api_warehouse.url),
            "api_cache": ApiCacheResource(redis_url=redis_url, prefix=prefix),
        },
    )
    assert again.success
    assert len(client.get(f"{V1}/hits", headers=owner).json()) == 3
