"""The Alembic migrations build exactly stockyard.db.catalogue, keep the rows they upgrade, and are safe to
run again and at once; `stockyard db upgrade` runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from stockyard.db import migrate
from stockyard.db.catalogue import APP_SCHEMA, OPS_SCHEMA, metadata
from tests.support import throwaway_database

PRE_ALEMBIC_SCHEMA = Path(__file__).parents[1] / "fixtures" / "pre_alembic_schema.sql"
FIRST = "0001"
# The last revision before the app schema (revision 0004) came.
BEFORE_APP = "0002"


@pytest.fixture
def bare_database_url() -> Iterator[str]:
    with throwaway_database(migrated=False) as url:
        yield url


def differences(database_url: str) -> list[object]:
    """What autogenerate would change to make the database the catalogue (types, defaults, comments too)."""
    engine = create_engine(migrate.sqlalchemy_url(database_url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "include_schemas": True,
                    "include_name": migrate.include_name,
                    "compare_type": True,
                    "compare_server_default": True,
                    "version_table_schema": migrate.VERSION_SCHEMA,
                },
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def revision_of(database_url: str) -> str | None:
    engine = create_engine(migrate.sqlalchemy_url(database_url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return migrate.current_revision(connection)
    finally:
        engine.dispose()


def insert_a_row_in_every_table(conn: psycopg.Connection) -> None:
    conn.execute(
        "insert into raw.daily_prices (symbol, date, open, high, low, close, volume, provider)"
        " values ('AAA', '2024-06-28', 10, 11, 9, 10.5, 1000, 'sample')"
    )
    conn.execute(
        "insert into raw.corporate_actions (symbol, ex_date, split_ratio, provider)"
        " values ('AAA', '2024-06-28', 2.0, 'sample')"
    )
    conn.execute(
        "insert into raw.stocks (symbol, name, sector, provider, is_synthetic)"
        " values ('AAA', 'Aaa Inc.', 'Energy', 'sample', true)"
    )
    conn.execute(
        "insert into raw.quarantined_rows (dataset, partition_key, provider, rule, detail, record)"
        " values ('daily_prices', '2024-06-28', 'sample', 'high_low', 'high < low', '{\"high\": 1}')"
    )
    conn.execute(
        "insert into products.model_versions (model_name, family, version, alias, run_id, run_url,"
        " evaluation_start, evaluation_end, metrics, promotion_reason, dataset_fingerprint, data_source)"
        " values ('m', 'xgboost', '1', 'champion', 'r', 'u', '2024-01-02', '2024-06-28', '{\"ic\": 0.1}',"
        " 'first', 'fp', 'synthetic')"
    )
    conn.execute(
        "insert into products.recommendations (date, symbol, score, rank, percentile, expected_excess_return,"
        " confidence, action, top_contributions, model_name, model_version, data_date, data_source)"
        " values ('2024-06-28', 'AAA', 0.1, 1, 1.0, 0.01, 0.6, 'buy', '[]', 'm', '1', '2024-06-28',"
        " 'synthetic')"
    )
    conn.execute(
        "insert into products.forecasts (data_date, symbol, target_date, step, predicted_close, lower_close,"
        " upper_close, interval_width, model_name, model_version, data_source)"
        " values ('2024-06-28', 'AAA', '2024-07-01', 1, 10, 9, 11, 0.8, 'p', '1', 'synthetic')"
    )
    conn.execute(
        "insert into products.backtests (backtest_id, model_name, model_version, run_id, start_date,"
        " end_date, top_k, rebalance_days, cost_bps, annual_return, annual_volatility, sharpe, sortino,"
        " max_drawdown, calmar, turnover, hit_rate, benchmark_annual_return, excess_annual_return, data_date,"
        " data_source)"
        " values (7, 'm', '1', 'r', '2024-01-02', '2024-06-28', 10, 5, 10, 0.1, 0.2, 0.5, 0.7, -0.1, 1, 0.3,"
        " 0.5, 0.05, 0.05, '2024-06-28', 'synthetic')"
    )
    conn.execute("insert into products.backtest_equity values (7, '2024-01-02', 1.0, 1.0)")
    conn.execute("insert into products.backtest_positions values (7, '2024-01-02', 'AAA', 0.1)")
    conn.execute(
        "insert into products.signal_health (date, model_name, model_version, horizon_days, realized_rank_ic,"
        " symbols, data_source) values ('2024-06-21', 'm', '1', 5, 0.05, 100, 'synthetic')"
    )


def every_row(conn: psycopg.Connection) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every catalogue table revision 1 made, but the columns a later revision added."""
    tables: dict[str, list[tuple[object, ...]]] = {}
    for table in metadata.sorted_tables:
        if table.schema in (APP_SCHEMA, OPS_SCHEMA):  # later revisions' schemas
            continue
        columns = ", ".join(column.name for column in table.columns if column.name != "sector_as_given")
        rows = conn.execute(f"select {columns} from {table.schema}.{table.name} order by 1").fetchall()
        tables[f"{table.schema}.{table.name}"] = rows
    return tables


