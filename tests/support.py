"""Helpers of the whole suite: throwaway PostgreSQL databases on the test servers, waiting for a server.

The servers are STOCKYARD_TEST_POSTGRES_URL / STOCKYARD_TEST_REDIS_URL when set (CI sets them); otherwise the
project's own services, embedded ones on a fresh machine, so `make test` needs nothing installed beforehand.
"""

from __future__ import annotations

import functools
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psycopg
from psycopg import sql

from cli.services import ensure_services
from stockyard.db.migrate import upgrade
from stockyard.settings import get_services_settings


@functools.cache
def test_servers() -> tuple[str, str]:
    """(PostgreSQL maintenance-database URL, Redis URL) the tests run against."""
    postgres = os.environ.get("STOCKYARD_TEST_POSTGRES_URL")
    redis = os.environ.get("STOCKYARD_TEST_REDIS_URL")
    if postgres is None or redis is None:
        endpoints = ensure_services(get_services_settings())
        postgres = postgres or endpoints.database_url.rsplit("/", 1)[0] + "/postgres"
        redis = redis or endpoints.redis_url
    return postgres, redis


def create_database(name: str) -> str:
    server_url = test_servers()[0]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def drop_database(name: str) -> None:
    with psycopg.connect(test_servers()[0], autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@contextmanager
def throwaway_database(*, migrated: bool = True) -> Iterator[str]:
    """A new database with the application's tables (`stockyard db upgrade`, unless not `migrated`), dropped
    afterwards together with the Dagster and MLflow databases made beside it."""
    name = f"stockyard_test_{uuid.uuid4().hex[:10]}"
    url = create_database(name)
    try:
        if migrated:
            upgrade(url)
        yield url
    finally:
        for suffix in ("", "_dagster", "_mlflow"):
            drop_database(name + suffix)


def wait_until_ready(url: str, server: subprocess.Popen[str] | None = None, *, seconds: float = 60) -> None:
    """Wait until `url` answers 200, failing if `server` (when given) exits or `seconds` pass first."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert server is None or server.poll() is None, (
            f"the server exited with {server.returncode} before {url} answered"
        )
        assert time.monotonic() < deadline, f"{url} did not answer within {seconds:g} s"
        time.sleep(0.2)
