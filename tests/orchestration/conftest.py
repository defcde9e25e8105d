"""The assets materialized for real on one small sample market, built through dbt, Dagster and MLflow on
PostgreSQL, shared by the ML and product tests: the models are trained once.

The market is built as in tests/ml (sample provider -> warehouse.ingest -> `dbt build`), smaller: 12 symbols
over 15 months, with the walk-forward and the models sized down to match.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from mlflow import MlflowClient

from ml.config import MLSettings
from orchestration.ml.assets import build_ml_assets
from orchestration.resources import ApiCacheResource, MLflowResource, WarehouseResource
from stockyard import warehouse
from stockyard.endpoints import sibling_database_url
from stockyard.marketdata.sample import SampleProvider
from tests.conftest import throwaway_database
from tests.ml.conftest import dbt_build

MARKET_START, MARKET_END = date(2019, 1, 2), date(2020, 3, 31)
N_SYMBOLS = 12
FEATURES = dg.AssetKey("fct_stock_features")
FAMILIES = ("xgboost", "lstm", "prophet")
# About 310 trading days: two folds of 40 test days after at least 100 training dates.
SMALL = MLSettings(
    folds=2,
    test_days=40,
    validation_days=20,
    min_train_days=100,
    xgboost_rounds=40,
    lstm_epochs=2,
    lstm_samples_per_epoch=2000,
    prophet_history_days=200,
    prophet_min_history_days=60,
    threads=1,
)


def ml_assets(settings: MLSettings = SMALL) -> list[dg.AssetsDefinition]:
    return build_ml_assets(
        settings,
        features=FEATURES,
        forward_returns=dg.AssetKey("fct_forward_returns"),
        prices=dg.AssetKey("fct_daily_prices"),
    )


def key_of(*, family: str) -> dg.AssetKey:
    return dg.AssetKey(f"{family}_model")


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


def client_of(resources: dict[str, object]) -> MlflowClient:
    tracking = resources["mlflow_tracking"]
    assert isinstance(tracking, MLflowResource)
    return MlflowClient(tracking_uri=tracking.tracking_uri, registry_uri=tracking.tracking_uri)


def aliases(resources: dict[str, object], model_name: str) -> dict[str, str]:
    model = client_of(resources).get_registered_model(model_name)
    return {alias: str(version) for alias, version in model.aliases.items()}


def metadata_of(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict[str, object]:
    """The metadata of `key`'s materialization (of its last partition, for a partition range: each partition
    of a range run carries the same)."""
    events = [event for event in result.get_asset_materialization_events() if event.asset_key == key]
    assert events, f"{key.to_user_string()} was not materialized"
    materialization = events[-1].step_materialization_data.materialization
    return {name: value.value for name, value in materialization.metadata.items()}


def checks_of(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}
