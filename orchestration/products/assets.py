"""Products: the tables the API serves, made with the champion models.

    model_evaluation -> model_versions
    model_promotion, fct_stock_features -> recommendations (by trading day) -> signal_health
    model_promotion, fct_daily_prices -> backtest
    model_promotion -> forecasts

Each asset is thin over `ml` and `stockyard.products`: it loads the champion from the MLflow registry, makes
its rows, writes them in one transaction and purges the API's cache so the next request sees them. Every row
carries the model version, the data date and the data source (`synthetic` for the sample market); the
metadata links the champion's MLflow run.

All but model_versions depend on model_promotion, whose checks fail when a challenger fails the promotion
rule. They do not block: the registry alias `champion` stays where it was, so these assets still run and make
the day's products with the champion that was kept; a family with no champion at all fails here, saying so.
model_versions records the decision (and the challenger) either way.
"""

import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

import dagster as dg
import pandas as pd

from ml.config import MLSettings
from ml.evaluation import Comparison
from orchestration.ml.assets import MODEL_EVALUATION, MODEL_PROMOTION
from orchestration.partitions import window_dates
from orchestration.resources import ApiCacheResource, MLflowResource, WarehouseResource
from stockyard.product_settings import ProductSettings
from stockyard.quality.results import markdown_table

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from stockyard.analytics.backtest import BacktestResult

PRODUCTS_GROUP = "products"
MODEL_VERSIONS = dg.AssetKey("model_versions")
RECOMMENDATIONS = dg.AssetKey("recommendations")
FORECASTS = dg.AssetKey("forecasts")
BACKTEST = dg.AssetKey("backtest")
SIGNAL_HEALTH = dg.AssetKey("signal_health")
SIGNAL_HEALTH_CHECK = "rolling_rank_ic_above_floor"
# The family whose champion recommends (and is backtested and watched); Prophet's champion forecasts.
RECOMMENDING_FAMILY = "xgboost"
FORECASTING_FAMILY = "prophet"
KINDS = {"python", "postgres"}

T = TypeVar("T")


def build_product_assets(
    ml: MLSettings,
    products: ProductSettings,
    partitions_def: dg.PartitionsDefinition,
    *,
    features: dg.AssetKey,
    prices: dg.AssetKey,
) -> list[dg.AssetsDefinition]:
    """The product assets over the marts behind `features` and `prices`; recommendations by trading day."""
    return [
        model_versions,
        _recommendations(ml, products, partitions_def, features=features),
        _forecasts(),
        _backtest(products, prices=prices),
        _signal_health(ml, products, prices=prices),
    ]


@dg.asset(
    key=MODEL_VERSIONS,
    group_name=PRODUCTS_GROUP,
    ins={"comparison": dg.AssetIn(MODEL_EVALUATION)},
    kinds=KINDS,
    description="products.model_versions: per family, the version this run trained and the champion, with "
    "their registry aliases, walk-forward metrics, evaluation window and promotion decision (what the API's "
    "models endpoint reads). Runs whatever the promotion gate decided, so a challenger that failed it shows.",
)
def model_versions(
    comparison: Comparison,
    warehouse_db: WarehouseResource,
    mlflow_tracking: MLflowResource,
    api_cache: ApiCacheResource,
) -> dg.MaterializeResult[None]:
    from ml.tracking import CHAMPION, run_url, version_with_alias
    from stockyard.products import data_source, record_model_version

    client = mlflow_tracking.client()
    rows = []
    with warehouse_db.connect() as conn:
        source = data_source(conn)
        for summary in comparison.summaries:
            champion = version_with_alias(client, summary.model_name, CHAMPION)
            versions = dict.fromkeys([summary.model_version, *([str(champion.version)] if champion else [])])
            for version in versions:
                registered = client.get_model_version(summary.model_name, version)
                assert registered.run_id is not None  # versions are registered from their training runs
                run = client.get_run(registered.run_id)
                tags = run.data.tags
                start, end = (date.fromisoformat(day) for day in tags["evaluation_window"].split(".."))
                # The training metrics; the backtest's (backtest/...) have their own table.
                metrics = {name: value for name, value in run.data.metrics.items() if "/" not in name}
                record_model_version(
                    conn,
                    model_name=summary.model_name,
                    family=summary.family,
                    version=version,
                    aliases=registered.aliases,
                    run_id=registered.run_id,
                    run_url=run_url(mlflow_tracking.tracking(), run.info.experiment_id, registered.run_id),
                    evaluation_start=start,
                    evaluation_end=end,
                    metrics=metrics,
                    promotion_reason=tags.get("promotion.reason", ""),
                    dataset_fingerprint=tags["dataset_fingerprint"],
                    data_source=source,
                )
                rows.append(
                    {
                        "model": f"{summary.model_name} v{version}",
                        "aliases": ", ".join(sorted(registered.aliases)) or "none",
                        "rank_ic": metrics.get("rank_ic", float("nan")),
                        "trained in this run": version == summary.model_version,
                    }
                )
    api_cache.purge()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "versions": dg.MetadataValue.md(markdown_table(pd.DataFrame(rows))),
        }
    )


