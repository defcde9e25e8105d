"""Training runs on markets built through the real pipeline, logged to a throwaway MLflow store.

Honesty: with the sample market's signal off (a pure random walk) nothing can be predicted, so the
walk-forward mean rank IC of XGBoost and of the LSTM must be within two (Newey-West) standard errors of
zero; with the signal on, XGBoost must find it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import mlflow
import numpy as np
import pandas as pd
import psycopg
import pytest
from mlflow import MlflowClient
from mlflow.entities import Run

from ml.config import LSTMConfig, ProphetConfig, TrackingConfig, WalkForwardConfig, XGBoostConfig
from ml.datasets import Dataset, DateWindow
from ml.metrics import CROSS_SECTIONAL_METRICS, FORECAST_METRICS, cross_sectional_metrics
from ml.models.ensemble import SeedEnsemble, load_ensemble
from ml.models.lstm_model import LSTMModel
from ml.models.prophet_model import ProphetModel
from ml.models.xgboost_model import XGBoostModel
from ml.promotion import PromotionRule
from ml.tracking import MODEL_TRAINING_PAGE, PARENT_RUN_TAG, load_out_of_sample_predictions
from ml.training import (
    TrainingResult,
    train_lstm,
    train_prophet,
    train_xgboost,
    walk_forward,
)
from stockyard.calendar import trading_days
from tests.ml.support import WALK_FORWARD, read_dataset

XGBOOST = XGBoostConfig(n_estimators=100, n_jobs=1)
LSTM = LSTMConfig(
    sequence_length=10,
    hidden_size=16,
    epochs=4,
    samples_per_epoch=None,
    batch_size=512,
    patience=2,
    n_threads=1,
)
PROPHET = ProphetConfig(history_days=500, n_jobs=2, symbols_per_task=2)
PROPHET_WALK_FORWARD = WalkForwardConfig(n_folds=2, test_days=60, validation_days=21, min_train_days=200)
PROPHET_SYMBOLS = 4


@dataclass(frozen=True)
class Snapshot:
    """A training result and the registry's aliases right after it."""

    result: TrainingResult
    aliases: dict[str, str]


def aliases(tracking: TrackingConfig, model_name: str) -> dict[str, str]:
    model = MlflowClient(tracking.tracking_uri, tracking.tracking_uri).get_registered_model(model_name)
    return {alias: str(version) for alias, version in model.aliases.items()}


def snapshot(tracking: TrackingConfig, result: TrainingResult) -> Snapshot:
    return Snapshot(result, aliases(tracking, result.model_name))


@pytest.fixture(scope="session")
def xgboost_first(signal_dataset: Dataset, tracking: TrackingConfig) -> Snapshot:
    result = train_xgboost(
        signal_dataset,
        XGBOOST,
        tracking=tracking,
        walk_forward_config=WALK_FORWARD,
        dagster_run_id="dagster-run-1",
    )
    return snapshot(tracking, result)


@pytest.fixture(scope="session")
def xgboost_not_better(
    xgboost_first: Snapshot, signal_dataset: Dataset, tracking: TrackingConfig
) -> Snapshot:
    """A second version on the same window and data that cannot clear a margin of 1."""
    result = train_xgboost(
        signal_dataset,
        XGBOOST,
        tracking=tracking,
        walk_forward_config=WALK_FORWARD,
        rule=PromotionRule(min_improvement=1.0),
    )
    return snapshot(tracking, result)


@pytest.fixture(scope="session")
def xgboost_new_window(
    xgboost_not_better: Snapshot, signal_database: str, tracking: TrackingConfig
) -> Snapshot:
    """A version evaluated on a shorter window, so the champion's config is evaluated again on it; the rule
    takes any value."""
    dataset = read_dataset(signal_database, DateWindow(date(2019, 1, 2), date(2021, 11, 30)))
    result = train_xgboost(
        dataset,
        XGBOOST,
        tracking=tracking,
        walk_forward_config=WALK_FORWARD,
        rule=PromotionRule(min_improvement=-1.0),
    )
    return snapshot(tracking, result)


@pytest.fixture(scope="session")
def xgboost_two_seeds(
    xgboost_new_window: Snapshot, signal_dataset: Dataset, tracking: TrackingConfig
) -> Snapshot:
    """A version made of two seeds, after the versions the promotion tests look at."""
    result = train_xgboost(
        signal_dataset, XGBOOST, tracking=tracking, walk_forward_config=WALK_FORWARD, seeds=(7, 11)
    )
    return snapshot(tracking, result)


