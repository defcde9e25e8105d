"""Shared fixtures: a throwaway PostgreSQL database per test session, on the real server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from stockyard.services import sibling_database_url

SERVER_URL = os.environ.get("STOCKYARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def create_database(name: str) -> str:
    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return SERVER_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(name: str) -> None:
    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh warehouse database for this test session, dropped at the end (with its Dagster sibling)."""
    name = f"stockyard_test_{uuid.uuid4().hex[:10]}"
    url = create_database(name)
    try:
        yield url
    finally:
        drop_database(name)
        for suffix in ("_dagster", "_mlflow"):
            drop_database(psycopg.conninfo.conninfo_to_dict(sibling_database_url(url, suffix))["dbname"])


@pytest.fixture
def empty_database_url() -> Iterator[str]:
    """A database of its own for a test that needs an empty warehouse."""
    name = f"stockyard_test_{uuid.uuid4().hex[:10]}"
    url = create_database(name)
    try:
        yield url
    finally:
        drop_database(name)
