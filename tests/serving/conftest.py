"""The warehouses for the API tests, built once per session, and the app on them.

The marts come from the real path (sample provider -> warehouse.ingest -> `dbt build`), sized small: 30
symbols over 2023, into a template database nobody connects to (`built_marts`), which the warehouses copy
(`create database ... template`, fast). `api_warehouse` adds the products tables with constructed rows, as
the product assets would write them: a recommendations date of 500 symbols (the 30 with prices and 470 more
added to dim_stocks without prices) and the date before it, the models' versions and aliases, forecasts and
a backtest with its holdings. `marts_only_warehouse` has no products, as before any model was promoted.
The apps connect as the API's read-only role, set up on each copy as `stockyard serve` sets it up.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import event

from serving.app import create_app
from stockyard import warehouse
from stockyard.marketdata.sample import SampleProvider
from stockyard.marketdata.schema import GICS_SECTORS
from tests.dbt.support import run_dbt
from tests.serving.support import (
    FORECASTER,
    MARKET_END,
    MARKET_START,
    MARKET_SYMBOLS,
    MODEL,
    RECOMMENDED_SYMBOLS,
    SESSION_CACHE_PREFIX,
    BuiltMarts,
    MartsOnlyWarehouse,
    StatementCounter,
    Warehouse,
    api_settings,
    copy_of,
    with_api_role,
)
from tests.support import throwaway_database


def _add_products(
    conn: psycopg.Connection, symbols: list[str], latest: date, previous: date
) -> tuple[list[str], int]:
    extra = [f"Q{number:03d}" for number in range(RECOMMENDED_SYMBOLS - len(symbols))]
    conn.cursor().executemany(
        "insert into marts.dim_stocks (symbol, company_name, sector, industry, market_cap, currency,"
        " exchange, provider, is_synthetic, trading_days_count)"
        " values (%s, %s, %s, 'Test', %s, 'USD', 'XNYS', 'sample', true, 0)",
        [
            (symbol, f"Quill {symbol} Holdings", GICS_SECTORS[number % len(GICS_SECTORS)], 1e9 + number * 1e7)
            for number, symbol in enumerate(extra)
        ],
    )
    universe = symbols + extra
    rows = []
    for day, version in ((previous, "2"), (latest, "3")):
        for rank, symbol in enumerate(
            sorted(universe, key=lambda s: (zlib.crc32(f"{s}{day}".encode()), s)), start=1
        ):
            percentile = 1 - (rank - 1) / len(universe)
            action = "buy" if percentile > 0.9 else "sell" if percentile <= 0.1 else "hold"
            contributions = [
                {"feature": "return_21d_rank", "value": 0.8, "contribution": 0.002 * percentile},
                {"feature": "rsi_14_rank", "value": 0.4, "contribution": -0.001},
            ]
            rows.append(
                (
                    day,
                    symbol,
                    percentile * 0.02,
                    rank,
                    percentile,
                    percentile * 0.01 - 0.005,
                    0.6,
                    action,
                    json.dumps(contributions),
                    MODEL,
                    version,
                    day,
                )
            )
    conn.cursor().executemany(
        "insert into products.recommendations (date, symbol, score, rank, percentile, expected_excess_return,"
        " confidence, action, top_contributions, model_name, model_version, data_date, data_source)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'synthetic')",
        rows,
    )
    versions = [
        (MODEL, "xgboost", "2", None, {"rank_ic": 0.02}),
        (MODEL, "xgboost", "3", "champion", {"rank_ic": 0.031, "hit_rate": 0.52}),
        (MODEL, "xgboost", "4", "challenger", {"rank_ic": 0.029, "hit_rate": None}),
        (FORECASTER, "prophet", "1", "champion", {"mape": 0.04}),
    ]
    conn.cursor().executemany(
        "insert into products.model_versions (model_name, family, version, alias, run_id, run_url,"
        " evaluation_start, evaluation_end, metrics, promotion_reason, dataset_fingerprint, data_source)"
        " values (%s, %s, %s, %s, 'run-' || %s, 'http://mlflow.test/runs/' || %s, '2023-06-01', '2023-11-30',"
        " %s, 'beats the champion', 'fp', 'synthetic')",
        [
            (name, family, version, alias, version, version, json.dumps(metrics))
            for name, family, version, alias, metrics in versions
        ],
    )
    forecast_rows = [
        (latest, symbol, latest + timedelta(days=step), step, 100 + step, 95 + step, 105 + step)
        for symbol in symbols
        for step in range(1, 22)
    ]
    conn.cursor().executemany(
        "insert into products.forecasts (data_date, symbol, target_date, step, predicted_close, lower_close,"
        " upper_close, interval_width, model_name, model_version, data_source)"
        " values (%s, %s, %s, %s, %s, %s, %s, 0.8, 'stockyard-prophet', '1', 'synthetic')",
        forecast_rows,
    )
    (backtest_id,) = conn.execute(
        "insert into products.backtests (model_name, model_version, run_id, start_date, end_date, top_k,"
        " rebalance_days, cost_bps, annual_return, annual_volatility, sharpe, sortino, max_drawdown, calmar,"
        " turnover, hit_rate, benchmark_annual_return, excess_annual_return, data_date, data_source)"
        " values (%s, '3', 'run-3', '2023-01-03', %s, 10, 5, 10, 0.12, 0.18, 0.67, 0.9, -0.15, 0.8, 0.3,"
        " 0.53, 0.08, 0.04, %s, 'synthetic') returning backtest_id",
        (MODEL, latest, latest),
    ).fetchone()  # type: ignore[misc]
    rebalances = [MARKET_START + timedelta(days=7 * week) for week in range(0, 50, 10)]
    conn.cursor().executemany(
        "insert into products.backtest_positions (backtest_id, rebalance_date, symbol, weight)"
        " values (%s, %s, %s, 0.1)",
        [(backtest_id, day, symbol) for day in rebalances for symbol in symbols[:10]],
    )
    conn.execute("analyze")
    return extra, backtest_id


@pytest.fixture(scope="session")
def built_marts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltMarts]:
    provider = SampleProvider(seed=11, n_symbols=MARKET_SYMBOLS, start=MARKET_START, end=MARKET_END)
    symbols = provider.symbols()
    with throwaway_database() as url:
        with psycopg.connect(url) as conn:
            warehouse.load_stocks(conn, provider.metadata(symbols), provider="sample", synthetic=True)
            warehouse.ingest(conn, provider, symbols, start=MARKET_START, end=MARKET_END, partition_key="api")
        target: Path = tmp_path_factory.mktemp("dbt-api")
        run_dbt(["build", "--exclude-resource-type", "unit_test"], database_url=url, target_dir=target)
        with psycopg.connect(url) as conn:
            dates = [
                row[0]
                for row in conn.execute(
                    "select distinct date from marts.fct_daily_prices order by date desc limit 2"
                )
            ]
        yield BuiltMarts(url=url, symbols=sorted(symbols), dates=dates)


@pytest.fixture(scope="session")
def api_warehouse(built_marts: BuiltMarts) -> Iterator[Warehouse]:
    with copy_of(built_marts.url) as url:
        api_url = with_api_role(url)
        latest, previous = built_marts.dates
        with psycopg.connect(url) as conn:
            extra, backtest_id = _add_products(conn, built_marts.symbols, latest=latest, previous=previous)
        yield Warehouse(
            url=url,
            api_url=api_url,
            symbols=built_marts.symbols,
            extra_symbols=extra,
            latest_date=latest,
            previous_date=previous,
            backtest_id=backtest_id,
        )


@pytest.fixture(scope="session")
def marts_only_warehouse(built_marts: BuiltMarts) -> Iterator[MartsOnlyWarehouse]:
    """The marts dbt built, and no products: as after ingestion and dbt, before any model was promoted."""
    with copy_of(built_marts.url) as url:
        yield MartsOnlyWarehouse(
            url=url, api_url=with_api_role(url), symbols=built_marts.symbols, latest_date=built_marts.dates[0]
        )


@pytest.fixture(scope="session", autouse=True)
def _delete_test_cache_keys(redis_url: str) -> Iterator[None]:
    yield
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{SESSION_CACHE_PREFIX}:*", count=1000))
    if keys:
        client.unlink(*keys)
    client.close()


@pytest.fixture(scope="session")
def client(api_warehouse: Warehouse, redis_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings(api_warehouse.api_url, redis_url))) as test_client:
        yield test_client


@pytest.fixture
def count_statements(client: TestClient) -> Iterator[StatementCounter]:
    """Records every SQL statement the app's pool runs while the test runs."""
    engine = client.app.state.services.engine.sync_engine  # type: ignore[attr-defined]
    counter = StatementCounter()
    event.listen(engine, "before_cursor_execute", counter)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", counter)


@pytest.fixture(scope="session")
def accounts_client(api_warehouse: Warehouse, redis_url: str) -> Iterator[TestClient]:
    """An app for the account tests: many sign-ins per minute from the one test client are expected."""
    settings = api_settings(api_warehouse.api_url, redis_url, rate_limit_login="1000/minute")
    with TestClient(create_app(settings)) as test_client:
        yield test_client