@pytest.fixture(scope="session")
def lstm_run(random_walk_dataset: Dataset, tracking: TrackingConfig) -> Snapshot:
    result = train_lstm(
        random_walk_dataset, LSTM, tracking=tracking, walk_forward_config=WALK_FORWARD, seeds=(7, 11)
    )
    return snapshot(tracking, result)


def seed_runs(tracking: TrackingConfig, result: TrainingResult) -> dict[int, Run]:
    """The seeds' runs nested under the family's run of `result`, by seed."""
    client = MlflowClient(tracking.tracking_uri, tracking.tracking_uri)
    runs = client.search_runs(
        [result.experiment_id], filter_string=f"tags.`{PARENT_RUN_TAG}` = '{result.run_id}'"
    )
    return {int(run.data.tags["seed"]): run for run in runs}


def seed_model_uri(run: Run) -> str:
    (model,) = run.outputs.model_outputs
    return f"models:/{model.model_id}"


def per_date_rank_mean(rows: pd.DataFrame, *scores: pd.Series) -> pd.Series:
    """The mean of each score's percentile rank within its date, computed here on its own."""
    ranks = [score.groupby(rows["date"].to_numpy()).rank(pct=True) for score in scores]
    return pd.concat(ranks, axis=1).mean(axis=1)


@pytest.fixture(scope="session")
def prophet_dataset(signal_dataset: Dataset) -> Dataset:
    symbols = sorted(signal_dataset.frame["symbol"].unique())[:PROPHET_SYMBOLS]
    frame = signal_dataset.frame.loc[signal_dataset.frame["symbol"].isin(symbols)].reset_index(drop=True)
    return Dataset(
        frame=frame,
        features=signal_dataset.features,
        config=signal_dataset.config,
        window=signal_dataset.window,
        fingerprint=signal_dataset.fingerprint,
    )


@pytest.fixture(scope="session")
def prophet_run(prophet_dataset: Dataset, tracking: TrackingConfig) -> Snapshot:
    result = train_prophet(
        prophet_dataset, PROPHET, tracking=tracking, walk_forward_config=PROPHET_WALK_FORWARD
    )
    return snapshot(tracking, result)


def within_two_standard_errors(metrics: dict[str, float]) -> bool:
    # rank_ic_tstat is the mean rank IC over its Newey-West standard error.
    return abs(metrics["rank_ic_tstat"]) <= 2.0


def test_xgboost_finds_nothing_in_a_random_walk(random_walk_dataset: Dataset) -> None:
    metrics = walk_forward(random_walk_dataset, XGBOOST, WALK_FORWARD).metrics
    assert within_two_standard_errors(metrics), metrics


def test_lstm_finds_nothing_in_a_random_walk(lstm_run: Snapshot) -> None:
    assert within_two_standard_errors(lstm_run.result.metrics), lstm_run.result.metrics


def test_xgboost_recovers_the_signal(xgboost_first: Snapshot) -> None:
    metrics = xgboost_first.result.metrics
    assert metrics["rank_ic"] > 0.03 and metrics["rank_ic_tstat"] > 3.0, metrics
    assert metrics["long_short_return"] > 0


def test_run_is_tracked_in_its_own_postgres_database(
    xgboost_first: Snapshot, tracking: TrackingConfig
) -> None:
    result = xgboost_first.result
    client = MlflowClient(tracking.tracking_uri, tracking.tracking_uri)
    run = client.get_run(result.run_id)
    tags = run.data.tags
    assert tags["dagster_run_id"] == "dagster-run-1"
    assert tags["dataset_fingerprint"] == result.dataset_fingerprint
    assert tags["data_window"] == "2019-01-02..2021-12-31"
    assert tags["evaluation_window"] == str(result.evaluation_window)
    assert len(tags["git_commit"]) == 40 or tags["git_commit"] == "unknown"
    assert client.get_experiment(run.info.experiment_id).name == "stockyard-xgboost"
    # The same metric names overall and per fold.
    assert set(CROSS_SECTIONAL_METRICS) <= set(run.data.metrics)
    assert {f"fold_{fold}/{name}" for fold in range(4) for name in CROSS_SECTIONAL_METRICS} <= set(
        run.data.metrics
    )
    assert run.data.params["model.objective"] == "regression"
    artifacts = {item.path for item in client.list_artifacts(result.run_id)}
    assert {
        "config.json",
        "feature_importance.csv",
        "feature_importance.png",
        "ic_timeseries.png",
        "long_short_equity.png",
        "oos_predictions.parquet",
        "promotion.json",
    } <= artifacts
    # The model is logged from this run, with a signature and an input example.
    assert client.get_model_version(result.model_name, result.model_version).run_id == result.run_id
    info = mlflow.models.get_model_info(result.model_uri)
    assert info.signature is not None and info.saved_input_example_info is not None
    # Artifacts are in the local folder, the runs in PostgreSQL tables MLflow made.
    assert tracking.artifact_root is not None and any(tracking.artifact_root.rglob("ic_timeseries.png"))
    with psycopg.connect(tracking.tracking_uri) as conn:
        tables = {row[0] for row in conn.execute("select table_name from information_schema.tables")}
    assert {"experiments", "runs", "metrics", "registered_models", "model_versions"} <= tables
    assert result.run_url.endswith(
        f"/#/experiments/{run.info.experiment_id}/runs/{result.run_id}?{MODEL_TRAINING_PAGE}"
    )


