"""Small ML settings and readers of a Dagster run's results, shared by the orchestration tests."""

from __future__ import annotations

from datetime import date

import dagster as dg
from mlflow import MlflowClient

from ml.config import MLSettings
from orchestration.ml.assets import build_ml_assets
from orchestration.resources import MLflowResource

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
    # One seed: the seeds' own test trains two.
    seeds=(7,),
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
