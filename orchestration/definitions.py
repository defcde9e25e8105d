"""The Stockyard code location: every asset, check and resource, loaded lazily.

It has no schedules: `stockyard run` and `stockyard materialize` (or the Dagster UI) start the runs.
Settings are read when Dagster loads the definitions, never at import time.
"""

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from ml.config import MLSettings
from orchestration.ingestion.assets import build_price_assets, stock_universe
from orchestration.ml.assets import TRAINING_TAG, build_ml_assets
from orchestration.partitions import trading_day_partitions
from orchestration.products.assets import RECOMMENDATIONS, build_product_assets
from orchestration.quality.checks import build_quality_checks, build_recommendation_check
from orchestration.resources import ApiCacheResource, MarketDataResource, MLflowResource, WarehouseResource
from orchestration.transformation.assets import build_dbt_assets, dbt_cli, dbt_project
from stockyard.endpoints import resolve_endpoints
from stockyard.product_settings import ProductSettings
from stockyard.settings import Settings, get_settings

EXECUTOR = dg.multiprocess_executor.configured(
    {
        "tag_concurrency_limits": [{"key": TRAINING_TAG, "limit": 1}],
        # Steps fork from a server that has the definitions imported already, instead of each spawning a
        # fresh interpreter that imports them again (seconds per step).
        "start_method": {"forkserver": {}},
    }
)


def build_definitions(settings: Settings, ml: MLSettings | None = None) -> dg.Definitions:
    ml = ml or MLSettings()
    partitions_def = trading_day_partitions(settings.market_data_start)
    endpoints = resolve_endpoints(settings)
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
        ml, ProductSettings(), partitions_def, features=features, prices=prices
    )
    return dg.Definitions(
        assets=[
            stock_universe,
            build_price_assets(partitions_def),
            incremental_models,
            other_models,
            *ml_assets,
            *product_assets,
        ],
        asset_checks=[
            *build_quality_checks(settings, features=features),
            build_recommendation_check(RECOMMENDATIONS, settings, table="products.recommendations"),
        ],
        resources={
            "market_data": MarketDataResource.from_settings(settings),
            "warehouse_db": WarehouseResource(database_url=endpoints.database_url),
            "dbt": dbt_cli(project),
            "mlflow_tracking": MLflowResource.from_settings(settings, ml),
            "api_cache": ApiCacheResource(redis_url=endpoints.redis_url),
            # Asset values (the dataset reference, training summaries, champions) are small pickles kept
            # beside the embedded services' data, so each state folder has its own.
            "io_manager": dg.FilesystemIOManager(base_dir=str(settings.state_dir / "dagster-storage")),
        },
        executor=EXECUTOR,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(get_settings())