def _recommendations(
    ml: MLSettings,
    products: ProductSettings,
    partitions_def: dg.PartitionsDefinition,
    *,
    features: dg.AssetKey,
) -> dg.AssetsDefinition:
    @dg.asset(
        key=RECOMMENDATIONS,
        group_name=PRODUCTS_GROUP,
        deps=[MODEL_PROMOTION, features],
        partitions_def=partitions_def,
        # A backfill of many days loads the champion once and scores every day in one run.
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={*KINDS, "xgboost"},
        description="products.recommendations: per trading day and listed symbol, the champion XGBoost "
        "model's score, rank, percentile, calibrated expected excess return and confidence, the buy / hold / "
        "sell action and the features that moved the score most. Re-running a day replaces it.",
    )
    def recommendations(
        context: dg.AssetExecutionContext,
        warehouse_db: WarehouseResource,
        mlflow_tracking: MLflowResource,
        api_cache: ApiCacheResource,
    ) -> dg.MaterializeResult[None]:
        from ml.datasets import DateWindow, load_dataset
        from ml.recommendations import RecommendationConfig, load_champion, recommend
        from stockyard.products import (
            data_source,
            read_close_panel,
            write_recommendations,
        )

        first, last, key = window_dates(context)
        client = mlflow_tracking.client()
        champion = _require(lambda: load_champion(client))
        config = RecommendationConfig.from_settings(products)
        # Only counts and the last day are kept: a backfill of years must not hold every day's rows.
        rows_written, dates = 0, 0
        actions: Counter[str] = Counter()
        latest = pd.DataFrame()
        with warehouse_db.connect() as conn:
            source = data_source(conn)
            closes = _require(lambda: read_close_panel(conn, first, last))
            # The features the champion was trained on (the training dataset's feature set).
            dataset = _require(lambda: load_dataset(conn, DateWindow(first, last), ml.dataset()))
            for timestamp, rows in dataset.frame.groupby("date", sort=True):
                day = cast(pd.Timestamp, timestamp)
                latest = recommend(
                    champion.model,
                    rows,
                    champion.calibration,
                    model_name=champion.model_name,
                    model_version=champion.version,
                    config=config,
                )
                listed = closes.loc[day].dropna().index
                rows_written += write_recommendations(
                    conn, day.date(), latest, data_source=source, symbols=listed
                )
                dates += 1
                actions.update(latest["action"])
        api_cache.purge()

        top = latest.loc[:9, ["date", "rank", "symbol", "score", "expected_excess_return", "action"]]
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows_written,
                "partitions": key,
                "dates": dates,
                "model": f"{champion.model_name} v{champion.version}",
                "mlflow_run": dg.MetadataValue.url(mlflow_tracking.run_url(client, champion.run_id)),
                "data_source": source,
                "actions": dg.MetadataValue.json(dict(actions)),
                "latest_top": dg.MetadataValue.md(markdown_table(top)),
            }
        )

    return recommendations


