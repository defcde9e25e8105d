"""Fixtures of the product tests: a small in-memory market, one XGBoost model trained on it through the real
training flow (walk-forward, registry, champion alias) into a throwaway MLflow store, and a products schema
in a throwaway database."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from ml.config import TrackingConfig, WalkForwardConfig, XGBoostConfig
from ml.datasets import Dataset
from ml.recommendations import Champion, load_champion
from ml.tracking import configure_tracking
from ml.training import TrainingResult, train_xgboost
from stockyard.endpoints import sibling_database_url
from tests.ml.support import synthetic_dataset
from tests.support import throwaway_database

XGBOOST = XGBoostConfig(n_estimators=40, early_stopping_rounds=10, n_jobs=1)
WALK_FORWARD = WalkForwardConfig(n_folds=2, test_days=60, validation_days=30, min_train_days=120)
PRODUCT_TABLES = (
    "recommendations",
    "forecasts",
    "backtest_positions",
    "backtest_equity",
    "backtests",
    "signal_health",
    "model_versions",
)


@pytest.fixture(scope="session")
def market() -> Dataset:
    """30 symbols over 320 business days; feature_0 predicts the target."""
    return synthetic_dataset().dataset


@pytest.fixture(scope="session")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingConfig]:
    """A throwaway MLflow store on PostgreSQL: the database `<name>_mlflow` beside a throwaway warehouse."""
    with throwaway_database() as url:
        yield TrackingConfig.for_database(
            sibling_database_url(url, "_mlflow"), artifact_root=tmp_path_factory.mktemp("mlflow-artifacts")
        )


@pytest.fixture(scope="session")
def trained(market: Dataset, tracking: TrackingConfig) -> TrainingResult:
    return train_xgboost(market, XGBOOST, tracking=tracking, walk_forward_config=WALK_FORWARD)


@pytest.fixture(scope="session")
def champion(trained: TrainingResult, tracking: TrackingConfig) -> Champion:
    return load_champion(configure_tracking(tracking))


@pytest.fixture(scope="session")
def ensemble_champion(market: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Champion]:
    """The champion of a store of its own, trained with two seeds: their ensemble."""
    with throwaway_database() as url:
        tracking = TrackingConfig.for_database(
            sibling_database_url(url, "_mlflow"), artifact_root=tmp_path_factory.mktemp("mlflow-ensemble")
        )
        train_xgboost(market, XGBOOST, tracking=tracking, walk_forward_config=WALK_FORWARD, seeds=(7, 11))
        yield load_champion(configure_tracking(tracking))


@pytest.fixture(scope="session")
def products_database() -> Iterator[str]:
    with throwaway_database() as url:
        with psycopg.connect(url) as conn:
            conn.execute("create schema marts")
            conn.execute(
                "create table marts.fct_daily_prices (symbol text, date date, adj_close double precision)"
            )
        yield url


@pytest.fixture
def conn(products_database: str) -> Iterator[psycopg.Connection]:
    """A connection to the products schema with every products table empty."""
    with psycopg.connect(products_database) as connection:
        tables = ", ".join(f"products.{table}" for table in PRODUCT_TABLES)
        connection.execute(f"truncate {tables}, marts.fct_daily_prices")
        connection.commit()
        yield connection