def test_first_version_is_champion_and_loads_by_alias(
    xgboost_first: Snapshot, signal_dataset: Dataset, tracking: TrackingConfig
) -> None:
    result = xgboost_first.result
    assert result.promotion.promoted and result.promotion.reason == "no champion yet"
    assert xgboost_first.aliases == {"challenger": result.model_version, "champion": result.model_version}

    last_dates = signal_dataset.dates[-3:]
    assert isinstance(result.model, SeedEnsemble) and result.seeds == (7,)
    rows = signal_dataset.rows(last_dates)
    served = mlflow.pyfunc.load_model("models:/stockyard-xgboost@champion").predict(
        rows[["date", "symbol", *signal_dataset.features]]
    )
    expected = result.model.predict(signal_dataset, last_dates)
    np.testing.assert_allclose(np.asarray(served), expected.to_numpy(), rtol=1e-6)
    loaded = load_ensemble(result.model_uri, XGBoostModel).predict(signal_dataset, last_dates)
    pd.testing.assert_series_equal(loaded, expected)
    # One seed: the registered model predicts as the seed's own model, and the family's run has its metrics.
    (seed_run,) = seed_runs(tracking, result).values()
    seed_model = XGBoostModel.load(seed_model_uri(seed_run))
    pd.testing.assert_series_equal(loaded, seed_model.predict(signal_dataset, last_dates))
    # A version registered as one seed's model loads as that seed's ensemble of one.
    one_seed = load_ensemble(seed_model_uri(seed_run), XGBoostModel)
    assert one_seed.seeds == (7,)
    pd.testing.assert_series_equal(one_seed.predict(signal_dataset, last_dates), loaded)
    logged = {name: seed_run.data.metrics[name] for name in result.metrics}
    assert result.metrics == pytest.approx(logged, nan_ok=True)


