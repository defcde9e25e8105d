"""The ML assets materialized for real on the small sample market of tests/orchestration/conftest.py."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from dagster._core.execution.api import create_execution_plan
from mlflow import MlflowClient

from ml.metrics import CROSS_SECTIONAL_METRICS, FORECAST_METRICS
from ml.tracking import MODEL_TRAINING_PAGE
from orchestration.definitions import build_definitions
from orchestration.executors import one_machine_executor
from orchestration.ml.assets import (
    MODEL_EVALUATION,
    MODEL_PROMOTION,
    TRAINING_DATASET,
    TRAINING_TAG,
    promotion_check_name,
)
from orchestration.partitions import trading_day_partitions
from orchestration.quality.checks import FEATURE_CHECK, build_feature_check
from orchestration.resources import MLflowResource
from tests.orchestration.support import (
    FAMILIES,
    FEATURES,
    MARKET_END,
    MARKET_START,
    SMALL,
    aliases,
    checks_of,
    client_of,
    key_of,
    metadata_of,
    ml_assets,
)
from tests.support import throwaway_database


def test_definitions_put_the_ml_assets_behind_the_marts() -> None:
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    assert set(graph.get(TRAINING_DATASET).parent_keys) == {
        FEATURES,
        dg.AssetKey("fct_forward_returns"),
        dg.AssetKey("fct_daily_prices"),
    }
    for family in FAMILIES:
        node = graph.get(key_of(family=family))
        assert node.group_name == "ml" and set(node.parent_keys) == {TRAINING_DATASET}
    assert set(graph.get(MODEL_EVALUATION).parent_keys) == {key_of(family=f) for f in FAMILIES}
    promotion = defs.get_assets_def(MODEL_PROMOTION)
    # A challenger that loses to its champion must not keep the products from being made with the champion.
    assert {spec.name: spec.blocking for spec in promotion.check_specs} == {
        promotion_check_name(family): False for family in FAMILIES
    }
    # Training steps are tagged so the executor runs them one at a time, each on every core.
    assert defs.executor is one_machine_executor(1)
    for family in FAMILIES:
        steps = defs.get_assets_def(key_of(family=family)).node_def.node_defs
        assert {step.tags[TRAINING_TAG] for step in steps} == {family}
    dg.Definitions.validate_loadable(defs)


def test_each_seed_of_a_stochastic_family_is_a_step_of_its_own() -> None:
    assets = ml_assets(SMALL.model_copy(update={"seeds": (7, 11, 13)}))
    unused = dg.ResourceDefinition.none_resource()
    defs = dg.Definitions(assets=assets, resources={"warehouse_db": unused, "mlflow_tracking": unused})
    plan = create_execution_plan(defs.resolve_implicit_global_asset_job_def())
    steps = set(plan.step_keys_to_execute)
    for family in ("xgboost", "lstm"):
        seeds = {f"{family}_model.{family}_seed_{seed}" for seed in (7, 11, 13)}
        assert seeds | {f"{family}_model.register_{family}"} <= steps
        # Each seed needs only the dataset: nothing orders them, so the executor may run them at once.
        for seed in seeds:
            assert plan.get_step_by_key(seed).get_execution_dependency_keys() == {"training_dataset"}
    # Prophet's fit does not depend on a seed: it trains once.
    assert {step for step in steps if step.startswith("prophet_model.")} == {
        "prophet_model.prophet_seed_7",
        "prophet_model.register_prophet",
    }


def test_dataset_metadata_describes_what_is_trained_on(
    trained: dg.ExecuteInProcessResult, market_database: str
) -> None:
    with psycopg.connect(market_database) as conn:
        rows, symbols, first, last = conn.execute(
            "select count(*), count(distinct symbol), min(date), max(date) from marts.fct_stock_features"
        ).fetchone()  # type: ignore[misc]
    metadata = metadata_of(trained, TRAINING_DATASET)
    assert (metadata["dagster/row_count"], metadata["symbols"]) == (rows, symbols)
    assert metadata["window"] == f"{first}..{last}" and metadata["synthetic"] is True
    assert len(str(metadata["fingerprint"])) == 16


def test_each_model_carries_its_run_url_metrics_and_promotion(
    trained: dg.ExecuteInProcessResult, resources: dict[str, object]
) -> None:
    client = client_of(resources)
    windows = set()
    for family in FAMILIES:
        metadata = metadata_of(trained, key_of(family=family))
        run = client.get_run(str(metadata["run_id"]))
        assert metadata["mlflow_run"] == (
            f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
            f"?{MODEL_TRAINING_PAGE}"
        )
        expected = set(CROSS_SECTIONAL_METRICS) | (set(FORECAST_METRICS) if family == "prophet" else set())
        assert expected <= set(metadata)
        assert metadata["rank_ic"] == pytest.approx(run.data.metrics["rank_ic"])
        assert metadata["model"] == f"stockyard-{family} v1" and metadata["promotion"] == "champion"
        assert run.data.tags["dagster_run_id"] == trained.run_id
        assert run.data.tags["synthetic"] == "true"
        windows.add(metadata["evaluation_window"])
    assert len(windows) == 1, "every family is evaluated on the same window"

    comparison = metadata_of(trained, MODEL_EVALUATION)
    assert comparison["comparable"] is True
    table = str(comparison["comparison"])
    assert "| | xgboost | lstm | prophet |" in table and f"| evaluation window | {windows.pop()}" in table
    assert "| rank_ic |" in table and "| mape |" in table


def test_first_versions_are_published_as_champions(
    trained: dg.ExecuteInProcessResult, resources: dict[str, object]
) -> None:
    assert metadata_of(trained, MODEL_PROMOTION)["champions"] == {
        family: f"models:/stockyard-{family}/1" for family in FAMILIES
    }
    checks = checks_of(trained)
    assert {name: check.passed for name, check in checks.items()} == {
        promotion_check_name(family): True for family in FAMILIES
    }
    assert aliases(resources, "stockyard-xgboost") == {"champion": "1", "challenger": "1"}


def test_a_failing_feature_check_stops_the_ml_assets(
    market_database: str, resources: dict[str, object], tmp_path: Path
) -> None:
    partitions = trading_day_partitions(MARKET_START)

    @dg.asset(key=FEATURES, partitions_def=partitions)
    def fct_stock_features() -> None:
        """Stands for the dbt model, built already."""

    check = build_feature_check(FEATURES, tmp_path)
    last_day = MARKET_END.isoformat()

    def check_features(instance: dg.DagsterInstance) -> bool:
        result = dg.materialize(
            [fct_stock_features, check],
            resources=resources,
            instance=instance,
            partition_key=last_day,
            raise_on_error=False,
        )
        (evaluation,) = result.get_asset_check_evaluations()
        assert evaluation.check_name == FEATURE_CHECK
        return evaluation.passed

    def train_xgboost(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            ml_assets(),
            selection=[TRAINING_DATASET, key_of(family="xgboost")],
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )

    with (
        psycopg.connect(market_database, autocommit=True) as conn,
        dg.DagsterInstance.ephemeral() as instance,
    ):
        kept = conn.execute(
            "select symbol, rsi_14 from marts.fct_stock_features where date = %s", (MARKET_END,)
        ).fetchall()
        conn.execute("update marts.fct_stock_features set rsi_14 = null where date = %s", (MARKET_END,))
        try:
            assert not check_features(instance)
            blocked = train_xgboost(instance)
        finally:
            with conn.cursor() as cursor:
                cursor.executemany(
                    "update marts.fct_stock_features set rsi_14 = %s where symbol = %s and date = %s",
                    [(rsi, symbol, MARKET_END) for symbol, rsi in kept],
                )
        assert not blocked.success and not blocked.get_asset_materialization_events()
        (failure,) = [event for event in blocked.all_events if event.is_step_failure]
        assert failure.step_key == "training_dataset"
        assert f"fct_stock_features:{FEATURE_CHECK} failed" in str(failure.event_specific_data)

        # Fixed and checked again, the features are trained on.
        assert check_features(instance)
        fixed = dg.materialize(
            ml_assets(), selection=[TRAINING_DATASET], resources=resources, instance=instance
        )
        assert fixed.success


def test_two_seeds_register_one_version_their_ensemble(resources: dict[str, object], tmp_path: Path) -> None:
    settings = SMALL.model_copy(update={"seeds": (7, 11)})
    key = key_of(family="xgboost")
    with throwaway_database(migrated=False) as tracking_uri, dg.DagsterInstance.ephemeral() as instance:
        tracking = MLflowResource(tracking_uri=tracking_uri, artifact_root=str(tmp_path / "artifacts"))
        result = dg.materialize(
            ml_assets(settings),
            selection=[TRAINING_DATASET, key],
            resources={
                **resources,
                "mlflow_tracking": tracking,
                "io_manager": dg.FilesystemIOManager(base_dir=str(tmp_path / "storage")),
            },
            instance=instance,
        )
        assert {event.step_key for event in result.all_events if event.is_step_success} == {
            "training_dataset",
            "xgboost_model.xgboost_seed_7",
            "xgboost_model.xgboost_seed_11",
            "xgboost_model.register_xgboost",
        }
        metadata = metadata_of(result, key)
        assert metadata["seeds"] == [7, 11] and metadata["model"] == "stockyard-xgboost v1"

        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        family_run = client.get_run(str(metadata["run_id"]))
        seed_runs = {
            run.data.tags["seed"]: run
            for run in client.search_runs(
                [family_run.info.experiment_id],
                filter_string=f"tags.`mlflow.parentRunId` = '{family_run.info.run_id}'",
            )
        }
        assert set(seed_runs) == {"7", "11"}, "both seeds are runs under the family's run"
        # The family's run is the seeds' ensemble: the seeds' metric names (comparable in the UI), its own
        # values, the seeds among the params instead of one seed.
        for seed_run in seed_runs.values():
            assert set(family_run.data.metrics) == set(seed_run.data.metrics)
        assert "model.seed" not in family_run.data.params
        assert family_run.data.params["training.seeds"] == "7,11"
        assert family_run.data.tags["seeds"] == "7,11"
        assert metadata["rank_ic"] == pytest.approx(family_run.data.metrics["rank_ic"])

        # One version: the ensemble logged in the family's run (whose artifacts it reads).
        (version,) = client.search_model_versions("name = 'stockyard-xgboost'")
        assert version.run_id == family_run.info.run_id
        assert family_run.data.tags["model_version"] == "1"
        model_id = version.source.removeprefix("models:/")
        assert client.get_logged_model(model_id).source_run_id == family_run.info.run_id
        artifacts = {item.path for item in client.list_artifacts(family_run.info.run_id)}
        assert {"config.json", "oos_predictions.parquet"} <= artifacts
        config = client.download_artifacts(family_run.info.run_id, "config.json", str(tmp_path))
        assert json.loads(Path(config).read_text())["seeds"] == [7, 11]
        assert aliases({"mlflow_tracking": tracking}, "stockyard-xgboost") == {
            "champion": "1",
            "challenger": "1",
        }
