"""The product assets materialized for real on the champions trained in tests/orchestration/conftest.py:
rows in PostgreSQL, lineage to the MLflow runs, the API cache purged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import dagster as dg
import numpy as np
import pandas as pd
import psycopg
import pytest
import redis
from scipy import stats

from ml.tracking import CHAMPION, MODEL_TRAINING_PAGE, version_with_alias
from orchestration.definitions import build_definitions
from orchestration.jobs import DAILY_REFRESH, FULL_BUILD, RETRAIN
from orchestration.ml.assets import MODEL_EVALUATION, MODEL_PROMOTION, promotion_check_name
from orchestration.partitions import trading_day_partitions
from orchestration.products.alerts import ALERT_HITS
from orchestration.products.assets import (
    BACKTEST,
    FORECASTS,
    MODEL_VERSIONS,
    RECOMMENDATIONS,
    SIGNAL_HEALTH,
    SIGNAL_HEALTH_CHECK,
    build_product_assets,
)
from orchestration.quality.checks import build_recommendation_check
from orchestration.resources import ApiCacheResource
from stockyard.api_cache import generation_key
from stockyard.product_settings import ProductSettings
from tests.orchestration.support import (
    FAMILIES,
    FEATURES,
    MARKET_START,
    SMALL,
    aliases,
    checks_of,
    client_of,
    key_of,
    metadata_of,
    ml_assets,
)

PRICES = dg.AssetKey("fct_daily_prices")
PARTITIONS = trading_day_partitions(MARKET_START)
# The last quarter of the market: its first dates' 5-day horizon has passed, so signal health has history.
FIRST_DAY, LAST_DAY = "2020-01-02", "2020-03-31"
PRODUCTS = ProductSettings(
    backtest_top_k=3, backtest_rebalance_days=5, backtest_cost_bps=20, signal_health_window=10
)
PRODUCT_KEYS = [MODEL_VERSIONS, RECOMMENDATIONS, FORECASTS, BACKTEST, SIGNAL_HEALTH]


def product_assets(products: ProductSettings = PRODUCTS) -> list[dg.AssetsDefinition]:
    return build_product_assets(SMALL, products, PARTITIONS, features=FEATURES, prices=PRICES)


def recommendation_check(tmp_path_factory: pytest.TempPathFactory) -> dg.AssetChecksDefinition:
    return build_recommendation_check(
        RECOMMENDATIONS, tmp_path_factory.mktemp("state"), table="products.recommendations"
    )


def materialize(
    resources: dict[str, object],
    instance: dg.DagsterInstance,
    selection: list[dg.AssetKey],
    *,
    products: ProductSettings = PRODUCTS,
    checks: list[dg.AssetChecksDefinition] | None = None,
    first: str = FIRST_DAY,
    last: str = LAST_DAY,
) -> dg.ExecuteInProcessResult:
    """`selection` of the product assets, the partitioned ones over first..last, in one run."""
    return dg.materialize(
        [*ml_assets(), *product_assets(products), *(checks or [])],
        selection=selection,
        resources=resources,
        instance=instance,
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )


def cache(resources: dict[str, object]) -> tuple[redis.Redis, str]:
    api_cache = resources["api_cache"]
    assert isinstance(api_cache, ApiCacheResource)
    return redis.Redis.from_url(api_cache.redis_url), api_cache.prefix


@pytest.fixture(scope="module")
def built(
    trained: dg.ExecuteInProcessResult,
    resources: dict[str, object],
    instance: dg.DagsterInstance,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dg.ExecuteInProcessResult]:
    """Every product materialized once, with an API answer cached beforehand."""
    client, prefix = cache(resources)
    client.set(f"{prefix}:r:recommendations:stale", b"{}")
    client.delete(generation_key(prefix))
    # Partitioned recommendations and the unpartitioned rest cannot share a run.
    unpartitioned = dg.materialize(
        [*ml_assets(), *product_assets()],
        selection=[MODEL_VERSIONS, FORECASTS, BACKTEST],
        resources=resources,
        instance=instance,
    )
    assert unpartitioned.success
    recommended = materialize(
        resources, instance, [RECOMMENDATIONS], checks=[recommendation_check(tmp_path_factory)]
    )
    assert recommended.success
    health = dg.materialize(
        [*ml_assets(), *product_assets()], selection=[SIGNAL_HEALTH], resources=resources, instance=instance
    )
    assert health.success
    yield recommended
    client.close()


def champion_version(resources: dict[str, object], family: str) -> tuple[str, str]:
    version = version_with_alias(client_of(resources), f"stockyard-{family}", CHAMPION)
    assert version is not None and version.run_id is not None
    return str(version.version), version.run_id


def query(database: str, statement: str, *params: object) -> pd.DataFrame:
    with psycopg.connect(database) as conn, conn.cursor() as cursor:
        cursor.execute(statement, params)  # type: ignore[arg-type]
        return pd.DataFrame(cursor.fetchall(), columns=[c.name for c in cursor.description or ()])


def test_products_come_after_the_champions_in_the_definitions() -> None:
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    assert set(graph.get(RECOMMENDATIONS).parent_keys) == {MODEL_PROMOTION, FEATURES}
    assert set(graph.get(FORECASTS).parent_keys) == {MODEL_PROMOTION}
    assert set(graph.get(BACKTEST).parent_keys) == {MODEL_PROMOTION, PRICES}
    assert set(graph.get(SIGNAL_HEALTH).parent_keys) == {RECOMMENDATIONS, PRICES}
    assert graph.get(RECOMMENDATIONS).is_partitioned and not graph.get(SIGNAL_HEALTH).is_partitioned
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} >= {
        key.to_user_string() for key in PRODUCT_KEYS
    }
    assert (
        dg.AssetCheckKey(RECOMMENDATIONS, "recommendation_rules")
        in defs.resolve_asset_graph().asset_check_keys
    )

    # The daily refresh makes the day's recommendations and signal health with the champions it finds,
    # without training; retraining makes the products of the models alone; full_build makes everything.
    daily = defs.resolve_job_def(DAILY_REFRESH).asset_layer.executable_asset_keys
    retrain = defs.resolve_job_def(RETRAIN).asset_layer.executable_asset_keys
    assert {RECOMMENDATIONS, SIGNAL_HEALTH} <= daily and not daily & {MODEL_PROMOTION, MODEL_VERSIONS}
    assert {MODEL_PROMOTION, MODEL_VERSIONS, FORECASTS, BACKTEST} <= retrain
    assert not retrain & {RECOMMENDATIONS, SIGNAL_HEALTH}
    # The day's screens and alerts run once the recommendations are made (orchestration.products.alerts).
    assert ALERT_HITS in daily and set(graph.get(ALERT_HITS).parent_keys) == {RECOMMENDATIONS}
    full = defs.resolve_job_def(FULL_BUILD).asset_layer.executable_asset_keys
    assert set(PRODUCT_KEYS) <= full
    # In a run of any of them a lost promotion gate holds nothing back.
    for family in FAMILIES:
        assert not graph.get(dg.AssetCheckKey(MODEL_PROMOTION, promotion_check_name(family))).blocking


def test_recommendations_are_complete_and_consistent(
    built: dg.ExecuteInProcessResult, resources: dict[str, object], market_database: str
) -> None:
    version, run_id = champion_version(resources, "xgboost")
    recs = query(market_database, "select * from products.recommendations order by date, rank")
    listed = query(
        market_database,
        "select date, count(*) as symbols from marts.fct_daily_prices where date between %s and %s "
        "group by date order by date",
        date.fromisoformat(FIRST_DAY),
        date.fromisoformat(LAST_DAY),
    )
    per_date = recs.groupby("date")
    # One row per listed symbol on every trading day of the window, ranked 1..n.
    assert per_date.size().tolist() == listed["symbols"].tolist()
    assert list(per_date.size().index) == listed["date"].tolist()
    assert (per_date["rank"].apply(lambda ranks: ranks.tolist() == list(range(1, len(ranks) + 1)))).all()
    assert (per_date["score"].apply(lambda scores: scores.is_monotonic_decreasing)).all()
    # Actions follow the configured thresholds on the percentile.
    expected = np.where(
        recs["percentile"] > PRODUCTS.buy_above_percentile,
        "buy",
        np.where(recs["percentile"] <= PRODUCTS.sell_at_or_below_percentile, "sell", "hold"),
    )
    assert (recs["action"] == expected).all() and set(recs["action"]) == {"buy", "hold", "sell"}
    # Lineage: the champion's version, the data date, the synthetic source.
    assert set(recs["model_name"]) == {"stockyard-xgboost"} and set(recs["model_version"]) == {version}
    assert (recs["data_date"] == recs["date"]).all() and set(recs["data_source"]) == {"synthetic"}
    contributions = recs["top_contributions"].iloc[0]
    assert len(contributions) == PRODUCTS.top_contributions
    assert {"feature", "value", "contribution"} == set(contributions[0])

    metadata = metadata_of(built, RECOMMENDATIONS)
    assert metadata["dagster/row_count"] == len(recs) and metadata["dates"] == len(listed)
    assert str(metadata["mlflow_run"]).endswith(f"/runs/{run_id}?{MODEL_TRAINING_PAGE}")
    assert metadata["model"] == f"stockyard-xgboost v{version}" and metadata["data_source"] == "synthetic"
    (check,) = built.get_asset_check_evaluations()
    assert check.check_name == "recommendation_rules" and check.passed


def test_rerunning_a_day_replaces_it(
    built: dg.ExecuteInProcessResult,
    resources: dict[str, object],
    instance: dg.DagsterInstance,
    market_database: str,
) -> None:
    before = query(market_database, "select date, count(*) as n from products.recommendations group by date")
    day = LAST_DAY
    again = materialize(resources, instance, [RECOMMENDATIONS], first=day, last=day)
    assert again.success
    after = query(market_database, "select date, count(*) as n from products.recommendations group by date")
    pd.testing.assert_frame_equal(
        before.sort_values("date", ignore_index=True), after.sort_values("date", ignore_index=True)
    )


def test_forecasts_come_from_the_prophet_champion(
    built: dg.ExecuteInProcessResult, resources: dict[str, object], market_database: str
) -> None:
    version, _ = champion_version(resources, "prophet")
    forecasts = query(market_database, "select * from products.forecasts order by symbol, step")
    symbols = query(market_database, "select count(distinct symbol) as n from marts.fct_daily_prices")
    steps = forecasts.groupby("symbol")["step"].apply(list)
    assert len(steps) == symbols["n"].iloc[0]
    assert all(symbol_steps == list(range(1, SMALL.prophet().forecast_days + 1)) for symbol_steps in steps)
    assert (forecasts["target_date"] > forecasts["data_date"]).all()
    assert (
        (forecasts["lower_close"] <= forecasts["predicted_close"])
        & (forecasts["predicted_close"] <= forecasts["upper_close"])
    ).all()
    assert set(forecasts["model_version"]) == {version} and set(forecasts["data_source"]) == {"synthetic"}


def test_backtest_is_kept_and_logged_to_the_champion_run(
    built: dg.ExecuteInProcessResult, resources: dict[str, object], market_database: str
) -> None:
    version, run_id = champion_version(resources, "xgboost")
    (backtest,) = query(market_database, "select * from products.backtests").to_dict("records")
    assert (backtest["model_version"], backtest["run_id"]) == (version, run_id)
    assert (backtest["top_k"], backtest["rebalance_days"], backtest["cost_bps"]) == (3, 5, 20.0)
    equity = query(
        market_database,
        "select * from products.backtest_equity where backtest_id = %s",
        backtest["backtest_id"],
    )
    assert equity["date"].min() == backtest["start_date"] and equity["date"].max() == backtest["end_date"]
    positions = query(
        market_database,
        "select rebalance_date, count(*) as held from products.backtest_positions where backtest_id = %s "
        "group by rebalance_date",
        backtest["backtest_id"],
    )
    assert (positions["held"] == 3).all()

    client = client_of(resources)
    logged = client.get_run(run_id).data
    for name in ("sharpe", "sortino", "max_drawdown", "turnover", "excess_annual_return"):
        assert logged.metrics[f"backtest/{name}"] == pytest.approx(backtest[name])
    assert logged.tags["backtest.top_k"] == "3"
    assert [artifact.path for artifact in client.list_artifacts(run_id, "backtest")] == [
        "backtest/equity_curve.png"
    ]


def test_signal_health_realizes_the_recommendations(
    built: dg.ExecuteInProcessResult, resources: dict[str, object], market_database: str
) -> None:
    health = query(market_database, "select * from products.signal_health order by date")
    recs = query(market_database, "select date, symbol, score from products.recommendations")
    closes = query(market_database, "select date, symbol, adj_close from marts.fct_daily_prices")
    panel = closes.pivot(index="date", columns="symbol", values="adj_close").sort_index()
    horizon = SMALL.dataset().horizon
    # Every recommendation date whose horizon has passed by the last close, and no other.
    realized = sorted(d for d in recs["date"].unique() if panel.index.get_loc(d) + horizon < len(panel))
    assert health["date"].tolist() == realized

    # The realized rank IC of one date, computed here from the tables.
    day = realized[len(realized) // 2]
    forward = panel.shift(-horizon).loc[day] / panel.loc[day] - 1
    scores = recs.loc[recs["date"] == day].set_index("symbol")["score"]
    expected = stats.spearmanr(scores, forward.reindex(scores.index)).statistic
    assert health.set_index("date").loc[day, "realized_rank_ic"] == pytest.approx(expected, rel=1e-9)
    assert health["rolling_rank_ic"].notna().sum() == len(realized) - PRODUCTS.signal_health_window + 1


def test_signal_health_warns_when_the_realized_ic_decays(
    built: dg.ExecuteInProcessResult, resources: dict[str, object], instance: dg.DagsterInstance
) -> None:
    def check_with_floor(floor: float) -> dg.AssetCheckEvaluation:
        products = PRODUCTS.model_copy(update={"signal_health_ic_floor": floor})
        result = dg.materialize(
            [*ml_assets(), *product_assets(products)],
            selection=[SIGNAL_HEALTH],
            resources=resources,
            instance=instance,
        )
        assert result.success, "a warning does not fail the run"
        return checks_of(result)[SIGNAL_HEALTH_CHECK]

    decayed = check_with_floor(1.0)
    assert not decayed.passed and decayed.severity is dg.AssetCheckSeverity.WARN
    assert decayed.description is not None and "below the floor 1" in decayed.description
    assert check_with_floor(-1.0).passed


def test_model_versions_follow_the_registry(
    built: dg.ExecuteInProcessResult, resources: dict[str, object], market_database: str
) -> None:
    client = client_of(resources)
    rows = query(market_database, "select * from products.model_versions")
    for row in rows.itertuples():
        aliases = set(client.get_model_version(row.model_name, row.version).aliases)
        assert row.alias == ("champion" if "champion" in aliases else "challenger" if aliases else None)
        assert row.data_source == "synthetic" and "rank_ic" in row.metrics
    champions = rows.loc[rows["alias"] == "champion"]
    assert sorted(champions["family"]) == ["lstm", "prophet", "xgboost"]


def test_products_purge_the_api_cache(built: dg.ExecuteInProcessResult, resources: dict[str, object]) -> None:
    client, prefix = cache(resources)
    assert client.get(f"{prefix}:r:recommendations:stale") is None
    # Every product asset bumped the generation the API's keys include.
    assert int(client.get(generation_key(prefix)) or 0) >= len(PRODUCT_KEYS)


def test_a_day_without_data_fails_with_the_reason(
    built: dg.ExecuteInProcessResult, resources: dict[str, object], instance: dg.DagsterInstance
) -> None:
    day = "2020-06-01"  # after the market's last bar
    result = dg.materialize(
        [*ml_assets(), *product_assets()],
        selection=[RECOMMENDATIONS],
        resources=resources,
        instance=instance,
        partition_key=day,
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert f"has no closes between {day} and {day}" in str(failure.event_specific_data)


def test_purging_with_redis_down_warns_and_goes_on() -> None:
    assert ApiCacheResource(redis_url="redis://127.0.0.1:9/0").purge() is None


def test_a_challenger_that_does_not_beat_the_champion_leaves_the_day_to_the_champion(
    trained: dg.ExecuteInProcessResult,
    resources: dict[str, object],
    instance: dg.DagsterInstance,
    market_database: str,
) -> None:
    # No version can beat its champion by a rank IC of 1. Only XGBoost is retrained: the other families'
    # summaries are read back from the first training.
    strict = ml_assets(SMALL.model_copy(update={"promotion_min_improvement": 1.0}))
    result = dg.materialize(
        [*strict, *product_assets()],
        selection=[
            key_of(family="xgboost"),
            MODEL_EVALUATION,
            MODEL_PROMOTION,
            MODEL_VERSIONS,
            RECOMMENDATIONS,
        ],
        resources=resources,
        instance=instance,
        partition_key=LAST_DAY,
    )
    assert result.success, "a lost gate does not fail the run"

    checks = checks_of(result)
    failed = checks[promotion_check_name("xgboost")]
    assert not failed.passed and failed.severity is dg.AssetCheckSeverity.WARN
    assert failed.description is not None and "v2 stays challenger" in failed.description
    assert "required more than 1.00000" in failed.description
    assert "The products are made with champion v1" in failed.description
    assert checks[promotion_check_name("lstm")].passed and checks[promotion_check_name("prophet")].passed
    # The alias stays with the champion; the new version is recorded as the challenger.
    assert aliases(resources, "stockyard-xgboost") == {"champion": "1", "challenger": "2"}
    assert metadata_of(result, MODEL_PROMOTION)["champions"] == {
        family: f"models:/stockyard-{family}/1" for family in FAMILIES
    }
    versions = query(
        market_database,
        "select version, alias from products.model_versions where model_name = 'stockyard-xgboost'",
    )
    assert dict(zip(versions["version"], versions["alias"], strict=True)) == {
        "1": "champion",
        "2": "challenger",
    }
    # The day's recommendations are made, with the champion.
    assert metadata_of(result, RECOMMENDATIONS)["model"] == "stockyard-xgboost v1"
    written = query(
        market_database,
        "select model_version, count(*) as n from products.recommendations where date = %s group by 1",
        date.fromisoformat(LAST_DAY),
    )
    assert written.to_dict("records") == [
        {"model_version": "1", "n": metadata_of(result, RECOMMENDATIONS)["dagster/row_count"]}
    ]


def test_a_family_without_a_champion_fails_its_check_and_its_products(
    trained: dg.ExecuteInProcessResult, resources: dict[str, object], instance: dg.DagsterInstance
) -> None:
    client = client_of(resources)
    champion = version_with_alias(client, "stockyard-xgboost", CHAMPION)
    assert champion is not None
    client.delete_registered_model_alias("stockyard-xgboost", CHAMPION)
    try:
        result = dg.materialize(
            [*ml_assets(), *product_assets()],
            selection=[MODEL_PROMOTION, RECOMMENDATIONS],
            resources=resources,
            instance=instance,
            partition_key=LAST_DAY,
            raise_on_error=False,
        )
    finally:
        client.set_registered_model_alias("stockyard-xgboost", CHAMPION, champion.version)
    failed = checks_of(result)[promotion_check_name("xgboost")]
    assert not failed.passed and failed.severity is dg.AssetCheckSeverity.ERROR
    assert failed.description is not None and "stockyard-xgboost has no champion" in failed.description
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_key == "recommendations"
    assert "stockyard-xgboost has no champion version yet" in str(failure.event_specific_data)