def test_a_version_that_does_not_beat_the_champion_stays_challenger(
    xgboost_first: Snapshot, xgboost_not_better: Snapshot, tracking: TrackingConfig
) -> None:
    result, decision = xgboost_not_better.result, xgboost_not_better.result.promotion
    assert not decision.promoted and decision.champion_source == "logged"
    assert decision.champion_version == xgboost_first.result.model_version
    assert xgboost_not_better.aliases == {
        "champion": xgboost_first.result.model_version,
        "challenger": result.model_version,
    }
    client = MlflowClient(tracking.tracking_uri, tracking.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.data.tags["promotion.decision"] == "challenger"
    assert "required more than 1.00000" in run.data.tags["promotion.reason"]
    assert run.data.params["promotion.min_improvement"] == "1.0"
    recorded = mlflow.artifacts.load_dict(f"runs:/{result.run_id}/promotion.json")
    assert recorded["alias"] == "challenger" and recorded["champion_value"] == pytest.approx(
        xgboost_first.result.metrics["rank_ic"]
    )
    version = client.get_model_version(result.model_name, result.model_version)
    assert version.tags["promotion.decision"] == "challenger"


def test_a_champion_from_another_window_is_evaluated_again_on_the_new_one(
    xgboost_new_window: Snapshot,
) -> None:
    decision = xgboost_new_window.result.promotion
    assert decision.champion_source == "re-evaluated"
    assert decision.evaluation_window == str(xgboost_new_window.result.evaluation_window)
    assert (
        decision.promoted
        and xgboost_new_window.aliases["champion"] == xgboost_new_window.result.model_version
    )


def test_lstm_round_trip_through_the_registry(lstm_run: Snapshot, random_walk_dataset: Dataset) -> None:
    result = lstm_run.result
    assert set(CROSS_SECTIONAL_METRICS) <= set(result.metrics)
    assert isinstance(result.model, SeedEnsemble)
    recent = random_walk_dataset.frame.loc[
        random_walk_dataset.frame["date"] >= random_walk_dataset.dates[-30]
    ]
    frame = recent[["symbol", "date", *random_walk_dataset.features]]
    served = mlflow.pyfunc.load_model("models:/stockyard-lstm@champion").predict(frame)
    np.testing.assert_allclose(np.asarray(served), result.model.predict_frame(frame), rtol=1e-5)
    loaded = load_ensemble(result.model_uri, LSTMModel)
    np.testing.assert_allclose(loaded.predict_frame(frame), result.model.predict_frame(frame), rtol=1e-6)


def test_prophet_forecasts_every_symbol_with_intervals(
    prophet_run: Snapshot, prophet_dataset: Dataset
) -> None:
    result = prophet_run.result
    assert set(CROSS_SECTIONAL_METRICS) | set(FORECAST_METRICS) <= set(result.metrics)
    assert 0.0 <= result.metrics["interval_coverage"] <= 1.0 and result.metrics["mape"] > 0
    assert isinstance(result.model, ProphetModel)
    served = mlflow.pyfunc.load_model("models:/stockyard-prophet@champion").predict(
        pd.DataFrame({"symbol": sorted(prophet_dataset.frame["symbol"].unique())})
    )
    # The next 21 NYSE sessions after the data, for each symbol.
    sessions = trading_days(date(2022, 1, 1), date(2022, 3, 1))[:21]
    assert len(served) == PROPHET_SYMBOLS * 21
    for _, forecast in served.groupby("symbol"):
        assert list(pd.DatetimeIndex(forecast["date"])) == list(sessions)
    assert (served["yhat_lower"] <= served["yhat"]).all() and (served["yhat"] <= served["yhat_upper"]).all()
    assert (served["yhat_lower"] < served["yhat_upper"]).all() and (served["yhat_lower"] > 0).all()


def test_two_seeds_register_one_version_their_rank_ensemble(
    xgboost_two_seeds: Snapshot, signal_dataset: Dataset, tracking: TrackingConfig
) -> None:
    result = xgboost_two_seeds.result
    client = MlflowClient(tracking.tracking_uri, tracking.tracking_uri)
    versions = client.search_model_versions(f"run_id = '{result.run_id}'")
    assert [version.version for version in versions] == [int(result.model_version)]
    runs = seed_runs(tracking, result)
    assert result.seeds == (7, 11) and set(runs) == {7, 11}

    # The registered model scores each row by the mean of the two seeds' per-date ranks.
    last_dates = signal_dataset.dates[-3:]
    rows = signal_dataset.rows(last_dates)
    seed_scores = [
        XGBoostModel.load(seed_model_uri(runs[seed])).predict(signal_dataset, last_dates) for seed in (7, 11)
    ]
    expected = per_date_rank_mean(rows, *seed_scores)
    loaded = load_ensemble(result.model_uri, XGBoostModel)
    assert loaded.seeds == (7, 11)
    np.testing.assert_allclose(loaded.predict(signal_dataset, last_dates), expected, rtol=1e-12)
    served = mlflow.pyfunc.load_model(result.model_uri).predict(
        rows[["date", "symbol", *signal_dataset.features]]
    )
    np.testing.assert_allclose(np.asarray(served), expected, rtol=1e-12)
    assert isinstance(result.model, SeedEnsemble)
    np.testing.assert_allclose(result.model.predict(signal_dataset, last_dates), expected, rtol=1e-12)

    # Its walk-forward is the seeds' out-of-sample predictions ensembled the same way, date by date.
    first, second = (load_out_of_sample_predictions(runs[seed].info.run_id) for seed in (7, 11))
    assert first[["date", "symbol"]].equals(second[["date", "symbol"]])
    ensembled = first.assign(prediction=per_date_rank_mean(first, first["prediction"], second["prediction"]))
    assert result.metrics == pytest.approx(cross_sectional_metrics(ensembled, signal_dataset.horizon))
    assert result.metrics["rank_ic"] != pytest.approx(runs[7].data.metrics["rank_ic"])
    family_run = client.get_run(result.run_id)
    assert family_run.data.params["training.seeds"] == "7,11" and "model.seed" not in family_run.data.params
    assert result.promotion.champion_version is not None


def test_lstm_seeds_register_their_rank_ensemble(lstm_run: Snapshot, random_walk_dataset: Dataset) -> None:
    assert lstm_run.result.seeds == (7, 11)
    loaded = load_ensemble(lstm_run.result.model_uri, LSTMModel)
    last_dates = random_walk_dataset.dates[-2:]
    rows = random_walk_dataset.rows(last_dates)
    expected = per_date_rank_mean(
        rows, *(member.predict(random_walk_dataset, last_dates) for member in loaded.members.values())
    )
    np.testing.assert_allclose(loaded.predict(random_walk_dataset, last_dates), expected, rtol=1e-12)