def test_the_migrations_build_exactly_the_catalogue(bare_database_url: str) -> None:
    migration = migrate.upgrade(bare_database_url)

    assert migration == migrate.Migration(before=None, after=migrate.head_revision())
    assert differences(bare_database_url) == []


def test_the_comparison_sees_what_revision_1_lacks(bare_database_url: str) -> None:
    migrate.upgrade(bare_database_url, FIRST)

    found = differences(bare_database_url)
    added_tables = {item[1].fullname for item in found if item[0] == "add_table"}  # type: ignore[index]
    later_schemas = (APP_SCHEMA, OPS_SCHEMA)
    assert added_tables == {t.fullname for t in metadata.sorted_tables if t.schema in later_schemas}
    (difference,) = [item for item in found if item[0] not in ("add_table", "add_index")]  # type: ignore[index]
    assert difference[0] == "add_column"  # type: ignore[index]
    assert difference[1:3] == ("raw", "stocks")  # type: ignore[index]
    assert difference[3].name == "sector_as_given"  # type: ignore[index]


def test_an_upgrade_from_revision_1_keeps_every_row(bare_database_url: str) -> None:
    migrate.upgrade(bare_database_url, FIRST)
    with psycopg.connect(bare_database_url) as conn:
        insert_a_row_in_every_table(conn)
        rows = every_row(conn)
    assert all(rows.values())

    assert migrate.upgrade(bare_database_url) == migrate.Migration(
        before=FIRST, after=migrate.head_revision()
    )

    with psycopg.connect(bare_database_url) as conn:
        assert every_row(conn) == rows
        assert conn.execute("select sector_as_given from raw.stocks").fetchall() == [(None,)]


def test_a_warehouse_the_plain_ddl_created_is_taken_over_with_its_rows(bare_database_url: str) -> None:
    with psycopg.connect(bare_database_url) as conn:
        conn.execute(PRE_ALEMBIC_SCHEMA.read_text())
        insert_a_row_in_every_table(conn)
        rows = every_row(conn)

    migrate.upgrade(bare_database_url)

    with psycopg.connect(bare_database_url) as conn:
        assert every_row(conn) == rows
    assert differences(bare_database_url) == []


def test_revision_2_downgrades_to_revision_1_and_back(bare_database_url: str) -> None:
    migrate.upgrade(bare_database_url)
    with psycopg.connect(bare_database_url) as conn:
        insert_a_row_in_every_table(conn)

    assert migrate.downgrade(bare_database_url, FIRST).after == FIRST

    with psycopg.connect(bare_database_url) as conn:
        columns = conn.execute(
            "select column_name from information_schema.columns"
            " where table_schema = 'raw' and table_name = 'stocks'"
        ).fetchall()
        assert ("sector_as_given",) not in columns
        assert conn.execute("select symbol, sector from raw.stocks").fetchall() == [("AAA", "Energy")]
    migrate.upgrade(bare_database_url)
    assert differences(bare_database_url) == []


def stockyard_db_upgrade(database_url: str, redis_url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "db", "upgrade"],
        env={
            **os.environ,
            "STOCKYARD_SERVICES_DATABASE_URL": database_url,
            "STOCKYARD_SERVICES_REDIS_URL": redis_url,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_stockyard_db_upgrade_is_safe_at_once_and_again(bare_database_url: str, redis_url: str) -> None:
    processes = [stockyard_db_upgrade(bare_database_url, redis_url) for _ in range(3)]
    results = [(*process.communicate(timeout=120), process.returncode) for process in processes]

    assert [returncode for _, _, returncode in results] == [0, 0, 0], results
    head = migrate.head_revision()
    outputs = sorted(stdout.strip() for stdout, _, _ in results)
    assert outputs == [
        f"warehouse tables at revision {head} (up to date)",
        f"warehouse tables at revision {head} (up to date)",
        f"warehouse tables at revision {head} (upgraded from no tables)",
    ]
    again = stockyard_db_upgrade(bare_database_url, redis_url)
    stdout, stderr = again.communicate(timeout=120)
    assert again.returncode == 0, stderr
    assert stdout.strip() == f"warehouse tables at revision {head} (up to date)"
    assert revision_of(bare_database_url) == head
    assert differences(bare_database_url) == []


def test_the_app_schema_downgrades_to_revision_2_and_back(bare_database_url: str) -> None:
    migrate.upgrade(bare_database_url)
    with psycopg.connect(bare_database_url) as conn:
        insert_a_row_in_every_table(conn)
        rows = every_row(conn)

    assert migrate.downgrade(bare_database_url, BEFORE_APP).after == BEFORE_APP

    with psycopg.connect(bare_database_url) as conn:
        assert conn.execute("select to_regnamespace('app')").fetchone() == (None,)
        assert every_row(conn) == rows
    migrate.upgrade(bare_database_url)
    assert differences(bare_database_url) == []
