"""The Stockyard code location: every asset, check and resource, loaded lazily.

Its jobs (orchestration.jobs) are what `stockyard run` / `stockyard materialize`, the UI and the automation
(orchestration.automation: schedules and sensors the daemon runs) launch. Settings are read when Dagster loads
the definitions, never at import time.
"""

import os
from functools import cache

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from ml.config import MLSettings, get_ml_settings
from orchestration.automation import build_automation, with_freshness_policies
from orchestration.executors import build_executor
from orchestration.ingestion.assets import build_price_assets, stock_universe
from orchestration.jobs import build_jobs
from orchestration.ml.assets import build_ml_assets
from orchestration.partitions import trading_day_partitions
from orchestration.products.alerts import alert_hits
from orchestration.products.assets import RECOMMENDATIONS, build_product_assets
from orchestration.quality.checks import build_quality_checks, build_recommendation_check
from orchestration.resources import ApiCacheResource, MarketDataResource, MLflowResource, WarehouseResource
from orchestration.settings import get_automation_settings
from orchestration.transformation.assets import build_dbt_assets, dbt_cli, dbt_project
from stockyard.endpoints import resolve_endpoints
from stockyard.marketdata.settings import get_market_data_settings
from stockyard.product_settings import get_product_settings
from stockyard.settings import get_services_settings


def build_definitions(ml: MLSettings | None = None) -> dg.Definitions:
    """Everything, configured by the settings' sections (`ml` in place of the environment's, for tests)."""
    ml = ml or get_ml_settings()
    services = get_services_settings()
    partitions_def = trading_day_partitions(get_market_data_settings().start)
    endpoints = resolve_endpoints(services)
    project = dbt_project()
    incremental_models, other_models = build_dbt_assets(project, partitions_def)
    features = get_asset_key_for_model([incremental_models], "fct_stock_features")
    prices = get_asset_key_for_model([incremental_models], "fct_daily_prices")
    ml_assets = build_ml_assets(
        ml,
        features=features,
        forward_returns=get_asset_key_for_model([incremental_models], "fct_forward_returns"),
        prices=prices,
    )
    product_assets = build_product_assets(
        ml, get_product_settings(), partitions_def, features=features, prices=prices
    )
    schedules, sensors = build_automation(get_automation_settings())
    return dg.Definitions(
        assets=with_freshness_policies(
            [
                stock_universe,
                build_price_assets(partitions_def),
                incremental_models,
                other_models,
                *ml_assets,
                *product_assets,
                alert_hits,
            ]
        ),
        asset_checks=[
            *build_quality_checks(services.state_dir, features=features),
            build_recommendation_check(RECOMMENDATIONS, services.state_dir, table="products.recommendations"),
        ],
        resources={
            "market_data": MarketDataResource(),
            "warehouse_db": WarehouseResource(database_url=endpoints.database_url),
            "dbt": dbt_cli(project),
            "mlflow_tracking": MLflowResource.from_settings(ml),
            "api_cache": ApiCacheResource(redis_url=endpoints.redis_url),
            # Asset values (the dataset reference, training summaries, champions) are small pickles kept
            # beside the embedded services' data, so each state folder has its own.
            "io_manager": dg.FilesystemIOManager(base_dir=str(services.state_dir / "dagster-storage")),
        },
        jobs=build_jobs(),
        schedules=schedules,
        sensors=sensors,
        executor=build_executor(),
    )


@dg.definitions
def defs() -> dg.Definitions:
    # A run's process loads the code location more than once (the job, then the subset of it the run
    # covers), and each load would build everything again (seconds): built once per set of settings.
    return _definitions_for(frozenset(os.environ.items()))


@cache
def _definitions_for(_environment: frozenset[tuple[str, str]]) -> dg.Definitions:
    return build_definitions()
