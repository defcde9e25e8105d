"""The API tests' warehouses, copies of them and test apps' settings (the fixtures are in conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import psycopg
from fastapi.testclient import TestClient
from psycopg import sql

from serving.settings import ApiSettings
from stockyard.api_role import api_role_url, ensure_api_role
from tests.support import drop_database, test_servers

MARKET_START, MARKET_END = date(2023, 1, 3), date(2023, 12, 29)
MARKET_SYMBOLS = 30
RECOMMENDED_SYMBOLS = 500
MODEL = "stockyard-xgboost"
# Every test app's cache keys start with this, and the session deletes them at its end.
SESSION_CACHE_PREFIX = f"stockyard-test-api:{uuid.uuid4().hex[:8]}"
FORECASTER = "stockyard-prophet"


@dataclass(frozen=True)
class Warehouse:
    url: str  # as the owner, who built it
    api_url: str  # as the API's read-only role
    symbols: list[str]  # the ones with prices
    extra_symbols: list[str]  # in dim_stocks and recommended, without prices
    latest_date: date
    previous_date: date
    backtest_id: int


@dataclass(frozen=True)
class BuiltMarts:
    url: str
    symbols: list[str]
    dates: list[date]  # the latest two


@contextmanager
def copy_of(template_url: str) -> Iterator[str]:
    """A new database copied from `template_url` (which nobody may be connected to), dropped afterwards."""
    name = f"stockyard_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(test_servers()[0], autocommit=True) as conn:
        conn.execute(
            sql.SQL("create database {} template {}").format(
                sql.Identifier(name), sql.Identifier(template_url.rsplit("/", 1)[1])
            )
        )
    try:
        yield template_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        drop_database(name)


def with_api_role(owner_url: str) -> str:
    """Set up the API's role on the warehouse at `owner_url` as `stockyard serve` does; its URL as it."""
    defaults = ApiSettings.model_fields
    role = defaults["db_role"].default
    ensure_api_role(
        owner_url, role=role, password="", statement_timeout_ms=defaults["db_statement_timeout_ms"].default
    )
    return api_role_url(owner_url, role, "")


@dataclass(frozen=True)
class MartsOnlyWarehouse:
    url: str
    api_url: str
    symbols: list[str]
    latest_date: date


def api_settings(database_url: str, redis_url: str, **overrides: object) -> ApiSettings:
    """Settings of a test app: its own cache prefix, and no background refresh racing the tests."""
    values: dict[str, object] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "cache_prefix": f"{SESSION_CACHE_PREFIX}:{uuid.uuid4().hex[:8]}",
        "state_refresh_seconds": 3600,
        **overrides,
    }
    return ApiSettings(**values)  # type: ignore[arg-type]


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn: object, cursor: object, statement: str, *args: object) -> None:
        self.statements.append(statement)


# --- accounts -----------------------------------------------------------------------------------------------

V1 = "/api/v1"
PASSWORD = "correct horse battery staple"


def register(client: TestClient, email: str, password: str = PASSWORD, **extra: object) -> dict[str, object]:
    response = client.post(f"{V1}/auth/register", json={"email": email, "password": password, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    """The token pair of a sign-in."""
    response = client.post(f"{V1}/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def new_account(client: TestClient, name: str) -> tuple[int, dict[str, str]]:
    """A new user (unique email) signed in: its id and authorization headers."""
    email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
    user = register(client, email)
    return int(user["user_id"]), bearer(sign_in(client, email))


def new_admin(client: TestClient, owner_url: str, name: str) -> tuple[int, dict[str, str]]:
    """A new user made an admin (as `stockyard users create-admin` would), signed in after the change."""
    user_id, headers = new_account(client, name)
    with psycopg.connect(owner_url) as conn:
        (email,) = conn.execute(
            "update app.users set role = 'admin' where user_id = %s returning email", (user_id,)
        ).fetchone()  # type: ignore[misc]
    return user_id, bearer(sign_in(client, email))