def _forecasts() -> dg.AssetsDefinition:
    @dg.asset(
        key=FORECASTS,
        group_name=PRODUCTS_GROUP,
        deps=[MODEL_PROMOTION],
        kinds={*KINDS, "prophet"},
        description="products.forecasts: the champion Prophet model's close for each of the next trading "
        "days after its data date, per symbol, with the interval. Replaces the forecasts of the same data "
        "date and symbol.",
    )
    def forecasts(
        warehouse_db: WarehouseResource, mlflow_tracking: MLflowResource, api_cache: ApiCacheResource
    ) -> dg.MaterializeResult[None]:
        from ml.forecasts import forecast_rows
        from ml.models.prophet_model import ProphetModel
        from ml.tracking import CHAMPION, registered_model_name, version_with_alias
        from stockyard.products import data_source, write_forecasts

        client = mlflow_tracking.client()
        model_name = registered_model_name(FORECASTING_FAMILY)
        champion = version_with_alias(client, model_name, CHAMPION)
        if champion is None or champion.run_id is None:
            raise dg.Failure(description=f"{model_name} has no {CHAMPION} version yet: train it first.")
        model = ProphetModel.load(f"models:/{model_name}/{champion.version}")
        rows = forecast_rows(model, model_name=model_name, model_version=str(champion.version))
        with warehouse_db.connect() as conn:
            source = data_source(conn)
            written = write_forecasts(conn, rows, data_source=source)
        api_cache.purge()
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": written,
                "symbols": int(rows["symbol"].nunique()),
                "data_date": str(rows["data_date"].max()),
                "steps": int(rows["step"].max()),
                "model": f"{model_name} v{champion.version}",
                "mlflow_run": dg.MetadataValue.url(mlflow_tracking.run_url(client, champion.run_id)),
                "data_source": source,
            }
        )

    return forecasts


def _backtest(products: ProductSettings, *, prices: dg.AssetKey) -> dg.AssetsDefinition:
    @dg.asset(
        key=BACKTEST,
        group_name=PRODUCTS_GROUP,
        deps=[MODEL_PROMOTION, prices],
        kinds={*KINDS, "mlflow"},
        description=f"products.backtests: the top-{products.backtest_top_k} equal-weight strategy on the "
        "champion XGBoost model's walk-forward out-of-sample scores (made by models that never saw those "
        f"dates), rebalanced every {products.backtest_rebalance_days} trading days with "
        f"{products.backtest_cost_bps:g} bp costs, against the equal-weight universe. Metrics and the equity "
        "curve are also logged to the champion's MLflow run.",
    )
    def backtest(
        context: dg.AssetExecutionContext,
        warehouse_db: WarehouseResource,
        mlflow_tracking: MLflowResource,
        api_cache: ApiCacheResource,
    ) -> dg.MaterializeResult[None]:
        from ml.recommendations import load_champion
        from stockyard.analytics.backtest import run_backtest
        from stockyard.products import data_source, read_close_panel, write_backtest

        client = mlflow_tracking.client()
        champion = _require(lambda: load_champion(client))
        scores = champion.out_of_sample.rename(columns={"prediction": "score"})[["date", "symbol", "score"]]
        with warehouse_db.connect() as conn:
            source = data_source(conn)
            panel = _require(lambda: read_close_panel(conn, scores["date"].min().date()))
            try:
                result = run_backtest(
                    scores,
                    panel,
                    k=products.backtest_top_k,
                    rebalance_every=products.backtest_rebalance_days,
                    cost_bps=products.backtest_cost_bps,
                )
            except ValueError as error:
                raise dg.Failure(
                    description=f"backtest of {champion.model_name} v{champion.version}: {error}"
                ) from error
            backtest_id = write_backtest(
                conn,
                result,
                model_name=champion.model_name,
                model_version=champion.version,
                run_id=champion.run_id,
                data_date=panel.index[-1].date(),
                data_source=source,
            )
        _log_to_run(client, champion.run_id, result)
        api_cache.purge()

        metrics = result.metrics.as_dict()
        context.log.info(
            "backtest %s of %s v%s: %s", backtest_id, champion.model_name, champion.version, metrics
        )
        return dg.MaterializeResult(
            metadata={
                "backtest_id": backtest_id,
                "model": f"{champion.model_name} v{champion.version}",
                "mlflow_run": dg.MetadataValue.url(mlflow_tracking.run_url(client, champion.run_id)),
                "window": f"{result.equity_curve.index[0].date()}..{result.equity_curve.index[-1].date()}",
                "rebalances": len(result.rebalances),
                "data_source": source,
                **{name: dg.MetadataValue.float(value) for name, value in metrics.items()},
            }
        )

    return backtest


