"""Accounts end to end on the real app and warehouse: sign-in and tokens (every defect refused), refresh
rotation and reuse, password change, mass assignment, and the audit trail the API cannot rewrite."""

from __future__ import annotations

import uuid
import warnings
from datetime import UTC, datetime, timedelta

import jwt
import psycopg
import pytest
from fastapi.testclient import TestClient
from jwt.warnings import InsecureKeyLengthWarning
from psycopg import errors

from serving.app import create_app
from serving.settings import ApiSettings
from tests.serving.support import (
    PASSWORD,
    V1,
    Warehouse,
    api_settings,
    bearer,
    new_account,
    register,
    sign_in,
)


def settings_of(client: TestClient) -> ApiSettings:
    return client.app.state.services.settings  # type: ignore[attr-defined, no-any-return]


def test_sign_in_refresh_rotation_and_logout(accounts_client: TestClient) -> None:
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    register(accounts_client, email)
    first = sign_in(accounts_client, email.upper())  # emails are case-insensitive
    assert accounts_client.get(f"{V1}/me", headers=bearer(first)).json()["email"] == email

    second = accounts_client.post(f"{V1}/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert accounts_client.get(f"{V1}/me", headers=bearer(second)).status_code == 200

    # The first token again: a reuse, so every token of that sign-in (the second one too) is revoked.
    reused = accounts_client.post(f"{V1}/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401 and "used already" in reused.json()["detail"]
    refused = accounts_client.post(f"{V1}/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert refused.status_code == 401

    third = sign_in(accounts_client, email)
    assert (
        accounts_client.post(f"{V1}/auth/logout", json={"refresh_token": third["refresh_token"]}).status_code
        == 204
    )
    after = accounts_client.post(f"{V1}/auth/refresh", json={"refresh_token": third["refresh_token"]})
    assert after.status_code == 401

    wrong = accounts_client.post(f"{V1}/auth/token", data={"username": email, "password": "not the password"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"


def test_a_password_change_ends_every_earlier_token(accounts_client: TestClient) -> None:
    email = f"bob-{uuid.uuid4().hex[:8]}@example.com"
    register(accounts_client, email)
    old = sign_in(accounts_client, email)
    new_password = "another long passphrase"
    changed = accounts_client.post(
        f"{V1}/auth/password",
        json={"current_password": PASSWORD, "new_password": new_password},
        headers=bearer(old),
    )
    assert changed.status_code == 200, changed.text
    assert accounts_client.get(f"{V1}/me", headers=bearer(old)).status_code == 401
    assert (
        accounts_client.post(f"{V1}/auth/refresh", json={"refresh_token": old["refresh_token"]}).status_code
        == 401
    )
    assert accounts_client.get(f"{V1}/me", headers=bearer(changed.json())).status_code == 200
    sign_in(accounts_client, email, new_password)


def _token(settings: ApiSettings, user_id: int, password_changed_at: float, **changes: object) -> str:
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": str(user_id),
        "pwd": password_changed_at,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    key = changes.pop("key", settings.jwt_secret.get_secret_value())
    algorithm = str(changes.pop("algorithm", "HS256"))
    claims.update(changes)
    claims = {name: value for name, value in claims.items() if value is not None}
    if algorithm == "none":
        return jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    with warnings.catch_warnings():
        # A forged token does not care that its key is short for HS512.
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims, str(key), algorithm=algorithm)


DEFECTS = {
    "bad signature": {"key": "another secret of at least thirty-two bytes!"},
    "alg none": {"algorithm": "none"},
    "HS512 instead of HS256": {"algorithm": "HS512"},
    "wrong audience": {"aud": "another-api"},
    "wrong issuer": {"iss": "someone-else"},
    "expired": {"exp": int((datetime.now(UTC) - timedelta(seconds=5)).timestamp())},
    "no expiry": {"exp": None},
}


def test_every_token_defect_is_refused(accounts_client: TestClient, api_warehouse: Warehouse) -> None:
    user_id, headers = new_account(accounts_client, "carol")
    settings = settings_of(accounts_client)
    with psycopg.connect(api_warehouse.url) as conn:
        (changed_at,) = conn.execute(
            "select password_changed_at from app.users where user_id = %s", (user_id,)
        ).fetchone()  # type: ignore[misc]
    good = _token(settings, user_id, changed_at.timestamp())
    assert accounts_client.get(f"{V1}/me", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    for defect, changes in DEFECTS.items():
        token = _token(settings, user_id, changed_at.timestamp(), **changes)
        response = accounts_client.get(f"{V1}/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, defect
    assert accounts_client.get(f"{V1}/me").status_code == 401


def test_mass_assignment_has_no_effect(accounts_client: TestClient, api_warehouse: Warehouse) -> None:
    victim_id, victim = new_account(accounts_client, "victim")
    email = f"mallory-{uuid.uuid4().hex[:8]}@example.com"
    user = register(
        accounts_client, email, role="admin", user_id=1, is_active=True, created_at="2000-01-01T00:00:00Z"
    )
    assert user["role"] == "user" and user["user_id"] != 1 and not user["created_at"].startswith("2000")
    headers = bearer(sign_in(accounts_client, email))
    assert accounts_client.patch(f"{V1}/me", json={"role": "admin"}, headers=headers).json()["role"] == "user"
    created = accounts_client.post(
        f"{V1}/portfolios",
        json={"name": "mine", "user_id": victim_id, "created_at": "2000-01-01T00:00:00Z", "version": 99},
        headers=headers,
    ).json()
    assert created["version"] == 1 and not created["created_at"].startswith("2000")
    assert accounts_client.get(f"{V1}/portfolios", headers=victim).json() == []
    assert accounts_client.get(f"{V1}/admin/users", headers=headers).status_code == 403


FORBIDDEN_ON_THE_AUDIT_LOG = [
    "update app.audit_log set result = 'success'",
    "delete from app.audit_log",
    "truncate app.audit_log",
]


@pytest.mark.parametrize("statement", FORBIDDEN_ON_THE_AUDIT_LOG)
def test_the_api_role_cannot_rewrite_the_audit_log(api_warehouse: Warehouse, statement: str) -> None:
    with psycopg.connect(api_warehouse.api_url, autocommit=True) as conn:
        conn.execute("set session characteristics as transaction read write")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(statement)


def test_authentication_and_writes_are_audited(accounts_client: TestClient, api_warehouse: Warehouse) -> None:
    user_id, headers = new_account(accounts_client, "dave")
    email = accounts_client.get(f"{V1}/me", headers=headers).json()["email"]
    accounts_client.post(f"{V1}/auth/token", data={"username": email, "password": "wrong password!"})
    portfolio = accounts_client.post(f"{V1}/portfolios", json={"name": "audited"}, headers=headers).json()
    accounts_client.post(f"{V1}/portfolios", json={"name": "audited"}, headers=headers)  # a 409
    with psycopg.connect(api_warehouse.url) as conn:
        entries = conn.execute(
            "select action, result, target, request_id is not null from app.audit_log where user_id = %s"
            " order by audit_id",
            (user_id,),
        ).fetchall()
    assert entries == [
        ("auth.register", "success", f"user:{user_id}", True),
        ("auth.login", "success", f"user:{user_id}", True),
        ("auth.login", "denied", None, True),
        ("portfolio.create", "success", f"portfolio:{portfolio['portfolio_id']}", True),
        ("portfolio.create", "failed", None, True),
    ]


def test_admins_list_and_disable_users_and_query_the_audit_log(
    accounts_client: TestClient, api_warehouse: Warehouse
) -> None:
    admin_id, admin = new_account(accounts_client, "admin")
    with psycopg.connect(api_warehouse.url) as conn:
        conn.execute("update app.users set role = 'admin' where user_id = %s", (admin_id,))
    admin = bearer(sign_in(accounts_client, accounts_client.get(f"{V1}/me", headers=admin).json()["email"]))
    user_id, user = new_account(accounts_client, "erin")

    listed = accounts_client.get(f"{V1}/admin/users", params={"limit": 500}, headers=admin).json()
    assert user_id in {item["user_id"] for item in listed}
    disabled = accounts_client.patch(f"{V1}/admin/users/{user_id}", json={"is_active": False}, headers=admin)
    assert disabled.status_code == 200 and disabled.json()["is_active"] is False
    assert accounts_client.get(f"{V1}/me", headers=user).status_code == 401

    page = accounts_client.get(f"{V1}/admin/audit", params={"user_id": admin_id}, headers=admin).json()
    assert [item["action"] for item in page["items"]][:1] == ["admin.user_update"]
    assert accounts_client.get(f"{V1}/admin/cache", headers=admin).json()["redis_available"] is True
    assert accounts_client.get(f"{V1}/admin/audit", headers=user).status_code == 401


def test_login_is_rate_limited_with_retry_after(api_warehouse: Warehouse, redis_url: str) -> None:
    settings = api_settings(api_warehouse.api_url, redis_url, rate_limit_login="3/minute")
    with TestClient(create_app(settings)) as client:
        form = {"username": f"nobody-{uuid.uuid4().hex[:6]}@example.com", "password": "wrong password!"}
        codes = [client.post(f"{V1}/auth/token", data=form).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        limited = client.post(f"{V1}/auth/token", data=form)
        assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60


def test_a_placeholder_secret_is_refused_outside_development() -> None:
    with pytest.raises(ValueError, match="STOCKYARD_API_JWT_SECRET"):
        ApiSettings(database_url="postgresql://x@y/z", redis_url="redis://y", environment="production")
    ApiSettings(
        database_url="postgresql://x@y/z",
        redis_url="redis://y",
        environment="production",
        jwt_secret="s" * 40,  # type: ignore[arg-type]
    )
