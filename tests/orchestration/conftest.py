"""The assets materialized for real on one small sample market, built through dbt, Dagster and MLflow on
PostgreSQL, shared by the ML and product tests: the models are trained once.

The market is built as in tests/ml (sample provider -> warehouse.ingest -> `dbt build`), smaller: 12 symbols
over 15 months, with the walk-forward and the models sized down to match.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from orchestration.resources import ApiCacheResource, MLflowResource, WarehouseResource
from stockyard import warehouse
from stockyard.endpoints import sibling_database_url
from stockyard.marketdata.sample import SampleProvider
from tests.ml.support import dbt_build
from tests.orchestration.support import (
    MARKET_END,
    MARKET_START,
    N_SYMBOLS,
    ml_assets,
)
from tests.support import throwaway_database


@pytest.fixture(scope="package")
def market_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    provider = SampleProvider(n_symbols=N_SYMBOLS, signal_strength=0.05, start=MARKET_START, end=MARKET_END)
    symbols = provider.symbols()
    with throwaway_database() as url:
        with psycopg.connect(url) as conn:
            warehouse.load_stocks(conn, provider.metadata(symbols), provider="sample", synthetic=True)
            warehouse.ingest(conn, provider, symbols, start=MARKET_START, end=MARKET_END, partition_key="ml")
        dbt_build(url, tmp_path_factory.mktemp("dbt"))
        yield url


@pytest.fixture(scope="package")
def resources(
    market_database: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, object]:
    return {
        "warehouse_db": WarehouseResource(database_url=market_database),
        "mlflow_tracking": MLflowResource(
            tracking_uri=sibling_database_url(market_database, "_mlflow"),
            artifact_root=str(tmp_path_factory.mktemp("mlflow-artifacts")),
        ),
        "api_cache": ApiCacheResource(redis_url=redis_url, prefix=f"{Path(market_database).name}:api"),
        "io_manager": dg.FilesystemIOManager(base_dir=str(tmp_path_factory.mktemp("storage"))),
    }


@pytest.fixture(scope="package")
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


@pytest.fixture(scope="package")
def trained(resources: dict[str, object], instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """Every ML asset materialized once, on an empty registry: each first version becomes champion."""
    result = dg.materialize(ml_assets(), resources=resources, instance=instance)
    assert result.success
    return result
