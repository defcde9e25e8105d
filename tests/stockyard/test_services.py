"""The embedded PostgreSQL and Redis: start in a folder, keep their data across a restart, stop cleanly."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import redis
import yaml

from cli.services import REDIS_EVICTION_POLICY, REDIS_MAXMEMORY, EmbeddedServices
from stockyard.endpoints import Endpoints, resolve_endpoints, sibling_database_url
from stockyard.settings import PROJECT_ROOT, ServicesSettings


@pytest.fixture
def services(tmp_path: Path):
    embedded = EmbeddedServices(tmp_path / "state")
    yield embedded
    embedded.down()


def test_embedded_services_keep_data_across_restart(services: EmbeddedServices) -> None:
    endpoints = services.up()
    assert services.status() == {"postgres": True, "redis": True}
    with psycopg.connect(endpoints.database_url) as conn:
        conn.execute("create table kept (value text)")
        conn.execute("insert into kept values ('survives')")
    cache = redis.Redis.from_url(endpoints.redis_url, decode_responses=True)
    cache.set("kept", "survives")
    limits = cache.config_get("maxmemory*")
    assert (limits["maxmemory"], limits["maxmemory-policy"]) == (str(256 * 1024**2), REDIS_EVICTION_POLICY)
    for url in (endpoints.dagster_database_url, endpoints.mlflow_database_url):
        with psycopg.connect(url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)

    services.down()
    assert services.status() == {"postgres": False, "redis": False}

    restarted = services.up()
    assert restarted == endpoints, "ports are chosen once and remembered"
    with psycopg.connect(restarted.database_url) as conn:
        assert conn.execute("select value from kept").fetchall() == [("survives",)]
    assert redis.Redis.from_url(restarted.redis_url).get("kept") == b"survives"


def test_up_is_idempotent(services: EmbeddedServices) -> None:
    first = services.up()
    assert services.up() == first


def test_configured_services_are_used_as_they_are(tmp_path: Path) -> None:
    settings = ServicesSettings(
        database_url="postgresql://u@db.example:5432/warehouse",
        redis_url="redis://cache:6379/1",
        state_dir=tmp_path,
    )
    endpoints = resolve_endpoints(settings)
    assert endpoints == Endpoints(
        "postgresql://u@db.example:5432/warehouse", "redis://cache:6379/1", embedded=False
    )
    assert not (tmp_path / "postgres").exists(), "nothing is started or created for configured services"


def test_sibling_database_url_keeps_the_query() -> None:
    assert sibling_database_url("postgresql://u:p@h:1/wh?sslmode=require", "_dagster") == (
        "postgresql://u:p@h:1/wh_dagster?sslmode=require"
    )


def test_the_compose_redis_has_the_embedded_ones_ceiling() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    command: list[str] = compose["services"]["redis"]["command"]
    assert command[command.index("--maxmemory") + 1] == REDIS_MAXMEMORY
    assert command[command.index("--maxmemory-policy") + 1] == REDIS_EVICTION_POLICY
