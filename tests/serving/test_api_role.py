"""The API's read-only role (stockyard.api_role): it reads every table the API queries, after dbt rebuilt
them too, and can write, create or read nothing else; setting it up is idempotent and safe when warehouses
on one server set it up at once."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from psycopg import errors, sql

import tests.support as shared
from serving.tables import metadata
from stockyard.api_role import API_SCHEMAS, api_role_url, ensure_api_role
from tests.dbt.support import run_dbt
from tests.serving.support import BuiltMarts, Warehouse, copy_of, with_api_role

FORBIDDEN = [
    "insert into marts.dim_stocks (symbol) values ('NEW')",
    "update products.recommendations set score = 0",
    "delete from marts.fct_daily_prices",
    "truncate products.model_versions",
    "create table marts.intruder (id int)",
    "create table products.intruder (id int)",
    "create table public.intruder (id int)",
    "create schema intruder",
    "create index on marts.dim_stocks (company_name)",
    "drop table marts.dim_stocks",
    "select count(*) from raw.daily_prices",
    "select count(*) from intermediate.int_prices_adjusted",
]


@pytest.mark.parametrize("statement", FORBIDDEN)
def test_the_api_role_can_neither_write_nor_create_nor_read_other_layers(
    api_warehouse: Warehouse, statement: str
) -> None:
    with psycopg.connect(api_warehouse.api_url, autocommit=True) as conn:
        # Its privileges forbid it, not only its sessions' read-only default, which a client can lift.
        conn.execute("set session characteristics as transaction read write")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(statement)


def test_the_api_role_sessions_are_read_only_with_a_statement_timeout(api_warehouse: Warehouse) -> None:
    with psycopg.connect(api_warehouse.api_url) as conn:
        assert conn.execute("show default_transaction_read_only").fetchone() == ("on",)
        assert conn.execute("show statement_timeout").fetchone() == ("5s",)
        assert conn.execute(
            "select rolsuper, rolcreaterole, rolcreatedb from pg_roles where rolname = current_user"
        ).fetchone() == (False, False, False)


def test_the_api_role_reads_every_api_table_after_a_dbt_rebuild(
    built_marts: BuiltMarts, tmp_path: Path
) -> None:
    with copy_of(built_marts.url) as url:
        api_url = with_api_role(url)
        # Tables made after the role was set up: one a later migration adds, and dbt rebuilding every mart.
        with psycopg.connect(url) as conn:
            conn.execute("create table products.added_later (id int)")
        run_dbt(["run", "--select", "marts", "--full-refresh"], database_url=url, target_dir=tmp_path)
        with psycopg.connect(api_url) as conn:
            conn.execute("select * from products.added_later").fetchall()
            for table in metadata.sorted_tables:
                name = sql.Identifier(str(table.schema), table.name)
                conn.execute(sql.SQL("select * from {} limit 1").format(name)).fetchall()


def test_concurrent_set_ups_on_one_server_all_succeed() -> None:
    # A role of its own, new: the race is on creating it as much as on updating it.
    role = f"stockyard_api_test_{uuid.uuid4().hex[:8]}"
    try:
        with shared.throwaway_database() as first, shared.throwaway_database() as second:
            with ThreadPoolExecutor(max_workers=8) as pool:
                set_ups = [
                    pool.submit(ensure_api_role, url, role=role, password="", statement_timeout_ms=1000)
                    for url in [first, second] * 4
                ]
                for set_up in set_ups:
                    set_up.result()
            for url in (first, second):
                with psycopg.connect(api_role_url(url, role, "")) as conn:
                    usage = conn.execute(
                        "select has_schema_privilege(name, 'usage') from unnest(%s::text[]) as name",
                        (list(API_SCHEMAS),),
                    ).fetchall()
                    assert usage == [(True,)] * len(API_SCHEMAS)
                    assert conn.execute("show statement_timeout").fetchone() == ("1s",)
    finally:
        # Its grants went with the databases.
        with psycopg.connect(shared.test_servers()[0], autocommit=True) as conn:
            conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))