def _signal_health(ml: MLSettings, products: ProductSettings, *, prices: dg.AssetKey) -> dg.AssetsDefinition:
    horizon = ml.dataset().horizon

    @dg.asset(
        key=SIGNAL_HEALTH,
        group_name=PRODUCTS_GROUP,
        deps=[RECOMMENDATIONS, prices],
        kinds=KINDS,
        check_specs=[
            dg.AssetCheckSpec(
                SIGNAL_HEALTH_CHECK,
                asset=SIGNAL_HEALTH,
                description=f"Warns when the rank IC the recommendations realized, averaged over the last "
                f"{products.signal_health_window} dates (STOCKYARD_PRODUCTS_SIGNAL_HEALTH_WINDOW), is below "
                f"{products.signal_health_ic_floor:g} (STOCKYARD_PRODUCTS_SIGNAL_HEALTH_IC_FLOOR).",
            )
        ],
        description=f"products.signal_health: for every recommendation date whose {horizon}-day horizon has "
        "passed, the rank IC of the scores against the realized returns and the top decile's return, with "
        "the rolling IC.",
    )
    def signal_health(
        warehouse_db: WarehouseResource, api_cache: ApiCacheResource
    ) -> Iterator[dg.MaterializeResult[None] | dg.AssetCheckResult]:
        from ml.tracking import registered_model_name
        from stockyard.analytics.signal_health import ic_decay
        from stockyard.products import (
            data_source,
            read_close_panel,
            read_recommendation_scores,
            signal_health_rows,
            write_signal_health,
        )

        model_name = registered_model_name(RECOMMENDING_FAMILY)
        with warehouse_db.connect() as conn:
            source = data_source(conn)
            scores = read_recommendation_scores(conn, model_name)
            if scores.empty:
                raise dg.Failure(description=f"products.recommendations has no rows of {model_name} yet.")
            panel = _require(lambda: read_close_panel(conn, scores["date"].min().date()))
            health = signal_health_rows(scores, panel, horizon=horizon, window=products.signal_health_window)
            written = write_signal_health(
                conn, health, model_name=model_name, horizon_days=horizon, data_source=source
            )
        api_cache.purge()

        decay = ic_decay(
            health.set_index("date"),
            window=products.signal_health_window,
            floor=products.signal_health_ic_floor,
        )
        realized = health.dropna(subset=["realized_rank_ic"])
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": written,
                "model": model_name,
                "realized_dates": len(realized),
                "mean_realized_rank_ic": dg.MetadataValue.float(float(realized["realized_rank_ic"].mean()))
                if len(realized)
                else dg.MetadataValue.float(float("nan")),
                "rolling_rank_ic": dg.MetadataValue.float(decay.rolling_rank_ic),
                "data_source": source,
            }
        )
        yield dg.AssetCheckResult(
            check_name=SIGNAL_HEALTH_CHECK,
            passed=not decay.decayed,
            severity=dg.AssetCheckSeverity.WARN,
            description=_decay_description(
                decay.rolling_rank_ic, decay.floor, decay.window, decay.as_of_date
            ),
            metadata={
                "rolling_rank_ic": dg.MetadataValue.float(decay.rolling_rank_ic),
                "floor": dg.MetadataValue.float(decay.floor),
                "window": decay.window,
                "as_of_date": str(decay.as_of_date.date()) if decay.as_of_date is not None else "none",
            },
        )

    return signal_health


def _decay_description(rolling: float, floor: float, window: int, as_of: pd.Timestamp | None) -> str:
    if as_of is None or pd.isna(rolling):
        return f"Fewer than {window} realized dates with an IC yet: nothing to judge."
    relation = "below" if rolling < floor else "at or above"
    return (
        f"Rolling realized rank IC over {window} dates to {as_of.date()}: {rolling:.4f}, {relation} the "
        f"floor {floor:g}."
    )


def _require(load: Callable[[], T]) -> T:
    """`load()`, with a missing champion or missing rows (LookupError) reported as a step failure."""
    try:
        return load()
    except LookupError as error:
        raise dg.Failure(description=str(error)) from error


def _log_to_run(client: "MlflowClient", run_id: str, result: "BacktestResult") -> None:
    """The backtest's metrics (`backtest/<name>`), settings and equity curve, on the model's training run."""
    from stockyard.analytics.backtest import save_equity_curve

    for name, value in result.metrics.as_dict().items():
        client.log_metric(run_id, f"backtest/{name}", value)
    for name, value in {
        "top_k": result.k,
        "rebalance_days": result.rebalance_every,
        "cost_bps": result.cost_bps,
    }.items():
        client.set_tag(run_id, f"backtest.{name}", str(value))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "equity_curve.png"
        save_equity_curve(result, path)
        client.log_artifact(run_id, str(path), artifact_path="backtest")
